"""The paper's real-robot latency protocol, in simulation: tasks x methods x injected latency x N episodes.

``python -m rtc_ros.experiments.sim_latency [--clock sim|ros] [--tasks T,..] [--methods M,..]
[--latencies 0,100,200] [--episodes N] [--out DIR] [--quick]``

``--clock sim`` (default): simulated time, no ROS (:mod:`rtc_ros.experiments.sim_offline`): the
nodes' runtime cores (executor, inference loop, chunk generator, built from the same params file)
drive :class:`~rtc_ros.sim.bimanual.BimanualSim` on a virtual 20 ms clock; an inference started at
tick t delivers its chunk at tick ``t + ceil((compute_ms + latency) / 20 ms)``, where ``compute_ms``
is the measured median compute time of the method's sampling kind (``--compute-ms`` to give it;
a headline run gives fixed values measured once, see docs/sim_experiment.md), so "+0 ms" cells run at
the method's own delay: every cell reports the ``delay_ticks`` it ran at.
Episode ``i`` of every cell uses seed ``seed0 + i`` (paired). Writes ``DIR/results.json`` (cells with
Wilson intervals, paired bootstrap differences RTC minus each method, every episode), CSVs,
``DIR/traces`` and the plots ``figure1_<task>.png`` / ``figure6.png``
(:mod:`rtc_ros.experiments.sim_experiment`). Default 30 episodes per cell; ``--quick``: 3.

``--clock ros``: the live nodes in wall-clock real time. For every injected latency (+0, +100, +200 ms,
``policy_inference``'s ``extra_latency_ms``) and every method it starts ``chunk_executor`` +
``policy_inference`` (fresh processes: ``method`` is read-only), runs N episodes of the cube transfer
on ``bimanual_sim`` with the same cube seeds for every (method, latency) -- a paired comparison --
and records every episode with ``episode_recorder`` (one bag each under ``DIR/bags``). At the end it
runs the report (``python -m rtc_ros.report DIR/bags --out DIR/report``: table, CSVs, plots) and
writes the driver's own per-episode results to ``DIR/results.json``. One episode is ~1.5 s reset
hold + 6-15 s of task + ~1 s of bookkeeping, each group adds ~15-30 s of process start-up and policy
warm-up (default 10 episodes per group; ``--quick``: 2).

The final line of stdout is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

from rtc_ros.experiments.live_results import run_report, summarize_results, write_results
from rtc_ros.experiments.outputs import archive_outputs
from rtc_ros.experiments.runner import (
    DEFAULT_CONFIG,
    DEFAULT_POLICY,
    EVAL_SEED0,
    EpisodeDriver,
    EpisodeResult,
    NodeProcess,
    ros_args_for,
    ros_env,
    write_params,
)
from rtc_ros.runtime.methods import Sampling

log = logging.getLogger("rtc_ros.experiments.sim_latency")

METHODS: tuple[str, ...] = ("sync", "te_sparse", "te_dense", "naive", "bid", "rtc")
LATENCIES_MS: tuple[float, ...] = (0.0, 100.0, 200.0)
#: sampling kinds of the methods (:data:`rtc_ros.runtime.methods.Sampling`), each with its own compute time
COMPUTE_KINDS: tuple[str, ...] = get_args(Sampling)


def config_policy_spec(config: Path) -> Path | None:
    """The ``policy_spec`` the params file gives ``policy_inference`` (``${VAR:-default}`` expanded), when
    it names an existing file; None otherwise (e.g. ``${RTC_POLICY_SPEC}`` unset)."""
    from rtc_ros.nodes.params import expand_path, load_params_file

    try:
        value = load_params_file(config, "policy_inference").get("policy_spec")
    except Exception:  # noqa: BLE001 -- only a default: a bad file is reported by the run itself
        return None
    path = Path(expand_path(str(value))) if value else None
    return path if path is not None and path.is_file() else None


def archive_previous_run(out: Path) -> Path | None:
    """Move an earlier run's ``bags/``, ``report/`` and ``results.json`` in ``out`` to
    ``out/previous/<time>/`` so this run's report covers only its own episodes (nothing is deleted).
    Returns the archive directory, or None when there was nothing to move."""
    if not (out / "bags").is_dir() or not any((out / "bags").iterdir()):
        return None
    return archive_outputs(out, [out / "bags", out / "report", out / "results.json"])


def stop_recovery_override(stop_recovery: bool | None) -> dict[str, dict[str, Any]]:
    """The params-file override that switches the executor's stop recovery on / off (None: none)."""
    from rtc_ros.experiments.sim_setup import stop_recovery_values

    return {} if stop_recovery is None else {"chunk_executor": stop_recovery_values(stop_recovery)}


