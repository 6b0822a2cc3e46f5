"""``episode_recorder``: one rosbag2 (MCAP) bag per episode, from raw subscriptions.

Every recorded message is the serialized CDR the subscription received (``raw=True``), written
unchanged with ``rosbags`` -- what travelled is what is in the bag.

Episode control (``std_msgs/String`` JSON on ``rtc/episode``; an operator, a script or a test
drives it; ``std_srvs`` is not needed)::

    {"cmd": "start", "meta": {"task": "transfer_cube", "operator": "kb", ...}}   # optional meta
    {"cmd": "stop", "success": true, "score": 3, "notes": "..."}                  # closes the bag
    {"cmd": "abort", "reason": "..."}                                             # closes, marks aborted
    {"cmd": "score", "success": false, "score": 2}     # amends the last closed episode's sidecar

State is published on ``rtc/episode_status`` (``std_msgs/String`` JSON, reliable + transient local):
``{"state": "idle"|"recording"|"error", "episode": ..., "bag": ..., "error": ...}``.

Metadata (sidecar ``<bag>/<bag>.json``, copied into ``metadata.yaml`` custom_data ``rtc_episode``):
the operator's ``meta``, the full parameter set of ``policy_inference`` and ``chunk_executor``
(fetched from their parameter services at start: method, every RTC parameter, injected latency
``extra_latency_ms``), the policy spec (YAML content + SHA-256 of spec, weights and normalisation
statistics), success/score, start/stop times, duration, per-topic message counts, and ``sim``: the task,
success and protective-stop counts of the last ``sim_status_topic`` message (simulated episodes).

Topics: ``topics`` (relative or absolute names; subscribed once a publisher shows their type, or
at once when given in ``topic_types`` as ``name=pkg/msg/Type``), every topic whose name matches a
regex in ``topic_patterns`` (the arm command topics by default) and ``camera_topics``.

Parameters: the ``recorder`` role of :mod:`rtc_ros.nodes.params` (``min_free_mb``, ``stop_free_mb``,
``discovery_period``, ``stop_grace``, ``max_duration`` and ``param_wait`` can change at run time).
The episode lifecycle is :class:`rtc_ros.recording.session.EpisodeSession` (ROS-free).

Robustness: the output directory is checked at start (writable, ``min_free_mb`` free) -- the node
refuses to start otherwise -- and again at every episode start; buffered messages are written and
fsynced every ``flush_period`` s; SIGINT/SIGTERM mid-episode closes a readable bag (status
``interrupted``); a write error or free space below ``stop_free_mb`` closes the episode with an
error status instead of silently losing data. At start, bags in ``output_dir`` that a killed
recorder left unfinished are repaired (:mod:`rtc_ros.recording.recover`; status ``recovered``).

Run: ``python -m rtc_ros.nodes.episode_recorder --ros-args -p output_dir:=~/rtc_episodes``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from rtc_ros.nodes import recorder_topics
from rtc_ros.nodes.common import STEADY, ClockCheck, diagnostic_array, set_timer_period
from rtc_ros.nodes.episode_commands import EpisodeCommands
from rtc_ros.nodes.param_snapshot import ParamSnapshot
from rtc_ros.nodes.recorder_diagnostics import DIAGNOSTICS_PERIOD_S, recorder_status
from rtc_ros.nodes.spin import ignore_sigint
from rtc_ros.nodes.topic_discovery import TopicDiscovery
from rtc_ros.nodes.params import (ROLE_RECORDER, ParameterError, declare_and_validate, node_argv,
                                  parse_topic_types)
from rtc_ros.recording.bag import RecordingError, preflight_output_dir
from rtc_ros.recording.cdr import string_from_cdr
from rtc_ros.recording.metadata import sim_summary
from rtc_ros.recording.session import EpisodeSession


class EpisodeRecorder(Node):
    """The recorder node; see the module docstring.

    Raises:
        ParameterError: an invalid parameter (named).
        RecordingError: the output directory is not usable (checked in the constructor).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("episode_recorder", **kwargs)
        p = self.p = declare_and_validate(self, ROLE_RECORDER, on_change=self._on_param_change,
                                      argv=node_argv(kwargs))
        self.output_dir = Path(os.path.expanduser(p.output_dir))
        # checked now, not discovered at the end of the first episode
        free = preflight_output_dir(self.output_dir, int(p.min_free_mb * 1e6))
        self.get_logger().info(f"recording to {self.output_dir} ({free / 1e6:.0f} MB free)")
        self.last_start_error = ""  # why the last start failed (the start service's answer)
        self.session = EpisodeSession(self.output_dir, p.prefix, p.flush_period, p.compression)
        self._recover_orphans()
        #: topics every episode needs (warned when silent in one: silent_topics)
        self._required = {self.resolve_topic_name(t) for t in [*p.required_topics, *p.camera_topics]}
        self.discovery = TopicDiscovery(self, [*p.topics, *p.camera_topics, *p.required_topics], list(p.topic_patterns),
                                     parse_topic_types(p.topic_types), p.queue_depth, self._on_message,
                                     self._on_subscribed)
        self._param_deadline = 0.0
        self._last_param_try = 0.0
        self._sim_status_topic = self.resolve_topic_name(p.sim_status_topic) if p.sim_status_topic else ""
        self._sim_status_errors = 0
        self._lost_at_start: dict[str, int] = {}  # discovery.lost when the running episode started
        status_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)
        self._status_pub = self.create_publisher(String, p.status_topic, status_qos)
        self.last_episode: dict[str, Any] | None = None  # the last episode's metadata, when it ended (diagnostics)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.commands = EpisodeCommands(self)  # the control topic's commands and the operator services
        self._snapshot = ParamSnapshot(self, list(p.param_nodes), self._store_params)
        self.discovery.scan()
        # on the steady clock, as the diagnostics: with use_sim_time a paused or dead simulator froze the flushes, the
        # disk checks and the close after a stop's grace, while wall-clock topics went on arriving (an audit)
        self._discovery_timer = self.create_timer(p.discovery_period, self.discovery.scan, clock=STEADY)
        self.create_timer(min(p.flush_period, 0.1), self._tick, clock=STEADY)
        self.clock_check = ClockCheck(self)  # use_sim_time without /clock, or /clock beside wall time (mixed bags)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics, clock=STEADY)  # (also while sim time stands)
        self._publish_status("idle", free_mb=free / 1e6)
        if p.autostart:
            self.start_episode(json.loads(p.autostart_meta))

    def _recover_orphans(self) -> None:
        """Repair bags a killed recorder left behind in ``output_dir`` (sidecar status ``recovered``)."""
        for r in self.session.recover_orphans():
            log = self.get_logger().error if r.action == "failed" else self.get_logger().warning
            log(f"unfinished bag from an earlier run {r.line()}")

    def _on_param_change(self, name: str, value: Any) -> None:
        if name == "discovery_period":
            set_timer_period(self._discovery_timer, float(value))

    # ----------------------------------------------------------------------------- topics
    def _on_subscribed(self, topic: str) -> None:
        if self.session.bag is not None and self.session.bag.is_open:
            self._add_to_bag(topic)

    def _add_to_bag(self, topic: str) -> bool:
        bag = self.session.bag
        _, ty = self.discovery.subs.get(topic, (None, ""))
        if bag is None or not ty:
            return False
        dropped = self.session.meta.setdefault("dropped_topics", {})
        if topic in dropped:
            return False  # failed before in this episode (e.g. no definition of its type): not retried per message
        try:
            bag.add_topic(topic, ty, self.discovery.offered.get(topic))
            return True
        except RecordingError as exc:
            dropped[topic] = str(exc)  # in the sidecar: the bag lacks this topic, and why
            self.get_logger().error(f"{exc} (not recorded in this episode)")
            return False

    # --------------------------------------------------------------------------- messages
    def _now(self) -> int:
        return self.get_clock().now().nanoseconds

    def _received_ns(self, info: dict | None) -> int:
        """When the message was received: the middleware's receipt time, not this callback's -- messages queued
        while the recorder was busy (opening an episode's bag and fsyncing it) were stamped up to 230 ms late, and
        a command topic's grid took a late first message for the ticks' phase (a walkthrough, 2026-12-07). The
        callback's time on simulated time (the receipt is the system clock's) or when the receipt is implausible."""
        clock = self.get_clock()
        now = clock.now().nanoseconds
        rx = int((info or {}).get("received_timestamp") or 0)
        if rx <= 0 or clock.ros_time_is_active or not 0 <= now - rx < 5_000_000_000:
            return now
        return rx

    def _on_message(self, topic: str, data: bytes, info: dict | None = None) -> None:
        bag = self.session.bag
        if bag is None or not bag.is_open:
            return
        if not bag.has_topic(topic) and not self._add_to_bag(topic):
            return
        try:
            bag.write(topic, self._received_ns(info), data)
        except RecordingError as exc:  # (bag.write turns an I/O error, e.g. a full disk, into one)
            self._fail(str(exc))
            return
        if self._sim_status_topic and topic == self._sim_status_topic:
            self._note_sim_status(data)

    def _note_sim_status(self, data: bytes) -> None:
        """Keep the simulator's latest task/success/protective-stop counts in the episode's metadata."""
        try:
            status = json.loads(string_from_cdr(data))
        except (ValueError, TypeError, KeyError) as exc:
            if self._sim_status_errors == 0:
                self.get_logger().warning(f"unreadable message on {self._sim_status_topic}: {exc}")
            self._sim_status_errors += 1
            return
        if isinstance(status, dict) and self.session.meta is not None:
            self.session.meta["sim"] = sim_summary(status)

    # --------------------------------------------------------------------------- episodes
    @property
    def recording(self) -> bool:
        return self.session.recording

    def start_episode(self, meta: dict[str, Any]) -> Path | None:
        """Open a new episode bag (closing a running one first). Returns its path, None on error."""
        if self.session.recording and self.session.pending_result is not None:
            self.finish_episode(None)  # stopped, in its grace: closed with the stop's verdict
        elif self.session.recording:
            self.get_logger().warning("start received while recording: closing the running episode first")
            self.finish_episode("interrupted", {"reason": "new episode started"})
        try:
            bag = self.session.start(meta, self._now(), int(self.p.min_free_mb * 1e6))
        except RecordingError as exc:
            self.get_logger().error(f"cannot start episode: {exc}")
            self._publish_status("error", error=str(exc))
            self.last_start_error = str(exc)
            return None
        self._lost_at_start = dict(self.discovery.lost)
        self.discovery.new_episode()
        for topic in self.discovery.subs:
            self._add_to_bag(topic)
        self._write_sidecar()
        if not self.session.recording:  # the sidecar could not be written: failed (logged, status 'error')
            self.last_start_error = "cannot write the episode's sidecar (see the log)"
            return None
        self._param_deadline, self.last_start_error = time.monotonic() + self.p.param_wait, ""
        self._request_params()
        name = self.session.meta["episode"]
        self.get_logger().info(f"episode {name} started ({bag.path})")
        self._publish_status("recording", episode=name, bag=str(bag.path))
        return bag.path

    def request_stop(self, status: str, result: dict[str, Any]) -> None:
        """Stop after ``stop_grace`` seconds (messages already in flight still land in the bag)."""
        self.session.request_stop(status, result, self._now(), time.monotonic(), self.p.stop_grace)
        if self.p.stop_grace <= 0:
            self._tick()
        else:
            self._write_sidecar()  # the verdict on disk (pending_stop) should the recorder die within the grace

    def finish_episode(self, status: str | None, result: dict[str, Any] | None = None) -> Path | None:
        """Close the running episode now (``status`` None: the requested stop's). Returns the bag path."""
        self._note_lost()
        self._note_missing_topics()
        meta = self.session.finish(status, result, self._now())
        if meta is None:
            return None
        self.last_episode = meta
        for error in self.session.errors:
            self.get_logger().error(error)
        self.get_logger().info(f"episode {meta['episode']} {meta['status']}: {meta['message_count']} messages, "
                               f"{meta['duration_s']:.1f} s -> {meta['bag']}")
        self._publish_status("idle", episode=meta["episode"], bag=str(meta["bag"]), last_status=meta["status"],
                             message_count=meta["message_count"])
        return meta["bag"]

    # the episode's topics (lost, silent, changed type): rtc_ros.nodes.recorder_topics
    lost_in_episode, silent_topics = recorder_topics.lost_in_episode, recorder_topics.silent_topics
    _note_lost, _note_missing_topics = recorder_topics.note_lost, recorder_topics.note_missing_topics

    def _fail(self, error: str) -> None:
        self.get_logger().error(f"recording failed: {error}")
        self._note_lost()
        self.session.fail(error, self._now())
        self.last_episode = dict(self.session.meta or {})
        for text in self.session.errors:
            self.get_logger().error(text)
        self._publish_status("error", error=error)

    def _tick(self) -> None:
        s = self.session
        if not s.recording:
            return
        now_m = time.monotonic()
        if s.stop_due(now_m):
            self.finish_episode(None)
            return
        if self.p.max_duration > 0 and s.stop_deadline is None and \
                (self._now() - s.meta["start_time_ns"]) * 1e-9 >= self.p.max_duration:
            self.get_logger().warning(f"episode reached max_duration {self.p.max_duration} s; closing")
            self.request_stop("timeout", {})
            return
        if now_m < self._param_deadline and now_m - self._last_param_try >= 0.5 and any(
                "_error" in v for v in s.meta.get("params", {}).values()):
            self._request_params()
        try:
            free = s.flush(now_m)
        except RecordingError as exc:
            self._fail(str(exc))
            return
        if free is not None and free < self.p.stop_free_mb * 1e6:
            self.get_logger().error(f"only {free / 1e6:.0f} MB free: closing the episode")
            s.meta["error"] = f"free space {free / 1e6:.0f} MB (below stop_free_mb {self.p.stop_free_mb})"  # (a result's
            # 'error' is the recorder's own field, dropped: the sidecar said stopped_low_disk without why -- an audit)
            self.finish_episode("stopped_low_disk", {})

    # ------------------------------------------------------------------------- metadata
    def _write_sidecar(self) -> None:
        try:
            self.session.write_sidecar()
        except OSError as exc:
            self._fail(f"cannot write sidecar: {exc}")

    def _request_params(self) -> None:
        """Ask every ``param_nodes`` node for all its parameters (async; stored when they answer)."""
        self._last_param_try = time.monotonic()
        params = self.session.meta["params"]
        for name in self._snapshot.nodes:
            if name in params and "_error" not in params[name]:
                continue
            if not self._snapshot.request(name, self.session.episode):
                # discovery may still be running: _tick retries for param_wait seconds
                params[name] = {"_error": "node not running (no parameter service)"}

    def _store_params(self, node: str, episode: Any, values: dict[str, Any]) -> None:
        if self.session.store_params(node, episode, values):
            self._write_sidecar()
            spec = self.session.meta.get("policy_spec")
            if isinstance(spec, dict) and spec.get("error"):
                self.get_logger().warn(f"{episode}: the policy spec {spec.get('path')!r} is {spec['error']}: the "
                                       "sidecar has no hashes of the policy that ran", throttle_duration_sec=60.0)

    def _publish_diagnostics(self) -> None:
        level, message, vals = recorder_status(self)
        self._diag_pub.publish(diagnostic_array(f"rtc_ros: episode_recorder ({self.get_fully_qualified_name()})",
                                                level, message, vals, self.get_clock().now().to_msg()))

    def _publish_status(self, state: str, **extra: Any) -> None:
        msg = String()
        msg.data = json.dumps({"state": state, "output_dir": str(self.output_dir), **extra}, default=str)
        self._status_pub.publish(msg)

    def shutdown(self, reason: str) -> Path | None:
        """Close a running episode (status ``interrupted``) -- called on SIGINT/SIGTERM."""
        if not self.session.recording:
            return None
        if self.session.pending_result is not None:
            return self.finish_episode(None)
        self.get_logger().warning(f"{reason}: closing episode {self.session.episode} with what was received")
        return self.finish_episode("interrupted", {"reason": reason})


def main(args: list[str] | None = None) -> int:
    """Run the recorder until SIGINT/SIGTERM; a running episode is closed as a readable bag.

    Exit status: 0 after a clean shutdown, 1 if the output directory is unusable at start, 2 on an
    invalid parameter.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)  # the terminal / ssh session went away: close the bag as for SIGTERM
    try:
        node = EpisodeRecorder()
    except (RecordingError, ParameterError) as exc:
        print(f"[episode_recorder] FATAL: refusing to start: {exc}", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        return 2 if isinstance(exc, ParameterError) else 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while not received and rclpy.ok():
            executor.spin_once(timeout_sec=0.05)
    finally:
        reason = signal.Signals(received[0]).name if received else "shutdown"
        node.shutdown(reason)
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()
        # Python's finalization resets a Python-function handler to SIG_DFL: a late SIGINT (ros2 launch's
        # own, after the terminal's) would then kill the process with exit -2 after the bag was closed.
        ignore_sigint()
    return 0


if __name__ == "__main__":
    sys.exit(main())
