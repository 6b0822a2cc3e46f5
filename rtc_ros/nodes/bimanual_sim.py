"""bimanual_sim: the MuJoCo bimanual ALOHA (2 x ViperX 300s) simulator as a ROS 2 node.

Physics, task and units are those of :class:`rtc_ros.sim.bimanual.BimanualSim` (14 joints
``[left 6 arm joints, left_gripper, right 6, right_gripper]``, arms in rad, grippers as normalised
opening 0 = closed .. 1 = open; position control at 50 Hz, one :meth:`BimanualSim.step` = 20 ms).

A dedicated loop thread steps the simulation on absolute wall-clock deadlines (``real_time_factor``
1.0 = real time, so inference delays are real) and every tick publishes

* ``joint_states`` -- ``sensor_msgs/JointState`` (14 names, positions, velocities), reliable;
* ``rtc/progress`` -- ``std_msgs/Int32``, the episode's running task progress 0..5
  (:class:`rtc_ros.sim.bimanual.TaskStage`: reach, grasp, lift, hand over, transfer);
* ``sim/status``   -- ``std_msgs/String`` JSON ``{"episode", "seed", "state", "step", "progress",
  "stage", "success", "truncated", "cube"}`` (every ``status_period`` s and on every state change);
  ``state`` is ``holding`` (after a reset: commands ignored for ``reset_hold_s``), ``running`` or
  ``done`` (success latched, or ``max_episode_steps`` reached; the arms keep following commands);
* ``camera_topic`` -- ``sensor_msgs/Image`` rgb8 of ``camera_width x camera_height`` at
  ``camera_rate_hz`` (0 disables), headless EGL, shadows off. ``camera: workspace`` (default) is a
  top-down free camera over the table (``camera_lookat``/``camera_distance``/``camera_azimuth``/
  ``camera_elevation``); any camera of the MJCF (``top``, ``angle``, ``left_wrist``, ...) works too;
* ``/clock`` -- ``rosgraph_msgs/Clock`` (simulated time, continuous over resets) when ``publish_clock``
  is true; all stamps then use simulated time.

Commands are accepted in every format the chunk executor can emit, on all of these topics at once
(per arm ``<arm>``, relative names; defaults = :data:`rtc_ros.nodes.params.DEFAULT_COMMAND_TOPIC`):

* ``<arm>.float64_topic``     ``std_msgs/Float64MultiArray`` with 7 values (forward_command_controller);
* ``<arm>.trajectory_topic``  ``trajectory_msgs/JointTrajectory`` (joint_trajectory_controller; the
  point due one period after the header stamp, points reordered by ``joint_names``);
* ``<arm>.joint_state_topic`` ``sensor_msgs/JointState`` (positions by name; extra names ignored).

The newest command of each arm is held until the next one (position controllers hold).

Episodes: ``sim/reset`` (``std_msgs/String``, JSON ``{"seed": int | null, "hold_s": float}`` or empty)
teleports the arms to the start pose, places the cube (seeded) and holds for ``hold_s`` (default
``reset_hold_s``) before applying commands again -- long enough for the executor's in-flight chunks
from the previous episode to be replaced by ones conditioned on the new state.

Run: ``python -m rtc_ros.nodes.bimanual_sim --ros-args --params-file config/sim_bimanual.yaml``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported (headless rendering)

import rclpy  # noqa: E402
from rcl_interfaces.msg import ParameterDescriptor  # noqa: E402
from rtc_ros.nodes.common import Throttle  # noqa: E402
from rtc_ros.nodes.spin import spin_node  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.exceptions import ParameterException  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, Int32, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from rtc_ros.sim.camera import CameraConfig, CameraRenderer  # noqa: E402
from rtc_ros.nodes.params import ARM_JOINTS, DEFAULT_COMMAND_TOPIC  # noqa: E402
from rtc_ros.sim.bimanual import CONTROL_DT, NUM_JOINTS, BimanualSim, TaskStage  # noqa: E402

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
ARMS: tuple[str, str] = ("left", "right")
JOINTS_PER_ARM = len(ARM_JOINTS)  # 7 = 6 arm joints + gripper

STATE_HOLDING = "holding"
STATE_RUNNING = "running"
STATE_DONE = "done"


# ============================================================================== ROS-free core
@dataclass
class TickResult:
    """What one :meth:`SimEpisodeRunner.tick` produced (for publishing)."""

    positions: np.ndarray  # (14,) rad / normalised gripper opening
    velocities: np.ndarray  # (14,) rad/s / opening per s
    progress: int  # running max stage of the episode, 0..5
    state: str  # holding | running | done
    changed: bool  # state, progress or success changed at this tick


@dataclass
class SimEpisodeRunner:
    """Episode state machine around :class:`BimanualSim` (no ROS; one call per 20 ms tick).

    Args:
        sim: the simulator.
        reset_hold_s: default seconds to hold the start pose after a reset (commands ignored).
        linger_steps: ticks an episode keeps ``running`` after success before it is ``done``.
    """

    sim: BimanualSim
    reset_hold_s: float = 1.0
    linger_steps: int = 0
    episode: int = -1
    seed: int | None = None
    state: str = STATE_HOLDING
    hold_left: int = 0
    total_ticks: int = 0
    success_step: int = -1
    target: np.ndarray = field(default_factory=lambda: np.zeros(NUM_JOINTS))
    _pending_reset: dict[str, Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def request_reset(self, seed: int | None = None, hold_s: float | None = None) -> None:
        """Ask for a reset at the next tick (thread-safe)."""
        with self._lock:
            self._pending_reset = {"seed": seed, "hold_s": self.reset_hold_s if hold_s is None else float(hold_s)}

    def set_arm_target(self, arm_index: int, values: np.ndarray) -> None:
        """Set the (7,) position target of arm ``arm_index`` (0 = left, 1 = right); thread-safe."""
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (JOINTS_PER_ARM,) or not np.isfinite(v).all():
            raise ValueError(f"arm command must be {JOINTS_PER_ARM} finite values, got {v.tolist()}")
        with self._lock:
            self.target[arm_index * JOINTS_PER_ARM:(arm_index + 1) * JOINTS_PER_ARM] = v

    def _do_reset(self, seed: int | None, hold_s: float) -> None:
        self.sim.reset(seed)
        self.episode += 1
        self.seed = seed
        self.target[:] = self.sim.home_position
        self.hold_left = max(0, int(round(hold_s / CONTROL_DT)))
        self.state = STATE_HOLDING if self.hold_left > 0 else STATE_RUNNING
        self.success_step = -1

    def tick(self) -> TickResult:
        """Advance 20 ms of simulated time: apply a pending reset, then hold or follow the target."""
        with self._lock:
            pending, self._pending_reset = self._pending_reset, None
            target = self.target.copy()
        prev = (self.state, self.sim.progress, self.sim.success)
        if pending is not None:
            self._do_reset(pending["seed"], pending["hold_s"])
            target = self.target.copy()
        self.total_ticks += 1
        if self.state == STATE_HOLDING:
            # teleported start pose, physics frozen; the step counter of the episode does not run
            self.hold_left -= 1
            if self.hold_left <= 0:
                self.state = STATE_RUNNING
            obs = self.sim.observation()
            q, v = obs.joint_positions, obs.joint_velocities
        else:
            res = self.sim.step(target)
            q, v = res.obs.joint_positions, res.obs.joint_velocities
            if res.success and self.success_step < 0:
                self.success_step = res.obs.step
            if self.state == STATE_RUNNING and (
                res.truncated or (self.success_step >= 0 and res.obs.step - self.success_step >= self.linger_steps)
            ):
                self.state = STATE_DONE
        changed = prev != (self.state, self.sim.progress, self.sim.success) or pending is not None
        return TickResult(q, v, self.sim.progress, self.state, changed)

    def status(self) -> dict[str, Any]:
        """JSON-able status (see module docstring)."""
        return {
            "episode": self.episode, "seed": self.seed, "state": self.state, "step": self.sim.step_count,
            "progress": int(self.sim.progress), "stage": int(self.sim.stage), "success": bool(self.sim.success),
            "truncated": bool(self.sim.step_count >= self.sim.max_episode_steps),
            "success_step": self.success_step,
            "cube": [round(float(x), 4) for x in self.sim.cube_pose()[:3]],
        }


def pick_trajectory_point(msg: JointTrajectory, names: list[str], now_ns: int, dt: float) -> np.ndarray:
    """Positions ``(len(names),)`` of a ``JointTrajectory`` that apply at the next tick.

    The point used is the last one whose due time (``header.stamp + time_from_start``, or receipt
    time when the stamp is zero) is at most one period ``dt`` from ``now_ns``; the first point if
    none is due yet. Joints are matched by name.

    Raises:
        ValueError: missing joints, no points, wrong sizes, non-finite values.
    """
    if not msg.points:
        raise ValueError("trajectory has no points")
    index = {n: i for i, n in enumerate(msg.joint_names)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"trajectory lacks joints {missing} (has {list(msg.joint_names)})")
    start_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
    if start_ns == 0:
        start_ns = now_ns
    horizon_ns = now_ns + int(dt * 1e9)
    chosen = msg.points[0]
    for p in msg.points:
        due = start_ns + p.time_from_start.sec * 1_000_000_000 + p.time_from_start.nanosec
        if due <= horizon_ns:
            chosen = p
        else:
            break
    pos = np.asarray(chosen.positions, dtype=np.float64)
    if pos.shape[0] != len(msg.joint_names):
        raise ValueError(f"point has {pos.shape[0]} positions for {len(msg.joint_names)} joints")
    out = pos[[index[n] for n in names]]
    if not np.isfinite(out).all():
        raise ValueError("trajectory point contains NaN/inf")
    return out


def joint_state_positions(msg: JointState, names: list[str]) -> np.ndarray:
    """Positions ``(len(names),)`` of a ``JointState`` by name (extra names ignored).

    Raises:
        ValueError: missing joints, size mismatch, non-finite values.
    """
    if len(msg.position) != len(msg.name):
        raise ValueError(f"{len(msg.name)} names but {len(msg.position)} positions")
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"joint state lacks joints {missing}")
    out = np.asarray([msg.position[index[n]] for n in names], dtype=np.float64)
    if not np.isfinite(out).all():
        raise ValueError("joint command contains NaN/inf")
    return out


# ============================================================================== the node
class BimanualSimNode(Node):
    """See module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("bimanual_sim", **kwargs)
        g = self._param
        self.rtf = float(g("real_time_factor", 1.0, "Simulated seconds per wall-clock second (1.0 = real time)."))
        if not 0.01 <= self.rtf <= 100.0:
            raise ValueError(f"invalid parameter 'real_time_factor' = {self.rtf}: must be in [0.01, 100]")
        max_steps = int(g("max_episode_steps", 750, "Ticks (20 ms) after which an episode is done (truncated)."))
        hold_s = float(g("reset_hold_s", 1.0, "Default seconds the start pose is held after a reset."))
        linger_s = float(g("success_linger_s", 0.0, "Seconds an episode keeps running after success before 'done'."))
        self.seed = int(g("seed", 0, "Cube seed of the first episode (-1: unseeded)."))
        self.start_hold_s = float(g("start_hold_s", 0.0, "Seconds the first episode holds the start pose."))
        self.joint_states_topic = str(g("joint_states_topic", "joint_states", "Joint state topic (relative)."))
        self.progress_topic = str(g("progress_topic", "rtc/progress", "Task progress topic (std_msgs/Int32)."))
        self.status_topic = str(g("status_topic", "sim/status", "Episode status (std_msgs/String JSON)."))
        self.reset_topic = str(g("reset_topic", "sim/reset", "Episode reset requests (std_msgs/String JSON)."))
        self.status_period = float(g("status_period", 0.2, "Seconds between periodic status messages."))
        self.publish_clock = bool(g("publish_clock", False, "Publish /clock with simulated time."))
        self.camera_topic = str(g("camera_topic", "cam_high/image_raw", "Camera image topic (relative)."))
        self.camera = str(g("camera", "workspace", "'workspace' (top-down free camera) or an MJCF camera name."))
        self.camera_rate = float(g("camera_rate_hz", 10.0, "Camera rate in Hz (0 disables; at most 50)."))
        self.cam_w = int(g("camera_width", CameraConfig.width, "Image width in pixels (1..640)."))
        self.cam_h = int(g("camera_height", CameraConfig.height, "Image height in pixels (1..480)."))
        dc = CameraConfig()
        lookat = [float(x) for x in g("camera_lookat", list(dc.lookat), "workspace camera: look-at point (m).")]
        if len(lookat) != 3:
            raise ValueError(f"invalid parameter 'camera_lookat' = {lookat}: needs 3 values")
        cam_dist = float(g("camera_distance", dc.distance, "workspace camera: distance from the look-at point (m)."))
        cam_az = float(g("camera_azimuth", dc.azimuth, "workspace camera: azimuth (deg)."))
        cam_el = float(g("camera_elevation", dc.elevation, "workspace camera: elevation (deg, -90 = straight down)."))
        self.names: list[str] = []
        self._arm_topics: dict[str, dict[str, str]] = {}
        for arm in ARMS:
            names = [str(n) for n in g(f"{arm}.joint_names", [f"{arm}_{j}" for j in ARM_JOINTS],
                                       "Joint names of this arm in command order (6 joints + gripper).")]
            if len(names) != JOINTS_PER_ARM:
                raise ValueError(f"invalid parameter '{arm}.joint_names' = {names}: needs {JOINTS_PER_ARM} names")
            self.names += names
            self._arm_topics[arm] = {
                kind: str(g(f"{arm}.{pname}", DEFAULT_COMMAND_TOPIC[kind].format(arm=arm),
                            f"Command topic of this arm for {kind} messages ('' disables)."))
                for kind, pname in (("float64_multi_array", "float64_topic"),
                                    ("joint_trajectory", "trajectory_topic"),
                                    ("joint_state", "joint_state_topic"))
            }
        if not (1 <= self.cam_w <= 640 and 1 <= self.cam_h <= 480):
            raise ValueError(f"invalid parameter 'camera_width'/'camera_height' = {self.cam_w}x{self.cam_h}: "
                             "must be within 1..640 x 1..480 (the model's offscreen buffer)")
        if self.camera_rate < 0 or self.camera_rate > 50:
            raise ValueError(f"invalid parameter 'camera_rate_hz' = {self.camera_rate}: must be in [0, 50]")

        self.sim = BimanualSim(max_episode_steps=max_steps)
        self.runner = SimEpisodeRunner(self.sim, reset_hold_s=hold_s, linger_steps=int(round(linger_s / CONTROL_DT)))
        self.runner.request_reset(None if self.seed < 0 else self.seed, self.start_hold_s)
        # --- camera (the GL context is made in the loop thread: EGL contexts are per thread) ---
        self._renderer: CameraRenderer | None = None
        self._cam_lookat, self._cam_pose = lookat, (cam_dist, cam_az, cam_el)
        if self.camera_rate > 0 and self.camera != "workspace" and self.camera not in self.sim.camera_names:
            raise ValueError(f"invalid parameter 'camera' = {self.camera!r}: use 'workspace' or one of "
                             f"{self.sim.camera_names}")
        self._cam_every = max(1, int(round(1.0 / (self.camera_rate * CONTROL_DT)))) if self.camera_rate > 0 else 0
        # --- publishers ---
        self._js_pub = self.create_publisher(JointState, self.joint_states_topic, RELIABLE)
        self._progress_pub = self.create_publisher(Int32, self.progress_topic, RELIABLE)
        self._status_pub = self.create_publisher(String, self.status_topic, RELIABLE)
        self._img_pub = self.create_publisher(Image, self.camera_topic, RELIABLE) if self.camera_rate > 0 else None
        self._clock_pub = self.create_publisher(Clock, "/clock", 10) if self.publish_clock else None
        # --- subscriptions ---
        self.commands_received: dict[str, int] = {}
        self.commands_rejected = 0
        for i, arm in enumerate(ARMS):
            arm_names = self.names[i * JOINTS_PER_ARM:(i + 1) * JOINTS_PER_ARM]
            t = self._arm_topics[arm]
            if t["float64_multi_array"]:
                self.create_subscription(Float64MultiArray, t["float64_multi_array"],
                                         lambda m, i=i, k=t["float64_multi_array"]: self._on_f64(i, k, m), RELIABLE)
            if t["joint_trajectory"]:
                self.create_subscription(JointTrajectory, t["joint_trajectory"],
                                         lambda m, i=i, n=arm_names, k=t["joint_trajectory"]: self._on_traj(i, n, k, m),
                                         RELIABLE)
            if t["joint_state"]:
                self.create_subscription(JointState, t["joint_state"],
                                         lambda m, i=i, n=arm_names, k=t["joint_state"]: self._on_js(i, n, k, m),
                                         RELIABLE)
        self.create_subscription(String, self.reset_topic, self._on_reset, RELIABLE)
        self._throttled = Throttle()
        self._last_status = 0.0
        self.overruns = 0
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._loop, name="bimanual_sim_loop", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"bimanual_sim: {1 / CONTROL_DT:g} Hz x{self.rtf:g} real time, joints on '{self.joint_states_topic}', "
            f"commands on {self._arm_topics}, camera {self.camera} {self.cam_w}x{self.cam_h} @ {self.camera_rate:g} Hz "
            f"on '{self.camera_topic}', progress on '{self.progress_topic}', reset on '{self.reset_topic}'"
            + (", publishing /clock" if self.publish_clock else ""))

    # ------------------------------------------------------------------------------ helpers
    def _param(self, name: str, default: Any, description: str) -> Any:
        d = ParameterDescriptor(description=description, read_only=True)
        try:
            value = self.declare_parameter(name, default, d).value
        except ParameterException as exc:
            raise ValueError(f"invalid parameter '{name}': {exc}") from exc
        return list(value) if isinstance(default, list) else value

    def _stamp(self) -> Any:
        if self.publish_clock:
            ns = int(self.runner.total_ticks * CONTROL_DT * 1e9)
            from builtin_interfaces.msg import Time

            return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
        return self.get_clock().now().to_msg()

    # ------------------------------------------------------------------------------ callbacks
    def _accept(self, arm_index: int, topic: str, values: np.ndarray) -> None:
        try:
            self.runner.set_arm_target(arm_index, values)
        except ValueError as exc:
            self._reject(topic, str(exc))
            return
        self.commands_received[topic] = self.commands_received.get(topic, 0) + 1

    def _reject(self, topic: str, why: str) -> None:
        self.commands_rejected += 1
        if self._throttled("reject_" + topic, 2.0):
            self.get_logger().warn(f"ignoring command on '{topic}': {why}")

    def _on_f64(self, arm_index: int, topic: str, msg: Float64MultiArray) -> None:
        if len(msg.data) != JOINTS_PER_ARM:
            self._reject(topic, f"expected {JOINTS_PER_ARM} values, got {len(msg.data)}")
            return
        self._accept(arm_index, topic, np.asarray(msg.data, dtype=np.float64))

    def _on_traj(self, arm_index: int, names: list[str], topic: str, msg: JointTrajectory) -> None:
        try:
            values = pick_trajectory_point(msg, names, self.get_clock().now().nanoseconds, CONTROL_DT)
        except ValueError as exc:
            self._reject(topic, str(exc))
            return
        self._accept(arm_index, topic, values)

    def _on_js(self, arm_index: int, names: list[str], topic: str, msg: JointState) -> None:
        try:
            values = joint_state_positions(msg, names)
        except ValueError as exc:
            self._reject(topic, str(exc))
            return
        self._accept(arm_index, topic, values)

    def _on_reset(self, msg: String) -> None:
        seed: int | None = None
        hold: float | None = None
        text = msg.data.strip()
        if text:
            try:
                req = json.loads(text)
                if not isinstance(req, dict):
                    raise ValueError("expected a JSON object")
                seed = None if req.get("seed") is None else int(req["seed"])
                hold = None if req.get("hold_s") is None else float(req["hold_s"])
            except (ValueError, TypeError) as exc:
                self.get_logger().error(f"bad reset request {text!r}: {exc}")
                return
        self.runner.request_reset(seed, hold)
        self.get_logger().info(f"reset requested (seed={seed}, hold_s={hold if hold is not None else 'default'})")

    # ------------------------------------------------------------------------------ the loop
    def _make_renderer(self) -> None:
        """Create the offscreen renderer (in the loop thread: EGL contexts are per thread)."""
        lookat = self._cam_lookat
        dist, az, el = self._cam_pose
        self._renderer = CameraRenderer(self.sim.model, CameraConfig(
            self.camera, self.cam_w, self.cam_h, (lookat[0], lookat[1], lookat[2]), dist, az, el))

    def _loop(self) -> None:
        """Absolute-deadline loop on the monotonic clock (no catch-up bursts after an overrun)."""
        if self.camera_rate > 0:
            try:
                self._make_renderer()
            except Exception as exc:  # noqa: BLE001 -- no GL: run without camera, say so loudly
                self.get_logger().error(f"camera disabled, headless rendering failed: {exc!r}")
                self._img_pub = None
        period = CONTROL_DT / self.rtf
        next_t = time.monotonic()
        while self._running.is_set() and rclpy.ok():
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 -- log and keep the loop (a dead sim is worse)
                if self._throttled("tick_err", 1.0):
                    self.get_logger().error(f"sim tick failed: {exc!r}")
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif -delay > period:
                self.overruns += 1
                next_t += period * (int(-delay / period))
                if self._throttled("overrun", 5.0):
                    self.get_logger().warn(f"sim loop overrun: {-delay * 1e3:.1f} ms behind ({self.overruns} total)")
        if self._renderer is not None:
            try:
                self._renderer.close()  # in the thread that owns the GL context
            except Exception:  # noqa: BLE001 -- GL teardown best effort
                pass
            self._renderer = None

    def _tick(self) -> None:
        res = self.runner.tick()
        stamp = self._stamp()
        if self._clock_pub is not None:
            self._clock_pub.publish(Clock(clock=stamp))
        js = JointState()
        js.header.stamp = stamp
        js.name = self.names
        js.position = res.positions.tolist()
        js.velocity = res.velocities.tolist()
        self._js_pub.publish(js)
        self._progress_pub.publish(Int32(data=int(res.progress)))
        if self._img_pub is not None and self.runner.total_ticks % self._cam_every == 0:
            pixels = self._renderer.render(self.sim.data)
            img = Image()
            img.header.stamp = stamp
            img.header.frame_id = "cam_high" if self.camera == "workspace" else self.camera
            img.height, img.width = int(pixels.shape[0]), int(pixels.shape[1])
            img.encoding = "rgb8"
            img.step = img.width * 3
            img.data = pixels.tobytes()
            self._img_pub.publish(img)
        now = time.monotonic()
        if res.changed or now - self._last_status >= self.status_period:
            self._last_status = now
            st = self.runner.status()
            self._status_pub.publish(String(data=json.dumps(st)))
            if res.changed:
                self.get_logger().info(f"episode {st['episode']}: {st['state']}, progress {st['progress']} "
                                       f"({TaskStage(st['progress']).name}), success {st['success']}, step {st['step']}")

    def stop(self) -> None:
        self._running.clear()
        self._thread.join(timeout=1.0)
        self.sim.close()


def main(args: list[str] | None = None) -> int:
    """Run the bimanual_sim node until Ctrl-C; exit code 2 on an invalid parameter."""
    sys.setswitchinterval(0.0005)  # the physics loop thread must get the GIL often
    return spin_node(BimanualSimNode, "bimanual_sim", (ValueError,), args)


if __name__ == "__main__":
    sys.exit(main())
