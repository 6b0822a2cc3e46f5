"""``python -m rtc_ros.benchmarks.tasks [--suite v1|v2|all] [--n N] [--noise STD] [--no-rules]``:
expert solve rates, and the suite's three design rules for every task of the suite, checked with
the experts alone (lag tolerance :mod:`rtc_ros.benchmarks.tasks.lag`; reacting and consistency
:mod:`rtc_ros.benchmarks.tasks.rules`). Prints a line per task, a markdown table and a JSON line.

Exits with status 1 if a task of the suite breaks a rule."""

from __future__ import annotations

import argparse
import json
import math
import sys

from rtc_ros.benchmarks.tasks import DEFAULT_SUITE, EVAL_NOISE_STD, SUITES, TASKS, expert_solve_rates, suite_tasks
from rtc_ros.benchmarks.tasks.lag import LAG_RULE_MIN_RATE, check_lag_rule
from rtc_ros.benchmarks.tasks.rules import (CONSISTENCY_POINT, CONSISTENCY_RULE_MIN_FAIL, REACT_RULE_MIN_DROP,
                                            check_consistency_rule, check_reacting_rule, passes_consistency,
                                            passes_reacting)


#: ``--seed`` range (torch generators take larger ones, but offsets are added to it)
SEED_LIMIT = 2**32


def check_args(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--n`` >= 1, ``--noise`` finite and >= 0, ``--seed`` in ``[0, 2**32)``; else ``ap.error`` (exit 2)."""
    if args.n < 1:
        ap.error(f"--n must be >= 1, got {args.n}")
    if not (args.noise >= 0 and math.isfinite(args.noise)):
        ap.error(f"--noise must be finite and >= 0, got {args.noise}")
    if not 0 <= args.seed < SEED_LIMIT:
        ap.error(f"--seed must be in [0, 2**32), got {args.seed}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--suite", default=DEFAULT_SUITE, choices=tuple(SUITES), help="which task list")
    ap.add_argument("--n", type=int, default=2048, help="environments per task, >= 1 (the rules use min(n, 1024))")
    ap.add_argument("--noise", type=float, default=EVAL_NOISE_STD,
                    help="action noise std for the solve rates (>= 0)")
    ap.add_argument("--seed", type=int, default=0, help="seed, in [0, 2**32)")
    ap.add_argument("--no-rules", "--no-lag", action="store_true", help="skip the design-rule checks")
    args = ap.parse_args(argv)
    check_args(ap, args)
    names = suite_tasks(args.suite)
    rates: dict = expert_solve_rates(args.n, args.seed, args.noise, names)
    for name, r in rates.items():
        print(f"{name:18s} {TASKS[name][0].spec.kind:15s} solve {r['solve_rate']:.4f}  mean length {r['mean_length']:.1f}")
    ok = True
    if not args.no_rules:
        n = min(args.n, 1024)
        print(f"\nchunked expert (H = 8, naive switching, noise {EVAL_NOISE_STD}, {n} episodes); rules: lag >= "
              f"{LAG_RULE_MIN_RATE} at (d, s) = (4, 4) and (1, 7); reacting: rate(0, 1) - rate(0, 8) >= "
              f"{REACT_RULE_MIN_DROP}; consistency: a switch to the other mode at a random chunk boundary "
              f"(d, s = {CONSISTENCY_POINT}) fails >= {CONSISTENCY_RULE_MIN_FAIL}")
        table = ["| task | lag: d=4,s=4 | lag: d=1,s=7 | reacting: s=1 | reacting: s=8 | drop | consistency: "
                 "unswitched | switched fails | lag | reacting | consistency |", "|" + "---|" * 11]
        for name in names:
            lag = check_lag_rule(name, n_envs=n, seed=args.seed)
            react = check_reacting_rule(name, n_envs=n, seed=args.seed)
            cons = check_consistency_rule(name, n_envs=n, seed=args.seed)
            passed = {"lag": min(lag.values()) >= LAG_RULE_MIN_RATE, "reacting": passes_reacting(react),
                      "consistency": passes_consistency(cons)}
            ok &= all(passed.values())
            rates[name].update(lag_rule=lag, reacting_rule=react, consistency_rule=cons, passes=passed)
            verdict = "  ".join(f"{k} {'pass' if v else 'FAIL'}" for k, v in passed.items())
            print(f"{name:18s} lag {lag['d=4,s=4']:.3f} {lag['d=1,s=7']:.3f}  reacting {react['s=1']:.3f} -> "
                  f"{react['s=H']:.3f}  switched fails {cons['failure']:.3f}  {verdict}", flush=True)
            cells = [lag["d=4,s=4"], lag["d=1,s=7"], react["s=1"], react["s=H"], react["drop"], cons["unswitched"],
                     cons["failure"]]
            table.append(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " | "
                         + " | ".join("pass" if v else "**fail**" for v in passed.values()) + " |")
        print("\n" + "\n".join(table) + "\n")
    print(json.dumps(rates))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
