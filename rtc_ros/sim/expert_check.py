"""Expert-only checks of the simulated tasks and arm limits (no policy, no execution method).

Usage::

    OMP_NUM_THREADS=1 python -m rtc_ros.sim.expert_check --task transfer_cube --episodes 50
    OMP_NUM_THREADS=1 python -m rtc_ros.sim.expert_check --task conveyor_cube --episodes 100 \\
        --chunked 10,10 --chunked 0,50

For every mode (``closed``: the expert on every fresh observation; ``d,s``: the chunked expert of
:func:`rtc_ros.sim.conveyor_expert.run_chunked_expert` with H = ``--horizon``; ``ou``: the closed-loop
expert with Ornstein-Uhlenbeck noise of std ``--ou-std`` rad and correlation time 0.3 s added to the arm
targets, like the noisy demonstrations of ``rtc_ros.experiments.sim_demos``) prints one JSON line:
``task``, ``mode``, ``episodes``, ``successes``, ``success_rate``, ``stops`` (protective stops over
all episodes), ``episodes_with_stops``, ``peak_velocity`` / ``peak_torque`` (largest fraction of a
limit used), ``peak_arm_step`` (closed loop: the largest commanded arm-joint change per tick, rad;
the executor's ``max_step`` is 0.062), ``failed_seeds`` and ``wall_s``. Seeds are ``--seed0 .. --seed0 + episodes - 1``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from typing import Any

import numpy as np

from rtc_ros.sim.bimanual import BimanualSim
from rtc_ros.sim.conveyor import TASK_NAMES, ConveyorConfig, ConveyorCubeTask
from rtc_ros.sim.conveyor_expert import (EpisodeOutcome, episode_outcome, make_expert, run_chunked_expert,
                                         run_closed_loop_expert)
from rtc_ros.sim.expert_schedule import SCHEDULES, ExpertSchedule, schedule_name


def run_noisy_expert(sim: BimanualSim, seed: int, std: float, tau_s: float = 0.3,
                     schedule: ExpertSchedule | None = None) -> EpisodeOutcome:
    """The task's expert with OU noise (std ``std`` rad, correlation ``tau_s``) on the 12 arm targets."""
    obs = sim.reset(seed)
    expert = make_expert(sim, schedule)
    expert.reset(obs)
    rng = np.random.default_rng([seed, 31])
    alpha = math.exp(-0.02 / tau_s)
    sigma = std * math.sqrt(1 - alpha * alpha)
    mask = np.ones(14)
    mask[[6, 13]] = 0.0
    noise = np.zeros(14)
    steps = expert.horizon + 15
    for _ in range(steps):
        noise = alpha * noise + sigma * rng.standard_normal(14) * mask
        obs = sim.step(expert.act(obs) + noise).obs
    return episode_outcome(sim, seed, steps)


def summarize(task: str, mode: str, outcomes: list[EpisodeOutcome], wall_s: float) -> dict[str, Any]:
    """The JSON summary of one mode (see module docstring)."""
    n = len(outcomes)
    ok = sum(o.success for o in outcomes)
    return {
        "task": task, "mode": mode, "episodes": n, "successes": ok, "success_rate": ok / max(n, 1),
        "stops": sum(o.stops for o in outcomes), "episodes_with_stops": sum(o.stops > 0 for o in outcomes),
        "peak_velocity": max((o.peak_velocity for o in outcomes), default=0.0),
        "peak_torque": max((o.peak_torque for o in outcomes), default=0.0),
        "peak_arm_step": max((o.peak_arm_step for o in outcomes if not math.isnan(o.peak_arm_step)), default=None),
        "failed_seeds": [(o.seed, o.progress, o.stops) for o in outcomes if not o.success],
        "wall_s": round(wall_s, 1),
    }


