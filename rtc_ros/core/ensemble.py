"""Temporal ensembling (ACT-style): execute the average of all predictions for the current step.

Used by the executor (te_sparse: a new chunk every ``s`` steps, te_dense: as often as inference
allows) and by the simulated-delay benchmark. numpy; works for batched chunks ``(..., H, M)``.
"""

from __future__ import annotations

import threading

import numpy as np


class TemporalEnsembler:
    """Average overlapping chunk predictions per global controller step.

    A chunk added with ``start_step = t`` predicts steps ``t .. t + H - 1`` (index 0 = step ``t``).
    ``action(step)`` averages every stored prediction for ``step``, weighting the ``i``-th oldest by
    ``exp(-m * i)`` (``m = 0``: plain average, as in the paper's baseline). Thread-safe.
    """

    def __init__(self, horizon: int, m: float = 0.0, max_chunks: int | None = None) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if m < 0:
            raise ValueError(f"m (ensemble decay) must be >= 0, got {m}")
        self.horizon = horizon
        self.m = float(m)
        if max_chunks is not None and max_chunks < 1:
            raise ValueError(f"max_chunks must be >= 1 or None, got {max_chunks}")
        # None: no cap -- chunks leave once they no longer cover the current step (with s = 1,
        # H + 1 chunks can overlap one step; a cap of H would silently drop the oldest).
        self.max_chunks = max_chunks
        self._chunks: list[tuple[int, np.ndarray]] = []
        self._lock = threading.Lock()

    def add(self, chunk: np.ndarray, start_step: int) -> None:
        """Store ``chunk (..., H, M)`` predicting steps ``start_step .. start_step + H - 1``."""
        chunk = np.array(chunk, dtype=np.float64, copy=True)
        if chunk.ndim < 2 or chunk.shape[-2] != self.horizon:
            raise ValueError(f"chunk must be (..., H={self.horizon}, M), got {chunk.shape}")
        if not np.isfinite(chunk).all():
            raise ValueError("chunk contains NaN or Inf")
        with self._lock:
            self._chunks.append((int(start_step), chunk))
            self._chunks.sort(key=lambda c: c[0])
            if self.max_chunks is not None and len(self._chunks) > self.max_chunks:
                self._chunks = self._chunks[-self.max_chunks :]

    def action(self, step: int) -> np.ndarray | None:
        """Weighted average ``(..., M)`` of all predictions for ``step``, or None if none covers it."""
        with self._lock:
            self._chunks = [c for c in self._chunks if c[0] + self.horizon > step]
            preds = [c[step - t] if c.ndim == 2 else c[..., step - t, :] for t, c in self._chunks if t <= step]
        if not preds:
            return None
        w = np.exp(-self.m * np.arange(len(preds)))
        return np.tensordot(w / w.sum(), np.stack(preds), axes=(0, 0))

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
