"""Flow-policy interface and normalisation.

A flow policy is a ``torch.nn.Module`` with the velocity field ``v(A^tau, o, tau)`` in *normalised*
space, split so that the observation is encoded once per chunk:

* ``encode(obs) -> context``: once per chunk, no autograd (image encoder, VLM prefix, KV cache ...);
  ``obs``: ``(B, O)`` normalised flat observation (layout given by the spec's ``obs_spec``); the
  context is a tensor or a tuple/list/dict of tensors whose first dimension is the batch;
* ``velocity(a_tau, context, tau) -> (B, H, M)``: per denoising step, the only thing RTC's exact VJP
  goes through; ``a_tau``: ``(B, H, M)``, ``tau``: ``(B,)`` flow time (0 = noise, 1 = data);
* ``forward(a_tau, obs, tau) = velocity(a_tau, encode(obs), tau)`` (training uses it);
* optional capability ``supports_per_position_tau = True`` (class attribute): ``velocity`` (and
  ``forward``) also accept ``tau (B, H)``, one flow time per chunk position, and give the ``(B,)``
  result when all positions are equal. Training-time RTC needs it (method ``rtc_trained``: the frozen
  prefix at tau = 1; :func:`rtc_ros.core.sampling.sample_prefix_conditioned`,
  ``TrainConfig.prefix_conditioning``).

A model that does not split defines ``forward`` only: ``encode`` is then the identity and
``velocity`` is ``forward``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


class FlowPolicy(nn.Module):
    """Base class: subclasses set ``horizon``, ``action_dim``, ``obs_dim`` and implement forward."""

    horizon: int
    action_dim: int
    obs_dim: int
    #: whether ``velocity`` accepts per-position flow time ``tau (B, H)`` (see the module docstring)
    supports_per_position_tau: bool = False

    def forward(self, a_tau: torch.Tensor, obs: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if type(self).velocity is FlowPolicy.velocity:
            raise NotImplementedError(f"{type(self).__name__} must define forward or encode/velocity")
        return self.velocity(a_tau, self.encode(obs), tau)

    def encode(self, obs: torch.Tensor) -> Any:
        """Per-chunk observation context (default: the observation itself)."""
        return obs

    def velocity(self, a_tau: torch.Tensor, context: Any, tau: torch.Tensor) -> torch.Tensor:
        """Per-step velocity ``(B, H, M)`` given the context of :meth:`encode` (default: ``forward``)."""
        return self.forward(a_tau, context, tau)


@dataclass
class Normalizer:
    """Per-dimension affine normalisation ``(x - mean) / std`` for observations and actions.

    Attributes:
        obs_mean, obs_std: ``(O,)``. action_mean, action_std: ``(M,)``. ``std`` is floored at
        ``1e-6`` so constant dimensions do not divide by zero.
    """

    obs_mean: np.ndarray
    obs_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray

    def __post_init__(self) -> None:
        for name in ("obs_mean", "obs_std", "action_mean", "action_std"):
            arr = np.asarray(getattr(self, name), dtype=np.float32).reshape(-1)
            if not np.isfinite(arr).all():
                raise ValueError(f"normalization.{name} contains NaN or Inf")
            setattr(self, name, arr)
        if self.obs_mean.shape != self.obs_std.shape:
            raise ValueError(f"normalization obs_mean {self.obs_mean.shape} != obs_std {self.obs_std.shape}")
        if self.action_mean.shape != self.action_std.shape:
            raise ValueError(
                f"normalization action_mean {self.action_mean.shape} != action_std {self.action_std.shape}"
            )
        if (self.obs_std < 0).any() or (self.action_std < 0).any():
            raise ValueError("normalization std must be >= 0")
        self.obs_std = np.maximum(self.obs_std, 1e-6)
        self.action_std = np.maximum(self.action_std, 1e-6)

    @classmethod
    def identity(cls, obs_dim: int, action_dim: int) -> "Normalizer":
        return cls(np.zeros(obs_dim), np.ones(obs_dim), np.zeros(action_dim), np.ones(action_dim))

    @classmethod
    def fit(cls, obs: np.ndarray, actions: np.ndarray) -> "Normalizer":
        """Fit from ``obs (N, O)`` and ``actions (N, H, M)`` (or ``(N, M)``)."""
        a = np.asarray(actions, dtype=np.float64).reshape(-1, np.shape(actions)[-1])
        o = np.asarray(obs, dtype=np.float64)
        return cls(o.mean(0), o.std(0), a.mean(0), a.std(0))

    def norm_obs(self, obs: np.ndarray) -> np.ndarray:
        return ((np.asarray(obs, dtype=np.float32) - self.obs_mean) / self.obs_std).astype(np.float32)

    def norm_actions(self, a: np.ndarray) -> np.ndarray:
        return ((np.asarray(a, dtype=np.float32) - self.action_mean) / self.action_std).astype(np.float32)

    def denorm_actions(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=np.float64) * self.action_std + self.action_mean

    def as_dict(self) -> dict[str, list[float]]:
        return {k: [float(x) for x in getattr(self, k)] for k in ("obs_mean", "obs_std", "action_mean", "action_std")}