def run_mode(task: str, mode: str, seeds: range, horizon: int, stops: bool, ou_std: float = 0.03,
             blend: int = 0, belt: ConveyorConfig | None = None, prediction: str = "acceleration",
             schedule: ExpertSchedule | None = None) -> dict[str, Any]:
    """Run one mode (``closed``, ``ou`` or ``d,s``) over ``seeds`` (``belt``: another conveyor belt;
    ``schedule``: the transfer expert's timing)."""
    sim = BimanualSim(task=task, max_episode_steps=10_000, protective_stops=stops)
    planner = BimanualSim(task=task, max_episode_steps=10_000, protective_stops=stops)
    if belt is not None:
        if task != "conveyor_cube":
            raise ValueError("--belt needs --task conveyor_cube")
        sim._task = ConveyorCubeTask(belt)  # noqa: SLF001 -- design exploration of the belt
        planner._task = ConveyorCubeTask(belt)  # noqa: SLF001
    t0 = time.perf_counter()
    if mode == "closed":
        outs = [run_closed_loop_expert(sim, seed, schedule=schedule) for seed in seeds]
    elif mode == "ou":
        outs = [run_noisy_expert(sim, seed, ou_std, schedule=schedule) for seed in seeds]
    else:
        d, s = (int(x) for x in mode.split(","))
        outs = [run_chunked_expert(sim, planner, seed, d, s, horizon, blend=blend, prediction=prediction,
                                   schedule=schedule)
                for seed in seeds]
    sim.close()
    planner.close()
    name = mode if mode in ("closed", "ou") else f"d={mode.split(',')[0]},s={mode.split(',')[1]}" + (
        f",blend={blend}" if blend else "") + ("" if prediction == "acceleration" else f",prediction={prediction}")
    return summarize(task, name if mode != "ou" else f"ou_std={ou_std}", outs, time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """CLI entry point; returns the printed summaries."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=TASK_NAMES, default="transfer_cube")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--seed0", type=int, default=0)
    ap.add_argument("--horizon", type=int, default=50, help="chunk length H")
    ap.add_argument("--chunked", action="append", default=[], metavar="D,S",
                    help="also run the chunked expert with delay D and execution horizon S (repeatable)")
    ap.add_argument("--no-closed", action="store_true", help="skip the closed-loop expert")
    ap.add_argument("--blend", type=int, default=0, help="chunked: min-jerk cross-fade over this many ticks")
    ap.add_argument("--prediction", choices=("acceleration", "velocity"), default="acceleration",
                    help="chunked: how the planner predicts the conveyor belt")
    ap.add_argument("--no-stops", action="store_true", help="protective stops off")
    ap.add_argument("--belt", default="", metavar="VMIN,VMAX,TMIN,TMAX,ACC[,PROCESS]",
                    help="conveyor belt: speed range (m/s), re-draw interval (s), ramp (m/s^2); default: ConveyorConfig()")
    ap.add_argument("--ou", action="store_true", help="also run the expert with OU noise on the arm targets")
    ap.add_argument("--ou-std", type=float, default=0.03, help="OU noise std (rad), like the noisy demos")
    ap.add_argument("--expert-schedule", choices=sorted(SCHEDULES), default=None,
                    help="transfer expert's waypoint timing (default: margin; the conveyor expert has only 'original')")
    args = ap.parse_args(argv)
    if args.episodes < 1:
        ap.error("--episodes must be >= 1")
    try:
        schedule = SCHEDULES[schedule_name(args.task, args.expert_schedule or "")]
    except ValueError as exc:
        ap.error(f"--expert-schedule: {exc}")
    logging.basicConfig(level=logging.ERROR)
    seeds = range(args.seed0, args.seed0 + args.episodes)
    modes = ([] if args.no_closed else ["closed"]) + (["ou"] if args.ou else []) + list(args.chunked)
    out = []
    for mode in modes:
        belt = None
        if args.belt:
            parts = args.belt.split(",")
            v0, v1, t0, t1, acc = (float(x) for x in parts[:5])
            belt = ConveyorConfig(speed_min=v0, speed_max=v1, change_min_s=t0, change_max_s=t1, belt_accel=acc,
                                  process=parts[5] if len(parts) > 5 else "speed")
        res = run_mode(args.task, mode, seeds, args.horizon, not args.no_stops, args.ou_std, args.blend, belt,
                       args.prediction, schedule)
        print(json.dumps(res), flush=True)
        out.append(res)
    return out


if __name__ == "__main__":
    main()
