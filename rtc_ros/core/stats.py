"""Small rolling statistics for run-time diagnostics (ROS-free, numpy only, thread-safe)."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class RollingStats:
    """The last ``window`` samples of a scalar, with percentiles, max and mean.

    ``summary()`` returns ``{}`` while empty so callers can omit keys instead of reporting NaN.
    """

    def __init__(self, window: int = 1000) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self._q: deque[float] = deque(maxlen=window)
        self._count = 0
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        with self._lock:
            self._q.append(float(value))
            self._count += 1

    @property
    def count(self) -> int:
        """Total samples ever added (not only those in the window)."""
        with self._lock:
            return self._count

    def values(self) -> np.ndarray:
        with self._lock:
            return np.array(self._q, dtype=np.float64)

    def last(self) -> float | None:
        with self._lock:
            return self._q[-1] if self._q else None

    def summary(self, percentiles: tuple[float, ...] = (50.0, 95.0, 99.0)) -> dict[str, float]:
        """``{"p50": .., "p95": .., "p99": .., "max": .., "mean": .., "n": ..}`` over the window."""
        v = self.values()
        if v.size == 0:
            return {}
        out = {f"p{int(p) if float(p).is_integer() else p}": float(np.percentile(v, p)) for p in percentiles}
        out.update(max=float(v.max()), mean=float(v.mean()), n=float(v.size))
        return out
