"""Normalisation statistics of a policy: fitted per ``obs_spec`` entry, stored in a safetensors file.

The flat observation ``(O,)`` is the concatenation of the ``obs_spec`` entries, in order. Its
statistics are kept per entry:

* a vector entry (e.g. ``joint_positions``, shape ``[M]``): one mean/std per element, ``(M,)``;
* an image entry (3-D, HWC ``[h, w, c]`` or CHW ``[c, h, w]``, see
  :func:`rtc_ros.policies.observation.image_layout`): one mean/std per **channel**, ``(c,)`` --
  never per pixel (a per-pixel std blows up pixels that never changed in training).

Actions have one mean/std per action dimension, ``(M,)``.

The statistics file (``<name>.norm.safetensors``, named by the spec's ``normalization`` field)
holds float32 tensors::

    action_mean (M,)   action_std (M,)
    obs_mean.<entry name> (size or c,)   obs_std.<entry name> (size or c,)   for every obs_spec entry

:class:`~rtc_ros.policies.base.Normalizer` keeps the expanded per-dimension ``(O,)`` arrays for
inference; :func:`compact_stats` / :func:`expand_stats` convert between the two.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from rtc_ros.policies.base import Normalizer
from rtc_ros.policies.observation import image_layout

log = logging.getLogger(__name__)

FORMAT = "rtc_ros.normalization/1"
ACTION_KEYS = ("action_mean", "action_std")


class StatsError(ValueError):
    """Normalisation statistics that do not fit the policy; ``field`` is the offending key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class EntryLayout:
    """Where one ``obs_spec`` entry sits in the flat observation and how its stats are shaped.

    Attributes:
        name: the entry name. offset, size: its slice ``[offset, offset + size)`` of ``(O,)``.
        shape: the entry shape. channels: image channels (0 for a vector entry). chw: CHW image.
    """

    name: str
    offset: int
    size: int
    shape: tuple[int, ...]
    channels: int = 0
    chw: bool = False

    @property
    def is_image(self) -> bool:
        return self.channels > 0

    @property
    def stats_len(self) -> int:
        """Length of this entry's mean/std tensors: ``channels`` for an image, else ``size``."""
        return self.channels if self.is_image else self.size

    def channel_view(self, x: np.ndarray) -> np.ndarray:
        """``x (..., size)`` of an image entry -> ``(..., pixels, channels)``."""
        c = self.channels
        lead = x.shape[:-1]
        if self.chw:
            return np.swapaxes(x.reshape(*lead, c, self.size // c), -1, -2)
        return x.reshape(*lead, self.size // c, c)

    def expand(self, stats: np.ndarray) -> np.ndarray:
        """Per-entry stats ``(stats_len,)`` -> per-dimension ``(size,)``."""
        if not self.is_image:
            return stats
        pixels = self.size // self.channels
        return (np.repeat(stats[:, None], pixels, 1) if self.chw else np.tile(stats, pixels)).reshape(-1)


def obs_layout(obs_spec: list[dict[str, Any]]) -> list[EntryLayout]:
    """The :class:`EntryLayout` of every entry of ``obs_spec`` (``[{name, shape}, ...]``), in order.

    Raises:
        StatsError: an entry without ``name``/``shape``, or a duplicate name (field ``obs_spec``).
    """
    out: list[EntryLayout] = []
    offset = 0
    for i, item in enumerate(obs_spec):
        if not isinstance(item, dict) or "name" not in item or "shape" not in item:
            raise StatsError(f"obs_spec[{i}]", f"obs_spec[{i}] needs 'name' and 'shape', got {item!r}")
        shape = tuple(int(x) for x in item["shape"])
        size = int(np.prod(shape))
        layout = image_layout(shape)
        c, chw = (layout[0], layout[3]) if layout is not None else (0, False)
        out.append(EntryLayout(str(item["name"]), offset, size, shape, c, chw))
        offset += size
    names = [e.name for e in out]
    if len(set(names)) != len(names):
        raise StatsError("obs_spec", f"obs_spec entry names must be unique, got {names}")
    return out


def compact_stats(normalizer: Normalizer, obs_spec: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The tensors of the statistics file (see module docstring) from a per-dimension normaliser.

    Raises:
        StatsError: the normaliser's size differs from ``obs_spec``, or an image entry's statistics
            vary within a channel (per-pixel statistics cannot be stored: fit per channel with
            :func:`fit_normalizer`).
    """
    layout = obs_layout(obs_spec)
    total = sum(e.size for e in layout)
    if normalizer.obs_mean.shape[0] != total:
        raise StatsError("obs_mean", f"normalizer has {normalizer.obs_mean.shape[0]} observation dims, "
                                     f"obs_spec adds up to {total}")
    out: dict[str, np.ndarray] = {k: getattr(normalizer, k).astype(np.float32) for k in ACTION_KEYS}
    for e in layout:
        for kind in ("obs_mean", "obs_std"):
            x = getattr(normalizer, kind)[e.offset:e.offset + e.size].astype(np.float32)
            if e.is_image:
                per_px = e.channel_view(x)  # (pixels, c)
                spread = float(np.max(np.abs(per_px - per_px[:1])))
                if spread > 0.0:
                    raise StatsError(f"{kind}.{e.name}", f"{kind} of image entry '{e.name}' varies within a channel "
                                     f"(max difference {spread:.3g}); image statistics must be per channel")
                x = per_px[0].copy()
            out[f"{kind}.{e.name}"] = x
    return out


#: the smallest std a statistics file may hold (what :func:`fit_normalizer` floors a constant to, by default)
MIN_STD = 1e-6


def tiny_std(key: str, std: np.ndarray) -> None:
    """Raise :class:`StatsError` naming ``key[i]`` for the first std below :data:`MIN_STD` (0 included): a constant
    in the data, written by hand or by another pipeline; dividing by it (or by a floor) amplifies any drift of
    that input on the robot into huge values (a 0.01 rad drift became 118 rad actions)."""
    x = np.asarray(std).reshape(-1)
    small = np.flatnonzero(x < np.asarray(MIN_STD, dtype=x.dtype if x.dtype.kind == "f" else np.float64))
    if len(small):
        i = int(small[0])
        if x[i] < 0:  # (NaN compares False: not here)
            raise StatsError(f"{key}[{i}]", f"std {float(x[i]):g} is negative: a standard deviation is >= 0 (a "
                             "variance or a min/max written in its place?)")
        raise StatsError(f"{key}[{i}]", f"std {float(x[i]):g} is below {MIN_STD:g} (a constant in the data?): "
                         "dividing by it would amplify any drift of that input on the robot into huge values; set "
                         "it to the variation you expect there (e.g. the sensor noise)")


def expand_stats(tensors: dict[str, np.ndarray], obs_spec: list[dict[str, Any]], action_dim: int) -> Normalizer:
    """A per-dimension :class:`Normalizer` from the statistics file's tensors.

    Raises:
        StatsError: a missing key or a tensor of the wrong length; ``field`` names the key.
    """
    def get(key: str, n: int) -> np.ndarray:
        if key not in tensors:
            raise StatsError(key, "missing")
        x = np.asarray(tensors[key], dtype=np.float32).reshape(-1)
        if x.shape[0] != n:
            raise StatsError(key, f"length {x.shape[0]}, expected {n}")
        if key == "action_std" or key.startswith("obs_std."):
            tiny_std(key, x)
        return x

    layout = obs_layout(obs_spec)
    obs = {kind: np.concatenate([e.expand(get(f"{kind}.{e.name}", e.stats_len)) for e in layout])
           for kind in ("obs_mean", "obs_std")}
    act = {k: get(k, action_dim) for k in ACTION_KEYS}
    try:
        return Normalizer(obs["obs_mean"], obs["obs_std"], act["action_mean"], act["action_std"])
    except ValueError as exc:
        raise StatsError("normalization", str(exc)) from exc


def _floor_of(floors: float | dict[str, Any], name: str, size: int) -> np.ndarray:
    """The std floor of vector entry ``name`` (``size`` elements) from ``fit_normalizer``'s ``vector_std_floor``."""
    value = floors.get(name, 1e-6) if isinstance(floors, dict) else floors
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size not in (1, size) or not (np.isfinite(arr).all() and (arr >= 0).all()):
        raise ValueError(f"fit_normalizer: vector_std_floor for '{name}' must be one value or {size} values >= 0, "
                         f"got {value!r}")
    return np.broadcast_to(arr, (size,))


def fit_normalizer(
    obs: np.ndarray | Iterable[np.ndarray],
    actions: np.ndarray,
    obs_spec: list[dict[str, Any]],
    vector_std_floor: float | dict[str, float | list[float]] = 1e-6,
    image_std_floor: float = 1e-6,
    action_std_floor: float = 1e-6,
) -> Normalizer:
    """Fit per-entry statistics (per element for vectors, per channel for images).

    Args:
        obs: ``(N, O)`` raw observations, or an iterable of ``(n_i, O)`` batches (streamed, float64
            sums: a large image dataset need not be materialised at once), laid out as
            :class:`rtc_ros.policies.observation.ObservationBuilder` builds them on the robot (image
            entries as floats in [0, 1]: values above 1 are refused with a ValueError).
        actions: ``(N, H, M)`` or ``(N, M)`` raw actions.
        obs_spec: the layout of the flat observation.
        vector_std_floor, image_std_floor, action_std_floor: lower bounds of the fitted stds. ``vector_std_floor``
            may also be ``{entry name: floor or per-element floors}`` (entries not named: 1e-6), for elements in
            mixed units: e.g. ``{"joint_positions": [0.05] * 7 + [0.002]}`` for a gripper in metres whose whole
            range (0.04 m) is under one 0.05 floor (a bring-up walkthrough).

    Returns:
        the per-dimension normaliser (image entries constant per channel, so :func:`compact_stats`
        stores it exactly).
    """
    layout = obs_layout(obs_spec)
    O = sum(e.size for e in layout)
    batches = [obs] if isinstance(obs, np.ndarray) else obs
    n, s1, s2 = 0, np.zeros(O), np.zeros(O)
    images = [e for e in layout if e.is_image]
    top = {e.name: -np.inf for e in images}
    for b in batches:
        b = np.asarray(b, dtype=np.float64).reshape(-1, O)
        n += b.shape[0]
        s1 += b.sum(0)
        s2 += (b * b).sum(0)
        for e in images:
            if b.shape[0]:
                top[e.name] = max(top[e.name], float(b[:, e.offset:e.offset + e.size].max()))
    if n == 0:
        raise ValueError("fit_normalizer: no observations")
    for name, v in top.items():  # 0..255 pixels fit fine here, but the robot's ObservationBuilder feeds [0, 1]
        if v > 1.0 + 1e-6:
            raise ValueError(f"fit_normalizer: image entry '{name}' has values up to {v:g}; observations must be "
                             "laid out as ObservationBuilder.build makes them (images as floats in [0, 1])")
    unknown = sorted(set(vector_std_floor) - {e.name for e in layout if not e.is_image}) \
        if isinstance(vector_std_floor, dict) else []
    if unknown:  # (a typo would fall back to the 1e-6 floor silently: a review)
        raise ValueError(f"fit_normalizer: vector_std_floor names {unknown}, not vector entries of the obs_spec "
                         f"({[e.name for e in layout if not e.is_image]})")
    mean, std = np.empty(O), np.empty(O)
    floored: list[str] = []
    for e in layout:
        sl = slice(e.offset, e.offset + e.size)
        if e.is_image:
            k = n * (e.size // e.channels)
            m1 = e.channel_view(s1[sl]).sum(0) / k
            m2 = e.channel_view(s2[sl]).sum(0) / k
            mean[sl] = e.expand(m1)
            raw = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
            std[sl] = e.expand(np.maximum(raw, image_std_floor))
            floored += [f"{e.name} channel {i}" for i in np.flatnonzero(raw < image_std_floor)]
        else:
            m1, m2 = s1[sl] / n, s2[sl] / n
            mean[sl] = m1
            raw = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
            floor = _floor_of(vector_std_floor, e.name, e.size)
            std[sl] = np.maximum(raw, floor)
            floored += [f"{e.name}[{i}]" for i in np.flatnonzero(raw < floor)]
    if floored:  # a (nearly) constant input: on the robot its drift is divided by the floor, not by its std
        log.warning("fit_normalizer: %d observation dimensions barely vary in the data (std under the floor "
                    "%s for vectors, %g for image channels), normalised with the floor: %s", len(floored),
                    vector_std_floor, image_std_floor, ", ".join(floored[:8]) + (" ..." if len(floored) > 8 else ""))
    a = np.asarray(actions, dtype=np.float64)
    a = a.reshape(-1, a.shape[-1])
    return Normalizer(mean, std, a.mean(0), np.maximum(a.std(0), action_std_floor))


def save_stats(path: str | Path, normalizer: Normalizer, obs_spec: list[dict[str, Any]]) -> Path:
    """Write the statistics file (see module docstring); returns its path."""
    from safetensors.numpy import save_file

    path = Path(path)
    save_file({k: np.ascontiguousarray(v) for k, v in compact_stats(normalizer, obs_spec).items()}, str(path),
              metadata={"format": FORMAT, "image_stats": "per_channel", "obs_layout": layout_text(obs_spec)})
    return path


def layout_text(obs_spec: list[dict[str, Any]]) -> str:
    """The observation layout a statistics file (and the model trained beside it) was written for: the entries'
    names and shapes, in order (JSON)."""
    return json.dumps([[str(e["name"]), [int(x) for x in e["shape"]]] for e in obs_spec])


def load_stats(path: str | Path, obs_spec: list[dict[str, Any]], action_dim: int) -> Normalizer:
    """Read a statistics file into a per-dimension :class:`Normalizer`.

    Raises:
        StatsError: unreadable file (field ``normalization``), missing key or wrong length.
    """
    from safetensors import safe_open
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types
        raise StatsError("normalization", f"cannot read safetensors file {path}: {exc}") from exc
    normalizer = expand_stats(tensors, obs_spec, action_dim)  # (its missing-key errors first: they say more)
    written = meta.get("obs_layout")  # (files before 2026-12-07, late, have none: not checked)
    if written is not None and written != layout_text(obs_spec):  # (an audit: obs_spec entries reordered or
        # reshaped -- [3, 32, 32] for [32, 32, 3] -- loaded and sampled silently; the model read misplaced inputs)
        raise StatsError("obs_spec", f"{[tuple(e) for e in json.loads(written)]} is the layout the statistics {path} "
                                     f"(and the model trained with them) were written for, the spec says "
                                     f"{[tuple(e) for e in json.loads(layout_text(obs_spec))]}: the model would read "
                                     "its inputs misplaced (give the obs_spec it was trained with)")
    return normalizer
