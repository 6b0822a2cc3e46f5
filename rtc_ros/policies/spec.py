"""Policy spec: a YAML file that names the base policy, so swapping policies = swapping a file.

Format (paths relative to the YAML file)::

    name: toy_two_modes            # free text
    model: mlp_mixer               # registered name or package.module:factory (rtc_ros.policies.plugins)
    config: {horizon: 8, action_dim: 2, obs_dim: 1, width: 64, depth: 2, ...}
    weights: toy.safetensors       # safetensors only -- never pickle
    normalization: toy.norm.safetensors   # statistics file, see rtc_ros.policies.stats
    obs_spec: [{name: joint_positions, shape: [14]}]   # layout of the flat observation, in order
    n_steps: 5                     # default denoising steps (optional)
    dt: 0.02                       # controller period the policy was trained for (optional)
    joint_names: [...]             # action dimension names (optional, length M)
    training: {prefix_conditioning: 4}   # optional: trained for training-time RTC with d <= 4
    robot_units: {left_gripper: {scale: 2.1, offset: -0.6}}   # optional: robot = offset + scale x policy
                                                             # (rtc_ros.policies.units; needs joint_names)

Normalisation statistics live in the safetensors file named by ``normalization`` (per element for
vector entries, per channel for images; :mod:`rtc_ros.policies.stats`), so the YAML stays
human-sized. A spec of the old format (``normalization`` a mapping of per-dimension lists) still
loads, with a deprecation warning; ``python -m rtc_ros.policies.convert SPEC`` converts it.

A LeRobot checkpoint is a spec with ``model: lerobot_smolvla``, ``lerobot_diffusion`` or ``lerobot_groot`` and a
``pretrained_path`` instead of ``config`` / ``weights`` / ``normalization`` (:data:`LEROBOT_MODELS`; each
adapter's module docstring lists its fields).

A wrong spec fails at load with :class:`PolicySpecError` naming the field.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file

from rtc_ros.policies.base import FlowPolicy, Normalizer
from rtc_ros.policies.loaded import LoadedPolicy  # noqa: F401 (re-exported: the loaded policy)
from rtc_ros.policies.plugins import build_model
from rtc_ros.policies.spec_fields import (  # noqa: F401 (PolicySpecError, RATE_FIELDS re-exported)
    RATE_FIELDS, PolicySpecError, UniqueKeyLoader, check_scalars as _check_scalars, check_typos as _check_typos,
    obs_dim_of as _obs_dim_of, spec_error as _err, spec_path,
)
from rtc_ros.policies.stats import StatsError, load_stats, save_stats, tiny_std
from rtc_ros.policies.units import RobotUnits, RobotUnitsPolicy, parse_robot_units

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (cuda if available)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"invalid device {device!r}: {exc}") from exc


#: the fields a spec's loader reads; any other top-level field is free metadata (``camera``, ``demos``, ...)
#: unless it looks like a misspelt one of these
SPEC_FIELDS = ("name", "model", "config", "weights", "normalization", "obs_spec", "n_steps", "dt", "joint_names",
               "training", "robot_units")
#: the fields of ``training`` the runtime reads (the rest is a record of how it was trained)
TRAINING_FIELDS = ("prefix_conditioning",)
#: LeRobot checkpoints: ``model:`` -> (adapter module under rtc_ros.policies, its loader); imported on use
LEROBOT_MODELS = {"lerobot_smolvla": ("lerobot_adapter", "load_lerobot_policy"),
                  "lerobot_diffusion": ("lerobot_diffusion", "load_lerobot_diffusion"),
                  "lerobot_groot": ("lerobot_groot", "load_lerobot_groot")}


def default_obs_spec(obs_dim: int) -> list[dict[str, Any]]:
    """The ``obs_spec`` of a spec that gives none: one vector entry ``obs`` of size ``obs_dim``."""
    return [{"name": "obs", "shape": [int(obs_dim)]}]


def stats_file_name(name: str) -> str:
    """File name of a policy's normalisation statistics: ``<name>.norm.safetensors``."""
    return f"{name}.norm.safetensors"


def save_policy(
    directory: str | Path,
    name: str,
    model: FlowPolicy,
    normalizer: Normalizer,
    obs_spec: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    model_type: str = "mlp_mixer",
    weights_file: str | None = None,
) -> Path:
    """Write ``<name>.safetensors`` (weights), ``<name>.norm.safetensors`` (normalisation statistics)
    and ``<name>.yaml`` (spec) into ``directory``; return the YAML path.

    Raises:
        rtc_ros.policies.stats.StatsError: ``normalizer`` does not fit ``obs_spec``, or has image
            statistics that vary within a channel (fit them with
            :func:`rtc_ros.policies.stats.fit_normalizer`).
    """
    directory = Path(directory)
    weights_file = weights_file or f"{name}.safetensors"
    obs_spec = obs_spec or default_obs_spec(model.obs_dim)
    norm_file = stats_file_name(name)
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError(f"{type(model).__name__} has no 'config' to write into the spec")
    spec: dict[str, Any] = {
        "name": name,
        "model": model_type,
        "config": asdict(config) if is_dataclass(config) else dict(config),
        "weights": weights_file,
        "normalization": norm_file,
        "obs_spec": obs_spec,
        "n_steps": 5,
    }
    spec.update(extra or {})
    text = yaml.safe_dump(_plain(spec, ""), sort_keys=False)  # before any file: nothing half-written on an error
    directory.mkdir(parents=True, exist_ok=True)
    save_stats(directory / norm_file, normalizer, obs_spec)  # refuses per-pixel statistics
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / weights_file))
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return path


