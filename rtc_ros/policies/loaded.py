"""A loaded policy: the object the runtime samples from (the policy side of the runtime boundary).

The runtime (``rtc_ros.runtime.generator``) uses only this interface, so an adapter for another
framework (its own processors, its own time convention) can stand in for it:

* ``encode(obs) -> context``: the observation, raw, is either a mapping of named arrays -- one
  observation, as the robot assembles it: the joint-position entry ``(M,)`` and camera frames
  ``(H, W, 3)`` uint8 under the names of the spec's ``obs_spec`` -- or a flat raw batch ``(B, O)``
  already laid out as ``obs_spec`` says (the Figure 5 harness). Normalisation belongs to the policy.
  Runs once per chunk, without autograd.
* ``velocity(a_tau, context, tau)``: per denoising step, in the policy's action space (tau: 0 =
  noise, 1 = data).
* ``normalize_actions`` / ``unnormalize_actions``: raw joint units <-> the policy's action space. (A spec
  with ``robot_units`` is wrapped in :class:`~rtc_ros.policies.units.RobotUnitsPolicy`: "raw" is then the
  robot's units, converted into the policy's before this.)
* ``typical_observation()``: a flat raw observation (the normalisation mean), for warm-up and checks.
* optional ``supports_per_position_tau`` / ``prefix_conditioning``: whether ``velocity`` accepts one
  flow time per position ``(B, H)``, and the largest prefix length the policy was trained to be
  given (spec field ``training.prefix_conditioning``; 0 = none) -- what training-time RTC
  (method ``rtc_trained``) needs. Default: False / 0.
* optional ``sample_dim``: the dimension sampled and guided in, when the policy pads its action space
  (LeRobot's ``max_action_dim``, :mod:`rtc_ros.policies.lerobot_adapter`); ``normalize_actions``
  then maps ``(..., M)`` to ``(..., sample_dim)`` and ``unnormalize_actions`` back. Default: M.
* optional ``chunk_offset``: positions sampled before the observation's step (LeRobot's Diffusion Policy
  predicts from its oldest observation on: ``n_obs_steps - 1``, :mod:`rtc_ros.policies.lerobot_diffusion`);
  ``normalize_actions`` then maps ``(..., H, M)`` to ``(..., chunk_offset + H, sample_dim)`` (the leading
  positions zero: unguided) and ``unnormalize_actions`` drops them. Default: 0.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from rtc_ros.policies.base import FlowPolicy, Normalizer
from rtc_ros.policies.observation import JOINT_ENTRY_NAMES, ObservationBuilder


@dataclass
class LoadedPolicy:
    """A base policy ready for sampling: model (eval mode, on ``device``) + normalisation + layout."""

    model: FlowPolicy
    normalizer: Normalizer
    spec: dict[str, Any]
    path: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        """Observations, samples and guidance are float32: a model in another precision would fail on its first
        matrix product with an error naming no field (a model that autocasts inside keeps float32 parameters)."""
        params = self.model.parameters() if isinstance(self.model, torch.nn.Module) else ()
        other = sorted({str(p.dtype) for p in params if p.is_floating_point() and p.dtype != torch.float32})
        if other:
            raise ValueError(f"model: parameters in {', '.join(other)}; rtc_ros samples in float32 (observations, "
                             "actions and the guidance's autograd): convert it with model.float(), or run "
                             "reduced precision inside the model (torch.autocast) with float32 parameters")
        if isinstance(self.model, torch.nn.Module) and self.model.training:
            warnings.warn("LoadedPolicy: the model is in train mode (dropout and batch norm make each chunk "
                          "differ); call model.eval() first", stacklevel=3)

    @property
    def horizon(self) -> int:
        return self.model.horizon

    def unclamped(self) -> Any:
        """The model without its explicit clamps while inside (a diffusion model's ``clip_sample``), for gradient
        checks; a model without any: nothing changes."""
        return getattr(self.model, "unclamped", nullcontext)()

    @property
    def horizon_source(self) -> str:
        """Where H is set, for errors: the spec's ``config.horizon`` (or the model's own default)."""
        return "the spec's config.horizon" if "horizon" in (self.spec.get("config") or {}) else "the model's default"

    @property
    def action_dim(self) -> int:
        return self.model.action_dim

    @property
    def obs_dim(self) -> int:
        return self.model.obs_dim

    @property
    def n_steps(self) -> int:
        return int(self.spec.get("n_steps", 5))

    @property
    def supports_per_position_tau(self) -> bool:
        """Whether the model's velocity accepts per-position flow time ``(B, H)``."""
        return bool(getattr(self.model, "supports_per_position_tau", False))

    @property
    def prefix_conditioning(self) -> int:
        """Largest prefix length ``d`` the policy was trained with (spec ``training.prefix_conditioning``; 0: none)."""
        training = self.spec.get("training") or {}
        return int(training.get("prefix_conditioning", 0)) if isinstance(training, dict) else 0

    @property
    def joint_names(self) -> list[str] | None:
        return self.spec.get("joint_names")

    @property
    def obs_spec(self) -> list[dict[str, Any]]:
        return list(self.spec.get("obs_spec") or [{"name": "obs", "shape": [self.obs_dim]}])

    # ------------------------------------------------------------------------------ observations
    @cached_property
    def observation_builder(self) -> ObservationBuilder:
        """Lays out a structured observation as the flat vector the model was trained on.

        Raises:
            ValueError: the spec's ``obs_spec`` has entries a robot cannot fill (see
                :class:`~rtc_ros.policies.observation.ObservationBuilder`).
        """
        joints = [e for e in self.obs_spec if len(e["shape"]) in (1, 2) and e["name"] in JOINT_ENTRY_NAMES]
        n = int(joints[0]["shape"][-1]) if joints else self.action_dim
        return ObservationBuilder(self.obs_spec, n)

    @property
    def joint_entry(self) -> str | None:
        """Name of the joint-position entry of ``obs_spec`` (None if there is none)."""
        return next((e.name for e in self.observation_builder.entries if e.kind == "joints"), None)

    def typical_observation(self) -> np.ndarray:
        """A flat raw observation ``(O,)``: the normalisation mean."""
        return np.asarray(self.normalizer.obs_mean, dtype=np.float32)

    def _flat(self, obs: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(obs, Mapping):
            builder = self.observation_builder
            joints = obs.get(self.joint_entry) if self.joint_entry else np.zeros(builder.num_joints)
            if joints is None:
                raise ValueError(f"observation lacks the joint entry '{self.joint_entry}'")
            flat = builder.build(np.asarray(joints), {k: v for k, v in obs.items() if k != self.joint_entry})
            return torch.from_numpy(flat)[None]
        x = torch.as_tensor(obs)
        x = x[None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != self.obs_dim:
            raise ValueError(f"flat observations must be (B, {self.obs_dim}), got {tuple(x.shape)}")
        return x

    # ------------------------------------------------------------------------------ the interface
    @cached_property
    def _stats(self) -> tuple[torch.Tensor, ...]:
        n = self.normalizer
        t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.device)  # noqa: E731
        return t(n.obs_mean), t(n.obs_std), t(n.action_mean), t(n.action_std)

    def encode(self, obs: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor) -> Any:
        """Raw observation (a named mapping, or flat ``(B, O)``) -> the model's context (no autograd)."""
        o_mean, o_std, _, _ = self._stats
        x = self._flat(obs).to(self.device, torch.float32)
        if not torch.isfinite(x).all():
            raise ValueError("observation contains NaN or Inf")
        with torch.no_grad():
            return self.model.encode((x - o_mean) / o_std)

    def velocity(self, a_tau: torch.Tensor, context: Any, tau: torch.Tensor) -> torch.Tensor:
        return self.model.velocity(a_tau, context, tau)

    def normalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        _, _, a_mean, a_std = self._stats
        return (a.to(self.device, torch.float32) - a_mean) / a_std

    def unnormalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        _, _, a_mean, a_std = self._stats
        return a * a_std + a_mean
