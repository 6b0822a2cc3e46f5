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
  "stage", "success", "truncated", "cube", "task", "protective_stops", "protective_stops_by_arm",
  "protective_stop_active"}`` (every ``status_period`` s and on every state change or protective stop; both
  counts null with ``protective_stops: false``: not counted;
  ``conveyor_cube`` adds ``belt_speed``, ``belt_changes``, ``cube_driven``);
  ``state`` is ``holding`` (after a reset: commands ignored for ``reset_hold_s``), ``running`` or
  ``done`` (success latched, or ``max_episode_steps`` reached; the arms keep following commands, the
  outcome fields stay as they were at ``done`` and later stops go to ``protective_stops_after_done``);
* ``camera_topic`` -- ``sensor_msgs/Image`` rgb8 of ``camera_width x camera_height`` at
  ``camera_rate_hz`` (0 disables), headless EGL, shadows off. ``camera: workspace`` (default) is a
  top-down free camera over the table (``camera_lookat``/``camera_distance``/``camera_azimuth``/
  ``camera_elevation``); any camera of the MJCF (``top``, ``angle``, ``left_wrist``, ...) works too;
* ``protective_stop_topic`` -- ``std_msgs/String`` JSON ``{"episode", "seed", "count", "counts", "event":
  {"step", "time", "arm", "joint", "reason", "value", "limit"}}`` for every protective stop (an arm's command
  beyond the ViperX velocity or torque limits: the arm holds for ``protective_stop_recovery_s``;
  :mod:`rtc_ros.sim.limits`, ``docs/sim_arms.md``); the episode recorder records it by default;
* ``robot_stopped_topic`` -- ``sensor_msgs/JointState``: the joints held by a protective stop now (``name``;
  every joint of a stopped arm) and the positions they are held at (``position``); empty while no arm is
  stopped (on every change and with every status message; transient local): what ``chunk_executor``'s
  ``robot_stopped_topic`` re-syncs on (a real robot's per-arm safety state, bridged to this message,
  plays this part);
* ``/clock`` -- ``rosgraph_msgs/Clock`` (simulated time, continuous over resets) when ``publish_clock``
  is true; all stamps then use simulated time.

Commands are accepted in every format the chunk executor can emit, on all of these topics at once
(per arm ``<arm>``, relative names; defaults = :data:`rtc_ros.nodes.params.DEFAULT_COMMAND_TOPIC`):

* ``<arm>.float64_topic``     ``std_msgs/Float64MultiArray`` with 7 values (forward_command_controller);
* ``<arm>.trajectory_topic``  ``trajectory_msgs/JointTrajectory`` (joint_trajectory_controller; the
  point due one period after the header stamp, points reordered by ``joint_names``);
* ``<arm>.joint_state_topic`` ``sensor_msgs/JointState`` (positions by name; extra names ignored).

Each arm takes one command per tick in arrival order (commands that arrive together over DDS are
spread over consecutive ticks, at most ``max_queued`` = 2 waiting; :class:`~rtc_ros.sim.episode.SimEpisodeRunner`);
the last one is held until the next (position controllers hold).

Parameters: the ``sim`` role of :mod:`rtc_ros.nodes.params` (``real_time_factor``, ``reset_hold_s``
and ``status_period`` can change at run time). The episode logic is
:class:`rtc_ros.sim.episode.SimEpisodeRunner` (ROS-free).

Episodes: ``sim/reset`` (``std_msgs/String``, JSON ``{"seed": int | null, "hold_s": float}`` or empty)
teleports the arms to the start pose, places the cube (seeded) and holds for ``hold_s`` (default
``reset_hold_s``) before applying commands again -- long enough for the executor's in-flight chunks
from the previous episode to be replaced by ones conditioned on the new state.

Run: ``python -m rtc_ros.sim.node --ros-args --params-file config/sim_bimanual.yaml``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported (headless rendering)

import rclpy  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, Int32, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from rtc_ros.nodes.common import RELIABLE, Throttle  # noqa: E402
from rtc_ros.nodes.conversions import JointStateReader, ns_to_stamp, rgb_to_image  # noqa: E402
from rtc_ros.nodes.deadline import run_deadline_loop  # noqa: E402
from rtc_ros.nodes.params import ROLE_SIM, ParameterError, declare_and_validate, node_argv  # noqa: E402
from rtc_ros.nodes.spin import spin_node  # noqa: E402
from rtc_ros.sim.bimanual import CONTROL_DT, BimanualSim, TaskStage  # noqa: E402
from rtc_ros.sim.layout import CONTROL_DT_NS  # noqa: E402
from rtc_ros.sim.camera import CameraConfig, CameraRenderer  # noqa: E402
from rtc_ros.nodes.params.yaml_file import applied_in_files  # noqa: E402
from rtc_ros.sim.limits import ProtectiveStopConfig, executor_stop_notes  # noqa: E402
from rtc_ros.sim.episode import JOINTS_PER_ARM, SimEpisodeRunner, pick_trajectory_point  # noqa: E402


