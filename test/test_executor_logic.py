"""ROS-free tests of the executor core and the Algorithm-1 inference bookkeeping."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rtc_ros.runtime.executor import (
    HOLD_STARTUP, HOLD_STARVED, HOLD_SYNC_PAUSE, ExecutorConfig, ExecutorCore, ChunkRejected, clamp_command,
    implausible_holds,
)
from rtc_ros.runtime.contract import ExecutorReport
from rtc_ros.runtime.inference_loop import InferenceLoopCore, clamp_warning
from rtc_ros.core.stats import RollingStats

H, M = 8, 3


def ramp(start: float, horizon: int = H, m: int = M) -> np.ndarray:
    """Chunk whose action i is (start + i) in every joint: the value tells which step it was for."""
    return (start + np.arange(horizon, dtype=float))[:, None] * np.ones((1, m))


def make(mode: str = "switch", **kw) -> ExecutorCore:
    core = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M, mode=mode, **kw))
    assert core.set_measured_position(np.zeros(M))
    return core


def run(core: ExecutorCore, n: int) -> list:
    return [core.tick() for _ in range(n)]


def test_not_ready_without_position() -> None:
    core = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M))
    assert core.tick() is None and core.next_step == 0
    assert not core.set_measured_position(np.array([np.nan, 0, 0]))
    assert core.set_measured_position(np.ones(M))
    t = core.tick()
    assert t.hold and t.reason == HOLD_STARTUP and np.allclose(t.command, 1.0) and t.step == 0


def test_measured_position_beyond_the_limits_is_refused() -> None:
    """A joint measured beyond its limits by more than max_step (limits left at their defaults, degrees, a
    continuous joint): nothing is commanded (the first commands would walk it to the limit) and the executor
    pauses; by less: used, walked in at max_step per tick once resumed (someone may be moving the arm back)."""
    core = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M, lower=[-1.0] * M, upper=[1.0] * M, max_step=0.1))
    assert not core.set_measured_position(np.array([0.0, 1.5, -0.5]))
    assert core.out_of_limits == {1: 1.5} and not core.ready
    core.offer_chunk(np.full((H, M), 0.5), seq=0, t_obs=0)
    assert core.tick() is None and core.next_step == 0  # no command, the step counter stands
    assert not core.resume() and core.paused  # refused while beyond: it would start by itself once back inside
    assert core.set_measured_position(np.array([0.0, 1.05, -0.5]))  # within max_step of the limit
    assert core.out_of_limits == {} and core.ready and core.paused
    t = core.tick()
    assert t.hold and t.command[1] == pytest.approx(1.05)  # paused: holds until ~/resume
    assert core.resume()
    t = core.tick()
    assert not t.hold and t.command[1] == pytest.approx(0.95)  # clipped to 1.0, then one max_step from 1.05
    # a re-sync measures again: a teleop left the arm beyond the limits -> nothing commanded again
    core.set_measured_position(np.array([0.0, 1.5, 0.0]))  # ignored: commanding already
    core.resync()
    assert core.out_of_limits == {}  # the re-sync measures afresh
    assert not core.set_measured_position(np.array([-2.0, 0.0, 0.0])) and core.out_of_limits == {0: -2.0}
    core.resume()
    assert core.tick() is None


def test_switch_splice_no_reexecution_no_skip() -> None:
    core = make()
    core.offer_chunk(ramp(100.0), seq=0, t_obs=0)
    ticks = run(core, 3)  # steps 0, 1, 2 -> 100, 101, 102
    assert [t.command[0] for t in ticks] == [100, 101, 102]
    assert ticks[0].splice is not None and ticks[0].splice.consumed == 0
    # a chunk observed at step 1 (values 201.. for steps 1..) arrives now (next step 3): d = 2
    assert core.offer_chunk(ramp(200.0) + 1.0, seq=1, t_obs=1, d=2) == 3
    t = core.tick()
    assert t.step == 3 and t.command[0] == 203.0  # index 2 of the new chunk = step 3
    assert t.seq == 1 and t.takeover == 3 and t.consumed == 2
    assert t.splice.consumed == 2 and t.splice.d == 2
    assert t.splice.jump == pytest.approx(100.0)  # old chunk would have commanded 103
    steps = [core.tick().command[0] for _ in range(4)]
    assert steps == [204, 205, 206, 207]  # contiguous: nothing re-executed or skipped


def test_starvation_holds_last_command_never_extrapolates() -> None:
    core = make()
    core.offer_chunk(ramp(1.0), seq=0, t_obs=0)
    ticks = run(core, H + 5)
    assert [t.hold for t in ticks[:H]] == [False] * H
    for t in ticks[H:]:
        assert t.hold and t.reason == HOLD_STARVED
        assert np.allclose(t.command, ticks[H - 1].command)
    assert core.stats.holds == 5 and core.stats.consecutive_holds == 5
    core.pause()  # a pause (or a disabled enabling device) ends the run of holds: after the resume the status's
    run(core, 3)  # "holding position for N s" counts from there, not from before the pause
    core.resume()
    run(core, 2)
    assert core.stats.consecutive_holds == 2 and core.stats.holds == 10


def test_clamp_limits_and_max_step() -> None:
    core = make(lower=[-1, -1, -1], upper=[1, 1, 1], max_step=0.25)
    core.offer_chunk(np.full((H, M), 5.0), seq=0, t_obs=0)
    cmds = [t.command[0] for t in run(core, 6)]
    assert cmds == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    assert core.stats.clamps == 6
    assert np.allclose(clamp_command(np.array([3.0]), np.array([2.0]), np.array([-1.0]), np.array([1.0]),
                                     np.array([0.1])), 1.9)  # outside limits: walked back, no jump


@pytest.mark.parametrize("chunk,seq,t_obs,reason", [
    (np.full((H, M), np.nan), 5, 0, "nonfinite"),
    (np.full((H, M), np.inf), 5, 0, "nonfinite"),
    (np.zeros((H - 1, M)), 5, 0, "shape"),
    (np.zeros((H, M + 1)), 5, 0, "shape"),
    (np.zeros((H, M)), 0, 0, "order"),
    (np.zeros((H, M)), 5, 99, "future"),
    (np.zeros((H, M)), 5, 1, "stale"),
])
def test_rejections(chunk, seq, t_obs, reason) -> None:
    core = make()
    core.offer_chunk(ramp(0.0), seq=0, t_obs=0)
    run(core, H + 1)  # now = H + 1, chunk observed at 1 has nothing left
    with pytest.raises(ChunkRejected) as exc:
        core.offer_chunk(chunk, seq=seq, t_obs=t_obs)
    assert exc.value.reason == reason and exc.value.seq == seq
    assert core.stats.rejects_by_reason[reason] == 1
    t = core.tick()
    assert t.hold  # the rejected chunk was not executed
    assert (t.rejected_seq, t.rejected_reason) == (seq, reason)  # and the report says so


@pytest.mark.parametrize("mode", ["switch", "ensemble", "sync"])
def test_older_observation_with_newer_seq_refused(mode) -> None:
    """Two producers on one executor: a chunk with a newer seq planned from an older observation than
    the accepted one would replace the fresher plan; it is refused (order) and the fresher one runs."""
    core = make(mode, s=3) if mode == "sync" else make(mode)
    core.offer_chunk(ramp(0.0), seq=0, t_obs=0)
    run(core, 4)
    core.offer_chunk(ramp(100.0), seq=7, t_obs=3)
    with pytest.raises(ChunkRejected, match="before the observation") as exc:
        core.offer_chunk(ramp(500.0), seq=8, t_obs=2)
    assert exc.value.reason == "order"
    core.offer_chunk(ramp(200.0), seq=9, t_obs=3)  # the same observation step is not older: accepted
    cmds = [t.command[0] for t in run(core, H)]
    assert all(c < 500.0 for c in cmds) and max(cmds) > 150.0, cmds  # (ensemble: averaged with seq 7)


@pytest.mark.parametrize("kw,age,match", [
    (dict(d=H + 1), 0.0, "d=9"),
    (dict(s=H + 1), 0.0, "s=9"),
    (dict(), None, "no observation stamp"),
    (dict(), 1.5, "1.500s old"),
    (dict(), -3600.0, "in the future"),
])
def test_metadata_and_age_rejections(kw, age, match) -> None:
    core = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M), max_chunk_age=1.0)
    core.set_measured_position(np.zeros(M))
    with pytest.raises(ChunkRejected, match=match):
        core.offer_chunk(ramp(0.0), seq=3, t_obs=0, obs_age_s=age, **kw)
    core.max_chunk_age = 0.0  # writable at run time: off
    core.offer_chunk(ramp(0.0), seq=4, t_obs=0, obs_age_s=None)


def test_chunk_far_beyond_the_limits_is_refused() -> None:
    """max_limit_excess: an action beyond a joint's limits by more than that fraction of its range is refused
    (counted, named), a little overshoot is clamped, joints without two finite limits are never checked."""
    cfg = ExecutorConfig(horizon=H, action_dim=M, lower=[-1.0, 0.0, -np.inf], upper=[1.0, 1.0, np.inf])
    core = ExecutorCore(cfg, max_limit_excess=0.5)
    core.set_measured_position(np.zeros(M))
    near = np.zeros((H, M))
    near[:, 0], near[:, 1], near[:, 2] = 1.99, -0.49, 1e6  # within 0.5 x range (2 / 1) of the limits; joint 2 free
    assert core.offer_chunk(near, seq=0, t_obs=0) == 0
    assert core.tick().command[0] == 1.0  # clamped, not refused
    for j, value, limits in ((0, -2.01, "[-1, 1]"), (1, 1.51, "[0, 1]")):
        far = near.copy()
        far[5, j] = value  # one action, deep in the chunk, in degrees say
        with pytest.raises(ChunkRejected, match=re.escape(f"action 5 of joint index {j} is {value:g}, beyond its "
                                                          f"limits {limits} by more than max_limit_excess=0.5")) as exc:
            core.offer_chunk(far, seq=1 + j, t_obs=1)
        assert exc.value.reason == "limits" and exc.value.seq == 1 + j
    assert core.stats.rejects_by_reason == {"limits": 2} and core.tick().seq == 0  # the accepted chunk runs on
    core.max_limit_excess = 0.0  # writable at run time: off
    core.offer_chunk(far, seq=5, t_obs=2)
    assert core.stats.chunks_accepted == 2 and core.stats.rejects_by_reason == {"limits": 2}


def test_a_start_up_chunk_far_from_the_held_arm_is_refused() -> None:
    """max_start_gap: a start-up chunk (index 0 at the observation's step, the arm still) whose first action is
    farther than that from the held command on a joint that is not a gripper is refused (counted, named): a policy
    in degrees on a radian driver with limits also in degrees, which no limit catches; a chunk taking over from a
    running one is not checked (a seam is the splice's business), nor a gripper (a squeeze), nor with 0 (off);
    after a re-sync the next start-up chunk is checked again."""
    cfg = ExecutorConfig(horizon=H, action_dim=M, lower=[-200.0] * M, upper=[200.0] * M, max_step=5.0,
                         hold_keeps=[False, False, True], joint_names=("elbow", "wrist", "gripper"))
    core = ExecutorCore(cfg, max_start_gap=0.5)
    core.set_measured_position(np.array([0.52, -0.1, 0.3]))  # radians from the driver
    degrees = np.tile([29.8, -5.7, 60.0], (H, 1))  # the policy's degrees for the same pose
    with pytest.raises(ChunkRejected, match=re.escape("start-up chunk seq 0: its first action puts joint elbow at "
                                                      "29.8, 29.28 from where it is held (0.52), more than "
                                                      "max_start_gap=0.5")) as exc:
        core.offer_chunk(degrees, seq=0, t_obs=0)
    assert exc.value.reason == "start_gap" and core.tick().hold and core.tick().rejected_reason == "start_gap"
    near = np.tile([0.9, -0.5, 0.95], (H, 1))  # 0.38 / 0.4 off, the gripper 0.65 (a squeeze): accepted
    core.offer_chunk(near, seq=1, t_obs=core.next_step)
    assert not core.tick().hold
    far = np.tile([5.0, 5.0, 5.0], (H, 1))
    core.offer_chunk(far, seq=2, t_obs=core.next_step - 1)  # a switch: not checked (the step limit walks it)
    core.resync()
    core.set_measured_position(np.array([0.9, -0.5, 0.95]))
    with pytest.raises(ChunkRejected, match="start-up chunk seq 3"):
        core.offer_chunk(far, seq=3, t_obs=core.next_step)
    core.max_start_gap = 0.0  # writable at run time: off
    core.offer_chunk(far, seq=4, t_obs=core.next_step)
    assert core.stats.rejects_by_reason == {"start_gap": 2} and core.stats.chunks_accepted == 3


def test_drop_plans_keeps_the_hold_and_refuses_older_observations() -> None:
    """drop_plans (a pause or a stall longer than max_chunk_age): every chunk forgotten, the last command held (not
    paused by it); the newest accepted chunk, here one not yet taken over, reported refused ('resync': the policy
    side need not wait for its ack timeout); a chunk observed before refused by its age; no step number skipped, so
    the first fresh observation (stamped before the next tick) is accepted and runs from its index 0."""
    core = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M), max_chunk_age=1.0)
    core.set_measured_position(np.zeros(M))
    core.offer_chunk(ramp(3.0), seq=0, t_obs=0, obs_age_s=0.01)
    run(core, 3)  # commanded 3, 4, 5
    core.offer_chunk(ramp(3.0), seq=1, t_obs=3, obs_age_s=0.01)  # accepted, takes over at a later step
    now = core.next_step
    core.drop_plans()
    t = core.tick()
    assert t.hold and t.seq == -1 and np.allclose(t.command, 5.0) and not core.paused
    assert (t.rejected_seq, t.rejected_reason) == (1, "resync") and core.next_step == now + 1
    with pytest.raises(ChunkRejected) as exc:
        core.offer_chunk(ramp(6.0), seq=2, t_obs=now, obs_age_s=2.5)  # planned before the stall
    assert exc.value.reason == "age"
    core.offer_chunk(ramp(6.0), seq=3, t_obs=now, obs_age_s=0.02)  # observed just before the last tick
    t = core.tick()
    assert t.seq == 3 and np.allclose(t.command, 6.0)  # its index 0


def test_sync_pauses_and_restarts_at_index_zero() -> None:
    core = make("sync", s=3)
    assert core.offer_chunk(ramp(10.0), seq=0, t_obs=0) == 0
    ticks = run(core, 5)
    assert [t.command[0] for t in ticks[:3]] == [10, 11, 12]
    assert ticks[3].hold and ticks[3].reason == HOLD_SYNC_PAUSE and ticks[3].command[0] == 12
    # chunk observed at step 3 (the pause) arrives at step 5: starts at its index 0
    core.offer_chunk(ramp(50.0), seq=1, t_obs=3)
    t = core.tick()
    # consumed = takeover - t_obs: the delay the robot waited through; the chunk's index 0 is at takeover
    assert t.command[0] == 50 and t.takeover == 5 and t.consumed == 2 and t.splice.seq == 1
    assert core.stats.consumed.last() == 2


def test_sync_chunk_observed_before_the_last_pause_counts_every_chunks_moving_steps() -> None:
    """An observation older than the executing chunk (a slow camera with obs_time oldest): its chunk starts
    at the index of every moving step since, the earlier chunk's included (before 2026-12-05 only the
    executing chunk's counted: it re-executed steps, moving the arm back); one with no action left for the
    step reached is refused as stale (it ran its last index for a past step, then held)."""
    core = make("sync", s=3)
    core.offer_chunk(ramp(10.0), seq=0, t_obs=0)
    core.tick()
    core.offer_chunk(ramp(50.0), seq=1, t_obs=1)  # B, observed at step 1 while A moved (steps 1-2)
    assert [t.command[0] for t in run(core, 6)] == [11, 12, 52, 53, 54, 54]  # B from index 2, pause at 6
    core.offer_chunk(ramp(90.0), seq=2, t_obs=2)  # C, observed at step 2: A moved 1 step since, B 3
    assert [t.command[0] for t in run(core, 3)] == [94, 95, 96]
    full = make("sync", s=H)
    full.offer_chunk(ramp(10.0), seq=0, t_obs=0)
    run(full, H + 2)  # it moved H steps, then paused
    with pytest.raises(ChunkRejected, match="moves") as exc:
        full.offer_chunk(ramp(90.0), seq=1, t_obs=0)
    assert exc.value.reason == "stale"
    full.offer_chunk(ramp(90.0), seq=2, t_obs=1)  # H - 1 moving steps since: its last action
    assert full.tick().command[0] == 90 + H - 1


def test_sync_early_chunk_waits_for_s_actions() -> None:
    core = make("sync", s=3)
    core.offer_chunk(ramp(10.0), seq=0, t_obs=0)
    core.tick()
    assert core.offer_chunk(ramp(50.0), seq=1, t_obs=1) == 3
    # observed at step 1, while the first chunk still moved the robot (steps 1 and 2): it starts at its
    # index 2, the step the robot has reached, not at index 0 (back to where it was observed)
    ticks = run(core, 6)
    assert [t.command[0] for t in ticks] == [11, 12, 52, 53, 54, 54] and ticks[-1].reason == HOLD_SYNC_PAUSE
    # observed in the pause (the robot stands still): index 0
    core.offer_chunk(ramp(90.0), seq=2, t_obs=core.next_step - 1)
    assert core.tick().command[0] == 90.0
    # s = H: a chunk that started at index H - 1 runs out after one action; the robot stands still from
    # then on, so a chunk observed 3 steps into its start starts at index 0 (only moving steps count)
    full = make("sync", s=H)
    full.offer_chunk(ramp(10.0), seq=0, t_obs=0)
    full.tick()
    full.offer_chunk(ramp(50.0), seq=1, t_obs=1)  # H - 1 moving steps to go: starts at index H - 1
    t = run(full, H)[-1]
    assert t.command[0] == 50.0 + H - 1 and t.seq == 1
    run(full, 3)  # holding since it ran out
    full.offer_chunk(ramp(90.0), seq=2, t_obs=full.next_step - 1)
    ticks = run(full, H)
    assert [x.command[0] for x in ticks if x.seq == 2][0] == 90.0


def test_ensemble_averages_overlapping_predictions() -> None:
    core = make("ensemble")
    assert core.tick().reason == HOLD_STARTUP
    core.offer_chunk(np.zeros((H, M)), seq=0, t_obs=1)
    assert core.tick().command[0] == 0.0
    core.offer_chunk(np.full((H, M), 2.0), seq=1, t_obs=2)
    t = core.tick()
    assert t.command[0] == pytest.approx(1.0) and t.seq == 1 and t.consumed == 0
    run(core, H - 2)  # first chunk ends at step 8; the second covers up to step 9
    assert core.tick().command[0] == pytest.approx(2.0)


def test_ensemble_chunks_offered_while_paused_stay_bounded() -> None:
    """While paused no chunk expires (the step stands still): a long-run audit (2026-12-07) stored 2000 chunks from a
    flood and averaged all of them at every tick after the resume. The store keeps at most 4 H + 4 (H + 1 overlap a
    step at most)."""
    core = make("ensemble")
    core.tick()
    core.offer_chunk(np.zeros((H, M)), seq=0, t_obs=1)
    core.tick()
    core.pause()
    for k in range(1, 200):
        core.offer_chunk(np.full((H, M), float(k)), seq=k, t_obs=1)
    assert len(core._ens._chunks) == 4 * H + 4


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="ensemble_decay"):  # exp(-inf * 0) would make every action NaN
        ExecutorConfig(horizon=H, action_dim=2, mode="ensemble", ensemble_decay=float("inf"))
    with pytest.raises(ValueError, match="lower"):
        ExecutorConfig(horizon=H, action_dim=2, lower=[1, 0], upper=[0, 1])
    with pytest.raises(ValueError, match="max_step"):
        ExecutorConfig(horizon=H, action_dim=2, max_step=0.0)
    with pytest.raises(ValueError, match="s must be"):
        ExecutorConfig(horizon=H, action_dim=2, mode="sync", s=H + 1)
    with pytest.raises(ValueError, match="2 values"):
        ExecutorConfig(horizon=H, action_dim=2, lower=[0, 0, 0])


def test_rolling_stats() -> None:
    r = RollingStats(3)
    assert r.summary() == {}
    for v in (1, 2, 3, 4):
        r.add(v)
    s = r.summary()
    assert s["max"] == 4 and s["p50"] == 3 and r.count == 4


# ------------------------------------------------------------------------------ inference loop
def report(step, seq=-1, takeover=-1, consumed=0):
    return ExecutorReport(step=step, seq=seq, takeover=takeover, consumed=consumed)


def test_loop_first_chunk_then_trigger_at_s_min() -> None:
    loop = InferenceLoopCore(horizon=H, s_min=4, buffer_size=2, method="rtc")
    assert loop.plan() is None  # no executor report yet
    loop.on_executor_report(report(4))
    p = loop.plan()
    assert p.t_obs == 5 and p.prev_remaining is None and p.seq == 0 and p.s == 0
    assert loop.plan() is None  # one inference at a time
    chunk = ramp(0.0)
    loop.on_published(p, chunk)
    loop.on_executor_report(report(6))
    assert loop.plan() is None  # waiting for the takeover
    # the executor took over at step 7, consuming d = 2 (index 2 = step 7)
    assert loop.on_executor_report(report(7, 0, 7, 2)) == 2
    assert loop.queue.forecast() == 2
    assert loop.plan() is None  # next index 3 < s_min
    loop.on_executor_report(report(8, 0, 7, 2))
    p2 = loop.plan()
    assert p2.t_obs == 9 and p2.s == 4 and p2.d == 2 and p2.seq == 1
    np.testing.assert_array_equal(p2.prev_remaining, chunk[4:])  # index 0 = step t_obs
    loop.on_failed(p2)
    assert loop.plan() is not None  # failed inference: plan again


def test_loop_methods_and_limits() -> None:
    dense = InferenceLoopCore(horizon=H, s_min=4, buffer_size=2, method="te_dense")
    assert dense.trigger_index == 1
    dense.on_executor_report(report(0))
    p = dense.plan()
    assert p.prev_remaining is None
    dense.on_published(p, ramp(0.0))
    dense.on_executor_report(report(2, 0, 2, 1))
    assert dense.plan() is not None and dense.plan() is None
    naive = InferenceLoopCore(horizon=H, s_min=2, buffer_size=2, method="naive")
    naive.on_executor_report(report(0))
    pn = naive.plan()
    naive.on_published(pn, ramp(0.0))
    naive.on_executor_report(report(3, 0, 2, 1))
    assert naive.plan().prev_remaining is None  # naive ignores the old chunk
    sync = InferenceLoopCore(horizon=H, s_min=3, buffer_size=2, method="sync")
    sync.on_executor_report(report(0))
    ps = sync.plan()
    assert ps.s == 3
    slow = InferenceLoopCore(horizon=H, s_min=3, buffer_size=2, method="sync", initial_delay=3 * H)
    slow.on_executor_report(report(0))
    pl = slow.plan()  # a model slower than a whole chunk: a longer pause, never a chunk too late (no warning)
    assert pl.d == H and pl.clamped_by == "" and slow.infeasible == 0


def test_loop_ack_timeout_seq_and_infeasible_delay() -> None:
    loop = InferenceLoopCore(horizon=H, s_min=2, buffer_size=3, method="rtc", initial_delay=7,
                             ack_timeout_steps=3)
    restarted = InferenceLoopCore(horizon=H, s_min=2, buffer_size=3, method="rtc", initial_delay=7)
    restarted.on_executor_report(ExecutorReport(step=20, seq=41, takeover=5, consumed=0, hold=True,
                                                command=np.full(M, 0.3)))
    r0 = restarted.plan()  # someone else's chunk (before a policy restart) ran out: guided toward the hold
    assert r0.seq == 42 and np.allclose(r0.prev_remaining, 0.3) and r0.prev_remaining.shape == (1, M)
    assert r0.s == 0 and r0.d == H - 2 and r0.clamped_by == "hold"  # at least s_min free actions follow
    loop.on_executor_report(report(10, seq=41, takeover=5, consumed=0))  # someone else's chunk, running:
    assert loop.plan() is None and loop.foreign_seq == 41  # its actions are unknown; wait for it to run out
    naive = InferenceLoopCore(horizon=H, s_min=2, buffer_size=3, method="naive", initial_delay=7)
    naive.on_executor_report(report(10, seq=41, takeover=5, consumed=0))
    assert naive.plan() is not None and naive.foreign_seq == -1  # no prefix: a method without one starts now
    def holding(step: int) -> ExecutorReport:  # it ran out: the robot holds
        return ExecutorReport(step=step, seq=41, takeover=5, consumed=0, hold=True, command=np.full(M, 0.3))

    loop.on_executor_report(holding(11))
    p = loop.plan()
    assert p.seq == 42 and np.allclose(p.prev_remaining, 0.3) and p.s == 0 and loop.foreign_seq == -1
    loop.on_published(p, ramp(0.0))
    loop.on_executor_report(holding(12))
    assert loop.plan() is None
    loop.on_executor_report(holding(15))  # never taken over
    assert loop.ready() and loop.lost == 1
    loop2 = InferenceLoopCore(horizon=H, s_min=2, buffer_size=3, method="rtc", initial_delay=7)
    loop2.on_executor_report(report(0))
    q = loop2.plan()
    loop2.on_published(q, ramp(0.0))
    loop2.on_executor_report(report(1, 0, 1, 0))
    loop2.on_executor_report(report(2, 0, 1, 0))
    q2 = loop2.plan()
    # Algorithm 1: Q = [d_init = 7, 0]; d_init counts until b = 3 delays have been observed. The executing
    # chunk has 6 actions left from t_obs, so the robot will hold its last one before this chunk takes over
    # at index 7: the target is known up to H (mask end H, s = 0); at most H - s_min = 6 actions are frozen
    # to it (an overestimated d would pin the whole chunk to the hold), counted and warned as infeasible
    assert q2.s == 0 and q2.d_raw == 7 and q2.d == H - 2 and q2.clamped_by == "hold" and loop2.infeasible == 1
    assert "H - s_min = 6" in clamp_warning(q2, H)
    assert np.allclose(q2.prev_remaining[:, 0], ramp(0.0)[2:, 0])  # padded with its last action by the sampler
    naive = InferenceLoopCore(horizon=H, s_min=2, buffer_size=3, method="naive", initial_delay=7)
    naive.on_executor_report(report(0))
    naive.on_published(naive.plan(), ramp(0.0))
    naive.on_executor_report(report(1, 0, 1, 0))
    naive.on_executor_report(report(2, 0, 1, 0))
    n2 = naive.plan()  # no prefix to guide toward: d is clamped to the executing chunk's remaining actions
    assert n2.s == 2 and n2.d == H - 2 and naive.infeasible == 1
    loop3 = InferenceLoopCore(horizon=H, s_min=5, buffer_size=3, method="rtc", initial_delay=7)
    loop3.on_executor_report(report(0))
    r = loop3.plan()
    loop3.on_published(r, ramp(0.0))
    assert loop3.on_executor_report(report(7, 0, 7, 6)) == 6  # a late chunk: d = 6 consumed
    r2 = loop3.plan()
    assert r2.s == 0 and r2.d_raw == 7 and r2.d == H - 5 and loop3.infeasible == 1  # runs out first: to H
    loop3.on_failed(r2)
    loop3.on_executor_report(ExecutorReport(step=10, seq=0, takeover=7, consumed=6, hold=True))  # ran out: holds
    r3 = loop3.plan()
    assert r3.s == 0 and r3.d == H - 5 and np.allclose(r3.prev_remaining[-1], ramp(0.0)[-1])


@pytest.mark.parametrize("mode", ["switch", "ensemble"])
def test_startup_chunk_starts_at_index_0_even_when_old(mode: str) -> None:
    """The robot held still while the first chunk was computed: it runs from its index 0 (reported
    consumed 0), also when it was observed H or more steps ago; later chunks switch at the consumed delay."""
    core = make(mode)
    run(core, H + 2)  # start-up holds: steps 0 .. H+1
    assert core.offer_chunk(ramp(100.0), seq=0, t_obs=0, d=1) == H + 2
    t = core.tick()
    assert t.command[0] == 100.0 and t.takeover == H + 2 and t.consumed == 0
    assert run(core, 1)[0].command[0] == 101.0
    with pytest.raises(ChunkRejected) as exc:  # no longer start-up: a chunk that old is stale
        core.offer_chunk(ramp(0.0), seq=1, t_obs=0)
    assert exc.value.reason == "stale"


@pytest.mark.parametrize("mode", ["switch", "sync", "ensemble"])
def test_resync_drops_chunks_remeasures_and_restarts_from_rest(mode: str) -> None:
    """After something else moved the robot: nothing of the old chunks is commanded, nothing is commanded
    before the new measured position, the executor stays paused there, chunks observed before the re-sync
    are refused (reason resync), and the next chunk is a start-up chunk (index 0) from the new position."""
    core = make(mode, s=4) if mode == "sync" else make(mode)
    core.offer_chunk(ramp(100.0), seq=0, t_obs=0)
    run(core, 3)
    k = core.resync()
    assert k == core.next_step == 4 and core.paused and not core.ready and core.stats.resyncs == 1
    assert core.tick() is None and core.next_step == 4  # no hold position yet: command nothing
    assert core.set_measured_position(np.full(M, 7.0))
    held = run(core, 3)
    assert all(t.hold and t.paused and t.step == 3 and np.allclose(t.command, 7.0) and t.seq == -1 for t in held)
    with pytest.raises(ChunkRejected) as exc:  # planned from before the move (step 3 was next when it moved)
        core.offer_chunk(ramp(300.0), seq=1, t_obs=3)
    assert exc.value.reason == "resync" and core.stats.rejects_by_reason["resync"] == 1
    assert core.resume()
    t = core.tick()
    assert t.hold and t.reason == HOLD_STARTUP and np.allclose(t.command, 7.0)  # still nothing to execute
    core.offer_chunk(ramp(7.0), seq=2, t_obs=4, d=1)  # observed after the re-sync, arrives at step 5
    t = core.tick()
    assert not t.hold and t.seq == 2 and np.allclose(t.command, 7.0)  # index 0: from rest
    assert t.consumed == (1 if mode == "sync" else 0)  # (sync reports the pause it waited through)
    assert np.allclose(core.tick().command, 8.0)


def test_seqs_start_afresh_after_a_resync() -> None:
    """A re-sync forgets the newest accepted seq (chunks planned before it are refused by t_obs anyway): a
    policy node restarted since, whose seqs start from the executor's report (-1 after a re-sync), is not
    refused as 'order' chunk after chunk (a review found it refused for as many inferences as the old seq)."""
    core = make()
    core.offer_chunk(ramp(0.0), seq=500, t_obs=0)
    run(core, 3)
    with pytest.raises(ChunkRejected, match="not newer") as exc:
        core.offer_chunk(ramp(0.0), seq=7, t_obs=3)
    assert exc.value.reason == "order"
    k = core.resync()
    assert core.set_measured_position(np.zeros(M)) and core.resume()
    assert core.tick().seq == -1  # what a restarted policy node sees: it numbers from 0
    core.offer_chunk(ramp(0.0), seq=0, t_obs=k)
    assert core.tick().seq == 0
    with pytest.raises(ChunkRejected) as exc:  # after it, order holds again
        core.offer_chunk(ramp(0.0), seq=0, t_obs=k + 1)
    assert exc.value.reason == "order"


def test_a_chunk_guided_toward_a_chunk_that_no_longer_executes_is_refused() -> None:
    """ChunkMeta.base: the chunk the guidance target came from. Chunk 2 was planned toward chunk 0, but chunk 1
    (one the policy side had counted lost) took over meanwhile: spliced into chunk 1, chunk 2 would jump."""
    from rtc_ros.runtime.contract import ChunkMeta

    core = make()
    core.offer_chunk(ramp(0.0), seq=0, t_obs=0)
    run(core, 5)
    core.offer_chunk(ramp(50.0), seq=1, t_obs=3, d=2)  # no base given: not checked
    core.tick()
    with pytest.raises(ChunkRejected, match="guided toward chunk seq 0, but seq 1 executes") as exc:
        core.offer_chunk(ramp(5.0), seq=2, t_obs=5, d=1, base=0)
    assert exc.value.reason == "base" and core.tick().seq == 1
    core.offer_chunk(ramp(60.0), seq=3, t_obs=6, d=1, base=1)  # toward what executes: accepted
    assert core.tick().seq == 3
    meta = ChunkMeta(4, 7, 1, 3, "rtc", base=3)
    assert ChunkMeta.decode(meta.encode()) == meta and "base=3" in meta.encode()
    assert "base" not in ChunkMeta(4, 7, 1, 3, "rtc").encode()  # plain: as before
    assert ChunkMeta.decode("rtc seq=4 t_obs=7 d=1 s=3 method=rtc").base == -1


def test_loop_after_executor_resync_plans_a_startup_chunk() -> None:
    """The executor re-synced while a chunk was in flight: nothing is planned while it is paused, the
    in-flight chunk's refusal (reason resync) does not enter Q, and the next plan is a start-up chunk
    (no prefix) from an observation after the re-sync."""
    core, loop = make(), InferenceLoopCore(horizon=H, s_min=4, buffer_size=2, method="rtc", initial_delay=2)

    def feed() -> None:
        t = core.tick()
        loop.on_executor_report(ExecutorReport(step=t.step, seq=t.seq, takeover=t.takeover, consumed=t.consumed,
                                               hold=t.hold, rejected_seq=t.rejected_seq,
                                               rejected_reason=t.rejected_reason, command=t.command, paused=t.paused))

    feed()
    p0 = loop.plan()
    loop.on_published(p0, ramp(0.0))
    core.offer_chunk(ramp(0.0), p0.seq, p0.t_obs, p0.d)
    for _ in range(5):
        feed()
    p1 = loop.plan()  # in flight while the robot is moved
    assert p1 is not None and p1.prev_remaining is not None
    core.resync()
    core.set_measured_position(np.full(M, 7.0))
    feed()
    with pytest.raises(ChunkRejected):
        core.offer_chunk(ramp(9.0), p1.seq, p1.t_obs, p1.d)
    loop.on_published(p1, ramp(9.0))
    feed()
    assert loop.plan() is None  # paused: nothing is planned
    assert loop.queue.forecast() == 2 and loop.rejected == 1  # the refusal is not a delay
    core.resume()
    feed()
    p2 = loop.plan()
    assert p2 is not None and p2.prev_remaining is None and p2.s == 0 and p2.t_obs == 8
    core.offer_chunk(ramp(7.0), p2.seq, p2.t_obs, p2.d)  # observed after the re-sync: accepted


def test_stop_recovery_holds_the_stopped_joints_where_the_stop_holds_them_and_restarts_from_there() -> None:
    """A protective stop holds joint 0 at 1.5 (where the arm stood when it tripped) while the executor had
    already commanded 2: the executor drops its chunk and holds, paused -- the stopped joint at 1.5, the
    others at their last command (2: the other arm stays put). When the stop ends (reported late or not)
    its command is where the arm stands, and it restarts with a start-up chunk observed after the stop.
    Without the rule the first command after the stop is the chunk's next action, far from the held arm;
    holding only the last command would re-send the command that tripped the stop."""
    from rtc_ros.runtime.stop_recovery import STOP_BEGAN, STOP_ENDED, StopRecovery

    def stop_scenario(recover: bool) -> tuple[ExecutorCore, np.ndarray]:
        core, rec = ExecutorCore(ExecutorConfig(horizon=40, action_dim=M)), StopRecovery()
        assert core.set_measured_position(np.zeros(M))
        core.offer_chunk(ramp(0.0, horizon=40), seq=0, t_obs=0)
        run(core, 3)  # commanded 0, 1, 2 -- the stop trips on 2: joint 0 held at 1.5 for 20 ticks
        if recover:
            assert rec.update({}, core) is None
            assert rec.update({0: 1.5}, core) == STOP_BEGAN and core.paused and core.ready
        for _ in range(20):
            t = core.tick()
            if recover:
                assert t.hold and t.paused and np.allclose(t.command, [1.5, 2.0, 2.0])
                assert rec.update({0: 1.5}, core) is None
        if recover:
            with pytest.raises(ChunkRejected) as exc:  # computed from before the stop
                core.offer_chunk(ramp(50.0, horizon=40), seq=1, t_obs=2)
            assert exc.value.reason == "resync"
            assert rec.update({}, core) == STOP_ENDED and not core.paused and core.ready
            assert rec.stops == rec.recoveries == 1 and core.stats.resyncs == 2
        return core, core.tick().command

    core, first = stop_scenario(recover=False)
    assert np.allclose(first, 23.0)  # the executor kept stepping: the arm (at 2) would be told 23
    core, first = stop_scenario(recover=True)
    assert np.allclose(first, [1.5, 2.0, 2.0])  # where the arms stand, waiting for a start-up chunk
    core.offer_chunk(ramp(2.0, horizon=40), seq=2, t_obs=core.next_step - 1)
    t = core.tick()
    assert not t.hold and t.consumed == 0  # index 0 of a chunk observed after the stop


def test_stop_recovery_follows_changes_in_what_is_held_and_ignores_invalid_holds() -> None:
    """The other arm stops too during a stop: its joints are held where that stop holds them. A hold
    outside the executor's joints or not finite changes nothing; nothing is held before a first command."""
    from rtc_ros.runtime.stop_recovery import StopRecovery

    core, rec = make(), StopRecovery()
    core.offer_chunk(ramp(3.0), seq=0, t_obs=0)
    run(core, 2)  # commanded 3, 4
    rec.update({0: 3.5}, core)
    assert np.allclose(core.tick().command, [3.5, 4.0, 4.0])
    assert rec.update({0: 3.5, 2: 3.8}, core) is None and np.allclose(core.tick().command, [3.5, 4.0, 3.8])
    assert not core.hold_joints({M: 1.0}) and not core.hold_joints({1: float("nan")})
    assert np.allclose(core.tick().command, [3.5, 4.0, 3.8])
    # with joint limits: a report beyond them by more than max_step is not where a joint stands (degrees
    # for radians, names mapped wrongly) and is refused as a whole; up to max_step beyond is held
    lim = make(lower=[-1.0] * M, upper=[1.0] * M, max_step=0.1)
    lim.resync(keep_hold=True)
    assert implausible_holds(lim.cfg, {0: 0.5, 1: 1.1, 2: -1.1}) == {}
    assert implausible_holds(lim.cfg, {0: 0.5, 1: 57.3, 2: -1.2, M: 0.0}) == {1: 57.3, 2: -1.2, M: 0.0}
    assert not lim.hold_joints({1: 57.3}) and np.allclose(lim.tick().command, 0.0)
    assert lim.hold_joints({0: 0.5, 1: 57.3}) and np.allclose(lim.tick().command, [0.5, 0.0, 0.0])
    assert lim.hold_joints({0: 0.5, 1: 1.1}) and np.allclose(lim.tick().command, [0.5, 1.1, 0.0])
    # a report whose every position is implausible is still a stop: recognised, nothing commanded from it
    from rtc_ros.runtime.stop_recovery import STOP_BEGAN, StopRecovery

    run_core = make(lower=[-1.0] * M, upper=[1.0] * M, max_step=0.1)
    run_core.offer_chunk(np.full((H, M), 0.05), seq=0, t_obs=0)
    run_core.tick()
    rec = StopRecovery()
    assert rec.update({0: 28.6}, run_core) == STOP_BEGAN and run_core.paused
    assert rec.update({0: 28.6, 1: 57.3}, run_core) is None and run_core.paused  # not read as its end
    assert np.allclose(run_core.tick().command, 0.05)
    core.resume()
    assert not core.hold_joints({1: 0.0})  # only while paused (a re-sync's hold), never mid-chunk
    fresh = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M))
    fresh.pause()
    assert not fresh.hold_joints({0: 1.0}) and not fresh.ready


