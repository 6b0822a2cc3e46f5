"""Scripted expert for the cube-transfer task of :class:`~rtc_ros.sim.bimanual.BimanualSim`.

The expert plans Cartesian tool waypoints from the initial cube pose (open loop, like the
ALOHA/ACT scripted demos), interpolates them with minimum-jerk timing (position: linear
path, orientation: slerp, gripper: linear) and converts every 20 ms sample to joint
targets with warm-started damped-least-squares IK.  The resulting (T, 14) joint target
trajectory is C2-continuous between waypoints, so it is suitable as demonstrations for
action chunking.

Sequence: the right arm picks the cube from above with a 60 degree tilted gripper and
brings it to a meeting point above the table centre; the left arm approaches
horizontally with its fingers rotated to close vertically, grasps the cube, the right
gripper opens and retreats, and the left arm pulls the cube away.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mujoco
import numpy as np

from rtc_ros.sim.bimanual import BimanualSim
from rtc_ros.sim.expert_schedule import MARGIN_SCHEDULE, ExpertSchedule
from rtc_ros.sim.layout import CONTROL_DT, NUM_JOINTS, SIDES, TOOL_OFFSET, SimObservation

logger = logging.getLogger(__name__)

MEET_POINT: np.ndarray = np.array([0.0, 0.5, 0.25])
"""World position (m) of the right tool point during the handover."""
HANDOVER_OFFSET: np.ndarray = np.array([0.002, 0.0, -0.007])
"""Typical cube centre relative to MEET_POINT while the right gripper holds it."""


def _rot_pick_right(tilt: float) -> np.ndarray:
    """(3, 3) right gripper frame: x points to -x world tilted down by ``tilt`` rad."""
    c, s = np.cos(tilt), np.sin(tilt)
    x = np.array([-c, 0.0, -s])
    y = np.array([0.0, -1.0, 0.0])
    return np.column_stack([x, y, np.cross(x, y)])


def _rot_meet_left() -> np.ndarray:
    """(3, 3) left gripper frame: x along +x world, fingers closing along world z."""
    x = np.array([1.0, 0.0, 0.0])
    y = np.array([0.0, 0.0, 1.0])
    return np.column_stack([x, y, np.cross(x, y)])


def _quat_from_mat(r: np.ndarray) -> np.ndarray:
    q = np.empty(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(r).reshape(9))
    return q


def _mat_from_quat(q: np.ndarray) -> np.ndarray:
    r = np.empty(9)
    mujoco.mju_quat2Mat(r, q)
    return r.reshape(3, 3)


def _slerp(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    """Spherical interpolation between unit quaternions (w, x, y, z), s in [0, 1]."""
    dot = float(np.dot(q0, q1))
    if dot < 0.0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        q = q0 + s * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    return (np.sin((1 - s) * theta) * q0 + np.sin(s * theta) * q1) / np.sin(theta)


def min_jerk(s: float) -> float:
    """Minimum-jerk time scaling 10s^3 - 15s^4 + 6s^5 for s in [0, 1]."""
    s = min(max(s, 0.0), 1.0)
    return s * s * s * (10.0 + s * (-15.0 + 6.0 * s))


@dataclass(frozen=True)
class Waypoint:
    """A tool pose key frame.

    Attributes:
        tick: control tick (20 ms each) at which the pose is reached.
        pos: (3,) tool point position in metres (world).
        rot: (3, 3) gripper_link orientation (columns = gripper axes in world).
        grip: normalised gripper opening command (0 closed, 1 open).
    """

    tick: int
    pos: np.ndarray
    rot: np.ndarray
    grip: float


class ArmIK:
    """Damped-least-squares IK of either arm's tool point (TOOL_OFFSET along the gripper
    x axis) and gripper orientation, computed on a private MjData (no effect on the sim)."""

    def __init__(self, sim: BimanualSim) -> None:
        self.model = sim.model
        self.data = mujoco.MjData(sim.model)
        self.data.qpos[:] = sim.model.key_qpos[0]
        self._qadr = {s: sim._arm_qadr[6 * i : 6 * i + 6] for i, s in enumerate(SIDES)}
        self._vadr = {s: sim._arm_vadr[6 * i : 6 * i + 6] for i, s in enumerate(SIDES)}
        lo, hi = sim.joint_limits
        self._lo = {s: lo[sim._arm_idx[6 * i : 6 * i + 6]] for i, s in enumerate(SIDES)}
        self._hi = {s: hi[sim._arm_idx[6 * i : 6 * i + 6]] for i, s in enumerate(SIDES)}
        self._body = dict(sim.gripper_bodies)
        self._jacp = np.zeros((3, sim.model.nv))
        self._jacr = np.zeros((3, sim.model.nv))

    def forward(self, side: str, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tool point (3,) and gripper rotation (3, 3) for arm joints q (6,)."""
        d = self.data
        d.qpos[self._qadr[side]] = q
        mujoco.mj_kinematics(self.model, d)
        b = self._body[side]
        rot = d.xmat[b].reshape(3, 3).copy()
        return d.xpos[b] + rot[:, 0] * TOOL_OFFSET, rot

    def solve(
        self,
        side: str,
        pos: np.ndarray,
        rot: np.ndarray,
        q_init: np.ndarray,
        iters: int = 60,
        damping: float = 1e-3,
    ) -> tuple[np.ndarray, float]:
        """Joint angles (6,) reaching pose (pos, rot); returns (q, position error in m)."""
        q = np.array(q_init, dtype=np.float64)
        m, d = self.model, self.data
        vadr = self._vadr[side]
        err_p = np.inf
        for _ in range(iters):
            p, r = self.forward(side, q)
            e_p = pos - p
            e_r = 0.5 * sum(np.cross(r[:, i], rot[:, i]) for i in range(3))
            err_p = float(np.linalg.norm(e_p))
            if err_p < 1e-5 and np.linalg.norm(e_r) < 1e-4:
                break
            mujoco.mj_comPos(m, d)
            mujoco.mj_jac(m, d, self._jacp, self._jacr, p, self._body[side])
            jac = np.vstack([self._jacp[:, vadr], self._jacr[:, vadr]])
            e = np.concatenate([e_p, e_r])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(6), e)
            q = np.clip(q + dq, self._lo[side], self._hi[side])
        return q, err_p


