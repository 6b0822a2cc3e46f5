"""Small statistics (ROS-free, numpy only): rolling windows for run-time diagnostics (thread-safe),
the Wilson interval of a success rate and a paired bootstrap of a mean difference (experiments)."""

from __future__ import annotations

import math
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


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval ``(lo, hi)`` of a binomial proportion ``successes / n``
    (``(nan, nan)`` for ``n = 0``). Raises ValueError when ``successes`` is outside ``[0, n]``."""
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n={n}], got {successes}")
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 10_000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """Mean paired difference ``mean(a - b)`` with a percentile bootstrap interval.

    Args:
        a, b: ``(N,)`` values of the same N units (e.g. episodes with the same seed) under two
            conditions; pairs with a NaN on either side are dropped.
        n_boot: bootstrap resamples of the N pairs (with replacement).
        seed: seed of the resampling RNG (the interval is reproducible).
        level: interval coverage (0.95: the 2.5 and 97.5 percentiles).

    Returns:
        ``(mean difference, lo, hi)``; all NaN when no pair is left.
    """
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"a and b must be paired (same length), got {x.shape} and {y.shape}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    diff = (x - y)[np.isfinite(x) & np.isfinite(y)]
    if diff.size == 0:
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, diff.size, size=(n_boot, diff.size))
    means = diff[idx].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return (float(diff.mean()), float(lo), float(hi))
