"""The suite's second and third design rules, checked with the experts only (no policy, no method),
like the lag-tolerance rule (:mod:`rtc_ros.benchmarks.tasks.lag`). Fixed before any method runs
(issue 15), on the chunked expert (H = 8, naive switching, action noise 0.1, 1024 episodes, seed 0):

* **reacting matters**: executing open loop for a whole chunk costs the expert something,
  ``rate(d=0, s=1) - rate(d=0, s=H) >= 0.10`` (:func:`check_reacting_rule`). Note: at
  ``(0, H)`` actions run 0..7 steps after their observation, at the lag rule's ``(4, 4)`` 4..7 and at
  ``(1, 7)`` 1..7, so a task that passes the lag rule (>= 0.9 there) can pass this rule only if
  ``rate(0, H) <= 0.9`` sits at or below those points (see docs/figure5.md, "Design rules (v2)").
* **consistency matters**: mixing modes between chunks is costly. The chunked expert at
  ``(d, s) = (0, 4)`` switches to its other mode (:mod:`rtc_ros.benchmarks.tasks.modes`) at one chunk
  boundary drawn uniformly among those strictly inside its own unswitched episode (same seed and
  noise, so the episode is the same up to the switch); it must fail ``>= 0.30`` of the episodes
  (:func:`check_consistency_rule`).

    python -m rtc_ros.benchmarks.tasks          # expert solve rates + all three rules per task
"""

from __future__ import annotations

import torch

from rtc_ros.benchmarks.tasks import EVAL_NOISE_STD
from rtc_ros.benchmarks.tasks.lag import LAG_RULE_HORIZON, chunked_expert_rollout

REACT_RULE_MIN_DROP = 0.10
CONSISTENCY_RULE_MIN_FAIL = 0.30
#: the consistency rule's protocol point (d, s): chunks of 4 executed whole, planned from fresh state
CONSISTENCY_POINT: tuple[int, int] = (0, 4)


def check_reacting_rule(name: str, n_envs: int = 1024, seed: int = 0,
                        noise_std: float = EVAL_NOISE_STD) -> dict[str, float]:
    """``{"s=1": rate, "s=H": rate, "drop": s=1 minus s=H}`` of the chunked expert at d = 0."""
    closed = chunked_expert_rollout(name, 0, 1, LAG_RULE_HORIZON, n_envs, seed, noise_std)
    open_loop = chunked_expert_rollout(name, 0, LAG_RULE_HORIZON, LAG_RULE_HORIZON, n_envs, seed, noise_std)
    r1, rh = float(closed.success.float().mean()), float(open_loop.success.float().mean())
    return {"s=1": r1, "s=H": rh, "drop": r1 - rh}


def switch_steps(lengths: torch.Tensor, s: int, gen: torch.Generator) -> torch.Tensor:
    """Per env, a chunk boundary ``k s`` (k >= 1) drawn uniformly among those ``< lengths[i]``, i.e.
    while env ``i``'s own episode is still running; ``-1`` where there is none. ``lengths (n,)`` long."""
    if s < 1:
        raise ValueError(f"s must be >= 1, got {s}")
    n_bounds = ((lengths - 1) // s).clamp(min=0)
    k = 1 + (torch.rand(lengths.shape, generator=gen) * n_bounds).long()
    return torch.where(n_bounds > 0, k * s, torch.full_like(lengths, -1))


def check_consistency_rule(name: str, n_envs: int = 1024, seed: int = 0,
                           noise_std: float = EVAL_NOISE_STD) -> dict[str, float]:
    """``{"unswitched": rate, "switched": rate, "failure": 1 - switched, "no_switch": fraction of
    episodes too short to hold an interior boundary}`` (see module docstring)."""
    d, s = CONSISTENCY_POINT
    own = chunked_expert_rollout(name, d, s, LAG_RULE_HORIZON, n_envs, seed, noise_std)
    steps = switch_steps(own.length, s, torch.Generator().manual_seed(seed + 2))
    switched = chunked_expert_rollout(name, d, s, LAG_RULE_HORIZON, n_envs, seed, noise_std, switch_step=steps)
    rate = float(switched.success.float().mean())
    return {"unswitched": float(own.success.float().mean()), "switched": rate, "failure": 1.0 - rate,
            "no_switch": float((steps < 0).float().mean())}


def passes_reacting(row: dict[str, float]) -> bool:
    return row["drop"] >= REACT_RULE_MIN_DROP


def passes_consistency(row: dict[str, float]) -> bool:
    return row["failure"] >= CONSISTENCY_RULE_MIN_FAIL


__all__ = ["REACT_RULE_MIN_DROP", "CONSISTENCY_RULE_MIN_FAIL", "CONSISTENCY_POINT", "check_reacting_rule",
           "switch_steps", "check_consistency_rule", "passes_reacting", "passes_consistency"]
