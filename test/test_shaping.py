"""ROS-free tests of the executor's acceleration limit (``max_accel``, :mod:`rtc_ros.runtime.shaping`)."""

from __future__ import annotations

import numpy as np
import pytest

from rtc_ros.runtime.executor import HOLD_STARVED, ExecutorConfig, ExecutorCore
from rtc_ros.runtime.shaping import AccelLimiter, braking_step

H, M = 50, 2
A = 0.004  # rad/tick^2 (10 rad/s^2 at 50 Hz)


def braking_distance(rho: float, a: float) -> float:
    """rho + (rho - a) + (rho - 2a) + ... while positive: the distance of a joint braking from step rho."""
    total = 0.0
    while rho > 0:
        total, rho = total + rho, rho - a
    return total


def accel(commands: list[np.ndarray]) -> np.ndarray:
    """Second differences of consecutive commands (T - 2, M)."""
    return np.diff(np.asarray(commands), n=2, axis=0)


def core(max_accel=A, mode: str = "switch", **kw) -> ExecutorCore:
    c = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M, mode=mode, max_step=0.06, max_accel=max_accel, **kw))
    assert c.set_measured_position(np.zeros(M))
    return c


def moving_chunk(start_step: int, speed: float, offset: float = 0.0) -> np.ndarray:
    """A chunk whose joints move at ``speed`` rad/tick from rest at step 0 (accelerating at A / 2 first)."""
    t = start_step + np.arange(H, dtype=float)
    ramp_ticks = speed / (A / 2)
    pos = np.where(t < ramp_ticks, A / 4 * t ** 2, speed * (t - ramp_ticks / 2))
    return (pos + offset)[:, None] * np.ones((1, M))


@pytest.mark.parametrize("a", [1e-4, 0.004, 0.03])
def test_braking_step_is_the_largest_step_that_stops_within_the_gap(a: float) -> None:
    rng = np.random.default_rng(0)
    gaps = np.concatenate([[0.0, a, 3 * a, 6 * a], rng.uniform(0, 2.0, 300), rng.uniform(0, 5 * a, 300)])
    rho = braking_step(gaps, np.full_like(gaps, a))
    for g, r in zip(gaps, rho):
        assert braking_distance(r, a) <= g + 1e-12
        assert braking_distance(r + 1e-6, a) > g - 1e-9  # a larger step would pass the target
    assert braking_step(np.zeros(1), np.ones(1))[0] == 0.0


def test_a_smooth_chunk_passes_unchanged() -> None:
    """A chunk whose own acceleration is within max_accel is commanded exactly, as without the limit."""
    limited, free = core(), core(max_accel=np.inf)
    for c in (limited, free):
        c.offer_chunk(moving_chunk(0, 0.03), seq=0, t_obs=0)
    got = [limited.tick().command for _ in range(40)]
    want = [free.tick().command for _ in range(40)]
    assert np.array_equal(np.asarray(got), np.asarray(want))
    assert limited.stats.clamps == 0


def test_a_hold_while_moving_brakes_to_a_stop_at_max_accel_and_stays_there() -> None:
    """Starved at 0.03 rad/tick: without the limit the command stops in one tick (acceleration 0.03 rad/tick^2);
    with it every change of velocity is <= A: it brakes to a stop about v^2 / 2A beyond the last action and
    stays there (a controlled stop; it does not come back)."""
    for a, want_max in ((np.inf, 0.03), (A, A)):
        c = core(max_accel=a)
        c.offer_chunk(moving_chunk(0, 0.03), seq=0, t_obs=0)
        ticks = [c.tick() for _ in range(H + 60)]
        cmds = [t.command for t in ticks]
        assert ticks[H].hold and ticks[H].reason == HOLD_STARVED
        assert np.abs(accel(cmds)).max() == pytest.approx(want_max, rel=1e-6)
        last_action = moving_chunk(0, 0.03)[-1, 0]
        over = max(x[0] for x in cmds) - last_action
        if np.isinf(a):
            assert over == 0.0
        else:
            assert 0.03 ** 2 / (2 * A) - 0.03 <= over <= 0.03 ** 2 / (2 * A)  # v^2 / 2A, to a step
            steps = np.diff([x[0] for x in cmds[H - 1:]])
            assert (steps >= 0).all() and (steps[10:] == 0).all()  # never back: stopped, and stays
            assert cmds[-1][0] == pytest.approx(last_action + over)


