"""Flow-policy interface and normalisation.

A flow policy is a ``torch.nn.Module`` whose ``forward(a_tau, obs, tau)`` is the velocity field
``v(A^tau, o, tau)`` in *normalised* space:

* ``a_tau``: ``(B, H, M)`` current sample, tau: ``(B,)`` flow time (0 = noise, 1 = data),
* ``obs``: ``(B, O)`` normalised flat observation (layout given by the spec's ``obs_spec``),
* returns ``(B, H, M)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class FlowPolicy(nn.Module):
    """Base class: subclasses set ``horizon``, ``action_dim``, ``obs_dim`` and implement forward."""

    horizon: int
    action_dim: int
    obs_dim: int

    def forward(self, a_tau: torch.Tensor, obs: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:  # noqa: D102
        raise NotImplementedError


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
