"""Build the guidance target Y from the previous chunk's remaining actions."""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray


def build_prefix(prev_chunk: ArrayLike, consumed: int) -> ArrayLike:
    """Re-index the previous chunk so that index 0 is "now", padding by holding the last action.

    Args:
        prev_chunk: previous chunk, shape ``(..., H, M)`` (numpy or torch; the result has the same
            type, dtype and device).
        consumed: how many of its actions have executed (or will have, when the new chunk's
            observation is taken), ``0 <= consumed <= H`` (``H``: nothing remains, every entry
            holds the last action; the prefix weights are then all zero anyway since ``s = H``).

    Returns:
        ``Y`` of shape ``(..., H, M)`` with ``Y[..., i, :] = prev[..., consumed + i, :]`` while that
        exists, and ``prev[..., H - 1, :]`` (the last real action) afterwards. Never zero padding:
        zeros in normalised space decode to the dataset mean and cause seams.

    Raises:
        ValueError: if ``consumed`` is out of range or the array has fewer than 2 dimensions.
    """
    if prev_chunk.ndim < 2:
        raise ValueError(f"prev_chunk must have shape (..., H, M), got {tuple(prev_chunk.shape)}")
    horizon = prev_chunk.shape[-2]
    if not 0 <= consumed <= horizon:
        raise ValueError(f"consumed must be in [0, H={horizon}], got {consumed}")
    idx = np.minimum(np.arange(horizon) + consumed, horizon - 1)
    if isinstance(prev_chunk, torch.Tensor):
        return prev_chunk[..., torch.as_tensor(idx, device=prev_chunk.device), :]
    return prev_chunk[..., idx, :]
