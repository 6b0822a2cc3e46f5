"""MLP-Mixer flow policy with AdaLN(-Zero) flow-time conditioning (the paper's simulated model).

Tokens are the H actions of the chunk. Each token is embedded as
``Linear(a_tau_i) + pos_i + Linear(obs)``; the conditioning vector ``c = MLP(sincos(tau)) +
Linear(obs)`` modulates every LayerNorm (scale, shift) and gates every residual branch. Blocks
alternate token mixing (an MLP across the H positions) and channel mixing (an MLP across features).
Gates and the output layer start at zero, so an untrained model outputs zero velocity.

Flow time is either one per chunk, ``tau (B,)`` (the conditioning is shared by all tokens), or one
per position, ``tau (B, H)`` (training-time RTC, arXiv 2512.05964: the frozen prefix at tau = 1, the
rest at the current tau): the conditioning of token ``i`` is then ``c_i = MLP(sincos(tau_i)) +
Linear(obs)``, same weights. Because the modulation is linear in ``c``, it is computed once per
*distinct* flow time and gathered per token (a sampler has two: 1 and the current tau), so
per-position conditioning costs about what shared conditioning costs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from rtc_ros.policies.base import FlowPolicy


@dataclass
class MixerConfig:
    """Constructor config (all stored in the policy spec YAML).

    Attributes:
        horizon: H, chunk length. action_dim: M. obs_dim: O (flat observation size).
        width: channel width C. depth: number of mixer blocks. token_hidden / channel_hidden:
        hidden sizes of the token- and channel-mixing MLPs. time_dim: sinusoidal embedding size.
    """

    horizon: int = 8
    action_dim: int = 2
    obs_dim: int = 4
    width: int = 128
    depth: int = 4
    token_hidden: int = 64
    channel_hidden: int = 256
    time_dim: int = 64

    def __post_init__(self) -> None:
        for f in fields(MixerConfig):  # the network sizes (subclasses add other fields)
            name, value = f.name, getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"MixerConfig.{name} must be a positive integer, got {value!r}")
        if self.time_dim % 2:
            raise ValueError(f"MixerConfig.time_dim must be even, got {self.time_dim}")


def mixer_h8(action_dim: int, obs_dim: int, **overrides: int) -> MixerConfig:
    """The paper's simulated-benchmark size: H = 8, 4 blocks."""
    return MixerConfig(**{"horizon": 8, "action_dim": action_dim, "obs_dim": obs_dim, **overrides})


def bimanual_h50(obs_dim: int, **overrides: int) -> MixerConfig:
    """Bimanual size: H = 50 (1 s at 50 Hz), 14-dim actions (2 x (6 joints + gripper))."""
    base = {"horizon": 50, "action_dim": 14, "obs_dim": obs_dim, "width": 256, "depth": 4,
            "token_hidden": 128, "channel_hidden": 512}
    return MixerConfig(**{**base, **overrides})


def sincos_embedding(tau: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """``tau (...)`` in [0, 1] -> ``(..., dim)`` sinusoidal features of ``1000 tau`` (DiT-style); float64 for
    a float64 ``tau`` (a model run in double precision), float32 otherwise."""
    half = dim // 2
    dtype = torch.float64 if tau.dtype == torch.float64 else torch.float32
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=tau.device, dtype=dtype) / half)
    args = (1000.0 * tau.to(dtype))[..., None] * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class _AdaLN(nn.Module):
    """LayerNorm without affine params, modulated by (scale, shift, gate) from the conditioning."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mod = nn.Linear(width, 3 * width)
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, x: torch.Tensor, c: "torch.Tensor | _PerPosition") -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, H, W)``; ``c (B, W)`` shared by the tokens, or per position (:class:`_PerPosition`)."""
        if isinstance(c, _PerPosition):
            mod = c.modulation(self.mod)
        else:
            mod = self.mod(c)[:, None, :]
        scale, shift, gate = mod.chunk(3, dim=-1)
        return self.norm(x) * (1 + scale) + shift, gate


class _PerPosition:
    """Per-position conditioning ``c[b, i] = time[index[b, i]] + obs[b]`` kept factored.

    ``time (U, W)``: the time embedding of the U distinct flow times; ``index (B, H)``: which one each
    token has; ``obs (B, W)``: the observation part. A modulation ``Linear(c)`` is
    ``(W_l time)[index] + Linear(obs)`` -- one small matmul per distinct time instead of one per token.
    """

    def __init__(self, time: torch.Tensor, index: torch.Tensor, obs: torch.Tensor) -> None:
        self.time, self.index, self.obs = time, index, obs

    def modulation(self, layer: nn.Linear) -> torch.Tensor:
        """``layer(c)`` per token: ``(B, H, out)``."""
        per_time = torch.nn.functional.linear(self.time, layer.weight)  # (U, out), no bias
        return per_time[self.index] + layer(self.obs)[:, None, :]


