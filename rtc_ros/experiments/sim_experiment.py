"""The latency experiment in simulated time: tasks x latencies x methods x N paired episodes, statistics.

:func:`run_grid` runs every cell with :class:`rtc_ros.experiments.sim_offline.Episode` (episode ``i``
of every cell uses seed ``seed0 + i`` for the cube and the flow noise: paired across methods and
latencies), then writes into ``out``:

* ``results.json`` -- ``config``, ``compute`` (the compute-time model and its measurement), ``cells``
  (per task, method, latency: ``delay_ticks`` (the delay the cell actually ran at: injected latency
  plus the method's compute time, in ticks; "+0 ms" is not zero delay), ``compute_ms``, ``n``,
  ``successes``, ``success_rate``, ``success_ci95`` (Wilson), ``throughput`` (mean progress per minute)
  with a bootstrap ``throughput_ci95``, ``standstill_s`` (after the first chunk), ``startup_hold_s``,
  ``protective_stops`` (total; null where the simulator does not count them), splice jump / jerk,
  acceleration RMS, consumed / d over every splice, ...), ``differences`` (RTC minus
  each method, paired over seeds: success with Newcombe's paired score 95 % interval and the discordant
  pairs, throughput with a 95 % bootstrap interval; ``n_pairs``) and
  ``episodes`` (one row each);
* ``episodes.csv``, ``cells.csv``, ``differences.csv``; ``traces/`` (the commanded trajectory of the
  first seed of every cell, for Figure 1); the plots (:mod:`rtc_ros.experiments.sim_plots`).
"""

from __future__ import annotations

import csv
import json
import math
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rtc_ros.core.stats import paired_bootstrap, paired_proportion_difference, wilson_interval
from rtc_ros.experiments.outputs import archive_outputs
from rtc_ros.experiments.sim_offline import Episode, EpisodeRecord
from rtc_ros.experiments.sim_setup import (
    compute_ms_for, load_setup, make_sim, measure_compute_ms, stop_count, stop_recovery_values, trace_path,
)
from rtc_ros.nodes.params import ROLE_EXECUTOR, ROLE_INFERENCE
from rtc_ros.runtime.methods import method_info
from rtc_ros.sim.camera import CameraRenderer

REFERENCE = "rtc"
N_BOOT = 10_000
BOOT_SEED = 0
#: per-episode fields averaged per cell (``<field>`` in the cell = the mean over its episodes)
MEAN_FIELDS = ("progress", "duration_s", "standstill_s", "startup_hold_s", "frame_age_mean", "splice_jump_max", "splice_jump_mean", "splice_acc",
               "splice_jerk", "acc_rms", "acc_max", "consumed_mean", "d_mean", "chunks", "clamps", "infer_ms_mean",
               "wall_s")
CELL_FIELDS = ("task", "method", "latency_ms", "delay_ticks", "compute_ms", "n", "successes", "success_rate",
               "success_ci95", "throughput", "throughput_ci95", "protective_stops", "protective_stops_per_episode",
               "episodes_with_stops", "standstill_frac", "switches", "switches_at_step_limit",
               "switch_step_limit_frac", "switch_step_limit_ci95", "switches_at_step_limit_new",
               "switch_step_limit_new_frac", "switch_step_limit_new_ci95", "switches_at_step_limit_own",
               "switch_step_limit_joints", *MEAN_FIELDS)


def _mean(xs: list[float]) -> float:
    a = np.asarray([x for x in xs if x is not None and math.isfinite(x)], dtype=float)
    return float(a.mean()) if a.size else math.nan


def _sum_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    return dict(sorted(sum((Counter(c) for c in counts), Counter()).items()))


