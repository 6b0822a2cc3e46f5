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
CYCLE = 31  # periods from one retransmission to the next (_lagging_loop)


def test_a_stamp_past_the_newest_report_maps_at_the_measured_period() -> None:
    c = StepClock(40)
    for k in range(10):
        c.add(k, (k + 1) * DT + (2_000_000 if k in (3, 6) else 0))  # two ticks 2 ms late do not move the median
    assert c.period_ns() == DT
    newest = 10 * DT  # step 9's stamp
    assert c.step_at(newest + DT // 2) == 10  # within a period: the step after the newest report (as before)
    assert c.step_at(newest + 115 * DT // 100) == 10  # a tick due 3 ms ago may be late: a fifth of a period spare
    assert c.step_at(newest + 125 * DT // 100) == 11
    assert c.step_at(newest + 9 * DT + DT // 4) == 19  # 9 periods on: 9 steps on
    assert c.step_at(5 * DT + DT // 2) == 5  # inside the history: exact, as before
    c.add(9, newest + 5 * DT)  # paused: the step stands still
    assert c.step_at(newest + 9 * DT) == 10  # no extrapolation past a report of a standing step
    c.add(10, newest + 20 * DT)  # resumed: the pause's long gap does not change the period (median)
    assert c.period_ns() == DT
    assert c.step_at(newest + 23 * DT + DT // 2) == 14
    c.clear()
    assert c.period_ns() is None and c.step_at(5 * DT) is None
    for k in range(7):  # after a restart: too few steps to measure a period (one late tick would set it)
        c.add(k, (k + 1) * DT)
    assert c.period_ns() is None and c.step_at(7 * DT + 5 * DT) == 7  # not past the newest report


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


def test_an_executor_that_stalls_or_stopped_is_not_taken_as_stepping() -> None:
    """Reports on time, then none (the executor stalled, or stopped): no more than a period past the newest report's
    receipt; a report that came 150 ms late says the executor was 150 ms past its stamp."""
    c = ClockAhead(0.02, reports=50)
    for k in range(1, 101):
        c.on_report(k * DT, k * DT + 1_000_000)  # 1 ms late each
    assert c.executor_now(100 * DT + 300_000_000) == 101 * DT  # 300 ms without a report: one period on
    assert c.executor_now(100 * DT + 5_000_000) == 100 * DT + 4_000_000  # (less the least delay, 1 ms)
    for t in range(100 * DT + 20_000_000, 101 * DT + 151_000_000, DT):  # joint states on time meanwhile
        c.lead_s(t, t + 1_000_000)
    c.on_report(101 * DT, 101 * DT + 151_000_000)  # held back 150 ms
    assert c.executor_now(101 * DT + 151_000_000) == 101 * DT + 150_000_000
    c.on_report(102 * DT, 102 * DT + 400_000_000)  # read after 250 ms without a callback: this node stalled
    assert c.executor_now(102 * DT + 400_000_000) == 103 * DT  # a period on, as for a report on time


def _lagging_loop(lag: int, latency: int, steps: int, horizon: int = H, stall: tuple[int, int] = (0, 0),
                  estimate: bool = True, jitter_ms: float = 0.0, seed: int = 0, node_stall: bool = False) -> dict:
    """Executor + inference loop, one iteration per control period. Every ``CYCLE`` periods the executor's reports are
    held back for ``lag`` periods, then arrive at once (in order: a reliable topic behind a retransmission), each
    received 1 ms (plus up to ``jitter_ms``) into the period; the
    executor makes no step in the iterations ``range(*stall)``. Observations are fresh (stamped half a period after
    the newest period began); each chunk is the policy's answer to the world at its observation: joint 0 is the
    step each action is meant for. The loop is told the executor's clock as the node estimates it (ClockAhead,
    this node's clock 3 s off), or nothing (``estimate`` False). A joint state reaches the node every period (on
    time), except, with ``node_stall``, during the executor's stall: the node stalled with it (one CPU), and reads
    what came meanwhile when both run again."""
    ex = ExecutorCore(ExecutorConfig(horizon=horizon, action_dim=2, mode="switch", s=horizon // 2))
    ex.set_measured_position(np.zeros(2))
    loop = InferenceLoopCore(horizon, horizon // 2, B, "rtc", initial_delay=latency)
    clock, own, rng = ClockAhead(0.02, reports=50), 3_000_000_000, np.random.default_rng(seed)
    in_transit: deque[ExecutorReport] = deque()
    ticks, plans, in_flight, refused = [], [], None, []
    for k in range(steps):
        if in_flight is not None and in_flight[0] == k:
            _, plan, chunk = in_flight
            loop.on_published(plan, chunk)
            try:
                ex.offer_chunk(chunk, plan.seq, plan.t_obs, plan.d, plan.s)
            except ChunkRejected as exc:
                refused.append(exc.reason)
            in_flight = None
        if not stall[0] <= k < stall[1]:
            t = ex.tick()
            ticks.append((k, t))
            in_transit.append(ExecutorReport(t.step, t.seq, t.takeover, t.consumed, t.hold, t.rejected_seq,
                                             t.rejected_reason, stamp_ns=(k + 1) * DT, command=t.command))
        if node_stall and stall[0] - 1 <= k < stall[1] - 1:
            continue  # the node stalled too (from a period earlier: the last report before the stall waits in its
            # queue; and it runs again a period before the executor): nothing read, nothing planned
        obs = (k + 1) * DT + DT // 2
        clock.lead_s(obs, obs + own)  # this period's joint state, on time
        released = [in_transit.popleft() for _ in range(len(in_transit))] if k % CYCLE >= lag else []
        for rep in released or [None]:  # the node tries to plan after each report (as it wakes on each)
            if rep is not None:
                clock.on_report(rep.stamp_ns, (k + 1) * DT + int((1 + rng.uniform(0, jitter_ms)) * 1e6) + own)
                loop.on_executor_report(rep)
            obs = (k + 1) * DT + DT // 2
            now = clock.executor_now(obs + own) if estimate else 0
            if in_flight is None and ticks and (plan := loop.plan(obs, now)) is not None:
                observed = ticks[-1][1].step + 1  # taken after the newest step: the next one can react to it
                i = np.arange(horizon, dtype=float)
                in_flight = (k + latency, plan, np.stack([observed + i, np.full(horizon, float(observed))], axis=1))
                plans.append((k, plan, observed))
    return dict(ticks=ticks, plans=plans, loop=loop, refused=refused)


@pytest.mark.parametrize("lag,horizon", [(0, H), (4, H), (9, H), (12, 50)])
def test_reports_arriving_late_do_not_run_the_chunks_ahead_of_their_observation(lag: int, horizon: int) -> None:
    """Planned while a burst of reports held back is read (after the chunk's takeover, which the loop waits for):
    index 0 at the observation's step (from the start of the estimate: 50 reports). Before, up to the lag early."""
    out = _lagging_loop(lag, latency=5, steps=400, horizon=horizon)
    late = [(p, observed) for k, p, observed in out["plans"] if k >= 50]
    assert len(late) > 300 // horizon
    assert all(p.t_obs == observed for p, observed in late)  # index 0 at the observation's step
    ticks = [t for k, t in out["ticks"] if k >= 80]
    assert all(t.command[0] == t.step for t in ticks)  # every action at the step it is meant for
    assert not any(t.hold for t in ticks) and out["loop"].lost == 0 and not out["refused"]  # no standstill
    assert all(p.d == 4 for p, _ in late[B:])  # d: the delay (5 steps of inference), not the lag


def test_without_the_executors_clock_the_lag_shows_as_lead() -> None:
    """The loop told nothing of the executor's clock (simulation, tests): the newest report is taken as current,
    so a chunk planned while the reports are held back runs ahead by as much (what the node did before 2026-12-07)."""
    out = _lagging_loop(9, latency=5, steps=400, estimate=False)
    assert any(p.t_obs < observed for _, p, observed in out["plans"])
    assert any(t.command[0] > t.step for _, t in out["ticks"] if not t.hold)


@pytest.mark.parametrize("jitter_ms", [0.0, 10.0])
def test_an_executor_stall_longer_than_an_inference_is_not_extrapolated_into_a_refusal(jitter_ms: float) -> None:
    """The executor makes no step for 12 periods (a stall: it never bursts to catch up), its reports on time (within
    10 ms: a review found one step let through, refused as future, when the newest came a few ms late): the node
    does not count steps that were not made. Stalls starting at every phase of the plan cycle, three seeds."""
    for seed in range(3):
        for start in range(90, 130, 3):
            out = _lagging_loop(0, latency=3, steps=200, stall=(start, start + 12), jitter_ms=jitter_ms, seed=seed)
            assert not out["refused"] and out["loop"].rejected == 0, (seed, start, out["refused"])
            assert all(p.t_obs == observed for _, p, observed in out["plans"]), (seed, start)


def test_a_report_read_late_after_this_node_stalled_is_not_extrapolated() -> None:
    """Both processes stalled 12 periods (one CPU under load): no report was made meanwhile, and the node reads the
    last one from before the stall when it runs again, late by the stall. Taken as a network's delay it put the next
    observation 12 steps ahead of the executor (refused as future in a two-robot test on 2 cores, 2026-12-07); a gap
    in the node's own callbacks (its joint states stopped too) says it is this node's delay, not the network's."""
    for seed in range(3):
        for start in range(90, 130, 3):
            out = _lagging_loop(0, latency=3, steps=200, stall=(start, start + 12), seed=seed, node_stall=True)
            assert not out["refused"] and out["loop"].rejected == 0, (seed, start, out["refused"])
            assert all(p.t_obs <= observed for _, p, observed in out["plans"]), (seed, start)
