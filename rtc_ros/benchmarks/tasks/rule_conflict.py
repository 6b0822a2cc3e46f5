"""Why no task passes both the lag rule and the reacting rule (expert only, no policy, no method).

``python -m rtc_ros.benchmarks.tasks.rule_conflict`` prints, for the v1 cart-pole run at slower and
slower control periods, the chunked expert at the reacting rule's points ``(d, s) = (0, 1), (0, 8)``
and the lag rule's ``(4, 4), (1, 7)``; then, per task, the expert fed ``k``-step-old state without
any prediction (:func:`rtc_ros.benchmarks.tasks.lag.expert_lag_sensitivity`, k = 0, 4, 7).

At ``(0, 8)`` an action runs 0..7 steps after its observation, at ``(4, 4)`` 4..7 and at ``(1, 7)``
1..7, and the chunked expert predicts with a noise-free model: so making a task harder lowers
``(4, 4)`` first and ``(0, 8)`` last, and a drop of 10 points at ``(0, 8)`` (reacting) comes only once
``(4, 4)`` has fallen far below 0.9 (lag).
"""

from __future__ import annotations

import dataclasses

import torch

from rtc_ros.benchmarks.tasks import TASK_NAMES, cartpole
from rtc_ros.benchmarks.tasks.lag import chunked_expert_solve_rate, expert_lag_sensitivity

#: (control period [s], physics substeps) of the cart-pole sweep; 0.02 s is the suite's
PERIODS: tuple[tuple[float, int], ...] = ((0.02, 2), (0.025, 2), (0.03, 3), (0.035, 3), (0.04, 4), (0.05, 5))
POINTS: tuple[tuple[int, int], ...] = ((0, 1), (0, 8), (4, 4), (1, 7))


def cartpole_period_sweep(n_envs: int = 1024) -> list[dict[str, float]]:
    """Per control period: the chunked expert's solve rate at :data:`POINTS` (6 s episodes)."""
    spec, substeps = cartpole.CartPoleSwingUp.spec, cartpole.SUBSTEPS
    rows = []
    try:
        for dt, sub in PERIODS:
            cartpole.CartPoleSwingUp.spec = dataclasses.replace(spec, dt=dt, max_steps=int(round(6.0 / dt)))
            cartpole.SUBSTEPS = sub
            row = {"dt": dt}
            row.update({f"d={d},s={s}": chunked_expert_solve_rate("cartpole_swingup", d, s, n_envs=n_envs)
                        for d, s in POINTS})
            rows.append(row)
    finally:
        cartpole.CartPoleSwingUp.spec, cartpole.SUBSTEPS = spec, substeps
    return rows


def main() -> None:
    torch.set_num_threads(1)
    print("cart-pole swing-up, chunked expert (1024 episodes):")
    for row in cartpole_period_sweep():
        print("  " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    print("expert fed k-step-old state, no prediction (1024 episodes):")
    for name in TASK_NAMES:
        print(f"  {name:18s} " + "  ".join(f"k={k} {expert_lag_sensitivity(name, k):.3f}" for k in (0, 4, 7)), flush=True)


if __name__ == "__main__":
    main()
