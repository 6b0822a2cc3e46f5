"""The inference side's hold target under the executor's acceleration limit: when the executing chunk runs out
the executor brakes from its last step (``max_accel``) instead of stopping at the chunk's last action, and the
guidance target (``prev_remaining``) follows the same braking, checked against the executor's own commands."""

from __future__ import annotations

import numpy as np
import pytest

from rtc_ros.runtime.contract import ExecutorReport
from rtc_ros.runtime.executor import ExecutorConfig, ExecutorCore
from rtc_ros.runtime.hold_model import HoldModel, braking_tail, remaining_actions
from rtc_ros.runtime.inference_loop import InferenceLoopCore
from rtc_ros.runtime.shaping import AccelLimiter

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
    assert braking_tail(x + 0.1, np.full(3, 0.3), np.full(3, np.inf), 50).shape == (0, 3)  # no float drift row
    assert len(braking_tail(x, x - before, lim.max_accel, 4)) == 4  # at most max_len rows


def _chunk(t0: int) -> np.ndarray:
    """Joint 0 speeds up at 0.002 rad/tick^2 (within A), joint 1 still: the executor follows it exactly."""
    i = np.arange(H, dtype=float) + t0
    return np.stack([0.001 * i * i, np.zeros(H)], axis=1)


DT_NS = 20_000_000


def _run(accel_loop: bool, plan_at: int, age: int = 0, foreign: bool = False, upper: float = 10.0,
         missed: int = -1) -> tuple[np.ndarray, np.ndarray, int]:
    """The executor (max_accel A, joint 0's upper limit ``upper``) runs one chunk and then holds; the loop plans
    after the executor's step ``plan_at`` from an observation ``age`` steps old. ``foreign``: the chunk was not
    published by this loop (a restarted policy node's predecessor's); ``missed``: a step whose report never came.
    Returns (prev_remaining, the executor's commands from step 0, t_obs)."""
    lim = (np.full(M, -10.0), np.array([upper, 10.0]))
    ex = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M, max_step=1.0, max_accel=np.full(M, A), lower=lim[0],
                                     upper=lim[1]))
    ex.set_measured_position(np.zeros(M))
    hold = HoldModel(np.full(M, A), *lim) if accel_loop else None
    loop = InferenceLoopCore(H, S_MIN, 4, "rtc", initial_delay=2, hold=hold)
    assert loop.plan() is None  # no report yet
    commands, plan = [], None
    for k in range(plan_at + 1 + 3 * H):
        tick = ex.tick()  # k = 0: the start-up hold at the measured position
        commands.append(tick.command)
        if k != missed:
            loop.on_executor_report(ExecutorReport(tick.step, tick.seq, tick.takeover, tick.consumed, tick.hold,
                                                   stamp_ns=(tick.step + 1) * DT_NS, command=tick.command))
        if k == 0:
            if foreign:
                ex.offer_chunk(_chunk(0), 7, 1, 0, 0)
            else:
                p0 = loop.plan()
                loop.on_published(p0, _chunk(0))
                ex.offer_chunk(_chunk(0), p0.seq, p0.t_obs, 0, 0)
        elif k == plan_at:
            plan = loop.plan(obs_stamp_ns=(k + 1 - age) * DT_NS + DT_NS // 2 if age else 0)
            assert plan is not None and plan.prev_remaining is not None
    return plan.prev_remaining, np.asarray(commands), plan.t_obs


def _padded(prev: np.ndarray) -> np.ndarray:
    return np.concatenate([prev, np.repeat(prev[-1:], H, axis=0)])[:H]  # as build_prefix pads the target


@pytest.mark.parametrize("plan_at", [15, H - 1, H + 3])
def test_the_hold_target_is_where_the_executor_brakes(plan_at: int) -> None:
    """Planned while the chunk still runs (step 15, step H - 1 with one action left) or while the executor already
    brakes (3 steps after it ran out): prev_remaining, padded with its last row as the generator pads it, is what
    the executor commands from t_obs on -- the chunk's rest, then the braking to a stop ~v^2/2A past its last
    action. Without the limit in the loop the target stops at the last action (the old model): centimetres off."""
    prev, commands, t_obs = _run(True, plan_at)
    ran = commands[t_obs:t_obs + H]
    assert np.ptp(commands[-H:, 0]) == 0.0  # the executor came to rest
    np.testing.assert_allclose(_padded(prev), ran, atol=1e-9)
    last_action = _chunk(0)[-1, 0]
    assert ran[-1, 0] - last_action > 0.1  # braking from 0.038 rad/tick at A: ~0.18 rad further
    old, _, _ = _run(False, plan_at)
    assert np.abs(_padded(old) - ran).max() > 0.05  # 0.18 rad planned at step 15, 0.066 three steps into the braking


@pytest.mark.parametrize("case", ["old observation", "foreign chunk", "joint limit", "missed report"])
def test_the_hold_target_in_the_other_cases(case: str) -> None:
    """An observation 3 steps old (its executed rows from the reports), a chunk this loop did not publish (the
    robot holds: the target brakes on from the reported commands), a joint limit the braking runs into (it stops
    there, as the executor does), a report missed just before planning during the braking (the braking the
    chunk's end implies, counted from the run-out)."""
    kw = {"old observation": dict(plan_at=15, age=3), "foreign chunk": dict(plan_at=H + 3, foreign=True),
          "joint limit": dict(plan_at=15, upper=0.45), "missed report": dict(plan_at=H + 3, missed=H + 2)}[case]
    prev, commands, t_obs = _run(True, **kw)
    assert t_obs == kw["plan_at"] + 1 - kw.get("age", 0)
    np.testing.assert_allclose(_padded(prev), commands[t_obs:t_obs + H], atol=1e-9)
    if case == "joint limit":
        assert commands[-1, 0] == 0.45 and prev[:, 0].max() == 0.45


def test_the_hold_model_refuses_a_bad_limit() -> None:
    for bad in ([0.0, A], [-A, A], [np.nan, A]):
        with pytest.raises(ValueError, match="accel must be > 0"):
            HoldModel(np.array(bad))


def test_a_missing_report_before_the_last_continues_from_the_last() -> None:
    """Holding, the last command reported but not the one before: the braking the chunk's end implies, continued
    from the reported command (an executor that lagged the chunk: no jump at the observation's step)."""
    chunk, hold = _chunk(0), HoldModel(np.full(M, A))
    path = np.concatenate([chunk[-1:], braking_tail(chunk[-1], chunk[-1] - chunk[-2], np.full(M, A), H)])
    start = H + 2  # t_next = origin + start: the executor commanded path[0..2] (steps H - 1 .. H + 1)
    lagging = path[2] - np.array([0.01, 0.0])
    got = remaining_actions(chunk, 0, start, start, {}, lagging, hold)
    np.testing.assert_allclose(got, path[3:] - np.array([0.01, 0.0]))
    np.testing.assert_allclose(remaining_actions(chunk, 0, start, start, {}, None, hold), path[3:])
    assert np.array_equal(remaining_actions(chunk, 0, start, start, {}, lagging, HoldModel()), lagging[None])
    ahead = path[2] + np.array([0.05, 0.0])  # continued past joint 0's upper limit: stops there, as the executor
    top = float(path[-1, 0]) + 0.01
    limited = HoldModel(np.full(M, A), np.full(M, -10.0), np.array([top, 10.0]))
    got = remaining_actions(chunk, 0, start, start, {}, ahead, limited)
    np.testing.assert_allclose(got[:, 0], np.minimum(path[3:, 0] + 0.05, top))
    assert got[-1, 0] == top
