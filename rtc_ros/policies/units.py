"""Robot units <-> the policy's units, per joint: run a policy trained in other units without retraining.

A policy trained on someone else's data may measure joints in other units than the robot's driver: LeRobot's
robot classes record degrees or a calibrated -100..100 range, ALOHA's datasets a gripper opening normalised to 0..1 where the Interbotix
driver reports the gripper motor's radians, openpi's ALOHA policies flip the shoulder and elbow. The spec's
optional ``robot_units`` field says, per joint of its ``joint_names``, how the robot's value follows from
the policy's::

    joint_names: [left_waist, ..., left_gripper, right_waist, ..., right_gripper]
    robot_units:                       # robot = offset + scale * policy (joints not listed: the same units)
      left_waist: degrees              # shorthand: the policy in degrees, the robot in radians
      left_gripper: {scale: 2.1123, offset: -0.6213}   # ALOHA: opening 0..1 -> motor rad (-0.6213..1.4910)
      right_shoulder: {scale: -1.0}    # a flipped joint

Everything outside the policy is in **robot units**: the joint entry of an observation (named or flat),
the guidance prefix, the chunks published to the executor (whose limits are the robot's), the recorded
bags, ``typical_observation()``. :class:`RobotUnitsPolicy` wraps a loaded policy and converts at its
boundary only: observations' joint entry ``policy = (robot - offset) / scale`` before the policy's own
normalisation, actions the same way into ``normalize_actions`` and ``robot = offset + scale * policy``
out of ``unnormalize_actions``. The joint entry of the observation must hold the same joints as the
actions (what ``policy_inference`` provides), so one map serves both. An affine map cannot express a
non-linear conversion (openpi's gripper angle <-> linear opening): that belongs in a model plugin.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Mapping

import numpy as np
import torch

from rtc_ros.policies.observation import JOINT_ENTRY_NAMES

#: the shorthand for a joint the policy measures in degrees (the robot in radians)
DEGREES = "degrees"


class RobotUnits:
    """The per-joint affine map ``robot = offset + scale * policy``; ``scale``, ``offset``: ``(M,)``."""

    def __init__(self, scale: np.ndarray, offset: np.ndarray, names: list[str]) -> None:
        self.scale = np.asarray(scale, dtype=np.float64).reshape(-1)
        self.offset = np.asarray(offset, dtype=np.float64).reshape(-1)
        self.names = list(names)
        if not (self.scale.shape == self.offset.shape == (len(self.names),)):
            raise ValueError(f"robot_units: scale {self.scale.shape}, offset {self.offset.shape} for {len(names)} joints")
        if not (np.isfinite(self.scale).all() and np.isfinite(self.offset).all()) or (self.scale == 0).any():
            raise ValueError("robot_units: every scale must be finite and non-zero, every offset finite")
        self._torch: dict[tuple[Any, Any], tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def converted(self) -> list[str]:
        """The joints whose units differ (scale != 1 or offset != 0)."""
        return [n for n, s, o in zip(self.names, self.scale, self.offset) if s != 1.0 or o != 0.0]

    def describe(self) -> str:
        """One line for the log: each converted joint as ``name: robot = o + s * policy``."""
        i = [self.names.index(n) for n in self.converted]
        return "; ".join(f"{self.names[k]}: robot = {self.offset[k]:g} + {self.scale[k]:g} x policy" for k in i)

    def _pair(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (like.device, like.dtype)
        if key not in self._torch:
            self._torch[key] = (torch.as_tensor(self.scale, device=like.device, dtype=like.dtype),
                                torch.as_tensor(self.offset, device=like.device, dtype=like.dtype))
        return self._torch[key]

    def to_policy(self, x: Any) -> Any:
        """Robot units -> the policy's, over the last dimension ``(..., M)`` (numpy or torch, a new array)."""
        if isinstance(x, torch.Tensor):
            scale, offset = self._pair(x)
            return (x - offset) / scale
        x = np.asarray(x)
        return ((x - self.offset) / self.scale).astype(x.dtype if x.dtype.kind == "f" else np.float64)

    def to_robot(self, x: Any) -> Any:
        """The policy's units -> robot units, over the last dimension ``(..., M)`` (numpy or torch)."""
        if isinstance(x, torch.Tensor):
            scale, offset = self._pair(x)
            return x * scale + offset
        x = np.asarray(x)
        return (x * self.scale + self.offset).astype(x.dtype if x.dtype.kind == "f" else np.float64)


