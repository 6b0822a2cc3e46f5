"""Conditional flow matching on arrays (tau: 0 = noise, 1 = data).

``x_tau = (1 - tau) noise + tau action``, target velocity ``action - noise``, MSE loss.

Training-time RTC (``TrainConfig.prefix_conditioning = D > 0``; Black et al., arXiv 2512.05964): per
sample a prefix length ``d ~ U{0, ..., D}`` (uniform over the integers, as LeRobot's implementation;
the paper also discusses weighting short delays more), positions ``< d`` are the clean actions at flow
time 1, the rest at the sample's ``tau`` (per-position flow time, ``(B, H)``), and the loss covers
only positions ``>= d``. The policy then completes a chunk whose first ``d`` actions are given
(:func:`rtc_ros.core.sampling.sample_prefix_conditioned`). The spec records ``D`` as
``training.prefix_conditioning`` (:func:`training_spec`).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

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
    max_minutes: float | None = None  # wall-clock budget: the rest of the schedule is compressed to fit
    prefix_conditioning: int = 0  # training-time RTC: largest prefix length D (d ~ U{0..D}); 0 = off
    ema_decay: float = 0.0  # > 0: keep an exponential moving average of the weights and return it
    min_lr_ratio: float = 0.0  # the cosine decay ends at lr * min_lr_ratio

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"TrainConfig.steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"TrainConfig.batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"TrainConfig.max_minutes must be > 0 or None, got {self.max_minutes}")
        if isinstance(self.prefix_conditioning, bool) or not isinstance(self.prefix_conditioning, int) \
                or self.prefix_conditioning < 0:
            raise ValueError(f"TrainConfig.prefix_conditioning must be an integer >= 0, got {self.prefix_conditioning!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"TrainConfig.ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"TrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if any(not 0 < s <= self.steps for s in self.checkpoint_steps):
            raise ValueError(f"TrainConfig.checkpoint_steps must lie in (0, steps], got {self.checkpoint_steps}")


@dataclass
class TrainResult:
    losses: list[float]
    normalizer: Normalizer
    checkpoints: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)


def flow_matching_loss(model: FlowPolicy, obs: torch.Tensor, actions: torch.Tensor, gen: torch.Generator,
                       prefix_conditioning: int = 0) -> torch.Tensor:
    """MSE between ``model(x_tau, obs, tau)`` and ``actions - noise``; all normalised, ``(B, H, M)``.

    With ``prefix_conditioning = D > 0`` (training-time RTC, module docstring): ``d ~ U{0..D}`` per
    sample, positions ``< d`` clean at flow time 1, ``tau`` per position ``(B, H)``, loss on positions
    ``>= d`` only (mean over those elements). ``D = 0`` is plain flow matching (same random stream).
    """
    check_prefix_conditioning(model, prefix_conditioning)
    noise = torch.randn(actions.shape, generator=gen)
    tau = torch.rand(actions.shape[0], generator=gen)
    if prefix_conditioning == 0:
        x_tau = (1 - tau)[:, None, None] * noise + tau[:, None, None] * actions
        return torch.mean((model(x_tau, obs, tau) - (actions - noise)) ** 2)
    B, H, M = actions.shape
    d = torch.randint(0, prefix_conditioning + 1, (B,), generator=gen)
    in_prefix = torch.arange(H)[None, :] < d[:, None]  # (B, H)
    tau_pos = torch.where(in_prefix, torch.ones(()), tau[:, None])  # (B, H)
    x_tau = (1 - tau_pos)[:, :, None] * noise + tau_pos[:, :, None] * actions  # prefix = the clean actions
    err = (model(x_tau, obs, tau_pos) - (actions - noise)) ** 2
    keep = (~in_prefix)[:, :, None].to(err.dtype)
    return (err * keep).sum() / (keep.sum() * M)


def check_prefix_conditioning(model: FlowPolicy, prefix_conditioning: int) -> None:
    """ValueError (naming ``TrainConfig.prefix_conditioning``) unless ``0 <= D < H`` and, for ``D > 0``,
    the model accepts per-position flow time (``supports_per_position_tau``)."""
    if prefix_conditioning == 0:
        return
    if not 0 < prefix_conditioning < model.horizon:
        raise ValueError(f"TrainConfig.prefix_conditioning must be in [0, H - 1 = {model.horizon - 1}], "
                         f"got {prefix_conditioning}")
    if not getattr(model, "supports_per_position_tau", False):
        raise ValueError(f"TrainConfig.prefix_conditioning = {prefix_conditioning} needs per-position flow time, "
                         f"which {type(model).__name__} does not support (supports_per_position_tau)")


def training_spec(config: TrainConfig) -> dict[str, Any]:
    """What a spec records about training that sampling depends on: ``{"training": {"prefix_conditioning":
    D}}`` (``D = 0``: not trained for training-time RTC)."""
    return {"training": {"prefix_conditioning": int(config.prefix_conditioning)}}


#: ``sample(batch_size, generator) -> (obs (B, O), actions (B, H, M))``, both normalised tensors.
BatchSampler = Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def fit_flow(model: FlowPolicy, sample: BatchSampler, config: TrainConfig) -> tuple[list[float], dict[int, dict[str, torch.Tensor]]]:
    """The one flow-matching training loop: AdamW, linear warm-up then cosine decay (to
    ``min_lr_ratio``), grad clipping, checkpoints and a tqdm progress bar. ``sample`` draws
    normalised batches (so callers can do augmentation or keep images compact). With
    ``config.max_minutes`` the remaining schedule is compressed when the measured step time would
    overrun the budget.

    With ``config.ema_decay > 0`` an exponential moving average of the weights is kept (decay
    ``min(ema_decay, (1 + step) / (10 + step))``, the usual warm-up so early weights fade fast) and
    loaded into ``model`` at the end: the model returned, evaluated and shipped is the EMA.
    Checkpoints hold the raw weights.
    ``config.prefix_conditioning`` switches the loss to training-time RTC's (:func:`flow_matching_loss`);
    everything else is the same.

    Returns:
        (per-step losses, checkpoints by step).
    """
    cfg = config
    check_prefix_conditioning(model, cfg.prefix_conditioning)
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses: list[float] = []
    checkpoints: dict[int, dict[str, torch.Tensor]] = {}
    total = cfg.steps
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc="train", disable=not cfg.progress, mininterval=1.0)
    step = 0
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()} if cfg.ema_decay > 0 else None
    while step < total:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_scale(step, total, cfg.warmup_steps, cfg.min_lr_ratio)
        obs, actions = sample(cfg.batch_size, gen)
        loss = flow_matching_loss(model, obs, actions, gen, cfg.prefix_conditioning)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if ema is not None:
            decay = min(cfg.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for k, v in model.state_dict().items():
                    if v.dtype.is_floating_point:
                        ema[k].lerp_(v, 1 - decay)
                    else:
                        ema[k].copy_(v)
        losses.append(loss.item())
        step += 1
        bar.update(1)
        if step in cfg.checkpoint_steps:
            checkpoints[step] = copy.deepcopy(model.state_dict())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
            if cfg.max_minutes is not None:
                elapsed = time.perf_counter() - t0
                budget = step + int((cfg.max_minutes * 60 - elapsed) / (elapsed / step))
                if budget < total:
                    log.warning("%.0f ms/step: reducing steps %d -> %d to stay within %.0f min",
                                1e3 * elapsed / step, total, max(budget, step + 1), cfg.max_minutes)
                    total = max(budget, step + 1)
                    bar.total = total
    bar.close()
    if ema is not None:
        model.load_state_dict(ema)
    model.eval()
    return losses, checkpoints


def lr_scale(step: int, total: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """The learning rate's factor at ``step`` of ``total``: a linear warm-up over ``min(warmup_steps, total // 10)``
    steps (a run shorter than ten warm-ups, or cut so by ``max_minutes``, never reached its peak nor decayed -- an
    audit; the shipped recipes' >= 2000 steps are unchanged), then a cosine down to ``min_lr_ratio``."""
    warm = min(warmup_steps, max(1, total // 10))
    if step < warm:
        return (step + 1) / warm
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))
    return min_lr_ratio + (1 - min_lr_ratio) * cos


def train_flow_policy(
    model: FlowPolicy,
    obs: np.ndarray,
    actions: np.ndarray,
    config: TrainConfig | None = None,
    normalizer: Normalizer | None = None,
    obs_spec: list[dict[str, Any]] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``obs (N, O)`` and ``actions (N, H, M)`` (raw units).

    The normaliser is fitted on the data unless given: per ``obs_spec`` entry when given (per
    element, per image channel: :func:`rtc_ros.policies.stats.fit_normalizer`, what
    :func:`rtc_ros.policies.spec.save_policy` can store for image entries), else per dimension.
    Checkpoints (state-dict copies) are kept at ``config.checkpoint_steps`` -- e.g. an early one as
    BID's weak policy.
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
    if normalizer is None:  # (without an obs_spec: one flat entry, so a barely varying input is warned about and
        # floored alike -- an audit: Normalizer.fit floored it at 1e-6 silently, a 1 mrad drift became 1000 stds)
        from rtc_ros.policies.spec import default_obs_spec
        from rtc_ros.policies.stats import fit_normalizer

        normalizer = fit_normalizer(obs, actions, obs_spec or default_obs_spec(obs.shape[1]))
    norm = normalizer
    o = torch.from_numpy(norm.norm_obs(obs))
    a = torch.from_numpy(norm.norm_actions(actions))

    def sample(batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, o.shape[0], (min(batch, o.shape[0]),), generator=gen)
        return o[idx], a[idx]

    losses, checkpoints = fit_flow(model, sample, cfg)
    return TrainResult(losses=losses, normalizer=norm, checkpoints=checkpoints)
