"""The tracking watchdog rule (ROS-free): trips once after a continuous violation, re-arms on recovery."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtc_ros.runtime.tracking import TrackingWatchdog

TOL = [0.2, 0.2, 0.0]  # the third joint (a gripper) is not checked


def test_trips_once_after_the_timeout_and_rearms_when_the_arm_follows_again() -> None:
    w = TrackingWatchdog(TOL, timeout_s=0.2)
    cmd = np.zeros(3)
    assert w.enabled
    assert w.update(np.array([0.19, -0.19, 5.0]), cmd, 0.0) is None  # within tolerance; the gripper is free
    assert w.update(np.array([0.25, 0.0, 0.0]), cmd, 1.00) is None  # violation starts
    assert w.update(np.array([0.30, 0.0, 0.0]), cmd, 1.19) is None  # not yet 0.2 s
    trip = w.update(np.array([0.30, 0.45, 0.0]), cmd, 1.20)
    assert trip is not None and trip.joint == 1 and trip.error == pytest.approx(0.45) and trip.tolerance == 0.2
    assert trip.duration_s == pytest.approx(0.2) and w.tripped and w.trips == 1
    assert w.update(np.array([0.5, 0.5, 0.0]), cmd, 5.0) is None and w.trips == 1  # once per episode of violation
    assert w.update(np.array([0.0, 0.0, 0.0]), cmd, 5.02) is None and not w.tripped  # re-armed
    assert w.update(np.array([0.3, 0.0, 0.0]), cmd, 6.0) is None
    assert w.update(np.array([0.3, 0.0, 0.0]), cmd, 6.2) is not None and w.trips == 2


def test_a_brief_excursion_does_not_trip_and_restarts_the_clock() -> None:
    w = TrackingWatchdog(TOL, timeout_s=0.2)
    cmd = np.zeros(3)
    for k in range(100):  # 9 ticks (0.16 s) over, one back, repeatedly: never 0.2 s in a row
        over = k % 10 < 9
        assert w.update(np.array([0.3 if over else 0.0, 0.0, 0.0]), cmd, k * 0.02) is None, k
    assert w.trips == 0


def test_disabled_and_invalid() -> None:
    assert not TrackingWatchdog([0.0, 0.0], 0.2).enabled
    with pytest.raises(ValueError, match="tolerance"):
        TrackingWatchdog([0.1, -0.1], 0.2)
    with pytest.raises(ValueError, match="tolerance"):
        TrackingWatchdog([0.1, math.nan], 0.2)
    with pytest.raises(ValueError, match="timeout_s"):
        TrackingWatchdog([0.1], 0.0)
    w = TrackingWatchdog([0.1], 0.2)
    w.timeout_s = 0.5  # writable at run time, validated
    with pytest.raises(ValueError, match="timeout_s"):
        w.timeout_s = math.inf
    assert w.timeout_s == 0.5


def test_the_executors_reference_is_its_newest_command_only_while_the_arm_should_follow() -> None:
    """ExecutorCore.tracking_reference: None before anything is sent (startup_silent), while paused, disabled or
    muted, and after a re-sync until something is sent again; otherwise the newest command."""
    from rtc_ros.runtime.executor import ExecutorConfig, ExecutorCore

    core = ExecutorCore(ExecutorConfig(horizon=8, action_dim=2, startup_silent=True, max_step=10.0))
    assert core.set_measured_position(np.zeros(2)) and core.tracking_reference() is None
    assert core.tick().silent and core.tracking_reference() is None  # nothing sent yet: nothing to follow
    core.offer_chunk(np.linspace(0.0, 0.7, 8)[:, None] * np.ones((1, 2)), seq=0, t_obs=core.next_step)
    sent = core.tick()
    assert not sent.hold and np.array_equal(core.tracking_reference(), sent.command)
    core.tracking_reference()[0] = 99.0  # a copy
    assert core.tracking_reference()[0] == sent.command[0]
    core.pause()
    assert core.tracking_reference() is None
    core.resume()
    assert core.tracking_reference() is not None
    core.set_enabled(False)
    assert core.tracking_reference() is None
    core.set_enabled(True)
    core.set_muted(True)
    assert core.tracking_reference() is None
    core.set_muted(False, resume=True)  # a re-sync: measured again, nothing sent since
    assert core.tracking_reference() is None
    core.set_measured_position(np.ones(2))
    core.resync(command_hold=True)
    core.set_measured_position(np.ones(2))
    core.tick()  # the hold is commanded (loud), but paused: the arm is where it is, nothing to follow
    assert core.tracking_reference() is None


def test_measurements_farther_apart_than_the_timeout_are_no_continuous_violation() -> None:
    """Two samples over the tolerance 0.3 s apart with nothing between (a driver's hiccup) do not trip a 0.2 s
    watchdog; the violation starts anew at the second and trips once it lasts 0.2 s with samples in between."""
    w = TrackingWatchdog(TOL, timeout_s=0.2)
    cmd, far = np.zeros(3), np.array([0.5, 0.0, 0.0])
    assert w.update(far, cmd, 0.0) is None
    assert w.update(far, cmd, 0.3) is None  # the gap: started anew here
    assert w.update(far, cmd, 0.4) is None
    trip = w.update(far, cmd, 0.5)
    assert trip is not None and trip.duration_s == pytest.approx(0.2)