def run_protocol(out: Path, methods: list[str], latencies: list[float], episodes: int,
                 policy: Path = DEFAULT_POLICY, config: Path = DEFAULT_CONFIG, hold_s: float = 1.5,
                 timeout_s: float = 40.0, seed0: int = EVAL_SEED0, report: bool = True,
                 quiet: bool = False, stop_recovery: bool | None = None) -> dict[str, Any]:
    """Run every (latency, method) group; return ``{"results": [...], "summary": [...], "report": ...}``.

    Args:
        out: run directory (``bags/``, ``report/``, ``logs/``, ``results.json``).
        methods / latencies: the grid; episodes: N per group.
        policy: policy spec YAML; config: the params file for all nodes.
        hold_s: start-pose hold after each reset; timeout_s: wall-clock cap per episode.
        seed0: first cube seed (episode i uses seed0 + i in every group).
        report: run ``python -m rtc_ros.report`` at the end.
        stop_recovery: None: as the params file says; True / False: the executor re-syncs around the
            simulator's protective stops and ramps start-up chunks in / neither (``stop_recovery_values``).
    """
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    bags = out / "bags"
    env = ros_env({"RTC_POLICY_SPEC": str(policy)})
    t_start = time.monotonic()
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    moved = archive_previous_run(out)
    if moved is not None:
        say(f"[sim_latency] an earlier run's bags, report and results were moved to {moved}")
    say(f"[sim_latency] ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']} out={out} policy={policy}")
    base = write_params(config, {"episode_recorder": {"output_dir": str(bags)}}, logs / "params_base.yaml")
    sim = NodeProcess("rtc_ros.sim.node", ros_args_for(base), env, logs / "bimanual_sim.log")
    rec = NodeProcess("rtc_ros.nodes.episode_recorder", ros_args_for(base), env, logs / "episode_recorder.log")
    driver = EpisodeDriver(record=True)
    results: list[EpisodeResult] = []
    failures: list[str] = []
    try:
        for lat in latencies:
            for method in methods:
                tag = f"{method}_{int(lat)}ms"
                t_group = time.monotonic()
                params = write_params(config, {
                    "/**": {"method": method},
                    "policy_inference": {"extra_latency_ms": float(lat), "policy_spec": str(policy)},
                    "episode_recorder": {"output_dir": str(bags)},
                    **stop_recovery_override(stop_recovery)}, logs / f"params_{tag}.yaml")
                ex = NodeProcess("rtc_ros.nodes.chunk_executor", ros_args_for(params), env, logs / f"chunk_executor_{tag}.log")
                inf = NodeProcess("rtc_ros.nodes.policy_inference", ros_args_for(params), env,
                                  logs / f"policy_inference_{tag}.log")
                try:
                    driver.wait_ready(timeout=180.0)
                    for i in range(episodes):
                        for proc in (sim, rec, ex, inf):
                            if not proc.alive():
                                raise RuntimeError(f"{proc.module} exited:\n{proc.tail()}")
                        r = driver.run_episode(seed0 + i, method, lat, hold_s=hold_s, timeout_s=timeout_s)
                        results.append(r)
                        say(f"[sim_latency] {method:9s} +{int(lat):3d} ms  episode {i + 1}/{episodes} seed {r.seed}: "
                            f"success={r.success} progress={r.progress} steps={r.sim_steps} ({r.wall_s:.1f} s)")
                        write_results(out / "results.json", results)
                except (TimeoutError, RuntimeError) as exc:
                    failures.append(f"{tag}: {exc}")
                    say(f"[sim_latency] group {tag} failed: {exc}\n--- executor ---\n{ex.tail()}\n"
                        f"--- inference ---\n{inf.tail()}")
                finally:
                    inf.stop()
                    ex.stop()
                say(f"[sim_latency] group {tag} done in {time.monotonic() - t_group:.0f} s")
    finally:
        driver.close()
        rec.stop()
        sim.stop()
    write_results(out / "results.json", results)
    summary = summarize_results(results)
    rep: dict[str, Any] = {}
    if report and results:
        code, text = run_report(bags, out / "report", env, out / "report.log")
        rep = {"exit_code": code, "dir": str(out / "report")}
        say(text.rstrip())
    return {"results": results, "summary": summary, "report": rep, "failures": failures,
            "wall_s": round(time.monotonic() - t_start, 1)}


