"""Simulated-delay benchmark: solve rate vs inference delay and vs execution horizon (Figure 5).

    python -m rtc_ros.benchmarks.delay_sweep [--quick] --out DIR

Steps: (1) per task, make or load the cached base policy and BID's weak checkpoint
(:mod:`rtc_ros.benchmarks._policies`; cached under ``--policy-cache``, default ``runs/policies``);
(2) run every method (default: the paper's; ``rtc_trained``, training-time RTC, on request with
its own prefix-conditioned policy trained for ``d <= max(delays)``) under the authors' protocol (:mod:`rtc_ros.benchmarks.protocol`) for
``d = 0..4`` with ``s = max(d, 1)`` (delay sweep) and ``s = 1..H-1`` at ``d = 1`` (horizon sweep),
same seeds and noise for every method; (3) write ``sweep.csv``, ``results.json``, ``figure5.png``
(averaged over tasks) and ``figure5_per_task.png``. The last line printed is a JSON object
``{"solve_rate": {method: {d: mean over tasks}}, "wall_s": ...}`` for the delay sweep.

Work is split into (task, method) jobs over ``--workers`` processes (1 torch thread each).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from rtc_ros.benchmarks._policies import QUICK_RECIPE, PolicyRecipe, get_task_policies, get_trained_rtc_policy
from rtc_ros.benchmarks._sampler import BENCH_METHODS, PAPER_METHODS, SamplerConfig, check_bench_method
from rtc_ros.benchmarks.figure5_plots import plot_figure5
from rtc_ros.benchmarks.protocol import DelayConfig, pooled_wilson, run_delayed, wilson_interval
from rtc_ros.benchmarks.tasks import (DEFAULT_SUITE, EVAL_NOISE_STD, SUITES, TASK_NAMES, check_task, make_task,
                                     run_expert, suite_tasks)
from rtc_ros.runtime.generator import GeneratorConfig

log = logging.getLogger(__name__)

DELAYS: tuple[int, ...] = (0, 1, 2, 3, 4)


@dataclass
class SweepConfig:
    """What to run. ``rollouts``: envs per point; BID (32x the model calls) gets ``bid_rollouts``;
    the horizon sweep gets ``horizon_rollouts`` / ``horizon_bid_rollouts`` (0 skips it)."""

    tasks: tuple[str, ...] = SUITES[DEFAULT_SUITE]
    methods: tuple[str, ...] = PAPER_METHODS
    delays: tuple[int, ...] = DELAYS
    horizon_d: int = 1
    rollouts: int = 2048
    bid_rollouts: int = 256
    horizon_rollouts: int = 2048
    horizon_bid_rollouts: int = 128
    noise_std: float = EVAL_NOISE_STD
    seed: int = 0
    workers: int = 2
    recipe: PolicyRecipe = field(default_factory=PolicyRecipe)
    sampler: SamplerConfig = field(default_factory=lambda: SamplerConfig(compile_methods=BENCH_METHODS))

    def __post_init__(self) -> None:
        for t in self.tasks:
            check_task(t)
        for m in self.methods:
            check_bench_method(m)
        if not self.tasks or not self.methods or not self.delays:
            raise ValueError("need at least one task, method and delay")
        H = self.recipe.horizon
        for d in self.delays:
            DelayConfig(H, d, max(d, 1))
        if self.horizon_rollouts:
            DelayConfig(H, self.horizon_d, max(self.horizon_d, 1))
        if self.rollouts < 1 or self.bid_rollouts < 1:
            raise ValueError("rollouts and bid_rollouts must be >= 1")
        if self.horizon_rollouts < 0 or self.horizon_bid_rollouts < 0:
            raise ValueError("horizon rollouts must be >= 0")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std}")

    def points(self) -> list[tuple[str, int, int]]:
        """``(sweep, d, s)`` of every point: the delay sweep, then the horizon sweep."""
        H = self.recipe.horizon
        pts = [("delay", d, max(d, 1)) for d in self.delays]
        if self.horizon_rollouts:
            d = self.horizon_d
            pts += [("horizon", d, s) for s in range(max(d, 1), H - d + 1)]
        return pts

    @property
    def max_prefix(self) -> int:
        """Largest ``d`` of any point: what ``rtc_trained``'s policy is trained with (at least 1)."""
        return max(1, max(d for _, d, _ in self.points()))

    def n_envs(self, sweep: str, method: str) -> int:
        if sweep == "delay":
            return self.bid_rollouts if method == "bid" else self.rollouts
        return self.horizon_bid_rollouts if method == "bid" else self.horizon_rollouts


