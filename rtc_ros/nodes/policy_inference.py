"""policy_inference: the inference side of RTC (INFERENCELOOP of Algorithm 1) as a thin rclpy node.

Subscribes ``joint_states`` and the ``camera_topics`` (sensor-data QoS) and ``rtc/executor_state``;
a background thread warms the policy up, then loops: wait until the executor has run ``s_min``
actions of the current chunk (or replan at once after a rejection), build the observation (its
stamp, per ``obs_time``, gives ``t_obs``), plan ``d`` and ``s``, sample (guided toward what
the robot executes from ``t_obs`` on, for rtc*/bid), optionally sleep ``extra_latency_ms``, publish
the chunk on ``rtc/chunk``. Callbacks only store data, so they never block on the model.
Bookkeeping (INFERENCELOOP): :class:`rtc_ros.runtime.inference_loop.InferenceLoopCore`; sampling
(GUIDEDINFERENCE): :class:`rtc_ros.runtime.generator.ChunkGenerator`; observations:
named arrays (joint positions, camera frames) laid out and normalised by the policy
(:class:`rtc_ros.policies.loaded.LoadedPolicy`); each camera's newest frames (``t`` for a frame-stack
entry ``[t, h, w, c]``; raw or compressed: :mod:`rtc_ros.nodes.camera_inputs`) are kept by
:class:`rtc_ros.runtime.frame_history.FrameHistory` (a joint-history entry ``[t, M]``'s positions ``dt``
apart by :class:`rtc_ros.runtime.joint_history.JointHistory`, and then the frame stacks' frames ``dt`` apart too), cleared after a gap
longer than ``obs_timeout`` and when the executor was reset (re-synced after something else moved the
robot: an episode reset, a homing move): no observation mixes frames from before a reset with joint
positions from after it.

Run: ``python -m rtc_ros.nodes.policy_inference --ros-args --params-file config/bimanual.yaml -p policy_spec:=SPEC``
(``config/bimanual.yaml`` names no policy; ``RTC_POLICY_SPEC=SPEC`` in the environment works too).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from rtc_ros.runtime.joint_history import JointHistory
from rtc_ros.runtime.inference_loop import (InferenceLoopCore, ObservationBeforeReports, ObservationTooOld, Plan,
                                            clamp_warning)
from rtc_ros.core.stats import RollingStats
from rtc_ros.nodes import conversions as conv
from rtc_ros.nodes.cores import inference_loop, initial_delay
from rtc_ros.nodes.policy_setup import prepare_policy, warmup_delays, warmup_sample
from rtc_ros.runtime.contract import ChunkMeta
from rtc_ros.nodes.params import ROLE_INFERENCE, ParameterError, declare_and_validate, expand_path, node_argv
from rtc_ros.nodes.common import RELIABLE, STEADY, ClockCheck, Throttle, diagnostic_array, set_timer_period
from rtc_ros.nodes.tracking_guard import TrackingGuard
from rtc_ros.nodes.executor_link import ExecutorLink
from rtc_ros.nodes.executor_params import ExecutorParamsCheck
from rtc_ros.nodes.camera_inputs import CameraInputs
from rtc_ros.runtime.clock_skew import ClockAhead, ahead_text
from rtc_ros.nodes.contention import CHECK_PERIOD_S, OutputContention, check_producers
from rtc_ros.nodes.inference_diagnostics import inference_status, loading_status
from rtc_ros.nodes.spin import spin_node


@dataclass
class _Latest:
    """Newest sample of one input: value, receive time (monotonic), stamp (ns: the header's, or the
    node clock at receipt when the header is unstamped)."""

    value: object = None
    recv: float = 0.0
    stamp_ns: int = 0


class PolicyInferenceNode(Node):
    """See module docstring. Raises :class:`ParameterError` on invalid parameters or a mismatched policy."""

    def __init__(self, **kwargs) -> None:
        super().__init__("policy_inference", **kwargs)
        p = self.p = declare_and_validate(self, ROLE_INFERENCE, on_change=self._on_param_change,
                                      argv=node_argv(kwargs))
        import torch  # heavy: after parameters are known to be valid

        if p.torch_threads > 0:
            torch.set_num_threads(int(p.torch_threads))
        self.dt = p.dt
        self.names = p.joint_names
        spec_path = expand_path(p.policy_spec)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_name = f"rtc_ros: policy_inference ({self.get_fully_qualified_name()})"
        with loading_status(self, self._diag_pub, self._diag_name, spec_path, float(p.diagnostics_period)):
            prepared = prepare_policy(p)  # loaded, fitted to the params, sampled once plainly and once guided
        self.policy, self.generator, fit = prepared.policy, prepared.generator, prepared.fit
        self.obs_builder, self.joint_entry, cams = fit.builder, fit.joint_entry, fit.cameras
        self.loop: InferenceLoopCore = inference_loop(p)
        self.loop.max_d = self.generator.max_prefix  # rtc_trained: d up to its trained prefix length
        self._reader = conv.JointStateReader(self.names)
        self._exec_reader = conv.JointStateReader(self.names)  # the executor's commands, by name
        self._joints = _Latest()
        rows = self.obs_builder.joint_history  # a [t, M] joint entry: its rows dt apart (LeRobot's n_obs_steps)
        self._joint_rows = JointHistory(rows, self.dt, float(p.obs_timeout)) if rows > 1 else None
        self._data_lock = threading.Lock()
        self._wake = threading.Condition()
        self.state = "warming_up"
        self.warmup_ms: list[float] = []
        self.latency = RollingStats(500)  # observation taken -> chunk published (incl. injected delay), ms
        self.model_ms = RollingStats(500)
        self.overhead_ms = RollingStats(500)  # latency - model - injected delay
        self.tracking = TrackingGuard(p)  # how far the arm is from the executor's commands (tracking_err_*)
        self._sim_time = bool(self.get_parameter("use_sim_time").value)  # one /clock for all: no skew (and coarse)
        self.clock_ahead = ClockAhead(max(self.dt, 0.01), sim_time=self._sim_time, period_s=self.dt)  # its clock
        self._command: np.ndarray | None = None  # the executor's newest command (its report), under _data_lock
        self._command_received = 0.0  # that report's receipt (monotonic), under _data_lock
        self.published = 0
        # (monotonic) the newest chunk's publication; going active; the newest executor report saying paused
        self.last_published_t = self.active_since = self.last_paused_t = 0.0
        self.joint_state_publishers = 0  # on joint_states, at the last check (more than one: WARN)
        self._fails, self._retry_at = 0, 0.0  # inference failures in a row; no new try before (monotonic)
        self.superseded = 0  # guided chunks dropped before publishing: their prefix chunk was replaced meanwhile
        self.busy_since = 0.0  # (monotonic) when the inference running now began; 0 = none
        self.obs_rejected: dict[str, int] = {}  # observations refused, by reason; the newest one's text:
        self.last_rejected = ""
        self.errors = 0
        self._throttled = Throttle()
        # --- ROS I/O ---
        self._chunk_pub = self.create_publisher(JointTrajectory, p.chunk_topic, RELIABLE)
        self._joint_topic = self.create_subscription(JointState, p.joint_states_topic, self._on_joint_state,
                                                     qos_profile_sensor_data).topic_name
        self.cameras = CameraInputs(self, cams, p.camera_topics, self.obs_builder.camera_frames,  # newest frames each
                                    lambda: float(self.p.obs_timeout), p.camera_transport, self._data_lock,
                                    self._stamp, self._count_reject, self.dt if rows > 1 else None)
        self.obs_builder.on_resize = self.cameras.on_resize  # a camera of another size: logged once
        sub = self.create_subscription(JointState, p.executor_state_topic, self._on_executor_state, RELIABLE)
        self._link = ExecutorLink(sub.topic_name, self.count_publishers, time.monotonic())  # do its reports come?
        self.executor_params = ExecutorParamsCheck(self, p, sub.topic_name)  # are its limits the ones modelled?
        self.create_timer(CHECK_PERIOD_S, self.executor_params.poll)
        self._diag_timer = self.create_timer(float(p.diagnostics_period), self._publish_diagnostics,
                                             clock=STEADY)  # (also while simulated time stands still)
        self.clock_check = ClockCheck(self)  # use_sim_time without /clock, or /clock beside wall time
        # another chunk producer (a second policy_inference): both stop planning while it is there
        self._producers, self.other_producers = OutputContention(self, [self._chunk_pub.topic_name]), {}
        self.create_timer(CHECK_PERIOD_S, lambda: check_producers(self))
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._run, name="rtc_inference", daemon=True)
        self._thread.start()
        for note in prepared.notes:
            self.get_logger().warn(note)
        self.get_logger().info(
            f"policy_inference: method={p.method}, policy {spec_path} (H={self.policy.horizon}, "
            f"M={self.policy.action_dim}, O={self.policy.obs_dim}) on {self.policy.device}, s_min={p.s_min}, "
            f"b={p.delay_buffer_size}, n={p.n_steps}, beta={p.beta}, cameras {dict(zip(cams, p.camera_topics))}"
            + (f", joint history {rows} x {self.dt:g} s" if rows > 1 else "")
            + (" (compressed: <topic>/compressed)" if p.camera_transport == "compressed" and cams else "")
            + f"; {self.loop.hold.describe()}"
        )

    # ------------------------------------------------------------------------------ helpers
    def _on_param_change(self, name: str, value: object) -> None:
        """Apply an accepted run-time set (obs_timeout and extra_latency_ms are read where used)."""
        if name == "obs_timeout" and self._joint_rows is not None:
            self._joint_rows.gap_ns = int(float(value) * 1e9)
        if name == "diagnostics_period":
            set_timer_period(self._diag_timer, float(value))

    def _count_reject(self, reason: str, text: str) -> None:
        self.obs_rejected[reason], self.last_rejected = self.obs_rejected.get(reason, 0) + 1, text  # (diagnostics)
        if self._throttled("obs_" + reason, 1.0):
            self.get_logger().warn(f"not inferring: {text}")

    def _stamp(self, stamp, topic: str) -> int:
        """The header stamp in ns; an unstamped message gets the node clock at receipt (later than its
        data: chunks then start a little late), with a warning."""
        ns = conv.stamp_to_ns(stamp)
        if ns == 0 and self._throttled("unstamped_" + topic, 10.0):
            self.get_logger().warn(f"{topic}: message without a header stamp; using the receipt time (later than "
                                   "the data, so t_obs is late and a chunk skips too few actions): stamp it at capture")
        return ns or self.get_clock().now().nanoseconds

    # ------------------------------------------------------------------------------ callbacks (short)
    def _on_joint_state(self, msg: JointState) -> None:
        try:
            q = self._reader.positions(msg)
        except ValueError as exc:
            self._count_reject("joint_state", f"bad joint state: {exc}")
            return
        stamp = self._stamp(msg.header.stamp, self.p.joint_states_topic)
        if 0 < self._joints.stamp_ns - stamp <= float(self.p.obs_timeout) * 1e9:  # (farther back: a clock reset)
            self._count_reject("joint_state_order", f"a joint state stamped {(self._joints.stamp_ns - stamp) * 1e-9:.3f}"
                                                    " s before the newest one (out of order, or a second publisher)")
            return
        lead = self.clock_ahead.lead_s(stamp, time.monotonic_ns())  # (ahead of the executor's? durations only)
        if lead is not None and lead > self.clock_ahead.tolerance_s and self._throttled("ahead", 10.0):
            self.get_logger().warn(ahead_text(self.p.joint_states_topic, lead))
        with self._data_lock:
            self._joints = _Latest(q, time.monotonic(), stamp)
            if self._joint_rows is not None:
                self._joint_rows.push(self._joints.stamp_ns, q)
            cmd, recv = self._command, self._command_received
        self.tracking.on_joint_state(q, cmd, time.monotonic() - recv)

    def _on_executor_state(self, msg: JointState) -> None:
        try:
            rep = conv.parse_executor_state(msg, self._exec_reader)
        except ValueError as exc:
            self._count_reject("executor_state", f"bad executor state: {exc}")
            return
        self.clock_ahead.on_report(rep.stamp_ns, time.monotonic_ns())  # (monotonic: this clock's steps do not count)
        with self._data_lock:  # before the loop learns of a reset (it may plan at once): no old frame is used
            cleared = self.cameras.on_executor_report(rep)  # frames from before a reset show another scene
            # (a dry run's commands are never sent: the arm is not to follow them)
            self._command = None if rep.command is None or rep.dry else np.asarray(rep.command, dtype=np.float64)
            self._command_received = time.monotonic()
        if rep.paused:
            self.last_paused_t = time.monotonic()
        rejected = self.loop.rejected
        self.loop.on_executor_report(rep)
        if self.loop.rejected > rejected:  # one of this node's chunks: say why here too (the executor logs it)
            self.get_logger().warn(f"chunk {rep.rejected_seq} refused by the executor: {rep.rejected_reason}",
                                   throttle_duration_sec=2.0)
        if cleared:
            self.get_logger().info("executor reset (re-synced: the robot was moved, or ~/hold, or the executor's tracking "
                                   "watchdog): camera frames cleared; waiting for new ones", throttle_duration_sec=1.0)
        with self._wake:
            self._wake.notify()

    # ------------------------------------------------------------------------------ observation
    def _observation(self) -> tuple[dict[str, np.ndarray], int, int] | None:
        """(observation: named arrays, stamp ns, oldest input's ns) from fresh inputs, or None (counted) if stale.

        The stamp is the joint state's (``obs_time: joint_state``) or the oldest input's (``oldest``)."""
        timeout = float(self.p.obs_timeout)
        now = time.monotonic()
        with self._data_lock:  # one snapshot: a reset between the joint state and the frames is seen
            joints, cams = self._joints, self.cameras.snapshot()
            reset_ns = self.cameras.history.reset_stamp_ns
            rows = None if self._joint_rows is None else self._joint_rows.rows_at(joints.stamp_ns, reset_ns)
        if joints.value is None:
            self._count_reject("missing", f"no joint state on {self.p.joint_states_topic} yet")
            return None
        if 0 < joints.stamp_ns < reset_ns:  # its chunk would be refused by the executor: do not infer at all
            self._count_reject("before_reset", "the newest joint state was measured before the executor's reset")
            return None
        if now - joints.recv > timeout:
            self._count_reject("stale", f"joint state is {now - joints.recv:.3f}s old (obs_timeout {timeout}s)")
            return None
        got = self.cameras.frames(cams, joints.stamp_ns, timeout, now)
        if got is None:
            return None
        frames, stamps = got
        q = joints.value if rows is None else rows  # (M,), or a joint history's (t, M) newest first
        obs = {**frames, self.joint_entry or "joint_positions": q}  # named arrays, laid out by the policy
        oldest = min([joints.stamp_ns, *stamps])
        return obs, (oldest if self.p.obs_time == "oldest" else joints.stamp_ns), oldest

    # ------------------------------------------------------------------------------ inference thread
    def _warmup(self) -> None:
        obs, prev = self.policy.typical_observation(), None
        chunks = len(warmup_delays(self.generator, int(self.p.horizon)))  # (CUDA graphs: a chunk per trained d)
        for i in range(int(self.p.warmup_iterations)):
            t0 = time.perf_counter()
            prev = warmup_sample(self.generator, self.p, obs, prev)
            self.warmup_ms.append((time.perf_counter() - t0) * 1e3 / chunks)
            if not self._running.is_set():
                return
        # the forecast before any delay is observed: the warm latency plus the injected delay (not in Q)
        if self.warmup_ms:
            self.loop.set_initial_delay(initial_delay(self.warmup_ms[-1], float(self.p.extra_latency_ms), self.dt))

    def _warmup_until_done(self, first_retry_s: float = 2.0) -> bool:
        """Warm up; a failure (a transient CUDA OOM, a graph capture) is logged and retried with backoff
        (``first_retry_s``, doubling, at most 30 s) while the node runs; the executor holds meanwhile. Before
        2026-12-05 one failure stopped inference for good behind a live process. False: stopped first."""
        wait_s = first_retry_s
        while self._running.is_set():
            self.warmup_ms = []
            try:
                self._warmup()
                return self._running.is_set()
            except Exception as exc:  # noqa: BLE001 -- report, retry (the executor holds)
                self.state, self.errors = "error", self.errors + 1
                self.get_logger().error(f"warm-up failed: {exc!r}; retrying in {wait_s:g} s")
                end = time.monotonic() + wait_s  # (_wake is notified by every executor report: wait it out)
                while self._running.is_set() and (left := end - time.monotonic()) > 0:
                    with self._wake:
                        self._wake.wait(timeout=left)
                wait_s = min(2.0 * wait_s, 30.0)
        return False

    def _run(self) -> None:
        if not self._warmup_until_done():
            return
        self.state, self.active_since = "active", time.monotonic()
        self.get_logger().info(f"warm-up done ({len(self.warmup_ms)} runs, last {self.warmup_ms[-1] if self.warmup_ms else 0:.1f} ms); active")
        while self._running.is_set():
            with self._wake:
                self._wake.wait(timeout=0.1)
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 -- the loop must survive; the executor holds meanwhile
                if not self._running.is_set() or not rclpy.ok():
                    return  # shutting down: the context is gone
                self.errors += 1
                self.loop.on_failed()
                if self._throttled("loop_err", 1.0):
                    self.get_logger().error(f"inference loop error: {exc!r}")

    def _executor_silence(self) -> str | None:
        with self._data_lock:
            received = self._command_received
        return self._link.silence(received, time.monotonic())

    def _step(self) -> None:
        """One pass of INFERENCELOOP: trigger, observation, plan, infer."""
        if self.other_producers or time.monotonic() < self._retry_at:  # another producer (the executor holds), or
            return  # backing off after failed inferences
        now = self.clock_ahead.executor_now(time.monotonic_ns()) if self.p.report_lag_compensation else 0
        if not self.loop.ready(now):  # (now: the executor's clock; its reports may reach this node late)
            if (silence := self._executor_silence() if self._throttled("silence_check", 5.0) else None):
                self.get_logger().warn(f"not planning: {silence}")
            if self.loop.foreign_seq >= 0 and self._throttled("foreign", 5.0):
                self.get_logger().info(f"the executor runs chunk seq {self.loop.foreign_seq}, not published by this "
                                       "node (a restart?): waiting for it to run out before planning from its hold")
            return
        t0 = time.perf_counter()
        got = self._observation()
        if got is None:
            return
        try:
            plan = self.loop.plan(got[1], now)
        except ObservationBeforeReports as exc:  # early, not stale: not counted as a rejection
            if self._throttled("obs_early", 5.0):
                self.get_logger().info(f"not inferring yet: {exc}")
            return
        except ObservationTooOld as exc:
            self._count_reject("too_old", str(exc))
            return
        if plan is not None:
            self.busy_since = time.monotonic()  # (diagnostics: a model call that hangs)
            try:
                self._infer(plan, got[0], got[1], t0, oldest_ns=got[2])
            finally:
                self.busy_since = 0.0

    def _infer(self, plan: Plan, obs: dict[str, np.ndarray], stamp_ns: int, t0: float, oldest_ns: int = 0) -> None:
        try:
            t1 = time.perf_counter()
            chunk = self.generator.generate(obs, plan.prev_remaining, plan.d, plan.s)
            t2 = time.perf_counter()
        except Exception as exc:  # noqa: BLE001 -- never publish a failed chunk; try again after a backoff
            self.errors, self._fails = self.errors + 1, self._fails + 1
            self._retry_at = time.monotonic() + min(0.05 * 2.0 ** (self._fails - 1), 2.0)  # 50 ms doubling, <= 2 s
            self.loop.on_failed(plan)
            if self._throttled("infer_err", 1.0):
                self.get_logger().error(f"inference failed ({self._fails} in a row): {exc!r}")
            return
        self._fails = 0
        extra = float(self.p.extra_latency_ms) / 1e3
        if extra > 0:
            time.sleep(extra)
        t3 = time.perf_counter()
        with self._data_lock:
            reset_ns = self.cameras.history.reset_stamp_ns
        if 0 < oldest_ns < reset_ns:  # a reset reported while planning, an input from before it (an audit: an old
            self.loop.on_failed(plan)  # frame beside a new joint state reached an accepted chunk)
            self._count_reject("before_reset", "the executor reset while this chunk was computed from an input "
                                               "taken before it: not published, planning again")
            return
        if self.loop.superseded(plan):  # another chunk took over meanwhile (one counted lost came after all)
            self.loop.on_failed(plan)
            self.superseded += 1
            if self._throttled("superseded", 2.0):
                self.get_logger().warn(f"chunk seq {plan.seq} not published: it was guided toward chunk seq "
                                       f"{plan.base_seq}, which another chunk replaced meanwhile; planning again")
            return
        meta = ChunkMeta(seq=plan.seq, t_obs=plan.t_obs, d=plan.d, s=plan.s, method=self.p.method, base=plan.base_seq)
        msg = conv.chunk_to_msg(chunk, self.names, meta, conv.ns_to_stamp(stamp_ns), self.dt)
        self._chunk_pub.publish(msg)
        self.loop.on_published(plan, chunk)
        t4 = time.perf_counter()
        self.published, self.last_published_t = self.published + 1, time.monotonic()
        self.latency.add((t4 - t0) * 1e3)
        self.model_ms.add((t2 - t1) * 1e3)
        self.overhead_ms.add(((t1 - t0) + (t4 - t3)) * 1e3)
        if plan.clamped_by and self._throttled("infeasible", 2.0):
            self.get_logger().warn(clamp_warning(plan, self.p.horizon, self.dt, float(self.latency.values().max())))

    # ------------------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        level, message, vals = inference_status(self)
        self._diag_pub.publish(diagnostic_array(self._diag_name, level, message, vals, self.get_clock().now().to_msg()))

    def stop(self) -> None:
        self._running.clear()
        with self._wake:
            self._wake.notify_all()
        self._thread.join(timeout=2.0)


def main(args=None) -> int:
    """Run the policy_inference node until Ctrl-C; exit code 2 on an invalid parameter."""
    return spin_node(PolicyInferenceNode, "policy_inference", (ParameterError,), args)


if __name__ == "__main__":
    sys.exit(main())