def test_unreadable_stop_report_is_a_stop_of_every_joint() -> None:
    """stopped=True with nothing held (a report naming none of the executor's joints, or malformed): the
    executor re-syncs and holds every joint at its last command until a report says nothing is stopped; a
    readable report meanwhile holds its joints; without ``stopped`` an empty report is no stop (as before)."""
    from rtc_ros.runtime.stop_recovery import STOP_BEGAN, STOP_ENDED, StopRecovery

    core, rec = make(), StopRecovery()
    core.offer_chunk(ramp(3.0), seq=0, t_obs=0)
    run(core, 2)  # commanded 3, 4
    assert rec.update({}, core) is None and not core.paused  # nothing reported
    assert rec.update({}, core, stopped=True) == STOP_BEGAN and core.paused and rec.stopped
    assert [t.command.tolist() for t in run(core, 3)] == [[4.0] * M] * 3  # every joint at its last command
    assert rec.update({1: 3.9}, core, stopped=True) is None and np.allclose(core.tick().command, [4.0, 3.9, 4.0])
    assert rec.update({}, core, stopped=True) is None and core.paused  # still unreadable: still stopped
    assert rec.update({}, core, stopped=False) == STOP_ENDED and not core.paused and rec.recoveries == 1


def test_stop_recovery_operator_requests_and_foreign_resyncs() -> None:
    """Paused before the stop: stays paused. An operator's pause / resume during the stop is applied when it
    ends (the executor holds meanwhile). Someone else's re-sync during the stop (an episode reset): re-synced
    again at the end but left to them to resume -- unless they already resumed it, which is kept. The
    non-stopped arm keeps its last command during the stop."""
    from rtc_ros.runtime.stop_recovery import StopRecovery

    stop = {0: 0.0}
    core, rec = make(), StopRecovery()
    core.pause()
    rec.update(stop, core)
    rec.update({}, core)
    assert core.paused  # paused before the stop: stays paused
    core, rec = make(), StopRecovery()
    core.offer_chunk(ramp(3.0), seq=0, t_obs=0)
    run(core, 2)
    assert not rec.request(resume=False)  # not stopped: nothing to do (the node pauses as usual)
    rec.update({0: 3.5}, core)
    assert np.allclose(core.tick().command, [3.5, 4.0, 4.0])  # a squeezing gripper (joint 2) keeps squeezing
    assert rec.request(resume=False)  # an operator pauses during the stop
    rec.update({}, core)
    assert core.paused
    core, rec = make(), StopRecovery()
    core.pause()
    rec.update(stop, core)
    assert rec.request(resume=True) and core.paused  # resume asked during the stop: held until it ends
    rec.update({}, core)
    assert not core.paused
    core, rec = make(), StopRecovery()
    rec.update(stop, core)
    core.resync()  # e.g. an episode reset during the stop: whoever re-synced resumes
    assert rec.update({}, core) is not None and core.paused and core.stats.resyncs == 3 and not core.ready
    core, rec = make(), StopRecovery()
    rec.update(stop, core)
    core.resync()
    core.set_measured_position(np.zeros(M))
    core.resume()  # ... and already resumed it: kept running, from that fresh measurement
    rec.update({}, core)
    assert not core.paused and core.ready and np.allclose(core.tick().command, 0.0) and core.stats.resyncs == 3


