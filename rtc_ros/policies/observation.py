"""Build a policy's flat observation from joint positions and camera images (ROS-free).

The policy spec's ``obs_spec`` lists the pieces of the flat observation in order, each
``{name, shape}``. Recognised entries:

* joint positions: a 1-D entry named one of :data:`JOINT_ENTRY_NAMES` whose size is the number of
  action joints -- the measured positions in action (joint-name) order;
* joint history: a 2-D entry ``[t, M]`` so named: the positions at the observation's step and at the
  ``t - 1`` control steps (``dt``) before it, newest first (LeRobot's Diffusion Policy sees
  ``n_obs_steps`` of them); the caller passes them newest first (``policy_inference`` keeps them,
  :mod:`rtc_ros.runtime.joint_history`), and with fewer than ``t`` the oldest given is repeated, as
  LeRobot fills its observation queue at an episode's start;
* images: a 3-D entry ``[h, w, c]`` (HWC) or ``[c, h, w]`` (CHW, when the first dim is 1 or 3 and the
  last is not); its ``name`` is the camera name. Camera frames (any size, uint8 RGB ``(H, W, 3)``)
  are resized to ``h x w`` by nearest-neighbour sampling (index tables cached per input size), scaled
  to ``[0, 1]`` float32 and, for ``c = 1``, averaged to grey; the builder's ``on_resize`` hook hears of
  each camera's first frame of a size other than the entry's (``policy_inference`` logs it, a warning
  where the aspect ratio differs: :func:`aspect_change`).
* frame stacks: a 4-D entry ``[t, h, w, c]`` (HWC frames only): the camera's newest ``t`` frames,
  newest first (frame ``i`` = ``i`` camera messages before the newest; for a policy with a joint history,
  ``policy_inference`` takes the frame stamped nearest ``i dt`` before instead), each as above; what lets a
  policy see motion (e.g. a cube on a moving belt). The caller passes the camera's frames newest
  first; with fewer than ``t`` (just after start-up) the oldest one given is repeated, as the training
  set does at an episode's start (:mod:`rtc_ros.recording.dataset`).

Anything else is refused when the builder is made, naming the entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

JOINT_ENTRY_NAMES = ("joint_positions", "qpos", "state", "joints", "position", "positions")


def image_layout(shape: tuple[int, ...] | list[int]) -> tuple[int, int, int, bool] | None:
    """``(channels, height, width, chw)`` of one frame of an image obs_spec entry, or ``None`` if it is
    not an image.

    3-D: ``[c, h, w]`` (CHW) when the first dim is 1 or 3 and the last is not, else ``[h, w, c]`` (HWC);
    4-D: a frame stack ``[t, h, w, c]`` (HWC only). An image has 1 (grey) or 3 (RGB) channels.
    """
    if len(shape) == 4:
        t, h, w, c = (int(x) for x in shape)
        return (c, h, w, False) if t >= 1 and c in (1, 3) else None
    if len(shape) != 3:
        return None
    s0, s1, s2 = (int(x) for x in shape)
    chw = s0 in (1, 3) and s2 not in (1, 3)
    c, h, w = (s0, s1, s2) if chw else (s2, s0, s1)
    return (c, h, w, chw) if c in (1, 3) else None


def aspect_change(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> float:
    """How much resizing a ``src_hw = (h, w)`` frame to ``dst_hw`` stretches it: ``|ratio - 1|`` of the two
    aspect ratios (w / h), the larger over the smaller (0: the same shape, only scaled; 0.33: 640x480 to
    224x224)."""
    a = (src_hw[1] / src_hw[0]) / (dst_hw[1] / dst_hw[0])
    return max(a, 1.0 / a) - 1.0


@dataclass(frozen=True)
class _Entry:
    name: str
    kind: str  # "joints" | "image"
    shape: tuple[int, ...]
    size: int
    offset: int
    hw: tuple[int, int] = (0, 0)
    channels: int = 0
    chw: bool = False
    frames: int = 1  # a frame stack's t (1 for a single image); a joint history's t


class ObservationBuilder:
    """Maps ``(joint positions (M,), {camera: (H, W, 3) uint8})`` to the flat observation ``(O,)``.

    Args:
        obs_spec: the policy spec's ``obs_spec`` list.
        num_joints: M, length of the joint-position vector.
    """

    def __init__(self, obs_spec: list[dict[str, Any]], num_joints: int) -> None:
        if not isinstance(obs_spec, list) or not obs_spec:
            raise ValueError("obs_spec must be a non-empty list of {name, shape}")
        entries: list[_Entry] = []
        offset = 0
        for i, item in enumerate(obs_spec):
            if not isinstance(item, dict) or "name" not in item or "shape" not in item:
                raise ValueError(f"obs_spec[{i}] needs 'name' and 'shape', got {item!r}")
            name, shape = str(item["name"]), tuple(int(x) for x in item["shape"])
            size = int(np.prod(shape))
            if len(shape) in (1, 2) and name in JOINT_ENTRY_NAMES:
                if shape[-1] != num_joints or shape[0] < 1:
                    raise ValueError(f"obs_spec entry '{name}' has shape {list(shape)}, but there are {num_joints} "
                                     f"joints ([{num_joints}], or [t >= 1, {num_joints}] for a joint history)")
                entries.append(_Entry(name, "joints", shape, size, offset, frames=shape[0] if len(shape) == 2 else 1))
            elif len(shape) in (3, 4):
                layout = image_layout(shape)
                if layout is None:
                    raise ValueError(f"obs_spec image entry '{name}' must have 1 or 3 channels (a frame stack: "
                                     f"[t >= 1, h, w, c]), got shape {list(shape)}")
                c, h, w, chw = layout
                t = shape[0] if len(shape) == 4 else 1
                entries.append(_Entry(name, "image", shape, size, offset, (h, w), c, chw, t))
            else:
                raise ValueError(
                    f"obs_spec entry '{name}' with shape {list(shape)} is not supported: use a 1-D entry named one of "
                    f"{list(JOINT_ENTRY_NAMES)} (joint positions; 2-D [t, M]: a joint history), a 3-D image or a "
                    "4-D frame stack entry named after its camera"
                )
            offset += size
        self.entries = entries
        self.obs_dim = offset
        self.num_joints = num_joints
        self._resize_cache: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}
        #: called as ``on_resize(camera, (h, w) of its frames, (h, w) of the entry)`` the first time a camera's
        #: frames of a size other than its entry's are resized (once per camera and size)
        self.on_resize: Callable[[str, tuple[int, int], tuple[int, int]], None] | None = None

    @property
    def camera_names(self) -> list[str]:
        return [e.name for e in self.entries if e.kind == "image"]

    @property
    def joint_history(self) -> int:
        """The joint positions the policy sees: ``t`` of a ``[t, M]`` joint entry, else 1."""
        return max((e.frames for e in self.entries if e.kind == "joints"), default=1)

    @property
    def camera_frames(self) -> dict[str, int]:
        """Camera name -> frames the policy sees (its frame stack's ``t``; 1 for a single image)."""
        return {e.name: e.frames for e in self.entries if e.kind == "image"}

    def _resize(self, e: _Entry, img: np.ndarray) -> np.ndarray:
        h, w = e.hw
        if img.shape[:2] == (h, w):
            return img
        key = (e.name, img.shape[0], img.shape[1])
        idx = self._resize_cache.get(key)
        if idx is None:
            rows = np.minimum(((np.arange(h) + 0.5) * img.shape[0] / h).astype(np.intp), img.shape[0] - 1)
            cols = np.minimum(((np.arange(w) + 0.5) * img.shape[1] / w).astype(np.intp), img.shape[1] - 1)
            idx = self._resize_cache[key] = (rows[:, None], cols[None, :])
            if self.on_resize is not None:
                self.on_resize(e.name, (int(img.shape[0]), int(img.shape[1])), (h, w))
        return img[idx[0], idx[1]]

    def _frame(self, e: _Entry, img: np.ndarray) -> np.ndarray:
        """One camera frame ``(H, W, 3)`` uint8 -> the entry's float32 frame (HWC, or CHW), in ``[0, 1]``."""
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"camera '{e.name}': expected an (H, W, 3) RGB image, got {img.shape}")
        if img.dtype != np.uint8:  # a float image in [0, 1] would be scaled by 1/255 a second time
            raise ValueError(f"camera '{e.name}': expected uint8 pixels (0..255), got {img.dtype}")
        x = self._resize(e, img).astype(np.float32) * (1.0 / 255.0)
        if e.channels == 1:
            x = x.mean(axis=2, keepdims=True)
        return np.transpose(x, (2, 0, 1)) if e.chw else x

    def build(self, joint_positions: np.ndarray, images: dict[str, Any] | None = None) -> np.ndarray:
        """The flat float32 observation ``(O,)``.

        ``joint_positions``: ``(M,)``, or ``(n, M)`` newest first for a joint-history entry (a 1-D entry
        takes the newest). ``images[camera]``: one frame ``(H, W, 3)`` uint8, or the camera's frames newest
        first (a sequence of them, or an ``(n, H, W, 3)`` array) for a frame-stack entry (module docstring).

        Raises:
            ValueError: wrong joint count, a missing camera, a bad image, or non-finite values.
        """
        q = np.asarray(joint_positions, dtype=np.float32)
        q = q.reshape(1, -1) if q.ndim <= 1 else q
        if q.ndim != 2 or q.shape[0] < 1 or q.shape[1] != self.num_joints:
            raise ValueError(f"expected {self.num_joints} joint positions (or (n, {self.num_joints}) newest first), "
                             f"got shape {np.shape(joint_positions)}")
        if not np.isfinite(q).all():
            raise ValueError("joint positions contain NaN or Inf")
        images = images or {}
        out = np.empty(self.obs_dim, dtype=np.float32)
        for e in self.entries:
            if e.kind == "joints":
                rows = q[np.minimum(np.arange(e.frames), q.shape[0] - 1)]  # newest first; the oldest repeated
                out[e.offset:e.offset + e.size] = rows.reshape(-1)
                continue
            img = images.get(e.name)
            if img is None:
                raise ValueError(f"no image for camera '{e.name}'")
            if isinstance(img, np.ndarray) and img.ndim not in (3, 4):
                raise ValueError(f"camera '{e.name}': expected an (H, W, 3) RGB image or (n, H, W, 3) frames, "
                                 f"got {img.shape}")
            frames = [img] if isinstance(img, np.ndarray) and img.ndim == 3 else list(img)
            if not frames:
                raise ValueError(f"no image for camera '{e.name}'")
            if len(frames) > 1 and e.frames == 1:
                frames = frames[:1]  # a single-image entry: the newest
            per = e.size // e.frames
            for i in range(e.frames):
                x = self._frame(e, np.asarray(frames[min(i, len(frames) - 1)]))
                out[e.offset + i * per:e.offset + (i + 1) * per] = x.reshape(-1)
        return out
