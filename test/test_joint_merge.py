"""The joint-state merge rule (ROS-free): never a joint it has not heard, never a stale source."""

from __future__ import annotations

import math

import pytest

from rtc_ros.runtime.joint_merge import JointStateMerge, Merged, MergeRejected, NotReady, parse_exclusions

ARM = ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper"]
REQUIRED = [f"{side}_{j}" for side in ("left", "right") for j in ARM]
SOURCES = ["puppet_left/joint_states", "puppet_right/joint_states"]


def aloha(max_age_s: float = 0.1) -> JointStateMerge:
    return JointStateMerge(SOURCES, REQUIRED, max_age_s, prefixes=["left_", "right_"])


def send(m: JointStateMerge, k: int, base: float, t: float, stamp_ns: int = 0, extra: bool = True,
         velocity: bool = True) -> None:
    """An Interbotix-like message: unprefixed names, plus finger joints the nodes do not use."""
    names = ARM + (["left_finger", "right_finger"] if extra else [])
    pos = [base + i for i in range(len(ARM))] + ([0.02, -0.02] if extra else [])
    vel = [0.1 * i for i in range(len(names))] if velocity else []
    m.update(SOURCES[k], names, pos, vel, [], stamp_ns or int(t * 1e9), t)


def test_merges_prefixed_sources_in_required_order_with_the_oldest_stamp() -> None:
    m = aloha()
    assert isinstance(m.merged(0.0), NotReady)
    send(m, 1, 100.0, t=1.00)
    wait = m.merged(1.0)
    assert isinstance(wait, NotReady) and wait.missing == tuple(REQUIRED[:7]) and wait.silent == (SOURCES[0],)
    assert "7 joint(s) not heard" in str(wait) and SOURCES[0] in str(wait)
    send(m, 0, 0.0, t=1.01)
    out = m.merged(1.02)
    assert isinstance(out, Merged)
    assert out.names == tuple(REQUIRED)  # required joints only (no fingers), in the arms' order
    assert out.position == tuple([float(i) for i in range(7)] + [100.0 + i for i in range(7)])
    assert out.velocity == tuple(0.1 * i for i in range(7)) * 2
    assert out.effort == ()  # no source gave efforts
    assert out.stamp_ns == 1_000_000_000  # the older of the two messages


def test_a_stale_source_stops_the_output_and_is_named() -> None:
    m = aloha(max_age_s=0.1)
    send(m, 0, 0.0, t=1.0)
    send(m, 1, 0.0, t=1.0)
    assert isinstance(m.merged(1.099), Merged)  # not yet max_age_s old: still fresh
    send(m, 1, 5.0, t=1.15)  # the right arm keeps publishing, the left driver went quiet
    out = m.merged(1.15)
    assert isinstance(out, NotReady) and out.stale == (SOURCES[0],) and not out.missing
    assert "stale source(s) ['puppet_left/joint_states']" in str(out)
    send(m, 0, 1.0, t=1.16)  # back: published again, with its new values
    out = m.merged(1.16)
    assert isinstance(out, Merged) and out.position[0] == 1.0 and out.position[7] == 5.0
    assert m.ages(1.2) == pytest.approx({SOURCES[0]: 0.04, SOURCES[1]: 0.05})
    m.max_age_s = 0.01  # writable at run time
    assert isinstance(m.merged(1.2), NotReady)


def test_a_joint_dropped_from_its_sources_latest_message_is_missing_again() -> None:
    m = aloha()
    send(m, 0, 0.0, t=1.0)
    send(m, 1, 0.0, t=1.0)
    m.update(SOURCES[1], ARM[:-1], [0.0] * 6, [], [], int(1.01e9), 1.01)  # no gripper this time
    out = m.merged(1.01)
    assert isinstance(out, NotReady) and out.missing == ("right_gripper",)


