"""The simulated-time experiment's tables, printed from ``results.json`` files, and their combination.

    python -m rtc_ros.experiments.sim_tables RUN/results.json [RUN2/results.json ...]
    python -m rtc_ros.experiments.sim_tables A/results.json B/results.json --combine docs/sim_experiment/results.json
    python -m rtc_ros.experiments.sim_tables R/results.json --recompute-differences --combine R/results.json

Prints, per task, the markdown tables of ``docs/sim_experiment.md`` and the README: the cells (successes/n
[95 % CI], throughput, episodes with a protective stop, d), RTC minus each method in success and in
throughput (paired bootstrap intervals), the chunk switches at the executor's step limit (pooled
fraction with its Wilson interval, hits/switches, and how many of the hits the new chunk's own step
already reached the limit), and the motion (standstill, splice jerk, acceleration RMS per episode). ``--recompute-differences`` first recomputes every file's ``differences``
from its ``episodes`` with the current statistics (:func:`rtc_ros.experiments.sim_experiment.paired_differences`;
no episode is rerun). ``--combine`` writes one ``results.json`` holding every run (one per task,
as ``make sim-latency`` makes them): ``runs`` keeps each run's metadata, ``cells`` / ``differences`` /
``episodes`` are concatenated; a task found in two runs is an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SCHEMA = "rtc_ros.sim_experiment/1"


CELL_KEYS = ("task", "method", "latency_ms", "delay_ticks", "n", "successes", "success_ci95", "throughput")
DIFF_KEYS = ("task", "method", "latency_ms", "metric", "difference", "ci95")


def load(path: Path) -> dict[str, Any]:
    """One ``results.json`` of :mod:`rtc_ros.experiments.sim_experiment`; ValueError naming the file otherwise."""
    try:
        res = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(res, dict):
        raise ValueError(f"{path}: not a sim_latency results.json (a JSON object is expected)")
    for key in ("cells", "differences", "episodes"):
        if not isinstance(res.get(key), list):
            raise ValueError(f"{path}: no '{key}' list (not a sim_latency results.json?)")
    for key, need in (("cells", CELL_KEYS), ("differences", DIFF_KEYS)):
        for i, row in enumerate(res[key]):
            missing = [k for k in need if not isinstance(row, dict) or k not in row]
            if missing:
                raise ValueError(f"{path}: {key}[{i}] lacks {missing}")
    return res


def _lat(ms: float) -> str:
    return f"+{ms:.0f} ms"


def _grid(rows: dict[str, dict[float, str]], lats: list[float]) -> list[str]:
    out = ["| method | " + " | ".join(_lat(x) for x in lats) + " |", "|---" * (len(lats) + 1) + "|"]
    out += [f"| {m} | " + " | ".join(r.get(x, "-") for x in lats) + " |" for m, r in rows.items()]
    return out


def cell_text(c: dict[str, Any]) -> str:
    """``successes/n [lo-hi], throughput, episodes with a stop (d=..)``, as the docs' tables."""
    lo, hi = c["success_ci95"]
    stops = "-" if c.get("episodes_with_stops") is None else str(c["episodes_with_stops"])
    return f"{c['successes']}/{c['n']} [{lo:.2f}-{hi:.2f}], {c['throughput']:.1f}, {stops} (d={c['delay_ticks']})"


def switch_text(c: dict[str, Any]) -> str:
    """``frac % [lo-hi] (hits/switches; own k)``; ``-`` for a cell without switches or a count."""
    n, hits = c.get("switches"), c.get("switches_at_step_limit")
    if not n or hits is None or "switch_step_limit_ci95" not in c:
        return "-"
    lo, hi = c["switch_step_limit_ci95"]
    own = c.get("switches_at_step_limit_own")
    tail = "" if own is None else f"; own {own}"
    return f"{100 * hits / n:.1f} % [{100 * lo:.1f}-{100 * hi:.1f}] ({hits}/{n}{tail})"


#: how the ``interval`` of a difference row is named in the tables (rows without one: the bootstrap)
INTERVALS = {"bootstrap_percentile": "percentile bootstrap", "newcombe_paired": "Newcombe paired score"}


