"""Raw subscriptions to every wanted topic, made as publishers appear, with their QoS matched.

Used by ``episode_recorder``: a topic is wanted when its resolved name is listed or matches a
pattern; it is subscribed (``raw=True``: CDR bytes as they travelled) once a publisher shows its
type, or at once when its type is given explicitly. QoS follows ``ros2 bag record``.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Callable

from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def msg_class(msgtype: str) -> Any:
    """``pkg/msg/Name`` (or ``pkg/Name``) -> the Python message class."""
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3:
        raise ValueError(f"bad message type {msgtype!r}")
    return getattr(importlib.import_module(f"{parts[0]}.{parts[1]}"), parts[2])


def offered_qos(infos: list[Any]) -> list[Any]:
    """Publishers' QoS profiles as ``rosbags`` Qos (for the bag metadata)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    zero = QosTime(0, 0)
    return [Qos(
        history=QosHistory.KEEP_LAST if q.history != HistoryPolicy.KEEP_ALL else QosHistory.KEEP_ALL,
        depth=int(q.depth),
        reliability=QosReliability.BEST_EFFORT if q.reliability == ReliabilityPolicy.BEST_EFFORT
        else QosReliability.RELIABLE,
        durability=QosDurability.TRANSIENT_LOCAL if q.durability == DurabilityPolicy.TRANSIENT_LOCAL
        else QosDurability.VOLATILE,
        deadline=zero, lifespan=zero, liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=zero, avoid_ros_namespace_conventions=False,
    ) for q in (i.qos_profile for i in infos)]


