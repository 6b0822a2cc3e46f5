"""ROS-free MuJoCo simulator of two ViperX 300s arms (ALOHA) with a cube-transfer task.

The model (meshes and MJCF) is the ``bimanual_viperx_transfer_cube.xml`` scene shipped in
the ``gym-aloha`` PyPI package; it is loaded with plain :mod:`mujoco` (no dm_control/gym).

Units, joint order and result types: :mod:`rtc_ros.sim.layout`; the task's stages: :mod:`rtc_ros.sim.task`.
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref
from pathlib import Path

# The GL backend is read when mujoco is imported: default to headless EGL.
os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from rtc_ros.sim.layout import (  # noqa: E402
    ARM_JOINTS, CONTROL_DT, CUBE_HALF_SIZE, DEFAULT_CUBE_X_RANGE, DEFAULT_CUBE_Y_RANGE, FINGER_CLOSED, FINGER_OPEN,
    GRIPPER_INDICES, JOINT_NAMES, N_SUBSTEPS, NUM_JOINTS, SIDES, XML_NAME, SimObservation, StepResult, TaskStage,
    aloha_assets_dir, finger_to_normalized,
)
from rtc_ros.sim.task import compute_stage  # noqa: E402

logger = logging.getLogger(__name__)

_LIVE_RENDERERS: "weakref.WeakSet[BimanualSim]" = weakref.WeakSet()
_ATEXIT_REGISTERED = False


def _close_live_renderers() -> None:
    # mujoco's EGL backend terminates the display at exit; contexts freed after that raise
    # noisy errors, so free ours first (registered after mujoco's hook => runs before it).
    for sim in list(_LIVE_RENDERERS):
        sim.close()


def _register_atexit_once() -> None:
    global _ATEXIT_REGISTERED
    if not _ATEXIT_REGISTERED:
        atexit.register(_close_live_renderers)
        _ATEXIT_REGISTERED = True


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
    ) -> None:
        """Load the ALOHA transfer-cube model.

        Args:
            max_episode_steps: ticks after which ``StepResult.truncated`` becomes True.
            success_hold_steps: consecutive TRANSFERRED ticks required for success.
            cube_x_range: (low, high) uniform range of the cube x position in metres.
            cube_y_range: (low, high) uniform range of the cube y position in metres.
            xml_path: alternative MJCF file (default: gym-aloha's transfer-cube scene).
        """
        if max_episode_steps <= 0 or success_hold_steps <= 0:
            raise ValueError("max_episode_steps and success_hold_steps must be positive")
        path = Path(xml_path) if xml_path is not None else aloha_assets_dir() / XML_NAME
        self.model: mujoco.MjModel = mujoco.MjModel.from_xml_path(str(path))
        self.data: mujoco.MjData = mujoco.MjData(self.model)
        m = self.model
        if abs(m.opt.timestep * N_SUBSTEPS - CONTROL_DT) > 1e-9:
            raise ValueError(
                f"model timestep {m.opt.timestep} s does not give {CONTROL_DT} s "
                f"in {N_SUBSTEPS} substeps"
            )
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
            fingers.append(
                (jid(f"vx300s_{side}/left_finger"), jid(f"vx300s_{side}/right_finger"))
            )
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
        self._finger_geoms = {
            side: (
                gid(f"vx300s_{side}/10_left_gripper_finger"),
                gid(f"vx300s_{side}/10_right_gripper_finger"),
            )
            for side in SIDES
        }
        self._gripper_geoms = {
            side: frozenset(
                g
                for g in range(m.ngeom)
                if (mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, int(m.geom_bodyid[g])) or "")
                .startswith(f"vx300s_{side}/")
                and any(
                    k in (mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) or "")
                    for k in ("gripper", "finger")
                )
            )
            for side in SIDES
        }
        self.gripper_bodies: dict[str, int] = {
            side: int(
                mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"vx300s_{side}/gripper_link")
            )
            for side in SIDES
        }
        self.camera_names: tuple[str, ...] = tuple(
            mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_CAMERA, c) for c in range(m.ncam)
        )
        self._home_qpos = m.key_qpos[0].copy()

        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
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
        self._stage = self._compute_stage()
        logger.debug("reset seed=%s cube=(%.3f, %.3f)", seed, x, y)
        return self.observation()

    def step(self, command: np.ndarray) -> StepResult:
        """Apply joint position targets for one 20 ms control tick.

        Args:
            command: (14,) targets in JOINT_NAMES order; arms in rad, grippers as
                normalised opening (0 closed, 1 open).  Values outside
                :attr:`joint_limits` are clamped (``StepResult.clamped``).

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
        d = self.data
        d.ctrl[self._arm_act] = clipped[self._arm_idx]
        finger = FINGER_CLOSED + clipped[list(GRIPPER_INDICES)] * (FINGER_OPEN - FINGER_CLOSED)
        d.ctrl[self._finger_act[:, 0]] = finger
        d.ctrl[self._finger_act[:, 1]] = -finger
        mujoco.mj_step(self.model, d, nstep=N_SUBSTEPS)
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
        if camera not in self.camera_names:
            raise ValueError(f"unknown camera {camera!r}; choose from {self.camera_names}")
        if not (0 < width <= self.model.vis.global_.offwidth) or not (
            0 < height <= self.model.vis.global_.offheight
        ):
            raise ValueError(
                f"image size {width}x{height} outside 1..{self.model.vis.global_.offwidth}"
                f"x1..{self.model.vis.global_.offheight}"
            )
        key = (int(width), int(height))
        renderer = self._renderers.get(key)
        if renderer is None:
            try:
                renderer = mujoco.Renderer(self.model, height=key[1], width=key[0])
            except Exception as exc:
                raise RuntimeError(
                    "headless rendering unavailable (MUJOCO_GL="
                    f"{os.environ.get('MUJOCO_GL')!r}; needs libEGL + Mesa, see "
                    f"scripts/install_system_deps.sh): {exc!r}"
                ) from exc
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            self._renderers[key] = renderer
            _LIVE_RENDERERS.add(self)
            _register_atexit_once()
        renderer.update_scene(self.data, camera=camera)
        return renderer.render()

    def close(self) -> None:
        """Free the GL renderers (safe to call more than once)."""
        for r in self._renderers.values():
            try:
                r.close()
            except Exception:  # pragma: no cover - GL teardown best effort
                logger.debug("renderer close failed", exc_info=True)
        self._renderers.clear()
        _LIVE_RENDERERS.discard(self)

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
        return compute_stage(self)