def summarize_cells(records: list[EpisodeRecord]) -> list[dict[str, Any]]:
    """One row per (task, method, latency) in the order first seen (see module docstring)."""
    groups: dict[tuple[str, str, float], list[EpisodeRecord]] = {}
    for r in records:
        groups.setdefault((r.task, r.method, r.latency_ms), []).append(r)
    cells = []
    for (task, method, lat), rs in groups.items():
        n, k = len(rs), sum(r.success for r in rs)
        thr = np.asarray([r.throughput for r in rs], dtype=float)
        t_mean, t_lo, t_hi = paired_bootstrap(thr, np.zeros_like(thr), N_BOOT, BOOT_SEED)
        counted = [r.protective_stops for r in rs if r.protective_stops is not None]
        stops = sum(counted) if len(counted) == n else None  # None: not counted by the simulator
        cell: dict[str, Any] = {
            "task": task, "method": method, "latency_ms": lat, "delay_ticks": rs[0].delay_ticks,
            "compute_ms": rs[0].compute_ms, "n": n, "successes": int(k),
            "success_rate": k / n, "success_ci95": list(wilson_interval(int(k), n)),
            "throughput": t_mean, "throughput_ci95": [t_lo, t_hi],
            "protective_stops": stops, "protective_stops_per_episode": None if stops is None else stops / n,
            # after its 1 s recovery an arm that stopped usually stops again (the command moved on), so
            # the count of episodes with a stop says more than the total
            "episodes_with_stops": None if stops is None else sum(1 for c in counted if c > 0),
            "standstill_frac": _mean([r.standstill_s / r.duration_s for r in rs]),
        }
        # chunk switches (no start-up / restart chunks), pooled over the cell (issue #13: < 2 % at the limit)
        switches = sum(r.switches for r in rs)
        hits, new = sum(r.splice_step_limit for r in rs), sum(r.splice_step_limit_new for r in rs)
        cell.update({"switches": switches, "switches_at_step_limit": hits,
                     "switch_step_limit_frac": hits / switches if switches else math.nan,
                     "switch_step_limit_ci95": list(wilson_interval(hits, switches)),
                     "switches_at_step_limit_new": new,
                     "switch_step_limit_new_frac": new / switches if switches else math.nan,
                     "switch_step_limit_new_ci95": list(wilson_interval(new, switches)),
                     "switches_at_step_limit_own": _sum_or_none([r.splice_step_limit_own for r in rs]),
                     "switch_step_limit_joints": _sum_counts([r.splice_step_limit_joints for r in rs])})
        cell.update({f: _mean([float(getattr(r, f)) for r in rs]) for f in MEAN_FIELDS})
        cells.append(cell)
    return cells


