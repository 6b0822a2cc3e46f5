"""The inference side's guidance target while the executor trails the chunk: a chunk faster than ``max_step`` or
``max_accel`` allows, a splice's gap being closed, an action beyond a joint limit. ``prev_remaining`` must be what
the executor will command (its clamp and limiter replayed from its reports), checked against the executor's own
commands; where the executor is on the chunk and the chunk within the limits, it is the chunk itself, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from rtc_ros.runtime.contract import ExecutorReport
from rtc_ros.runtime.executor import ExecutorConfig, ExecutorCore
from rtc_ros.runtime.hold_model import HoldModel, remaining_actions
from rtc_ros.runtime.inference_loop import InferenceLoopCore

H, S_MIN, M = 20, 10, 2
DT_NS = 20_000_000
LIMITS = (np.full(M, -10.0), np.full(M, 10.0))


def _fast(t0: int, speed: float = 0.03) -> np.ndarray:
    """Joint 0 at ``speed`` rad/tick from 0 (beyond a 0.02 max_step), joint 1 still."""
    i = np.arange(H, dtype=float) + t0
    return np.stack([speed * i, np.zeros(H)], axis=1)


def _accelerating(t0: int) -> np.ndarray:
    """Joint 0 speeding up at 0.012 rad/tick^2 (3x a 0.004 max_accel), joint 1 still."""
    i = np.arange(H, dtype=float) + t0
    return np.stack([0.006 * i * i, np.zeros(H)], axis=1)


def _both(t0: int) -> np.ndarray:
    """Joint 0 speeding up beyond a 0.004 max_accel, joint 1 at 0.03 rad/tick (beyond a 0.02 max_step)."""
    i = np.arange(H, dtype=float) + t0
    return np.stack([0.006 * i * i, 0.03 * i], axis=1)


def _run(chunk_at, plan_at: int, max_step: float, accel, model: HoldModel, upper: float = 10.0,
         second: tuple[int, float] | None = None, missed: int = -1) -> tuple[np.ndarray, np.ndarray, int]:
    """The executor (``max_step``, ``max_accel`` ``accel``, joint 0's upper limit) runs chunk_at(0), and with
    ``second = (step, offset)`` a second chunk planned at that step (chunk_at(t_obs) + offset on joint 0: a seam
    the executor closes); the loop (its model of the executor: ``model``) plans after step ``plan_at``.
    ``missed``: a step whose report never came. Returns (prev_remaining, the executor's commands, t_obs)."""
    lower, upper_ = LIMITS[0], np.array([upper, 10.0])
    ex = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M, max_step=np.full(M, max_step), lower=lower,
                                     upper=upper_, max_accel=None if accel is None else np.broadcast_to(accel, (M,))))
    ex.set_measured_position(np.zeros(M))
    loop = InferenceLoopCore(H, S_MIN, 4, "rtc", initial_delay=2, hold=model)
    commands, plan = [], None
    for k in range(plan_at + 1 + 2 * H):
        tick = ex.tick()
        commands.append(tick.command)
        if k != missed:
            loop.on_executor_report(ExecutorReport(tick.step, tick.seq, tick.takeover, tick.consumed, tick.hold,
                                                   stamp_ns=(tick.step + 1) * DT_NS, command=tick.command))
        if k == 0 or (second is not None and k == second[0]):
            p = loop.plan()
            chunk = chunk_at(p.t_obs) + (np.array([second[1], 0.0]) if k else 0.0)
            loop.on_published(p, chunk)
            ex.offer_chunk(chunk, p.seq, p.t_obs, p.d, p.s, base=p.base_seq)
        if k == plan_at:
            plan = loop.plan()
            assert plan is not None and plan.prev_remaining is not None
    return plan.prev_remaining, np.asarray(commands), plan.t_obs


def _padded(prev: np.ndarray) -> np.ndarray:
    return np.concatenate([prev, np.repeat(prev[-1:], H, axis=0)])[:H]  # as build_prefix pads the target


