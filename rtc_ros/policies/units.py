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
        return "; ".join(f"{n}: robot = {o:g} + {s:g} x policy" for n, s, o in zip(self.names, self.scale, self.offset)
                         if s != 1.0 or o != 0.0)

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
                raise ValueError(f"{fld}.{key}: must be a finite number, got {v!r}")
            if key == "scale" and v == 0:
                raise ValueError(f"{fld}.scale: must not be 0 (the map must be invertible)")
            arr[i] = float(v)
    return RobotUnits(scale, offset, list(joint_names))


class RobotUnitsPolicy:
    """A loaded policy (``inner``: :class:`~rtc_ros.policies.loaded.LoadedPolicy` or an adapter with the same
    interface) seen in robot units (module docstring). Every attribute it does not convert is the inner
    policy's; ``units`` is the map, ``inner`` the policy in its own units."""

    def __init__(self, inner: Any, units: RobotUnits) -> None:
        if len(units.names) != inner.action_dim:
            raise ValueError(f"robot_units: {len(units.names)} joints for action_dim {inner.action_dim}")
        entries = [e for e in inner.observation_builder.entries if e.kind == "joints"]
        if entries and entries[0].size != inner.action_dim:
            raise ValueError(f"robot_units: the observation's joint entry '{entries[0].name}' has {entries[0].size} "
                             f"values, the actions {inner.action_dim}: one map must serve both")
        self.inner, self.units = inner, units
        self._joints = slice(entries[0].offset, entries[0].offset + entries[0].size) if entries else None
        self._entry = entries[0].name if entries else None

    def __getattr__(self, name: str) -> Any:  # everything not converted here is the inner policy's
        if name in ("inner", "units"):  # (not yet set: during unpickling or a failed __init__)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"RobotUnitsPolicy({self.inner!r}, {self.units.describe()})"

    def _flat_to_policy(self, obs: Any) -> Any:
        if self._joints is None:
            return obs
        if isinstance(obs, torch.Tensor):
            x = obs.clone()
        else:
            x = np.array(obs, dtype=np.float32, copy=True)
        x[..., self._joints] = self.units.to_policy(x[..., self._joints])
        return x

    def _obs_to_policy(self, obs: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor) -> Any:
        if isinstance(obs, Mapping):
            if self._entry is None or self._entry not in obs:
                return obs  # (the inner policy names what is missing)
            return {**obs, self._entry: self.units.to_policy(np.asarray(obs[self._entry], dtype=np.float64))}
        return self._flat_to_policy(obs)

    def encode(self, obs: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor) -> Any:
        """Raw observation in robot units (named or flat ``(B, O)``) -> the inner policy's context."""
        return self.inner.encode(self._obs_to_policy(obs))

    def normalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        """Robot units ``(..., M)`` -> the inner policy's action space."""
        return self.inner.normalize_actions(self.units.to_policy(torch.as_tensor(a)))

    def unnormalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        """The inner policy's action space -> robot units ``(..., M)``."""
        return self.units.to_robot(self.inner.unnormalize_actions(a))

    def typical_observation(self) -> np.ndarray:
        """The inner policy's typical flat observation, its joint entry in robot units."""
        x = np.array(self.inner.typical_observation(), dtype=np.float32, copy=True)
        if self._joints is not None:
            x[self._joints] = self.units.to_robot(x[self._joints].astype(np.float64))
        return x
