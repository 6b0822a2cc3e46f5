"""Finite differences of a commanded joint trajectory (ROS-free, numpy only).

One definition for the report (:mod:`rtc_ros.report.metrics`, from recorded bags) and the
simulated-time experiment (:mod:`rtc_ros.experiments.sim_offline`, from the executor's ticks):
``q (T, M)`` sampled at the controller period ``dt``; ``vel_k = (q[k+1] - q[k]) / dt``,
``acc_k = (q[k+1] - 2 q[k] + q[k-1]) / dt^2``, ``jerk_k = (q[k+2] - 3 q[k+1] + 3 q[k] - q[k-1]) / dt^3``;
a stencil that spans a non-consecutive pair of rows (a lost message) is NaN, and so are rows
without a full stencil.
"""

from __future__ import annotations

import math

import numpy as np


def finite_differences(q: np.ndarray, dt: float, consecutive: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(vel, acc, jerk)``, each ``(T, M)``, of ``q (T, M)`` at period ``dt`` (see module docstring).

    Args:
        q: commanded positions, one row per controller step.
        dt: controller period (s), > 0.
        consecutive: ``(T - 1,)`` bool, True where rows ``k`` and ``k + 1`` are consecutive steps
            (default: all are).
    """
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2:
        raise ValueError(f"q must be (T, M), got shape {q.shape}")
    T, M = q.shape
    cons = np.ones(max(T - 1, 0), dtype=bool) if consecutive is None else np.asarray(consecutive, dtype=bool)
    if cons.shape != (max(T - 1, 0),):
        raise ValueError(f"consecutive must have shape ({max(T - 1, 0)},), got {cons.shape}")
    vel = np.full((T, M), np.nan)
    acc = np.full((T, M), np.nan)
    jerk = np.full((T, M), np.nan)
    if T >= 2:
        v = np.diff(q, axis=0) / dt
        v[~cons] = np.nan
        vel[:-1] = v
    if T >= 3:
        a = (q[2:] - 2 * q[1:-1] + q[:-2]) / dt**2
        a[~(cons[1:] & cons[:-1])] = np.nan
        acc[1:-1] = a
    if T >= 4:
        j = (q[3:] - 3 * q[2:-1] + 3 * q[1:-2] - q[:-3]) / dt**3
        j[~(cons[2:] & cons[1:-1] & cons[:-2])] = np.nan
        jerk[1:-2] = j
    return vel, acc, jerk


def nanmax_abs(x: np.ndarray) -> float:
    """Largest finite ``|x|`` (NaN when there is none)."""
    a = np.abs(np.asarray(x, dtype=np.float64))
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else math.nan


def splice_extrema(acc: np.ndarray, jerk: np.ndarray, splices: np.ndarray) -> tuple[float, float]:
    """Max ``|acc|`` and ``|jerk|`` (``(T, M)`` each) over all joints among the stencils that straddle
    a splice row ``i`` (the first row commanded from a new chunk): acc rows ``i-1, i``; jerk rows
    ``i-2 .. i``. NaN when there is no splice."""
    splices = np.asarray(splices, dtype=np.int64).reshape(-1)
    if splices.size == 0:
        return math.nan, math.nan
    T = acc.shape[0]
    acc_rows = np.unique(np.clip(np.concatenate([splices - 1, splices]), 0, T - 1))
    jerk_rows = np.unique(np.clip(np.concatenate([splices - 2, splices - 1, splices]), 0, T - 1))
    return nanmax_abs(acc[acc_rows]), nanmax_abs(jerk[jerk_rows])