CASES = {  # executor settings, the chunk(s), when the loop plans
    "faster than max_step": dict(chunk_at=_fast, plan_at=12, max_step=0.02, accel=None),
    "faster than max_accel": dict(chunk_at=_accelerating, plan_at=12, max_step=1.0, accel=0.004),
    "one action left, trailing": dict(chunk_at=_accelerating, plan_at=H - 1, max_step=1.0, accel=0.004),
    "a splice's gap closed under max_accel": dict(chunk_at=lambda t: _fast(t, 0.01), plan_at=21, max_step=1.0,
                                                   accel=0.004, second=(10, 0.25)),
    "a splice's gap closed at max_step": dict(chunk_at=lambda t: _fast(t, 0.01), plan_at=21, max_step=0.02,
                                              accel=None, second=(10, 0.2)),
    "beyond a joint limit": dict(chunk_at=lambda t: _fast(t, 0.01), plan_at=12, max_step=1.0, accel=None,
                                 upper=0.15),
    "max_accel on one joint, max_step on the other, a joint limit": dict(
        chunk_at=_both, plan_at=12, max_step=0.02, accel=np.array([0.004, np.inf]), upper=0.9),
    "a missed report": dict(chunk_at=_fast, plan_at=12, max_step=0.02, accel=None, missed=11),  # the last but one
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_target_is_what_the_executor_commands(case: str) -> None:
    """prev_remaining (padded as the generator pads it) equals the executor's commands from the observation's
    step on, to float precision; the model that assumes the executor is on the chunk (the old one) is off."""
    kw = dict(CASES[case])
    max_step, accel, upper = kw["max_step"], kw["accel"], kw.get("upper", 10.0)
    model = HoldModel(None if accel is None else np.broadcast_to(accel, (M,)).astype(float), LIMITS[0], np.array([upper, 10.0]),
                      np.full(M, max_step))
    prev, commands, t_obs = _run(model=model, **kw)
    ran = commands[t_obs:t_obs + H]
    np.testing.assert_allclose(_padded(prev), ran, atol=1e-9)
    unaware, _, _ = _run(model=HoldModel(), **kw)
    assert np.abs(_padded(unaware) - ran).max() > 0.03  # the chunk as it is, ahead of (or beyond) the commands


def test_a_followable_chunk_is_its_own_target() -> None:
    """The executor on the chunk and the chunk within every limit: the replay gives the chunk's actions exactly
    (bit for bit), with or without max_accel, so the target of a well-behaved policy did not change."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        chunk = np.cumsum(rng.uniform(-0.01, 0.01, size=(H, 3)), axis=0) + rng.uniform(-1, 1, size=3)
        start = int(rng.integers(1, H))
        step = chunk[start - 1] - chunk[start - 2] if start > 1 else np.zeros(3)
        for accel in (None, np.full(3, 0.05)):
            model = HoldModel(accel, np.full(3, -3.0), np.full(3, 3.0), np.full(3, 0.02))
            if accel is not None and np.abs(np.diff(chunk, 2, axis=0)).max() > 0.05:
                continue
            got = model.follow(chunk[start - 1], step, chunk[start - 1], chunk[start:])
            assert np.array_equal(got, chunk[start:])
            rows = remaining_actions(chunk, 0, start, start, {start - 2: chunk[start - 2]} if start > 1 else {},
                                     chunk[start - 1], model)
            assert np.array_equal(rows[:H - start], chunk[start:])


def test_an_unknown_limit_is_no_limit() -> None:
    """A model without max_step / limits (the node was not given them) replays nothing: the chunk as it is."""
    chunk = _fast(0)
    got = remaining_actions(chunk, 0, 5, 5, {3: chunk[3] - 0.05}, chunk[4] - 0.05, HoldModel())
    assert np.array_equal(got, chunk[5:])


def test_a_missed_report_under_max_accel_takes_the_chunk_as_it_is() -> None:
    """Under max_accel the replay needs the executor's step (the last two reports): with the one before the last
    missing, the chunk's actions are the target as before 2026-12-06 (the chunk's own step would be a guess that is
    worst exactly when the executor trails the chunk); without max_accel the last report suffices."""
    chunk, start = _accelerating(0), 8
    lagging = chunk[start - 1] - np.array([0.05, 0.0])
    limited = HoldModel(np.full(M, 0.004), *LIMITS, np.full(M, 1.0))
    got = remaining_actions(chunk, 0, start, start, {start - 3: chunk[start - 3]}, lagging, limited)
    assert np.array_equal(got[:H - start], chunk[start:])
    with_report = remaining_actions(chunk, 0, start, start, {start - 2: lagging - 0.01}, lagging, limited)
    assert np.abs(with_report[:H - start] - chunk[start:]).max() > 0.05  # replayed: trails the chunk
    clamp_only = HoldModel(None, *LIMITS, np.full(M, 0.02))
    got = remaining_actions(chunk, 0, start, start, {}, lagging, clamp_only)
    assert got[0, 0] == pytest.approx(lagging[0] + 0.02)  # replayed from the last report at max_step