@pytest.mark.parametrize("mode", ["switch", "sync", "ensemble"])
def test_startup_ramp_blends_a_startup_chunk_in_from_the_hold_and_nothing_else(mode: str) -> None:
    """startup_ramp = K: the first K ticks of a start-up chunk (after start or a re-sync) command
    hold + w_i (a_i - hold) with the minimum-jerk weight w; from tick K - 1 on the chunk itself; a later
    chunk's splice is not ramped; 0 = off (the chunk at once)."""
    K = 4

    def w(i: int) -> float:
        x = min((i + 1) / K, 1.0)
        return x ** 3 * (10 - 15 * x + 6 * x ** 2)

    kw = {"s": 4} if mode == "sync" else {}
    core = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M, mode=mode, startup_ramp=K, **kw))
    core.set_measured_position(np.full(M, 5.0))
    core.offer_chunk(ramp(10.0), seq=0, t_obs=0)
    n = K if mode == "sync" else K + 2  # (sync pauses after s = 4 actions)
    got = [t.command[0] for t in run(core, n)]
    want = [5.0 + w(i) * (10.0 + i - 5.0) for i in range(n)]
    assert np.allclose(got, want) and got[K - 1] == 10.0 + K - 1
    assert all(b > a for a, b in zip(got, got[1:]))  # no overshoot back and forth
    if mode == "switch":  # a later chunk's splice: at once (RTC's own business)
        core.offer_chunk(ramp(40.0), seq=1, t_obs=core.next_step - 1)
        assert core.tick().command[0] == 41.0
    core.resync()  # e.g. after a protective stop: the next start-up chunk is ramped again
    core.set_measured_position(np.full(M, 7.0))
    core.resume()
    core.offer_chunk(ramp(20.0), seq=5, t_obs=core.next_step)
    again = [t.command[0] for t in run(core, K)]
    assert np.allclose(again, [7.0 + w(i) * (20.0 + i - 7.0) for i in range(K)])
    if mode != "sync":  # another chunk takes over during the ramp: switch mode ends it, ensemble ramps on
        early = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M, mode=mode, startup_ramp=K))
        early.set_measured_position(np.full(M, 5.0))
        early.offer_chunk(ramp(10.0), seq=0, t_obs=0)
        run(early, 1)
        early.offer_chunk(ramp(30.0), seq=1, t_obs=0)
        t = early.tick()
        assert t.command[0] == (31.0 if mode == "switch" else 5.0 + w(1) * ((11.0 + 31.0) / 2 - 5.0))
    off = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M, mode=mode, **kw))
    off.set_measured_position(np.full(M, 5.0))
    off.offer_chunk(ramp(10.0), seq=0, t_obs=0)
    assert off.tick().command[0] == 10.0
    with pytest.raises(ValueError, match="startup_ramp"):
        ExecutorConfig(horizon=H, action_dim=M, startup_ramp=H + 1)