def paired_interval(metric: str, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """``mean(a - b)`` of paired values with its 95 % interval: ``success`` (0/1) Newcombe's paired score
    interval and the discordant pairs [a only, b only]; any other metric the seeded percentile bootstrap.
    Returns ``{"interval", ("discordant",) "difference", "ci95"}``."""
    if metric == "success":
        diff, lo, hi = paired_proportion_difference(a, b)
        return {"interval": "newcombe_paired", "discordant": [int(np.sum((a == 1) & (b == 0))),
                                                              int(np.sum((a == 0) & (b == 1)))],
                "difference": diff, "ci95": [lo, hi]}
    diff, lo, hi = paired_bootstrap(a, b, N_BOOT, BOOT_SEED)
    return {"interval": "bootstrap_percentile", "difference": diff, "ci95": [lo, hi]}


def paired_differences(records: list[EpisodeRecord], reference: str = REFERENCE) -> list[dict[str, Any]]:
    """``reference`` minus every other method, per task and latency, paired by seed (the seeds both
    have: ``n_pairs``): success (0/1) with Newcombe's paired score 95 % interval
    (:func:`paired_proportion_difference`; ``discordant`` = [reference only, method only] successes),
    throughput with a 95 % percentile bootstrap interval."""
    by: dict[tuple[str, float, str], dict[int, EpisodeRecord]] = {}
    for r in records:
        by.setdefault((r.task, r.latency_ms, r.method), {})[r.seed] = r
    out = []
    for (task, lat, method), rows in by.items():
        ref = by.get((task, lat, reference))
        if method == reference or ref is None:
            continue
        seeds = sorted(set(ref) & set(rows))
        for metric in ("success", "throughput"):
            a = np.asarray([float(getattr(ref[s], metric)) for s in seeds])
            b = np.asarray([float(getattr(rows[s], metric)) for s in seeds])
            out.append({"task": task, "latency_ms": lat, "reference": reference, "method": method, "metric": metric,
                        "n_pairs": len(seeds), **paired_interval(metric, a, b)})
    return out


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if v is None:
            out[k] = "null"
        elif isinstance(v, (list, tuple)):
            out[k] = " ".join(str(x) for x in v)
        elif isinstance(v, dict):
            out[k] = json.dumps(v, sort_keys=True)
        else:
            out[k] = v
    return out


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows as CSV (lists joined by spaces, dicts as JSON, None as ``null``); none (an older file removed) when
    empty."""
    if not rows:
        path.unlink(missing_ok=True)
        return
    flat = [_flat(r) for r in rows]
    fields = list(dict.fromkeys(k for r in flat for k in r))  # every row's keys (success rows have more)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(flat)


def json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, np.generic):
        return json_safe(x.item())
    return x


def environment() -> dict[str, str]:
    """CPU model and the numeric libraries' versions: the episodes are bit-identical across runs on one
    machine, but another CPU (other float kernels in torch) changes them at ~1e-6, which can cascade."""
    import mujoco
    import torch

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": cpu or platform.processor(), "torch": torch.__version__, "numpy": np.__version__,
            "mujoco": mujoco.__version__}


def _sum_or_none(xs: list[int | None]) -> int | None:
    """The sum, or None where any is None (a count the mode does not have)."""
    return None if any(x is None for x in xs) else sum(x for x in xs if x is not None)


def write_results(out: Path, meta: dict[str, Any], records: list[EpisodeRecord]) -> dict[str, Any]:
    """Write ``results.json`` and the CSVs for ``records``; returns the results object."""
    cells = summarize_cells(records)
    diffs = paired_differences(records)
    episodes = [r.row() for r in records]
    res = json_safe({**meta, "cells": cells, "differences": diffs, "episodes": episodes})
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(res, indent=1))
    tmp.replace(out / "results.json")
    write_csv(out / "episodes.csv", episodes)
    write_csv(out / "cells.csv", cells)
    write_csv(out / "differences.csv", diffs)
    return res


def save_trace(path: Path, rec: EpisodeRecord) -> None:
    """The commanded trajectory of an episode (``command (T, M)``, ``hold``, ``splice`` rows, ``dt``)."""
    assert rec.trace is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **rec.trace, method=rec.method, latency_ms=rec.latency_ms, seed=rec.seed, task=rec.task)


def run_grid(out: Path, tasks: list[str], methods: list[str], latencies: list[float], episodes: int, seed0: int,
             config: Path, policy: Path, compute_override: dict[str, float] | None = None, calib_calls: int = 20,
             torch_threads: int = 1, say: Callable[[str], None] = print, plots: bool = True,
             fig1_joint: str = "right_elbow", command: str = "", stop_recovery: bool | None = None) -> dict[str, Any]:
    """Run the grid; write results, traces and plots into ``out``; returns the results object.

    Args:
        compute_override: ``{sampling kind: ms}`` instead of measuring (kinds ``plain``, ``guided``, ``bid``, ``trained``).
        calib_calls: timed calls per sampling kind for the measured compute time.
        stop_recovery: None: as the params file's ``chunk_executor`` section says; True / False: the executor
            re-syncs around protective stops (:mod:`rtc_ros.runtime.stop_recovery`) and ramps start-up chunks in
            / neither (:func:`rtc_ros.experiments.sim_setup.stop_recovery_values`).
    """
    for m in methods:
        method_info(m)  # ValueError naming an unknown method
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    for what, items in (("tasks", tasks), ("methods", methods), ("latencies", latencies)):
        if len(set(items)) != len(items):  # (an audit: a method given twice doubled n with identical episodes)
            raise ValueError(f"{what}: {sorted({x for x in items if items.count(x) > 1})} given twice")
    if calib_calls < 1:
        raise ValueError(f"calib_calls must be >= 1, got {calib_calls}")
    t_start = time.perf_counter()
    setup = load_setup(config, policy, torch_threads)
    if stop_recovery is not None:
        setup.values[ROLE_EXECUTOR].update(stop_recovery_values(stop_recovery))
    pe = setup.params(ROLE_EXECUTOR, methods[0])
    names = setup.params(ROLE_INFERENCE, methods[0], latencies[0]).joint_names
    if plots and fig1_joint not in names:  # (found only after the whole grid before)
        raise ValueError(f"fig1_joint {fig1_joint!r} is not one of {names}")
    out.mkdir(parents=True, exist_ok=True)
    moved = archive_outputs(out, [out / n for n in ("traces", "results.json", "episodes.csv", "cells.csv",
                                                      "differences.csv")] + sorted(out.glob("figure*.png")))
    if moved is not None:
        say(f"[sim_latency] an earlier run's outputs in {out} moved to {moved}")
    recovery = {"robot_stopped_topic": pe.robot_stopped_topic, "startup_ramp_s": pe.startup_ramp_s}
    records: list[EpisodeRecord] = []
    compute: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for task in tasks:
        sim = make_sim(task, int(setup.sim_params.max_episode_steps), setup.stop_config)
        renderer = CameraRenderer(sim.model, setup.camera)
        try:
            ep = Episode(setup, sim, renderer, task)
            if not compute:
                kinds = sorted({method_info(m).sampling for m in methods})
                if compute_override is not None:
                    compute = {"source": "given", "ms": {k: float(compute_override[k]) for k in kinds
                                                          if k in compute_override}}
                else:
                    sim.reset(seed0)
                    measured = measure_compute_ms(setup, methods, ep.observation(renderer.render(sim.data)), calib_calls)
                    compute = {"source": "measured", "ms": {k: v["median"] for k, v in measured.items()},
                               "measurement": measured}
                say(f"[sim_latency] compute time per inference ({compute['source']}): "
                    + ", ".join(f"{k} {v:.1f} ms" for k, v in compute["ms"].items()))
                meta = {"schema": "rtc_ros.sim_experiment/1", "clock": "sim", "command": command,
                        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "machine": f"{platform.node()} {platform.machine()} python {platform.python_version()}",
                        "environment": environment(),
                        "config": {"tasks": tasks, "methods": methods, "latencies_ms": latencies, "episodes": episodes,
                                   "seed0": seed0, "params_file": str(config), "policy": str(policy),
                                   "dt": setup.dt, "camera_every_ticks": setup.cam_every,
                                   "camera_phase": "seed % camera_every_ticks",
                                   "protective_stops_counted": stop_count(sim) is not None,
                                   "stop_recovery": recovery,
                                   "max_episode_steps": int(setup.sim_params.max_episode_steps),
                                   "torch_threads": torch_threads, "bootstrap": {"n": N_BOOT, "seed": BOOT_SEED}},
                        "compute": {**compute, "rule": "delay ticks = ceil((compute_ms[sampling kind of the method] "
                                    "+ latency_ms) / dt); compute_ms = median of warm generate() calls measured at "
                                    "start-up unless given"}}
            for lat in latencies:
                for method in methods:
                    ms = compute_ms_for(method, compute["ms"])
                    t_cell = time.perf_counter()
                    for i in range(episodes):
                        rec = ep.run(method, lat, ms, seed0 + i, keep_trace=(i == 0))
                        if rec.trace is not None:
                            save_trace(trace_path(out, task, method, lat), rec)
                            rec.trace = None
                        records.append(rec)
                        say(f"[sim_latency] {task} {method:9s} +{int(lat):3d} ms  {i + 1}/{episodes} seed {rec.seed}: "
                            f"success={int(rec.success)} progress={rec.progress} {rec.duration_s:.2f} s sim, "
                            f"{rec.wall_s:.2f} s wall")
                    meta["wall_s"] = round(time.perf_counter() - t_start, 1)
                    write_results(out, meta, records)
                    say(f"[sim_latency] cell {task} {method} +{int(lat)} ms (delay {records[-1].delay_ticks} ticks) "
                        f"done in {time.perf_counter() - t_cell:.1f} s")
        finally:
            renderer.close()
            sim.close()
    meta["wall_s"] = round(time.perf_counter() - t_start, 1)
    res = write_results(out, meta, records)
    if plots and records:
        from rtc_ros.experiments.sim_plots import make_plots

        res["plots"] = [str(p) for p in make_plots(out, res, fig1_joint=fig1_joint)]
    return res