class _MixerBlock(nn.Module):
    def __init__(self, cfg: MixerConfig) -> None:
        super().__init__()
        self.ln_tok = _AdaLN(cfg.width)
        self.token_mlp = nn.Sequential(
            nn.Linear(cfg.horizon, cfg.token_hidden), nn.GELU(), nn.Linear(cfg.token_hidden, cfg.horizon)
        )
        self.ln_ch = _AdaLN(cfg.width)
        self.channel_mlp = nn.Sequential(
            nn.Linear(cfg.width, cfg.channel_hidden), nn.GELU(), nn.Linear(cfg.channel_hidden, cfg.width)
        )

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h, gate = self.ln_tok(x, c)
        x = x + gate * self.token_mlp(h.transpose(1, 2)).transpose(1, 2)
        h, gate = self.ln_ch(x, c)
        return x + gate * self.channel_mlp(h)


class MLPMixerPolicy(FlowPolicy):
    """Velocity field ``v(a_tau (B,H,M), obs (B,O), tau (B,) or (B,H)) -> (B,H,M)``; see module docstring."""

    supports_per_position_tau = True

    def __init__(self, config: MixerConfig) -> None:
        super().__init__()
        self.config = config
        self.horizon, self.action_dim, self.obs_dim = config.horizon, config.action_dim, config.obs_dim
        w = config.width
        self.action_in = nn.Linear(config.action_dim, w)
        self.obs_in = nn.Linear(config.obs_dim, w)
        self.obs_cond = nn.Linear(config.obs_dim, w)
        self.pos = nn.Parameter(torch.randn(config.horizon, w) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(config.time_dim, w), nn.SiLU(), nn.Linear(w, w))
        self.blocks = nn.ModuleList(_MixerBlock(config) for _ in range(config.depth))
        self.ln_out = _AdaLN(w)
        self.out = nn.Linear(w, config.action_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def encode(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs (B, O)`` -> (observation token offset ``(B, width)``, conditioning part ``(B, width)``)."""
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"obs must be (B, {self.obs_dim}), got {tuple(obs.shape)}")
        return self.obs_in(obs), self.obs_cond(obs)

    def velocity(self, a_tau: torch.Tensor, context: tuple[torch.Tensor, torch.Tensor], tau: torch.Tensor) -> torch.Tensor:
        """``a_tau (B, H, M)``, the context of :meth:`encode`, ``tau (B,)`` (one flow time per chunk) or
        ``(B, H)`` (one per position) -> velocity ``(B, H, M)``."""
        if a_tau.shape[1:] != (self.horizon, self.action_dim):
            raise ValueError(f"a_tau must be (B, {self.horizon}, {self.action_dim}), got {tuple(a_tau.shape)}")
        obs_tok, obs_cond = context
        c: torch.Tensor | _PerPosition
        if tau.ndim == 1:
            c = self.time_mlp(sincos_embedding(tau, self.config.time_dim)) + obs_cond
        elif tau.ndim == 2 and tau.shape[1] == self.horizon:
            values, index = torch.unique(tau, return_inverse=True)  # a sampler has 2 (1 and the current tau)
            c = _PerPosition(self.time_mlp(sincos_embedding(values, self.config.time_dim)), index, obs_cond)
        else:
            raise ValueError(f"tau must be (B,) or (B, {self.horizon}), got {tuple(tau.shape)}")
        x = self.action_in(a_tau) + self.pos[None] + obs_tok[:, None, :]
        for block in self.blocks:
            x = block(x, c)
        h, _ = self.ln_out(x, c)
        return self.out(h)

    def forward(self, a_tau: torch.Tensor, obs: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        return self.velocity(a_tau, self.encode(obs), tau)


def make_mixer(config: dict) -> MLPMixerPolicy:
    """Plugin factory of the built-in ``mlp_mixer`` (see :mod:`rtc_ros.policies.plugins`)."""
    return MLPMixerPolicy(MixerConfig(**config))


MODEL_REGISTRY: dict[str, tuple[type[FlowPolicy], type]] = {"mlp_mixer": (MLPMixerPolicy, MixerConfig)}
