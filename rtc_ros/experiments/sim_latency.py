"""The paper's real-robot latency protocol, in simulation: methods x injected latency x N episodes.

``python -m rtc_ros.experiments.sim_latency [--episodes 10] [--out DIR] [--quick]``

For every injected latency (+0, +100, +200 ms, ``policy_inference``'s ``extra_latency_ms``) and every
method (sync, te_sparse, te_dense, naive, rtc) it starts ``chunk_executor`` + ``policy_inference``
(fresh processes: ``method`` is read-only), runs N episodes of the cube transfer on ``bimanual_sim``
(wall-clock real time) with the same cube seeds for every (method, latency) -- a paired comparison --
and records every episode with ``episode_recorder`` (one bag each under ``DIR/bags``). At the end it
runs the report (``python -m rtc_ros.report DIR/bags --out DIR/report``: table, CSVs, plots) and
writes the driver's own per-episode results to ``DIR/results.json``.

Runtime: one episode is ~1.5 s reset hold + 6-15 s of task + ~1 s of bookkeeping, each group adds
~15-30 s of process start-up and policy warm-up, so the default (5 methods x 3 latencies x 10 episodes
= 150 episodes) takes about 35-45 min on 2 CPU cores; ``--quick`` (2 episodes per group) about 10 min.
The final line of stdout is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rtc_ros.experiments.runner import (
    DEFAULT_CONFIG,
    DEFAULT_POLICY,
    EVAL_SEED0,
    EpisodeDriver,
    EpisodeResult,
    NodeProcess,
    ros_args_for,
    ros_env,
    run_report,
    summarize_results,
    write_params,
    write_results,
)

log = logging.getLogger("rtc_ros.experiments.sim_latency")

METHODS: tuple[str, ...] = ("sync", "te_sparse", "te_dense", "naive", "rtc")
LATENCIES_MS: tuple[float, ...] = (0.0, 100.0, 200.0)


def archive_previous_run(out: Path) -> Path | None:
    """Move an earlier run's ``bags/``, ``report/`` and ``results.json`` in ``out`` to
    ``out/previous/<time>/`` so this run's report covers only its own episodes (nothing is deleted).
    Returns the archive directory, or None when there was nothing to move."""
    items = [out / "bags", out / "report", out / "results.json"]
    if not (out / "bags").is_dir() or not any((out / "bags").iterdir()):
        return None
    dest = out / "previous" / datetime.now().strftime("%Y%m%d_%H%M%S_%f")
    dest.mkdir(parents=True)
    for item in items:
        if item.exists():
            shutil.move(str(item), str(dest / item.name))
    return dest


def run_protocol(out: Path, methods: list[str], latencies: list[float], episodes: int,
                 policy: Path = DEFAULT_POLICY, config: Path = DEFAULT_CONFIG, hold_s: float = 1.5,
                 timeout_s: float = 40.0, seed0: int = EVAL_SEED0, report: bool = True,
                 quiet: bool = False) -> dict[str, Any]:
    """Run every (latency, method) group; return ``{"results": [...], "summary": [...], "report": ...}``.

    Args:
        out: run directory (``bags/``, ``report/``, ``logs/``, ``results.json``).
        methods / latencies: the grid; episodes: N per group.
        policy: policy spec YAML; config: the params file for all nodes.
        hold_s: start-pose hold after each reset; timeout_s: wall-clock cap per episode.
        seed0: first cube seed (episode i uses seed0 + i in every group).
        report: run ``python -m rtc_ros.report`` at the end.
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
                    "episode_recorder": {"output_dir": str(bags)}}, logs / f"params_{tag}.yaml")
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=10, help="episodes per (method, latency) (default 10)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    ap.add_argument("--latencies", default=",".join(str(int(x)) for x in LATENCIES_MS), help="injected ms, comma-separated")
    ap.add_argument("--quick", action="store_true", help="2 episodes per group (~10 min)")
    ap.add_argument("--out", default=None, help="run directory (default /tmp/rtc_sim_latency_<time>)")
    ap.add_argument("--policy", default=str(DEFAULT_POLICY), help="policy spec YAML")
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="params file for all nodes")
    ap.add_argument("--hold-s", type=float, default=1.5, help="start-pose hold after each reset (s)")
    ap.add_argument("--timeout-s", type=float, default=40.0, help="wall-clock cap per episode (s)")
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args(argv)
    episodes = 2 if args.quick else args.episodes
    if episodes < 1:
        ap.error("--episodes must be >= 1")
    out = Path(args.out or f"/tmp/rtc_sim_latency_{datetime.now():%Y%m%d_%H%M%S}")
    res = run_protocol(out, [m.strip() for m in args.methods.split(",") if m.strip()],
                       [float(x) for x in args.latencies.split(",") if x.strip()], episodes,
                       Path(args.policy), Path(args.config), args.hold_s, args.timeout_s, report=not args.no_report)
    print(json.dumps({"out": str(out), "episodes": len(res["results"]), "wall_s": res["wall_s"],
                      "summary": res["summary"], "report": res["report"], "failures": res["failures"]}))
    return 0 if res["results"] and not res["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
