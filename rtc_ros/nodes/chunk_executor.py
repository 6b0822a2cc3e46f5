"""chunk_executor: the 50 Hz robot side of RTC (GETACTION of Algorithm 1) as a thin rclpy node.

Subscribes ``rtc/chunk`` (chunks, reliable) and ``joint_states`` (measured positions, sensor QoS,
the hold position before the first command and after a re-sync; with ``<arm>.tracking_tolerance`` also the
tracking watchdog's, :mod:`rtc_ros.nodes.executor_tracking`); every tick publishes
one clamped joint command per arm (``float64_multi_array`` / single-point ``joint_trajectory`` / ``joint_state``,
reliable) and ``rtc/executor_state``; ``/diagnostics`` once per ``diagnostics_period``. All logic
is in :class:`rtc_ros.runtime.executor.ExecutorCore` (GETACTION, the one chunk validator).

Operator services (``std_srvs/Trigger``, node-private): ``~/pause``, ``~/resume``, ``~/resync``
(after something else moved the robot, e.g. an episode reset or a homing move: drop every chunk, take
the hold position from the first joint state stamped after the call, stay paused until ``~/resume``)
and ``~/hold`` (a fault, e.g. an external monitor's: as ``~/resync``, and the measured hold is
commanded even with ``startup_command: none``, so the controllers do not keep the last command; the
executor's own tracking watchdog does the same).
With ``enable_topic`` (``std_msgs/Bool`` from a deadman switch) it moves only while that is true and fresh.
Another node publishing on its outputs (a second executor, a teleop) mutes it while it is there
(:mod:`rtc_ros.nodes.contention`), as does a subscribing controller of other joints or in another order; it asks
joint_trajectory_controllers for ``interpolate_from_desired_state`` (:mod:`rtc_ros.nodes.controller_check`).

With ``robot_stopped_topic`` set (``sensor_msgs/JointState``: the joints a protective stop holds and their
held positions, empty while none), the executor re-syncs when a stop begins, holds the stopped joints
where the stop holds them, and re-syncs and resumes when it ends (:mod:`rtc_ros.nodes.executor_stops`): no stop
loops from commands the arm ignored.

Run: ``python -m rtc_ros.nodes.chunk_executor --ros-args --params-file config/bimanual.yaml``.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from rtc_ros.runtime.executor import (
    HOLD_DISABLED, HOLD_PAUSED, HOLD_STARTUP, HOLD_SYNC_PAUSE, ChunkRejected, ExecutorCore, Tick,
)
from rtc_ros.runtime.methods import METHODS, executor_mode
from rtc_ros.nodes import conversions as conv
from rtc_ros.nodes.cores import executor_core
from rtc_ros.nodes.params import (ROLE_EXECUTOR, ParameterError, chunk_age_notes, declare_and_validate, executor_notes,
                                  node_argv)
from rtc_ros.nodes.common import RELIABLE, STEADY, ClockCheck, Throttle, diagnostic_array, set_timer_period
from rtc_ros.nodes.contention import CHECK_PERIOD_S, OutputGuard
from rtc_ros.nodes.controller_check import ControllerCheck
from rtc_ros.nodes.deadline import run_deadline_loop
from rtc_ros.nodes.executor_services import OperatorServices
from rtc_ros.nodes.executor_diagnostics import executor_status, waiting_text
from rtc_ros.nodes.executor_enable import ExecutorEnable
from rtc_ros.nodes.executor_stops import ProtectiveStops
from rtc_ros.nodes.executor_tracking import ExecutorTracking
from rtc_ros.nodes.spin import spin_node



class ChunkExecutorNode(Node):
    """See module docstring. Raises :class:`ParameterError` on invalid parameters."""

    def __init__(self, **kwargs) -> None:
        super().__init__("chunk_executor", **kwargs)
        p = self.p = declare_and_validate(self, ROLE_EXECUTOR, on_change=self._on_param_change,
                                      argv=node_argv(kwargs))
        self.dt = p.dt
        self.names = p.joint_names
        self.core: ExecutorCore = executor_core(p)
        if p.start_paused and self.core.pause("start_paused"):  # the arming step: nothing runs until ~/resume
            self.get_logger().warn("start_paused: nothing is executed until ~/resume (ros2 service call "
                                   f"{self.get_fully_qualified_name()}/resume std_srvs/srv/Trigger)")
        self._reader, self.js_refused = conv.JointStateReader(self.names), ""  # (the newest joint state's refusal)
        self._order_cache: dict = {}
        self._throttled = Throttle()
        self._last_tick_t: float | None = None
        self._last_tick_sim = False  # timer mode: the last tick's time was simulated time
        self.overruns = 0
        self._late_s = 0.0  # the latest tick start since the last diagnostics (s after its deadline), under _late_lock
        self._late_lock = threading.Lock()  # (the loop thread raises it, the diagnostics timer takes it)
        self.errors = 0
        # --- outputs (relative names: namespaces and remaps apply) ---
        msg_type = {"float64_multi_array": Float64MultiArray, "joint_trajectory": JointTrajectory,
                    "joint_state": JointState}[p.output_type]
        self._arm_pubs = []
        start = 0
        for arm in p.arms:
            n = len(arm.joint_names)
            self._arm_pubs.append((arm, slice(start, start + n), self.create_publisher(msg_type, arm.command_topic, RELIABLE)))
            start += n
        self._state_pub = self.create_publisher(JointState, p.executor_state_topic, RELIABLE)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._tfs = p.trajectory_time_from_start or self.dt
        self._dry = bool(p.dry_run)  # read-only: no arm command is published (a first bring-up)
        # --- inputs ---
        self._io_group = MutuallyExclusiveCallbackGroup()
        self._chunk_sub = self.create_subscription(JointTrajectory, p.chunk_topic, self._on_chunk, RELIABLE,
                                                   callback_group=self._io_group)
        self._js_sub = self.create_subscription(JointState, p.joint_states_topic, self._on_joint_state,
                                                qos_profile_sensor_data, callback_group=self._io_group)
        self._diag_timer = self.create_timer(float(p.diagnostics_period), self._publish_diagnostics,  # (steady: also
                                             callback_group=self._io_group, clock=STEADY)  # while sim time stands)
        self.operator = OperatorServices(self)  # ~/pause, ~/resume, ~/resync, ~/hold
        self.clock_check = ClockCheck(self)  # use_sim_time without /clock, or /clock beside wall time
        # another publisher on a command topic or rtc/executor_state: command nothing (OutputGuard)
        commands = [pub.topic_name for *_a, pub in self._arm_pubs]  # resolved: namespaces and remaps applied
        self._controllers = ControllerCheck(self, {pub.topic_name: arm.joint_names for arm, _s, pub in self._arm_pubs},
                                            p.output_type, self._io_group) if p.output_type != "joint_state" else None
        self.outputs = OutputGuard(self, commands + [self._state_pub.topic_name], self._controllers)
        self.create_timer(CHECK_PERIOD_S, self._check_outputs, callback_group=self._io_group)
        self._resync_after_ns = 0  # after a re-sync: joint states stamped before this are ignored
        self.stops = ProtectiveStops(self, self._io_group)  # robot_stopped_topic: re-sync around protective stops
        self._recovery = self.stops.recovery
        self.tracking = ExecutorTracking(self, p)  # <arm>.tracking_tolerance: hold where the arm is when it stops following
        self._enable = ExecutorEnable(self, p) if p.enable_topic else None  # a deadman (executor_enable.py)
        # --- the control loop ---
        self.loop_mode = p.loop_mode
        if self.get_parameter("use_sim_time").value and self.loop_mode == "thread":
            self.get_logger().info("use_sim_time is true: using an rclpy timer (loop_mode=timer)")
            self.loop_mode = "timer"
        self._set_realtime(int(p.realtime_priority))
        self._running = threading.Event()
        self._running.set()
        self._thread: threading.Thread | None = None
        if self.loop_mode == "timer":
            self.create_timer(self.dt, self._safe_tick, callback_group=MutuallyExclusiveCallbackGroup())
        else:
            self._thread = threading.Thread(target=self._loop, name="rtc_executor_loop", daemon=True)
            self._thread.start()
        self.get_logger().info(
            f"chunk_executor: method={p.method} ({executor_mode(p.method)}), {1 / self.dt:g} Hz ({self.loop_mode}), "
            f"H={p.horizon}, {len(self.names)} joints on {[a.command_topic for a in p.arms]} as {p.output_type}"
        )
        for note in executor_notes(p, set(getattr(self, "_parameter_overrides", {}))):  # defaults not a real arm's
            self.get_logger().warn(note)

    # ------------------------------------------------------------------------------ helpers
    def _unheard_commands(self) -> list[str]:
        """Command topics nobody subscribes to (a controller not loaded or not active, a wrong topic)."""
        return [pub.topic_name for _arm, _sl, pub in self._arm_pubs if pub.get_subscription_count() == 0]

    def _set_realtime(self, priority: int) -> None:
        """SCHED_FIFO for this thread; threads started afterwards (loop, executor pool) inherit it."""
        if priority <= 0:
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            self.get_logger().info(f"real-time scheduling: SCHED_FIFO priority {priority}")
        except (OSError, AttributeError) as exc:
            self.get_logger().warn(f"cannot use SCHED_FIFO priority {priority} ({exc}); running with normal "
                                   "scheduling (grant rtprio in /etc/security/limits.conf or CAP_SYS_NICE)")

    def _on_param_change(self, name: str, value: object) -> None:
        """Apply an accepted run-time set (the params object is already updated)."""
        if name == "max_chunk_age":
            self.core.max_chunk_age = float(value)
            for note in chunk_age_notes(self.p):
                self.get_logger().warn(note)
        elif name in ("max_limit_excess", "max_start_gap"):
            setattr(self.core, name, float(value))
        elif name == "tracking_timeout_s":
            self.tracking.set_timeout(float(value))
        elif name == "enable_timeout_s" and self._enable is not None:
            self._enable.gate.timeout_s = float(value)
        elif name == "diagnostics_period":
            set_timer_period(self._diag_timer, float(value))

    # ------------------------------------------------------------------------------ callbacks
    def _measure_again(self) -> None:
        """After a re-sync: take the hold position from the first joint state stamped from now on."""
        self._resync_after_ns = self.get_clock().now().nanoseconds
        if self._js_sub is None:
            self._js_sub = self.create_subscription(JointState, self.p.joint_states_topic, self._on_joint_state,
                                                    qos_profile_sensor_data, callback_group=self._io_group)

    def _check_outputs(self) -> None:
        if self._controllers is not None:
            self._controllers.poll()  # controllers of other joints, or interpolating from the measured state
        self.outputs.check()  # another publisher on an output, a controller of other joints: command nothing
        self.stops.check()  # the robot's stop report: of another type, or nobody publishing it

    def _on_joint_state(self, msg: JointState) -> None:
        stamp = conv.stamp_to_ns(msg.header.stamp)
        if self._resync_after_ns and self.get_clock().now().nanoseconds < self._resync_after_ns:
            self._resync_after_ns = self.get_clock().now().nanoseconds  # the clock went back (a simulator reset it)
        if self._resync_after_ns and 0 < stamp < self._resync_after_ns:
            return  # measured before the re-sync: the robot may have moved since (unstamped: taken as new)
        if self._enable is not None:  # the first since the enabling device was pressed: did the arm move?
            self._enable.on_joint_state(msg, stamp)
        if self.core.ready and not self.core.measuring:
            if self.tracking.enabled:  # the tracking watchdog follows every joint state
                return self.tracking.on_joint_state(msg)
            # else only needed for the hold position before the first command (and after a re-sync, which
            # subscribes again; with startup_command none until a chunk is commanded): stop the 50 Hz wake-ups.
            # Only in loop thread mode (timer mode, a simulator's, keeps it; until 2026-12-07 it spun a
            # MultiThreadedExecutor, under which destroying it mid-way crashed rclpy). With an enabling device,
            # never: a press is checked against the next joint state (executor_enable.py)
            if self._js_sub is not None and self.loop_mode == "thread" and self._enable is None:
                self.destroy_subscription(self._js_sub)
                self._js_sub = None
            return
        self.tracking.measuring()  # (nothing commanded to follow: a violation does not carry over)
        try:
            q, self.js_refused = self._reader.positions(msg), ""
        except ValueError as exc:
            self.js_refused = str(exc)
            if self._throttled("js", 2.0):
                self.get_logger().warn(f"ignoring joint state: {exc}")
            return
        self.core.set_measured_position(q)

    def _outside_text(self, outside: dict[int, float]) -> str:
        c = self.core.cfg
        return "positions beyond the joint limits by more than max_step: " + ", ".join(
            f"{self.names[i]}={q:g} (limits {c.lower[i]:g}..{c.upper[i]:g})" for i, q in outside.items())

    def _on_chunk(self, msg: JointTrajectory) -> None:
        try:
            chunk, meta, stamp_ns = conv.msg_to_chunk(msg, self.names, self.p.horizon, self.dt, self._order_cache)
            age = (self.get_clock().now().nanoseconds - stamp_ns) * 1e-9 if stamp_ns > 0 else None
            if meta.method != self.p.method:
                if meta.method not in METHODS or executor_mode(meta.method) != executor_mode(self.p.method):
                    # sync, switch and ensemble read t_obs, s and the starting index differently: refused
                    raise self.core.reject("method", f"chunk seq {meta.seq} made for method {meta.method!r}, whose "
                                           f"execution differs from this executor's {self.p.method!r}", meta.seq)
                self.get_logger().warn(f"chunk seq {meta.seq} made for method {meta.method!r}, executing as "
                                       f"{self.p.method!r} (the same execution mode)", throttle_duration_sec=5.0)
            self.core.offer_chunk(chunk, meta.seq, meta.t_obs, meta.d, meta.s, age, meta.base)
        except ChunkRejected as exc:
            if isinstance(exc, conv.ChunkFormatError):  # decided while decoding: count and report it too
                self.core.reject(exc.reason, str(exc), exc.seq)
            if self._throttled("reject_" + exc.reason, 1.0):
                self.get_logger().warn(f"rejected chunk ({exc.reason}): {exc}")

    # ------------------------------------------------------------------------------ control loop
    def _loop(self) -> None:
        """Absolute-deadline loop on the monotonic clock; never bursts to catch up after an overrun."""
        run_deadline_loop(self._safe_tick, lambda: self.dt, lambda: self._running.is_set() and rclpy.ok(),
                          self._on_overrun)

    def _on_overrun(self, late_s: float) -> None:
        self.overruns += 1
        with self._late_lock:
            self._late_s = max(self._late_s, late_s)  # the worst since the last diagnostics

    def _safe_tick(self) -> None:
        try:
            self._tick()
        except Exception as exc:  # noqa: BLE001 -- the control loop must survive anything
            if not rclpy.ok():
                return
            self.errors += 1
            if self._throttled("tick_error", 1.0):
                self.get_logger().error(f"tick failed: {exc!r}")

    def _tick(self) -> None:
        t_now = time.monotonic()
        if self.loop_mode == "timer":  # (ticks follow ROS time: a simulator's /clock; periods measured on it)
            self._ros_time_tick()
        else:
            if self._last_tick_t is not None:
                self.core.record_period(t_now - self._last_tick_t)
                self._after_gap(t_now - self._last_tick_t)
            self._last_tick_t = t_now
        if self._enable is not None:
            self._enable.apply(t_now, max(1.0, float(self.p.hold_log_period)))
        tick = self.core.tick()
        if tick is None:
            outside = dict(self.core.out_of_limits) if self._throttled("nopos", 2.0) else None
            if outside:
                self.get_logger().error(f"commanding nothing: measured {self._outside_text(outside)}; check the arms' "
                                        "lower_limits / upper_limits (radians; the defaults are +-pi, grippers 0..1); "
                                        "once the arm is back within them the executor stays paused until ~/resume")
            elif outside is not None and self.get_clock().now().nanoseconds - self._resync_after_ns > 1e9:  # (not
                self.get_logger().warn(f"no hold position yet: {waiting_text(self)}; commanding nothing")  # at once)
            return
        self._publish(tick)
        long_hold = self.core.stats.consecutive_holds * self.dt > 10.0  # (then 10x fewer lines: a hold lasting hours)
        if (tick.hold and tick.reason not in (HOLD_SYNC_PAUSE, HOLD_PAUSED, HOLD_DISABLED)
                and self._throttled("hold", self.p.hold_log_period * (10.0 if long_hold else 1.0))):
            text = (f"holding position ({tick.reason}): no action for step {tick.step}, "
                    f"{self.core.stats.consecutive_holds} ticks in a row, {self.core.stats.holds} total"
                    + ("" if self.count_publishers(self._chunk_sub.topic_name) else  # (remapped: its real name)
                       f" (nobody publishes {self._chunk_sub.topic_name}: policy_inference stopped, or the network to it?)"))
            if tick.reason == HOLD_STARTUP:
                if tick.silent:
                    text = (f"waiting for the first chunk (step {tick.step}): no command published "
                            "(startup_command none: the controllers keep their last command)")
                self.get_logger().info(text)
            else:
                self.get_logger().warn(text)
        if tick.splice is not None and self._throttled("splice", 1.0):
            s = tick.splice
            self.get_logger().debug(f"chunk seq {s.seq} took over at step {s.takeover}: consumed {s.consumed} "
                                    f"(d {s.d}), jump {s.jump:.4f}")

    def drop_stale_plans(self, still_s: float) -> bool:
        """Nothing advanced for ``still_s`` seconds (an operator's pause, a stalled loop): beyond max_chunk_age the
        executing plan is older than any chunk the executor would accept, so it is dropped (True) and the executor
        holds until a new chunk, which starts at its index 0."""
        age = float(self.p.max_chunk_age)
        if not (0 < age < still_s and self.core.executing_seq >= 0):
            return False
        self.core.drop_plans()
        return True

    def _ros_time_tick(self) -> None:
        """Timer mode, each tick: the period on ROS time; ROS time going back re-syncs (:meth:`_clock_went_back`);
        ``use_sim_time`` switched at run time starts a new time line (no jump; a pending deadman press moves to it)."""
        clock = self.get_clock()
        t_ros, sim = clock.now().nanoseconds * 1e-9, bool(getattr(clock, "ros_time_is_active", False))
        if sim != self._last_tick_sim:
            self._last_tick_t, self._last_tick_sim = None, sim
            if self._enable is not None:
                self._enable.press_ns = min(self._enable.press_ns, clock.now().nanoseconds)
        if self._last_tick_t is not None and t_ros < self._last_tick_t:
            self._clock_went_back(self._last_tick_t - t_ros)
        elif self._last_tick_t is not None:
            self.core.record_period(t_ros - self._last_tick_t)
        self._last_tick_t = t_ros

    def _clock_went_back(self, back_s: float) -> None:
        """Timer mode: ROS time went back (a simulator restarted or reset its world and clock): the arm is elsewhere
        and the chunks planned for it are void -- re-synced as ``~/resync`` does (paused until ``~/resume``)."""
        step = self.core.resync(why="ROS time went back")
        self._measure_again()
        if self._enable is not None:  # (a press waiting for a joint state stamped after it: on the new time line)
            self._enable.press_ns = min(self._enable.press_ns, self._resync_after_ns)
        if self._throttled("clock_back", 1.0):  # (two /clock publishers would do it every tick: ClockCheck says so)
            self.get_logger().warn(f"ROS time went back by {back_s:.3f} s (a simulator restarted or reset?): re-synced "
                                   f"at step {step}, chunks dropped, waiting for a new joint state, paused (~/resume "
                                   "to continue)")

    def _after_gap(self, gap_s: float) -> None:
        """No tick for ``gap_s`` (the process stalled or was suspended; wall clock only, so not with timer mode)."""
        if self.loop_mode == "thread" and self.drop_stale_plans(gap_s):
            self.get_logger().error(f"no tick for {gap_s:.2f} s (> max_chunk_age {float(self.p.max_chunk_age):g} s; "
                                    "the process stalled?): chunks dropped, holding until a new chunk (it starts at "
                                    "its index 0)")

    def _publish(self, tick: Tick) -> None:
        stamp = self.get_clock().now().to_msg()
        kind = self.p.output_type
        silent = tick.silent or self._dry  # dry run: the commands only in the report
        self.outputs.ever_commanded = self.outputs.ever_commanded or not silent
        for arm, sl, pub in [] if silent else self._arm_pubs:
            values = tick.command[sl]
            if kind == "float64_multi_array":
                pub.publish(conv.float64_multi_array(values))
            elif kind == "joint_trajectory":
                pub.publish(conv.joint_trajectory_point_msg(arm.joint_names, values, conv.Time(), self._tfs))
            else:
                pub.publish(conv.joint_state_msg(arm.joint_names, values, stamp))
        if not self.outputs.contended:  # muted: no report either (two executors' reports would interleave)
            self._state_pub.publish(conv.executor_state_msg(tick, self.names, stamp, self._dry))

    # ------------------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        level, message, summary = executor_status(self)
        self._diag_pub.publish(diagnostic_array(f"rtc_ros: chunk_executor ({self.get_fully_qualified_name()})", level,
                                                message, summary, self.get_clock().now().to_msg()))

    def brake_to_stop(self, cut_short: threading.Event) -> None:
        """SIGINT / SIGTERM, before ROS shuts down: brake to rest (:meth:`OperatorServices.brake_to_stop`)."""
        self.operator.brake_to_stop(cut_short)

    def stop(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=1.0)


def main(args=None) -> int:
    """Run the chunk_executor node until Ctrl-C; exit code 2 on an invalid parameter."""
    # The 50 Hz loop thread shares the GIL with rclpy's executor: make a waiting thread get the GIL
    # within 0.5 ms (default 5 ms), and spin single-threaded (rclpy's MultiThreadedExecutor costs much more Python
    # time per wake-up). Timer mode too: under the MultiThreadedExecutor a ROS-time timer fed by /clock missed ticks
    # (measured 2026-12-07: 17 of 741 at a real-time factor of 2, 4 of 249 at 0.5, none single-threaded; 11-12 % in a
    # loaded simulation)
    sys.setswitchinterval(0.0005)
    return spin_node(ChunkExecutorNode, "chunk_executor", (ParameterError,), args, executor_factory=node_executor,
                     brake_on_stop=True)  # (a signal brakes a moving arm before the process stops)


def node_executor(node: ChunkExecutorNode) -> SingleThreadedExecutor:
    """The executor the node spins in, in both loop modes (see :func:`main`)."""
    return SingleThreadedExecutor(context=node.context)


if __name__ == "__main__":
    sys.exit(main())
