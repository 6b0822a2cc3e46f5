"""Simulated task suite for the delay benchmark: batched, force/torque/thrust-controlled, stochastic
tasks with multimodal experts, covering the kinds of dynamics in the paper's Kinetix suite.

Two suites (:data:`SUITES`). ``v1`` (the first five, kept for the record and its sweeps) passes the
lag-tolerance rule only; ``v2`` (the default) is the tasks that pass the lag and the consistency
rules (:mod:`rtc_ros.benchmarks.tasks.lag`, :mod:`rtc_ros.benchmarks.tasks.rules`; none passes the
reacting rule, see docs/figure5.md "Design rules (v2)").

=================  ==============  =====  =====  ==============================================
task               kind            steps  suite  expert modes
=================  ==============  =====  =====  ==============================================
cartpole_swingup   balancing       300    v1     first swing left or right, then balance (LQR)
lander             landing         300    v1 v2  pass the rock on the left or right, land there
catcher            catching        120    v1 v2  catch the left or the right falling ball
thrower            throwing        200    v1     underhand (CCW) or overhand (CW) throw
crawler            locomotion      160    v1 v2  crawl to the left or the right end
shuttle            balancing       300    v2     carry a balanced pole to the left/right dock
interceptor        moving targets  150    v2     dock with the left or the right flying target
runner             obstacles       170    v2     every wall through its left or its right gap
hammer             throwing        300    v2     spin up counter-clockwise or clockwise, let go
beam               balancing       130    v2     roll the ball into the left or the right cup
=================  ==============  =====  =====  ==============================================

Use :func:`make_task` / :func:`make_expert`; :func:`expert_solve_rates` checks the experts with
evaluation noise on (``python -m rtc_ros.benchmarks.tasks [--suite v1|v2|all]``, which also checks
the design rules).
"""

from __future__ import annotations

import logging

import torch

from rtc_ros.benchmarks.tasks.base import BatchedTask, Expert, TaskSpec
from rtc_ros.benchmarks.tasks.cartpole import CartPoleExpert, CartPoleSwingUp
from rtc_ros.benchmarks.tasks.beam import Beam, BeamExpert
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
    "beam": (Beam, BeamExpert),
}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)

#: named task lists: ``v1`` the first suite (lag rule only), ``v2`` the tasks passing the lag and
#: consistency rules (issue 15); ``DEFAULT_SUITE`` is what the delay sweep runs by default
SUITES: dict[str, tuple[str, ...]] = {
    "v1": ("cartpole_swingup", "lander", "catcher", "thrower", "crawler"),
    "v2": ("shuttle", "beam", "lander", "runner", "catcher", "interceptor", "hammer", "crawler"),
    "all": TASK_NAMES,
}
DEFAULT_SUITE = "v2"

#: evaluation action noise: Gaussian std in the [-1, 1] action units (0.1, as in the paper's code)
EVAL_NOISE_STD = 0.1


def suite_tasks(suite: str) -> tuple[str, ...]:
    """The task names of ``suite`` (a key of :data:`SUITES`)."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; expected one of {tuple(SUITES)}")
    return SUITES[suite]


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


def expert_solve_rates(n_envs: int = 2048, seed: int = 0, noise_std: float = EVAL_NOISE_STD,
                       names: tuple[str, ...] = TASK_NAMES) -> dict[str, dict[str, float]]:
    """Expert solve rate and mean episode length per task of ``names``, with evaluation noise on."""
    out: dict[str, dict[str, float]] = {}
    for name in names:
        task, _ = run_expert(name, n_envs, seed, noise_std)
        out[name] = {"solve_rate": float(task.success.float().mean()), "mean_length": float(task.length.float().mean())}
    return out


__all__ = [
    "BatchedTask", "Expert", "TaskSpec", "TASKS", "TASK_NAMES", "SUITES", "DEFAULT_SUITE", "EVAL_NOISE_STD",
    "suite_tasks", "check_task", "make_task", "make_expert", "run_expert", "expert_solve_rates",
]
