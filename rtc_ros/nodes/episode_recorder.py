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
``extra_latency_ms``), the policy spec (YAML content + SHA-256 of spec and weights), success/score,
start/stop times, duration, per-topic message counts.

Topics: ``topics`` (relative or absolute names; subscribed once a publisher shows their type, or
at once when given in ``topic_types`` as ``name=pkg/msg/Type``), every topic whose name matches a
regex in ``topic_patterns`` (the arm command topics by default) and ``camera_topics``.

Robustness: the output directory is checked at start (writable, ``min_free_mb`` free) -- the node
refuses to start otherwise -- and again at every episode start; buffered messages are flushed to
disk every ``flush_period`` s; SIGINT/SIGTERM mid-episode closes a readable bag (status
``interrupted``); a write error or free space below ``stop_free_mb`` closes the episode with an
error status instead of silently losing data.

Run: ``python -m rtc_ros.nodes.episode_recorder --ros-args -p output_dir:=~/rtc_episodes``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import rclpy
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rcl_interfaces.srv import GetParameters, ListParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from rtc_ros.recording.bag import (
    BagWriter,
    RecordingError,
    next_episode_name,
    preflight_output_dir,
    read_sidecar,
    write_sidecar,
)

DEFAULT_TOPICS = ["rtc/chunk", "rtc/executor_state", "joint_states", "rtc/progress", "rtc/episode", "/diagnostics",
                  "sim/status"]
#: arm command topics of chunk_executor (any output_type) and teleop/demonstration commands
DEFAULT_PATTERNS = [r"_controller/commands$", r"_controller/joint_trajectory$", r"/joint_commands$"]
PARAM_NODES = ["policy_inference", "chunk_executor"]


def _param_value(pv: Any) -> Any:
    """rcl_interfaces/ParameterValue -> Python value."""
    t = pv.type
    return {
        ParameterType.PARAMETER_BOOL: lambda: pv.bool_value,
        ParameterType.PARAMETER_INTEGER: lambda: pv.integer_value,
        ParameterType.PARAMETER_DOUBLE: lambda: pv.double_value,
        ParameterType.PARAMETER_STRING: lambda: pv.string_value,
        ParameterType.PARAMETER_BYTE_ARRAY: lambda: [int(b) for b in pv.byte_array_value],
        ParameterType.PARAMETER_BOOL_ARRAY: lambda: list(pv.bool_array_value),
        ParameterType.PARAMETER_INTEGER_ARRAY: lambda: list(pv.integer_array_value),
        ParameterType.PARAMETER_DOUBLE_ARRAY: lambda: list(pv.double_array_value),
        ParameterType.PARAMETER_STRING_ARRAY: lambda: list(pv.string_array_value),
    }.get(t, lambda: None)()