def test_bad_messages_are_rejected_whole_and_the_previous_one_kept() -> None:
    m = aloha()
    send(m, 0, 0.0, t=1.0)
    send(m, 1, 0.0, t=1.0)
    bad = [
        (ARM, [0.0] * 6, [], [], "'position' has 6 values for 7 names"),
        (ARM, [0.0] * 7, [0.0] * 3, [], "'velocity' has 3 values for 7 names"),
        (ARM, [0.0] * 7, [], [0.0] * 2, "'effort' has 2 values"),
        (ARM[:-1] + ["waist"], [0.0] * 7, [], [], "lists a joint twice"),
        (ARM, [0.0, math.nan] + [0.0] * 5, [], [], "position of 'left_shoulder' is nan"),
        (ARM, [0.0, math.inf] + [0.0] * 5, [], [], "position of 'left_shoulder' is inf"),
    ]
    for names, pos, vel, eff, why in bad:
        with pytest.raises(MergeRejected, match=why.replace("(", r"\(").replace(")", r"\)")):
            m.update(SOURCES[0], names, pos, vel, eff, int(1.05e9), 1.05)
    assert m.rejected == len(bad)
    out = m.merged(1.05)
    assert isinstance(out, Merged) and out.position[:7] == tuple(float(i) for i in range(7))
    assert isinstance(m.merged(1.2), NotReady)  # ... and ages out: a bad stream is never published as fresh
    # a non-finite position of a joint the nodes do not use is not a reason to drop the arm
    m.update(SOURCES[0], ARM + ["left_finger"], [0.0] * 7 + [math.nan], [], [], int(1.21e9), 1.21)
    m.update(SOURCES[1], ARM, [0.0] * 7, [], [], int(1.21e9), 1.21)
    assert isinstance(m.merged(1.21), Merged)
    with pytest.raises(MergeRejected, match="not one of the sources"):
        m.update("joint_states", ARM, [0.0] * 7, [], [], 1, 1.0)


def test_two_sources_claiming_one_joint_stop_the_output_whichever_came_first() -> None:
    for order in ((0, 1), (1, 0)):
        m = JointStateMerge(SOURCES, REQUIRED, 0.1)  # no prefixes, but the drivers publish the same names
        for k in order:
            m.update(SOURCES[k], REQUIRED[:7], [float(k)] * 7, [], [], 1, 1.0)  # both accepted
        out = m.merged(1.0)
        assert isinstance(out, NotReady) and len(out.conflicts) == 7
        assert out.conflicts[0] == ("left_waist", tuple(SOURCES[k] for k in order))
        assert "7 joint(s) published by two sources, e.g. 'left_waist'" in str(out)
        assert "source_prefixes or source_exclude" in str(out)


def test_a_gripper_node_and_an_arm_driver_that_lists_the_gripper_too() -> None:
    arm = "arm/joint_states"
    grip = "gripper/joint_states"
    required = REQUIRED[:7]
    m = JointStateMerge([arm, grip], required, 0.1, exclude=parse_exclusions([f"{arm}:left_gripper"], [arm, grip]))
    m.update(arm, required, [0.0] * 6 + [9.9], [], [1.0] * 7, 5, 1.0)  # the driver's stale gripper value
    m.update(grip, ["left_gripper"], [0.4], [], [2.0], 6, 1.0)
    out = m.merged(1.0)
    assert isinstance(out, Merged) and out.position[6] == 0.4 and out.stamp_ns == 5
    assert out.effort == (1.0,) * 6 + (2.0,)  # efforts from both sources, each joint from its own
    with pytest.raises(ValueError, match="'arm/joint_states left_gripper': expected 'TOPIC:JOINT'"):
        parse_exclusions(["arm/joint_states left_gripper"], [arm, grip])
    with pytest.raises(ValueError, match="TOPIC one of"):
        parse_exclusions(["other:left_gripper"], [arm, grip])
    with pytest.raises(ValueError, match="not sources"):
        JointStateMerge([arm], required, 0.1, exclude={grip: ["left_gripper"]})


def test_a_wrong_prefix_and_a_rejected_source_are_told_apart_from_silence() -> None:
    m = JointStateMerge(SOURCES, REQUIRED, 0.1, prefixes=["left_left_", "right_"])
    send(m, 0, 0.0, t=1.0)
    with pytest.raises(MergeRejected):
        m.update(SOURCES[1], ARM, [math.nan] * 7, [], [], 1, 1.0)
    out = m.merged(1.0)
    assert isinstance(out, NotReady) and out.silent == () and out.rejecting[0][0] == SOURCES[1]
    text = str(out)
    assert "14 joint(s) not heard" in text and "heard but not in joint_names: ['left_left_waist'" in text
    assert "last message rejected: puppet_right/joint_states: position of 'right_waist' is nan" in text
    send(m, 1, 0.0, t=1.01)  # accepted again: no longer "rejecting"
    assert m.merged(1.01).rejecting == ()


