"""Closed-loop tests of the ROS-free runtime: INFERENCELOOP + GETACTION under latency spikes and old
observations, with the executor's reports as the only channel back (as between the two nodes)."""

from __future__ import annotations

import numpy as np
import pytest

from rtc_ros.runtime.contract import ExecutorReport
from rtc_ros.runtime.executor import HOLD_STARVED, ChunkRejected, ExecutorConfig, ExecutorCore, Tick
from rtc_ros.runtime.inference_loop import (InferenceLoopCore, ObservationBeforeReports, ObservationTooOld, Plan,
                                            clamp_warning)
from rtc_ros.runtime.methods import executor_mode

H, S_MIN, B = 20, 10, 4
DT_NS = 20_000_000  # 50 Hz


def chunk_for(t_obs: int) -> np.ndarray:
    """Joint 0: the step each action is for (t_obs + i); joint 1: t_obs. A re-executed or skipped
    step shows up as joint 0 != the commanded step."""
    i = np.arange(H, dtype=float)
    return np.stack([t_obs + i, np.full(H, float(t_obs))], axis=1)


def report(tick: Tick) -> ExecutorReport:
    return ExecutorReport(tick.step, tick.seq, tick.takeover, tick.consumed, tick.hold, tick.rejected_seq,
                          tick.rejected_reason, stamp_ns=(tick.step + 1) * DT_NS, command=tick.command)


