"""GUIDEDINFERENCE of Algorithm 1 and the baselines' samplers, batched, in raw (un-normalised) units.

One chunk generator for the robot and the benchmark: ``policy_inference`` calls
:meth:`ChunkGenerator.generate` (one observation, numpy), the Figure 5 harness calls
:meth:`ChunkGenerator.chunk_fn` (thousands of environments, torch); both go through
:meth:`ChunkGenerator.sample`, one method table (:mod:`rtc_ros.runtime.methods`), one prefix builder
(:func:`rtc_ros.core.prefix.build_prefix`) and the same BID settings (paper: N = 32, K = 3). All the
mathematics lives in :mod:`rtc_ros.core` (masks, guidance with the exact VJP, samplers -- plain,
guided and training-time RTC's prefix-conditioned -- and BID).

Shapes: observations ``(B, O)``; chunks, prefixes and noise ``(B, H, M)``; the prefix's index 0 is
the observation's step; flow time tau: 0 = noise, 1 = data. A policy may sample a larger space than it
returns: ``sample_dim`` > M (padded joints, LeRobot's ``max_action_dim``) and ``chunk_offset`` leading
positions before the observation's step (LeRobot's Diffusion Policy: ``n_obs_steps - 1``); noise is then
``(B, chunk_offset + H, sample_dim)``, the leading positions are left unguided (weight 0) and dropped.
"""

from __future__ import annotations

import contextlib

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch

from rtc_ros.core.bid import bid_sample
from rtc_ros.core.guidance import INFERENCE_MODE_MSG
from rtc_ros.core.masks import check_delay, prefix_weights
from rtc_ros.core.prefix import build_prefix
from rtc_ros.core.sampling import sample_guided, sample_plain, sample_prefix_conditioned
from rtc_ros.policies.spec import LoadedPolicy
from rtc_ros.policies.units import same_units
from rtc_ros.runtime.cuda_graphs import GraphedSampler
from rtc_ros.runtime.methods import method_info