def parse_robot_units(value: Any, joint_names: list[str] | None) -> RobotUnits | None:
    """The spec's ``robot_units`` field (None or empty: None).

    Raises:
        ValueError: ``"<field>: <why>"`` naming ``robot_units`` or ``robot_units.<joint>[.scale|.offset]``.
    """
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"robot_units: must be a mapping of joint name -> {{scale, offset}} or '{DEGREES}', got "
                         f"{value!r}")
    if not joint_names:
        raise ValueError("robot_units: needs the spec's joint_names (the joints it converts are named)")
    scale, offset = np.ones(len(joint_names)), np.zeros(len(joint_names))
    for joint, how in value.items():
        fld = f"robot_units.{joint}"
        if joint not in joint_names:
            close = difflib.get_close_matches(str(joint), joint_names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (joint_names: {joint_names})"
            raise ValueError(f"{fld}: not one of the spec's joint_names{hint}")
        i = joint_names.index(joint)
        if how == DEGREES:
            scale[i] = math.pi / 180.0
            continue
        if not isinstance(how, dict) or not how or set(how) - {"scale", "offset"}:
            raise ValueError(f"{fld}: must be '{DEGREES}' or a mapping with 'scale' and/or 'offset' "
                             f"(robot = offset + scale x policy), got {how!r}")
        for key, default, arr in (("scale", 1.0, scale), ("offset", 0.0, offset)):
            v = how.get(key, default)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                hint = " (YAML reads 1e-3 as a string: write 1.0e-3)" if isinstance(v, str) else ""
                raise ValueError(f"{fld}.{key}: must be a finite number, got {v!r}{hint}")
            if key == "scale" and v == 0:
                raise ValueError(f"{fld}.scale: must not be 0 (the map must be invertible)")
            arr[i] = float(v)
    return RobotUnits(scale, offset, list(joint_names))


def joint_slices(obs_spec: list[dict[str, Any]], m: int) -> list[tuple[str, slice]]:
    """The joint entries of a flat observation laid out as ``obs_spec`` (1-D entries named one of
    :data:`~rtc_ros.policies.observation.JOINT_ENTRY_NAMES`, or 2-D ``[t, m]`` joint histories so named):
    ``[(name, slice)]``, each of ``m`` (or ``t x m``, newest row first) values.

    Raises:
        ValueError: ``"robot_units: why"`` -- a joint entry of another size (one map serves observation and
            actions), or 1-D entries none of which is a joint entry (the default ``obs``: what the robot's
            joints are in it is unknown, so converting only the actions would be silently wrong)."""
    out, offset, vectors = [], 0, []
    for e in obs_spec:
        size = int(np.prod(e["shape"]))
        if len(e["shape"]) == 2 and e["name"] in JOINT_ENTRY_NAMES:  # a joint history [t, m]
            if int(e["shape"][-1]) != m:
                raise ValueError(f"robot_units: the observation's joint history '{e['name']}' has rows of "
                                 f"{int(e['shape'][-1])} values, the actions {m}: one map must serve both")
            out.append((e["name"], slice(offset, offset + size)))
        elif len(e["shape"]) == 1:
            vectors.append(e["name"])
            if e["name"] in JOINT_ENTRY_NAMES:
                if size != m:
                    raise ValueError(f"robot_units: the observation's joint entry '{e['name']}' has {size} values, "
                                     f"the actions {m}: one map must serve both")
                out.append((e["name"], slice(offset, offset + size)))
        offset += size
    if vectors and not out:
        raise ValueError(f"robot_units: obs_spec has no joint entry (a 1-D entry named one of {list(JOINT_ENTRY_NAMES)}; "
                         f"it has {vectors}): the observation's joint values could not be converted")
    return out


def same_units(a: Any, b: Any) -> bool:
    """Whether two loaded policies see the robot in the same units (both unwrapped, or the same map)."""
    ua, ub = getattr(a, "units", None), getattr(b, "units", None)
    if ua is None or ub is None:
        return ua is ub
    return ua.names == ub.names and np.array_equal(ua.scale, ub.scale) and np.array_equal(ua.offset, ub.offset)


class RobotUnitsPolicy:
    """A loaded policy (``inner``: :class:`~rtc_ros.policies.loaded.LoadedPolicy` or an adapter with the same
    interface) seen in robot units (module docstring). Every attribute it does not convert is the inner
    policy's; ``units`` is the map, ``inner`` the policy in its own units."""

    def __init__(self, inner: Any, units: RobotUnits) -> None:
        m = int(inner.action_dim)
        if len(units.names) != m:
            raise ValueError(f"robot_units: {len(units.names)} joints for action_dim {m}")
        self.inner, self.units = inner, units
        self._entries = joint_slices(list(inner.obs_spec), m)

    def __getattr__(self, name: str) -> Any:  # everything not converted here is the inner policy's
        if name in ("inner", "units", "_entries"):  # (not yet set: during unpickling or a failed __init__)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"RobotUnitsPolicy({self.inner!r}, {self.units.describe()})"

    def _flat_to_policy(self, obs: Any) -> Any:
        o = int(self.inner.obs_dim)
        if not self._entries or getattr(obs, "shape", (None,))[-1:] != (o,):
            return obs  # (nothing to convert, or the wrong size: the inner policy names it)
        x = obs.clone() if isinstance(obs, torch.Tensor) else np.array(obs, dtype=np.float32, copy=True)
        m = len(self.units.names)
        for _name, sl in self._entries:  # (a joint history's rows one after another)
            part = x[..., sl]
            x[..., sl] = self.units.to_policy(part.reshape(*part.shape[:-1], -1, m)).reshape(part.shape)
        return x

    def _obs_to_policy(self, obs: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor) -> Any:
        if not isinstance(obs, Mapping):
            return self._flat_to_policy(obs)
        out = dict(obs)
        for name, _sl in self._entries:
            q = np.asarray(obs[name], dtype=np.float64) if name in obs else None
            if q is not None and q.ndim in (1, 2) and q.shape[-1] == len(self.units.names):  # (M,) or (n, M) rows
                out[name] = self.units.to_policy(q)  # (else the inner policy names what is wrong)
        return out

    def encode(self, obs: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor) -> Any:
        """Raw observation in robot units (named or flat ``(B, O)``) -> the inner policy's context."""
        return self.inner.encode(self._obs_to_policy(obs))

    def normalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        """Robot units ``(..., M)`` -> the inner policy's action space."""
        a = torch.as_tensor(a)
        if a.shape[-1:] != (len(self.units.names),):
            raise ValueError(f"raw actions must have M = {len(self.units.names)} values per action (robot units), "
                             f"got shape {tuple(a.shape)}")
        return self.inner.normalize_actions(self.units.to_policy(a))

    def unnormalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        """The inner policy's action space -> robot units ``(..., M)``."""
        return self.units.to_robot(self.inner.unnormalize_actions(a))

    def typical_observation(self) -> np.ndarray:
        """The inner policy's typical flat observation, its joint entries in robot units."""
        x = np.array(self.inner.typical_observation(), dtype=np.float32, copy=True)
        m = len(self.units.names)
        for _name, sl in self._entries:
            x[sl] = self.units.to_robot(x[sl].astype(np.float64).reshape(-1, m)).reshape(-1)
        return x