def parse_compute_ms(text: str) -> dict[str, float] | None:
    """``--compute-ms``: ``""`` (measure), one number for every sampling kind, or ``kind=ms,...``
    (kinds ``plain``, ``guided``, ``bid``, ``trained``). Raises ValueError naming the option."""
    text = text.strip()
    if not text:
        return None
    try:
        if "=" not in text:
            v = float(text)
            out = {k: v for k in COMPUTE_KINDS}
        else:
            out = {k.strip(): float(v) for k, v in (item.split("=", 1) for item in text.split(",") if item.strip())}
    except ValueError:
        raise ValueError(f"--compute-ms: expected a number or kind=ms pairs, got {text!r}") from None
    bad = {k: v for k, v in out.items() if k not in COMPUTE_KINDS or not v >= 0}
    if bad:
        raise ValueError(f"--compute-ms: kinds are {', '.join(COMPUTE_KINDS)} with values >= 0; got {bad}")
    return out


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clock", choices=("sim", "ros"), default="sim",
                    help="sim: simulated time without ROS (default); ros: the live nodes in real time")
    ap.add_argument("--episodes", type=int, default=None, help="episodes per cell (default 30 sim / 10 ros)")
    ap.add_argument("--tasks", default=None, help="comma-separated tasks (sim clock; default: every task of the simulator)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    ap.add_argument("--latencies", default=",".join(str(int(x)) for x in LATENCIES_MS), help="injected ms, comma-separated")
    ap.add_argument("--quick", action="store_true", help="3 episodes per cell (sim) / 2 per group (ros)")
    ap.add_argument("--out", default=None, help="run directory (default /tmp/rtc_sim_latency_<time>)")
    ap.add_argument("--policy", default=None, help="policy spec YAML (default: the --config file's policy_spec "
                                                    "when it names a file, e.g. from_bags' NAME_params.yaml; else "
                                                    f"{DEFAULT_POLICY.name})")
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="params file for all nodes")
    ap.add_argument("--seed0", type=int, default=EVAL_SEED0, help="first seed (episode i: seed0 + i)")
    ap.add_argument("--compute-ms", default="", help="sim clock: compute time per inference instead of measuring "
                    "it: one number, or plain=..,guided=..,bid=..,trained=.. (ms)")
    ap.add_argument("--calib-calls", type=int, default=20, help="sim clock: timed calls per sampling kind")
    ap.add_argument("--torch-threads", type=int, default=1, help="sim clock: torch threads (default 1)")
    ap.add_argument("--fig1-joint", default="right_elbow", help="sim clock: the joint of Figure 1")
    ap.add_argument("--no-plots", action="store_true", help="sim clock: skip the figures")
    ap.add_argument("--stop-recovery", choices=("config", "on", "off"), default="config",
                    help="re-sync the executor around protective stops and ramp start-up chunks in "
                         "(chunk_executor robot_stopped_topic, startup_ramp_s): as the params file says (default), "
                         "on (0.2 s ramp), or off (neither: the protocol before 2026-12-02 evening)")
    ap.add_argument("--hold-s", type=float, default=1.5, help="ros clock: start-pose hold after each reset (s)")
    ap.add_argument("--timeout-s", type=float, default=40.0, help="ros clock: wall-clock cap per episode (s)")
    ap.add_argument("--no-report", action="store_true", help="ros clock: skip the report")
    args = ap.parse_args(argv)
    episodes = args.episodes if args.episodes is not None else (30 if args.clock == "sim" else 10)
    if args.quick:
        episodes = 3 if args.clock == "sim" else 2
    if episodes < 1:
        ap.error("--episodes must be >= 1")
    methods = _csv(args.methods)
    try:
        latencies = [float(x) for x in _csv(args.latencies)]
        compute = parse_compute_ms(args.compute_ms)
    except ValueError as exc:
        ap.error(f"--latencies / --compute-ms: {exc}")
    if any(not (x >= 0) for x in latencies) or not latencies:
        ap.error(f"--latencies must be >= 0 ms, got {args.latencies!r}")
    for flag, items in (("--methods", methods), ("--latencies", latencies), ("--tasks", _csv(args.tasks or ""))):
        if len(set(items)) != len(items):  # (an audit: a method given twice doubled n with identical episodes)
            ap.error(f"{flag}: {sorted({x for x in items if items.count(x) > 1})} given twice")
    if args.calib_calls < 1:
        ap.error(f"--calib-calls must be >= 1, got {args.calib_calls}")
    out = Path(args.out or f"/tmp/rtc_sim_latency_{datetime.now():%Y%m%d_%H%M%S}")
    if args.policy is None:
        args.policy = str(config_policy_spec(Path(args.config)) or DEFAULT_POLICY)
        print(f"sim_latency: policy {args.policy}", file=sys.stderr)
    recovery = {"config": None, "on": True, "off": False}[args.stop_recovery]
    if args.clock == "sim":
        from rtc_ros.experiments.sim_experiment import run_grid
        from rtc_ros.experiments.sim_setup import available_tasks

        tasks = _csv(args.tasks) if args.tasks else list(available_tasks())
        cmd = "python -m rtc_ros.experiments.sim_latency " + " ".join(sys.argv[1:] if argv is None else argv)
        try:
            res = run_grid(out, tasks, methods, latencies, episodes, args.seed0, Path(args.config), Path(args.policy),
                           compute, args.calib_calls, args.torch_threads, plots=not args.no_plots,
                           fig1_joint=args.fig1_joint, command=cmd.strip(), stop_recovery=recovery)
        except ValueError as exc:
            print(f"sim_latency: {exc}", file=sys.stderr)
            return 2
        keys = ("task", "method", "latency_ms", "delay_ticks", "n", "successes", "success_ci95", "throughput",
                "standstill_s", "startup_hold_s", "protective_stops", "switch_step_limit_frac",
                "switch_step_limit_new_frac")
        print(json.dumps({"out": str(out), "clock": "sim", "episodes": len(res["episodes"]), "wall_s": res["wall_s"],
                          "compute_ms": res["compute"]["ms"], "cells": [{k: c[k] for k in keys} for c in res["cells"]],
                          "plots": res.get("plots", [])}))
        return 0 if res["episodes"] else 1
    res = run_protocol(out, methods, latencies, episodes, Path(args.policy), Path(args.config), args.hold_s,
                       args.timeout_s, seed0=args.seed0, report=not args.no_report, stop_recovery=recovery)
    print(json.dumps({"out": str(out), "clock": "ros", "episodes": len(res["results"]), "wall_s": res["wall_s"],
                      "summary": res["summary"], "report": res["report"], "failures": res["failures"]}))
    return 0 if res["results"] and not res["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
