"""controller_check.joints_mismatch: which controllers would not take the executor's commands for an arm's joints
(a forward_command_controller in another order moves the wrong joints; a joint_trajectory_controller rejects a
trajectory naming a joint it does not own, or only some of its joints without allow_partial_joints_goal)."""

from __future__ import annotations

import pytest

pytest.importorskip("rcl_interfaces")

from rtc_ros.nodes.controller_check import joints_mismatch  # noqa: E402

ARM = ["j1", "j2", "j3"]


def test_a_forward_controller_must_list_the_arm_s_joints_in_its_order() -> None:
    assert joints_mismatch("/c", "/c/commands", ARM, ["j1", "j2", "j3"], None, trajectory=False) == ""
    assert "the same joints in another order" in joints_mismatch("/c", "/c/commands", ARM, ["j2", "j1", "j3"], None,
                                                                 trajectory=False)
    assert "other joints" in joints_mismatch("/c", "/c/commands", ARM, ["j1", "j2", "j3", "g"], None, trajectory=False)
    assert "other joints" in joints_mismatch("/c", "/c/commands", ARM, ["j1", "j2", "x"], None, trajectory=False)


def test_a_trajectory_controller_maps_by_name_but_rejects_foreign_or_partial_goals() -> None:
    assert joints_mismatch("/c", "/c/jt", ARM, ["j3", "j1", "j2"], False, trajectory=True) == ""  # by name
    text = joints_mismatch("/c", "/c/jt", ARM + ["g"], ["j1", "j2", "j3"], True, trajectory=True)
    assert "does not own ['g']" in text
    text = joints_mismatch("/c", "/c/jt", ARM, ["j1", "j2", "j3", "j4"], False, trajectory=True)
    assert "also owns ['j4']" in text and "allow_partial_joints_goal: false" in text
    assert joints_mismatch("/c", "/c/jt", ARM, ["j1", "j2", "j3", "j4"], True, trajectory=True) == ""
    assert joints_mismatch("/c", "/c/jt", ARM, ["j1", "j2", "j3", "j4"], None, trajectory=True) == ""  # not declared


def test_a_node_without_joints_is_not_judged() -> None:
    for joints in (None, [], "j1"):
        assert joints_mismatch("/relay", "/c/commands", ARM, joints, None, trajectory=False) == ""
