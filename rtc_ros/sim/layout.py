"""Units, sizes and result types of the bimanual ALOHA simulator (:mod:`rtc_ros.sim.bimanual`).

Conventions used everywhere in the simulator:

* Joint vectors have shape ``(14,)`` ordered as :data:`JOINT_NAMES`:
  ``[left arm 6 joints, left gripper, right arm 6 joints, right gripper]``.
* Arm joints are in radians (velocities rad/s).
* Grippers are a *normalised opening* in ``[0, 1]``: ``0`` = fully closed (finger joint at
  its lower limit 0.021 m), ``1`` = fully open (0.057 m, ~69 mm between the finger pads).
  The mapping is linear in the finger slide joint; both the command and the measured
  gripper position use this unit (gripper velocity: 1/s).  The 40 mm cube is touched at
  an opening of about 0.6.
* Control is position control at 50 Hz (:data:`CONTROL_DT` = 20 ms) with
  :data:`N_SUBSTEPS` = 10 physics steps of 2 ms each per :meth:`BimanualSim.step`.
"""

from __future__ import annotations

import enum
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONTROL_DT: float = 0.02
#: the same period in integer nanoseconds (stamps of tick k: k * CONTROL_DT_NS, exactly on the 20 ms grid)
CONTROL_DT_NS: int = 20_000_000
"""Control period of one :meth:`BimanualSim.step` in seconds (50 Hz)."""
N_SUBSTEPS: int = 10
"""Physics steps per control tick (the model's timestep is 2 ms)."""
NUM_JOINTS: int = 14
"""Size of command / joint vectors."""

ARM_JOINTS: tuple[str, ...] = (
    "waist",
    "shoulder",
    "elbow",
    "forearm_roll",
    "wrist_angle",
    "wrist_rotate",
)
SIDES: tuple[str, str] = ("left", "right")
JOINT_NAMES: tuple[str, ...] = tuple(
    f"{side}_{j}" for side in SIDES for j in (*ARM_JOINTS, "gripper")
)
"""The 14 joint names in command / observation order."""
GRIPPER_INDICES: tuple[int, int] = (6, 13)
"""Indices of the two gripper values in a 14-vector."""

FINGER_CLOSED: float = 0.021
"""Finger slide joint position (m) that maps to normalised gripper 0."""
FINGER_OPEN: float = 0.057
"""Finger slide joint position (m) that maps to normalised gripper 1."""

CUBE_HALF_SIZE: float = 0.02
"""Half edge length of the cube in metres."""
DEFAULT_CUBE_X_RANGE: tuple[float, float] = (0.0, 0.2)
DEFAULT_CUBE_Y_RANGE: tuple[float, float] = (0.4, 0.6)

TOOL_OFFSET: float = 0.13
"""Distance (m) along the gripper_link x axis from its origin to the tool point between
the finger pads (fingers span 0.064..0.154 m)."""
LIFT_HEIGHT: float = 0.05
"""Cube centre height (m) above which the cube counts as lifted (rests at 0.02 m)."""
TOUCH_TOLERANCE: float = 0.002
"""A finger within this distance (m) of the cube counts as touching it (contacts of
mesh fingers flicker at zero penetration)."""

XML_NAME = "bimanual_viperx_transfer_cube.xml"


class TaskStage(enum.IntEnum):
    """Integer progress score of the cube-transfer task (0..5).

    Each value is a condition evaluated on the current physics state; the instantaneous
    stage is the highest satisfied condition, the episode *progress* is its running max.
    A finger "touches" the cube when in contact or closer than TOUCH_TOLERANCE; the cube
    is "airborne" when it does not touch the table and its centre is above LIFT_HEIGHT.
    """

    NOTHING = 0
    REACHED = 1
    """A right finger touches the cube, or the right tool point is within 3 cm of it."""
    GRASPED = 2
    """Both right fingers touch the cube."""
    LIFTED = 3
    """Both right fingers touch the cube and it is airborne."""
    HANDOVER = 4
    """Both left fingers touch the airborne cube (the right gripper may still hold it)."""
    TRANSFERRED = 5
    """Both left fingers touch the airborne cube and no right-gripper part touches it."""


MAX_STAGE: int = int(TaskStage.TRANSFERRED)


def aloha_assets_dir() -> Path:
    """Return the directory holding gym-aloha's MJCF/STL assets.

    Located via the installed package metadata without importing ``gym_aloha`` (which
    would import gymnasium and dm_control).

    Raises:
        FileNotFoundError: gym-aloha is not installed or has no assets directory.
    """
    spec = importlib.util.find_spec("gym_aloha")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "gym-aloha is not installed; install the pins in requirements-sim.txt"
        )
    for loc in spec.submodule_search_locations:
        path = Path(loc) / "assets"
        if (path / XML_NAME).is_file():
            return path
    raise FileNotFoundError(f"{XML_NAME} not found in the gym_aloha package")


@dataclass(frozen=True)
class SimObservation:
    """Proprioceptive + privileged observation after a reset or step.

    Attributes:
        joint_positions: (14,) rad / normalised gripper opening, order JOINT_NAMES.
        joint_velocities: (14,) rad/s / normalised gripper opening per second.
        cube_pose: (7,) cube centre position xyz in metres (world frame) followed by the
            orientation quaternion (w, x, y, z).
        time: simulated time in seconds since reset.
        step: number of control ticks since reset.
    """

    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    cube_pose: np.ndarray
    time: float
    step: int


@dataclass(frozen=True)
class StepResult:
    """Result of one control tick.

    Attributes:
        obs: observation after the tick.
        stage: instantaneous task stage after the tick.
        progress: max stage reached so far in this episode (monotone, 0..5).
        success: True once TRANSFERRED was held for ``success_hold_steps`` ticks
            (latches for the rest of the episode).
        truncated: True when ``max_episode_steps`` ticks have been taken.
        clamped: True when the command had to be clamped to the joint limits.
        protective_stop: True when this tick's command tripped a protective stop
            (:mod:`rtc_ros.sim.limits`).
    """

    obs: SimObservation
    stage: TaskStage
    progress: int
    success: bool
    truncated: bool
    clamped: bool
    protective_stop: bool = False


def finger_to_normalized(finger_q: np.ndarray) -> np.ndarray:
    """(2, 2) finger slide positions [[l, r], ...] -> (2,) normalised openings."""
    opening = 0.5 * (finger_q[:, 0] - finger_q[:, 1])
    return (opening - FINGER_CLOSED) / (FINGER_OPEN - FINGER_CLOSED)
