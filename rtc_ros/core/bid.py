"""Bidirectional decoding (BID, Liu et al. 2024) as a baseline for RTC, as in the authors' code.

Sample ``N`` chunks from the strong policy and pick, per batch element, the one minimising
``backward + forward`` (the reading of the RTC authors' reference implementation, ``bid_action``):

* backward coherence: ``sum_h W_h ||a_h - y_h||_2`` -- per-step L2 distance to the previous chunk's
  remaining actions ``Y``, weighted by the same exponential prefix weights RTC uses;
* forward contrast (with a weak policy): ``(sum_{k,h} ||a_h - a+_{k,h}|| - sum_{k,h} ||a_h - a-_{k,h}||) / N``
  where ``a+`` are the ``K`` strong samples and ``a-`` the ``K`` weak samples with the lowest
  backward loss. The weak samples start from the same noise as the strong ones (as in that code).

Shapes: observations ``(B, ...)``, chunks ``(B, H, M)``, candidates ``(B, N, H, M)``, losses ``(B, N)``.
"""

from __future__ import annotations

import torch

from rtc_ros.core.context import map_tensors, repeat_batch
from rtc_ros.core.guidance import VelocityFn
from rtc_ros.core.sampling import sample_plain


def _first_tensor(context: object) -> torch.Tensor:
    found: list[torch.Tensor] = []
    map_tensors(lambda t: found.append(t) or t, context)
    if not found:
        raise ValueError("the observation context holds no tensor")
    return found[0]


def backward_loss(samples: torch.Tensor, prefix: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_h W_h ||a_h - y_h||``: ``samples (B, N, H, M)``, ``prefix (B, H, M)``, ``weights (H,)|(B, H)`` -> ``(B, N)``."""
    w = weights.to(samples)
    w = w[None, None, :] if w.ndim == 1 else w[:, None, :]
    err = (samples - prefix[:, None]).norm(dim=-1)  # (B, N, H)
    return (w * err).sum(-1)


def forward_loss(strong: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """Forward contrast ``(B, N)`` of ``strong (B, N, H, M)`` against ``positives``/``negatives (B, K, H, M)``."""
    n = strong.shape[1]
    pos = (strong[:, :, None] - positives[:, None]).norm(dim=-1).sum(dim=(2, 3))  # (B, N)
    neg = (strong[:, :, None] - negatives[:, None]).norm(dim=-1).sum(dim=(2, 3))
    return (pos - neg) / n


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
    batch_size: int | None = None,
    weak_obs: object | None = None,
) -> torch.Tensor:
    """Select one chunk per batch element by bidirectional decoding.

    Args:
        velocity: strong policy velocity field.
        obs: observation context, batch first (a tensor or a tuple/list/dict of them, see
            :mod:`rtc_ros.core.context`; each row is repeated ``n_samples`` times).
        prefix: previous chunk's remaining actions ``(B, H, M)`` (normalised space), or ``None``
            for the first chunk (then only forward contrast, or the first sample, decides).
        weights: prefix weights ``(H,)`` or ``(B, H)``; required when ``prefix`` is given.
        n_samples: N candidates per element (paper: 32).
        n_steps: Euler steps per sample.
        weak_velocity: weak policy (e.g. an early checkpoint) for forward contrast; ``None``
            disables forward contrast (rejection sampling on backward coherence).
        k: size of the positive/negative sets (paper: 3), ``k <= n_samples``.
        generator: torch RNG for the candidate noise.
        chunk_shape: ``(H, M)``; needed only when ``prefix`` is ``None``.
        batch_size: B (default: the first dimension of the context's first tensor).
        weak_obs: the weak policy's own observation context (default: ``obs``).

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
    batch = batch_size if batch_size is not None else _first_tensor(obs).shape[0]
    obs_rep = repeat_batch(obs, n_samples)
    shape = (batch * n_samples, horizon, dim)
    device = _first_tensor(obs).device
    noise = torch.randn(shape, generator=generator, dtype=torch.float32).to(device)
    strong = sample_plain(velocity, obs_rep, noise, n_steps).view(batch, n_samples, horizon, dim)
    if prefix is not None:
        loss = backward_loss(strong, prefix, weights)
    else:
        loss = torch.zeros(batch, n_samples, device=device)
    if weak_velocity is not None:
        weak_rep = obs_rep if weak_obs is None else repeat_batch(weak_obs, n_samples)
        weak = sample_plain(weak_velocity, weak_rep, noise, n_steps).view(batch, n_samples, horizon, dim)
        weak_loss = backward_loss(weak, prefix, weights) if prefix is not None else torch.zeros_like(loss)
        pos_idx = loss.topk(k, dim=1, largest=False).indices
        neg_idx = weak_loss.topk(k, dim=1, largest=False).indices
        gather = lambda x, i: x.gather(1, i[:, :, None, None].expand(-1, -1, horizon, dim))  # noqa: E731
        loss = loss + forward_loss(strong, gather(strong, pos_idx), gather(weak, neg_idx))
    best = loss.argmin(dim=1)
    return strong[torch.arange(batch, device=device), best]