def test_a_splice_jump_is_closed_within_the_limit_without_passing_the_new_chunk() -> None:
    """A naive switch to a chunk 0.2 rad ahead of the executing one: the command accelerates and brakes at A,
    never passes the new chunk and then follows it exactly."""
    c = core()
    c.offer_chunk(moving_chunk(0, 0.01), seq=0, t_obs=0)
    cmds = [c.tick().command for _ in range(10)]
    new = moving_chunk(0, 0.01, offset=0.2)
    c.offer_chunk(new, seq=1, t_obs=5)
    for _ in range(40):
        cmds.append(c.tick().command)
    assert np.abs(accel(cmds)).max() <= A + 1e-12
    lag = np.array([new[k - 5, 0] - x[0] for k, x in enumerate(cmds) if k >= 10])
    assert (lag >= -1e-12).all() and lag[0] > 0.1 and lag[-1] == 0.0


def test_unlimited_joints_are_untouched_and_limits_are_validated() -> None:
    """A joint with inf is commanded as without the limiter (it stops in one tick); max_accel <= 0 / NaN is
    refused naming the field."""
    c = core(max_accel=[A, np.inf])
    c.offer_chunk(moving_chunk(0, 0.03), seq=0, t_obs=0)
    cmds = [c.tick().command for _ in range(H + 5)]
    free = accel(cmds)[:, 1]
    assert np.abs(free).max() == pytest.approx(0.03) and np.abs(accel(cmds)[:, 0]).max() <= A + 1e-12
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="max_accel"):
            ExecutorConfig(horizon=H, action_dim=M, max_accel=bad)
    with pytest.raises(ValueError, match="max_accel"):
        AccelLimiter(np.array([0.0]))


def test_an_operators_pause_brakes_and_the_step_counter_stands_still() -> None:
    c = core()
    c.offer_chunk(moving_chunk(0, 0.03), seq=0, t_obs=0)
    cmds = [c.tick().command for _ in range(20)]
    c.pause()
    paused = [c.tick() for _ in range(30)]
    assert all(t.paused and t.step == 19 for t in paused)
    cmds += [t.command for t in paused]
    assert np.abs(accel(cmds)).max() <= A + 1e-12 and cmds[-1][0] == cmds[-2][0]  # braked, settled
    c.resume()
    cmds += [c.tick().command for _ in range(20)]
    assert np.abs(accel(cmds)).max() <= A + 1e-12


def test_braking_stops_at_a_joint_limit() -> None:
    """Position limits win: a joint braking past its held action would cross the upper limit: clipped there."""
    c = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M, max_step=0.06, max_accel=A, upper=[0.6, 10.0]))
    c.set_measured_position(np.zeros(M))
    c.offer_chunk(np.minimum(moving_chunk(0, 0.03), 0.59), seq=0, t_obs=0)
    cmds = np.asarray([c.tick().command for _ in range(H + 30)])
    assert cmds[:, 0].max() <= 0.6


@pytest.mark.parametrize("mode", ["switch", "sync", "ensemble"])
def test_no_sequence_of_chunks_starvation_and_pauses_exceeds_the_limit(mode: str) -> None:
    """Random chunks (jumps of up to 0.5 rad, random delays, starvation), pauses and resumes in every
    execution mode: every change of the commanded velocity is within max_accel and within max_step."""
    rng = np.random.default_rng(1)
    kw = {"s": 10} if mode == "sync" else {}
    c = core(mode=mode, **kw)
    cmds, seq, t_obs = [], 0, 0
    for _ in range(600):
        r = rng.random()
        if r < 0.06:
            t_obs = max(t_obs, c.next_step - int(rng.integers(0, 10)))
            c.offer_chunk(np.cumsum(rng.normal(0, 0.01, (H, M)), axis=0) + rng.uniform(-0.5, 0.5, M),
                          seq=seq, t_obs=t_obs)
            seq += 1
        elif r < 0.07:
            c.pause()
        elif r < 0.09:
            c.resume()
        cmds.append(c.tick().command)
    steps = np.diff(np.asarray(cmds), axis=0)
    assert np.abs(steps).max() <= 0.06 + 1e-12
    assert np.abs(np.diff(steps, axis=0)).max() <= A + 1e-12
    assert c.stats.chunks_accepted > 20


