"""ROS-free MuJoCo simulator of two ViperX 300s arms (ALOHA) with cube-transfer tasks and protective stops.

The model (meshes and MJCF) is the ``bimanual_viperx_transfer_cube.xml`` scene shipped in
the ``gym-aloha`` PyPI package; it is loaded with plain :mod:`mujoco` (no dm_control/gym).

Units, joint order and result types: :mod:`rtc_ros.sim.layout`; the task's stages: :mod:`rtc_ros.sim.task`;
the tasks (``transfer_cube``, ``conveyor_cube``): :mod:`rtc_ros.sim.conveyor`; joint limits and protective
stops: :mod:`rtc_ros.sim.limits` (``docs/sim_arms.md``).
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # the GL backend is read when mujoco is imported: headless EGL

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from rtc_ros.sim.layout import (  # noqa: E402
    ARM_JOINTS, CONTROL_DT, CUBE_HALF_SIZE, DEFAULT_CUBE_X_RANGE, DEFAULT_CUBE_Y_RANGE, FINGER_CLOSED, FINGER_OPEN,
    GRIPPER_INDICES, JOINT_NAMES, N_SUBSTEPS, NUM_JOINTS, SIDES, XML_NAME, SimObservation, StepResult, TaskStage,
    aloha_assets_dir, finger_to_normalized,
)
from rtc_ros.sim.conveyor import TRANSFER_CUBE, make_task  # noqa: E402
from rtc_ros.sim.limits import ProtectiveStopConfig, ProtectiveStopEvent, ProtectiveStopMonitor  # noqa: E402
from rtc_ros.sim.render import RenderCache  # noqa: E402

logger = logging.getLogger(__name__)

class BimanualSim:
    """Two position-controlled 6-DoF ViperX arms with parallel grippers and a cube.

    Example::

        sim = BimanualSim()
        obs = sim.reset(seed=0)
        res = sim.step(obs.joint_positions)   # hold the current pose for 20 ms
        img = sim.render("top", 224, 224)     # (224, 224, 3) uint8
    """

    def __init__(
        self,
        max_episode_steps: int = 400,
        success_hold_steps: int = 10,
        cube_x_range: tuple[float, float] = DEFAULT_CUBE_X_RANGE,
        cube_y_range: tuple[float, float] = DEFAULT_CUBE_Y_RANGE,
        xml_path: str | Path | None = None,
        task: str = TRANSFER_CUBE,
        protective_stops: bool | ProtectiveStopConfig = True,
    ) -> None:
        """Load the ALOHA transfer-cube model.

        Args:
            max_episode_steps: ticks after which ``StepResult.truncated`` becomes True.
            success_hold_steps: consecutive TRANSFERRED ticks required for success.
            cube_x_range: (low, high) uniform range of the cube x position in metres.
            cube_y_range: (low, high) uniform range of the cube y position in metres.
            xml_path: alternative MJCF file (default: gym-aloha's transfer-cube scene).
            task: ``transfer_cube`` (default) or ``conveyor_cube`` (:mod:`rtc_ros.sim.conveyor`).
            protective_stops: True (default: the ViperX limits of :mod:`rtc_ros.sim.limits`, 1 s
                recovery), False (arms follow any command) or a :class:`ProtectiveStopConfig`.
        """
        if max_episode_steps <= 0 or success_hold_steps <= 0:
            raise ValueError("max_episode_steps and success_hold_steps must be positive")
        path = Path(xml_path) if xml_path is not None else aloha_assets_dir() / XML_NAME
        self.model: mujoco.MjModel = mujoco.MjModel.from_xml_path(str(path))
        self.data: mujoco.MjData = mujoco.MjData(self.model)
        m = self.model
        if abs(m.opt.timestep * N_SUBSTEPS - CONTROL_DT) > 1e-9:
            raise ValueError(f"model timestep {m.opt.timestep} s does not give {CONTROL_DT} s in {N_SUBSTEPS} substeps")
        # Rendering: shadows and multisampling off (much cheaper on software GL).
        m.vis.quality.shadowsize = 0
        m.vis.quality.offsamples = 0
        m.light_castshadow[:] = 0

        self.max_episode_steps = int(max_episode_steps)
        self.success_hold_steps = int(success_hold_steps)
        self.cube_x_range = (float(cube_x_range[0]), float(cube_x_range[1]))
        self.cube_y_range = (float(cube_y_range[0]), float(cube_y_range[1]))

        def jid(name: str) -> int:
            return int(mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name))

        def gid(name: str) -> int:
            i = int(mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, name))
            if i < 0:
                raise ValueError(f"geom {name!r} missing from model")
            return i

        arm_j: list[int] = []
        fingers: list[tuple[int, int]] = []
        for side in SIDES:
            arm_j += [jid(f"vx300s_{side}/{j}") for j in ARM_JOINTS]
            fingers.append((jid(f"vx300s_{side}/left_finger"), jid(f"vx300s_{side}/right_finger")))
        if min(arm_j) < 0 or min(min(f) for f in fingers) < 0:
            raise ValueError("model lacks the expected vx300s joints")
        self._arm_qadr = np.array([m.jnt_qposadr[j] for j in arm_j])
        self._arm_vadr = np.array([m.jnt_dofadr[j] for j in arm_j])
        self._finger_qadr = np.array([[m.jnt_qposadr[a], m.jnt_qposadr[b]] for a, b in fingers])
        self._finger_vadr = np.array([[m.jnt_dofadr[a], m.jnt_dofadr[b]] for a, b in fingers])

        # Actuator index for each arm joint / finger joint.
        act_of_joint = {int(m.actuator_trnid[a, 0]): a for a in range(m.nu)}
        self._arm_act = np.array([act_of_joint[j] for j in arm_j])
        self._finger_act = np.array([[act_of_joint[a], act_of_joint[b]] for a, b in fingers])

        lower = np.zeros(NUM_JOINTS)
        upper = np.ones(NUM_JOINTS)
        arm_idx = [i for i in range(NUM_JOINTS) if i not in GRIPPER_INDICES]
        lower[arm_idx] = m.actuator_ctrlrange[self._arm_act, 0]
        upper[arm_idx] = m.actuator_ctrlrange[self._arm_act, 1]
        self._lower = lower
        self._upper = upper
        self._arm_idx = np.array(arm_idx)

        cube_j = jid("red_box_joint")
        self._cube_qadr = int(m.jnt_qposadr[cube_j])
        self._cube_body = int(m.jnt_bodyid[cube_j])
        self._cube_geom = gid("red_box")
        self._table_geom = gid("table")
        self._finger_geoms = {side: (gid(f"vx300s_{side}/10_left_gripper_finger"),
                                     gid(f"vx300s_{side}/10_right_gripper_finger")) for side in SIDES}

        def name(kind: mujoco.mjtObj, i: int) -> str:
            return mujoco.mj_id2name(m, kind, i) or ""

        self._gripper_geoms = {side: frozenset(
            g for g in range(m.ngeom)
            if name(mujoco.mjtObj.mjOBJ_BODY, int(m.geom_bodyid[g])).startswith(f"vx300s_{side}/")
            and any(k in name(mujoco.mjtObj.mjOBJ_GEOM, g) for k in ("gripper", "finger"))) for side in SIDES}
        self.gripper_bodies: dict[str, int] = {
            side: int(mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"vx300s_{side}/gripper_link")) for side in SIDES}
        self.camera_names: tuple[str, ...] = tuple(name(mujoco.mjtObj.mjOBJ_CAMERA, c) for c in range(m.ncam))
        self._home_qpos = m.key_qpos[0].copy()
        self._cube_vadr = int(m.jnt_dofadr[cube_j])
        self._task = make_task(task)
        self._stops = ProtectiveStopMonitor(ProtectiveStopConfig.of(protective_stops))
        self._render_cache = RenderCache(m, self.camera_names)
        self._rng = np.random.default_rng()
        self._step = 0
        self._progress = 0
        self._stage = TaskStage.NOTHING
        self._hold = 0
        self._success = False
        self.reset()

    # ------------------------------------------------------------------ properties
    @property
    def joint_names(self) -> tuple[str, ...]:
        """The 14 joint names in command order (see module docstring)."""
        return JOINT_NAMES

    @property
    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) command limits, each (14,): rad for arms, [0, 1] for grippers."""
        return self._lower.copy(), self._upper.copy()

    @property
    def home_position(self) -> np.ndarray:
        """(14,) joint positions of the reset pose (ALOHA start pose)."""
        q = self._home_qpos
        out = np.empty(NUM_JOINTS)
        out[self._arm_idx] = q[self._arm_qadr]
        out[list(GRIPPER_INDICES)] = finger_to_normalized(q[self._finger_qadr])
        return out

    @property
    def step_count(self) -> int:
        """Control ticks since the last reset."""
        return self._step

    @property
    def time(self) -> float:
        """Simulated seconds since the last reset."""
        return float(self.data.time)

    @property
    def progress(self) -> int:
        """Max :class:`TaskStage` reached in this episode (0..5, monotone)."""
        return self._progress

    @property
    def stage(self) -> TaskStage:
        """Instantaneous task stage of the current state."""
        return self._stage

    @property
    def task(self) -> str:
        """The task's name (``transfer_cube`` or ``conveyor_cube``)."""
        return self._task.name

    @property
    def task_info(self) -> dict[str, Any]:
        """JSON-able task state (``conveyor_cube``: belt speed, number of speed changes)."""
        return self._task.info()

    @property
    def protective_stop_config(self) -> ProtectiveStopConfig:
        """The limits and recovery time in force."""
        return self._stops.config

    @property
    def protective_stops(self) -> list[ProtectiveStopEvent]:
        """Protective stops since the last reset, oldest first (arm, joint, reason, value, limit)."""
        return list(self._stops.events)

    @property
    def protective_stop_counts(self) -> dict[str, int]:
        """Number of protective stops per arm (``left``, ``right``) since the last reset."""
        return self._stops.counts()

    @property
    def protective_stop_active(self) -> bool:
        """True while an arm holds after a stop (its commands are ignored)."""
        return any(self._stops.active(self._step).values())

    @property
    def protective_stop_holds(self) -> dict[int, float]:
        """The joints held by a stop now, ``{index in joint_names: held position}`` (empty: none)."""
        return self._stops.held_joints(self._step)

    @property
    def success(self) -> bool:
        """True once the cube was held by the left gripper alone for success_hold_steps."""
        return self._success

    # ------------------------------------------------------------------ core API
    def reset(self, seed: int | None = None) -> SimObservation:
        """Reset arms to the ALOHA start pose and place the cube at a random position.

        Args:
            seed: seeds the cube position (x ~ U(cube_x_range), y ~ U(cube_y_range));
                ``None`` continues the current random stream.

        Returns:
            The initial observation.
        """
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        m, d = self.model, self.data
        mujoco.mj_resetDataKeyframe(m, d, 0)
        x = self._rng.uniform(*self.cube_x_range)
        y = self._rng.uniform(*self.cube_y_range)
        d.qpos[self._cube_qadr : self._cube_qadr + 7] = [x, y, CUBE_HALF_SIZE, 1, 0, 0, 0]
        d.qvel[:] = 0.0
        d.ctrl[:] = 0.0
        d.ctrl[self._arm_act] = d.qpos[self._arm_qadr]
        d.ctrl[self._finger_act] = d.qpos[self._finger_qadr]
        mujoco.mj_forward(m, d)
        self._step = 0
        self._progress = 0
        self._hold = 0
        self._success = False
        self._task.reset(self, self._rng)
        self._stops.reset(self.joint_positions())
        self._stage = self._compute_stage()
        logger.debug("reset seed=%s cube=(%.3f, %.3f)", seed, x, y)
        return self.observation()

    def step(self, command: np.ndarray) -> StepResult:
        """Apply joint position targets for one 20 ms control tick.

        Args:
            command: (14,) targets in JOINT_NAMES order; arms in rad, grippers as
                normalised opening (0 closed, 1 open).  Values outside
                :attr:`joint_limits` are clamped (``StepResult.clamped``).  With protective
                stops on, an arm whose command exceeds its velocity or torque limit holds its
                position instead (:attr:`protective_stops`).

        Returns:
            The :class:`StepResult` after ``N_SUBSTEPS`` physics steps.

        Raises:
            ValueError: wrong shape or non-finite values.
        """
        cmd = np.asarray(command, dtype=np.float64)
        if cmd.shape != (NUM_JOINTS,):
            raise ValueError(f"command must have shape ({NUM_JOINTS},), got {cmd.shape}")
        if not np.all(np.isfinite(cmd)):
            bad = [JOINT_NAMES[i] for i in np.flatnonzero(~np.isfinite(cmd))]
            raise ValueError(f"command contains NaN/inf for joints {bad}")
        clipped = np.clip(cmd, self._lower, self._upper)
        clamped = bool(np.any(clipped != cmd))
        if clamped:
            logger.debug("command clamped to joint limits at step %d", self._step)
        n_stops = len(self._stops.events)
        clipped = self._stops.filter(self, clipped)
        d = self.data
        d.ctrl[self._arm_act] = clipped[self._arm_idx]
        finger = FINGER_CLOSED + clipped[list(GRIPPER_INDICES)] * (FINGER_OPEN - FINGER_CLOSED)
        d.ctrl[self._finger_act[:, 0]] = finger
        d.ctrl[self._finger_act[:, 1]] = -finger
        self._task.physics(self)
        self._step += 1
        self._stage = self._compute_stage()
        self._progress = max(self._progress, int(self._stage))
        self._hold = self._hold + 1 if self._stage == TaskStage.TRANSFERRED else 0
        if self._hold >= self.success_hold_steps and not self._success:
            self._success = True
            logger.info("cube transfer succeeded at step %d", self._step)
        return StepResult(
            obs=self.observation(),
            stage=self._stage,
            progress=self._progress,
            success=self._success,
            truncated=self._step >= self.max_episode_steps,
            clamped=clamped,
            protective_stop=len(self._stops.events) > n_stops,
        )

    def observation(self) -> SimObservation:
        """Current :class:`SimObservation` (copies)."""
        return SimObservation(
            joint_positions=self.joint_positions(),
            joint_velocities=self.joint_velocities(),
            cube_pose=self.cube_pose(),
            time=self.time,
            step=self._step,
        )

    def joint_positions(self) -> np.ndarray:
        """(14,) measured joint positions: rad for arms, normalised opening for grippers."""
        q = self.data.qpos
        out = np.empty(NUM_JOINTS)
        out[self._arm_idx] = q[self._arm_qadr]
        out[list(GRIPPER_INDICES)] = finger_to_normalized(q[self._finger_qadr])
        return out

    def joint_velocities(self) -> np.ndarray:
        """(14,) joint velocities: rad/s for arms, normalised opening per second for grippers."""
        v = self.data.qvel
        out = np.empty(NUM_JOINTS)
        out[self._arm_idx] = v[self._arm_vadr]
        fv = v[self._finger_vadr]
        out[list(GRIPPER_INDICES)] = 0.5 * (fv[:, 0] - fv[:, 1]) / (FINGER_OPEN - FINGER_CLOSED)
        return out

    def cube_pose(self) -> np.ndarray:
        """(7,) cube position xyz (m, world) and quaternion (w, x, y, z)."""
        return self.data.qpos[self._cube_qadr : self._cube_qadr + 7].copy()

    def render(self, camera: str = "top", width: int = 64, height: int = 48) -> np.ndarray:
        """Render an RGB image headlessly (MUJOCO_GL, default ``egl``; shadows off).

        Args:
            camera: one of :attr:`camera_names` (``top``, ``angle``, ``left_wrist``, ...).
            width: image width in pixels (<= model offscreen width, 640).
            height: image height in pixels (<= 480).

        Returns:
            (height, width, 3) uint8 image.

        Raises:
            ValueError: unknown camera or size out of range.
            RuntimeError: no working headless GL backend.
        """
        return self._render_cache.render(self.data, camera, width, height)

    def close(self) -> None:
        """Free the GL renderers (safe to call more than once)."""
        self._render_cache.close()

    def __enter__(self) -> "BimanualSim":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers
    def tool_point(self, side: str, offset: float) -> np.ndarray:
        """(3,) world position of the point ``offset`` m along the gripper's x axis."""
        b = self.gripper_bodies[side]
        return self.data.xpos[b] + self.data.xmat[b].reshape(3, 3)[:, 0] * offset

    def _compute_stage(self) -> TaskStage:
        return self._task.stage(self)

    def snapshot(self) -> dict[str, Any]:
        """Everything :meth:`restore` needs to continue from the current state (physics, episode
        bookkeeping, task, protective stops); for planning on a second simulator of the same model."""
        m, d = self.model, self.data
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(m, spec))
        mujoco.mj_getState(m, d, state, spec)
        return {"state": state, "py": copy.deepcopy((self._step, self._progress, self._stage, self._hold,
                                                     self._success, self._task, self._stops))}

    def restore(self, snap: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` (of this or another simulator of the same model)."""
        mujoco.mj_setState(self.model, self.data, snap["state"], mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)
        (self._step, self._progress, self._stage, self._hold, self._success, self._task,
         self._stops) = copy.deepcopy(snap["py"])