def test_silent_startup_keeps_measuring_until_a_chunk_is_commanded() -> None:
    """``startup_silent`` (``startup_command: none``): the start-up holds are not sent, the arm may move while
    the policy warms up (another controller, a homing move), and the first command is rate-limited from where
    the arm is then, not from where it was at start (before: a 0.45 rad first step with max_step 0.05)."""
    core = make(max_step=0.05, startup_silent=True)
    run(core, 100)  # two seconds of silent start-up holds
    assert core.measuring and core.set_measured_position(np.full(M, 0.5))  # the arm is at 0.5 now
    core.offer_chunk(np.full((H, M), 0.5), seq=0, t_obs=core.next_step)
    t = core.tick()
    assert not t.hold and np.allclose(t.command, 0.5)
    assert not core.measuring and not core.set_measured_position(np.zeros(M))  # commanded: the base is fixed
    loud = make(max_step=0.05)  # start-up holds sent to the robot: they are commands, the base is fixed
    run(loud, 1)
    assert not loud.measuring and not loud.set_measured_position(np.full(M, 0.5))


def test_a_commanded_hold_resync_is_sent_even_with_silent_startup() -> None:
    """``resync(command_hold=True)`` (the executor's ``~/hold``: the arm does not follow): with ``startup_silent``
    the measured hold is commanded all the same (the controllers must not keep the command the arm could not
    follow), from the first measurement on (the base is fixed); a plain re-sync stays silent as before."""
    core = make(max_step=0.05, startup_silent=True)
    core.offer_chunk(ramp(0.0), seq=0, t_obs=0)
    run(core, 3)
    core.resync()
    assert core.tick() is None and core.set_measured_position(np.full(M, 0.3))
    assert all(t.silent and t.paused for t in run(core, 3))  # quiet: another controller may be moving it
    core.resync(command_hold=True)
    assert core.set_measured_position(np.full(M, 0.7))
    held = run(core, 3)
    assert all(not t.silent and t.paused and t.hold and np.allclose(t.command, 0.7) for t in held)
    assert not core.set_measured_position(np.zeros(M))  # commanded: the hold stays where it was measured
    assert core.resume() and not core.tick().silent  # resumed before a chunk: still commanding the hold
    core.resync()  # the next plain re-sync is silent again
    core.set_measured_position(np.zeros(M))
    assert core.tick().silent


