"""Figures of the simulated-time latency experiment (matplotlib, Agg), after the paper's Figures 1 and 6.

* ``figure1_<task>.png``: one joint's commanded position, velocity and acceleration over the first
  ``seconds`` of the same seed for sync, te_dense and rtc (those present) at the largest injected
  latency; chunk switches are marked on the time axis.
* ``figure6.png``: per task, throughput (mean progress per minute, 95 % bootstrap interval) vs
  injected latency per method (each point labelled with the delay ``d`` in ticks it actually ran at:
  injected latency + the method's compute time), the same throughput vs that actual delay, and the
  mean cumulative task progress vs time per method, one panel per latency (an episode keeps its
  final progress after it ended).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rtc_ros.core.trajectory import finite_differences  # noqa: E402
from rtc_ros.experiments.sim_setup import trace_path  # noqa: E402

FIG1_METHODS = ("sync", "te_dense", "rtc")
METHOD_ORDER = ("sync", "te_sparse", "te_dense", "naive", "bid", "rtc", "rtc_linear", "rtc_hard")


def _color(method: str) -> Any:
    order = list(METHOD_ORDER)
    return plt.get_cmap("tab10")(order.index(method) % 10 if method in order else 9)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def figure1(out: Path, task: str, latency_ms: float, joint: str = "right_elbow", seconds: float = 4.0,
            methods: tuple[str, ...] = FIG1_METHODS) -> Path | None:
    """Figure 1 from the saved traces (``out/traces``) of ``task`` at ``latency_ms``; None without traces."""
    traces = {m: trace_path(out, task, m, latency_ms) for m in methods}
    traces = {m: p for m, p in traces.items() if p.is_file()}
    if not traces:
        return None
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    seed = None
    for method, path in traces.items():
        z = np.load(path)
        names = [str(n) for n in z["joint_names"]]
        if joint not in names:
            raise ValueError(f"fig1 joint {joint!r} is not one of {names}")
        j, dt = names.index(joint), float(z["dt"])
        q = z["command"]
        n = min(len(q), int(round(seconds / dt)) + 1)
        vel, acc, _ = finite_differences(q[:n], dt)
        t = np.arange(n) * dt
        for ax, y in zip(axes, (q[:n, j], vel[:, j], acc[:, j])):
            ax.plot(t, y, color=_color(method), lw=1.3, label=method)
        sp = z["splice"]
        sp = sp[sp < n]
        axes[0].plot(t[sp], q[sp, j], "|", color=_color(method), ms=10)
        seed = int(z["seed"])
    for ax, label in zip(axes, ("position (rad)", "velocity (rad/s)", "acceleration (rad/s²)")):
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    axes[0].legend(loc="best", fontsize=8)
    axes[0].set_title(f"{task}: commanded {joint}, seed {seed}, +{latency_ms:g} ms injected (| = chunk switch)")
    return _save(fig, out / f"figure1_{task}.png")


def progress_curve(stage_steps: list[list[int]], horizon: int) -> np.ndarray:
    """``(horizon,)`` mean task progress at each tick over episodes; ``stage_steps[e][level]`` is the
    first tick level ``level`` was reached (-1: never); an episode keeps its progress after its end."""
    curve = np.zeros(horizon)
    for ss in stage_steps:
        p = np.zeros(horizon)
        for level, k in enumerate(ss):
            if level > 0 and 0 <= k < horizon:
                p[k:] = level
        curve += p
    return curve / max(len(stage_steps), 1)


def figure6(out: Path, res: dict[str, Any]) -> Path:
    """Figure 6 from the results object (cells and episodes)."""
    cfg = res["config"]
    tasks, lats = cfg["tasks"], cfg["latencies_ms"]
    methods = [m for m in METHOD_ORDER if m in cfg["methods"]] + [m for m in cfg["methods"] if m not in METHOD_ORDER]
    dt, horizon = float(cfg["dt"]), int(cfg["max_episode_steps"])
    fig, axes = plt.subplots(len(tasks), 2 + len(lats), figsize=(4.2 * (2 + len(lats)), 3.6 * len(tasks)),
                             squeeze=False)
    for row, task in enumerate(tasks):
        ax, ax_d = axes[row][0], axes[row][1]
        for m in methods:
            cells = sorted((c for c in res["cells"] if c["task"] == task and c["method"] == m),
                           key=lambda c: c["latency_ms"])
            if not cells:
                continue
            x = np.asarray([c["latency_ms"] for c in cells], dtype=float)
            d = np.asarray([c["delay_ticks"] for c in cells], dtype=float)
            y = np.asarray([c["throughput"] for c in cells], dtype=float)
            ci = np.asarray([c["throughput_ci95"] for c in cells], dtype=float)
            err = np.abs(np.stack([y - ci[:, 0], ci[:, 1] - y]))
            ax.errorbar(x, y, yerr=err, color=_color(m), marker="o", capsize=3, label=m)
            for xi, yi, di in zip(x, y, d):
                ax.annotate(f"d={di:g}", (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=6,
                            color=_color(m))
            ax_d.errorbar(d, y, yerr=err, color=_color(m), marker="o", capsize=3, label=m)
        ax.set_xlabel("injected latency (ms)")
        ax_d.set_xlabel(f"actual delay d (ticks of {dt * 1e3:g} ms: compute + injected)")
        for a in (ax, ax_d):
            a.set_ylabel("throughput (progress / min)")
            a.grid(alpha=0.3)
        ax.set_title(f"{task}: throughput (d = actual delay)")
        ax_d.set_title(f"{task}: throughput vs actual delay")
        ax.legend(fontsize=7)
        t = np.arange(horizon) * dt
        for col, lat in enumerate(lats, start=2):
            ax = axes[row][col]
            for m in methods:
                eps = [e for e in res["episodes"] if e["task"] == task and e["method"] == m and e["latency_ms"] == lat]
                if eps:
                    curve = progress_curve([e["stage_steps"] for e in eps], horizon)
                    ax.plot(t, curve, color=_color(m), lw=1.3, label=m)
            ax.set_xlabel("time (s)")
            ax.set_ylabel("mean task progress (0..5)")
            ax.set_title(f"{task}: +{lat:g} ms")
            ax.grid(alpha=0.3)
    return _save(fig, out / "figure6.png")


def make_plots(out: Path, res: dict[str, Any], fig1_joint: str = "right_elbow") -> list[Path]:
    """All figures; returns the files written."""
    cfg = res["config"]
    paths = [figure6(out, res)]
    for task in cfg["tasks"]:
        p = figure1(out, task, max(cfg["latencies_ms"]), fig1_joint,
                    methods=tuple(m for m in FIG1_METHODS if m in cfg["methods"]))  # (this run's only)
        if p is not None:
            paths.append(p)
    return paths
