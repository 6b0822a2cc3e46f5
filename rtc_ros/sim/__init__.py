"""rtc_ros.sim: ROS-free MuJoCo simulator of the bimanual ALOHA (ViperX 300s) arms.

Importing this package sets ``MUJOCO_GL=egl`` (headless) unless already set.  See
:mod:`rtc_ros.sim.bimanual` for the units and joint ordering.
"""

from rtc_ros.sim.bimanual import (
    CONTROL_DT,
    JOINT_NAMES,
    NUM_JOINTS,
    BimanualSim,
    SimObservation,
    StepResult,
    TaskStage,
)
from rtc_ros.sim.conveyor import TASK_NAMES
from rtc_ros.sim.conveyor_expert import ConveyorExpert
from rtc_ros.sim.expert import ScriptedExpert, run_expert_episode
from rtc_ros.sim.limits import ProtectiveStopConfig, ProtectiveStopEvent

__all__ = [
    "CONTROL_DT",
    "JOINT_NAMES",
    "NUM_JOINTS",
    "BimanualSim",
    "ConveyorExpert",
    "ProtectiveStopConfig",
    "ProtectiveStopEvent",
    "ScriptedExpert",
    "SimObservation",
    "StepResult",
    "TASK_NAMES",
    "TaskStage",
    "run_expert_episode",
]
