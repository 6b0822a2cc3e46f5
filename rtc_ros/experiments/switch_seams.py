"""Why chunk switches hit the executor's step limit: the seam and the chunk's own speed, per hit.

    python -m rtc_ros.experiments.switch_seams --policy policies/bimanual_cnn_h50.yaml --method rtc \\
        --latency-ms 0 --episodes 100 [--task transfer_cube] [--compute-ms plain=6,guided=13,bid=85,trained=6]

Runs simulated-time episodes through the same harness as the latency experiment
(:class:`rtc_ros.experiments.sim_offline.Episode`, seeds ``seed0 .. seed0 + N - 1``) and looks at every
chunk switch whose first command the executor clamped to ``max_step`` (issue #13's "switches hitting
the step limit"). On each clamped joint, in units of that joint's ``max_step`` (the new chunk's actions
``c - 1`` and ``c``, ``c`` = consumed, the one taken over; ``last`` = the command of the tick before):

* ``wanted`` = ``|chunk[c] - last|``: the step the new chunk asked for (>= 1: it was clamped);
* ``own`` = ``|chunk[c] - chunk[c - 1]|``: the chunk's own step there (>= 1: a seamless switch would
  have been clamped as well);
* ``offset`` = ``|chunk[c - 1] - last|``: the seam, how far the new chunk's action for the previous step
  lies from what was commanded then (``wanted <= own + offset``);
* ``old`` = ``|last - command before it|``: the running chunk's step just before the switch.

The last stdout line is a JSON summary: switches, hits, hits with ``own >= 1``, the median and 10-90 %
range of each quantity over the hits' clamped joints, the offset over every switch's joints for
comparison, the hits per tick and per joint, and every hit's clamped joints (``hit_rows``: seed, tick,
joint, the ratios, the raw values). Sync is refused: a sync chunk starts at its index 0
after the pause, so no action of it precedes the switch.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from rtc_ros.experiments.runner import DEFAULT_CONFIG, DEFAULT_POLICY
from rtc_ros.experiments.sim_offline import Episode, EpisodeRecord
from rtc_ros.experiments.sim_latency import parse_compute_ms
from rtc_ros.experiments.sim_setup import compute_ms_for, load_setup, make_sim
from rtc_ros.nodes.cores import executor_core
from rtc_ros.nodes.params import ROLE_EXECUTOR
from rtc_ros.runtime.methods import method_info

TOL = 1.0 - 1e-9  # clamp_command lands on last +- max_step


def seam_rows(rec: EpisodeRecord, max_step: np.ndarray) -> list[dict[str, Any]]:
    """One row per switch of a traced episode: tick, whether it hit, and per joint the four ratios."""
    tr = rec.trace
    if tr is None:
        raise ValueError("seam_rows needs an episode run with keep_trace=True")
    q, rows, chunk_rows = tr["command"], tr["switch_ticks"], tr["switch_chunk_rows"]
    out = []
    for r, (c0, c1) in zip(rows, chunk_rows):
        last, before = q[r - 1], q[r - 2]
        step = np.abs(q[r] - last) / max_step
        out.append({"seed": rec.seed, "tick": int(r), "hit": step >= TOL, "wanted": np.abs(c1 - last) / max_step,
                    "own": np.abs(c1 - c0) / max_step, "offset": np.abs(c0 - last) / max_step,
                    "old": np.abs(last - before) / max_step, "last": last, "chunk_prev": c0, "chunk_taken": c1})
    return out


def hit_rows(rows: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """One JSON row per clamped joint of every hit: seed, tick, joint, the four ratios and the raw
    values (last command, the new chunk's actions c - 1 and c; rad, or the gripper's opening)."""
    out = []
    for r in rows:
        for j in np.flatnonzero(r["hit"]):
            out.append({"seed": r["seed"], "tick": r["tick"], "joint": names[j],
                        **{k: round(float(r[k][j]), 4) for k in ("wanted", "own", "offset", "old")},
                        **{k: round(float(r[k][j]), 5) for k in ("last", "chunk_prev", "chunk_taken")}})
    return out


def _spread(x: list[float]) -> dict[str, float] | None:
    if not x:
        return None
    p10, p50, p90 = np.percentile(np.asarray(x), [10, 50, 90])
    return {"median": float(p50), "p10": float(p10), "p90": float(p90), "n": len(x)}


def summarize(rows: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """The JSON summary of :func:`seam_rows` over any number of episodes."""
    hits = [r for r in rows if r["hit"].any()]
    per: dict[str, list[float]] = {k: [] for k in ("wanted", "own", "offset", "old")}
    joints: Counter[str] = Counter()
    for r in hits:
        for j in np.flatnonzero(r["hit"]):
            joints[names[j]] += 1
            for k in per:
                per[k].append(float(r[k][j]))
    return {"switches": len(rows), "hits": len(hits),
            "hits_own_at_limit": sum(1 for r in hits if (r["own"][r["hit"]] >= TOL).any()),
            "hit_joints": dict(joints), "hit_ticks": dict(Counter(str(r["tick"]) for r in hits).most_common()),
            **{f"hit_{k}": _spread(v) for k, v in per.items()},
            "offset_all_switches": _spread([float(x) for r in rows for x in r["offset"]]),
            "hit_rows": hit_rows(rows, names)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help="policy spec YAML")
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="params file for all nodes")
    ap.add_argument("--task", default="transfer_cube")
    ap.add_argument("--method", default="rtc", help="a method that switches chunks (not sync)")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="injected latency")
    ap.add_argument("--compute-ms", default="plain=6,guided=13,bid=85,trained=6",
                    help="modelled compute time per sampling kind (the headline runs' fixed values)")
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--seed0", type=int, default=10000)
    ap.add_argument("--max-steps", type=int, default=0, help="episode length cap in ticks (0: the params file's)")
    ap.add_argument("--out", type=Path, default=None, help="also write the summary here (JSON)")
    args = ap.parse_args(argv)
    try:
        if method_info(args.method).exec_mode == "sync":
            raise ValueError("--method: sync mode has no own step at a switch (its chunks start at index 0)")
        compute_ms = compute_ms_for(args.method, parse_compute_ms(args.compute_ms) or {})
        if args.episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
        setup = load_setup(args.config, args.policy)
        sim = make_sim(args.task, args.max_steps or int(setup.sim_params.max_episode_steps), setup.stop_config)
    except (OSError, ValueError) as e:
        print(f"switch_seams: {e}", file=sys.stderr)
        return 2
    from rtc_ros.sim.camera import CameraRenderer

    renderer = CameraRenderer(sim.model, setup.camera)
    max_step = np.asarray(executor_core(setup.params(ROLE_EXECUTOR, args.method)).cfg.max_step, dtype=float)
    rows: list[dict[str, Any]] = []
    try:
        ep = Episode(setup, sim, renderer, args.task)
        for i in range(args.episodes):
            rec = ep.run(args.method, args.latency_ms, compute_ms, args.seed0 + i, keep_trace=True)
            rows += seam_rows(rec, max_step)
            names = [str(n) for n in rec.trace["joint_names"]] if rec.trace is not None else []
    finally:
        renderer.close()
        sim.close()
    summary = {"task": args.task, "method": args.method, "latency_ms": args.latency_ms, "compute_ms": compute_ms,
               "episodes": args.episodes, "seed0": args.seed0, "policy": str(args.policy), **summarize(rows, names)}
    for k in ("wanted", "own", "offset", "old"):
        s = summary[f"hit_{k}"]
        if s:
            print(f"[switch_seams] hits' {k:6s}: median {s['median']:.2f} (10-90 %: {s['p10']:.2f}-{s['p90']:.2f}) max_step")
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