def quick_config(**overrides: Any) -> SweepConfig:
    """The ``--quick`` size (a few minutes on 2 cores): delay sweep only, 32 rollouts per point (BID 4),
    briefly trained policies. Numbers are for smoke-testing, not for conclusions."""
    base = dict(rollouts=32, bid_rollouts=4, horizon_rollouts=0, horizon_bid_rollouts=0, recipe=QUICK_RECIPE,
                sampler=SamplerConfig())
    base.update(overrides)
    return SweepConfig(**base)


def _run_job(task: str, method: str, cfg: SweepConfig, cache: str, position: int) -> list[dict[str, Any]]:
    """Worker: all sweep points of one (task, method). Returns CSV rows."""
    torch.set_num_threads(1)
    strong, weak, _ = get_task_policies(task, Path(cache), cfg.recipe, progress=False)
    if method == "rtc_trained":  # the same recipe plus prefix conditioning
        strong, _ = get_trained_rtc_policy(task, Path(cache), cfg.recipe, cfg.max_prefix, progress=False)
    gen_m = cfg.sampler.generator(method, strong, weak)
    rows = []
    points = cfg.points()
    bar = tqdm(points, desc=f"{task}:{method}", position=position, leave=False, mininterval=2.0,
               disable=not sys.stderr.isatty())
    H = cfg.recipe.horizon
    done: dict[tuple[int, int, int], dict[str, Any]] = {}
    for sweep, d, s in bar:
        n = cfg.n_envs(sweep, method)
        if n == 0:
            continue
        if (d, s, n) in done:  # same point, seed and size in both sweeps: the same episodes
            rows.append({**done[(d, s, n)], "sweep": sweep})
            continue
        env = make_task(task, n)
        seed = cfg.seed + 1000 * TASK_NAMES.index(task)
        gen = torch.Generator().manual_seed(seed + 3)
        res = run_delayed(env, gen_m.chunk_fn(d, s, gen), gen_m.plain_fn, DelayConfig(H, d, s), env.spec.act_dim,
                          seed, cfg.noise_std, ensemble=(method == "te_sparse"))
        k = int(res.success.sum())
        lo, hi = wilson_interval(k, n)
        rows.append(dict(sweep=sweep, task=task, method=method, d=d, s=s, rollouts=n, successes=k,
                         solve_rate=k / n, ci_low=lo, ci_high=hi, model_calls=res.model_calls,
                         env_rows=res.env_rows, mean_length=float(res.length.float().mean()),
                         wall_s=round(res.wall_s, 2)))
        done[(d, s, n)] = rows[-1]
        log.info("%s %s %s d=%d s=%d: %.3f (%d/%d) %.1fs", task, method, sweep, d, s, k / n, k, n, res.wall_s)
    return rows


def _prepare_task(task: str, cfg: SweepConfig, cache: str, position: int = 0) -> dict[str, Any]:
    """Worker: train/load the task's policies and measure the expert with evaluation noise."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    strong, _, trained = get_task_policies(task, Path(cache), cfg.recipe, progress=False)
    extra = {}
    if "rtc_trained" in cfg.methods:
        prefixed, _ = get_trained_rtc_policy(task, Path(cache), cfg.recipe, cfg.max_prefix, progress=False)
        extra = dict(trained_rtc_train_s=prefixed.spec.get("train_s"), trained_rtc_final_loss=prefixed.spec.get("final_loss"))
    expert_env, _ = run_expert(task, cfg.rollouts, cfg.seed + 1000 * TASK_NAMES.index(task), cfg.noise_std)
    return dict(task=task, trained=trained, prepare_s=round(time.perf_counter() - t0, 1),
                train_s=strong.spec.get("train_s"), demo_s=strong.spec.get("demo_s"),
                expert_solve_rate=float(expert_env.success.float().mean()),
                final_loss=strong.spec.get("final_loss"), **extra)


def _cost(cfg: SweepConfig, method: str) -> float:
    """Rough relative cost of a (task, method) job, for longest-first scheduling."""
    per_row = {"bid": 2.0 * cfg.sampler.bid_samples, "te_sparse": 1.0, "naive": 1.0, "rtc_trained": 1.0}.get(method, 3.0)
    return per_row * sum(cfg.n_envs(sw, method) / max(s, 1) for sw, _, s in cfg.points())


def _map(fn: Any, jobs: list[tuple], workers: int, desc: str) -> list[Any]:
    """Run ``fn(*job, position)`` over a process pool (or inline for 1 worker) with a progress bar."""
    out: list[Any] = []
    bar = tqdm(total=len(jobs), desc=desc, position=0, mininterval=1.0)
    if workers == 1:
        for job in jobs:
            out.append(fn(*job, 1))
            bar.update()
    else:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futs = [pool.submit(fn, *job, 1 + i % workers) for i, job in enumerate(jobs)]
            for f in as_completed(futs):
                out.append(f.result())
                bar.update()
    bar.close()
    return out


def run_sweep(cfg: SweepConfig, out_dir: Path, cache_dir: Path) -> dict[str, Any]:
    """Run the whole benchmark; write CSV, JSON and plots into ``out_dir``; return the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = str(cache_dir)
    t0 = time.perf_counter()
    prep = _map(_prepare_task, [(t, cfg, cache) for t in cfg.tasks], min(cfg.workers, len(cfg.tasks)), "policies")
    prep.sort(key=lambda r: cfg.tasks.index(r["task"]))
    prepare_s = time.perf_counter() - t0
    jobs = sorted(((t, m, cfg, cache) for t in cfg.tasks for m in cfg.methods), key=lambda j: -_cost(cfg, j[1]))
    t1 = time.perf_counter()
    rows = [r for rs in _map(_run_job, jobs, cfg.workers, "sweep") for r in rs]
    sweep_s = time.perf_counter() - t1
    order = {m: i for i, m in enumerate(cfg.methods)}
    rows.sort(key=lambda r: (r["sweep"], cfg.tasks.index(r["task"]), order[r["method"]], r["d"], r["s"]))
    summary = summarise(rows, cfg)
    summary.update(prepare_s=round(prepare_s, 1), wall_s=round(sweep_s, 1), total_s=round(time.perf_counter() - t0, 1),
                   tasks=prep, config=_config_dict(cfg))
    write_csv(rows, out_dir / "sweep.csv")
    (out_dir / "results.json").write_text(json.dumps(summary, indent=1))
    plot_figure5(rows, cfg, out_dir)
    return summary