def _sha256(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return None


def describe_policy_spec(path: str) -> dict[str, Any]:
    """``{path, sha256, spec (parsed YAML), weights_sha256}`` of a policy spec file (best effort)."""
    import yaml

    p = Path(os.path.expanduser(path))
    out: dict[str, Any] = {"path": str(p)}
    if not p.is_file():
        out["error"] = "not readable from the recorder's machine"
        return out
    out["sha256"] = _sha256(p)
    try:
        spec = yaml.safe_load(p.read_text())
        out["spec"] = spec
        if isinstance(spec, dict) and spec.get("weights"):
            out["weights_sha256"] = _sha256(p.parent / str(spec["weights"]))
    except yaml.YAMLError as exc:
        out["error"] = f"invalid YAML: {exc}"
    return out


def _msg_class(msgtype: str) -> Any:
    """``pkg/msg/Name`` (or ``pkg/Name``) -> the Python message class."""
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3:
        raise ValueError(f"bad message type {msgtype!r}")
    return getattr(importlib.import_module(f"{parts[0]}.{parts[1]}"), parts[2])


class EpisodeRecorder(Node):
    """The recorder node; see the module docstring.

    Raises:
        RecordingError: the output directory is not usable (checked in the constructor).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("episode_recorder", **kwargs)

        def p(name: str, default: Any, desc: str, ptype: Parameter.Type | None = None) -> Any:
            d = ParameterDescriptor(description=desc, read_only=True)
            if ptype is not None:
                return self.declare_parameter(name, ptype, d).value
            return self.declare_parameter(name, default, d).value

        self.output_dir = Path(os.path.expanduser(p("output_dir", "~/rtc_episodes", "Directory for episode bags.")))
        self.topics: list[str] = list(p("topics", DEFAULT_TOPICS, "Topics to record (relative or absolute)."))
        self.patterns = [re.compile(x) for x in p("topic_patterns", DEFAULT_PATTERNS,
                                                  "Regexes: also record every topic whose resolved name matches.")]
        self.camera_topics: list[str] = list(p("camera_topics", None, "Camera topics to record (optional).",
                                               Parameter.Type.STRING_ARRAY) or [])
        topic_types = list(p("topic_types", None, "Explicit types 'name=pkg/msg/Type' (subscribe without waiting "
                                                  "for discovery).", Parameter.Type.STRING_ARRAY) or [])
        self.control_topic = p("control_topic", "rtc/episode", "Episode control topic (std_msgs/String JSON).")
        self.status_topic = p("status_topic", "rtc/episode_status", "Episode status topic (std_msgs/String JSON).")
        self.param_nodes: list[str] = list(p("param_nodes", PARAM_NODES, "Nodes whose parameters are stored "
                                                                        "with each episode."))
        self.min_free_mb = float(p("min_free_mb", 500.0, "Refuse to start (node / episode) below this free space."))
        self.stop_free_mb = float(p("stop_free_mb", 50.0, "Close the running episode below this free space."))
        self.flush_period = float(p("flush_period", 1.0, "Seconds between flushes of buffered messages to disk."))
        self.discovery_period = float(p("discovery_period", 0.5, "Seconds between topic discovery scans."))
        self.stop_grace = float(p("stop_grace", 0.3, "Seconds messages are still recorded after 'stop' (in flight)."))
        self.max_duration = float(p("max_duration", 0.0, "Close an episode after this many seconds (0 = never)."))
        self.param_wait = float(p("param_wait", 5.0, "Seconds to keep asking param_nodes that are not (yet) "
                                                     "discovered at episode start."))
        self._param_deadline = 0.0
        self._last_param_try = 0.0
        self.compression = p("compression", "none", "MCAP chunk compression: none or zstd.")
        self.prefix = p("prefix", "episode", "Episode bag name prefix.")
        self.depth = int(p("queue_depth", 1000, "Subscription queue depth (keep-last)."))
        autostart = bool(p("autostart", False, "Start an episode immediately (meta from 'autostart_meta')."))
        autostart_meta = p("autostart_meta", "{}", "JSON meta for the autostarted episode.")
        if self.compression not in ("none", "zstd"):
            raise RecordingError(f"invalid parameter 'compression' = {self.compression!r}: must be none or zstd")

        # checked now, not discovered at the end of the first episode
        free = preflight_output_dir(self.output_dir, int(self.min_free_mb * 1e6))
        self.get_logger().info(f"recording to {self.output_dir} ({free / 1e9:.1f} GB free)")

        self._explicit_types: dict[str, str] = {}
        for item in topic_types:
            name, sep, ty = item.partition("=")
            if not sep or ty.count("/") not in (1, 2):
                raise RecordingError(f"invalid parameter 'topic_types' entry {item!r}: expected name=pkg/msg/Type")
            self._explicit_types[self._resolve(name.strip())] = ty.strip() if ty.count("/") == 2 else \
                ty.strip().replace("/", "/msg/")
        self._wanted = {self._resolve(t) for t in [*self.topics, *self.camera_topics] if t}
        self._subs: dict[str, tuple[Any, str]] = {}  # resolved topic -> (subscription, type)
        self._qos: dict[str, list[Any]] = {}  # offered QoS profiles (bag metadata)
        self._sub_qos: dict[str, QoSProfile] = {}
        self._bag: BagWriter | None = None
        self._meta: dict[str, Any] = {}
        self._stop_deadline: float | None = None
        self._last_closed: Path | None = None
        self._pending_params: dict[str, Any] = {}

        status_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)
        self._status_pub = self.create_publisher(String, self.status_topic, status_qos)
        control_qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self._control_sub = self.create_subscription(String, self.control_topic, self._on_control, control_qos)
        self._control_resolved = self._resolve(self.control_topic)
        self._param_clients: dict[str, tuple[Any, Any]] = {}
        for name in self.param_nodes:
            base = name if name.startswith("/") else f"{self.get_namespace().rstrip('/')}/{name}"
            self._param_clients[name] = (
                self.create_client(ListParameters, f"{base}/list_parameters"),
                self.create_client(GetParameters, f"{base}/get_parameters"),
            )
        self._discover()
        self.create_timer(self.discovery_period, self._discover)
        self.create_timer(min(self.flush_period, 0.1), self._tick)
        self._publish_status("idle", free_mb=free / 1e6)
        if autostart:
            try:
                meta = json.loads(autostart_meta)
            except json.JSONDecodeError as exc:
                raise RecordingError(f"invalid parameter 'autostart_meta': {exc}") from exc
            self.start_episode(meta if isinstance(meta, dict) else {})

    # ----------------------------------------------------------------------------- topics
    def _resolve(self, name: str) -> str:
        return self.resolve_topic_name(name)

    def _wants(self, topic: str) -> bool:
        return topic in self._wanted or any(p.search(topic) for p in self.patterns)

    def _discover(self) -> None:
        """Subscribe to wanted topics once a publisher shows their type; re-subscribe when a new
        publisher's QoS would not match ours (a best-effort camera appearing after a reliable guess)."""
        known = dict(self._explicit_types)
        n_types: dict[str, int] = {}
        for topic, types in self.get_topic_names_and_types():
            n_types[topic] = len(types)
            if topic not in known and types:
                known[topic] = types[0]
        for topic, ty in known.items():
            if not self._wants(topic):
                continue
            if topic in self._subs:
                self._check_qos(topic)
                continue
            # a topic seen only through its subscribers (e.g. policy_inference's camera subscription)
            # has no publisher to match QoS with yet: wait for one (explicit types subscribe at once)
            if topic not in self._explicit_types and self.count_publishers(topic) == 0:
                continue
            if n_types.get(topic, 1) > 1:
                self.get_logger().warning(f"topic {topic} has several types; recording {ty}")
            self._subscribe(topic, ty)

    def _check_qos(self, topic: str) -> None:
        sub, ty = self._subs[topic]
        cur = self._sub_qos.get(topic)
        if sub is None or cur is None:
            return
        infos = self.get_publishers_info_by_topic(topic)
        mismatch = (cur.reliability == ReliabilityPolicy.RELIABLE
                    and any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos)) or (
            cur.durability == DurabilityPolicy.TRANSIENT_LOCAL
            and any(i.qos_profile.durability == DurabilityPolicy.VOLATILE for i in infos))
        if mismatch:
            self.get_logger().info(f"re-subscribing {topic}: a publisher's QoS does not match ours")
            self.destroy_subscription(sub)
            del self._subs[topic]
            self._subscribe(topic, ty)

    def _subscribe(self, topic: str, msgtype: str) -> None:
        try:
            cls = _msg_class(msgtype)
        except (ImportError, AttributeError, ValueError) as exc:
            self.get_logger().error(f"cannot record {topic}: message type {msgtype} not importable ({exc})")
            self._subs[topic] = (None, msgtype)  # do not retry every scan
            return
        qos, offered = self._qos_for(topic)
        self._qos[topic] = offered
        cb: Callable[[bytes], None] = lambda data, t=topic: self._on_message(t, data)  # noqa: E731
        sub = self.create_subscription(cls, topic, cb, qos, raw=True)
        self._subs[topic] = (sub, msgtype)
        self._sub_qos[topic] = qos
        self.get_logger().info(f"recording {topic} [{msgtype}] ({qos.reliability.name.lower()}, "
                               f"{qos.durability.name.lower()})")
        if self._bag is not None and self._bag.is_open:
            self._add_to_bag(topic)

    def _qos_for(self, topic: str) -> tuple[QoSProfile, list[Any]]:
        """Match the publishers like ``ros2 bag record``: reliable unless a publisher is best effort,
        transient local only if every publisher is."""
        from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

        infos = self.get_publishers_info_by_topic(topic)
        rel = ReliabilityPolicy.RELIABLE
        dur = DurabilityPolicy.VOLATILE
        if infos:
            if any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos):
                rel = ReliabilityPolicy.BEST_EFFORT
            if all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos):
                dur = DurabilityPolicy.TRANSIENT_LOCAL
        offered = []
        zero = QosTime(0, 0)
        for i in infos:
            q = i.qos_profile
            offered.append(Qos(
                history=QosHistory.KEEP_LAST if q.history != HistoryPolicy.KEEP_ALL else QosHistory.KEEP_ALL,
                depth=int(q.depth),
                reliability=QosReliability.BEST_EFFORT if q.reliability == ReliabilityPolicy.BEST_EFFORT
                else QosReliability.RELIABLE,
                durability=QosDurability.TRANSIENT_LOCAL if q.durability == DurabilityPolicy.TRANSIENT_LOCAL
                else QosDurability.VOLATILE,
                deadline=zero, lifespan=zero, liveliness=QosLiveliness.AUTOMATIC,
                liveliness_lease_duration=zero, avoid_ros_namespace_conventions=False,
            ))
        return QoSProfile(depth=self.depth, reliability=rel, durability=dur, history=HistoryPolicy.KEEP_LAST), offered

    def _add_to_bag(self, topic: str) -> bool:
        assert self._bag is not None
        sub, ty = self._subs.get(topic, (None, ""))
        if not ty:
            return False
        try:
            self._bag.add_topic(topic, ty, self._qos.get(topic))
            return True
        except RecordingError as exc:
            self.get_logger().error(str(exc))
            return False

    # --------------------------------------------------------------------------- messages
    def _on_message(self, topic: str, data: bytes) -> None:
        bag = self._bag
        if bag is None or not bag.is_open:
            return
        if not bag.has_topic(topic) and not self._add_to_bag(topic):
            return
        try:
            bag.write(topic, self.get_clock().now().nanoseconds, data)
        except RecordingError as exc:
            self._fail(str(exc))

    def _on_control(self, msg: String) -> None:
        try:
            cmd = json.loads(msg.data)
            if not isinstance(cmd, dict) or not isinstance(cmd.get("cmd"), str):
                raise ValueError("expected a JSON object with a string field 'cmd'")
        except (json.JSONDecodeError, ValueError) as exc:
            self.get_logger().error(f"ignoring episode command {msg.data!r}: {exc}")
            self._publish_status("error", error=f"bad command: {exc}")
            return
        kind = cmd["cmd"]
        if kind == "start":
            meta = cmd.get("meta") or {}
            self.start_episode(meta if isinstance(meta, dict) else {"meta": meta})
        elif kind in ("stop", "abort"):
            if self._bag is None:
                self.get_logger().warning(f"'{kind}' received while not recording; ignored")
                return
            result = {k: v for k, v in cmd.items() if k != "cmd"}
            self.request_stop("aborted" if kind == "abort" else "completed", result)
        elif kind == "score":
            self.amend_score({k: v for k, v in cmd.items() if k != "cmd"})
        else:
            self.get_logger().error(f"unknown episode command {kind!r} (start, stop, abort, score)")

    # --------------------------------------------------------------------------- episodes
    @property
    def recording(self) -> bool:
        return self._bag is not None

    def start_episode(self, meta: dict[str, Any]) -> Path | None:
        """Open a new episode bag (closing a running one first). Returns its path, None on error."""
        if self._bag is not None:
            self.get_logger().warning("start received while recording: closing the running episode first")
            self.finish_episode("interrupted", {"reason": "new episode started"})
        try:
            free = preflight_output_dir(self.output_dir, int(self.min_free_mb * 1e6))
            name = next_episode_name(self.output_dir, self.prefix)
            bag = BagWriter(self.output_dir / name, flush_period_s=self.flush_period, compression=self.compression)
            bag.open()
        except RecordingError as exc:
            self.get_logger().error(f"cannot start episode: {exc}")
            self._publish_status("error", error=str(exc))
            return None
        self._bag = bag
        self._stop_deadline = None
        now = self.get_clock().now().nanoseconds
        self._meta = {
            **meta,
            "episode": name,
            "status": "recording",
            "recorder_version": 1,
            "operator_meta": dict(meta),
            "start_time_ns": now,
            "start_wall": datetime.now(timezone.utc).isoformat(),
            "host": socket.gethostname(),
            "free_mb_at_start": round(free / 1e6, 1),
            "params": {},
        }
        for topic in self._subs:
            self._add_to_bag(topic)
        self._write_sidecar()
        self._param_deadline = time.monotonic() + self.param_wait
        self._request_params()
        self.get_logger().info(f"episode {name} started ({bag.path})")
        self._publish_status("recording", episode=name, bag=str(bag.path))
        return bag.path

    def request_stop(self, status: str, result: dict[str, Any]) -> None:
        """Stop after ``stop_grace`` seconds (messages already in flight still land in the bag)."""
        self._meta["stop_time_ns"] = self.get_clock().now().nanoseconds
        self._meta["_pending_result"] = (status, result)
        self._stop_deadline = time.monotonic() + self.stop_grace
        if self.stop_grace <= 0:
            self._tick()

    def finish_episode(self, status: str, result: dict[str, Any] | None = None) -> Path | None:
        """Close the running episode now: bag, metadata, sidecar. Returns the bag path."""
        bag = self._bag
        if bag is None:
            return None
        self._bag = None
        self._stop_deadline = None
        meta = self._meta
        meta.pop("_pending_result", None)
        now = self.get_clock().now().nanoseconds
        meta.setdefault("stop_time_ns", now)
        meta["close_time_ns"] = now
        meta["status"] = status
        meta.update(result or {})
        meta["duration_s"] = (meta["stop_time_ns"] - meta["start_time_ns"]) * 1e-9
        meta["topics"] = bag.stats()
        meta["message_count"] = sum(bag.counts.values())
        self._fill_derived(meta)
        try:
            bag.close(meta)
        except RecordingError as exc:
            meta["status"] = "failed"
            meta["error"] = str(exc)
            self.get_logger().error(str(exc))
        try:
            write_sidecar(bag.path, meta)
        except OSError as exc:
            self.get_logger().error(f"cannot write sidecar of {bag.path}: {exc}")
        self._last_closed = bag.path
        self.get_logger().info(f"episode {meta['episode']} {meta['status']}: {meta['message_count']} messages, "
                               f"{meta['duration_s']:.1f} s -> {bag.path}")
        self._publish_status("idle", episode=meta["episode"], bag=str(bag.path), last_status=meta["status"],
                             message_count=meta["message_count"])
        return bag.path

    def amend_score(self, result: dict[str, Any]) -> None:
        """Update success/score/notes of the last closed episode's sidecar."""
        if self._last_closed is None:
            self.get_logger().warning("'score' received but no episode was closed yet; ignored")
            return
        meta = read_sidecar(self._last_closed) or {}
        meta.update(result)
        meta["scored_after_stop"] = True
        write_sidecar(self._last_closed, meta)
        self.get_logger().info(f"episode {meta.get('episode')} scored: {result}")

    def _fail(self, error: str) -> None:
        self.get_logger().error(f"recording failed: {error}")
        bag = self._bag
        if bag is not None:
            bag.abort()
            self._meta.update({"status": "failed", "error": error,
                               "stop_time_ns": self.get_clock().now().nanoseconds})
            self._meta["duration_s"] = (self._meta["stop_time_ns"] - self._meta["start_time_ns"]) * 1e-9
            self._meta["topics"] = bag.stats()
            try:
                write_sidecar(bag.path, self._meta)
            except OSError:
                pass
            self._bag = None
        self._publish_status("error", error=error)

    def _tick(self) -> None:
        bag = self._bag
        if bag is None:
            return
        if self._stop_deadline is not None and time.monotonic() >= self._stop_deadline:
            status, result = self._meta.get("_pending_result", ("completed", {}))
            self.finish_episode(status, result)
            return
        if self.max_duration > 0 and (self.get_clock().now().nanoseconds - self._meta["start_time_ns"]) * 1e-9 \
                >= self.max_duration and self._stop_deadline is None:
            self.get_logger().warning(f"episode reached max_duration {self.max_duration} s; closing")
            self.request_stop("timeout", {})
            return
        now_m = time.monotonic()
        if now_m < self._param_deadline and now_m - self._last_param_try >= 0.5 and any(
                "_error" in v for v in self._meta.get("params", {}).values()):
            self._request_params()
        try:
            before = bag._last_flush  # noqa: SLF001 - only to know whether a flush happened
            bag.maybe_flush()
            if bag._last_flush != before:  # noqa: SLF001
                free = shutil.disk_usage(self.output_dir).free
                if free < self.stop_free_mb * 1e6:
                    self.get_logger().error(f"only {free / 1e6:.0f} MB free: closing the episode")
                    self.finish_episode("stopped_low_disk", {"error": f"free space {free / 1e6:.0f} MB"})
        except RecordingError as exc:
            self._fail(str(exc))

    # ------------------------------------------------------------------------- metadata
    def _write_sidecar(self) -> None:
        if self._bag is None:
            return
        try:
            write_sidecar(self._bag.path, {k: v for k, v in self._meta.items() if not k.startswith("_")})
        except OSError as exc:
            self._fail(f"cannot write sidecar: {exc}")

    def _request_params(self) -> None:
        """Ask every ``param_nodes`` node for all its parameters (async; stored when they answer)."""
        episode = self._meta.get("episode")
        self._last_param_try = time.monotonic()
        for name, (lister, getter) in self._param_clients.items():
            if name in self._meta["params"] and "_error" not in self._meta["params"][name]:
                continue
            if not lister.service_is_ready() or not getter.service_is_ready():
                # discovery may still be running: _tick retries for param_wait seconds
                self._meta["params"][name] = {"_error": "node not running (no parameter service)"}
                continue
            req = ListParameters.Request()
            req.depth = 0
            fut = lister.call_async(req)
            fut.add_done_callback(lambda f, n=name, g=getter, e=episode: self._on_param_list(n, g, e, f))

    def _on_param_list(self, node: str, getter: Any, episode: str, fut: Any) -> None:
        try:
            names = list(fut.result().result.names)
        except Exception as exc:  # noqa: BLE001 - service failure is recorded, not fatal
            self._store_params(node, episode, {"_error": str(exc)})
            return
        req = GetParameters.Request()
        req.names = names
        f2 = getter.call_async(req)
        f2.add_done_callback(lambda f, n=node, g=getter, e=episode, ns=names: self._on_param_values(n, g, e, ns, f))

    def _on_param_values(self, node: str, getter: Any, episode: str, names: list[str], fut: Any) -> None:
        try:
            got = list(fut.result().values)
        except Exception as exc:  # noqa: BLE001
            self._store_params(node, episode, {"_error": str(exc)})
            return
        if len(got) == len(names):
            self._store_params(node, episode, {n: _param_value(v) for n, v in zip(names, got)})
            return
        # rclpy answers nothing at all when one name cannot be read (e.g. an unset parameter):
        # ask one by one and keep what can be read
        values: dict[str, Any] = {}
        pending = set(names)

        def one_done(name: str, f: Any) -> None:
            try:
                vals = list(f.result().values)
                if vals:
                    values[name] = _param_value(vals[0])
            except Exception:  # noqa: BLE001
                pass
            pending.discard(name)
            if not pending:
                self._store_params(node, episode, dict(sorted(values.items(), key=lambda kv: names.index(kv[0]))))

        for name in names:
            r = GetParameters.Request()
            r.names = [name]
            getter.call_async(r).add_done_callback(lambda f, nm=name: one_done(nm, f))

    def _store_params(self, node: str, episode: str, values: dict[str, Any]) -> None:
        if self._bag is None or self._meta.get("episode") != episode:
            return  # the episode is over; too late
        self._meta["params"][node] = values
        self._fill_derived(self._meta)
        self._write_sidecar()

    @staticmethod
    def _fill_derived(meta: dict[str, Any]) -> None:
        """Top-level ``method``, ``injected_latency_ms``, ``dt``, ``rtc`` (the RTC parameters) and
        ``policy_spec`` from the parameter snapshot; values the operator's start meta sets win."""
        op = meta.get("operator_meta") or {}
        params = meta.get("params") or {}
        inf = params.get("policy_inference") if isinstance(params.get("policy_inference"), dict) else {}
        exe = params.get("chunk_executor") if isinstance(params.get("chunk_executor"), dict) else {}
        src = {k: v for k, v in {**exe, **inf}.items() if not k.startswith("_")}

        def put(key: str, value: Any) -> None:
            if key not in op:
                meta[key] = value

        if isinstance(src.get("method"), str):
            put("method", src["method"])
        if isinstance(src.get("extra_latency_ms"), (int, float)):
            put("injected_latency_ms", float(src["extra_latency_ms"]))
        if isinstance(src.get("rate_hz"), (int, float)) and src["rate_hz"] > 0:
            put("dt", 1.0 / float(src["rate_hz"]))
        keys = ("method", "horizon", "s_min", "rate_hz", "beta", "n_steps", "delay_buffer_size", "jacobian",
                "bid_samples", "bid_k", "extra_latency_ms", "warmup_iterations", "seed", "device",
                "ensemble_decay", "output_type", "loop_mode", "max_chunk_age")
        if any(k in src for k in keys):
            put("rtc", {k: src[k] for k in keys if k in src})
        if isinstance(inf.get("policy_spec"), str) and inf["policy_spec"]:
            put("policy_spec", describe_policy_spec(inf["policy_spec"]))
        if isinstance(inf.get("weak_policy_spec"), str) and inf["weak_policy_spec"]:
            put("weak_policy_spec", describe_policy_spec(inf["weak_policy_spec"]))

    def _publish_status(self, state: str, **extra: Any) -> None:
        msg = String()
        msg.data = json.dumps({"state": state, "output_dir": str(self.output_dir), **extra}, default=str)
        self._status_pub.publish(msg)

    def shutdown(self, reason: str) -> Path | None:
        """Close a running episode (status ``interrupted``) -- called on SIGINT/SIGTERM."""
        if self._bag is None:
            return None
        if "_pending_result" in self._meta:
            status, result = self._meta["_pending_result"]
            return self.finish_episode(status, result)
        self.get_logger().warning(f"{reason}: closing episode {self._meta.get('episode')} with what was received")
        return self.finish_episode("interrupted", {"reason": reason})


def main(args: list[str] | None = None) -> int:
    """Run the recorder until SIGINT/SIGTERM; a running episode is closed as a readable bag.

    Exit status: 0 after a clean shutdown, 1 if the output directory is unusable at start.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        node = EpisodeRecorder()
    except RecordingError as exc:
        print(f"[episode_recorder] FATAL: {exc}", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        return 1
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
