"""Results of the live-ROS latency experiment (``sim_latency --clock ros``): the driver's per-episode
results (:class:`rtc_ros.experiments.runner.EpisodeResult`) summarised and written, and the report run
on the recorded bags."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rtc_ros.core.stats import wilson_interval
from rtc_ros.experiments.runner import REPO, EpisodeResult


def summarize_results(results: list[EpisodeResult]) -> list[dict[str, Any]]:
    """Per (method, latency): n, success rate with its 95 % Wilson interval, mean progress, mean time to
    success (s, successes only), protective stops (total, and episodes with one; None when the simulator
    did not report them)."""
    groups: dict[tuple[str, float], list[EpisodeResult]] = {}
    for r in results:
        groups.setdefault((r.method, r.extra_latency_ms), []).append(r)
    rows = []
    for (m, lat), rs in groups.items():
        succ = [r for r in rs if r.success]
        known = all(r.protective_stops >= 0 for r in rs)
        lo, hi = wilson_interval(len(succ), len(rs))
        rows.append({"method": m, "extra_latency_ms": lat, "n": len(rs), "success_rate": round(len(succ) / len(rs), 3),
                     "success_ci95": [round(lo, 3), round(hi, 3)],
                     "progress_mean": round(sum(r.progress for r in rs) / len(rs), 2),
                     "time_to_success_s": round(sum(r.success_step for r in succ) * 0.02 / len(succ), 2) if succ else None,
                     "protective_stops": sum(r.protective_stops for r in rs) if known else None,
                     "stopped_episodes": sum(r.protective_stops > 0 for r in rs) if known else None})
    return rows


def write_results(path: Path, results: list[EpisodeResult]) -> None:
    """``results.json``: per-episode driver results and the per-group summary."""
    path.write_text(json.dumps({"episodes": [asdict(r) for r in results], "summary": summarize_results(results)},
                               indent=1))


def run_report(bag_dir: Path, out_dir: Path, env: dict[str, str], log_path: Path | None = None) -> tuple[int, str]:
    """``python -m rtc_ros.report BAG_DIR --out DIR``; returns (exit code, its output)."""
    proc = subprocess.run([sys.executable, "-m", "rtc_ros.report", str(bag_dir), "--out", str(out_dir)], env=env,
                          cwd=str(REPO), capture_output=True, text=True, timeout=1800)
    text = proc.stdout + proc.stderr
    if log_path is not None:
        log_path.write_text(text)
    return proc.returncode, text
