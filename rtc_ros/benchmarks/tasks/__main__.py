"""``python -m rtc_ros.benchmarks.tasks [--n N] [--noise STD]``: print expert solve rates."""

from __future__ import annotations

import argparse
import json

from rtc_ros.benchmarks.tasks import EVAL_NOISE_STD, TASKS, expert_solve_rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2048, help="environments per task")
    ap.add_argument("--noise", type=float, default=EVAL_NOISE_STD, help="action noise std ([-1, 1] units)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rates = expert_solve_rates(args.n, args.seed, args.noise)
    for name, r in rates.items():
        print(f"{name:18s} {TASKS[name][0].spec.kind:11s} solve {r['solve_rate']:.4f}  mean length {r['mean_length']:.1f}")
    print(json.dumps(rates))


if __name__ == "__main__":
    main()