def _config_dict(cfg: SweepConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["tasks"], d["methods"], d["delays"] = list(cfg.tasks), list(cfg.methods), list(cfg.delays)
    return d


def summarise(rows: list[dict[str, Any]], cfg: SweepConfig) -> dict[str, Any]:
    """Mean solve rate over tasks per method and point, with pooled 95% Wilson intervals."""
    out: dict[str, Any] = {"solve_rate": {}, "ci95": {}, "horizon_solve_rate": {}}
    for m in cfg.methods:
        for sweep, key, var in (("delay", "solve_rate", "d"), ("horizon", "horizon_solve_rate", "s")):
            sel = [r for r in rows if r["method"] == m and r["sweep"] == sweep]
            if not sel:
                continue
            out[key][m] = {}
            for x in sorted({r[var] for r in sel}):
                pts = [r for r in sel if r[var] == x]
                out[key][m][str(x)] = round(float(np.mean([r["solve_rate"] for r in pts])), 4)
                if sweep == "delay":
                    lo, hi = pooled_wilson([r["solve_rate"] for r in pts], pts[0]["rollouts"])
                    out["ci95"].setdefault(m, {})[str(x)] = [round(lo, 4), round(hi, 4)]
    return out


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    if not rows:
        raise ValueError("no results to write")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``sweep.csv`` with numeric fields converted (for re-plotting)."""
    ints, floats = ("d", "s", "rollouts", "successes", "model_calls", "env_rows"), ("solve_rate", "ci_low", "ci_high",
                                                                                    "mean_length", "wall_s")
    rows = []
    for r in csv.DictReader(open(path)):
        rows.append({k: int(v) if k in ints else float(v) if k in floats else v for k, v in r.items()})
    return rows


def format_table(summary: dict[str, Any], key: str = "solve_rate") -> str:
    """Markdown table of ``summary[key]`` (method x d or s)."""
    table = summary[key]
    if not table:
        return ""
    cols = sorted({c for v in table.values() for c in v}, key=int)
    var = "d" if key == "solve_rate" else "s"
    lines = ["| method | " + " | ".join(f"{var}={c}" for c in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for m, v in table.items():
        lines.append(f"| {m} | " + " | ".join(f"{v[c]:.3f}" if c in v else "" for c in cols) + " |")
    return "\n".join(lines)


#: ``--seed`` range (offsets per task and stream are added to it)
SEED_LIMIT = 2**32


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small size (a few minutes): tiny rollouts, short training")
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--policy-cache", type=Path, default=None, help="policy cache (default: runs/policies)")
    ap.add_argument("--tasks", nargs="+", default=None, choices=TASK_NAMES)
    ap.add_argument("--suite", default=None, choices=tuple(SUITES),
                    help=f"task list (default {DEFAULT_SUITE}; v1 = the first five tasks; --tasks overrides)")
    ap.add_argument("--methods", nargs="+", default=None, choices=BENCH_METHODS,
                    help="default: the paper's six; rtc_trained trains its own prefix-conditioned policies")
    ap.add_argument("--rollouts", type=int, default=None, help="envs per point, >= 1 (paper: 2048)")
    ap.add_argument("--bid-rollouts", type=int, default=None, help="envs per BID point, >= 1")
    ap.add_argument("--horizon-rollouts", type=int, default=None, help="envs per horizon-sweep point (0 = skip)")
    ap.add_argument("--horizon-bid-rollouts", type=int, default=None, help="envs per BID horizon-sweep point (>= 0)")
    ap.add_argument("--workers", type=int, default=None,
                    help="worker processes, >= 1, 1 torch thread each (default: the CPU count, at most 8)")
    ap.add_argument("--seed", type=int, default=0, help="seed, in [0, 2**32)")
    ap.add_argument("--compile", nargs="*", default=None, choices=BENCH_METHODS, metavar="METHOD",
                    help="methods whose networks are torch.compile'd (default: all for the full size, none "
                         "for --quick; give no names to compile none)")
    ap.add_argument("--beta", type=float, default=None,
                    help="RTC guidance clip, finite and > 0 (default: the paper's 5)")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap


def check_args(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The numeric options checked before any policy is trained or loaded (else ``ap.error``: exit 2,
    no traceback). ``--beta`` follows :class:`~rtc_ros.runtime.generator.GeneratorConfig`: finite and > 0."""
    minimum = {"rollouts": 1, "bid_rollouts": 1, "horizon_rollouts": 0, "horizon_bid_rollouts": 0, "workers": 1}
    for name, low in minimum.items():
        value = getattr(args, name)
        if value is not None and value < low:
            ap.error(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    if not 0 <= args.seed < SEED_LIMIT:
        ap.error(f"--seed must be in [0, 2**32), got {args.seed}")
    if args.beta is not None and not (args.beta > 0 and math.isfinite(args.beta)):
        ap.error(f"--beta must be finite and > 0, got {args.beta}")


def build_config(ap: argparse.ArgumentParser, args: argparse.Namespace) -> SweepConfig:
    """The sweep's configuration from checked options (anything SweepConfig still refuses: ``ap.error``)."""
    over: dict[str, Any] = {}
    for name in ("tasks", "methods"):
        if getattr(args, name):
            over[name] = tuple(getattr(args, name))
    if args.suite and not args.tasks:
        over["tasks"] = suite_tasks(args.suite)
    for name in ("rollouts", "bid_rollouts", "horizon_rollouts", "horizon_bid_rollouts"):
        if getattr(args, name) is not None:
            over[name] = getattr(args, name)
    over["workers"] = args.workers if args.workers is not None else max(1, min(os.cpu_count() or 1, 8))
    over["seed"] = args.seed
    try:
        cfg = quick_config(**over) if args.quick else SweepConfig(**over)
    except ValueError as exc:
        ap.error(f"invalid sweep options: {exc}")
    if args.compile is not None or args.beta is not None:
        compile_methods = tuple(args.compile) if args.compile is not None else cfg.sampler.compile_methods
        beta = args.beta if args.beta is not None else cfg.sampler.beta
        cfg.sampler = replace(cfg.sampler, compile_methods=compile_methods, beta=beta)
    try:  # the settings every job's generator is built from, checked here rather than in a worker
        GeneratorConfig(method="rtc", beta=cfg.sampler.beta, n_steps=cfg.sampler.n_steps,
                        bid_samples=cfg.sampler.bid_samples, bid_k=cfg.sampler.bid_k)
    except ValueError as exc:
        ap.error(f"invalid sampler settings: {exc}")
    return cfg


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = _parser()
    args = ap.parse_args(argv)
    check_args(ap, args)
    cfg = build_config(ap, args)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    cache = args.policy_cache or Path("runs/policies")
    summary = run_sweep(cfg, args.out, cache)
    print(f"\nexpert solve rates (noise {cfg.noise_std}): "
          + ", ".join(f"{t['task']} {t['expert_solve_rate']:.3f}" for t in summary["tasks"]))
    print("\nsolve rate vs inference delay (s = max(d, 1)), mean over tasks:")
    print(format_table(summary, "solve_rate"))
    if summary["horizon_solve_rate"]:
        print(f"\nsolve rate vs execution horizon (d = {cfg.horizon_d}), mean over tasks:")
        print(format_table(summary, "horizon_solve_rate"))
    print(f"\npolicies (train or load): {summary['prepare_s']:.1f} s; sweep wall time: {summary['wall_s']:.1f} s; "
          f"outputs in {args.out}")
    print(json.dumps({"solve_rate": summary["solve_rate"], "wall_s": summary["wall_s"]}))
    return summary


if __name__ == "__main__":
    main()
