"""MLP-Mixer flow policy with AdaLN(-Zero) flow-time conditioning (the paper's simulated model).

Tokens are the H actions of the chunk. Each token is embedded as
``Linear(a_tau_i) + pos_i + Linear(obs)``; the conditioning vector ``c = MLP(sincos(tau)) +
Linear(obs)`` modulates every LayerNorm (scale, shift) and gates every residual branch. Blocks
alternate token mixing (an MLP across the H positions) and channel mixing (an MLP across features).
Gates and the output layer start at zero, so an untrained model outputs zero velocity.

Flow time is either one per chunk, ``tau (B,)`` (the conditioning is shared by all tokens), or one
per position, ``tau (B, H)`` (training-time RTC, arXiv 2512.05964: the frozen prefix at tau = 1, the
rest at the current tau): the conditioning of token ``i`` is then ``c_i = MLP(sincos(tau_i)) +
Linear(obs)``, same weights. Because the modulation is linear in ``c``, its time part is computed
once per *distinct* flow time (a sampler has two: 1 and the current tau) for all layers in one
matmul and gathered per token, so per-position conditioning costs about what shared conditioning
costs (:meth:`MLPMixerPolicy.per_position_modulation`).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
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
    """Per-position conditioning, already through every AdaLN's ``Linear``: ``mods[layer]`` is
    ``layer(c)`` per token, ``(B, H, 3 W)`` (see :meth:`MLPMixerPolicy.per_position_modulation`)."""

    def __init__(self, mods: dict[int, torch.Tensor]) -> None:
        self.mods = mods

    def modulation(self, layer: nn.Linear) -> torch.Tensor:
        return self.mods[id(layer)]


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
        elif tau.ndim == 2 and tau.shape[1] == self.horizon and tau.shape[0] == a_tau.shape[0]:
            c = self.per_position_modulation(tau, obs_cond)
        else:
            raise ValueError(f"tau must be (B,) or (B, {self.horizon}), got {tuple(tau.shape)}")
        x = self.action_in(a_tau) + self.pos[None] + obs_tok[:, None, :]
        for block in self.blocks:
            x = block(x, c)
        h, _ = self.ln_out(x, c)
        return self.out(h)

    def forward(self, a_tau: torch.Tensor, obs: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        return self.velocity(a_tau, self.encode(obs), tau)

    # ------------------------------------------------------------------ per-position flow time
    def _mod_layers(self) -> list[nn.Linear]:
        return [ln.mod for b in self.blocks for ln in (b.ln_tok, b.ln_ch)] + [self.ln_out.mod]

    def per_position_modulation(self, tau: torch.Tensor, obs_cond: torch.Tensor) -> _PerPosition:
        """``tau (B, H)``, ``obs_cond (B, W)`` -> every AdaLN's ``Linear(c_i)``, ``c_i = MLP(sincos(tau_i))
        + obs_cond``, per token. The Linear is split (``W c_i + b = W time_i + (W obs + b)``) so the time
        part runs once per distinct flow time (``torch.unique``; a sampler has two, 1 and the current
        tau) and all layers in one matmul. When the ``(B, U)`` sums (time row + observation part) are
        no more rows than tokens (sampling: U = 2), they are gathered per token by one ``F.embedding``
        lookup (an index op plus an add over the full ``(B, H, L 3W)`` cost ~6 % of a velocity call of a
        width-128 trunk); otherwise (training, a flow time per sample: U ~ B) the time rows are gathered
        per layer and the observation part added. Without gradients both parts
        are cached (:meth:`_cached_parts`). On a non-CPU device (CUDA) neither ``unique`` nor the cache
        is used: both sync with the host and would break CUDA-graph capture;
        :meth:`_per_token_modulation` computes the same per token."""
        layers = self._mod_layers()
        if tau.device.type != "cpu":  # CUDA: no host sync (unique, .tolist()), CUDA-graph capturable
            return self._per_token_modulation(layers, tau, obs_cond)
        values, index = torch.unique(tau, return_inverse=True)
        params = [t for lay in layers for t in (lay.weight, lay.bias)] + [*self.time_mlp.parameters()]
        if torch.is_grad_enabled() and any(t.requires_grad for t in params):  # training: differentiable
            weight, bias = torch.cat([lay.weight for lay in layers]), torch.cat([lay.bias for lay in layers])
            per_time = F.linear(self.time_mlp(sincos_embedding(values, self.config.time_dim)), weight)  # (U, L 3W)
            per_obs = F.linear(obs_cond, weight, bias)  # (B, L 3W)
        else:
            per_time, per_obs = self._cached_parts(layers, params, values, obs_cond)
        n_values, batch, width = per_time.shape[0], per_obs.shape[0], layers[0].out_features
        if batch * n_values <= index.numel():  # e.g. sampling (U = 2): a row per (batch element, flow time)
            table = (per_obs[:, None, :] + per_time[None]).reshape(batch * n_values, -1)
            offset = torch.arange(batch, device=index.device)[:, None] * n_values
            mods = F.embedding(index + offset, table)  # (B, H, L 3W) in one pass
            return _PerPosition({id(lay): m for lay, m in zip(layers, mods.split(width, dim=-1))})
        # more rows than tokens (training: a flow time per sample, U ~ B); per layer, so
        # that the backward pass sums into the small (U, 3W) rows instead of concatenating (B, H, L 3W)
        return _PerPosition({id(lay): F.embedding(index, t) + o[:, None, :] for lay, t, o
                             in zip(layers, per_time.split(width, dim=-1), per_obs.split(width, dim=-1))})

    def _per_token_modulation(self, layers: list[nn.Linear], tau: torch.Tensor, obs_cond: torch.Tensor) -> _PerPosition:
        """The same modulation as :meth:`per_position_modulation` with the time part computed for every
        token ``(B, H)`` (no ``unique``, no cache, no host sync; differentiable): the capture-safe path."""
        weight, bias = torch.cat([lay.weight for lay in layers]), torch.cat([lay.bias for lay in layers])
        per_time = F.linear(self.time_mlp(sincos_embedding(tau, self.config.time_dim)), weight)  # (B, H, L 3W)
        mods = per_time + F.linear(obs_cond, weight, bias)[:, None, :]
        return _PerPosition({id(lay): m for lay, m in zip(layers, mods.split(layers[0].out_features, dim=-1))})

    @torch.compiler.disable  # python-side cache: always eager, also inside a torch.compile'd velocity
    @torch.no_grad()
    def _cached_parts(self, layers: list[nn.Linear], params: list[torch.Tensor], values: torch.Tensor,
                      obs_cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference: the stacked weights and the time part per flow-time value are kept while the
        parameters are unchanged (keyed on storage and version), the observation part while
        ``obs_cond`` (the context of one chunk) is the same, unmodified tensor."""
        key = tuple((t.data_ptr(), t._version) for t in params) + (values.dtype, values.device)
        cache = self.__dict__.get("_pp_cache")
        if cache is None or cache["key"] != key:
            weight_t = torch.cat([lay.weight for lay in layers]).t().contiguous()  # (W, L 3W)
            cache = {"key": key, "weight_t": weight_t, "bias": torch.cat([lay.bias for lay in layers]), "rows": {},
                     "obs": None}
            self.__dict__["_pp_cache"] = cache
        rows, vals = cache["rows"], values.tolist()
        missing = [v for v in vals if v not in rows]
        if missing:
            if len(rows) + len(missing) > 64:  # bounded: start over (values cached before are needed too)
                rows.clear()
                missing = vals
            t = torch.tensor(missing, dtype=values.dtype, device=values.device)
            rows.update(zip(missing, self.time_mlp(sincos_embedding(t, self.config.time_dim)) @ cache["weight_t"]))
        per_time = torch.stack([rows[v] for v in vals])
        if obs_cond.is_inference():  # made under torch.inference_mode: no version counter to key on
            return per_time, torch.addmm(cache["bias"], obs_cond, cache["weight_t"])
        held = cache["obs"]
        if held is not None and held[0]() is obs_cond and held[1] == obs_cond._version:
            return per_time, held[2]
        per_obs = torch.addmm(cache["bias"], obs_cond, cache["weight_t"])
        cache["obs"] = (weakref.ref(obs_cond), obs_cond._version, per_obs)
        return per_time, per_obs


def make_mixer(config: dict) -> MLPMixerPolicy:
    """Plugin factory of the built-in ``mlp_mixer`` (see :mod:`rtc_ros.policies.plugins`)."""
    return MLPMixerPolicy(MixerConfig(**config))


MODEL_REGISTRY: dict[str, tuple[type[FlowPolicy], type]] = {"mlp_mixer": (MLPMixerPolicy, MixerConfig)}
