"""Flow sampling: plain Euler integration, RTC guided sampling (Algorithm 1, GUIDEDINFERENCE) and
training-time RTC's prefix-conditioned sampling (arXiv 2512.05964).

Flow time tau: 0 = noise, 1 = data; ``n_steps`` Euler steps of ``1 / n_steps``.
"""

from __future__ import annotations

from typing import Any

import torch

from rtc_ros.core.guidance import JacobianMode, VelocityFn, guided_velocity
from rtc_ros.core.masks import check_delay


def check_inputs(noise: torch.Tensor, n_steps: int) -> None:
    """Validate a sampler's noise ``(B, H, M)`` (finite; a host sync on CUDA) and ``n_steps >= 1``.

    The samplers below call it first and then their unchecked loop (``euler_*``); a CUDA-graph
    runner (:mod:`rtc_ros.runtime.cuda_graphs`) calls it eagerly before copying the inputs into its
    static buffers, because a data-dependent check cannot be captured.

    Raises:
        ValueError: naming ``noise`` or ``n_steps``.
    """
    if not isinstance(noise, torch.Tensor):
        raise TypeError(f"noise must be a torch.Tensor (B, H, M), got {type(noise).__name__}")
    if noise.ndim != 3:
        raise ValueError(f"noise must be (B, H, M), got {tuple(noise.shape)}")
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if not torch.isfinite(noise).all():
        raise ValueError("noise contains NaN or Inf")


@torch.no_grad()
def sample_plain(velocity: VelocityFn, obs: Any, noise: torch.Tensor, n_steps: int = 5) -> torch.Tensor:
    """Unguided flow sampling.

    Args:
        velocity: ``velocity(a_tau (B,H,M), obs, tau (B,)) -> (B,H,M)``.
        obs: observation batch for ``velocity``.
        noise: ``A^0 ~ N(0, I)``, shape ``(B, H, M)``.
        n_steps: number of Euler steps.

    Returns:
        ``A^1``, shape ``(B, H, M)``.
    """
    check_inputs(noise, n_steps)
    return euler_plain(velocity, obs, noise, n_steps)


@torch.no_grad()
def euler_plain(velocity: VelocityFn, obs: Any, noise: torch.Tensor, n_steps: int) -> torch.Tensor:
    """The loop of :func:`sample_plain` without input checks (no host sync: CUDA-graph capturable)."""
    x = noise
    dt = 1.0 / n_steps
    for i in range(n_steps):
        tau = torch.full((x.shape[0],), i * dt, dtype=x.dtype, device=x.device)
        x = x + dt * velocity(x, obs, tau)
    return x


def sample_guided(
    velocity: VelocityFn,
    obs: Any,
    noise: torch.Tensor,
    prefix: torch.Tensor,
    weights: torch.Tensor,
    beta: float = 5.0,
    n_steps: int = 5,
    jacobian: JacobianMode = "exact",
) -> torch.Tensor:
    """RTC guided sampling: inpaint toward ``prefix`` with soft weights ``weights``.

    Works when the caller is under ``torch.no_grad()`` (grad is enabled locally for the VJP);
    refuses under ``torch.inference_mode()``. With ``beta = 0`` or all-zero ``weights`` the
    result equals :func:`sample_plain` for the same noise.

    Args:
        velocity: the policy's velocity field (see :data:`VelocityFn`).
        obs: observation batch.
        noise: ``(B, H, M)`` initial noise.
        prefix: target ``Y``, ``(B, H, M)`` or ``(H, M)``, normalised action space.
        weights: prefix weights ``(H,)`` or ``(B, H)`` (see :func:`rtc_ros.core.masks.prefix_weights`).
        beta: guidance-weight clip (paper: 5).
        n_steps: Euler steps (paper: 5).
        jacobian: ``"exact"`` (RTC) or ``"identity_approx"`` (labelled approximation).

    Returns:
        The guided chunk ``(B, H, M)``, detached.
    """
    check_inputs(noise, n_steps)
    prefix = torch.as_tensor(prefix, dtype=noise.dtype, device=noise.device)  # (NumPy arrays too)
    weights = torch.as_tensor(weights, dtype=noise.dtype, device=noise.device)
    if not torch.isfinite(prefix).all():
        raise ValueError("prefix contains NaN or Inf")
    return euler_guided(velocity, obs, noise, prefix, weights, beta, n_steps, jacobian)


