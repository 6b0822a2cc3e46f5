"""Simulated task suite for the delay benchmark: five batched, force/torque/thrust-controlled,
stochastic tasks with multimodal experts (one per kind of dynamics in the paper's Kinetix suite).

=================  ==========  =====  =====================================================
task               kind        steps  expert modes
=================  ==========  =====  =====================================================
cartpole_swingup   balancing   300    first swing left or right, then balance (LQR)
lander             landing     300    pass the rock on the left or right, land on that pad
catcher            catching    120    catch the left or the right falling ball
thrower            throwing    200    underhand (CCW) or overhand (CW) throw into a basket
crawler            locomotion  160    crawl to the left or the right end (rhythmic gait)
=================  ==========  =====  =====================================================

Use :func:`make_task` / :func:`make_expert`; :func:`expert_solve_rates` checks the experts with
evaluation noise on (``python -m rtc_ros.benchmarks.tasks``, which also checks the suite's
lag-tolerance rule, :mod:`rtc_ros.benchmarks.tasks.lag`).
"""

from __future__ import annotations

import logging

import torch

from rtc_ros.benchmarks.tasks.base import BatchedTask, Expert, TaskSpec
from rtc_ros.benchmarks.tasks.cartpole import CartPoleExpert, CartPoleSwingUp
from rtc_ros.benchmarks.tasks.catcher import Catcher, CatcherExpert
from rtc_ros.benchmarks.tasks.crawler import Crawler, CrawlerExpert
from rtc_ros.benchmarks.tasks.hammer import Hammer, HammerExpert
from rtc_ros.benchmarks.tasks.interceptor import Interceptor, InterceptorExpert
from rtc_ros.benchmarks.tasks.lander import Lander, LanderExpert
from rtc_ros.benchmarks.tasks.runner import Runner, RunnerExpert
from rtc_ros.benchmarks.tasks.shuttle import Shuttle, ShuttleExpert
from rtc_ros.benchmarks.tasks.thrower import Thrower, ThrowerExpert

log = logging.getLogger(__name__)

#: name -> (task class, expert class)
TASKS: dict[str, tuple[type[BatchedTask], type[Expert]]] = {
    "cartpole_swingup": (CartPoleSwingUp, CartPoleExpert),
    "lander": (Lander, LanderExpert),
    "catcher": (Catcher, CatcherExpert),
    "thrower": (Thrower, ThrowerExpert),
    "crawler": (Crawler, CrawlerExpert),
    # added for the second version of the suite (issue 15); appended so v1 seeds stay the same
    "shuttle": (Shuttle, ShuttleExpert),
    "interceptor": (Interceptor, InterceptorExpert),
    "runner": (Runner, RunnerExpert),
    "hammer": (Hammer, HammerExpert),
}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)

#: evaluation action noise: Gaussian std in the [-1, 1] action units (0.1, as in the paper's code)
EVAL_NOISE_STD = 0.1


def check_task(name: str) -> str:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {TASK_NAMES}")
    return name


def make_task(name: str, n_envs: int) -> BatchedTask:
    """A batch of ``n_envs`` environments of task ``name``."""
    return TASKS[check_task(name)][0](n_envs)


def make_expert(task: BatchedTask) -> Expert:
    """The scripted expert for ``task`` (modes sampled in ``Expert.reset``)."""
    return TASKS[check_task(task.spec.name)][1](task)


def run_expert(
    name: str, n_envs: int, seed: int, noise_std: float = EVAL_NOISE_STD, record: bool = False
) -> tuple[BatchedTask, dict[str, torch.Tensor] | None]:
    """Roll out the expert on ``n_envs`` envs with Gaussian action noise.

    Returns the finished task (``task.success``, ``task.length``) and, if ``record``, a dict with
    ``obs (T, n, O)``, ``actions (T, n, M)`` (the expert's clean commands) and ``alive (T, n)``
    (env not yet done when that observation was taken).
    """
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    task = make_task(name, n_envs)
    expert = make_expert(task)
    gen = torch.Generator().manual_seed(seed)
    obs = task.reset(gen)
    expert.reset(gen)
    noise_gen = torch.Generator().manual_seed(seed + 7919)
    obs_l, act_l, alive_l = [], [], []
    while not task.all_done:
        act = expert.act()
        if record:
            obs_l.append(obs)
            act_l.append(act)
            alive_l.append(~task.done)
        obs = task.step(act + noise_std * torch.randn(act.shape, generator=noise_gen))
    data = None
    if record:
        data = {"obs": torch.stack(obs_l), "actions": torch.stack(act_l), "alive": torch.stack(alive_l)}
    return task, data


def expert_solve_rates(n_envs: int = 2048, seed: int = 0, noise_std: float = EVAL_NOISE_STD) -> dict[str, dict[str, float]]:
    """Expert solve rate and mean episode length per task, with evaluation noise on."""
    out: dict[str, dict[str, float]] = {}
    for name in TASK_NAMES:
        task, _ = run_expert(name, n_envs, seed, noise_std)
        out[name] = {"solve_rate": float(task.success.float().mean()), "mean_length": float(task.length.float().mean())}
    return out


__all__ = [
    "BatchedTask", "Expert", "TaskSpec", "TASKS", "TASK_NAMES", "EVAL_NOISE_STD",
    "check_task", "make_task", "make_expert", "run_expert", "expert_solve_rates",
]