def test_an_enabling_device_holds_while_released_and_drops_every_plan_when_pressed_again() -> None:
    """set_enabled(False) (the executor's enable_topic released or silent): every tick holds (reason
    'disabled'), reported paused, the step counter stands, an operator's resume does not move it; every
    chunk is dropped at the release (one observed before it is refused, reason 'resync') and whatever arrived
    while released is dropped at the press: the next chunk is a start-up chunk from index 0. An operator's
    pause is kept across it."""
    core = make()
    core.offer_chunk(ramp(0.0), seq=0, t_obs=0)
    run(core, 3)
    assert core.set_enabled(False) and not core.set_enabled(False) and not core.enabled
    assert core.executing_seq == -1
    held = run(core, 5)
    assert all(t.paused and t.hold and t.reason == "disabled" and np.allclose(t.command, 2.0) for t in held)
    assert len({t.step for t in held}) == 1 and core.stats.holds_by_reason["disabled"] == 5
    assert not core.resume()  # not an operator's pause: nothing to resume, still held
    assert core.tick().paused
    with pytest.raises(ChunkRejected) as err:
        core.offer_chunk(ramp(200.0), seq=1, t_obs=2)  # observed before the release
    assert err.value.reason == "resync"
    core.offer_chunk(ramp(100.0), seq=2, t_obs=core.next_step)  # observed while released: never executed
    assert core.set_enabled(True) and core.executing_seq == -1
    t = core.tick()
    assert not t.paused and t.hold and t.reason == HOLD_STARTUP and np.allclose(t.command, 2.0)
    core.offer_chunk(ramp(300.0), seq=3, t_obs=t.step)
    assert core.tick().command[0] == 300.0  # a start-up chunk: its index 0
    core.pause()
    core.set_enabled(False)
    core.set_enabled(True)
    assert core.paused and core.tick().paused  # the operator's pause is kept
    quiet = make(startup_silent=True)
    quiet.set_enabled(False)  # released from the start: nothing is sent
    assert all(t.silent and t.paused for t in run(quiet, 3))


