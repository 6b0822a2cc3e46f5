"""The suite's lag-tolerance design rule, checked with the experts only (no policy, no method).

Under the simulated-delay protocol an action executes up to ``d + s - 1`` control steps after the
observation it was computed from, with no feedback in between. A task that even a perfect planner
cannot solve that open-loop (under the evaluation noise) measures nothing about execution methods
at large ``d``: every method scores zero there. So every task must pass this rule, fixed before
any method is compared:

    **the chunked expert solves >= 0.9 of the episodes at (d, s) = (4, 4) and (1, 7), H = 8,
    with action noise 0.1, on 1024 episodes** (both points leave actions executing up to 7 steps after their
    observation; they are the hardest points of the delay and horizon sweeps).

The *chunked expert* (:func:`chunked_expert_solve_rate`) is the scripted expert forced into the
authors' protocol with naive switching: each cycle it plans a chunk of ``H`` actions by running
itself on a noise-free copy of the current state, then the environment executes ``old[:d]`` and
``new[d:s]`` with noise, and ``new[s:]`` becomes the next prefix. It never switches modes, so it
is an upper reference for the learned policies, not a competitor.

:func:`expert_lag_sensitivity` is the cruder pure-feedback-delay check (the expert acts on the
state from ``k`` steps ago, with no planning).

    python -m rtc_ros.benchmarks.tasks          # expert solve rates + this rule for every task
"""

from __future__ import annotations

import copy
from collections import deque

import torch

from rtc_ros.benchmarks.tasks import EVAL_NOISE_STD, TASK_NAMES, make_expert, make_task
from rtc_ros.benchmarks.tasks.base import BatchedTask, Expert
from rtc_ros.benchmarks.tasks.modes import switch_mode
from rtc_ros.core.prefix import build_prefix

#: the rule's points ``(d, s)`` and its threshold (see module docstring)
LAG_RULE_POINTS: tuple[tuple[int, int], ...] = ((4, 4), (1, 7))
LAG_RULE_MIN_RATE = 0.9
LAG_RULE_HORIZON = 8


def _start(name: str, n_envs: int, seed: int) -> tuple[BatchedTask, Expert]:
    """``n_envs`` reset environments of ``name`` and their expert, seeded by ``seed``."""
    task = make_task(name, n_envs)
    expert = make_expert(task)
    gen = torch.Generator().manual_seed(seed)
    task.reset(gen)
    expert.reset(gen)
    return task, expert


def plan_chunk(task: BatchedTask, expert: Expert, horizon: int) -> torch.Tensor:
    """The expert's next ``horizon`` actions ``(n, H, M)`` from the current state, noise-free.

    Runs on shallow copies (tasks and experts replace, never mutate, their state tensors), so the
    real ``task`` and ``expert`` are untouched.
    """
    sim = copy.copy(task)
    planner = copy.copy(expert)
    planner.task = sim
    actions = []
    for _ in range(horizon):
        a = planner.act()
        actions.append(a)
        sim.step(a)
    return torch.stack(actions, 1)


def chunked_expert_rollout(name: str, d: int, s: int, horizon: int = LAG_RULE_HORIZON, n_envs: int = 512,
                           seed: int = 0, noise_std: float = EVAL_NOISE_STD,
                           switch_step: torch.Tensor | None = None) -> BatchedTask:
    """The expert run in chunks under the delay protocol (see module docstring); returns the finished
    task (``success``, ``length``).

    ``switch_step (n,)`` (optional, long): at the chunk boundary ``task.t == switch_step[i]`` env
    ``i``'s expert switches to its other mode (:func:`rtc_ros.benchmarks.tasks.modes.switch_mode`)
    before planning; ``-1`` = never. Used by the consistency rule (:mod:`rtc_ros.benchmarks.tasks.rules`).

    Raises:
        ValueError: unless ``d <= s <= H - d`` and ``s >= 1``, or if ``switch_step`` is not ``(n_envs,)``.
    """
    if s < 1 or not 0 <= d <= s <= horizon - d:
        raise ValueError(f"need s >= 1 and 0 <= d <= s <= H - d, got d={d}, s={s}, H={horizon}")
    if switch_step is not None and switch_step.shape != (n_envs,):
        raise ValueError(f"switch_step must have shape ({n_envs},), got {tuple(switch_step.shape)}")
    task, expert = _start(name, n_envs, seed)
    noise = torch.Generator().manual_seed(seed + 1)
    prev = plan_chunk(task, expert, horizon)
    while not task.all_done:
        if switch_step is not None:
            flip = (switch_step == task.t) & ~task.done
            if bool(flip.any()):
                switch_mode(expert, flip)
        new = plan_chunk(task, expert, horizon)
        actions = torch.cat([prev[:, :d], new[:, d:s]], 1)
        for j in range(s):
            a = actions[:, j]
            task.step(a + noise_std * torch.randn(a.shape, generator=noise))
            expert.act()  # keeps an expert's internal state (e.g. a gait phase) in step with the task
            if task.all_done:
                break
        prev = build_prefix(new, min(s, horizon - 1))
    return task


def chunked_expert_solve_rate(name: str, d: int, s: int, horizon: int = LAG_RULE_HORIZON, n_envs: int = 512,
                              seed: int = 0, noise_std: float = EVAL_NOISE_STD) -> float:
    """Solve rate of the expert run in chunks under the delay protocol (see module docstring).

    Raises:
        ValueError: unless ``d <= s <= H - d`` and ``s >= 1``.
    """
    task = chunked_expert_rollout(name, d, s, horizon, n_envs, seed, noise_std)
    return float(task.success.float().mean())


def check_lag_rule(name: str, n_envs: int = 1024, seed: int = 0) -> dict[str, float]:
    """The chunked expert's solve rate at each rule point, keyed ``"d=..,s=.."``."""
    return {f"d={d},s={s}": chunked_expert_solve_rate(name, d, s, n_envs=n_envs, seed=seed)
            for d, s in LAG_RULE_POINTS}


def expert_lag_sensitivity(name: str, lag: int, n_envs: int = 1024, seed: int = 0,
                           noise_std: float = EVAL_NOISE_STD) -> float:
    """Solve rate of the expert fed the task state from ``lag`` steps ago (the first ``lag`` steps
    use the initial state): a pure feedback delay, no planning, no chunks."""
    if lag < 0:
        raise ValueError(f"lag must be >= 0, got {lag}")
    task, expert = _start(name, n_envs, seed)
    noise = torch.Generator().manual_seed(seed + 7919)
    history: deque = deque([copy.copy(task)], maxlen=lag + 1)
    while not task.all_done:
        expert.task = history[0]
        a = expert.act()
        expert.task = task
        task.step(a + noise_std * torch.randn(a.shape, generator=noise))
        history.append(copy.copy(task))
    return float(task.success.float().mean())


__all__ = ["LAG_RULE_POINTS", "LAG_RULE_MIN_RATE", "LAG_RULE_HORIZON", "plan_chunk", "chunked_expert_rollout",
           "chunked_expert_solve_rate",
           "check_lag_rule", "expert_lag_sensitivity", "TASK_NAMES"]
