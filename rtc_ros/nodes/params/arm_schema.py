"""The per-arm parameters of the rtc_ros nodes (``<arm>.<suffix>``, declared for every arm of ``arms``; the sim's
arms are fixed): their names, kinds, defaults and descriptions. The rest of the schema:
:mod:`rtc_ros.nodes.params.schema`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rtc_ros.nodes.params.schema import (BOTH, DEFAULT_ARMS, DEFAULT_COMMAND_TOPIC, ROLE_EXECUTOR, ROLE_MERGER,
                                         ROLE_SIM, check_role)
from rtc_ros.recording.params_file import default_joint_names

_EX, _SIM = (ROLE_EXECUTOR,), (ROLE_SIM,)


@dataclass(frozen=True)
class ArmSpec:
    """One per-arm parameter ``<arm>.<suffix>`` (always read-only).

    ``kind``: ``string_array``, ``double_array`` or ``string``; ``default(arm)`` gives the default.
    """

    suffix: str
    kind: str
    description: str
    roles: tuple[str, ...]
    default: Callable[[str], Any]


#: ``<arm>.gripper_joints``' default: joints whose name ends in 'gripper'
DEFAULT_GRIPPER_JOINTS = ("*gripper",)


def _joint_names_default(arm: str) -> list[str]:
    return default_joint_names(arm) if arm in DEFAULT_ARMS else []


ARM_SPECS: tuple[ArmSpec, ...] = (
    ArmSpec("joint_names", "string_array", "Joint names of this arm, in action order (arms are concatenated "
            "in 'arms' order; defaults exist for left and right only).", (*BOTH, ROLE_SIM, ROLE_MERGER),
            _joint_names_default),
    ArmSpec("gripper_joints", "string_array", "Joints of this arm that are grippers (they squeeze: a commanded hold "
            "keeps their last command instead of their measured opening, a single max_accel / tracking_tolerance value "
            "leaves them out, their default limits are 0..1, max_start_gap skips them, the deadman's moved-while-released "
            "check counts one only if it fell open by more than max_step beyond its gap at the release): "
            "joint names (each must be one of this arm's) or shell-style patterns; the default matches names ending "
            "in 'gripper'; [''] = none. For a driver that names them otherwise (['fr3_finger_joint1']).", BOTH,
            lambda arm: list(DEFAULT_GRIPPER_JOINTS)),
    ArmSpec("command_topic", "string", "Command topic of this arm (relative; '' = the default for output_type: "
            + ", ".join(f"{k}: {v}" for k, v in DEFAULT_COMMAND_TOPIC.items()) + ").", _EX, lambda arm: ""),
    ArmSpec("lower_limits", "double_array", "Lower joint limits (one per joint, or one for all; [] = -pi, "
            "gripper 0). policy_inference reads them too (its guidance target is clipped there, as the commands).", BOTH,
            lambda arm: []),
    ArmSpec("upper_limits", "double_array", "Upper joint limits (one per joint, or one for all; [] = +pi, "
            "gripper 1). policy_inference reads them too.", BOTH, lambda arm: []),
    ArmSpec("max_step", "double_array", "Largest command change per tick (one per joint, or one for all; "
            "[] = 0.05). policy_inference reads it too (its guidance target trails a chunk the executor clamps).",
            BOTH, lambda arm: []),
    ArmSpec("max_accel", "double_array", "Acceleration limit of the commands, rad/s^2 (one per joint, or one for all "
            "joints but the grippers; 0 = not limited: the default [0.0] limits nothing). Holds brake at it instead of "
            "stopping in one tick, splices are closed within it; for arms whose controller faults on an acceleration "
            "jump. From the arm's torque and inertia, not its tracking. policy_inference reads it too: its hold "
            "target brakes the same way.", BOTH, lambda arm: [0.0]),
    ArmSpec("tracking_tolerance", "double_array", "Tracking watchdog: largest distance of the measured position "
            "from the command per joint before it counts as not following (one per joint, or one for all joints but "
            "the grippers, which squeeze; 0 = not checked: the default [0.0] checks nothing). Above the arm's tracking "
            "lag at speed (3 rad/s x 60 ms = 0.18 rad; with output_type joint_trajectory plus speed x "
            "trajectory_time_from_start). The executor then keeps reading joint_states.", _EX,
            lambda arm: [0.0]),
    ArmSpec("float64_topic", "string", "Commands of this arm as std_msgs/Float64MultiArray ('' disables).", _SIM,
            lambda arm: DEFAULT_COMMAND_TOPIC["float64_multi_array"].format(arm=arm)),
    ArmSpec("trajectory_topic", "string", "Commands of this arm as trajectory_msgs/JointTrajectory ('' "
            "disables).", _SIM, lambda arm: DEFAULT_COMMAND_TOPIC["joint_trajectory"].format(arm=arm)),
    ArmSpec("joint_state_topic", "string", "Commands of this arm as sensor_msgs/JointState ('' disables).",
            _SIM, lambda arm: DEFAULT_COMMAND_TOPIC["joint_state"].format(arm=arm)),
)


def arm_specs_for(role: str) -> list[ArmSpec]:
    """The per-arm parameters a node of ``role`` declares for each arm."""
    check_role(role)
    return [a for a in ARM_SPECS if role in a.roles]