def _num(x: Any, digits: int) -> str:
    return "-" if x is None or not isinstance(x, (int, float)) or x != x else f"{x:+.{digits}f}"


def diff_text(d: dict[str, Any], digits: int, cells: dict[tuple[str, float], dict[str, Any]] | None = None) -> str:
    """``+0.10 [-0.05, +0.27]`` (``-`` for a missing number); ``(n = k)`` when fewer seeds were paired than
    either side has episodes (the difference is over the shared seeds only): the sides' counts are the row's
    ``n_a`` / ``n_b`` (live runs) or the ``cells`` of its method and reference (an audit: only the method's cell was
    compared, so a reference with an episode more went unmarked)."""
    lo, hi = (list(d.get("ci95") or []) + [None, None])[:2]
    text = f"{_num(d.get('difference'), digits)} [{_num(lo, digits)}, {_num(hi, digits)}]"
    sides = [d.get("n_a"), d.get("n_b")]
    if cells is not None and "method" in d:
        lat = float(d["latency_ms"])
        sides += [(cells.get((d["method"], lat)) or {}).get("n"),
                  (cells.get((d.get("reference", "rtc"), lat)) or {}).get("n")]
    n_pairs = d.get("n_pairs")
    if isinstance(n_pairs, int) and any(isinstance(n, int) and n_pairs < n for n in sides):
        text += f" (n = {n_pairs})"
    return text


def recompute_differences(res: dict[str, Any]) -> dict[str, Any]:
    """``res`` with ``differences`` recomputed from its ``episodes`` (per task, RTC minus each method)."""
    from types import SimpleNamespace

    from rtc_ros.experiments.sim_experiment import paired_differences

    need = ("task", "method", "latency_ms", "seed", "success", "throughput")
    for i, e in enumerate(res["episodes"]):
        missing = [k for k in need if not isinstance(e, dict) or k not in e]
        if missing:
            raise ValueError(f"episodes[{i}] lacks {missing}: cannot recompute the differences")
    recs = [SimpleNamespace(task=e["task"], method=e["method"], latency_ms=float(e["latency_ms"]), seed=int(e["seed"]),
                            success=bool(e["success"]), throughput=float(e["throughput"])) for e in res["episodes"]]
    return {**res, "differences": paired_differences(recs)}  # type: ignore[arg-type]


def task_tables(res: dict[str, Any], task: str) -> list[str]:
    """The markdown lines for one task of a results object."""
    cells = [c for c in res["cells"] if c["task"] == task]
    lats = sorted({float(c["latency_ms"]) for c in cells})
    methods = list(dict.fromkeys(c["method"] for c in cells))
    by = {(c["method"], float(c["latency_ms"])): c for c in cells}
    lines = [f"**{task}** (cells: successes/n [95 % CI], throughput (progress/min), episodes with a protective "
             "stop; d = delay in ticks)", ""]
    lines += _grid({m: {x: cell_text(by[m, x]) for x in lats if (m, x) in by} for m in methods}, lats)
    for metric, digits in (("success", 2), ("throughput", 1)):
        diffs = [d for d in res["differences"] if d["task"] == task and d["metric"] == metric]
        if not diffs:
            continue
        ref = diffs[0].get("reference", "rtc")
        rows: dict[str, dict[float, str]] = {}
        for d in diffs:
            rows.setdefault(d["method"], {})[float(d["latency_ms"])] = diff_text(d, digits, by)
        kinds = sorted({INTERVALS.get(d.get("interval", "bootstrap_percentile"), str(d.get("interval")))
                        for d in diffs})
        lines += ["", f"{ref.upper()} minus each method, {metric} (paired by seed; {', '.join(kinds)} 95 % CI):", ""]
        lines += _grid(rows, lats)
    if any(c.get("switches") for c in cells):
        lines += ["", "Chunk switches at the step limit (pooled, Wilson 95 % CI; hits/switches; own: hits where the "
                  "new chunk's own step reached the limit):", ""]
        lines += _grid({m: {x: switch_text(by[m, x]) for x in lats if (m, x) in by} for m in methods}, lats)
    if any(c.get("standstill_s") is not None for c in cells):
        dt = float(((res.get("runs") or {}).get(task) or res).get("config", {}).get("dt", 0.02))
        waiting = waiting_s(res, task, dt)
        lines += ["", "Motion (means over episodes: standstill s, every hold after the first chunk, and in brackets "
                  "the part not paused by a protective stop, the wait for a chunk; splice jerk, an episode's largest "
                  "|jerk| across a chunk switch, rad/s^3; commanded acceleration RMS, rad/s^2):", ""]
        lines += _grid({m: {x: motion_text(by[m, x], waiting.get((m, x))) for x in lats if (m, x) in by}
                        for m in methods}, lats)
    return lines