def test_a_command_beyond_a_limit_stays_or_walks_in_without_swinging() -> None:
    """A measured (or stop-held) position beyond a joint limit by less than max_step: a hold stays there
    (as without the limit), a chunk inside is reached without passing it; a clip's jump is no speed (it
    once made the limiter swing 0.17 rad away from the limit and back)."""
    c = ExecutorCore(ExecutorConfig(horizon=10, action_dim=1, upper=[0.5], max_step=0.05, max_accel=A))
    c.set_measured_position(np.array([0.54]))
    assert [c.tick().command[0] for _ in range(10)] == [0.54] * 10
    c.offer_chunk(np.full((10, 1), 0.49), seq=0, t_obs=c.next_step)
    walk = [c.tick().command[0] for _ in range(20)]
    assert min(walk) >= 0.49 - 1e-12 and walk[-1] == pytest.approx(0.49)
    assert np.abs(np.diff(walk, 2)).max() <= A + 1e-12
    c.resync(keep_hold=True)  # a protective stop holds the joint beyond the limit
    assert c.hold_joints({0: 0.53})
    assert [c.tick().command[0] for _ in range(10)] == [0.53] * 10
    quiet = ExecutorCore(ExecutorConfig(horizon=10, action_dim=1, upper=[0.5], max_step=0.05, max_accel=A,
                                        startup_silent=True))
    quiet.set_measured_position(np.array([0.54]))
    assert all(t.silent and t.command[0] == 0.54 for t in (quiet.tick() for _ in range(10)))  # no drift


def test_a_new_chunk_is_not_passed_after_a_second_splice_or_a_starvation() -> None:
    """The jump of a splice is a gap, not a speed: a second splice 2 mrad beyond a 0.2 rad one is not passed
    (it was by 10 mrad); after a starvation the same trajectory, braking at A / 2, is caught up with and not
    passed (it was by 32 mrad): the new chunk's own step is its speed."""
    c = core()
    c.offer_chunk(np.zeros((H, M)), seq=0, t_obs=0)
    xs = [c.tick().command[0] for _ in range(5)]
    c.offer_chunk(np.full((H, M), 0.2), seq=1, t_obs=c.next_step)
    xs += [c.tick().command[0] for _ in range(8)]
    c.offer_chunk(np.full((H, M), 0.202), seq=2, t_obs=c.next_step)
    xs += [c.tick().command[0] for _ in range(60)]
    assert max(xs) <= 0.202 + 1e-12 and xs[-1] == pytest.approx(0.202)
    v = np.zeros(200)
    for k in range(1, 200):  # accelerate at A / 2 to 0.03 rad/tick, brake at A / 2 from step 40 on
        v[k] = min(0.03, v[k - 1] + A / 2) if k < 40 else max(0.0, v[k - 1] - A / 2)
    traj = np.cumsum(v)[:, None] * np.ones((1, M))
    short = ExecutorCore(ExecutorConfig(horizon=20, action_dim=M, max_step=0.06, max_accel=A))
    short.set_measured_position(np.zeros(M))
    short.offer_chunk(traj[:20], seq=0, t_obs=0)
    xs = [short.tick().command[0] for _ in range(26)]  # 20 actions, then 6 starved ticks (braking)
    for seq in (1, 2, 3):
        t_obs = short.next_step - 3
        short.offer_chunk(traj[t_obs:t_obs + 20], seq=seq, t_obs=t_obs)
        xs += [short.tick().command[0] for _ in range(17 if seq < 3 else 60)]
    lead = np.asarray(xs[26:]) - traj[26:len(xs), 0]
    assert lead.max() <= 1e-12 and abs(lead[-1]) < 1e-12
    assert np.abs(np.diff(xs, 2)).max() <= A + 1e-12
