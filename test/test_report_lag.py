"""Executor reports that reach the policy late (a network retransmitting them) must not place observations early:
StepClock's extrapolation, ClockAhead's estimate of the executor's clock, and the closed loop (ROS-free)."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from rtc_ros.runtime.clock_skew import ClockAhead
from rtc_ros.runtime.contract import ExecutorReport
from rtc_ros.runtime.executor import ChunkRejected, ExecutorConfig, ExecutorCore
from rtc_ros.runtime.inference_loop import InferenceLoopCore
from rtc_ros.runtime.step_clock import StepClock

H, S_MIN, B = 20, 10, 4
DT = 20_000_000  # 50 Hz, ns


def test_a_stamp_past_the_newest_report_maps_at_the_measured_period() -> None:
    c = StepClock(40)
    for k in range(10):
        c.add(k, (k + 1) * DT + (2_000_000 if k in (3, 6) else 0))  # two ticks 2 ms late do not move the median
    assert c.period_ns() == DT
    newest = 10 * DT  # step 9's stamp
    assert c.step_at(newest + DT // 2) == 10  # within a period: the step after the newest report (as before)
    assert c.step_at(newest + 14 * DT // 10) == 10  # a report due but not here yet is no step (half a period spare)
    assert c.step_at(newest + 9 * DT + DT // 2) == 19  # 9 periods on: 9 steps on
    assert c.step_at(5 * DT + DT // 2) == 5  # inside the history: exact, as before
    c.add(9, newest + 5 * DT)  # paused: the step stands still
    assert c.step_at(newest + 9 * DT) == 10  # no extrapolation past a report of a standing step
    c.add(10, newest + 20 * DT)  # resumed: the pause's long gap does not change the period (median)
    assert c.period_ns() == DT
    assert c.step_at(newest + 23 * DT + DT // 2) == 14
    c.clear()
    assert c.period_ns() is None and c.step_at(5 * DT) is None


def test_the_executors_clock_is_estimated_without_the_reports_delay() -> None:
    """Reports 0.5-3 ms late, every fourth held back 100-180 ms by a retransmission; this node's clock 3 s off."""
    rng = np.random.default_rng(0)
    own = 3_000_000_000
    c = ClockAhead(0.02, reports=50)
    assert c.executor_now(own) == 0  # nothing known yet
    for k in range(200):
        delay = rng.uniform(100, 180) * 1e6 if k % 4 == 0 else rng.uniform(0.5, 3) * 1e6
        c.on_report(k * DT, int(k * DT + delay + own))
    now = 200 * DT
    assert 0 <= now - c.executor_now(now + own) <= 3_000_000  # low by at most the least delay in the window
    assert ClockAhead(0.02, reports=1, sim_time=True).executor_now(5) == 0  # one /clock: nothing to estimate


def _lagging_loop(lag: int, latency: int, steps: int, give_now: bool, horizon: int = H) -> dict:
    """Executor + inference loop; the executor's reports reach the loop ``lag`` ticks late, observations fresh
    (stamped half a tick after the newest tick); each chunk is the policy's answer to the world at its observation:
    joint 0 is the step each action is meant for. ``give_now``: the loop is told the executor's clock."""
    ex = ExecutorCore(ExecutorConfig(horizon=horizon, action_dim=2, mode="switch", s=horizon // 2))
    ex.set_measured_position(np.zeros(2))
    loop = InferenceLoopCore(horizon, horizon // 2, B, "rtc", initial_delay=latency)
    in_transit: deque[ExecutorReport] = deque()
    ticks, plans, in_flight = [], [], None
    for k in range(steps):
        if in_flight is not None and in_flight[0] == k:
            _, plan, chunk = in_flight
            loop.on_published(plan, chunk, (k + 1) * DT if give_now else 0)
            try:
                ex.offer_chunk(chunk, plan.seq, plan.t_obs, plan.d, plan.s)
            except ChunkRejected:
                pass
            in_flight = None
        t = ex.tick()
        ticks.append(t)
        in_transit.append(ExecutorReport(t.step, t.seq, t.takeover, t.consumed, t.hold, t.rejected_seq,
                                         t.rejected_reason, stamp_ns=(t.step + 1) * DT, command=t.command))
        while in_transit and in_transit[0].step <= k - lag:
            loop.on_executor_report(in_transit.popleft())
        now = (k + 1) * DT + DT // 2
        if in_flight is None and (plan := loop.plan(now, now if give_now else 0)) is not None:
            observed = k + 1  # taken after tick k: the first step that can react to it
            i = np.arange(horizon, dtype=float)
            in_flight = (k + latency, plan, np.stack([observed + i, np.full(horizon, float(observed))], axis=1))
            plans.append((plan, observed))
    return dict(ticks=ticks, plans=plans, loop=loop)


@pytest.mark.parametrize("lag,horizon", [(0, H), (4, H), (9, H), (12, 50)])  # (12: longer than the ack timeout, 10
def test_reports_arriving_late_do_not_run_the_chunks_ahead_of_their_observation(lag: int, horizon: int) -> None:
    """The loop waits for each chunk's takeover to reach it before it plans the next: H = 20 leaves room for a lag of
    up to H - s_min - latency (10 - 5); H = 50 for 12 (steps)."""
    out = _lagging_loop(lag, latency=5, steps=400, give_now=True, horizon=horizon)
    plans, ticks = out["plans"], out["ticks"][60:]
    assert len(plans) > 400 // horizon
    assert all(p.t_obs == observed for p, observed in plans[3:])  # index 0 at the observation's step
    assert all(t.command[0] == t.step for t in ticks)  # every action at the step it is meant for
    assert not any(t.hold for t in ticks) and out["loop"].lost == 0  # no standstill, no ack given up early
    assert all(p.d == 4 for p, _ in plans[B + 3:])  # d: the delay itself (5 steps of inference), not the lag


def test_without_the_executors_clock_the_lag_shows_as_lead() -> None:
    """The loop told nothing of the executor's clock (simulation, tests): the newest report is taken as current,
    so chunks run ahead by the lag (what the node did before its estimate of the executor's clock)."""
    out = _lagging_loop(4, latency=5, steps=400, give_now=False)
    assert all(t.command[0] == t.step + 4 for t in out["ticks"][60:] if not t.hold)