def closed_loop(latencies: list[int], steps: int, s_min: int = S_MIN, method: str = "rtc",
                obs_age: int | dict[int, int] = 0, initial_delay: int | None = None, max_chunk_age: float = 0.0) -> dict:
    """Run executor + inference loop; inference ``j`` takes ``latencies[j]`` steps (the last repeats); each
    observation is ``obs_age`` steps old when planned from (a dict: ``{inference j: age}``, 1 for the others;
    refusals counted in ``too_old``)."""
    ex = ExecutorCore(ExecutorConfig(horizon=H, action_dim=2, mode=executor_mode(method), s=s_min),
                      max_chunk_age=max_chunk_age)
    ex.set_measured_position(np.zeros(2))
    loop = InferenceLoopCore(H, s_min, B, method,
                             initial_delay=latencies[0] if initial_delay is None else initial_delay)
    too_old: list[int] = []
    in_flight: tuple | None = None  # (arrival step, plan, chunk, latency)
    ticks: list[Tick] = []
    inferences: list[dict] = []
    for k in range(steps):
        if in_flight is not None and in_flight[0] == k:  # the chunk is published and reaches the executor
            _, plan, chunk, lat = in_flight
            loop.on_published(plan, chunk)
            try:
                ex.offer_chunk(chunk, plan.seq, plan.t_obs, plan.d, plan.s, obs_age_s=(k - plan.t_obs) * DT_NS / 1e9)
                inferences[-1]["accepted"] = True
            except ChunkRejected as exc:
                inferences[-1]["rejected"] = exc.reason
            in_flight = None
        tick = ex.tick()
        ticks.append(tick)
        loop.on_executor_report(report(tick))
        if in_flight is None:
            try:
                age = obs_age.get(len(inferences), 1) if isinstance(obs_age, dict) else obs_age
                plan = loop.plan(obs_stamp_ns=(k + 1 - age) * DT_NS + DT_NS // 2)  # observed after tick k - age
            except ObservationTooOld:
                too_old.append(k)
                continue
            if plan is not None:
                lat = latencies[min(len(inferences), len(latencies) - 1)]
                in_flight = (k + lat, plan, chunk_for(plan.t_obs), lat)
                inferences.append(dict(plan=plan, start=k, latency=lat, arrival=k + lat, accepted=False,
                                       rejected=None, forecast_before=loop.queue.forecast()))
    return dict(ticks=ticks, inferences=inferences, loop=loop, ex=ex, too_old=too_old)


def test_spikes_up_to_1_5_H_no_step_twice_or_skipped_and_standstill_bounded() -> None:
    normal = 4
    spikes = {8: int(1.5 * H), 16: 8, 24: H + 3}  # inference index -> latency
    latencies = [spikes.get(j, normal) for j in range(40)]
    out = closed_loop(latencies, 600)
    ticks, infs, loop = out["ticks"], out["inferences"], out["loop"]
    # 1. no step executed twice or skipped: every executed action is the one for its step (the start-up
    #    chunk starts at its index 0, so its actions run takeover - t_obs steps later than planned)
    t_obs = {inf["plan"].seq: inf["plan"].t_obs for inf in infs}
    first = min(t.seq for t in ticks if t.seq >= 0)
    for t in ticks:
        if not t.hold:
            expected = t.step if t.seq != first else t_obs[first] + t.step - t.takeover
            assert t.consumed == (0 if t.seq == first else t.takeover - t_obs[t.seq])
            assert t.command[0] == expected, f"step {t.step} executed the action for step {t.command[0]}"
    # 2. standstill only while a spike exceeds the remaining chunk, ending within one inference after it
    starved = [t.step for t in ticks if t.hold and t.reason == HOLD_STARVED]
    assert starved, "the spikes longer than the remaining chunk must cause some standstill"
    windows = []
    for j, inf in enumerate(infs):
        if inf["latency"] > H - S_MIN:  # this inference outlasts the executing chunk's remaining actions
            if inf["latency"] >= H:
                assert inf["rejected"] == "stale"
            nxt = infs[j + 1]
            assert nxt["start"] == inf["arrival"], "after a rejected chunk the loop must replan at once"
            windows.append((inf["start"], nxt["arrival"] + 1))
    for step in starved:  # standstill only inside a spike window, which ends one (normal) inference after
        # the spiked chunk arrived (the replan's arrival)
        assert any(a <= step <= b for a, b in windows), f"standstill at step {step} outside any spike window"
    # 3. the forecast covers the spike: a delay that overran the chunk enters Q (>= H), a late but
    #    accepted one with its consumed delay
    j_over = 8
    assert infs[j_over]["rejected"] == "stale"
    assert infs[j_over + 1]["plan"].d_raw >= H
    j_late = 16
    assert infs[j_late]["accepted"]
    # planned after tick k (t_obs = k + 1), arriving before tick k + 8: 7 steps consumed
    assert infs[j_late + 1]["plan"].d_raw >= 7
    # Q forgets after b delays: the forecast returns to the normal latency
    assert loop.queue.forecast() <= normal + 1
    assert loop.rejected == 2 and loop.lost == 0


def test_normal_latency_never_holds_and_s_adapts() -> None:
    out = closed_loop([6], 400)
    assert not any(t.hold for t in out["ticks"][10:])
    # 6 steps of inference = 5 consumed (planned after tick k, arriving before tick k + 6); d_init = 6
    # leaves Q after b = 4 observed delays
    plans = [i["plan"] for i in out["inferences"][B + 1:]]
    assert plans and all(p.d == 5 and p.s == S_MIN for p in plans)  # d = max(Q), next inference at s_min
    # a delay >= s_min: s = max(d, s_min) -- the next inference starts as soon as the chunk took over
    out2 = closed_loop([8], 400, s_min=4)
    assert not any(t.hold for t in out2["ticks"][10:])
    # the loop sees the takeover in the report of the tick that executed it: index d + 1 at t_obs
    assert all(i["plan"].s == 8 and i["plan"].d == 7 for i in out2["inferences"][B + 1:])


def test_delay_beyond_h_minus_s_min_starts_early_enough_to_take_over_at_the_chunk_end() -> None:
    """d = 8 > H - s_min = 5: the loop starts before s_min, at the last index from which the new chunk
    still takes over by the executing one's end (idx = H - d): no hold, nothing clamped. Before
    2026-12-05 it started one step later, so every cycle held one tick and clamped d (a review found it)."""
    out = closed_loop([9], 400, s_min=15)  # planned after tick k, arriving before tick k + 9: 8 consumed
    plans = [i["plan"] for i in out["inferences"][B + 2:]]
    assert plans and all(p.d == 8 and p.s == H - 8 and not p.clamped_by for p in plans), plans[:3]
    assert not any(t.hold for t in out["ticks"][30:]), [t.step for t in out["ticks"][30:] if t.hold][:5]
    assert out["loop"].infeasible == 0


def _running_loop(steps: int) -> tuple[ExecutorCore, InferenceLoopCore, list[Tick], np.ndarray]:
    ex = ExecutorCore(ExecutorConfig(horizon=H, action_dim=2))
    ex.set_measured_position(np.zeros(2))
    loop = InferenceLoopCore(H, S_MIN, B, "rtc", initial_delay=2)
    t0 = ex.tick()
    loop.on_executor_report(report(t0))
    p0 = loop.plan()
    first = chunk_for(p0.t_obs)
    loop.on_published(p0, first)
    ex.offer_chunk(first, p0.seq, p0.t_obs, p0.d, p0.s)
    ticks = [t0]
    for _ in range(steps):
        ticks.append(ex.tick())
        loop.on_executor_report(report(ticks[-1]))
    return ex, loop, ticks, first


def test_a_lost_chunk_that_takes_over_late_supersedes_a_plan_guided_toward_the_chunk_it_replaced() -> None:
    """A chunk counted lost (no report within ack_timeout_steps) takes over after all while the next one is
    being sampled, guided toward the chunk the late one replaced: that plan is superseded (not published:
    it would splice into the late chunk with a jump), the late delay enters Q, and the next plan is guided
    toward the late chunk."""
    ex, loop, ticks, first = _running_loop(12)
    p = loop.plan()
    late_chunk = chunk_for(p.t_obs) + [0.0, 500.0]
    loop.on_published(p, late_chunk)
    for _ in range(loop.ack_timeout_steps + 1):  # never reaches the executor (yet)
        loop.on_executor_report(report(ex.tick()))
    assert loop.ready() and loop.lost == 1
    p2 = loop.plan()  # guided toward the first chunk, still executing
    assert p2.base_seq == ticks[-1].seq and not loop.superseded(p2)
    ex.offer_chunk(late_chunk, p.seq, p.t_obs, p.d, p.s)  # ... it arrives after all and takes over
    t = ex.tick()
    assert loop.on_executor_report(report(t)) == t.takeover - p.t_obs  # its delay is observed ...
    assert t.takeover - p.t_obs in loop.queue.queue()  # ... and enters Q
    assert loop.superseded(p2)
    loop.on_failed(p2)
    p3 = loop.plan()
    assert p3.base_seq == p.seq and not loop.superseded(p3)
    np.testing.assert_array_equal(p3.prev_remaining[0], late_chunk[p3.t_obs - p.t_obs])  # toward the late one


def test_the_executing_chunks_record_outlives_a_run_of_rejections() -> None:
    """The published-chunk history is bounded; its oldest records go first, but never the executing chunk's:
    without it, that chunk would look like another producer's and a guided loop would wait until it ran out
    (a stop). Here the history holds 2 and two chunks in a row are rejected while chunk 0 runs."""
    ex = ExecutorCore(ExecutorConfig(horizon=H, action_dim=2))
    ex.set_measured_position(np.zeros(2))
    loop = InferenceLoopCore(H, S_MIN, B, "rtc", initial_delay=2, history=2)
    loop.on_executor_report(report(ex.tick()))
    p0 = loop.plan()
    loop.on_published(p0, chunk_for(p0.t_obs))
    ex.offer_chunk(chunk_for(p0.t_obs), p0.seq, p0.t_obs, p0.d, p0.s)
    for _ in range(S_MIN):
        loop.on_executor_report(report(ex.tick()))
    for _ in range(2):
        p = loop.plan()
        assert p is not None and loop.foreign_seq == -1
        loop.on_published(p, chunk_for(p.t_obs))
        with pytest.raises(ChunkRejected):
            ex.offer_chunk(chunk_for(p.t_obs), p.seq, p.t_obs - 3 * H, p.d, p.s)  # (refused on purpose: 'resync')
        loop.on_executor_report(report(ex.tick()))
    assert loop.plan() is not None and loop.foreign_seq == -1


@pytest.mark.parametrize("k", [0, 1, 3, 7])
def test_observation_delayed_by_k_steps(k: int) -> None:
    ex, loop, ticks, first = _running_loop(12)
    t_next = ticks[-1].step + 1
    plan = loop.plan(obs_stamp_ns=(t_next - k) * DT_NS + DT_NS // 2)  # taken k steps ago
    assert plan.t_obs == t_next - k and plan.age == k
    assert plan.d >= k  # the observation's age is already executed: frozen
    commanded = {t.step: t.command for t in ticks}
    for i in range(k):  # the guidance target for the executed steps is what was commanded
        np.testing.assert_array_equal(plan.prev_remaining[i], commanded[plan.t_obs + i])
    np.testing.assert_array_equal(plan.prev_remaining[k], first[t_next - 1])  # then the executing chunk
    new = chunk_for(plan.t_obs) + [0.0, 1000.0]
    ex.offer_chunk(new, plan.seq, plan.t_obs, plan.d, plan.s)
    t = ex.tick()
    assert t.command[0] == t.step and t.consumed == t.step - plan.t_obs == k  # spliced at index now - t_obs
    assert t.command[1] == plan.t_obs + 1000.0


def test_too_old_observation_is_refused_and_nothing_in_flight() -> None:
    _, full, _, _ = _running_loop(4 * H + 5)  # 4 H steps of history, all after the observation: stale
    with pytest.raises(ObservationTooOld, match="older than the executor's step history") as exc:
        full.plan(obs_stamp_ns=1)
    assert not isinstance(exc.value, ObservationBeforeReports)
    _, loop, ticks, _ = _running_loop(30)
    with pytest.raises(ObservationBeforeReports, match="before the first executor report"):
        loop.plan(obs_stamp_ns=1)  # the history began after the observation (start-up): early, not counted
    t_next = ticks[-1].step + 1
    with pytest.raises(ObservationTooOld, match="no action left"):
        loop.plan(obs_stamp_ns=(t_next - H) * DT_NS + DT_NS // 2)  # H steps old: nothing can be left
    assert loop.plan() is not None  # a fresh observation still plans
    unstamped = InferenceLoopCore(H, S_MIN, B, "rtc", initial_delay=2)
    unstamped.on_executor_report(ExecutorReport(5, -1, -1, 0, True))  # stamp 0: e.g. sim time before /clock
    with pytest.raises(ObservationBeforeReports, match="no executor report has carried a stamp"):
        unstamped.plan(obs_stamp_ns=10 * DT_NS)


def test_executor_restart_and_lost_chunk() -> None:
    _, loop, ticks, _ = _running_loop(12)
    p = loop.plan()
    loop.on_published(p, chunk_for(p.t_obs))
    last = ticks[-1].step
    for step in range(last + 1, last + 1 + loop.ack_timeout_steps + 1):  # never taken over nor rejected
        loop.on_executor_report(ExecutorReport(step, 0, 1, 0, stamp_ns=(step + 1) * DT_NS))
    assert loop.ready() and loop.lost == 1
    loop.on_executor_report(ExecutorReport(0, -1, -1, 0, True, stamp_ns=10 * DT_NS))  # restarted
    p2 = loop.plan()
    assert p2.prev_remaining is None and p2.t_obs == 1 and p2.seq > p.seq


def test_pause_holds_then_resumes_the_chunk_without_a_jump() -> None:
    ex, loop, ticks, first = _running_loop(5)
    assert ex.pause() and not ex.pause()
    held = [ex.tick() for _ in range(30)]
    for t in held:
        loop.on_executor_report(report(t))
        assert t.paused and t.hold and t.reason == "paused" and t.step == ticks[-1].step
        np.testing.assert_array_equal(t.command, ticks[-1].command)  # the current command, held
        assert loop.plan() is None  # nothing is planned while paused
    assert ex.resume() and not ex.resume()
    t = ex.tick()
    assert not t.paused and t.step == ticks[-1].step + 1
    assert t.command[0] == t.step  # the executing chunk continues at its next action: no jump, no skip
    loop.on_executor_report(report(t))
    assert loop.clock.step_at((t.step + 1) * DT_NS) == t.step + 1  # the step clock survived the pause


@pytest.mark.parametrize("text,match", [
    ("rtc seq=1 t_obs=2 d=3 s=4 method=rtc d=5", "given twice"),
    ("rtc seq=1 t_obs=2 d=3 s=4 method=rtc " + "x" * 300, "characters long"),
    ("rtc seq=1000000000000000000000000000000 t_obs=2 d=3 s=4 method=rtc", "out of range"),
    ("rtc seq=1 t_obs=-2 d=3 s=4 method=rtc", "'t_obs' = -2"),
    ("rtc seq=1 t_obs=2 d=x s=4 method=rtc", "'d' = 'x' is not an integer"),
    ("seq=1 t_obs=2 d=3 s=4 method=rtc", "not an rtc metadata string"),
])
def test_chunk_metadata_is_parsed_strictly(text: str, match: str) -> None:
    from rtc_ros.runtime.contract import ChunkMeta

    with pytest.raises(ValueError, match=match):
        ChunkMeta.decode(text)


def test_executor_report_round_trip() -> None:
    rep = ExecutorReport(12, 3, 10, 4, True, 5, "stale", paused=True)
    back = ExecutorReport.decode(rep.encode(), stamp_ns=7)
    assert back == ExecutorReport(12, 3, 10, 4, True, 5, "stale", 7, paused=True)
    old = ExecutorReport.decode("rtc step=1 seq=0 takeover=1 consumed=0 hold=0")  # an older executor
    assert old.rejected_seq == -1 and old.rejected_reason == "none" and not old.paused
    with pytest.raises(ValueError, match="reason"):
        ExecutorReport.decode("rtc step=1 seq=0 takeover=1 consumed=0 hold=0 rejected=3 reason=bogus")


def test_forecast_above_max_d_is_clamped_not_refused() -> None:
    """rtc_trained: a forecast above the policy's trained prefix length is clamped to it (counted as
    infeasible) so the loop keeps planning instead of failing every tick."""
    loop = InferenceLoopCore(H, S_MIN, B, "rtc_trained", initial_delay=12, max_d=4)
    loop.on_executor_report(ExecutorReport(0, -1, -1, 0, True, stamp_ns=DT_NS))
    plan = loop.plan()
    assert plan is not None and plan.d_raw == 12 and plan.d == 4 and loop.infeasible == 1
    assert plan.clamped_by == "max_d"
    msg = clamp_warning(plan, H)  # the operator is told the trained prefix is the limit, not H - s
    assert "training.prefix_conditioning = 4" in msg and "d=12" in msg and "H - s" not in msg, msg
    free = InferenceLoopCore(H, S_MIN, B, "rtc", initial_delay=3)
    free.on_executor_report(ExecutorReport(0, -1, -1, 0, True, stamp_ns=DT_NS))
    ok = free.plan()
    assert ok is not None and ok.d == ok.d_raw == 3 and ok.clamped_by == ""
    by_h = clamp_warning(Plan(seq=0, t_obs=0, d=5, s=45, prev_remaining=None, d_raw=9, clamped_by="horizon"), 50)
    assert "exceeds H - s = 5" in by_h and "prefix_conditioning" not in by_h, by_h


@pytest.mark.parametrize("method", ["te_sparse", "te_dense", "sync", "naive", "rtc"])
def test_one_spike_longer_than_the_chunk_is_survived_in_every_mode(method: str) -> None:
    """One inference of 1.5 H, then fast again: the overrun (>= H) enters Q, and the forecast d it gives is
    clamped to what the executor accepts (modes without a frozen prefix: H), so chunks run again after it
    (before, te_* and sync sent d > H, refused as ``metadata`` at every later chunk: the robot held for good)."""
    out = closed_loop([4] * 5 + [30] + [4] * 200, 600, method=method)
    after = [i for i in out["inferences"] if out["inferences"][5]["arrival"] < i["start"] and i["arrival"] < 600]
    assert len(after) > 10
    assert all(i["accepted"] for i in after), [(i["plan"].d, i["rejected"]) for i in after if not i["accepted"]]
    assert all(i["plan"].d <= H for i in out["inferences"])
    assert "metadata" not in out["ex"].stats.rejects_by_reason
    assert not any(t.hold for t in out["ticks"][-100:]) or method == "sync"


def test_sync_initial_delay_beyond_the_chunk_still_runs() -> None:
    """d_init > H (a slow model at start-up, or a large injected latency) is clamped, not sent as d > H; in
    sync mode that is a longer pause, not a chunk arriving too late (no 'length' clamp, no warning)."""
    out = closed_loop([3], 300, method="sync", initial_delay=25)
    assert out["inferences"] and all(i["accepted"] for i in out["inferences"])
    first = out["inferences"][0]["plan"]
    assert first.d == H and first.d_raw == 25 and first.clamped_by == ""
    late = clamp_warning(Plan(seq=0, t_obs=0, d=H, s=0, prev_remaining=None, d_raw=25, clamped_by="length"), H)
    assert "exceeds the chunk length" in late  # what the ensemble modes say for the same forecast


@pytest.mark.parametrize("obs_age", [1, 2])
def test_overruns_do_not_make_every_later_observation_too_old(obs_age: int) -> None:
    """b overruns in a row (a stalled model), then fast again, with observations 1-2 steps old (a joint state
    not phase-locked to the tick, a camera frame): planning resumes. Before, each overrun entered C (the
    compute times) as >= H, so every observation looked too old for "the fastest recent inference", and
    no takeover could ever refresh C: the robot held for good."""
    out = closed_loop([4, 4] + [25] * B + [4] * 1000, 800, obs_age=obs_age)
    assert out["loop"].rejected >= B  # the overruns happened
    assert min(out["loop"].compute.queue()) < H - obs_age
    assert sum(t.hold for t in out["ticks"][-300:]) == 0
    assert len(out["too_old"]) < 20


def test_a_restarted_producer_does_not_reuse_the_rejected_seq() -> None:
    """A policy process restarted after its last chunk was rejected: its first seq is above the rejected
    one, so that rejection (still in every report) is not booked against its own chunk."""
    ex = ExecutorCore(ExecutorConfig(horizon=H, action_dim=2))
    ex.set_measured_position(np.zeros(2))
    ex.offer_chunk(chunk_for(0), seq=7, t_obs=0)
    for _ in range(25):
        ex.tick()
    with pytest.raises(ChunkRejected, match="stale"):
        ex.offer_chunk(chunk_for(2), seq=8, t_obs=2)
    loop = InferenceLoopCore(H, S_MIN, B, "rtc", initial_delay=3)
    loop.on_executor_report(report(ex.tick()))
    p = loop.plan()
    assert p is not None and p.seq == 9
    loop.on_published(p, chunk_for(p.t_obs))
    ex.offer_chunk(chunk_for(p.t_obs), p.seq, p.t_obs, p.d, p.s)
    loop.on_executor_report(report(ex.tick()))
    assert loop.rejected == 0 and max(loop.queue.queue()) < H
    assert loop.plan() is None  # its chunk is executing: no second inference at once


def test_a_chunk_refused_as_too_old_enters_the_delay_forecast() -> None:
    """An inference slower than max_chunk_age (a 10 Hz walkthrough: 1.2 s against 1.0 s) is refused as ``age``;
    like a ``stale`` overrun, its delay now enters Q, so the next plans freeze that many actions (before, d stayed
    at the normal latency and each slow chunk's delay was never learned)."""
    ex = ExecutorCore(ExecutorConfig(horizon=H, action_dim=2, s=S_MIN), max_chunk_age=0.1)
    ex.set_measured_position(np.zeros(2))
    loop = InferenceLoopCore(H, S_MIN, B, "rtc", initial_delay=2)
    loop.on_executor_report(report(ex.tick()))
    plan = loop.plan(obs_stamp_ns=2 * DT_NS)
    assert plan is not None and loop.queue.forecast() == 2
    for _ in range(7):  # the inference takes 7 steps
        loop.on_executor_report(report(ex.tick()))
    loop.on_published(plan, chunk_for(plan.t_obs))
    with pytest.raises(ChunkRejected, match="max_chunk_age"):
        ex.offer_chunk(chunk_for(plan.t_obs), plan.seq, plan.t_obs, plan.d, plan.s, obs_age_s=0.15)
    loop.on_executor_report(report(ex.tick()))
    assert loop.rejected == 1 and loop.queue.forecast() >= 7


def test_one_old_observation_does_not_inflate_the_forecast_for_b_chunks() -> None:
    """A fault walkthrough (2026-12-07): a 1 s gap in the joint states, and the chunk planned from the last one
    (26 steps old) entered Q at 26, so d stayed at 26 (clamped, warned "use a faster model") for the next b chunks
    although the model and the inputs were fine again. Its extra age was known when it was planned (d = age +
    max(C) covered it); it now enters Q at the usual age. The plan from the old observation says so."""
    out = closed_loop([3], 400, obs_age={6: 8})
    plans = [i["plan"] for i in out["inferences"]]
    usual = plans[5].d
    assert plans[6].age == 8 and plans[6].d_raw > 8 and plans[6].d_raw > usual  # (that plan covers its age)
    assert [p.d for p in plans[7:7 + B]] == [usual] * B  # before: 11 for the next B = 4 chunks
    assert all(i["accepted"] for i in out["inferences"][:7 + B])
    old = clamp_warning(Plan(seq=0, t_obs=0, d=9, s=25, prev_remaining=None, d_raw=26, age=24, clamped_by="hold"), 50)
    assert "24 of the 26 steps are the observation's age" in old
    assert "age" not in clamp_warning(Plan(seq=0, t_obs=0, d=9, s=25, prev_remaining=None, d_raw=26, age=1,
                                           clamped_by="hold"), 50)
    # a network walkthrough: retransmissions on a lossy link gave d = 93 with inferences of 44 ms: not the model
    net = clamp_warning(Plan(seq=0, t_obs=0, d=25, s=25, prev_remaining=None, d_raw=93, age=1, clamped_by="hold"), 50,
                        0.02, 44.0)
    assert "this node took at most 44 ms" in net and "1860 ms is on the way to the executor" in net
    slow = clamp_warning(Plan(seq=0, t_obs=0, d=25, s=25, prev_remaining=None, d_raw=30, age=1, clamped_by="hold"), 50,
                         0.02, 580.0)
    assert "on the way" not in slow and "use a faster model" in slow  # (600 ms, the model's 580: the model)


def test_a_chunk_refused_as_too_old_for_its_old_observation_does_not_inflate_the_forecast() -> None:
    """The same for a chunk refused as ``age`` (older than max_chunk_age) because its observation was old: it
    enters Q at the usual age too (a review: only takeovers had the rule)."""
    out = closed_loop([3], 400, obs_age={6: 9}, max_chunk_age=0.2)  # 9 + 3 steps = 0.24 s > 0.2 s
    infs = out["inferences"]
    assert infs[6]["rejected"] == "age" and all(i["accepted"] for i in infs[:6])
    assert [i["plan"].d for i in infs[7:7 + B]] == [infs[5]["plan"].d] * B  # before: 12 for the next B chunks


def test_chunks_refused_in_a_row_are_counted_until_one_takes_over() -> None:
    """failed_in_row (the node's diagnostics WARN at 3): every chunk stale -> all of them, the newest's reason kept;
    one taking over resets it."""
    out = closed_loop([H + 3], 200)
    loop = out["loop"]
    assert loop.rejected >= 3 and loop.failed_in_row == loop.rejected and loop.last_failure == "refused (stale)"
    out = closed_loop([H + 3] * 3 + [4], 200)
    assert out["loop"].rejected >= 2 and out["loop"].failed_in_row == 0  # (the start-up chunk runs from index 0)
