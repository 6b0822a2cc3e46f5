"""policy_inference's tracking measurement (rtc_ros.nodes.tracking_guard): an arm that does not follow its commands.

A Franka walkthrough (2026-12-07) listed the gripper among the arm's joints: the joint_trajectory_controller refused
every trajectory, the arm stood, and the diagnostics said "executing" -- the tracking error stayed at about a chunk's
travel (0.15-0.20 rad) because the policy plans from where the arm stands, so neither a growing error nor a 0.3 rad
watchdog showed it. ``not_following`` compares the commands' travel with the measured travel per arm joint."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from rtc_ros.nodes import tracking_guard
from rtc_ros.nodes.tracking_guard import MIN_TRAVEL, TrackingGuard

NAMES = ["j1", "j2", "gripper"]


def _guard(monkeypatch) -> tuple[TrackingGuard, list[float]]:
    now = [100.0]
    monkeypatch.setattr(tracking_guard.time, "monotonic", lambda: now[0])
    arm = SimpleNamespace(grippers=[False, False, True])
    return TrackingGuard(SimpleNamespace(joint_names=NAMES, dt=0.02, arms=[arm])), now


def _run(guard: TrackingGuard, now: list[float], command, measured, seconds: float = 2.5) -> None:
    for k in range(int(seconds / 0.02)):
        t = k * 0.02
        guard.on_joint_state(np.asarray(measured(t), float), np.asarray(command(t), float), 0.0)
        now[0] += 0.02


def test_an_arm_standing_while_its_commands_move_is_named(monkeypatch) -> None:
    guard, now = _guard(monkeypatch)
    wave = lambda t: [0.1 * np.sin(3 * t), 0.02 * t, 0.0]  # noqa: E731 -- j1 moves 0.2, j2 0.05 in 2.5 s
    _run(guard, now, wave, lambda t: [0.3 + 1e-5 * np.sin(50 * t), 0.0, 0.0])  # (encoder noise)
    joint, moved, measured = guard.not_following()
    assert joint == "j1" and moved > 0.15 and measured < 1e-4


def test_an_arm_that_follows_holds_or_squeezes_is_not_named(monkeypatch) -> None:
    guard, now = _guard(monkeypatch)
    wave = lambda t: [0.1 * np.sin(3 * t), 0.0, 0.0]  # noqa: E731
    lag = lambda t: [0.1 * np.sin(3 * (t - 0.06)), 0.0, 0.0]  # noqa: E731 -- follows 60 ms behind
    _run(guard, now, wave, lag)
    assert guard.not_following() is None
    guard, now = _guard(monkeypatch)  # a hold: nothing commanded moves
    _run(guard, now, lambda t: [0.2, 0.1, 0.5], lambda t: [0.2, 0.1, 0.5])
    assert guard.not_following() is None
    guard, now = _guard(monkeypatch)  # a gripper blocked by an object while its command closes further
    _run(guard, now, lambda t: [0.0, 0.0, 0.5 - 0.2 * t], lambda t: [0.0, 0.0, 0.3])
    assert guard.not_following() is None
    guard, now = _guard(monkeypatch)  # creeping below MIN_TRAVEL
    _run(guard, now, lambda t: [0.5 * MIN_TRAVEL * t / 2.5, 0.0, 0.0], lambda t: [0.0, 0.0, 0.0])
    assert guard.not_following() is None


def test_old_or_too_few_comparisons_judge_nothing(monkeypatch) -> None:
    guard, now = _guard(monkeypatch)
    _run(guard, now, lambda t: [t, 0.0, 0.0], lambda t: [0.0, 0.0, 0.0], seconds=1.0)  # the window not filled
    assert guard.not_following() is None
    _run(guard, now, lambda t: [t, 0.0, 0.0], lambda t: [0.0, 0.0, 0.0])
    assert guard.not_following() is not None
    now[0] += 10.0  # no executor report compared since (paused, silent): nothing to judge
    assert guard.not_following() is None


def test_an_arm_standing_off_its_commands_is_named(monkeypatch) -> None:
    """A fault walkthrough (2026-12-07): a driver re-homed under the executor (its joint states 0.3 rad from the
    commands) showed ``tracking_err_worst`` 0.30 for 7 s at OK. ``off_command`` names an arm joint at least
    ``OFF_COMMAND`` from its command at every measurement of the window; a lagging arm, a gripper's squeeze and a
    single excursion are not named."""
    guard, now = _guard(monkeypatch)
    wave = lambda t: [0.3 * np.sin(2 * t), 0.1, 0.5]  # noqa: E731
    _run(guard, now, wave, lambda t: [0.3 * np.sin(2 * t) + 0.3, 0.1, 0.5])  # it moves as commanded, 0.3 off
    assert guard.not_following() is None
    joint, least = guard.off_command()
    assert joint == "j1" and abs(least - 0.3) < 1e-9
    guard, now = _guard(monkeypatch)  # at rest 0.15 off
    _run(guard, now, lambda t: [0.2, 0.1, 0.5], lambda t: [0.2, -0.05, 0.5])
    assert guard.off_command()[0] == "j2"
    guard, now = _guard(monkeypatch)  # a fast motion lagging 60 ms: off by up to 0.18, but not all the time
    _run(guard, now, lambda t: [1.5 * np.sin(2 * t), 0.0, 0.0], lambda t: [1.5 * np.sin(2 * (t - 0.06)), 0.0, 0.0])
    assert guard.off_command() is None
    guard, now = _guard(monkeypatch)  # a gripper squeezing an object, 0.4 off its command
    _run(guard, now, lambda t: [0.0, 0.0, 0.1], lambda t: [0.0, 0.0, 0.5])
    assert guard.off_command() is None
    guard, now = _guard(monkeypatch)  # off for 1 s only (a bump), then back on its command
    _run(guard, now, lambda t: [0.0, 0.0, 0.0], lambda t: [0.2 if t < 1.0 else 0.0, 0.0, 0.0])
    assert guard.off_command() is None