def test_an_arm_moved_while_released_is_held_where_it_stands_after_the_press() -> None:
    """moved_while_released (the first joint state after a press): within max_step of the held command nothing
    changes; farther on some joint the executor re-syncs to the measured position, commanded at once even with
    startup_silent (the controllers still hold the old command), chunks dropped, resets + 1; beyond the limits
    it holds nothing and pauses; a joint still braking (max_accel) is a lag, not a move."""
    core = make(startup_silent=True, max_step=0.1, lower=np.full(M, -3.0), upper=np.full(M, 3.0))
    core.offer_chunk(np.full((H, M), 0.05), seq=0, t_obs=core.next_step)
    assert np.allclose(core.tick().command, 0.05)
    core.set_enabled(False)
    run(core, 3)
    core.set_enabled(True)
    resets = core.stats.resets
    assert core.moved_while_released(np.full(M, 0.12)) == []  # 0.07 off: it held (a sag within max_step)
    assert core.stats.resets == resets and np.allclose(core.tick().command, 0.05)
    core.offer_chunk(np.full((H, M), 0.05), seq=1, t_obs=core.next_step)
    core.set_enabled(False)
    core.set_enabled(True)
    moved = np.array([0.05, 0.6] + [0.05] * (M - 2))  # pushed by hand while the drives were off
    assert core.moved_while_released(moved) == [1] and core.stats.resets == resets + 1
    t = core.tick()
    assert t.hold and not t.silent and np.allclose(t.command, moved)  # commanded where it stands, loud
    assert np.array_equal(core.tracking_reference(), moved)
    with pytest.raises(ChunkRejected):  # observed before the re-sync
        core.offer_chunk(np.full((H, M), 0.05), seq=2, t_obs=t.step - 1)
    core.set_enabled(False)
    core.set_enabled(True)
    assert core.moved_while_released(np.full(M, 50.0)) and not core.ready and core.paused  # beyond the limits
    assert core.tick() is None
    late = make(max_step=0.1)  # the measurement came after a chunk took over: its lag is no move
    late.set_enabled(False)
    late.set_enabled(True)
    late.offer_chunk(np.full((H, M), 0.05), seq=0, t_obs=late.next_step)
    late.tick()
    assert late.moved_while_released(np.full(M, 0.5)) == []
    silent = make(startup_silent=True, max_step=0.1)  # nothing commanded yet: the hold follows measurements anyway
    silent.set_enabled(False)
    silent.set_enabled(True)
    assert silent.moved_while_released(np.full(M, 0.5)) == [] and silent.tick().silent
    braking = make(max_step=0.1, max_accel=0.001)
    braking.offer_chunk(np.cumsum(np.full((H, M), 0.05), axis=0), seq=0, t_obs=braking.next_step)
    run(braking, 5)
    braking.set_enabled(False)
    braking.tick()
    braking.set_enabled(True)
    assert braking.moved_while_released(np.full(M, 5.0)) == []  # still braking: the lag of a moving arm
    resting = make(max_step=0.1, max_accel=100.0)  # max_accel configured, the arm at rest: checked as without it
    resting.set_measured_position(np.zeros(M))
    resting.tick()
    resting.set_enabled(False)
    resting.tick()
    resting.set_enabled(True)
    assert resting.moved_while_released(np.array([0.0, 0.75] + [0.0] * (M - 2))) == [1]


