"""Method-independent diagnostics of the task suite.

:func:`expert_lag_sensitivity`: the scripted expert's solve rate when it acts on the state from
``k`` control steps ago (a pure feedback delay, no chunking). It measures how much a task punishes
stale information, independently of any policy or method -- useful to read the delay sweep.

    python -m rtc_ros.benchmarks._diagnostics
"""

from __future__ import annotations

import copy
import json
from collections import deque

import torch

from rtc_ros.benchmarks.tasks import EVAL_NOISE_STD, TASK_NAMES, make_expert, make_task


def expert_lag_sensitivity(name: str, lag: int, n_envs: int = 1024, seed: int = 0,
                           noise_std: float = EVAL_NOISE_STD) -> float:
    """Solve rate of the expert fed the task state from ``lag`` steps ago (the first ``lag``
    steps use the initial state). Relies on tasks replacing (not mutating) their state tensors."""
    if lag < 0:
        raise ValueError(f"lag must be >= 0, got {lag}")
    task = make_task(name, n_envs)
    expert = make_expert(task)
    gen = torch.Generator().manual_seed(seed)
    task.reset(gen)
    expert.reset(gen)
    noise = torch.Generator().manual_seed(seed + 7919)
    history: deque = deque([copy.copy(task)], maxlen=lag + 1)
    while not task.all_done:
        expert.task = history[0]
        a = expert.act()
        expert.task = task
        task.step(a + noise_std * torch.randn(a.shape, generator=noise))
        history.append(copy.copy(task))
    return float(task.success.float().mean())


def main() -> None:
    out = {name: {str(k): round(expert_lag_sensitivity(name, k), 3) for k in range(5)} for name in TASK_NAMES}
    for name, r in out.items():
        print(f"{name:18s} " + "  ".join(f"lag {k}: {v:.3f}" for k, v in r.items()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
