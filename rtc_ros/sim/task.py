"""The cube-transfer task's stage of a :class:`~rtc_ros.sim.bimanual.BimanualSim` state (contacts, grasp, lift)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mujoco
import numpy as np

from rtc_ros.sim.layout import LIFT_HEIGHT, TOOL_OFFSET, TOUCH_TOLERANCE, TaskStage

if TYPE_CHECKING:
    from rtc_ros.sim.bimanual import BimanualSim


def cube_contacts(sim: "BimanualSim") -> set[int]:
    """Geom ids currently in contact with the cube."""
    d = sim.data
    out: set[int] = set()
    cube = sim._cube_geom  # noqa: SLF001 -- the simulator's model indices
    for i in range(d.ncon):
        c = d.contact[i]
        if c.geom1 == cube:
            out.add(int(c.geom2))
        elif c.geom2 == cube:
            out.add(int(c.geom1))
    return out


def finger_touch(sim: "BimanualSim", touching: set[int], side: str) -> tuple[bool, bool]:
    """Whether each finger of ``side`` touches the cube (contact or gap < tolerance)."""
    out = []
    for g in sim._finger_geoms[side]:  # noqa: SLF001
        hit = g in touching or (
            mujoco.mj_geomDistance(sim.model, sim.data, sim._cube_geom, g, TOUCH_TOLERANCE, None)  # noqa: SLF001
            < TOUCH_TOLERANCE
        )
        out.append(hit)
    return out[0], out[1]


def compute_stage(sim: "BimanualSim") -> TaskStage:
    """The instantaneous :class:`TaskStage` of the simulator's current physics state."""
    touching = cube_contacts(sim)
    cube_pos = sim.data.xpos[sim._cube_body]  # noqa: SLF001
    airborne = sim._table_geom not in touching and float(cube_pos[2]) > LIFT_HEIGHT  # noqa: SLF001
    r_touch = finger_touch(sim, touching, "right")
    l_touch = finger_touch(sim, touching, "left")
    right_grasp = all(r_touch)
    left_grasp = all(l_touch)
    right_touch = any(r_touch) or bool(touching & sim._gripper_geoms["right"])  # noqa: SLF001
    if left_grasp and airborne and not right_touch:
        return TaskStage.TRANSFERRED
    if left_grasp and airborne:
        return TaskStage.HANDOVER
    if right_grasp and airborne:
        return TaskStage.LIFTED
    if right_grasp:
        return TaskStage.GRASPED
    near = np.linalg.norm(sim.tool_point("right", TOOL_OFFSET) - cube_pos)
    if any(r_touch) or near < 0.03:
        return TaskStage.REACHED
    return TaskStage.NOTHING
