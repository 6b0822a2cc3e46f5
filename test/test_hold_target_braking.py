"""The inference side's hold target under the executor's acceleration limit: when the executing chunk runs out
the executor brakes from its last step (``max_accel``) instead of stopping at the chunk's last action, and the
guidance target (``prev_remaining``) follows the same braking, checked against the executor's own commands."""

from __future__ import annotations

import numpy as np
import pytest

from rtc_ros.runtime.contract import ExecutorReport
from rtc_ros.runtime.executor import ExecutorConfig, ExecutorCore
from rtc_ros.runtime.inference_loop import InferenceLoopCore
from rtc_ros.runtime.shaping import AccelLimiter, braking_tail

H, S_MIN, M = 20, 10, 2
A = 0.004  # rad/tick^2 (10 rad/s^2 at 50 Hz)


def test_braking_tail_is_the_limiters_hold() -> None:
    """From a moving state, braking_tail gives exactly the commands AccelLimiter gives for holds."""
    lim = AccelLimiter(np.array([A, A, np.inf]))
    limits = (np.full(3, -10.0), np.full(3, 10.0), np.full(3, 1.0))
    x = before = np.zeros(3)
    for k in range(15):  # accelerate along a smooth target (joint 1 backwards, joint 2 unlimited)
        before, x = x, lim.step(x, np.array([0.0015 * k * k, -0.001 * k * k, 0.01 * k]), x, *limits)
    tail = braking_tail(x, x - before, lim.max_accel, 50)
    held, y = [], x
    for _ in range(len(tail) + 3):
        y = lim.step(y, None, y, *limits)
        held.append(y)
    np.testing.assert_allclose(tail, held[:len(tail)], atol=1e-12)
    np.testing.assert_allclose(held[len(tail):], [tail[-1]] * 3, atol=1e-12)  # stands where the tail ends
    assert len(tail) == int(np.ceil(0.003 * 14 / A)) - 1 > 5  # the last decrement to 0 is no move
    assert np.all(tail[:, 2] == x[2])  # the unlimited joint stops at once
    assert braking_tail(x, np.zeros(3), lim.max_accel, 50).shape == (0, 3)
    assert len(braking_tail(x, x - before, lim.max_accel, 4)) == 4  # at most max_len rows


def _chunk(t0: int) -> np.ndarray:
    """Joint 0 speeds up at 0.002 rad/tick^2 (within A), joint 1 still: the executor follows it exactly."""
    i = np.arange(H, dtype=float) + t0
    return np.stack([0.001 * i * i, np.zeros(H)], axis=1)


def _run(accel_loop: bool, plan_at: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The executor (max_accel A) runs one chunk and then holds; the loop plans after the executor's step
    ``plan_at``. Returns (prev_remaining, the executor's commands from step 0, t_obs)."""
    ex = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M, max_step=1.0, max_accel=np.full(M, A)))
    ex.set_measured_position(np.zeros(M))
    loop = InferenceLoopCore(H, S_MIN, 4, "rtc", initial_delay=2, accel=np.full(M, A) if accel_loop else None)
    assert loop.plan() is None  # no report yet
    commands, plan = [], None
    for k in range(plan_at + 1 + 3 * H):
        tick = ex.tick()  # k = 0: the start-up hold at the measured position
        commands.append(tick.command)
        loop.on_executor_report(ExecutorReport(tick.step, tick.seq, tick.takeover, tick.consumed, tick.hold,
                                               command=tick.command))
        if k == 0:
            p0 = loop.plan()
            loop.on_published(p0, _chunk(0))
            ex.offer_chunk(_chunk(0), p0.seq, p0.t_obs, 0, 0)
        elif k == plan_at:
            plan = loop.plan()
            assert plan is not None and plan.prev_remaining is not None
    return plan.prev_remaining, np.asarray(commands), plan.t_obs


@pytest.mark.parametrize("plan_at", [15, H + 3])
def test_the_hold_target_is_where_the_executor_brakes(plan_at: int) -> None:
    """Planned while the chunk still runs (step 15) or while the executor already brakes (3 steps after it ran
    out): prev_remaining, padded with its last row as the generator pads it, is what the executor commands from
    t_obs on -- the chunk's rest, then the braking to a stop ~v^2/2A past its last action. Without the limit in
    the loop the target stops at the last action (the old model): centimetres off."""
    prev, commands, t_obs = _run(True, plan_at)
    ran = commands[t_obs:t_obs + H]
    padded = np.concatenate([prev, np.repeat(prev[-1:], H, axis=0)])[:H]
    assert np.ptp(commands[-H:, 0]) == 0.0  # the executor came to rest
    np.testing.assert_allclose(padded, ran, atol=1e-9)
    last_action = _chunk(0)[-1, 0]
    assert ran[-1, 0] - last_action > 0.1  # braking from 0.038 rad/tick at A: ~0.18 rad further
    old, _, _ = _run(False, plan_at)
    old_padded = np.concatenate([old, np.repeat(old[-1:], H, axis=0)])[:H]
    assert np.abs(old_padded - ran).max() > 0.05  # 0.18 rad planned at step 15, 0.066 three steps into the braking
