"""Build the guidance target Y from the previous chunk's remaining actions (one prefix builder)."""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray


def build_prefix(prev: ArrayLike, consumed: int, horizon: int | None = None) -> ArrayLike:
    """Re-index actions so that index 0 is "now", padding by holding the last action.

    Args:
        prev: actions, shape ``(..., L, M)`` (numpy or torch; the result has the same type, dtype
            and device): the previous chunk (``L = H``) or the remaining actions from the
            observation's step on (any ``L >= 1``).
        consumed: how many of them have executed (or will have, when the new chunk's observation
            is taken), ``0 <= consumed <= L`` (``L``: nothing remains, every entry holds the last
            action).
        horizon: H, the length of the result (default ``L``).

    Returns:
        ``Y`` of shape ``(..., H, M)`` with ``Y[..., i, :] = prev[..., consumed + i, :]`` while that
        exists, and ``prev[..., L - 1, :]`` (the last real action) afterwards. Never zero padding:
        zeros in normalised space decode to the dataset mean and cause seams.

    Raises:
        ValueError: if ``consumed`` or ``horizon`` is out of range or ``prev`` has fewer than 2 dims.
    """
    if prev.ndim < 2 or prev.shape[-2] < 1:
        raise ValueError(f"prev must have shape (..., L >= 1, M), got {tuple(prev.shape)}")
    length = prev.shape[-2]
    horizon = length if horizon is None else horizon
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if not 0 <= consumed <= length:
        raise ValueError(f"consumed must be in [0, L={length}], got {consumed}")
    idx = np.minimum(np.arange(horizon) + consumed, length - 1)
    if isinstance(prev, torch.Tensor):
        return prev[..., torch.as_tensor(idx, device=prev.device), :]
    return prev[..., idx, :]
