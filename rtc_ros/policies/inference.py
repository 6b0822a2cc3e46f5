"""Chunk generation for every method, in real (un-normalised) units.

This is GUIDEDINFERENCE of Algorithm 1 plus the baselines, wrapped so that callers (the ROS node,
the demo, benchmarks) hand in raw observations and the previous chunk's remaining actions and get a
raw chunk back. All maths lives in :mod:`rtc_ros.core`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rtc_ros.core.bid import bid_sample
from rtc_ros.core.masks import prefix_weights
from rtc_ros.core.methods import GUIDED_SCHEDULE, check_method
from rtc_ros.core.sampling import sample_guided, sample_plain
from rtc_ros.policies.spec import LoadedPolicy


@dataclass
class GeneratorConfig:
    """Sampling settings. ``beta``: guidance clip (> 0); ``n_steps``: Euler steps; BID settings."""

    method: str = "rtc"
    beta: float = 5.0
    n_steps: int = 5
    bid_samples: int = 16
    bid_k: int = 3
    jacobian: str = "exact"
    seed: int = 0

    def __post_init__(self) -> None:
        check_method(self.method)
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if self.n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {self.n_steps}")
        if self.bid_samples < 1 or not 1 <= self.bid_k <= self.bid_samples:
            raise ValueError(f"need bid_samples >= 1 and 1 <= bid_k <= bid_samples, got {self.bid_samples}, {self.bid_k}")
        if self.jacobian not in ("exact", "identity_approx"):
            raise ValueError(f"jacobian must be 'exact' or 'identity_approx', got {self.jacobian!r}")


def pad_hold(remaining: np.ndarray, horizon: int) -> np.ndarray:
    """``(L, M)`` remaining actions (index 0 = now), ``1 <= L``, -> ``(H, M)`` holding the last one."""
    if remaining.ndim != 2 or remaining.shape[0] < 1:
        raise ValueError(f"remaining actions must be (L>=1, M), got {remaining.shape}")
    if remaining.shape[0] >= horizon:
        return remaining[:horizon].copy()
    pad = np.repeat(remaining[-1:], horizon - remaining.shape[0], axis=0)
    return np.concatenate([remaining, pad], axis=0)


class ChunkGenerator:
    """Produce one chunk ``(H, M)`` in raw units from a raw observation.

    Args:
        policy: the loaded base policy.
        config: method and sampling settings.
        weak_policy: BID's weak policy (optional; without it BID uses backward coherence only).
    """

    def __init__(self, policy: LoadedPolicy, config: GeneratorConfig, weak_policy: LoadedPolicy | None = None) -> None:
        self.policy = policy
        self.config = config
        self.weak_policy = weak_policy
        self._gen = torch.Generator(device="cpu").manual_seed(config.seed)

    def _obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape != (self.policy.obs_dim,):
            raise ValueError(f"observation must have shape ({self.policy.obs_dim},), got {obs.shape}")
        if not np.isfinite(obs).all():
            raise ValueError("observation contains NaN or Inf")
        return torch.from_numpy(self.policy.normalizer.norm_obs(obs))[None].to(self.policy.device)

    def generate(self, obs: np.ndarray, prev_remaining: np.ndarray | None = None, d: int = 0, s: int = 1) -> np.ndarray:
        """Sample a chunk.

        Args:
            obs: raw flat observation ``(O,)``.
            prev_remaining: the executing chunk's actions from the observation step on, raw units,
                ``(L, M)`` with index 0 = the step the observation was taken; ``None`` for the first
                chunk (or for methods that ignore it).
            d: forecast inference delay (frozen leading actions).
            s: execution horizon (soft mask ends at ``H - s``).

        Returns:
            ``(H, M)`` float64 chunk in raw units.
        """
        H, M = self.policy.horizon, self.policy.action_dim
        o = self._obs_tensor(obs)
        noise = torch.randn((1, H, M), generator=self._gen).to(self.policy.device)
        vel = self.policy.model
        method = self.config.method
        prefix = None
        if prev_remaining is not None and method in (*GUIDED_SCHEDULE, "bid"):
            prev = np.asarray(prev_remaining, dtype=np.float64)
            if prev.ndim != 2 or prev.shape[1] != M:
                raise ValueError(f"prev_remaining must be (L, {M}), got {prev.shape}")
            if not np.isfinite(prev).all():
                raise ValueError("prev_remaining contains NaN or Inf")
            y = self.policy.normalizer.norm_actions(pad_hold(prev, H))
            prefix = torch.from_numpy(y)[None].to(self.policy.device)
        if method in GUIDED_SCHEDULE and prefix is not None:
            w = prefix_weights(H, d, s, GUIDED_SCHEDULE[method]).to(self.policy.device)
            out = sample_guided(vel, o, noise, prefix, w, self.config.beta, self.config.n_steps, self.config.jacobian)
        elif method == "bid":
            w = prefix_weights(H, d, s, "exp").to(self.policy.device) if prefix is not None else None
            weak = self.weak_policy.model if self.weak_policy is not None else None
            out = bid_sample(vel, o, prefix, w, self.config.bid_samples, self.config.n_steps, weak,
                             self.config.bid_k, self._gen if self.policy.device.type == "cpu" else None, (H, M))
        else:
            out = sample_plain(vel, o, noise, self.config.n_steps)
        chunk = self.policy.normalizer.denorm_actions(out[0].detach().cpu().numpy())
        if not np.isfinite(chunk).all():
            raise FloatingPointError("policy produced a non-finite chunk")
        return chunk
