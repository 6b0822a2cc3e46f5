"""Small statistics (ROS-free, numpy only): rolling windows for run-time diagnostics (thread-safe),
the Wilson interval of a success rate, Newcombe's interval of a paired difference of success rates and
a paired bootstrap of a mean difference (experiments)."""

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
        ``(mean difference, lo, hi)``; all NaN when no pair is left, ``lo``/``hi`` NaN for one pair.
        For 0/1 outcomes use :func:`paired_proportion_difference` (a percentile bootstrap gives
        ``[0, 0]`` when no pair disagrees, and covers far less than 95 % near 0).
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
    if diff.size == 1:  # one pair: every resample is that pair, a zero-width interval that says nothing
        return (float(diff[0]), math.nan, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, diff.size, size=(n_boot, diff.size))
    means = diff[idx].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return (float(diff.mean()), float(lo), float(hi))


def paired_proportion_difference(a: np.ndarray, b: np.ndarray, z: float = 1.959964) -> tuple[float, float, float]:
    """Difference of two success rates measured on the same units (``mean(a) - mean(b)``) with
    Newcombe's 95 % score interval for paired proportions (method 10 of Newcombe, Stat. Med. 1998,
    17:2635; "Newcombe square-and-add" in Fagerland, Lydersen & Laake): the two Wilson intervals
    combined with the pairs' correlation, whose numerator ``AD - BC`` is reduced by ``N/2`` when positive
    (0 when it is below ``N/2``).

    Args:
        a, b: ``(N,)`` outcomes 0/1 of the same N units (e.g. episodes with the same seed) under two
            conditions; pairs with a NaN on either side are dropped.

    Returns:
        ``(difference, lo, hi)``: all NaN when no pair is left. Unlike a bootstrap, the interval has a
        width when no pair disagrees (e.g. 10 pairs all successes: ``[-0.28, +0.28]``).

    Raises:
        ValueError: unpaired lengths, or an outcome other than 0, 1 or NaN.
    """
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"a and b must be paired (same length), got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if not (np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all()):
        raise ValueError("paired_proportion_difference needs 0/1 outcomes")
    n = int(x.size)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    both = int(np.sum((x == 1) & (y == 1)))  # Newcombe's a, b, c, d: (1,1), (1,0), (0,1), (0,0)
    only_a = int(np.sum((x == 1) & (y == 0)))
    only_b = int(np.sum((x == 0) & (y == 1)))
    neither = n - both - only_a - only_b
    p1, p2 = (both + only_a) / n, (both + only_b) / n
    l1, u1 = wilson_interval(both + only_a, n, z)
    l2, u2 = wilson_interval(both + only_b, n, z)
    den = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    cross = both * neither - only_a * only_b
    # the pairs' correlation, with Newcombe's continuity-corrected numerator for a positive one (as
    # Fagerland, Lydersen & Laake's "Newcombe square-and-add" and Newcombe & Altman's worked example)
    if den == 0 or 0 <= cross <= n / 2:
        phi = 0.0
    else:
        phi = (cross - n / 2 if cross > 0 else cross) / math.sqrt(den)
    diff = p1 - p2
    d_lo = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    d_hi = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return (diff, max(-1.0, diff - d_lo), min(1.0, diff + d_hi))
