"""Bidirectional decoding (BID, Liu et al. 2024) as a baseline for RTC.

Sample ``N`` chunks from the strong policy and pick, per batch element, the one minimising
``backward + forward``:

* backward coherence: ``sum_i W_i ||a_i - y_i||^2`` -- weighted L2 to the previous chunk's
  remaining actions ``Y`` with the same prefix weights RTC uses;
* forward contrast (optional, needs a weak policy): mean L2 distance to the ``K`` best strong
  samples minus mean L2 distance to the ``K`` best weak samples, "best" meaning lowest backward
  loss (our reading of the paper's positive/negative sets; stated here so it can be changed).
"""

from __future__ import annotations

import torch

from rtc_ros.core.guidance import VelocityFn
from rtc_ros.core.sampling import sample_plain


def _repeat_obs(obs: torch.Tensor, n: int) -> torch.Tensor:
    """``(B, ...) -> (B * n, ...)`` with each row repeated n times consecutively."""
    return obs.repeat_interleave(n, dim=0)


def _backward_loss(samples: torch.Tensor, prefix: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``samples (B, N, H, M)``, ``prefix (B, H, M)``, ``weights (H,)|(B, H)`` -> ``(B, N)``."""
    w = weights.to(samples)
    w = w[None, None, :] if w.ndim == 1 else w[:, None, :]
    sq = ((samples - prefix[:, None]) ** 2).sum(-1)  # (B, N, H)
    return (w * sq).sum(-1)


def _mean_dist(samples: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """Mean L2 distance of each sample to each ref chunk: ``(B, N, H, M), (B, K, H, M) -> (B, N)``."""
    diff = samples[:, :, None] - refs[:, None]  # (B, N, K, H, M)
    return diff.flatten(3).norm(dim=-1).mean(-1)


def bid_sample(
    velocity: VelocityFn,
    obs: torch.Tensor,
    prefix: torch.Tensor | None,
    weights: torch.Tensor | None,
    n_samples: int = 32,
    n_steps: int = 5,
    weak_velocity: VelocityFn | None = None,
    k: int = 3,
    generator: torch.Generator | None = None,
    chunk_shape: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Select one chunk per batch element by bidirectional decoding.

    Args:
        velocity: strong policy velocity field.
        obs: observation batch ``(B, ...)`` (a tensor; it is repeated ``n_samples`` times).
        prefix: previous chunk's remaining actions ``(B, H, M)`` (normalised space), or ``None``
            for the first chunk (then only forward contrast, or the first sample, decides).
        weights: prefix weights ``(H,)`` or ``(B, H)``; required when ``prefix`` is given.
        n_samples: N candidates per element (paper: 32).
        n_steps: Euler steps per sample.
        weak_velocity: weak policy (e.g. an early checkpoint) for forward contrast; ``None``
            disables forward contrast.
        k: size of the positive/negative sets (paper: 3), ``k <= n_samples``.
        generator: torch RNG for the candidate noise.
        chunk_shape: ``(H, M)``; needed only when ``prefix`` is ``None``.

    Returns:
        Selected chunks ``(B, H, M)``.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if not 1 <= k <= n_samples:
        raise ValueError(f"k must be in [1, n_samples={n_samples}], got {k}")
    if prefix is not None:
        if weights is None:
            raise ValueError("weights are required with a prefix")
        horizon, dim = prefix.shape[-2:]
    elif chunk_shape is not None:
        horizon, dim = chunk_shape
    else:
        raise ValueError("chunk_shape is required when prefix is None")
    batch = obs.shape[0]
    obs_rep = _repeat_obs(obs, n_samples)
    shape = (batch * n_samples, horizon, dim)
    device = obs.device
    noise = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    strong = sample_plain(velocity, obs_rep, noise, n_steps).view(batch, n_samples, horizon, dim)
    if prefix is not None:
        loss = _backward_loss(strong, prefix, weights)
    else:
        loss = torch.zeros(batch, n_samples, device=device)
    if weak_velocity is not None:
        noise_w = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
        weak = sample_plain(weak_velocity, obs_rep, noise_w, n_steps).view(batch, n_samples, horizon, dim)
        weak_loss = _backward_loss(weak, prefix, weights) if prefix is not None else torch.zeros_like(loss)
        pos_idx = loss.topk(k, dim=1, largest=False).indices
        neg_idx = weak_loss.topk(k, dim=1, largest=False).indices
        gather = lambda x, i: x.gather(1, i[:, :, None, None].expand(-1, -1, horizon, dim))  # noqa: E731
        loss = loss + _mean_dist(strong, gather(strong, pos_idx)) - _mean_dist(strong, gather(weak, neg_idx))
    best = loss.argmin(dim=1)
    return strong[torch.arange(batch, device=device), best]
