"""PiGDM inpainting guidance for flow policies (training-free), with the exact VJP.

At flow time ``tau`` with current sample ``A^tau`` (shape ``(B, H, M)``):

1. one-step estimate of the final chunk ``A1_hat = A^tau + (1 - tau) v(A^tau, o, tau)``;
2. weighted error ``e = W * (Y - A1_hat)`` (``W`` the prefix weights, ``Y`` the target prefix);
3. correction ``g = e^T dA1_hat/dA^tau`` -- a vector-Jacobian product through the velocity
   network (one reverse-mode pass);
4. guidance weight ``w(tau) = min(beta, (1 - tau) / (tau r_tau^2))`` with
   ``r_tau^2 = (1 - tau)^2 / (tau^2 + (1 - tau)^2)``;
5. guided velocity ``v + w g``.

Dropping the Jacobian (``g = e``) is NOT the method; it exists here only as the explicitly named
approximation ``jacobian="identity_approx"``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Literal

import torch

from rtc_ros.core.context import map_tensors

#: ``velocity(a_tau (B, H, M), obs (B, ...), tau (B,)) -> (B, H, M)``, tau: 0 = noise, 1 = data.
VelocityFn = Callable[[torch.Tensor, Any, torch.Tensor], torch.Tensor]
JacobianMode = Literal["exact", "identity_approx"]

INFERENCE_MODE_MSG = (
    "RTC guided sampling needs autograd for the vector-Jacobian product, but "
    "torch.inference_mode() is active. Call it under torch.no_grad() or with grad enabled instead "
    "(inference_mode blocks autograd)."
)


def guidance_weight(tau: float, beta: float) -> float:
    """Clipped PiGDM guidance weight ``min(beta, (1 - tau) / (tau r_tau^2))``.

    Equivalent closed form: ``(tau^2 + (1 - tau)^2) / (tau (1 - tau))``. It is infinite at
    ``tau = 0`` and ``tau = 1``, where the clip gives ``beta``.

    Args:
        tau: flow time in ``[0, 1]`` (0 = noise, 1 = data).
        beta: the clip (5 in the paper); ``beta = 0`` disables guidance.

    Raises:
        ValueError: if ``tau`` is outside ``[0, 1]`` or ``beta`` is negative or not finite.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1] (0 = noise, 1 = data), got {tau}")
    if not (beta >= 0.0 and math.isfinite(beta)):
        raise ValueError(f"beta (guidance clip) must be finite and >= 0, got {beta}")
    if tau <= 0.0 or tau >= 1.0:
        return float(beta)
    r2 = (1.0 - tau) ** 2 / (tau**2 + (1.0 - tau) ** 2)
    return float(min(beta, (1.0 - tau) / (tau * r2)))


def _detach_inference(x: Any) -> Any:
    """Turn inference tensors (made under inference_mode) into normal tensors autograd can save; a
    context's tensors (tuples, lists, dicts) too."""
    return map_tensors(lambda t: t.clone() if t.is_inference() else t, x)


def _broadcast_weights(weights: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Weights ``(H,)`` or ``(B, H)`` -> broadcastable against ``(B, H, M)``."""
    w = weights.to(dtype=like.dtype, device=like.device)
    if w.ndim == 1:
        if w.shape[0] != like.shape[1]:
            raise ValueError(f"weights has length {w.shape[0]}, chunk horizon is {like.shape[1]}")
        return w[None, :, None]
    if w.ndim == 2:
        if w.shape != like.shape[:2]:
            raise ValueError(f"weights shape {tuple(w.shape)} != (B, H) = {tuple(like.shape[:2])}")
        return w[:, :, None]
    raise ValueError(f"weights must be (H,) or (B, H), got {tuple(w.shape)}")


def guided_velocity(
    velocity: VelocityFn,
    a_tau: torch.Tensor,
    obs: Any,
    tau: float,
    prefix: torch.Tensor,
    weights: torch.Tensor,
    beta: float,
    jacobian: JacobianMode = "exact",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One guided velocity evaluation.

    Args:
        velocity: the flow policy's velocity field.
        a_tau: current sample, ``(B, H, M)``.
        obs: the observation context passed through to ``velocity`` (the policy's ``encode`` output).
        tau: flow time in ``[0, 1)``.
        prefix: target ``Y``, ``(B, H, M)`` or ``(H, M)`` (normalised action space, padded by
            holding the last real action; see :func:`rtc_ros.core.prefix.build_prefix`).
        weights: prefix weights ``(H,)`` or ``(B, H)``.
        beta: guidance clip.
        jacobian: ``"exact"`` (the method: VJP through the network) or ``"identity_approx"``
            (drops the Jacobian; a cheaper approximation, not RTC).

    Returns:
        ``(v_guided, v)``, both ``(B, H, M)`` and detached.

    Raises:
        RuntimeError: under ``torch.inference_mode()``.
        ValueError: on shape mismatches or an unknown ``jacobian`` mode.
    """
    if torch.is_inference_mode_enabled():
        raise RuntimeError(INFERENCE_MODE_MSG)
    if jacobian not in ("exact", "identity_approx"):
        raise ValueError(f"jacobian must be 'exact' or 'identity_approx', got {jacobian!r}")
    if a_tau.ndim != 3:
        raise ValueError(f"a_tau must be (B, H, M), got {tuple(a_tau.shape)}")
    if prefix.shape[-2:] != a_tau.shape[-2:]:
        raise ValueError(f"prefix shape {tuple(prefix.shape)} does not match chunk {tuple(a_tau.shape)}")
    w_mask = _broadcast_weights(weights, a_tau)
    w_tau = guidance_weight(tau, beta)
    obs = _detach_inference(obs)
    prefix = _detach_inference(prefix).to(dtype=a_tau.dtype, device=a_tau.device)
    tau_b = torch.full((a_tau.shape[0],), float(tau), dtype=a_tau.dtype, device=a_tau.device)
    with torch.enable_grad():
        x = _detach_inference(a_tau).detach().requires_grad_(jacobian == "exact")
        v = velocity(x, obs, tau_b)
        a1_hat = x + (1.0 - tau) * v
        err = w_mask * (prefix - a1_hat)
        if jacobian == "exact":
            (correction,) = torch.autograd.grad(a1_hat, x, grad_outputs=err.detach())
        else:
            correction = err
    v = v.detach()
    return v + w_tau * correction.detach(), v