def test_velocity_only_when_every_contributing_message_has_it() -> None:
    m = aloha()
    send(m, 0, 0.0, t=1.0)
    send(m, 1, 0.0, t=1.0, velocity=False)
    out = m.merged(1.0)
    assert isinstance(out, Merged) and out.velocity == () and len(out.position) == 14
    vel = [0.0] * 7
    vel[2] = math.nan  # a non-finite velocity drops the column, not the positions
    m.update(SOURCES[1], ARM, [0.0] * 7, vel, [], int(1.0e9), 1.0)
    send(m, 0, 0.0, t=1.0)
    out = m.merged(1.0)
    assert isinstance(out, Merged) and out.velocity == ()


def test_one_source_with_every_joint_and_one_that_contributes_nothing() -> None:
    m = JointStateMerge(["arm/joint_states", "base/joint_states"], REQUIRED, 0.1)
    m.update("base/joint_states", ["wheel"], [1.0], [], [], 5, 1.0)
    m.update("arm/joint_states", REQUIRED[::-1], [float(i) for i in range(14)][::-1], [], [], 7, 1.0)
    out = m.merged(1.5)  # the base is not needed: its age does not matter
    assert isinstance(out, NotReady) and out.stale == ("arm/joint_states",)
    out = m.merged(1.05)
    assert isinstance(out, Merged) and out.position == tuple(float(i) for i in range(14)) and out.stamp_ns == 7


@pytest.mark.parametrize("kw, match", [
    (dict(sources=[]), "sources must be distinct"),
    (dict(sources=["a", "a"]), "sources must be distinct"),
    (dict(prefixes=["x_"]), "prefixes: 1 given for 2 sources"),
    (dict(required=[]), "required joints"),
    (dict(max_age_s=0.0), "max_age_s"),
    (dict(max_age_s=math.nan), "max_age_s"),
])
def test_configuration_errors_name_the_field(kw, match) -> None:
    args = dict(sources=SOURCES, required=REQUIRED, max_age_s=0.1, prefixes=["left_", "right_"])
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        JointStateMerge(**args)


def test_a_second_publisher_and_a_frozen_stamp() -> None:
    """An audit: a leftover simulator beside the driver on one source topic made the merged positions alternate
    (+0.30 / -1.20) with the stamp jumping back 490 ms; a driver repeating a stuck sample under a frozen stamp stayed
    fresh. A message stamped before its source's previous one is refused while that one is fresh (once it is stale,
    a restarted clock is taken); a stamp that has not advanced for max_age_s makes the source stale."""
    m = aloha(max_age_s=0.1)
    send(m, 0, 0.0, t=1.00)
    send(m, 1, 0.0, t=1.00)
    with pytest.raises(MergeRejected, match=r"header.stamp 0.510 s is before its previous message's \(1.000 s\)"):
        send(m, 0, 9.0, t=1.01, stamp_ns=510_000_000)
    out = m.merged(1.01)
    assert isinstance(out, Merged) and out.position[0] == 0.0  # the driver's values, not the other publisher's
    send(m, 0, 0.0, t=1.3, stamp_ns=200_000_000)  # after a pause longer than max_age_s: a clock that restarted
    send(m, 1, 0.0, t=1.3, stamp_ns=200_000_000)
    assert isinstance(m.merged(1.3), Merged)
    for k in range(1, 8):  # the left driver goes on publishing its stuck sample, its stamp frozen
        send(m, 0, 0.0, t=1.3 + 0.02 * k, stamp_ns=200_000_000)
        send(m, 1, 0.0, t=1.3 + 0.02 * k, stamp_ns=200_000_000 + k * 20_000_000)
    out = m.merged(1.44)
    assert isinstance(out, NotReady) and out.stale == (SOURCES[0],)
