"""Diffusion policies (DDPM/DDIM, epsilon-, sample- or v-prediction) as flow policies for RTC.

A variance-preserving diffusion model has ``x_t = a_t x0 + s_t eps`` with ``a_t = sqrt(ab_t)``,
``s_t = sqrt(1 - ab_t)`` (``ab_t`` = ``alphas_cumprod[t]``). Dividing by ``a_t + s_t`` puts it on the
flow path of :mod:`rtc_ros.core` (0 = noise, 1 = data):

    y = x_t / (a_t + s_t) = tau x0 + (1 - tau) eps,   tau = a_t / (a_t + s_t).

Inverse: ``ab(tau) = tau^2 / (tau^2 + (1 - tau)^2)``, i.e. with ``r = sqrt(tau^2 + (1 - tau)^2)``:
``a = tau / r``, ``s = (1 - tau) / r``, ``x_t = y / r``; log-SNR ``lambda = 2 logit(tau)``.
Given the flow state ``y`` at ``tau`` the adapter feeds the network ``x_t = y / r`` at the timestep
``t(tau)`` (the table's log-SNR interpolated linearly in ``t``; or rounded), turns its output into
the data estimate ``x0_hat`` (epsilon: ``(x_t - s eps_hat) / a``; sample: the output; v:
``a x_t - s v_hat``) and returns

    v(y, tau) = (x0_hat - y) / (1 - tau)   (= x0_hat - eps_hat, eps_hat the model's noise estimate),

so RTC's data estimate ``y + (1 - tau) v`` is exactly ``x0_hat``. One Euler step from tau to tau'
gives ``tau' x0_hat + (1 - tau') eps_hat``, which is DDIM's (eta = 0) update
``x_t' = a' x0_hat + s' eps_hat`` divided by ``a' + s'``: Euler on the uniform tau grid IS DDIM on
the timesteps whose tau is ``0, 1/n, ..., 1`` (no approximation).

Endpoints. tau = 0 is pure noise (``ab = 0``, ``y = x_t = eps``), below every level of the table: the
network is evaluated at ``t = max_timestep`` on ``x_t = y`` (what DDIM does with ``x_T = noise``) and
``x0_hat`` uses that level's ``(a, s)``; the step keeps ``eps = y`` (exact at pure noise). An epsilon
network's ``x0_hat = (x_t - s eps_hat) / a`` amplifies its error by ``s / a`` there (~2000 at the last
level of a 100-step cosine schedule), so query pure noise no noisier than DDIM does (``T - T / n``,
"leading" spacing; default ``T - 1``). Every other flow time is queried at its own level (until
2026-12-06 those below ``tau(max_timestep)`` were clamped to it too: with ``max_timestep = T - T / n`` on
a cosine schedule that was the second step, ``tau = 1 / n``, so that step was not DDIM's); a flow time
beyond the table's ends uses its end (``t = T - 1`` or ``t = 0``, ``tau_hi = tau(ab_0) < 1``). tau = 1 is the data
(``ab = 1``, ``y = x0``): never evaluated; the last Euler step from ``(n-1)/n`` lands on ``x0_hat``,
DDIM's final step with ``alpha_prod = 1``. ``clip_sample`` clamps ``x0_hat`` (LeRobot/diffusers
``clip_sample``); the eps of the step is then recomputed from the clamped ``x0_hat``
(diffusers' ``use_clipped_model_output=True``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from rtc_ros.policies.base import FlowPolicy, Normalizer
from rtc_ros.policies.mixer import MixerConfig, MLPMixerPolicy

PredictionType = Literal["epsilon", "sample", "v_prediction"]
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "sample", "v_prediction")
BETA_SCHEDULES: tuple[str, ...] = ("squaredcos_cap_v2", "linear", "scaled_linear")


def alphas_cumprod_schedule(num_train_timesteps: int, schedule: str = "squaredcos_cap_v2",
                            beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """``alphas_cumprod`` ``(T,)`` float64 of a diffusers beta schedule (same names and formulas).

    ``linear``: ``betas = linspace(beta_start, beta_end, T)``; ``scaled_linear``: the linear schedule
    in ``sqrt(beta)``; ``squaredcos_cap_v2``: ``ab(t) = cos^2((t / T + 0.008) / 1.008 pi / 2)``
    with betas capped at 0.999 (Nichol & Dhariwal; LeRobot's DiffusionPolicy default).
    """
    if num_train_timesteps < 2:
        raise ValueError(f"num_train_timesteps must be >= 2, got {num_train_timesteps}")
    T = num_train_timesteps
    if schedule == "linear":
        betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    elif schedule == "scaled_linear":
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2
    elif schedule == "squaredcos_cap_v2":
        f = lambda t: math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        betas = torch.tensor([min(1 - f(i + 1) / f(i), 0.999) for i in range(T)], dtype=torch.float64)
    else:
        raise ValueError(f"unknown beta schedule {schedule!r}; expected one of {BETA_SCHEDULES}")
    return torch.cumprod(1.0 - betas, 0)


def tau_of_alpha_bar(alpha_bar: torch.Tensor) -> torch.Tensor:
    """``tau = sqrt(ab) / (sqrt(ab) + sqrt(1 - ab))`` (0 = noise, 1 = data)."""
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    return a / (a + s)


def alpha_bar_of_tau(tau: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`tau_of_alpha_bar`: ``ab = tau^2 / (tau^2 + (1 - tau)^2)``."""
    return tau**2 / (tau**2 + (1 - tau) ** 2)


class DiffusionFlowPolicy(FlowPolicy):
    """A diffusion noise network as a :class:`FlowPolicy` (see the module docstring for the maths).

    Args:
        net: ``net(x_t (B,H,M), context, t (B,) float diffusion timestep) -> (B,H,M)`` (its
            prediction type below); if it has ``encode(obs) -> context`` that runs once per chunk,
            otherwise the context is the observation.
        alphas_cumprod: ``(T,)`` strictly decreasing in ``(0, 1)`` (the scheduler's table).
        horizon, action_dim, obs_dim: chunk ``H``, ``M`` and flat observation ``O``.
        prediction_type: ``epsilon``, ``sample`` (x0) or ``v_prediction`` (``a eps - s x0``).
        timesteps: ``continuous`` (fractional ``t``, for networks that embed ``t`` continuously,
            e.g. sinusoidally) or ``round`` (nearest integer ``t`` and that level's ``(a, s)``; for
            embedding tables; exact when the tau grid lands on table timesteps).
        clip_sample: clamp ``x0_hat`` to ``[-c, c]`` (None: no clamp).
        max_timestep: the timestep pure noise (tau = 0) is evaluated at (default ``T - 1``); other flow
            times are evaluated at their own level. An epsilon network's ``x0_hat = (x_t - s eps_hat) / a``
            amplifies its error by ``s / a``, ~2000 at the last level of a 100-step cosine schedule;
            DDIM in diffusers/LeRobot starts at ``t = T - T / n`` ("leading" spacing) for that reason.
    """

    def __init__(self, net: nn.Module, alphas_cumprod: torch.Tensor | np.ndarray, horizon: int, action_dim: int,
                 obs_dim: int, prediction_type: PredictionType = "epsilon",
                 timesteps: Literal["continuous", "round"] = "continuous", clip_sample: float | None = None,
                 max_timestep: int | None = None) -> None:
        super().__init__()
        ab = torch.as_tensor(alphas_cumprod, dtype=torch.float64).detach().cpu().reshape(-1)
        if ab.numel() < 2 or not ((ab > 0) & (ab < 1)).all() or not (ab[1:] < ab[:-1]).all():
            raise ValueError("alphas_cumprod must be (T >= 2,) strictly decreasing in (0, 1)")
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
        if timesteps not in ("continuous", "round"):
            raise ValueError(f"timesteps must be 'continuous' or 'round', got {timesteps!r}")
        max_timestep = ab.numel() - 1 if max_timestep is None else int(max_timestep)
        if not 0 < max_timestep < ab.numel():
            raise ValueError(f"max_timestep must be in [1, T - 1 = {ab.numel() - 1}], got {max_timestep}")
        if clip_sample is not None and not clip_sample > 0:
            raise ValueError(f"clip_sample must be > 0 or None, got {clip_sample}")
        self.net = net
        self.horizon, self.action_dim, self.obs_dim = horizon, action_dim, obs_dim
        self.prediction_type, self.timesteps, self.clip_sample = prediction_type, timesteps, clip_sample
        self.max_timestep = max_timestep
        self.register_buffer("alphas_cumprod", ab, persistent=False)
        # log-SNR lambda_t = log(ab / (1 - ab)), flipped to increase (index j <-> t = T - 1 - j)
        self.register_buffer("_log_snr_inc", (ab.log() - (-ab).log1p()).flip(0), persistent=False)

    @property
    def tau_range(self) -> tuple[float, float]:
        """``(tau_lo, tau_hi)``: the flow times of the level pure noise is evaluated at (``max_timestep``) and of
        the cleanest level (0)."""
        tau = tau_of_alpha_bar(self.alphas_cumprod)
        return float(tau[self.max_timestep]), float(tau[0])

    def timestep_of_tau(self, tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map flow time ``(B,)`` to (diffusion timestep ``t`` (B,) float, the flow time ``tau_m`` of
        the level the network is evaluated at): ``tau``'s own level (within the table), pure noise's at
        ``max_timestep``, or that of the rounded ``t``."""
        lam_tab = self._log_snr_inc.to(tau.dtype)
        last = lam_tab.shape[0] - 1
        lam = (2.0 * (torch.log(tau) - torch.log1p(-tau))).clamp(lam_tab[0], lam_tab[-1])
        lam = torch.where(tau > 0, lam, lam_tab[last - self.max_timestep])  # pure noise: DDIM's first level
        j = torch.searchsorted(lam_tab, lam.contiguous()).clamp(1, last)
        lo, hi = lam_tab[j - 1], lam_tab[j]
        t = last - (j - 1 + ((lam - lo) / (hi - lo)).clamp(0.0, 1.0))
        if self.timesteps == "round":
            t = t.round()
            lam = lam_tab[(last - t).long()]
        return t, torch.sigmoid(0.5 * lam)  # tau = sigmoid(lambda / 2)

    def encode(self, obs: torch.Tensor) -> Any:
        """The network's ``encode(obs)`` (once per chunk) if it has one, else ``obs``."""
        return self.net.encode(obs) if hasattr(self.net, "encode") else obs

    def denoise(self, y: torch.Tensor, context: Any, tau: torch.Tensor) -> torch.Tensor:
        """Data estimate ``x0_hat (B,H,M)`` of the flow state ``y`` at flow time ``tau (B,)``."""
        t, tau_m = self.timestep_of_tau(tau)
        r = (tau**2 + (1 - tau) ** 2).sqrt()[:, None, None]
        r_m = (tau_m**2 + (1 - tau_m) ** 2).sqrt()[:, None, None]
        a_m, s_m = tau_m[:, None, None] / r_m, (1 - tau_m)[:, None, None] / r_m
        x_t = y / r
        out = self.net(x_t, context, t)
        if torch.is_grad_enabled() and y.requires_grad and not out.requires_grad:  # v = (x0 - y) / (1 - tau) would
            raise ValueError("the diffusion network's output is not differentiable with respect to its input x_t "
                             "(torch.no_grad, detach or numpy inside): exact guidance needs its Jacobian, which "
                             "would silently be dropped (v keeps the -y term's)")
        if self.prediction_type == "epsilon":
            x0 = (x_t - s_m * out) / a_m
        elif self.prediction_type == "sample":
            x0 = out
        else:
            x0 = a_m * x_t - s_m * out
        return x0 if self.clip_sample is None else x0.clamp(-self.clip_sample, self.clip_sample)

    @contextmanager
    def unclamped(self) -> Iterator[None]:
        """The velocity without ``clip_sample``'s clamp while inside (for :func:`~rtc_ros.runtime.velocity_checks.
        gradient_check`: the clamp's kinks make a finite difference across them disagree with autograd's true
        derivative, 0.18 for a LeRobot Diffusion Policy, 0.0000 without it; not a gradient lost outside autograd).
        It changes the model for every caller: not while another thread samples (the checks run before sampling
        starts: ``policy_inference``'s start-up, ``check``, ``rtc_bringup --check``)."""
        clip, self.clip_sample = self.clip_sample, None
        try:
            yield
        finally:
            self.clip_sample = clip

    def velocity(self, a_tau: torch.Tensor, context: Any, tau: torch.Tensor) -> torch.Tensor:
        """``v = (x0_hat - y) / (1 - tau)``; undefined at ``tau = 1`` (never evaluated by Euler)."""
        x0 = self.denoise(a_tau, context, tau)
        return (x0 - a_tau) / (1 - tau).clamp_min(torch.finfo(a_tau.dtype).eps)[:, None, None]


class MixerNoiseNet(nn.Module):
    """The MLP-Mixer as a diffusion network: ``net(x_t, ctx, t)`` embeds ``t / T`` like flow time."""

    def __init__(self, config: MixerConfig, num_train_timesteps: int) -> None:
        super().__init__()
        self.mixer = MLPMixerPolicy(config)
        self.num_train_timesteps = num_train_timesteps

    def encode(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixer's observation context (once per chunk)."""
        return self.mixer.encode(obs)

    def forward(self, x_t: torch.Tensor, context: Any, t: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.mixer.velocity(x_t, context, t / self.num_train_timesteps)


@dataclass
class DiffusionMixerConfig(MixerConfig):
    """Spec config of ``model: diffusion_mixer``: the :class:`MixerConfig` fields plus the scheduler."""

    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction_type: str = "epsilon"
    clip_sample: float | None = None
    max_timestep: int | None = None  # None: T - T // 10 (DDIM's first timestep at 10 "leading" steps)

    def __post_init__(self) -> None:
        super().__post_init__()  # validates the mixer fields
        alphas_cumprod_schedule(self.num_train_timesteps, self.beta_schedule, self.beta_start, self.beta_end)
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")

    def mixer_config(self) -> MixerConfig:
        """The network part."""
        names = {f.name for f in fields(MixerConfig)}
        return MixerConfig(**{k: v for k, v in asdict(self).items() if k in names})


class DiffusionMixerPolicy(DiffusionFlowPolicy):
    """An MLP-Mixer diffusion policy, flow-converted (spec-loadable as ``diffusion_mixer``)."""

    def __init__(self, config: DiffusionMixerConfig) -> None:
        table = alphas_cumprod_schedule(config.num_train_timesteps, config.beta_schedule, config.beta_start,
                                        config.beta_end)
        super().__init__(MixerNoiseNet(config.mixer_config(), config.num_train_timesteps), table, config.horizon,
                         config.action_dim, config.obs_dim, config.prediction_type,  # type: ignore[arg-type]
                         clip_sample=config.clip_sample, max_timestep=config.max_timestep
                         if config.max_timestep is not None else config.num_train_timesteps
                         - max(1, config.num_train_timesteps // 10))
        self.config = config


def diffusion_loss(policy: DiffusionFlowPolicy, obs: torch.Tensor, actions: torch.Tensor,
                   gen: torch.Generator) -> torch.Tensor:
    """DDPM loss: ``t ~ U{0..T-1}``, ``x_t = a_t x0 + s_t eps``, MSE of ``net(x_t, encode(obs), t)``
    against ``eps`` / ``x0`` / ``a_t eps - s_t x0`` (the policy's prediction type); normalised data."""
    ab = policy.alphas_cumprod
    t = torch.randint(0, ab.shape[0], (actions.shape[0],), generator=gen)
    eps = torch.randn(actions.shape, generator=gen, dtype=actions.dtype)
    a = ab[t].sqrt().to(actions.dtype)[:, None, None]
    s = (1 - ab[t]).sqrt().to(actions.dtype)[:, None, None]
    target = {"epsilon": eps, "sample": actions, "v_prediction": a * eps - s * actions}[policy.prediction_type]
    out = policy.net(a * actions + s * eps, policy.encode(obs), t.to(actions.dtype))
    return torch.mean((out - target) ** 2)


def train_diffusion_policy(policy: DiffusionFlowPolicy, obs: np.ndarray, actions: np.ndarray, steps: int = 1000,
                           batch_size: int = 256, lr: float = 2e-3, seed: int = 0, warmup_steps: int = 50,
                           normalizer: Normalizer | None = None) -> tuple[Normalizer, list[float]]:
    """Train ``policy`` in place on raw ``obs (N, O)``, ``actions (N, H, M)`` with :func:`diffusion_loss`
    (AdamW, linear warm-up then cosine decay, grad clip 1). Returns (normaliser, per-step losses)."""
    if obs.ndim != 2 or actions.ndim != 3 or obs.shape[0] != actions.shape[0]:
        raise ValueError(f"need obs (N, O) and actions (N, H, M) with equal N; got {obs.shape}, {actions.shape}")
    norm = normalizer or Normalizer.fit(obs, actions)
    o, a = torch.from_numpy(norm.norm_obs(obs)), torch.from_numpy(norm.norm_actions(actions))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=1e-4)
    policy.train()
    losses: list[float] = []
    for step in range(steps):
        frac = (step + 1) / warmup_steps if step < warmup_steps else \
            0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, steps - warmup_steps)))
        for group in opt.param_groups:
            group["lr"] = lr * frac
        idx = torch.randint(0, o.shape[0], (min(batch_size, o.shape[0]),), generator=gen)
        loss = diffusion_loss(policy, o[idx], a[idx], gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    policy.eval()
    return norm, losses


#: The spec's ``model:`` for :class:`DiffusionMixerPolicy` (an import path; see rtc_ros.policies.plugins).
DIFFUSION_MIXER_MODEL = "rtc_ros.policies.diffusion:make_diffusion_mixer"


def make_diffusion_mixer(config: dict[str, Any]) -> DiffusionMixerPolicy:
    """Plugin factory: the spec's ``config`` mapping -> an untrained :class:`DiffusionMixerPolicy`."""
    return DiffusionMixerPolicy(DiffusionMixerConfig(**config))