#: ``chunk_fn(obs (B,O) raw, prefix (B,H,M) raw or None, noise (B,H,M)) -> (B,H,M) raw``
ChunkFn = Callable[[torch.Tensor, "torch.Tensor | None", torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class GeneratorConfig:
    """Sampling settings (paper values by default); ValueError names the field.

    Attributes:
        method: execution method (decides plain, guided, BID or prefix-conditioned sampling and the
            mask schedule).
        beta: guidance-weight clip (finite, > 0). n_steps: Euler steps. bid_samples / bid_k: BID's N and K.
        jacobian: ``exact`` (RTC) or ``identity_approx`` (labelled approximation).
        seed: seed of the flow noise (``generate``).
        compile: wrap the networks in ``torch.compile`` (``dynamic=True``; eager if it fails).
        cuda_graphs: on a CUDA policy, replay the plain, guided (exact VJP included) and
            prefix-conditioned sampling loops as CUDA graphs, one per shape
            (:mod:`rtc_ros.runtime.cuda_graphs`; capture failure: logged once, then eager). A no-op on
            CPU and with ``compile`` (the compiled velocity runs eagerly); BID always runs eagerly.
    """

    method: str = "rtc"
    beta: float = 5.0
    n_steps: int = 5
    bid_samples: int = 32
    bid_k: int = 3
    jacobian: str = "exact"
    seed: int = 0
    compile: bool = False
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        method_info(self.method)
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be finite and > 0, got {self.beta}")
        if self.n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {self.n_steps}")
        if self.bid_samples < 1:
            raise ValueError(f"bid_samples must be >= 1, got {self.bid_samples}")
        if not 1 <= self.bid_k <= self.bid_samples:
            raise ValueError(f"bid_k must be in [1, bid_samples={self.bid_samples}], got {self.bid_k}")
        for name in ("compile", "cuda_graphs"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.jacobian not in ("exact", "identity_approx"):
            raise ValueError(f"jacobian must be 'exact' or 'identity_approx', got {self.jacobian!r}")


def _compiled(model: torch.nn.Module) -> Callable[..., torch.Tensor]:
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True  # fall back to eager rather than crash
    # guided sampling calls the network with grad on (VJP) and the first chunk with grad off, and a
    # benchmark batch shrinks as episodes end: each is a recompile; past the default limit (8) the
    # rest of the process silently runs eager
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)
    return torch.compile(model, dynamic=True)


def trained_prefix_limit(policy: LoadedPolicy, method: str) -> int:
    """The largest ``d`` a training-time RTC policy takes (its spec's ``training.prefix_conditioning``).

    Raises:
        ValueError: naming the method and the spec field, when the policy's velocity has no
            per-position flow time or the spec records no prefix-conditioned training.
    """
    where = f"policy spec {policy.path}" if getattr(policy, "path", None) else "the policy"
    if not getattr(policy, "supports_per_position_tau", False):
        raise ValueError(f"method {method!r} (training-time RTC) needs a velocity with per-position flow time "
                         f"(supports_per_position_tau); {where} ({type(getattr(policy, 'model', policy)).__name__}) "
                         f"has none -- use 'rtc' (inference-time RTC)")
    d_max = int(getattr(policy, "prefix_conditioning", 0))
    if d_max < 1:
        raise ValueError(f"method {method!r} (training-time RTC) needs a policy trained with prefix conditioning: "
                         f"{where} has no 'training.prefix_conditioning' >= 1 (train with "
                         f"TrainConfig.prefix_conditioning = the largest delay d) -- or use 'rtc'")
    return d_max


class ChunkGenerator:
    """Sample chunks for one method from a loaded policy.

    Args:
        policy: the base policy (for ``rtc_trained``: trained with prefix conditioning,
            :func:`trained_prefix_limit`).
        config: method and sampling settings.
        weak_policy: BID's weak policy (optional; without it BID uses backward coherence only).

    Raises:
        ValueError: ``rtc_trained`` with a policy not trained for it.
    """

    def __init__(self, policy: LoadedPolicy, config: GeneratorConfig, weak_policy: LoadedPolicy | None = None) -> None:
        self.policy, self.config, self.weak_policy = policy, config, weak_policy
        self.info = method_info(config.method)
        self.max_prefix = trained_prefix_limit(policy, config.method) if self.info.sampling == "trained" else None
        self.horizon, self.action_dim = policy.horizon, policy.action_dim
        # the space sampled and guided in (an adapter may pad it, e.g. LeRobot's max_action_dim);
        # raw chunks and previous chunks keep action_dim
        self.sample_dim = int(getattr(policy, "sample_dim", policy.action_dim))
        # ... and positions before the observation's step (sampled, unguided, dropped by unnormalize_actions)
        self.chunk_offset = int(getattr(policy, "chunk_offset", 0))
        self.sample_horizon = self.horizon + self.chunk_offset
        if self.chunk_offset and self.info.sampling == "trained":
            raise ValueError(f"method {config.method!r}: the policy samples {self.chunk_offset} position(s) before the "
                             "observation's step, which prefix-conditioned training does not cover")
        self.device = policy.device
        # encode once per chunk (the policy normalises); the velocity (and RTC's VJP) runs per step
        self.encode = policy.encode
        self.velocity = _compiled(policy.velocity) if config.compile else policy.velocity
        if weak_policy is not None and int(getattr(weak_policy, "chunk_offset", 0)) != self.chunk_offset:
            raise ValueError("weak_policy_spec: BID's weak policy must sample the same positions as the policy "
                             f"(chunk_offset {getattr(weak_policy, 'chunk_offset', 0)} vs {self.chunk_offset})")
        if weak_policy is not None and not same_units(policy, weak_policy):
            raise ValueError("weak_policy_spec: BID's weak policy must see the robot in the same units as the policy "
                             "(give its spec the same robot_units map, rtc_ros.policies.units)")
        self.weak_encode = weak_policy.encode if weak_policy is not None else None
        self.weak_velocity = None
        if weak_policy is not None:
            self.weak_velocity = _compiled(weak_policy.velocity) if config.compile else weak_policy.velocity
        self._gen = torch.Generator(device="cpu").manual_seed(config.seed)  # noise drawn on CPU, then moved
        self._velocity_checked = False  # the first sample checks what the policy's velocity returns
        # CUDA graphs of the fixed-shape loops (None: eager; always on CPU)
        self.graphs: GraphedSampler | None = None
        if config.cuda_graphs and not config.compile and self.device.type == "cuda":
            self.graphs = GraphedSampler(policy.velocity, config.n_steps, config.beta, config.jacobian)

    # ------------------------------------------------------------------------------ sampling
    def sample(self, obs: Any, prefix: torch.Tensor | None, d: int, s: int,
               noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """One chunk per batch element, raw units.

        Args:
            obs: raw observations: flat ``(B, O)``, or one structured observation (a mapping of named
                arrays, ``B = 1``); the policy lays it out and normalises it
                (:class:`rtc_ros.policies.loaded.LoadedPolicy`).
            prefix: ``(B, H, M)`` raw guidance target (the executing chunk's actions from the
                observation's step on, hold-padded), or None (first chunk: plain sampling).
            d: frozen leading actions (``rtc_trained``: at most the policy's
                ``training.prefix_conditioning``, else ValueError). s: execution horizon (mask end ``H - s``).
                Integers in ``[0, H]``. Guided: a ``d`` beyond ``H - s`` is clamped to ``H - s`` (the authors'
                convention), so pass ``s = 0`` when the executing chunk runs out before this one takes over
                (as :class:`~rtc_ros.runtime.inference_loop.InferenceLoopCore` does).
            noise: ``(B, sample_horizon, sample_dim)`` initial noise (default: drawn from ``generator``);
                ``sample_dim`` = M and ``sample_horizon`` = H unless the policy pads its action space or
                samples positions before the observation's step (``chunk_offset``).
            generator: RNG for the noise and BID's candidates (default: the generator's own, seeded).

        Returns:
            ``(B, H, M)`` raw chunks (float32, detached).
        """
        cfg, info, H = self.config, self.info, self.sample_horizon
        d, s = check_delay(d, s, self.horizon)
        gen = self._gen if generator is None else generator
        y = self.policy.normalize_actions(prefix) if prefix is not None else None
        with torch.no_grad():
            ctx = self.encode(obs)  # once per chunk, no autograd
            batch = 1 if isinstance(obs, Mapping) else int(torch.as_tensor(obs).reshape(-1, self.policy.obs_dim).shape[0])
            shape = (batch, H, self.sample_dim)
            if not self._velocity_checked:
                self._check_velocity(ctx, shape)
            if info.sampling == "bid":
                w = self._weights(d, s) if y is not None else None
                weak_ctx = self.weak_encode(obs) if self.weak_encode is not None else None
                out = bid_sample(self.velocity, ctx, y, w, cfg.bid_samples, cfg.n_steps, self.weak_velocity, cfg.bid_k,
                                 gen, (H, self.sample_dim), batch, weak_ctx)  # candidates drawn on CPU, then moved
            else:
                x0 = noise if noise is not None else torch.randn(shape, generator=gen)
                x0 = x0.to(self.device, torch.float32)
                if info.sampling == "guided" and y is not None:
                    w = self._weights(d, s).to(self.device)
                    out = self.graphs.guided(ctx, x0, y, w) if self.graphs is not None else None
                    if out is None:
                        out = sample_guided(self.velocity, ctx, x0, y, w, cfg.beta, cfg.n_steps, cfg.jacobian)
                elif info.sampling == "trained" and y is not None:
                    if self.max_prefix is not None and d > self.max_prefix:
                        raise ValueError(f"d = {d} exceeds the policy's training.prefix_conditioning = "
                                         f"{self.max_prefix} (method {cfg.method!r}: it was trained with "
                                         f"prefixes up to that length)")
                    out = self.graphs.trained(ctx, x0, y, d) if self.graphs is not None else None
                    if out is None:
                        out = sample_prefix_conditioned(self.velocity, ctx, x0, y, d, cfg.n_steps)
                else:
                    out = self._plain(ctx, x0)
        return self.policy.unnormalize_actions(out).detach()

    def _weights(self, d: int, s: int) -> torch.Tensor:
        """The guidance weights ``(sample_horizon,)``: the schedule's over the ``H`` positions from the observation's
        step, 0 on the ``chunk_offset`` positions before it (nothing there to be consistent with)."""
        w = prefix_weights(self.horizon, d, s, self.info.schedule)
        return torch.cat([w.new_zeros(self.chunk_offset), w]) if self.chunk_offset else w

    def _check_velocity(self, ctx: Any, shape: tuple[int, int, int]) -> None:
        """Once: the policy's velocity must map ``a_tau (B, H, M)`` to the same shape (a ``(B, H, 1)`` result
        would broadcast over the joints unnoticed) and, for exact guidance, be differentiable w.r.t. ``a_tau``
        (else the VJP through ``a1_hat = a_tau + (1 - tau) v`` is silently the identity: the approximation).
        One velocity call. Raises ValueError naming the shapes or the cause."""
        exact = self.info.sampling == "guided" and self.config.jacobian == "exact"
        if exact and torch.is_inference_mode_enabled():  # (the caller's context, not the policy's fault)
            raise RuntimeError(INFERENCE_MODE_MSG)
        x = torch.zeros(shape, device=self.device).requires_grad_(exact)
        tau = torch.zeros(shape[0], device=self.device)
        try:
            with torch.enable_grad() if exact else contextlib.nullcontext():
                v = self.policy.velocity(x, ctx, tau)
                # through a_tau, not only the parameters (a model fresh from training has requires_grad on them)
                through = exact and v.requires_grad and torch.autograd.grad(
                    v.sum(), x, allow_unused=True)[0] is not None
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise ValueError(f"the policy's velocity failed on a_tau of shape {shape} (B, H, M) with tau of shape "
                             f"({shape[0]},): {exc}") from exc
        if tuple(v.shape) != shape:
            raise ValueError(f"the policy's velocity returned shape {tuple(v.shape)} for a_tau of shape {shape}: it "
                             "must return one velocity per action, (B, H, M) like a_tau")
        if exact and not through:
            raise ValueError("the policy's velocity is not differentiable with respect to a_tau (it runs under "
                             "torch.no_grad or inference_mode, detaches, or goes through numpy): guided sampling "
                             f"(method {self.config.method!r}) needs its vector-Jacobian product; keep velocity "
                             "in torch autograd, or choose jacobian 'identity_approx' knowingly")
        self._velocity_checked = True

    def chunk_fn(self, d: int, s: int, generator: torch.Generator | None = None) -> ChunkFn:
        """The batched chunk source for a fixed ``(d, s)`` (the Figure 5 harness)."""
        def fn(obs: torch.Tensor, prefix: torch.Tensor | None, noise: torch.Tensor) -> torch.Tensor:
            return self.sample(obs, prefix if self.info.uses_prefix else None, d, s, noise, generator)
        return fn

    def plain_fn(self, obs: torch.Tensor, prefix: Any, noise: torch.Tensor) -> torch.Tensor:
        """Unguided batched chunk (the harness's first chunk); ``prefix`` is ignored."""
        del prefix
        with torch.no_grad():
            return self.policy.unnormalize_actions(self._plain(self.encode(obs), noise.to(self.device))).detach()

    def _plain(self, ctx: Any, x0: torch.Tensor) -> torch.Tensor:
        """Plain sampling, graph-replayed when available; ``x0 (B, sample_horizon, sample_dim)`` on the device."""
        out = self.graphs.plain(ctx, x0) if self.graphs is not None else None
        return out if out is not None else sample_plain(self.velocity, ctx, x0, self.config.n_steps)

    def generate(self, obs: Mapping[str, np.ndarray] | np.ndarray, prev_remaining: np.ndarray | None = None,
                 d: int = 0, s: int = 0) -> np.ndarray:
        """One chunk for the robot.

        Args:
            obs: one raw observation: a mapping of named arrays (the joint-position entry and camera
                frames, named as the spec's ``obs_spec``) or the flat ``(O,)`` vector.
            prev_remaining: ``(L, M)`` raw actions the robot executes from the observation's step on
                (:attr:`rtc_ros.runtime.inference_loop.Plan.prev_remaining`), or None.
            d: frozen leading actions. s: execution horizon (mask end ``H - s``). Integers in ``[0, H]``; see
                :meth:`sample` for ``d > H - s``.

        Returns:
            ``(H, M)`` float64 chunk in raw units.

        Raises:
            ValueError: wrong shapes or non-finite input. FloatingPointError: non-finite output.
        """
        H, M = self.horizon, self.action_dim
        d, s = check_delay(d, s, H)
        if not isinstance(obs, Mapping):
            o = np.asarray(obs, dtype=np.float32)
            if o.shape != (self.policy.obs_dim,):
                raise ValueError(f"observation must have shape ({self.policy.obs_dim},), got {o.shape}")
            obs = torch.from_numpy(o)[None]
        prefix = None
        if prev_remaining is not None and self.info.uses_prefix:
            prev = np.asarray(prev_remaining, dtype=np.float32)
            if prev.ndim != 2 or prev.shape[0] < 1 or prev.shape[1] != M:
                raise ValueError(f"prev_remaining must be (L >= 1, {M}), got {prev.shape}")
            if not np.isfinite(prev).all():
                raise ValueError("prev_remaining contains NaN or Inf")
            prefix = torch.from_numpy(build_prefix(prev, 0, H))[None]
        noise = torch.randn((1, self.sample_horizon, self.sample_dim), generator=self._gen)
        chunk = self.sample(obs, prefix, d, s, noise)[0].cpu().numpy().astype(np.float64)
        if not np.isfinite(chunk).all():
            raise FloatingPointError("policy produced a non-finite chunk")
        return chunk
