"""Report figures (matplotlib, Agg backend), in the spirit of the paper's Figures 1 and 6.

* ``joint_profile.png``: one joint's commanded position, velocity and acceleration over time, one
  line per method (a representative episode of each), splices marked (Figure 1).
* ``progress_vs_time.png``: mean cumulative task progress vs time, one panel per injected latency.
* ``throughput_vs_latency.png``: throughput (score / min, mean +- s.e.m.) vs injected latency (Fig. 6).
* ``delay_forecast_vs_consumed.png``: mean forecast ``d`` vs observed ``consumed`` per method and injected latency.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rtc_ros.recording.episode import Episode  # noqa: E402
from rtc_ros.report.metrics import Derivatives, EpisodeMetrics, splice_indices  # noqa: E402

log = logging.getLogger(__name__)


def _colors(methods: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {m: cmap(i % 10) for i, m in enumerate(sorted(methods))}


def _save(fig: Any, out: Path) -> Path:
    """Lay out, write ``out`` (110 dpi) and free the figure."""
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def pick_joint(der: Derivatives, names: list[str], joint: str | int | None) -> int:
    """Index of ``joint`` (name or index); default the joint with the largest commanded range."""
    if joint is None:
        rng = np.nanmax(der.q, axis=0) - np.nanmin(der.q, axis=0)
        return int(np.nanargmax(rng))
    if isinstance(joint, int) or (isinstance(joint, str) and joint.lstrip("-").isdigit()):
        j = int(joint)
        if not -der.q.shape[1] <= j < der.q.shape[1]:
            raise ValueError(f"joint index {j} out of range for {der.q.shape[1]} joints")
        return j % der.q.shape[1]
    if joint not in names:
        raise ValueError(f"joint {joint!r} not among {names}")
    return names.index(joint)


def plot_joint_profile(
    reps: dict[str, "Rep"],
    out: Path,
    joint: str | int | None = None,
    window_s: float = 4.0,
    title: str = "",
) -> Path | None:
    """Figure 1 style plot; ``reps``: method -> :class:`Rep` (a representative episode)."""
    if not reps:
        return None
    first = next(iter(reps.values()))
    names = first.names
    j = pick_joint(first.der, names, joint)
    jname = names[j] if j < len(names) else f"joint {j}"
    colors = _colors(list(reps))
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    # one common time origin: half a second before the earliest first splice
    firsts = [float(r.der.t[r.splices[0]]) for r in reps.values() if r.splices.size]
    t0 = max(0.0, min(firsts) - 0.5) if firsts else 0.0
    for method, rep in sorted(reps.items()):
        der, sp = rep.der, rep.splices
        t = der.t
        sel = (t >= t0) & (t <= t0 + window_s)
        for ax, y in zip(axes, (der.q[:, j], der.vel[:, j], der.acc[:, j])):
            ax.plot(t[sel] - t0, y[sel], color=colors[method], lw=1.2, label=method)
            spl = sp[(t[sp] >= t0) & (t[sp] <= t0 + window_s)]
            ax.plot(t[spl] - t0, y[spl], "o", ms=3, color=colors[method])
    for ax, lab in zip(axes, ("position", "velocity (/s)", "acceleration (/s²)")):
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    axes[-1].set_xlabel("time (s) — dots: chunk splices")
    fig.suptitle(f"{title or 'commanded trajectory'}: {jname} ("
                 + ", ".join(f"{m}: {r.episode}" for m, r in sorted(reps.items())) + ")", fontsize=10)
    return _save(fig, out)


def progress_curve(ep: Episode, score: float) -> tuple[np.ndarray, np.ndarray]:
    """Step curve ``(t, progress)`` of one episode; without ``rtc/progress`` a single step to
    ``score`` at the episode end."""
    dur = ep.duration_s
    if ep.progress is not None and len(ep.progress[0]):
        t, v = ep.progress
        return np.concatenate([[0.0], t, [dur]]), np.concatenate([[0.0], v, [v[-1]]])
    s = 0.0 if math.isnan(score) else score
    return np.array([0.0, dur, dur]), np.array([0.0, 0.0, s])


def plot_progress(
    curves: dict[float, dict[str, list[tuple[np.ndarray, np.ndarray]]]],
    out: Path,
) -> Path | None:
    """Mean cumulative progress vs time; ``curves``: latency -> method -> [(t, progress)]."""
    if not curves:
        return None
    lats = sorted(curves)
    methods = sorted({m for c in curves.values() for m in c})
    colors = _colors(methods)
    fig, axes = plt.subplots(1, len(lats), figsize=(4.2 * len(lats), 3.6), squeeze=False, sharey=True)
    for ax, lat in zip(axes[0], lats):
        for method, eps in sorted(curves[lat].items()):
            tmax = max(float(t[-1]) for t, _ in eps)
            grid = np.linspace(0.0, tmax, 300)
            ys = [v[np.clip(np.searchsorted(t, grid, side="right") - 1, 0, len(v) - 1)] for t, v in eps]
            ax.step(grid, np.mean(ys, axis=0), where="post", color=colors[method], label=f"{method} (n={len(eps)})")
        ax.set_title(f"+{lat:g} ms")
        ax.set_xlabel("time (s)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("cumulative progress (mean)")
    axes[0][0].legend(fontsize=8, loc="upper left")
    return _save(fig, out)


def _latency_axes(ax: Any, ylabel: str, legend_size: int) -> None:
    ax.set_xlabel("injected latency (ms)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)


def plot_throughput(summary: list[dict[str, Any]], out: Path) -> Path | None:
    """Throughput (mean +- s.e.m.) vs injected latency, one line per method."""
    if not summary:
        return None
    methods = sorted({r["method"] for r in summary})
    colors = _colors(methods)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for m in methods:
        rows = sorted((r for r in summary if r["method"] == m), key=lambda r: r["extra_latency_ms"])
        x = [r["extra_latency_ms"] for r in rows]
        y = [r["throughput_mean"] for r in rows]
        e = [0.0 if math.isnan(r["throughput_sem"]) else r["throughput_sem"] for r in rows]
        ax.errorbar(x, y, yerr=e, marker="o", capsize=3, color=colors[m], label=m)
    _latency_axes(ax, "throughput (score / min)", 8)
    return _save(fig, out)


def plot_delays(summary: list[dict[str, Any]], out: Path) -> Path | None:
    """Mean forecast (dashed) vs consumed (solid) delay in steps vs injected latency."""
    rows_ok = [r for r in summary if not math.isnan(r["consumed_mean"])]
    if not rows_ok:
        return None
    methods = sorted({r["method"] for r in rows_ok})
    colors = _colors(methods)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for m in methods:
        rows = sorted((r for r in rows_ok if r["method"] == m), key=lambda r: r["extra_latency_ms"])
        x = [r["extra_latency_ms"] for r in rows]
        ax.plot(x, [r["consumed_mean"] for r in rows], "-o", color=colors[m], label=f"{m} consumed")
        ax.plot(x, [r["d_mean"] for r in rows], "--x", color=colors[m], label=f"{m} d (forecast)")
    _latency_axes(ax, "delay d (controller steps)", 7)
    return _save(fig, out)


@dataclass
class Rep:
    """What the joint-profile plot keeps of a representative episode."""

    episode: str
    extra_latency_ms: float
    names: list[str]
    der: Derivatives
    splices: np.ndarray


def make_rep(ep: Episode, m: EpisodeMetrics, der: Derivatives) -> Rep:
    series = ep.command_series()
    return Rep(m.episode, m.extra_latency_ms, list(series.names) if series is not None else [], der, splice_indices(ep))


def representatives(
    candidates: dict[tuple[str, float], Rep], extra_latency_ms: float | None
) -> tuple[float | None, dict[str, Rep]]:
    """One :class:`Rep` per method at ``extra_latency_ms`` (default: the latency with the most
    methods, then the highest) from ``candidates`` keyed by ``(method, extra_latency_ms)``."""
    if not candidates:
        return extra_latency_ms, {}
    if extra_latency_ms is None:
        by_lat: dict[float, set[str]] = {}
        for method, lat in candidates:
            by_lat.setdefault(lat, set()).add(method)
        extra_latency_ms = max(by_lat, key=lambda lat: (len(by_lat[lat]), lat))
    return extra_latency_ms, {method: r for (method, lat), r in sorted(candidates.items())
                              if lat == extra_latency_ms}