class TopicDiscovery:
    """Subscribe ``node`` to wanted topics as they appear; call :meth:`scan` periodically.

    Args:
        node: the owner (its namespace resolves relative names).
        topics: wanted topic names (relative or absolute).
        patterns: regexes; every topic under the node's namespace whose resolved name matches one is wanted
            too (a recorder in ``/robot1`` does not pick up ``/robot2``'s command topics).
        explicit_types: ``{name: pkg/msg/Type}``: subscribed at once, without waiting for a publisher.
        depth: keep-last queue depth of the subscriptions.
        on_message: ``on_message(topic, cdr_bytes, info)``, ``info`` rclpy's message info (``received_timestamp``:
            when the middleware received it, ns of the system clock; ``source_timestamp``).
        on_subscribed: ``on_subscribed(topic)`` after a new subscription.
    """

    def __init__(self, node: Node, topics: list[str], patterns: list[str], explicit_types: dict[str, str],
                 depth: int, on_message: Callable[[str, bytes, dict | None], None],
                 on_subscribed: Callable[[str], None]) -> None:
        self._node = node
        self._wanted = {node.resolve_topic_name(t) for t in topics}
        self._patterns = [re.compile(x) for x in patterns]
        ns = node.get_namespace().rstrip("/")
        self._ns_prefix = ns + "/"  # "/" in the root namespace: every topic
        self._explicit = {node.resolve_topic_name(k): v for k, v in explicit_types.items()}
        self._depth = depth
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self.subs: dict[str, tuple[Any, str]] = {}  # resolved topic -> (subscription or None, type)
        self.offered: dict[str, list[Any]] = {}  # publishers' QoS (bag metadata)
        self._sub_qos: dict[str, QoSProfile] = {}
        self._type_warned: set[str] = set()
        #: topic -> why its new messages are not recorded (another type than the recorded one), since the last clear
        self.type_changed: dict[str, str] = {}
        self.lost: dict[str, int] = {}  # resolved topic -> messages DDS reported lost to its subscription
        self._lost_supported = True

    def wants(self, topic: str) -> bool:
        return topic in self._wanted or (topic.startswith(self._ns_prefix) and any(p.search(topic) for p in self._patterns))

    def scan(self) -> None:
        """Subscribe to wanted topics once a publisher shows their type; re-subscribe when a new
        publisher's QoS would not match ours (a best-effort camera appearing after a reliable guess)."""
        known = dict(self._explicit)
        n_types: dict[str, int] = {}
        for topic, types in self._node.get_topic_names_and_types():
            n_types[topic] = len(types)
            if topic not in known and types:
                known[topic] = types[0]
        for topic, ty in known.items():
            if not self.wants(topic):
                continue
            if topic in self.subs:  # (one graph query for both checks)
                infos = self._node.get_publishers_info_by_topic(topic)
                self._check_type(topic, infos)
                self._check_qos(topic, infos)
                continue
            # a topic seen only through its subscribers (e.g. policy_inference's camera subscription)
            # has no publisher to match QoS with yet: wait for one (explicit types subscribe at once)
            if topic not in self._explicit and self._node.count_publishers(topic) == 0:
                continue
            if n_types.get(topic, 1) > 1:
                self._node.get_logger().warning(f"topic {topic} has several types; recording {ty}")
            self._subscribe(topic, ty)

    def new_episode(self) -> None:
        """Forget the type changes that are over (:attr:`type_changed` then lists this episode's)."""
        self.type_changed = {t: m for t, m in self.type_changed.items() if t in self._type_warned}

    def _check_type(self, topic: str, infos: list[Any]) -> None:
        """Warn (once per change) when the topic's publishers no longer publish the recorded type: its messages are
        then not recorded. Judged by the publishers' types: the topic's type list also holds our own subscription's
        (a walkthrough's /joint_states turned Float64MultiArray and nothing was said)."""
        ty = self.subs[topic][1]
        published = sorted({i.topic_type for i in infos})
        if not published or ty in published:
            self._type_warned.discard(topic)  # (the recorded type is back, or nobody publishes: no new type)
            return
        if topic not in self._type_warned:
            self._type_warned.add(topic)
            text = (f"topic {topic} is now published as {', '.join(published)}, not the recorded {ty}: its new "
                    "messages are not recorded (restart the recorder to record the new type)")
            self.type_changed[topic] = text
            self._node.get_logger().warning(text)

    def _check_qos(self, topic: str, infos: list[Any]) -> None:
        sub, ty = self.subs[topic]
        cur = self._sub_qos.get(topic)
        if sub is None or cur is None:
            return
        mismatch = (cur.reliability == ReliabilityPolicy.RELIABLE
                    and any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos)) or (
            cur.durability == DurabilityPolicy.TRANSIENT_LOCAL
            and any(i.qos_profile.durability == DurabilityPolicy.VOLATILE for i in infos))
        if mismatch:
            self._node.get_logger().info(f"re-subscribing {topic}: a publisher's QoS does not match ours")
            self._node.destroy_subscription(sub)
            del self.subs[topic]
            self._subscribe(topic, ty)

    def _subscribe(self, topic: str, msgtype: str) -> None:
        log = self._node.get_logger()
        try:
            cls = msg_class(msgtype)
        except (ImportError, AttributeError, ValueError) as exc:
            log.error(f"cannot record {topic}: message type {msgtype} not importable ({exc})")
            self.subs[topic] = (None, msgtype)  # do not retry every scan
            return
        qos = self._qos_for(topic)
        # (with the message info: the middleware's receipt time, see on_message)
        cb: Callable[[bytes, dict], None] = lambda data, info, t=topic: self._on_message(t, data, info)  # noqa: E731
        events = SubscriptionEventCallbacks(message_lost=lambda info, t=topic: self.on_lost(t, info.total_count_change))
        try:
            sub = self._node.create_subscription(cls, topic, cb, qos, raw=True,
                                                 event_callbacks=events if self._lost_supported else None)
        except UnsupportedEventTypeError:  # (this RMW cannot tell): record without the count, say so once
            self._lost_supported = False
            log.warning("this RMW does not report lost messages: messages DDS drops are not counted")
            sub = self._node.create_subscription(cls, topic, cb, qos, raw=True)
        self.subs[topic] = (sub, msgtype)
        self._sub_qos[topic] = qos
        log.info(f"recording {topic} [{msgtype}] ({qos.reliability.name.lower()}, {qos.durability.name.lower()})")
        self._on_subscribed(topic)

    def on_lost(self, topic: str, count: int) -> None:
        """DDS lost ``count`` messages of ``topic`` before they reached the recorder (a best-effort publisher
        faster than the recorder, a full queue): counted (the sidecar's ``messages_lost``) and warned."""
        self.lost[topic] = self.lost.get(topic, 0) + int(count)
        self._node.get_logger().warning(f"{count} message(s) on {topic} lost before they reached the recorder "
                                        f"({self.lost[topic]} so far)", throttle_duration_sec=5.0)

    def _qos_for(self, topic: str) -> QoSProfile:
        """Match the publishers like ``ros2 bag record``: reliable unless a publisher is best effort,
        transient local only if every publisher is (their profiles go into the bag metadata)."""
        infos = self._node.get_publishers_info_by_topic(topic)
        self.offered[topic] = offered_qos(infos)
        rel = ReliabilityPolicy.BEST_EFFORT if any(
            i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos) else ReliabilityPolicy.RELIABLE
        dur = DurabilityPolicy.TRANSIENT_LOCAL if infos and all(
            i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos) else DurabilityPolicy.VOLATILE
        return QoSProfile(depth=self._depth, reliability=rel, durability=dur, history=HistoryPolicy.KEEP_LAST)
