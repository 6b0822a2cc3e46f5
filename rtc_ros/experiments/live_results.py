"""Results of the live-ROS latency experiment (``sim_latency --clock ros``): the driver's per-episode
results (:class:`rtc_ros.experiments.runner.EpisodeResult`) summarised and written, the report run
on the recorded bags, and paired differences between two methods' episodes (also across runs, and
for simulated-time runs too):

    python -m rtc_ros.experiments.live_results --pair RUN_A/results.json:METHOD_A RUN_B/results.json:METHOD_B [--task T]
    python -m rtc_ros.experiments.live_results --table RUN/results.json [--reference rtc] [--task T]

Success differences carry Newcombe's paired score interval, throughput differences the experiment's
percentile bootstrap (:mod:`rtc_ros.core.stats`). ``--table`` prints the docs' two markdown tables
(the reference minus every other method of one run, per latency).
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

from rtc_ros.core.stats import wilson_interval
from rtc_ros.experiments.runner import REPO, EpisodeResult
from rtc_ros.experiments.sim_experiment import json_safe, paired_interval
from rtc_ros.experiments.sim_tables import diff_text

#: the simulator's control period (s): ``sim_steps`` are 20 ms ticks
TICK_S = 0.02


def summarize_results(results: list[EpisodeResult]) -> list[dict[str, Any]]:
    """Per (task, method, latency): n, successes and the success rate with its 95 % Wilson interval, throughput
    (mean progress per minute of simulated time, :func:`score_per_min`), mean progress, mean time to success (s,
    successes only), protective stops (total, and episodes with one; None when the simulator did not count them).
    ``latency_ms`` and ``task`` as the simulated-time cells name them (``extra_latency_ms`` kept for older readers)."""
    groups: dict[tuple[str, str, float], list[EpisodeResult]] = {}
    for r in results:
        groups.setdefault((r.task, r.method, r.extra_latency_ms), []).append(r)
    rows = []
    for (task, m, lat), rs in groups.items():
        succ = [r for r in rs if r.success]
        known = all(r.protective_stops >= 0 for r in rs)
        lo, hi = wilson_interval(len(succ), len(rs))
        rows.append({"task": task or None, "method": m, "latency_ms": lat, "extra_latency_ms": lat, "n": len(rs),
                     "successes": len(succ), "success_rate": round(len(succ) / len(rs), 3),
                     "success_ci95": [round(lo, 3), round(hi, 3)],
                     "throughput": round(float(np.mean([score_per_min(asdict(r)) for r in rs])), 3),
                     "progress_mean": round(sum(r.progress for r in rs) / len(rs), 2),
                     "time_to_success_s": round(sum(r.success_step for r in succ) * 0.02 / len(succ), 2) if succ else None,
                     "protective_stops": sum(r.protective_stops for r in rs) if known else None,
                     "stopped_episodes": sum(r.protective_stops > 0 for r in rs) if known else None})
    return rows


def write_results(path: Path, results: list[EpisodeResult]) -> None:
    """``results.json``: per-episode driver results and the per-group summary."""
    tmp = path.with_name(path.name + ".tmp")  # (rewritten after every episode: a Ctrl-C mid-write left it cut)
    tmp.write_text(json.dumps({"episodes": [asdict(r) for r in results], "summary": summarize_results(results)},
                              indent=1))
    tmp.replace(path)


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


def load_episodes(path: Path, method: str, task: str | None = None) -> dict[tuple[float, int], dict[str, Any]]:
    """``results.json``'s episodes of ``method``, keyed by (injected latency ms, seed), each as
    ``{"success": 0/1, "throughput": progress per minute}``. Both kinds of run: live ROS
    (``extra_latency_ms``; throughput :func:`score_per_min`) and simulated time (``latency_ms``, its
    ``throughput``; ``task`` picks one task where the run has several; a live run has one task and
    ignores it).

    Raises:
        ValueError: naming the file and what is missing (a field, the method, the task).
    """
    episodes = json.loads(Path(path).read_text()).get("episodes")
    if not isinstance(episodes, list) or not episodes:
        raise ValueError(f"{path}: no 'episodes' list (not a sim_latency results.json?)")
    live = "extra_latency_ms" in episodes[0]
    fields = ("method", "seed", "success") + (("extra_latency_ms", "progress", "sim_steps") if live else
                                               ("latency_ms", "throughput", "task"))
    for i, e in enumerate(episodes):
        lost = [f for f in fields if f not in e]
        if lost:
            raise ValueError(f"{path}: episode {i} has no field {lost[0]!r}")
    tasks = sorted({e["task"] for e in episodes}) if not live else []
    if not live and task is not None and task not in tasks:
        raise ValueError(f"{path}: no task {task!r} (it has {tasks})")
    if not live and task is None and len(tasks) > 1:
        raise ValueError(f"{path} holds the tasks {tasks}: choose one with --task")
    out = {}
    for e in episodes:
        if e["method"] != method or (not live and task is not None and e["task"] != task):
            continue
        lat = float(e["extra_latency_ms"] if live else e["latency_ms"])
        out[(lat, int(e["seed"]))] = {"success": float(e["success"]),
                                      "throughput": score_per_min(e) if live else float(e["throughput"])}
    if not out:
        raise ValueError(f"{path}: no episodes of method {method!r} (it has {sorted({e['method'] for e in episodes})})")
    return out


def paired_live_differences(a: dict[tuple[float, int], dict[str, Any]],
                            b: dict[tuple[float, int], dict[str, Any]]) -> list[dict[str, Any]]:
    """``a`` minus ``b`` per latency, paired by seed (the seeds both have), for success (0/1) and
    throughput (:func:`load_episodes`): mean difference with, for success, Newcombe's paired score
    95 % interval (``discordant`` = [a only, b only] successes) and, for throughput, the experiment's
    percentile bootstrap 95 % interval (``N_BOOT`` resamples, seed ``BOOT_SEED``). Latencies without a
    common seed are left out (see :func:`unpaired_latencies`).

    Raises:
        ValueError: no (latency, seed) is in both.
    """
    rows = []
    for lat in sorted({k[0] for k in a} & {k[0] for k in b}):
        seeds = sorted(s for (l, s) in a if l == lat and (l, s) in b)
        if not seeds:
            continue
        for metric in ("success", "throughput"):
            x = np.asarray([a[(lat, s)][metric] for s in seeds])
            y = np.asarray([b[(lat, s)][metric] for s in seeds])
            rows.append({"latency_ms": lat, "metric": metric, "n_pairs": len(seeds),
                         "n_a": sum(l == lat for l, _s in a), "n_b": sum(l == lat for l, _s in b), "a_mean": float(x.mean()),
                         "b_mean": float(y.mean()), **paired_interval(metric, x, y)})
    if not rows:
        raise ValueError(f"no (latency, seed) pair in both: latencies {sorted({k[0] for k in a})} vs "
                         f"{sorted({k[0] for k in b})}")
    return rows


def unpaired_latencies(a: dict[tuple[float, int], dict[str, Any]],
                       b: dict[tuple[float, int], dict[str, Any]]) -> list[float]:
    """Latencies of either side with no seed in common with the other (left out of the differences)."""
    common = {k[0] for k in a if k in b}
    return sorted(({k[0] for k in a} | {k[0] for k in b}) - common)


def methods_of(path: Path) -> list[str]:
    """The methods of a ``results.json``'s episodes, in the order first seen."""
    episodes = json.loads(Path(path).read_text()).get("episodes")
    if not isinstance(episodes, list) or not episodes:
        raise ValueError(f"{path}: no 'episodes' list (not a sim_latency results.json?)")
    return list(dict.fromkeys(str(e.get("method")) for e in episodes))