def euler_guided(velocity: VelocityFn, obs: Any, noise: torch.Tensor, prefix: torch.Tensor, weights: torch.Tensor,
                 beta: float, n_steps: int, jacobian: JacobianMode = "exact") -> torch.Tensor:
    """The loop of :func:`sample_guided` without the finiteness checks (no host sync: CUDA-graph
    capturable, the VJP included); shapes as there."""
    x = noise.detach()
    dt = 1.0 / n_steps
    for i in range(n_steps):
        v_guided, _ = guided_velocity(velocity, x, obs, i * dt, prefix, weights, beta, jacobian)
        x = x + dt * v_guided
    return x


def prefix_flow_time(tau: float, batch: int, horizon: int, d: int, dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """Per-position flow time of training-time RTC: ``(batch, horizon)``, 1 at positions ``< d`` (the
    frozen prefix, clean data), ``tau`` elsewhere."""
    out = torch.full((batch, horizon), float(tau), dtype=dtype, device=device)
    out[:, :d] = 1.0
    return out


@torch.no_grad()
def sample_prefix_conditioned(velocity: VelocityFn, obs: Any, noise: torch.Tensor, prefix: torch.Tensor, d: int,
                              n_steps: int = 5) -> torch.Tensor:
    """Training-time RTC sampling (Black et al., arXiv 2512.05964): the frozen prefix is *given* to
    the policy instead of inpainted, so no VJP is needed (plain Euler cost).

    Positions ``i < d`` hold ``prefix[:, i]`` at flow time 1 in every step (per-position flow time,
    :func:`prefix_flow_time`); positions ``>= d`` start from ``noise`` and are integrated with the
    usual Euler steps ``A <- A + (1/n) v(A, o, tau)``, tau in {0, 1/n, ...}. Only a policy trained
    with prefix conditioning (:func:`rtc_ros.policies.train.flow_matching_loss` with
    ``max_prefix >= d``) knows what to do with the prefix; with ``d = 0`` this is
    :func:`sample_plain` (scalar flow time) exactly.

    Args:
        velocity: ``velocity(a_tau (B,H,M), obs, tau (B, H)) -> (B,H,M)``: it must accept one flow
            time per position (``supports_per_position_tau``); called with ``(B,)`` only when ``d = 0``.
        obs: observation batch (context) for ``velocity``.
        noise: ``A^0 ~ N(0, I)``, ``(B, H, M)``.
        prefix: ``(B, H, M)`` or ``(H, M)`` in the policy's (normalised) action space; index 0 = the
            observation's step; only positions ``< d`` are used.
        d: frozen leading actions, ``0 <= d <= H``.
        n_steps: Euler steps (paper: 5).

    Returns:
        ``(B, H, M)`` chunk whose first ``d`` actions equal ``prefix[:, :d]`` exactly.
    """
    check_inputs(noise, n_steps)
    B, H, M = noise.shape
    y = torch.as_tensor(prefix, dtype=noise.dtype, device=noise.device)
    y = y.expand(B, H, M) if y.ndim == 2 else y
    if y.shape != noise.shape:
        raise ValueError(f"prefix must be ({H}, {M}) or ({B}, {H}, {M}), got {tuple(torch.as_tensor(prefix).shape)}")
    d = check_delay(d, 0, H)[0]
    if d == 0:
        return sample_plain(velocity, obs, noise, n_steps)
    if not torch.isfinite(y[:, :d]).all():
        raise ValueError("prefix contains NaN or Inf")
    return euler_prefix(velocity, obs, noise, y, d, n_steps)


@torch.no_grad()
def euler_prefix(velocity: VelocityFn, obs: Any, noise: torch.Tensor, y: torch.Tensor, d: int,
                 n_steps: int) -> torch.Tensor:
    """The loop of :func:`sample_prefix_conditioned` for ``1 <= d <= H`` without input checks (no
    host sync: CUDA-graph capturable); ``noise`` and ``y`` ``(B, H, M)``, ``y`` finite in ``[:, :d]``."""
    B, H, _ = noise.shape
    x = noise.clone()
    x[:, :d] = y[:, :d]
    if d < H:
        dt = 1.0 / n_steps
        for i in range(n_steps):
            tau = prefix_flow_time(i * dt, B, H, d, x.dtype, x.device)
            x = x + dt * velocity(x, obs, tau)
            x[:, :d] = y[:, :d]  # the prefix stays clean data (its velocity is not used)
    return x
