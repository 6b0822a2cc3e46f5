"""``python -m rtc_ros.benchmarks.tasks [--n N] [--noise STD] [--no-lag]``: expert solve rates, and
the suite's lag-tolerance rule (:mod:`rtc_ros.benchmarks.tasks.lag`) for every task.

Exits with status 1 if a task breaks the rule."""

from __future__ import annotations

import argparse
import json
import sys

from rtc_ros.benchmarks.tasks import EVAL_NOISE_STD, TASKS, expert_solve_rates
from rtc_ros.benchmarks.tasks.lag import LAG_RULE_MIN_RATE, chunked_expert_solve_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2048, help="environments per task")
    ap.add_argument("--noise", type=float, default=EVAL_NOISE_STD, help="action noise std ([-1, 1] units)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-lag", action="store_true", help="skip the chunked-expert (lag-tolerance) check")
    args = ap.parse_args()
    rates: dict = expert_solve_rates(args.n, args.seed, args.noise)
    for name, r in rates.items():
        print(f"{name:18s} {TASKS[name][0].spec.kind:11s} solve {r['solve_rate']:.4f}  mean length {r['mean_length']:.1f}")
    ok = True
    if not args.no_lag:
        print(f"\nchunked expert (H = 8, naive switching, noise {EVAL_NOISE_STD}); rule: >= {LAG_RULE_MIN_RATE} at "
              "(d, s) = (4, 4) and (1, 7)")
        points = [(d, max(d, 1)) for d in range(5)] + [(1, 7)]
        for name in rates:
            row = {f"d={d},s={s}": chunked_expert_solve_rate(name, d, s, n_envs=min(args.n, 1024), seed=args.seed)
                   for d, s in points}
            passed = row["d=4,s=4"] >= LAG_RULE_MIN_RATE and row["d=1,s=7"] >= LAG_RULE_MIN_RATE
            ok &= passed
            rates[name]["chunked_expert"] = row
            print(f"{name:18s} " + "  ".join(f"{k}: {v:.3f}" for k, v in row.items()) + ("" if passed else "  FAILS"))
    print(json.dumps(rates))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
