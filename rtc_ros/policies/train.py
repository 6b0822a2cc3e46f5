"""Conditional flow matching on arrays (tau: 0 = noise, 1 = data).

``x_tau = (1 - tau) noise + tau action``, target velocity ``action - noise``, MSE loss.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from rtc_ros.policies.base import FlowPolicy, Normalizer

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Training hyper-parameters; validated on construction."""

    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    seed: int = 0
    grad_clip: float = 1.0
    checkpoint_steps: tuple[int, ...] = ()
    progress: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"TrainConfig.steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"TrainConfig.batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if any(not 0 < s <= self.steps for s in self.checkpoint_steps):
            raise ValueError(f"TrainConfig.checkpoint_steps must lie in (0, steps], got {self.checkpoint_steps}")


@dataclass
class TrainResult:
    losses: list[float]
    normalizer: Normalizer
    checkpoints: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)


def flow_matching_loss(model: FlowPolicy, obs: torch.Tensor, actions: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """MSE between ``model(x_tau, obs, tau)`` and ``actions - noise``; all normalised, ``(B, H, M)``."""
    noise = torch.randn(actions.shape, generator=gen)
    tau = torch.rand(actions.shape[0], generator=gen)
    x_tau = (1 - tau)[:, None, None] * noise + tau[:, None, None] * actions
    return torch.mean((model(x_tau, obs, tau) - (actions - noise)) ** 2)


def train_flow_policy(
    model: FlowPolicy,
    obs: np.ndarray,
    actions: np.ndarray,
    config: TrainConfig | None = None,
    normalizer: Normalizer | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``obs (N, O)`` and ``actions (N, H, M)`` (raw units).

    The normaliser is fitted on the data unless given. Checkpoints (state-dict copies) are kept at
    ``config.checkpoint_steps`` -- e.g. an early one as BID's weak policy.
    """
    cfg = config or TrainConfig()
    obs = np.asarray(obs, dtype=np.float32)
    actions = np.asarray(actions, dtype=np.float32)
    if obs.ndim != 2 or actions.ndim != 3 or obs.shape[0] != actions.shape[0]:
        raise ValueError(f"need obs (N, O) and actions (N, H, M) with equal N; got {obs.shape}, {actions.shape}")
    if actions.shape[1:] != (model.horizon, model.action_dim) or obs.shape[1] != model.obs_dim:
        raise ValueError(
            f"data shapes obs {obs.shape}, actions {actions.shape} do not match the model "
            f"(O={model.obs_dim}, H={model.horizon}, M={model.action_dim})"
        )
    if not (np.isfinite(obs).all() and np.isfinite(actions).all()):
        raise ValueError("training data contains NaN or Inf")
    norm = normalizer or Normalizer.fit(obs, actions)
    o = torch.from_numpy(norm.norm_obs(obs))
    a = torch.from_numpy(norm.norm_actions(actions))
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses: list[float] = []
    checkpoints: dict[int, dict[str, torch.Tensor]] = {}
    bar = tqdm(range(1, cfg.steps + 1), desc="train", disable=not cfg.progress, mininterval=1.0)
    for step in bar:
        idx = torch.randint(0, o.shape[0], (min(cfg.batch_size, o.shape[0]),), generator=gen)
        loss = flow_matching_loss(model, o[idx], a[idx], gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if step in cfg.checkpoint_steps:
            checkpoints[step] = copy.deepcopy(model.state_dict())
    model.eval()
    return TrainResult(losses=losses, normalizer=norm, checkpoints=checkpoints)
