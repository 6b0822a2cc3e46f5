"""Measure simulator speed and scripted-expert success rate.

Usage::

    OMP_NUM_THREADS=1 python -m rtc_ros.sim.benchmark --episodes 50 --steps 500

Prints one JSON object with: ``step_ms`` (one 20 ms control tick without rendering),
``steps_per_s``, ``render_ms`` per image size (camera ``top``), ``step_render_steps_per_s``
(step + one 64x48 render), and the expert ``success_rate`` over ``--episodes`` seeds.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np

from rtc_ros.sim.bimanual import BimanualSim
from rtc_ros.sim.expert import run_expert_episode

logger = logging.getLogger(__name__)


def time_steps(sim: BimanualSim, steps: int, render: tuple[int, int] | None = None) -> float:
    """Mean wall time (s) of ``sim.step`` (+ optional render of (width, height)) per tick.

    The command is a slow sinusoid around the home pose so the arms actually move.
    """
    sim.reset(0)
    home = sim.home_position
    if render is not None:
        sim.render("top", *render)  # create the GL context outside the timing
    t0 = time.perf_counter()
    for k in range(steps):
        cmd = home + 0.2 * np.sin(2 * np.pi * 0.5 * k * 0.02)
        cmd[[6, 13]] = 0.5
        sim.step(cmd)
        if render is not None:
            sim.render("top", *render)
    return (time.perf_counter() - t0) / steps


def time_render(sim: BimanualSim, width: int, height: int, n: int = 50) -> float:
    """Mean wall time (s) of one ``render('top', width, height)`` call."""
    sim.render("top", width, height)
    t0 = time.perf_counter()
    for _ in range(n):
        sim.render("top", width, height)
    return (time.perf_counter() - t0) / n


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark; returns and prints the results dictionary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=50, help="expert seeds 0..N-1")
    ap.add_argument("--steps", type=int, default=500, help="ticks for the step timing")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    out: dict[str, object] = {}
    with BimanualSim() as sim:
        step_s = time_steps(sim, args.steps)
        out["step_ms"] = round(step_s * 1e3, 3)
        out["steps_per_s"] = round(1.0 / step_s, 1)
        out["render_ms"] = {
            f"{w}x{h}": round(time_render(sim, w, h) * 1e3, 2) for w, h in ((64, 48), (224, 224))
        }
        sr = time_steps(sim, max(args.steps // 5, 20), render=(64, 48))
        out["step_render_steps_per_s"] = round(1.0 / sr, 1)
        ok, lengths, t0 = 0, [], time.perf_counter()
        failed = []
        for seed in range(args.episodes):
            success, progress, prog, cmds = run_expert_episode(sim, seed)
            ok += int(success)
            lengths.append(len(cmds))
            if not success:
                failed.append((seed, progress))
        out["expert_episodes"] = args.episodes
        out["success_rate"] = ok / max(args.episodes, 1)
        out["failed_seeds_progress"] = failed
        out["episode_ticks"] = int(max(lengths)) if lengths else 0
        out["expert_wall_s_per_episode"] = round(
            (time.perf_counter() - t0) / max(args.episodes, 1), 3
        )
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
