"""Would batching BID's strong and weak samples into one model call make the Figure 5 sweep cheaper?

    python -m rtc_ros.benchmarks.bid_batching [--task shuttle] [--rows 128 2048 8192] [--repeats 5]

BID draws ``N = 32`` samples per environment from the strong policy and ``N`` from the weak one
(:mod:`rtc_ros.core.bid`); the harness calls the two networks one after the other. This times one
velocity evaluation of both, at the sweep's row counts (``rows = N x environments``):

* ``separate``: ``strong(a, o, t)`` then ``weak(a, o, t)`` (what the harness does);
* ``batched``: one call over the two networks' stacked parameters (``torch.func.stack_module_state``
  + ``torch.vmap`` of ``functional_call``), the usual way to run an ensemble of same-shaped models.

Both in eager mode, one thread, no gradients, on the task's cached benchmark policies
(:func:`rtc_ros.benchmarks._policies.get_task_policies`, trained on first use). Minimum over
``repeats`` of each, alternating. The last line printed is JSON ``{"rows": {n: {"separate_ms",
"batched_ms", "batched_over_separate"}}}``; a ratio above 1 means batching is slower.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Callable

import torch

from rtc_ros.benchmarks._policies import PolicyRecipe, get_task_policies
from rtc_ros.benchmarks.tasks import TASK_NAMES


def stacked_velocity(strong: torch.nn.Module, weak: torch.nn.Module) -> Callable[..., torch.Tensor]:
    """One callable for both networks: ``f(a (2, B, H, M), obs (2, B, O), tau (2, B)) -> (2, B, H, M)``
    (index 0 = strong, 1 = weak), over their stacked parameters (same architecture required)."""
    from torch.func import functional_call, stack_module_state

    params, buffers = stack_module_state([strong, weak])
    shell = copy.deepcopy(strong).to("meta")
    both = torch.vmap(lambda p, b, x, y, z: functional_call(shell, (p, b), (x, y, z)))
    return lambda a, o, t: both(params, buffers, a, o, t)


def time_pair(strong: torch.nn.Module, weak: torch.nn.Module, rows: int, repeats: int,
              seed: int = 0) -> dict[str, float]:
    """Best-of-``repeats`` milliseconds of one velocity call of both networks, separate vs batched."""
    if repeats < 1 or rows < 1:
        raise ValueError(f"rows and repeats must be >= 1, got {rows}, {repeats}")
    gen = torch.Generator().manual_seed(seed)
    horizon, dim, obs_dim = strong.horizon, strong.action_dim, strong.obs_dim
    a = torch.randn(rows, horizon, dim, generator=gen)
    o = torch.randn(rows, obs_dim, generator=gen)
    t = torch.rand(rows, generator=gen)
    both = stacked_velocity(strong, weak)
    a2, o2, t2 = (x[None].expand(2, *x.shape).contiguous() for x in (a, o, t))
    best = {"separate": float("inf"), "batched": float("inf")}
    with torch.no_grad():
        strong(a, o, t), weak(a, o, t), both(a2, o2, t2)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            strong(a, o, t)
            weak(a, o, t)
            best["separate"] = min(best["separate"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            both(a2, o2, t2)
            best["batched"] = min(best["batched"], time.perf_counter() - t0)
    return {"separate_ms": round(best["separate"] * 1e3, 3), "batched_ms": round(best["batched"] * 1e3, 3),
            "batched_over_separate": round(best["batched"] / best["separate"], 3)}


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="shuttle", choices=TASK_NAMES)
    ap.add_argument("--rows", type=int, nargs="+", default=[128, 2048, 8192],
                    help="rows per call (N = 32 samples x 4 / 64 / 256 environments)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--policy-cache", type=Path, default=Path("runs/policies"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    strong, weak, _ = get_task_policies(args.task, args.policy_cache, PolicyRecipe(), progress=False)
    out: dict[str, object] = {"task": args.task, "rows": {}}
    for n in args.rows:
        r = time_pair(strong.model.eval(), weak.model.eval(), n, args.repeats)
        out["rows"][str(n)] = r  # type: ignore[index]
        print(f"rows {n}: separate {r['separate_ms']:.2f} ms, batched {r['batched_ms']:.2f} ms, "
              f"batched/separate {r['batched_over_separate']:.2f}")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