def waiting_s(res: dict[str, Any], task: str, dt: float) -> dict[tuple[str, float], float]:
    """Per (method, latency) of ``task``: the mean standstill without the holds of a protective stop (``holds``'
    ``paused`` ticks of each episode; the report's standstill leaves them out since 2026-12-08)."""
    sums: dict[tuple[str, float], list[float]] = {}
    for e in res["episodes"]:
        if e.get("task") == task and isinstance(e.get("standstill_s"), (int, float)) and isinstance(e.get("holds"), dict):
            sums.setdefault((e["method"], float(e["latency_ms"])), []).append(
                e["standstill_s"] - dt * float(e["holds"].get("paused", 0)))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def motion_text(c: dict[str, Any], waiting: float | None = None) -> str:
    """``standstill s (waiting s), splice jerk, acceleration RMS`` of a cell (``-`` for a missing number)."""
    def num(x: Any, fmt: str) -> str:
        return "-" if not isinstance(x, (int, float)) or x != x else format(x, fmt)

    wait = "" if waiting is None else f" ({num(waiting, '.2f')})"
    return f"{num(c.get('standstill_s'), '.2f')} s{wait}, {num(c.get('splice_jerk'), '.0f')}, {num(c.get('acc_rms'), '.1f')}"


def combine(runs: list[dict[str, Any]], measured: str) -> dict[str, Any]:
    """One results object from runs of different tasks (``runs`` keyed by task, the rest concatenated)."""
    out: dict[str, Any] = {"schema": SCHEMA, "measured": measured, "runs": {}, "cells": [], "differences": [],
                           "episodes": []}
    for res in runs:
        tasks = list(dict.fromkeys(c["task"] for c in res["cells"]))
        meta = {k: v for k, v in res.items() if k not in ("cells", "differences", "episodes")}
        for task in tasks:
            if task in out["runs"]:
                raise ValueError(f"task {task!r} is in two of the runs given")
            # an already combined file keeps each task's own run
            out["runs"][task] = res["runs"][task] if isinstance(res.get("runs"), dict) and task in res["runs"] else meta
        for key in ("cells", "differences", "episodes"):
            out[key] += res[key]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+", type=Path, help="results.json of sim_latency runs (simulated time)")
    ap.add_argument("--combine", type=Path, default=None, help="write one results.json holding every run here")
    ap.add_argument("--measured", default="", help="with --combine: a line saying when and where the runs were made")
    ap.add_argument("--recompute-differences", action="store_true",
                    help="recompute each file's differences from its episodes with the current statistics")
    args = ap.parse_args(argv)
    try:
        runs = [load(p) for p in args.results]
        if args.recompute_differences:
            runs = [recompute_differences(r) for r in runs]
        combined = combine(runs, args.measured or (runs[0].get("measured", "") if len(runs) == 1 else ""))
        tables = "\n".join("\n".join(task_tables(combined, task)) + "\n" for task in combined["runs"])
        if args.combine is not None:
            tmp = args.combine.with_name(args.combine.name + ".tmp")
            tmp.write_text(json.dumps(combined, indent=1))
            tmp.replace(args.combine)
    except (OSError, ValueError) as e:
        print(f"sim_tables: {e}", file=sys.stderr)
        return 2
    print(tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