def test_enable_gate_rule() -> None:
    """EnableGate: never heard / released / silent longer than timeout_s -> not enabled, with the reason."""
    from rtc_ros.runtime.enable_gate import EnableGate

    g = EnableGate(0.2)
    assert not g.enabled(0.0) and g.why(0.0) == "never heard"
    g.on_message(True, 1.0)
    assert g.enabled(1.0) and g.enabled(1.2)
    assert not g.enabled(1.21) and g.why(1.3).startswith("silent for 0.30 s")
    g.timeout_s = 0.5  # run-time set
    assert g.enabled(1.3)
    g.on_message(False, 1.4)
    assert not g.enabled(1.4) and g.why(1.4) == "released"
    g.on_message(True, 1.41)  # pressed again before the next tick: that tick still sees a release
    assert not g.sample(1.42) and g.why(1.42) == "released" and g.sample(1.44)


def test_a_protective_stop_keeps_a_commanded_hold() -> None:
    """~/hold (resync(command_hold=True)) and a protective stop before the next measurement (StopRecovery's
    resync(keep_hold=True) at its start and end): the hold is still commanded with startup_silent; a plain
    re-sync afterwards is silent again."""
    from rtc_ros.runtime.stop_recovery import StopRecovery

    core = make(max_step=0.05, startup_silent=True)
    core.offer_chunk(ramp(0.0), seq=0, t_obs=0)
    run(core, 3)
    core.resync(command_hold=True)
    rec = StopRecovery()
    rec.update({0: 0.1}, core)  # the stop begins before a joint state came
    rec.update({}, core)  # ... and ends
    assert core.set_measured_position(np.full(M, 0.2))
    assert all(not t.silent and np.allclose(t.command, 0.2) for t in run(core, 3))
    core.resync()
    core.set_measured_position(np.zeros(M))
    assert core.tick().silent


def test_muted_while_another_node_commands_the_robot() -> None:
    """set_muted(True) (another publisher on the outputs): re-synced, every tick silent and paused, resume
    refused even by a hold command's re-sync; set_muted(False) re-syncs again, paused unless resume=True."""
    core = make(lower=[-100.0] * M, upper=[100.0] * M, max_step=100.0)
    core.offer_chunk(ramp(10.0), seq=0, t_obs=core.next_step, d=0, s=0)
    assert not run(core, 3)[-1].hold
    core.set_muted(True)
    assert core.executing_seq == -1 and core.paused and core.tick() is None  # measured again first
    assert core.set_measured_position(np.full(M, 5.0))
    ticks = run(core, 3)
    assert all(t.silent and t.hold and t.paused for t in ticks)
    assert not core.resume() and core.paused
    core.resync(command_hold=True)  # ~/hold while muted: still nothing sent
    core.set_measured_position(np.full(M, 5.0))
    assert core.tick().silent
    core.set_muted(False)
    assert core.tick() is None and core.set_measured_position(np.full(M, 6.0))
    assert core.paused and core.tick().paused and core.resume()  # had commanded: the operator resumes
    core.set_muted(True)
    core.set_muted(False, resume=True)
    core.set_measured_position(np.full(M, 7.0))
    assert not core.paused and core.tick().reason == "startup"  # never commanded: as after a start


def test_the_pause_reason_is_what_paused_it_last() -> None:
    """pause_reason (said in the executor's diagnostics: one generic line could not tell an operator's pause from a
    watchdog trip, a walkthrough found): the first pause's reason stays while paused; a re-sync, a stop or a
    measurement beyond the limits sets its own."""
    from rtc_ros.runtime.stop_recovery import StopRecovery

    core = make(lower=np.full(M, -1.0), upper=np.full(M, 1.0), max_step=0.1)
    assert core.pause("start_paused") and core.pause_reason == "start_paused"
    assert not core.pause() and core.pause_reason == "start_paused"  # already paused: kept
    core.resume()
    core.resync(why="a tracking-watchdog trip")
    assert core.paused and core.pause_reason == "a tracking-watchdog trip"
    assert not core.set_measured_position(np.full(M, 5.0)) and core.pause_reason == "a measurement beyond the joint limits"
    other, rec = make(), StopRecovery()
    rec.update({0: 0.0}, other)
    assert other.paused and other.pause_reason == "a protective stop"
    rec.update({}, other)  # ended, nothing else paused it: resumed
    assert not other.paused
    other.pause("start_paused")
    rec.update({0: 0.0}, other)
    rec.update({}, other)  # paused before the stop: still, and said so
    assert other.paused and other.pause_reason == "start_paused"
    other.resume()
    rec.update({0: 0.0}, other)
    rec.request(False)  # an operator's pause during the stop
    rec.update({}, other)
    assert other.paused and other.pause_reason == "~/pause"
    other.resume()
    rec.update({0: 0.0}, other)
    other.resync(why="~/resync")  # an episode reset during the stop
    rec.update({}, other)
    assert other.paused and other.pause_reason == "~/resync"


