"""The Figure 5 plots of the delay sweep (:mod:`rtc_ros.benchmarks.delay_sweep`): solve rate vs
inference delay and vs execution horizon, averaged over tasks and per task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rtc_ros.benchmarks.protocol import pooled_wilson

_STYLE = {"rtc": ("RTC (ours, exp)", "C3", "o"), "rtc_linear": ("RTC linear", "C1", "v"),
          "rtc_hard": ("RTC hard mask", "C5", "^"), "rtc_trained": ("Training-time RTC", "C6", "P"),
          "naive": ("Naive async", "C0", "s"),
          "bid": ("BID (N=32, K=3)", "C2", "D"), "te_sparse": ("Temporal ensembling", "C4", "x")}


def plot_figure5(rows: list[dict[str, Any]], cfg: Any, out_dir: Path) -> list[Path]:
    """Figure 5 layout: solve rate vs delay (s = max(d, 1)) and vs execution horizon (d = 1);
    ``figure5.png`` averages over tasks (pooled Wilson bands), ``figure5_per_task.png`` per task.

    ``rows``: the sweep's rows (``sweep``, ``task``, ``method``, ``d``, ``s``, ``solve_rate``,
    ``rollouts``); ``cfg``: the :class:`rtc_ros.benchmarks.delay_sweep.SweepConfig` (its ``methods``,
    ``tasks``, ``horizon_d``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def panel(ax: Any, sel: list[dict[str, Any]], var: str, title: str) -> None:
        lows: list[float] = []
        for m in cfg.methods:
            pts = [r for r in sel if r["method"] == m]
            xs = sorted({r[var] for r in pts})
            if not xs:
                continue
            ys, lo, hi = [], [], []
            for x in xs:
                p = [r for r in pts if r[var] == x]
                rates = [r["solve_rate"] for r in p]
                ys.append(np.mean(rates))
                a, b = pooled_wilson(rates, p[0]["rollouts"])
                lo.append(a)
                hi.append(b)
            label, color, marker = _STYLE.get(m, (m, None, "o"))
            ax.plot(xs, ys, marker=marker, color=color, label=label)
            ax.fill_between(xs, lo, hi, color=color, alpha=0.15, linewidth=0)
            lows += lo
        ax.set_title(title)
        ax.set_xticks(sorted({r[var] for r in sel}))
        ax.set_xlabel("inference delay d" if var == "d" else f"execution horizon s (d = {cfg.horizon_d})")
        ax.set_ylabel("solve rate")
        if lows:  # zoom to the data (as the paper's figure does), never below 0
            ax.set_ylim(max(-0.02, min(lows) - 0.03), 1.01)
        ax.grid(alpha=0.3)

    has_h = any(r["sweep"] == "horizon" for r in rows)
    ncol = 2 if has_h else 1
    paths = []
    fig, axes = plt.subplots(1, ncol, figsize=(5.5 * ncol, 4.2), squeeze=False)
    panel(axes[0, 0], [r for r in rows if r["sweep"] == "delay"], "d", f"mean of {len(cfg.tasks)} tasks, s = max(d, 1)")
    if has_h:
        panel(axes[0, 1], [r for r in rows if r["sweep"] == "horizon"], "s", f"mean of {len(cfg.tasks)} tasks")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    paths.append(out_dir / "figure5.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    n = len(cfg.tasks)
    fig, axes = plt.subplots(n, ncol, figsize=(5.0 * ncol, 3.2 * n), squeeze=False)
    for i, t in enumerate(cfg.tasks):
        panel(axes[i, 0], [r for r in rows if r["sweep"] == "delay" and r["task"] == t], "d", t)
        if has_h:
            panel(axes[i, 1], [r for r in rows if r["sweep"] == "horizon" and r["task"] == t], "s", t)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    paths.append(out_dir / "figure5_per_task.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths
