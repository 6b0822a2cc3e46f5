"""Prefix weights W (length H) for guided inpainting toward the previous chunk.

``W_i = 1`` for ``i < d`` (frozen: executed before the new chunk can arrive),
``W_i = c_i (e^{c_i} - 1) / (e - 1)`` for ``d <= i < H - s`` with
``c_i = (H - s - i) / (H - s - d + 1)`` (exponential decay over the overlap), and ``W_i = 0`` for
``i >= H - s``. The start is clamped to the end: ``d' = min(d, H - s)`` (as in the authors' code).

Golden example: ``prefix_weights(8, 2, 2)`` ->
``[1, 1, 0.5706, 0.2871, 0.1145, 0.0258, 0, 0]``.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import torch

Schedule = Literal["exp", "linear", "hard", "none"]
SCHEDULES: tuple[str, ...] = ("exp", "linear", "hard", "none")


def check_delay(d: object, s: object, horizon: int) -> tuple[int, int]:
    """``(d, s)`` as Python ints after checking each is an integer (NumPy's included, not a bool or a float such
    as 2.5) in ``[0, horizon]``; ValueError naming the one that is not."""
    out = []
    for name, v in (("d (inference delay)", d), ("s (execution horizon)", s)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= int(v) <= horizon:
            raise ValueError(f"{name} must be an integer in [0, H={horizon}], got {v!r}")
        out.append(int(v))
    return out[0], out[1]


def prefix_weights(
    horizon: int,
    d: int,
    s: int,
    schedule: Schedule = "exp",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Return the prefix weight vector W of shape ``(horizon,)``.

    Args:
        horizon: H, the chunk length.
        d: inference delay in steps (number of frozen leading actions), ``d >= 0``.
        s: execution horizon, ``0 <= s <= H``; the mask ends at ``H - s``.
        schedule: ``"exp"`` (the paper's soft mask), ``"linear"`` (``c_i`` in the middle region),
            ``"hard"`` (1 for ``i < d`` else 0) or ``"none"`` (all zeros: plain sampling).
        dtype: torch dtype of the result.

    Raises:
        ValueError: on a negative ``d``, ``s`` outside ``[0, H]``, or an unknown schedule.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if d < 0:
        raise ValueError(f"d (inference delay) must be >= 0, got {d}")
    if not 0 <= s <= horizon:
        raise ValueError(f"s (execution horizon) must be in [0, H={horizon}], got {s}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown prefix schedule {schedule!r}; expected one of {SCHEDULES}")
    end = horizon - s
    start = min(d, end)
    idx = torch.arange(horizon, dtype=torch.float64)
    if schedule == "none":
        w = torch.zeros(horizon, dtype=torch.float64)
    elif schedule == "hard":
        w = (idx < start).to(torch.float64)
    else:
        # c_i = (end - i) / (end - start + 1), clipped to [0, 1]; >= 1 exactly for i < start.
        c = ((end - idx) / (end - start + 1)).clamp(0.0, 1.0)
        w = c if schedule == "linear" else c * torch.expm1(c) / (math.e - 1.0)
        w = torch.where(idx < start, torch.ones_like(w), w)
    return w.to(dtype)