def test_a_hold_keeps_a_squeezing_gripper_s_command() -> None:
    """hold_keeps (grippers; chunk_executor: joints named *gripper): a gripper squeezing an object measures its
    opening, not its command. ~/hold and a tracking-watchdog trip (resync with command_hold) commanded that opening
    at once (a chaos walkthrough: 0.001 -> 0.595 in one tick, 4x its max_step, the cube dropped and a protective
    stop); they keep its last command now. ~/resync (a scene reset) still measures it, and so does a protective stop
    (its report says where it holds the gripper: torque off, it let go; commanding the old squeeze would jump at the
    stop's end). A deadman press whose joint state shows only the squeeze saw a move and loosened it; a real move
    re-syncs every joint to the measurement, as before (the drives may have been cut)."""
    from rtc_ros.runtime.stop_recovery import StopRecovery

    keeps = np.array([False, False, True])  # joint 2: the gripper
    squeeze = np.array([0.5, 0.5, 0.05])  # the command: the gripper closed to 0.05 ...
    measured = np.array([0.52, 0.48, 0.6])  # ... measures 0.6 (the object between its fingers)

    def holding(**kw) -> ExecutorCore:
        core = make(hold_keeps=keeps, max_step=0.1, startup_silent=True, **kw)
        core.offer_chunk(np.tile(squeeze, (H, 1)), seq=0, t_obs=0)
        assert np.allclose(core.tick().command, [0.1, 0.1, 0.05])  # (walked from 0 at max_step: then held)
        run(core, 6)
        assert np.allclose(core.tick().command, squeeze)
        return core

    core = holding()
    core.resync(command_hold=True, why="~/hold")  # (the node then gives the next joint state)
    assert core.set_measured_position(measured)
    assert core.set_measured_position(measured + 0.001)  # a 500 Hz driver: more before the tick (a walkthrough:
    # the second one let the squeeze go, 0.796 -> 0.400 on a Robotiq) ...
    assert core.set_measured_position(measured)  # ... every one keeps the gripper's command
    t = core.tick()
    assert np.allclose(t.command, [0.52, 0.48, 0.05]) and not t.silent  # the arm where it stands, the grip kept
    core.resync(command_hold=True, why="~/hold")  # twice before a measurement: still the command sent
    core.resync(command_hold=True, why="~/hold")
    assert core.set_measured_position(measured) and np.allclose(core.tick().command, [0.52, 0.48, 0.05])
    reset = holding()
    reset.resync(why="~/resync")  # a scene reset: the gripper may have been opened by the reset
    assert reset.set_measured_position(measured) and np.allclose(reset.tick().command, measured)
    plain = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M, max_step=0.1))  # no hold_keeps: the measurement
    plain.set_measured_position(np.zeros(M))
    plain.offer_chunk(np.tile(squeeze, (H, 1)), seq=0, t_obs=0)
    run(plain, 8)
    plain.resync(command_hold=True)
    assert plain.set_measured_position(measured) and np.allclose(plain.tick().command, measured)
    stop, rec = holding(), StopRecovery()  # a protective stop: where its report holds every joint
    rec.update(dict(enumerate(measured)), stop)
    assert np.allclose(stop.tick().command, measured)
    press = holding()  # a deadman press
    press.set_enabled(False)
    press.set_enabled(True)
    assert press.moved_while_released(np.array([0.5, 0.5, 0.6])) == []  # the squeeze only: no move
    at_release = np.array([0.5, 0.5, 0.6])  # (measured after the release: squeezing then too)
    assert press.moved_while_released(np.array([0.5, 0.5, 0.6]), at_release) == []
    assert press.moved_while_released(np.array([0.5, 0.5, 0.95]), at_release) == [2]  # it fell open: measured
    assert np.allclose(press.tick().command, [0.5, 0.5, 0.95])
    press = holding()
    press.set_enabled(False)
    press.set_enabled(True)
    assert press.moved_while_released(np.array([0.9, 0.5, 0.6])) == [0]  # an arm joint moved: all measured
    assert np.allclose(press.tick().command, [0.9, 0.5, 0.6])
    hold_then_stop, rec = holding(), StopRecovery()  # ~/hold, and a stop (a collision) before the measurement:
    hold_then_stop.resync(command_hold=True, why="~/hold")  # the stop's report holds the gripper where it is
    rec.update(dict(enumerate(measured)), hold_then_stop)
    assert hold_then_stop.set_measured_position(measured) and np.allclose(hold_then_stop.tick().command, measured)
    with pytest.raises(ValueError, match="hold_keeps must have one entry per joint"):
        ExecutorConfig(horizon=H, action_dim=M, hold_keeps=np.ones(2, bool))


def test_a_one_arm_stop_forgets_only_its_own_grippers_kept_command() -> None:
    """Two arms (joint, gripper each), both grippers squeezing (command 0.05, measured 0.6). A stop of the left arm
    around a ~/hold forgets the left gripper's kept squeeze (the stop holds it torque-off, where it is) and keeps the
    right one's (a review: every kept command was forgotten, and the right gripper, never stopped, let go). A gripper
    still closing at the release that settles on its object after it is no move (a review: it was)."""
    from rtc_ros.runtime.stop_recovery import StopRecovery

    keeps = np.array([False, True, False, True])
    squeeze, measured = np.array([0.5, 0.05, 0.5, 0.05]), np.array([0.52, 0.6, 0.48, 0.6])

    def holding() -> ExecutorCore:
        core = ExecutorCore(ExecutorConfig(horizon=H, action_dim=4, hold_keeps=keeps, max_step=0.1))
        core.set_measured_position(squeeze)
        core.offer_chunk(np.tile(squeeze, (H, 1)), seq=0, t_obs=0)
        run(core, 3)
        return core

    core, rec = holding(), StopRecovery()
    core.resync(command_hold=True, why="~/hold")
    rec.update({0: 0.52, 1: 0.6}, core)  # the left arm stops before the measurement comes
    assert core.set_measured_position(measured)
    assert np.allclose(core.tick().command, [0.52, 0.6, 0.48, 0.05])
    core, rec = holding(), StopRecovery()
    rec.update({0: 0.52, 1: 0.6}, core)  # a stop, a ~/hold during it, the stop's end before the measurement
    core.resync(command_hold=True, why="~/hold")
    rec.update({}, core)
    assert core.set_measured_position(measured)
    assert np.allclose(core.tick().command, [0.52, 0.6, 0.48, 0.05])
    press = holding()
    press.set_enabled(False)
    press.set_enabled(True)
    closing = np.array([0.5, 0.75, 0.5, 0.05])  # the left gripper was still closing when released ...
    assert press.moved_while_released(np.array([0.5, 0.6, 0.5, 0.05]), closing) == []  # ... and settled: no move
    assert press.moved_while_released(np.array([0.5, 0.9, 0.5, 0.05]), closing) == [1]  # it fell open: a move


def test_reports_count_operator_pauses() -> None:
    """``~/pause`` / ``~/hold`` calls are counted (count_operator_pause) and carried in every report as ``pauses``,
    optional when parsing (-1: an older executor)."""
    core = ExecutorCore(ExecutorConfig(horizon=4, action_dim=2))
    core.set_measured_position(np.zeros(2))
    assert core.tick().report().operator_pauses == 0
    core.count_operator_pause()
    core.count_operator_pause()
    rep = core.tick().report()
    assert rep.operator_pauses == 2 and "pauses=2" in rep.encode()
    assert ExecutorReport.decode(rep.encode()).operator_pauses == 2
    assert ExecutorReport.decode("rtc step=1 seq=-1 takeover=-1 consumed=0 hold=1").operator_pauses == -1
    assert "pauses" not in ExecutorReport(step=1, seq=-1, takeover=-1, consumed=0).encode()


def test_a_start_up_chunk_before_any_hold_position_is_refused_with_max_start_gap() -> None:
    """An audit: max_start_gap was checked only against a known hold, so a start-up chunk (in degrees, on a radian
    arm) offered before the first measurement, after a re-sync or after a measurement beyond the limits was accepted
    and walked the arm toward it at max_step. With max_start_gap on it is refused then (the policy side plans from
    the executor's reports, which start with the hold: no chunk is lost); off, accepted as before."""
    degrees = np.tile([29.8, -5.7], (10, 1))
    for gap in (1.0, 0.0):
        core = ExecutorCore(ExecutorConfig(horizon=10, action_dim=2, max_step=0.05, lower=[-3.0] * 2,
                                           upper=[3.0] * 2), max_start_gap=gap)
        if gap:
            with pytest.raises(ChunkRejected, match="no hold position yet") as exc:
                core.offer_chunk(degrees, seq=0, t_obs=0)
            assert exc.value.reason == "start_gap"
            core.set_measured_position(np.array([0.52, -0.1]))
            core.tick()
            core.resync()  # the hold is measured again: none until then
            with pytest.raises(ChunkRejected, match="no hold position yet"):
                core.offer_chunk(degrees, seq=1, t_obs=core.next_step)
        else:
            core.offer_chunk(degrees, seq=0, t_obs=0)


def test_metadata_integers_are_ascii_digits_only() -> None:
    """An audit: Python's int() took '1_000', '+7' and Arabic-Indic digits in a chunk's metadata, which no other
    reader of the contract (a C++ node, a bag tool) would read the same way: refused, naming the field."""
    from rtc_ros.runtime.contract import ChunkMeta

    assert ChunkMeta.decode("rtc seq=12 t_obs=7 d=1 s=0 method=rtc").seq == 12
    for field, value in (("seq", "1_000"), ("t_obs", "+7"), ("d", "\u0663"), ("seq", "0x5")):
        fields = {"seq": "1", "t_obs": "7", "d": "1", "s": "0", field: value}
        text = "rtc " + " ".join(f"{k}={v}" for k, v in fields.items()) + " method=rtc"
        with pytest.raises(ValueError, match=f"field '{field}'"):
            ChunkMeta.decode(text)
    assert ExecutorReport.decode("rtc step=-1 seq=-1 takeover=-1 consumed=0 hold=1").step == -1  # (negative: fine)
