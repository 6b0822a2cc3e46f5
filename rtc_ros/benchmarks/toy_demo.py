"""Interim demo: RTC vs naive async on the bimodal toy policy, under the simulated-delay protocol.

Each cycle a chunk is sampled from the current position; the first ``d`` actions of the old chunk
execute while "inference runs", then actions ``d .. s-1`` of the new chunk. Prints, per method:
frozen-prefix error (new[:d] vs what actually executed), splice jump (step size at the switch),
how often the mode flipped, and chunk latency. Run: ``python -m rtc_ros.benchmarks.toy_demo``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig
from rtc_ros.policies.spec import load_policy
from rtc_ros.policies.toy import SPEED, train_toy_policy


def run_method(policy, method: str, d: int, s: int, cycles: int, seed: int) -> dict[str, float]:
    """Roll the protocol for ``cycles`` chunks; return mean metrics."""
    gen = ChunkGenerator(policy, GeneratorConfig(method=method, seed=seed))
    rng = np.random.default_rng(seed)
    pos = np.zeros(2)
    old = gen.generate(pos.astype(np.float32))  # absolute coordinates
    prefix_err, jumps, flips, lat = [], [], [], []
    direction = lambda c: np.sign(c[-1, 0] - c[0, 0])  # noqa: E731  the chunk's mode (+1 / -1)
    for _ in range(cycles):
        # The toy task is translation-invariant: sample in a frame centred on the observed position so
        # the observation stays inside the training range (p in [-0.5, 0.5]).
        p_obs = pos.copy()
        remaining = old[s:] - p_obs  # index 0 = the step at which this cycle's observation is taken
        t0 = time.perf_counter()
        new = gen.generate(np.zeros(2, dtype=np.float32), remaining, d, s)
        lat.append(time.perf_counter() - t0)
        if d:
            prefix_err.append(float(np.abs(new[:d] - remaining[:d]).mean()))
        prev_action = remaining[d - 1] if d else np.zeros(2)
        jumps.append(float(np.abs(new[d] - prev_action).max()))
        flips.append(float(direction(new) != direction(old)))
        for a in np.concatenate([remaining[:d], new[d:s]]) + p_obs:  # d old actions, then the new chunk
            pos = a + 0.01 * rng.standard_normal(2)
        old = new + p_obs
    return {
        "frozen_prefix_err": float(np.mean(prefix_err)) if prefix_err else 0.0,
        "splice_jump_mean": float(np.mean(jumps)),
        "splice_jump_max": float(np.max(jumps)),
        "mode_flip_rate": float(np.mean(flips)),
        "latency_ms_p50": 1000 * float(np.median(lat)),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/toy", help="where the toy policy is trained/cached")
    ap.add_argument("--d", type=int, default=2)
    ap.add_argument("--s", type=int, default=3)
    ap.add_argument("--cycles", type=int, default=150)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    spec = Path(args.out) / "toy_bimodal.yaml"
    if not spec.exists():
        print(f"training the toy policy into {args.out} (once, ~1 min) ...")
        spec = train_toy_policy(args.out, steps=1000, progress=True)
    policy = load_policy(spec)
    print(f"toy: H=8, d={args.d}, s={args.s}, {args.cycles} chunks; ideal step size {SPEED:.2f}")
    rows = {m: run_method(policy, m, args.d, args.s, args.cycles, seed=1) for m in ("naive", "rtc", "rtc_hard")}
    cols = list(next(iter(rows.values())))
    print(f"{'method':10s}" + "".join(f"{c:>20s}" for c in cols))
    for m, r in rows.items():
        print(f"{m:10s}" + "".join(f"{r[c]:20.3f}" for c in cols))
    print(json.dumps({"toy_demo": rows}))


if __name__ == "__main__":
    main()
