"""Results of the live-ROS latency experiment (``sim_latency --clock ros``): the driver's per-episode
results (:class:`rtc_ros.experiments.runner.EpisodeResult`) summarised and written, the report run
on the recorded bags, and paired differences between two methods' episodes (also across runs):

    python -m rtc_ros.experiments.live_results --pair RUN_A/results.json:METHOD_A RUN_B/results.json:METHOD_B
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rtc_ros.core.stats import paired_bootstrap, wilson_interval
from rtc_ros.experiments.runner import REPO, EpisodeResult
from rtc_ros.experiments.sim_experiment import BOOT_SEED, N_BOOT

#: the simulator's control period (s): ``sim_steps`` are 20 ms ticks
TICK_S = 0.02


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


def score_per_min(episode: dict[str, Any]) -> float:
    """Throughput of one ``results.json`` episode: progress per minute of simulated time run."""
    return episode["progress"] / (episode["sim_steps"] * TICK_S) * 60.0 if episode["sim_steps"] else 0.0


def load_episodes(path: Path, method: str) -> dict[tuple[float, int], dict[str, Any]]:
    """``results.json``'s episodes of ``method``, keyed by (injected latency ms, seed).

    Raises:
        ValueError: naming the file and the methods it holds when ``method`` has no episode there.
    """
    episodes = json.loads(Path(path).read_text())["episodes"]
    out = {(float(e["extra_latency_ms"]), int(e["seed"])): e for e in episodes if e["method"] == method}
    if not out:
        raise ValueError(f"{path}: no episodes of method {method!r} (it has {sorted({e['method'] for e in episodes})})")
    return out


def paired_live_differences(a: dict[tuple[float, int], dict[str, Any]],
                            b: dict[tuple[float, int], dict[str, Any]]) -> list[dict[str, Any]]:
    """``a`` minus ``b`` per latency, paired by seed (the seeds both have), for success (0/1) and
    throughput (:func:`score_per_min`): mean difference with the experiment's percentile bootstrap
    95 % interval (``N_BOOT`` resamples, seed ``BOOT_SEED``)."""
    rows = []
    for lat in sorted({k[0] for k in a} & {k[0] for k in b}):
        seeds = sorted(s for (l, s) in a if l == lat and (l, s) in b)
        for metric, value in (("success", lambda e: float(e["success"])), ("throughput", score_per_min)):
            x = np.asarray([value(a[(lat, s)]) for s in seeds])
            y = np.asarray([value(b[(lat, s)]) for s in seeds])
            diff, lo, hi = paired_bootstrap(x, y, N_BOOT, BOOT_SEED)
            rows.append({"latency_ms": lat, "metric": metric, "n_pairs": len(seeds), "a_mean": float(x.mean()),
                         "b_mean": float(y.mean()), "difference": diff, "ci95": [lo, hi]})
    return rows


def _run_method(arg: str) -> tuple[Path, str]:
    path, sep, method = arg.rpartition(":")
    if not sep or not path or not method:
        raise argparse.ArgumentTypeError(f"expected RESULTS.json:METHOD, got {arg!r}")
    return Path(path), method


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Paired differences (A minus B, by seed) between two methods' "
                                             "episodes of live-ROS runs (results.json)")
    ap.add_argument("--pair", nargs=2, type=_run_method, required=True, metavar=("A.json:METHOD", "B.json:METHOD"))
    args = ap.parse_args(argv)
    (pa, ma), (pb, mb) = args.pair
    try:
        rows = paired_live_differences(load_episodes(pa, ma), load_episodes(pb, mb))
    except (OSError, ValueError, KeyError) as e:
        ap.error(str(e))
    print(f"{ma} ({pa}) minus {mb} ({pb}), paired by seed, bootstrap 95 % CI:")
    for r in rows:
        print(f"  +{r['latency_ms']:3.0f} ms  {r['metric']:10s} n={r['n_pairs']:3d}  {r['a_mean']:7.2f} - {r['b_mean']:7.2f}"
              f" = {r['difference']:+.2f} [{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}]")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