class BimanualSimNode(Node):
    """See module docstring. Raises :class:`ParameterError` on an invalid parameter."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("bimanual_sim", **kwargs)
        p = self.p = declare_and_validate(self, ROLE_SIM, on_change=self._on_param_change,
                                      argv=node_argv(kwargs))
        self.names = p.joint_names
        self.sim = BimanualSim(max_episode_steps=p.max_episode_steps, task=p.task, protective_stops=ProtectiveStopConfig(
            enabled=p.protective_stops, recovery_s=p.protective_stop_recovery_s))
        if p.camera_rate_hz > 0 and p.camera != "workspace" and p.camera not in self.sim.camera_names:
            self.sim.close()
            raise ParameterError("camera", p.camera, f"use 'workspace' or one of {list(self.sim.camera_names)}")
        self.runner = SimEpisodeRunner(self.sim, reset_hold_s=p.reset_hold_s,
                                       linger_steps=int(round(p.success_linger_s / CONTROL_DT)))
        self.runner.request_reset(None if p.seed < 0 else p.seed, p.start_hold_s)
        # --- camera (the GL context is made in the loop thread: EGL contexts are per thread) ---
        self._renderer: CameraRenderer | None = None
        self._cam_every = max(1, int(round(1.0 / (p.camera_rate_hz * CONTROL_DT)))) if p.camera_rate_hz > 0 else 0
        # --- publishers ---
        self._js_pub = self.create_publisher(JointState, p.joint_states_topic, RELIABLE)
        self._progress_pub = self.create_publisher(Int32, p.progress_topic, RELIABLE)
        self._status_pub = self.create_publisher(String, p.status_topic, RELIABLE)
        self._stop_pub = self.create_publisher(String, p.protective_stop_topic, RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._stopped_pub = self.create_publisher(JointState, p.robot_stopped_topic, latched) \
            if p.robot_stopped_topic else None
        self._stopped: dict[int, float] | None = None  # the joints held by a stop, last published
        self._img_pub = self.create_publisher(Image, p.camera_topic, RELIABLE) if p.camera_rate_hz > 0 else None
        self._clock_pub = self.create_publisher(Clock, "/clock", 10) if p.publish_clock else None
        # --- subscriptions: every command format of the executor, per arm ---
        self.commands_received: dict[str, int] = {}
        self.commands_rejected = 0
        for i, arm in enumerate(p.arms):
            topics = arm.command_topics
            reader = JointStateReader(arm.joint_names)
            if topics["float64_multi_array"]:
                self.create_subscription(Float64MultiArray, topics["float64_multi_array"],
                                         lambda m, i=i, k=topics["float64_multi_array"]: self._on_f64(i, k, m), RELIABLE)
            if topics["joint_trajectory"]:
                self.create_subscription(JointTrajectory, topics["joint_trajectory"],
                                         lambda m, i=i, n=arm.joint_names, k=topics["joint_trajectory"]:
                                         self._on_traj(i, n, k, m), RELIABLE)
            if topics["joint_state"]:
                self.create_subscription(JointState, topics["joint_state"],
                                         lambda m, i=i, r=reader, k=topics["joint_state"]: self._on_js(i, r, k, m),
                                         RELIABLE)
        self.create_subscription(String, p.reset_topic, self._on_reset, RELIABLE)
        self._throttled = Throttle()
        self._last_status = 0.0
        self.overruns = 0
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._loop, name="bimanual_sim_loop", daemon=True)
        self._thread.start()
        if p.protective_stops:  # the executor's settings in the same params files that make the stops trip or loop
            executor = applied_in_files(node_argv(kwargs), f"{self.get_namespace().rstrip('/')}/chunk_executor")
            for note in executor_stop_notes(executor, [a.name for a in p.arms], CONTROL_DT):
                self.get_logger().warn(note)
        self.get_logger().info(
            f"bimanual_sim: {1 / CONTROL_DT:g} Hz x{p.real_time_factor:g} real time, joints on "
            f"'{p.joint_states_topic}', commands on {[a.command_topics for a in p.arms]}, camera {p.camera} "
            f"{p.camera_width}x{p.camera_height} @ {p.camera_rate_hz:g} Hz on '{p.camera_topic}', progress on "
            f"'{p.progress_topic}', reset on '{p.reset_topic}'" + (", publishing /clock" if p.publish_clock else ""))

    def _on_param_change(self, name: str, value: Any) -> None:
        if name == "reset_hold_s":
            self.runner.reset_hold_s = float(value)

    def _stamp(self) -> Time:
        if self.p.publish_clock:
            return ns_to_stamp(self.runner.total_ticks * CONTROL_DT_NS)  # integer: float ticks x 0.02 fell 1 ns short
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

    def _on_js(self, arm_index: int, reader: JointStateReader, topic: str, msg: JointState) -> None:
        try:
            values = reader.positions(msg)
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
                seed, hold = req.get("seed"), req.get("hold_s")
            except ValueError as exc:
                self.get_logger().error(f"bad reset request {text!r}: {exc}")
                return
        try:
            self.runner.request_reset(seed, hold)
        except ValueError as exc:
            self.get_logger().error(f"bad reset request {text!r}: {exc} (no reset)")
            return
        self.get_logger().info(f"reset requested (seed={seed}, hold_s={hold if hold is not None else 'default'})")

    # ------------------------------------------------------------------------------ the loop
    def _make_renderer(self) -> None:
        """Create the offscreen renderer (in the loop thread: EGL contexts are per thread)."""
        p = self.p
        lookat = p.camera_lookat
        self._renderer = CameraRenderer(self.sim.model, CameraConfig(
            p.camera, p.camera_width, p.camera_height, (lookat[0], lookat[1], lookat[2]), p.camera_distance,
            p.camera_azimuth, p.camera_elevation))

    def _loop(self) -> None:
        """Steps the sim on absolute deadlines (:func:`run_deadline_loop`), period 20 ms / real_time_factor."""
        if self._img_pub is not None:
            try:
                self._make_renderer()
            except Exception as exc:  # noqa: BLE001 -- no GL: run without camera, say so loudly
                self.get_logger().error(f"camera disabled, headless rendering failed: {exc!r}")
                self._img_pub = None
        self.overruns = run_deadline_loop(self._safe_tick, lambda: CONTROL_DT / self.p.real_time_factor,
                                          lambda: self._running.is_set() and rclpy.ok(), self._on_overrun,
                                          min_gap=0.0)  # (simulated time is the tick count: catch up one tick)
        if self._renderer is not None:
            try:
                self._renderer.close()  # in the thread that owns the GL context
            except Exception:  # noqa: BLE001 -- GL teardown best effort
                pass
            self._renderer = None

    def _on_overrun(self, late: float) -> None:
        self.overruns += 1
        if self._throttled("overrun", 5.0):
            self.get_logger().warn(f"sim loop overrun: {late * 1e3:.1f} ms behind ({self.overruns} total)")

    def _safe_tick(self) -> None:
        try:
            self._tick()
        except Exception as exc:  # noqa: BLE001 -- log and keep the loop (a dead sim is worse)
            if not self.context.ok():  # Ctrl-C shut the context down before stop() ended the loop
                self._running.clear()
                return
            if self._throttled("tick_err", 1.0):
                self.get_logger().error(f"sim tick failed: {exc!r}")

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
        for event in res.new_stops:
            self._publish_stop(event)
        if self._img_pub is not None and self._renderer is not None and self.runner.total_ticks % self._cam_every == 0:
            frame = "cam_high" if self.p.camera == "workspace" else self.p.camera
            self._img_pub.publish(rgb_to_image(self._renderer.render(self.sim.data), stamp, frame))
        held = self.sim.protective_stop_holds
        if self._stopped_pub is not None and held != self._stopped:
            self._stopped = held
            self._publish_stopped(stamp)
        self._publish_status(res.changed)

    def _publish_stopped(self, stamp: Time) -> None:
        """The joints a protective stop holds and their held positions (empty: none stopped)."""
        held = self._stopped or {}
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = [self.names[j] for j in sorted(held)]  # the names joint_states uses (configurable)
        msg.position = [held[j] for j in sorted(held)]
        self._stopped_pub.publish(msg)

    def _publish_stop(self, event: dict[str, Any]) -> None:
        counts = self.sim.protective_stop_counts
        self._stop_pub.publish(String(data=json.dumps({"episode": self.runner.episode, "seed": self.runner.seed,
                                                       "count": sum(counts.values()), "counts": counts,
                                                       "event": event})))
        if self._throttled("protective_stop", 1.0):
            self.get_logger().warn(f"protective stop: {event['arm']} {event['joint']} {event['reason']} "
                                   f"{event['value']:.2f} > {event['limit']:.2f} (episode {self.runner.episode}, "
                                   f"{sum(counts.values())} so far)")

    def _publish_status(self, changed: bool) -> None:
        now = time.monotonic()
        if not changed and now - self._last_status < self.p.status_period:
            return
        self._last_status = now
        st = self.runner.status()
        self._status_pub.publish(String(data=json.dumps(st)))
        if self._stopped_pub is not None and self._stopped is not None:
            self._publish_stopped(self._stamp())
        if changed:
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