def _plain(value: Any, where: str) -> Any:
    """``value`` with numpy scalars and arrays as Python numbers and lists, tuples as lists, paths as strings (what
    YAML's safe dump writes); anything else non-plain is a ValueError naming the field ``where``."""
    if isinstance(value, dict):
        return {k: _plain(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"spec field '{where}': a {type(value).__name__} cannot be written to the spec YAML (give plain "
                     "numbers, strings, lists and mappings)")


def _legacy_normalizer(path: Path, norm: dict[str, Any]) -> Normalizer:
    """The old format: ``normalization`` a mapping of per-dimension lists (deprecated)."""
    for key in ("obs_mean", "obs_std", "action_mean", "action_std"):
        if key not in norm:
            raise _err(path, f"normalization.{key}", "missing")
    log.warning("policy spec %s: normalisation statistics as YAML lists are deprecated; convert the file with "
                "'python -m rtc_ros.policies.convert %s'", path, path)
    try:
        for key in ("obs_std", "action_std"):
            tiny_std(key, np.asarray(norm[key], dtype=np.float32))  # (as stored: an old floor, 1e-6, is float32)
        return Normalizer(**{k: norm[k] for k in ("obs_mean", "obs_std", "action_mean", "action_std")})
    except StatsError as exc:
        raise _err(path, f"normalization.{exc.field}", str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise _err(path, "normalization", str(exc)) from exc


def _load_normalizer(path: Path, spec: dict[str, Any], obs_spec: list[dict[str, Any]], action_dim: int) -> Normalizer:
    norm = spec["normalization"]
    if isinstance(norm, dict):
        return _legacy_normalizer(path, norm)
    if not isinstance(norm, str):
        raise _err(path, "normalization", f"must name a .safetensors statistics file, got {norm!r}")
    stats = spec_path(path, norm, "normalization")
    if stats.suffix != ".safetensors":
        raise _err(path, "normalization", f"only a .safetensors statistics file is accepted, got {stats.name}")
    if not stats.is_file():
        raise _err(path, "normalization", f"file not found: {stats}")
    try:
        return load_stats(stats, obs_spec, action_dim)
    except StatsError as exc:
        fld = exc.field if exc.field.startswith(("normalization", "obs_spec")) else f"normalization.{exc.field}"
        hint = ""
        if "obs_spec" not in spec and exc.field in ("obs_mean.obs", "obs_std.obs"):  # the default layout's entry
            from safetensors import safe_open

            with safe_open(str(stats), "np") as fh:
                entries = sorted({k.split(".", 1)[1] for k in fh.keys() if k.startswith("obs_mean.")})
            hint = (f" (the spec gives no obs_spec, so one vector entry named 'obs' is assumed; the statistics "
                    f"file has entries {entries}: add obs_spec)")
        raise _err(path, fld, f"{stats.name}: {exc}{hint}") from exc


def _check_training(path: Path, training: Any, model: FlowPolicy) -> None:
    """The optional ``training`` mapping: ``prefix_conditioning`` an integer in ``[0, H - 1]``, > 0 only
    for a model with per-position flow time."""
    if training is None:
        return
    if not isinstance(training, dict):
        raise _err(path, "training", f"must be a mapping, got {training!r}")
    _check_typos(path, training, TRAINING_FIELDS, "training.")
    d_max = training.get("prefix_conditioning", 0)
    if isinstance(d_max, bool) or not isinstance(d_max, int) or not 0 <= d_max < model.horizon:
        raise _err(path, "training.prefix_conditioning", f"must be an integer in [0, H - 1 = {model.horizon - 1}], "
                   f"got {d_max!r}")
    if d_max and not getattr(model, "supports_per_position_tau", False):
        raise _err(path, "training.prefix_conditioning", f"{type(model).__name__} has no per-position flow time")


def load_policy(path: str | Path, device: str = "cpu") -> LoadedPolicy:
    """Load and validate a policy spec; see the module docstring for the format.

    Raises:
        PolicySpecError: missing file, missing/unknown field, bad config, weights that do not match
            the config, normalisation of the wrong size, non-safetensors weights.
    """
    path = Path(path)
    if not path.is_file():
        raise PolicySpecError(f"policy spec {'is a directory, not a file' if path.is_dir() else 'file not found'}: "
                              f"{path}")
    try:
        spec = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)  # (no duplicate keys)
    except UnicodeDecodeError as exc:
        raise PolicySpecError(f"policy spec {path}: not UTF-8 text ({exc})") from exc
    except yaml.YAMLError as exc:
        raise PolicySpecError(f"policy spec {path}: not valid YAML: {exc}") from exc
    if not isinstance(spec, dict):
        raise PolicySpecError(f"policy spec {path}: expected a mapping at top level")
    if spec.get("model") in LEROBOT_MODELS:  # a LeRobot checkpoint, loaded by its adapter
        module = importlib.import_module(f"rtc_ros.policies.{LEROBOT_MODELS[spec['model']][0]}")
        LEROBOT_FIELDS, load = module.SPEC_FIELDS, getattr(module, LEROBOT_MODELS[spec["model"]][1])

        _check_typos(path, spec, SPEC_FIELDS + LEROBOT_FIELDS)
        _check_scalars(path, spec)
        try:
            units = parse_robot_units(spec.get("robot_units"), spec.get("joint_names"))  # before the slow load
            return _in_robot_units(path, units, load(path, spec, resolve_device(device)))
        except PolicySpecError:  # names the file and the field already (spec_path)
            raise
        except ValueError as exc:
            fld, _, msg = str(exc).partition(": ")
            raise _err(path, fld, msg) from exc
    _check_typos(path, spec, SPEC_FIELDS)
    for fld in ("model", "config", "weights", "normalization"):
        if fld not in spec:
            raise _err(path, fld, "missing")
    _check_scalars(path, spec)
    if not isinstance(spec["config"], dict):
        raise _err(path, "config", "must be a mapping")
    try:
        model = build_model(spec["model"], spec["config"])
    except ValueError as exc:
        text = str(exc)
        if text.startswith("config: "):
            raise _err(path, "config", text[len("config: "):]) from exc
        raise _err(path, "model", text) from exc
    weights = spec_path(path, spec["weights"], "weights")
    if weights.suffix != ".safetensors":
        raise _err(path, "weights", f"only .safetensors weights are accepted (never pickle), got {weights.name}")
    if not weights.is_file():
        raise _err(path, "weights", f"file not found: {weights}")
    if "obs_spec" in spec:
        if not isinstance(spec["obs_spec"], list):
            raise _err(path, "obs_spec", "must be a list of {name, shape}")
        if (n := _obs_dim_of(spec["obs_spec"], path)) != model.obs_dim:
            raise _err(path, "obs_spec", f"sizes add up to {n}, config.obs_dim is {model.obs_dim}")
    obs_spec = spec.get("obs_spec") or default_obs_spec(model.obs_dim)
    if callable(check := getattr(model, "check_obs_spec", None)):  # a model that reads a fixed layout
        try:
            check(obs_spec)
        except ValueError as exc:
            raise _err(path, "obs_spec", str(exc)) from exc
    normalizer = _load_normalizer(path, spec, obs_spec, model.action_dim)
    if normalizer.obs_mean.shape[0] != model.obs_dim:
        raise _err(path, "normalization.obs_mean", f"length {normalizer.obs_mean.shape[0]} != config.obs_dim {model.obs_dim}")
    if normalizer.action_mean.shape[0] != model.action_dim:
        raise _err(
            path, "normalization.action_mean",
            f"length {normalizer.action_mean.shape[0]} != config.action_dim {model.action_dim}",
        )
    _check_training(path, spec.get("training"), model)
    names = spec.get("joint_names")
    if names is not None and len(names) != model.action_dim:
        raise _err(path, "joint_names", f"{len(names)} names for action_dim {model.action_dim}")
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types
        raise _err(path, "weights", f"cannot read safetensors file {weights}: {exc}") from exc
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise _err(path, "weights", f"{weights.name}: tensors {bad[:5]} contain NaN or Inf")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise _err(path, "weights", f"do not match config: {exc}") from exc
    dev = resolve_device(device)
    model.to(dev).eval()
    for p in model.parameters():
        p.requires_grad_(False)  # guidance differentiates w.r.t. the sample only
    log.info("loaded policy %s (%s, H=%d, M=%d, O=%d) on %s", spec.get("name", path.stem), spec["model"],
             model.horizon, model.action_dim, model.obs_dim, dev)
    loaded = LoadedPolicy(model=model, normalizer=normalizer, spec=spec, path=path, device=dev)
    try:
        return _in_robot_units(path, parse_robot_units(spec.get("robot_units"), spec.get("joint_names")), loaded)
    except ValueError as exc:
        fld, _, msg = str(exc).partition(": ")
        raise _err(path, fld, msg) from exc


def _in_robot_units(path: Path, units: RobotUnits | None, policy: Any) -> Any:
    """``policy`` as is, or seen in robot units through the spec's parsed ``robot_units`` map
    (:mod:`rtc_ros.policies.units`).

    Raises:
        ValueError: ``"robot_units...: why"``."""
    if units is None:
        return policy
    log.info("policy spec %s: robot units: %s", path, units.describe() or "the same as the policy's")
    return RobotUnitsPolicy(policy, units)