def difference_tables(path: Path, reference: str = "rtc", task: str | None = None) -> list[str]:
    """Markdown lines: ``reference`` minus every other method of one run, success then throughput, one row
    per method and one column per latency (``-`` where a latency has no common seed)."""
    ref = load_episodes(path, reference, task)
    rows = {m: paired_live_differences(ref, load_episodes(path, m, task)) for m in methods_of(path) if m != reference}
    lats = sorted({r["latency_ms"] for rs in rows.values() for r in rs})
    lines: list[str] = []
    for metric, digits, kind in (("success", 2, "Newcombe paired score"), ("throughput", 1, "percentile bootstrap")):
        lines += ["", f"{reference.upper()} minus each method, {metric} (paired by seed, {kind} 95 % CI):", "",
                  "| method | " + " | ".join(f"+{x:.0f} ms" for x in lats) + " |", "|---" * (len(lats) + 1) + "|"]
        for m, rs in rows.items():
            by = {r["latency_ms"]: r for r in rs if r["metric"] == metric}
            cells = [diff_text(by[x], digits) if x in by else "-" for x in lats]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines[1:]


def _run_method(arg: str) -> tuple[Path, str]:
    path, sep, method = arg.rpartition(":")
    if not sep or not path or not method:
        raise argparse.ArgumentTypeError(f"expected RESULTS.json:METHOD, got {arg!r}")
    return Path(path), method


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Paired differences (A minus B, by seed) between two methods' "
                                             "episodes of sim_latency runs (results.json, live or simulated time)")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--pair", nargs=2, type=_run_method, metavar=("A.json:METHOD", "B.json:METHOD"))
    what.add_argument("--table", type=Path, metavar="RESULTS.json",
                      help="the reference minus every other method of this run, as markdown tables")
    ap.add_argument("--reference", default="rtc", help="with --table: the method the others are subtracted from")
    ap.add_argument("--task", default=None, help="simulated-time runs with several tasks: the task to pair")
    args = ap.parse_args(argv)
    if args.table is not None:
        try:
            print("\n".join(difference_tables(args.table, args.reference, args.task)))
        except (OSError, ValueError) as e:
            ap.error(str(e))
        return
    (pa, ma), (pb, mb) = args.pair
    try:
        a, b = load_episodes(pa, ma, args.task), load_episodes(pb, mb, args.task)
        rows = paired_live_differences(a, b)
    except (OSError, ValueError) as e:
        ap.error(str(e))
    print(f"{ma} ({pa}) minus {mb} ({pb}), paired by seed (success: Newcombe paired score 95 % CI; "
          "throughput: percentile bootstrap 95 % CI):")
    left_out = unpaired_latencies(a, b)
    if left_out:
        print(f"  (left out, no common seed: {', '.join(f'+{x:.0f} ms' for x in left_out)})")
    for r in rows:
        print(f"  +{r['latency_ms']:3.0f} ms  {r['metric']:10s} n={r['n_pairs']:3d}  {r['a_mean']:7.2f} - {r['b_mean']:7.2f}"
              f" = {r['difference']:+.2f} [{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}]")
    print(json.dumps(json_safe(rows)))  # NaN (one pair: no interval) as null, valid JSON


if __name__ == "__main__":
    main()
