"""chunk_executor's protective stops: the robot's stop report (``robot_stopped_topic``) drives the re-sync.

With ``robot_stopped_topic`` set (``sensor_msgs/JointState``: the joints a protective stop holds and their held
positions, empty while none), the executor re-syncs when a stop begins, holds the stopped joints where the stop
holds them, and re-syncs and resumes when it ends (:class:`rtc_ros.runtime.stop_recovery.StopRecovery`, the
ROS-free rule): no stop loops from commands the arm ignored. Entries naming joints the executor does not command
are ignored (a throttled warning); positions beyond the limits by more than ``max_step`` are not held (an error).
A publisher of another type on the topic (until 2026-12-03 it was ``std_msgs/Bool``: an old bridge is never heard)
is an error, nobody publishing it for :data:`SILENT_S` a warning (:meth:`ProtectiveStops.check`, also in
``/diagnostics``): stops would go unseen.
A non-empty report that cannot be read (names without positions) or names none of the executor's joints is still a
stop (an error): every joint keeps its last command until an empty report, since commanding on through a stop the
executor cannot place is what starts a stop loop (or moves an arm the robot has stopped).
"""

from __future__ import annotations

import time
from typing import Any

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState

from rtc_ros.nodes import conversions as conv
from rtc_ros.runtime.executor import implausible_holds
from rtc_ros.runtime.stop_recovery import STOP_BEGAN, StopRecovery

#: the robot's stop flag: reliable, volatile (matches reliable publishers, latched or not), every change kept
STOP_FLAG = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                       durability=DurabilityPolicy.VOLATILE)


#: how long nobody may publish ``robot_stopped_topic`` after the start before it is warned
SILENT_S = 10.0
STOP_TYPE = "sensor_msgs/msg/JointState"


class ProtectiveStops:
    """Owned by the chunk_executor node ``node`` (its core, joint names, parameters, throttle, logger and
    ``_measure_again``); subscribes ``robot_stopped_topic`` in ``group`` when it is set. ``recovery``: the rule's
    state (the operator services ask it whether a stop is on)."""

    def __init__(self, node: Any, group: Any) -> None:
        self.node, self.recovery = node, StopRecovery()
        self.topic = node.p.robot_stopped_topic
        self.problem = ""  # why stops could go unseen ('' if none): a publisher of another type, or none
        self._started, self._said = time.monotonic(), ""
        if self.topic:
            self._sub = node.create_subscription(JointState, self.topic, self.on_report, STOP_FLAG, callback_group=group)

    def check(self) -> None:
        """Who publishes the stop report (the executor's periodic graph check): another type, or nobody for
        :data:`SILENT_S`, sets :attr:`problem` and logs it once per change."""
        if not self.topic:
            return
        infos = self.node.get_publishers_info_by_topic(self._sub.topic_name)
        other = sorted({f"{i.node_namespace.rstrip('/')}/{i.node_name} ({i.topic_type})" for i in infos
                        if i.topic_type != STOP_TYPE})
        if other:
            self.problem = (f"{self._sub.topic_name} is published as another type by {', '.join(other)}: this executor "
                            f"reads {STOP_TYPE} (the stopped joints; std_msgs/Bool until 2026-12-03), so protective "
                            "stops there go unseen")
        elif not infos and time.monotonic() - self._started > SILENT_S:
            self.problem = (f"nobody publishes robot_stopped_topic {self._sub.topic_name}: protective stops would go "
                            "unseen (the robot driver's stop report, or a bridge to it)")
        else:
            self.problem = ""
        if self.problem != self._said:
            log = self.node.get_logger()
            if self.problem:
                (log.error if other else log.warn)(self.problem)
            elif self._said:
                log.info(f"{self._sub.topic_name}: published as {STOP_TYPE} now")
            self._said = self.problem

    def on_report(self, msg: JointState) -> None:
        node, core, log = self.node, self.node.core, self.node.get_logger()
        stopped = bool(msg.name) or bool(msg.position)  # anything reported: a stop, whether or not it can be read
        try:
            held, unknown = conv.held_joints(msg, node.names)
        except ValueError as exc:
            held, unknown = {}, []
            if node._throttled("stop_malformed", 5.0):
                log.error(f"{self.topic}: {exc}; taken as a stop of every joint (held at its last command)")
        if unknown and node._throttled("stop_unknown", 5.0):
            (log.warn if held else log.error)(
                f"{self.topic}: joints {unknown} are not commanded here (ignored)" + ("" if held else
                "; none of this executor's joints named: taken as a stop of every joint (held at its last command) "
                "until the report is empty"))
        bad = implausible_holds(core.cfg, held)
        if bad and node._throttled("stop_implausible", 5.0):  # still a stop: those joints keep their last command
            log.error(f"{self.topic}: positions beyond the joint limits by more than max_step, not held (their last "
                      f"command is): {', '.join(f'{node.names[i]}={q:g}' for i, q in bad.items())}")
        what = self.recovery.update(held, core, stopped)
        if what == STOP_BEGAN:
            log.warn(f"robot stopped (stop {self.recovery.stops}): re-synced at step {core.next_step}, chunks "
                     f"dropped, holding {len(held)} stopped joints where the stop holds them, the others at their "
                     "last command")
        elif what is not None:
            if not core.ready:  # re-synced by someone else meanwhile: measure as after any re-sync
                node._measure_again()
            going = "left paused" if core.paused else "resuming"
            log.info(f"robot stop ended: re-synced, {going}"
                     + ("" if core.enabled else f" once {node.p.enable_topic} enables it"))