class ScriptedExpert:
    """Scripted solver of the cube transfer producing (14,) joint targets at 50 Hz.

    The plan is computed at :meth:`reset` from the initial cube pose; when observations
    are passed to :meth:`act`, the left grasp is re-targeted once (at ``schedule.replan``) at the
    measured position of the cube held by the right gripper.

    Usage::

        expert = ScriptedExpert(sim)
        obs = sim.reset(seed)
        expert.reset(obs)
        for _ in range(expert.horizon):
            obs = sim.step(expert.act(obs)).obs
    """

    def __init__(self, sim: BimanualSim, pick_tilt_deg: float = 60.0,
                 schedule: ExpertSchedule = MARGIN_SCHEDULE) -> None:
        """Args: sim: the simulator (model used for IK); pick_tilt_deg: right gripper tilt;
        schedule: the waypoint ticks."""
        self.sim = sim
        self.schedule = schedule
        self.ik = ArmIK(sim)
        self.pick_tilt = np.deg2rad(pick_tilt_deg)
        self._plan: np.ndarray = np.zeros((0, NUM_JOINTS))
        self._t = 0

    @property
    def plan(self) -> np.ndarray:
        """(T, 14) joint target trajectory of the current episode (one row per tick)."""
        return self._plan

    @property
    def horizon(self) -> int:
        """Number of ticks T of the plan (after it the last target is repeated)."""
        return len(self._plan)

    def waypoints(
        self, cube_pos: np.ndarray, handover_cube: np.ndarray | None = None
    ) -> dict[str, list[Waypoint]]:
        """Tool waypoints for both arms.

        Args:
            cube_pos: (3,) initial cube centre in metres.
            handover_cube: (3,) cube centre while held at the meeting point; defaults to
                the typical position MEET_POINT + HANDOVER_OFFSET (the expert replaces it
                by the measured one at ``schedule.replan`` when given observations).
        """
        home = self.sim.home_position
        start: dict[str, Waypoint] = {}
        for i, side in enumerate(SIDES):
            p, r = self.ik.forward(side, home[7 * i : 7 * i + 6])
            start[side] = Waypoint(0, p, r, float(home[7 * i + 6]))
        cube = np.asarray(cube_pos, dtype=np.float64)[:3]
        held = (
            MEET_POINT + HANDOVER_OFFSET
            if handover_cube is None
            else np.asarray(handover_cube, dtype=np.float64)[:3]
        )
        r_pick = _rot_pick_right(self.pick_tilt)
        r_left = _rot_meet_left()
        meet = MEET_POINT
        t = self.schedule
        grasp = cube + np.array([0.0, 0.0, -0.005])
        # First tilt the gripper in the arm's vertical plane only: the wrist passes its
        # singularity (wrist_angle = 0) here, where no yaw correction is needed, so
        # the IK cannot flip the wrist (forearm_roll / wrist_rotate by +-pi).
        tilt_pos = start["right"].pos + np.array([-0.04, 0.0, 0.0])
        right = [
            start["right"],
            Waypoint(t.tilt, tilt_pos, r_pick, 0.5),
            Waypoint(t.above, cube + np.array([0.0, 0.0, 0.10]), r_pick, 1.0),
            Waypoint(t.grasp, grasp, r_pick, 1.0),
            Waypoint(t.closed, grasp, r_pick, 0.0),
            Waypoint(t.meet, meet, r_pick, 0.0),
            Waypoint(t.release, meet, r_pick, 0.0),
            Waypoint(t.opened, meet, r_pick, 1.0),
            Waypoint(t.retreated, meet + np.array([0.12, 0.0, 0.05]), r_pick, 1.0),
        ]
        pre = MEET_POINT + HANDOVER_OFFSET + np.array([-0.12, 0.0, 0.0])
        left_grasp = held + np.array([-0.01, 0.0, 0.0])
        left = [
            start["left"],
            Waypoint(t.replan, pre, r_left, 1.0),
            Waypoint(t.left_grasp, left_grasp, r_left, 1.0),
            Waypoint(t.left_closed, left_grasp, r_left, 0.0),
            Waypoint(t.left_hold, left_grasp, r_left, 0.0),
            Waypoint(t.left_away, left_grasp + np.array([-0.12, 0.0, 0.0]), r_left, 0.0),
        ]
        return {"left": left, "right": right}

    def _arm_trajectory(
        self, side: str, seq: list[Waypoint], t0: int, t1: int, q_init: np.ndarray
    ) -> tuple[np.ndarray, float]:
        """(t1 - t0, 7) joint targets [6 arm, gripper] of ``side`` for ticks t0..t1-1.

        The IK at tick t0 is warm-started from ``q_init`` (joint angles at tick t0 - 1, or
        the start configuration if t0 == 0, which is then used as is).
        Returns the trajectory and the worst IK position error in metres.
        """
        out = np.zeros((t1 - t0, 7))
        quats = [_quat_from_mat(w.rot) for w in seq]
        q = np.array(q_init, dtype=np.float64)
        worst = 0.0
        k = 0
        for t in range(t0, t1):
            while k + 1 < len(seq) - 1 and t >= seq[k + 1].tick:
                k += 1
            a, b = seq[k], seq[k + 1]
            s = min_jerk((t - a.tick) / max(b.tick - a.tick, 1))
            if t > 0:
                pos = a.pos + s * (b.pos - a.pos)
                rot = _mat_from_quat(_slerp(quats[k], quats[k + 1], s))
                q, err = self.ik.solve(side, pos, rot, q)
                worst = max(worst, err)
            out[t - t0, :6] = q
            out[t - t0, 6] = a.grip + s * (b.grip - a.grip)
        return out, worst

    def make_plan(self, cube_pos: np.ndarray, tail: int = 15) -> np.ndarray:
        """Plan the (T, 14) open-loop joint targets for a cube at ``cube_pos`` (xyz, m).

        Args:
            cube_pos: (3,) or (7,) cube pose; only xyz is used.
            tail: extra ticks holding the final targets.
        """
        self._cube0 = np.asarray(cube_pos, dtype=np.float64)[:3].copy()
        wps = self.waypoints(self._cube0)
        horizon = max(w[-1].tick for w in wps.values()) + tail + 1
        plan = np.zeros((horizon, NUM_JOINTS))
        home = self.sim.home_position
        worst = 0.0
        for i, side in enumerate(SIDES):
            traj, err = self._arm_trajectory(side, wps[side], 0, horizon, home[7 * i : 7 * i + 6])
            plan[:, 7 * i : 7 * i + 7] = traj
            worst = max(worst, err)
        if worst > 5e-3:
            logger.warning("expert IK position error up to %.1f mm", worst * 1e3)
        return plan

    def replan_handover(self, cube_pos: np.ndarray) -> None:
        """Re-target the left arm's grasp at the measured held cube position (3,).

        Only ticks >= ``schedule.replan`` change; the left arm is at rest at that waypoint, so
        the trajectory stays smooth (continuous position, velocity and acceleration).
        """
        held = np.asarray(cube_pos, dtype=np.float64)[:3]
        shift = held - (MEET_POINT + HANDOVER_OFFSET)
        if np.linalg.norm(shift) > 0.05:
            logger.warning("held cube %.1f cm from the expected handover point",
                           np.linalg.norm(shift) * 100)
        wps = self.waypoints(self._cube0, handover_cube=held)
        t0 = self.schedule.replan
        traj, err = self._arm_trajectory(
            "left", wps["left"], t0, len(self._plan), self._plan[t0 - 1, :6]
        )
        self._plan[t0:, :7] = traj
        if err > 5e-3:
            logger.warning("expert IK position error up to %.1f mm", err * 1e3)

    def reset(self, obs_or_cube: object) -> None:
        """Plan for a new episode from a SimObservation or a cube pose array."""
        cube = getattr(obs_or_cube, "cube_pose", obs_or_cube)
        self._plan = self.make_plan(np.asarray(cube))
        self._t = 0

    def act(self, obs: SimObservation | None = None) -> np.ndarray:
        """Next (14,) joint target; holds the last one after the plan ends.

        Args:
            obs: the latest observation.  When given at tick ``schedule.replan``, the left
                grasp is re-targeted at the measured cube position (closed loop);
                without observations the expert runs fully open loop.
        """
        if not len(self._plan):
            raise RuntimeError("call reset() before act()")
        if obs is not None and self._t == self.schedule.replan:
            self.replan_handover(obs.cube_pose[:3])
        a = self._plan[min(self._t, len(self._plan) - 1)].copy()
        self._t += 1
        return a


def run_expert_episode(
    sim: BimanualSim, seed: int, max_steps: int | None = None
) -> tuple[bool, int, list[int], np.ndarray]:
    """Roll out the expert (its default timing, ``MARGIN_SCHEDULE`` since 2026-12-05) for one seeded episode.

    Returns:
        (success, final progress, per-tick progress list, (T, 14) commands sent).
    """
    obs = sim.reset(seed)
    expert = ScriptedExpert(sim)
    expert.reset(obs)
    steps = max_steps if max_steps is not None else expert.horizon
    progress: list[int] = []
    cmds = []
    for _ in range(steps):
        a = expert.act(obs)
        cmds.append(a)
        res = sim.step(a)
        obs = res.obs
        progress.append(res.progress)
    logger.debug("seed %d: progress %d success %s (%.1f s)", seed, sim.progress, sim.success,
                 steps * CONTROL_DT)
    return sim.success, sim.progress, progress, np.array(cmds)
