"""Flow sampling: plain Euler integration and RTC guided sampling (Algorithm 1, GUIDEDINFERENCE).

Flow time tau: 0 = noise, 1 = data; ``n_steps`` Euler steps of ``1 / n_steps``.
"""

from __future__ import annotations

from typing import Any

import torch

from rtc_ros.core.guidance import JacobianMode, VelocityFn, guided_velocity


def _check(noise: torch.Tensor, n_steps: int) -> None:
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
    _check(noise, n_steps)
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
    _check(noise, n_steps)
    if not torch.isfinite(torch.as_tensor(prefix)).all():
        raise ValueError("prefix contains NaN or Inf")
    x = noise.detach()
    dt = 1.0 / n_steps
    for i in range(n_steps):
        v_guided, _ = guided_velocity(velocity, x, obs, i * dt, prefix, weights, beta, jacobian)
        x = x + dt * v_guided
    return x
