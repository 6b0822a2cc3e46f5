"""The simulated task suite: API contract, determinism, and experts that solve every task with the
evaluation noise on, using both of their modes."""

from __future__ import annotations

import pytest
import torch

from rtc_ros.benchmarks.tasks import EVAL_NOISE_STD, TASK_NAMES, make_expert, make_task, run_expert

N = 256


@pytest.mark.parametrize("name", TASK_NAMES)
def test_spec_and_shapes(name: str) -> None:
    task = make_task(name, 8)
    spec = task.spec
    assert 100 <= spec.max_steps <= 300
    obs = task.reset(torch.Generator().manual_seed(0))
    assert obs.shape == (8, spec.obs_dim) and obs.dtype == torch.float32
    obs = task.step(torch.zeros(8, spec.act_dim))
    assert obs.shape == (8, spec.obs_dim) and torch.isfinite(obs).all()
    with pytest.raises(ValueError):
        task.step(torch.zeros(8, spec.act_dim + 1))


@pytest.mark.parametrize("name", TASK_NAMES)
def test_same_seed_same_episode(name: str) -> None:
    a, _ = run_expert(name, 32, seed=5)
    b, _ = run_expert(name, 32, seed=5)
    c, _ = run_expert(name, 32, seed=6)
    assert torch.equal(a.length, b.length) and torch.equal(a.success, b.success)
    assert not torch.equal(a.observe(), c.observe())


@pytest.mark.parametrize("name", TASK_NAMES)
def test_done_envs_are_frozen_and_actions_clipped(name: str) -> None:
    task = make_task(name, 16)
    task.reset(torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    while not task.done.any():
        task.step(3.0 * torch.randn(16, task.spec.act_dim, generator=gen))  # out of range: clipped
        assert task.t <= task.spec.max_steps
    frozen = task.done.clone()
    before = task.observe()[frozen]
    length = task.length.clone()
    task.step(torch.ones(16, task.spec.act_dim))
    assert torch.equal(task.observe()[frozen], before)
    assert torch.equal(task.length[frozen], length[frozen])


@pytest.mark.parametrize("name", TASK_NAMES)
def test_expert_solves_task_with_noise(name: str) -> None:
    task, _ = run_expert(name, N, seed=0, noise_std=EVAL_NOISE_STD)
    assert float(task.success.float().mean()) >= 0.97
    assert float(task.length.float().mean()) >= 50  # dynamic episodes, not one-step tricks


def _mode_and_outcome(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per env: the expert's mode (+-1) and the matching observable outcome sign (+-1)."""
    task = make_task(name, N)
    expert = make_expert(task)
    gen = torch.Generator().manual_seed(3)
    task.reset(gen)
    expert.reset(gen)
    noise = torch.Generator().manual_seed(4)
    first_swing = None
    while not task.all_done:
        a = expert.act()
        task.step(a + EVAL_NOISE_STD * torch.randn(a.shape, generator=noise))
        if name == "cartpole_swingup" and task.t == 5:
            first_swing = torch.sign(task.thd)
    if name == "cartpole_swingup":
        return expert.mode, first_swing
    if name == "lander":
        return expert.side, torch.sign(task.x)
    if name == "catcher":
        return expert.choice.float() * 2 - 1, torch.sign(task.px)
    if name == "thrower":
        return expert.style, torch.sign(task.qd)  # CCW (underhand) or CW (overhand) at release
    return expert.direction, torch.sign(task.x1 + task.x2)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_expert_is_multimodal(name: str) -> None:
    mode, outcome = _mode_and_outcome(name)
    frac = float((mode > 0).float().mean())
    assert 0.4 < frac < 0.6  # both modes drawn
    assert float((mode == outcome).float().mean()) > 0.97  # and they lead to different behaviour
