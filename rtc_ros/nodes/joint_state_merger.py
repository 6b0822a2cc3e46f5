"""joint_state_merger: per-arm joint state topics -> the one ``joint_states`` the rtc_ros nodes read.

For drivers that publish one ``sensor_msgs/JointState`` topic per arm (ALOHA's Interbotix ``xs_sdk``:
``puppet_left/joint_states`` with unprefixed names ``waist``, ..., ``gripper``). Subscribes every
``source_topics`` entry (sensor-data QoS: matches reliable and best-effort publishers), prefixes each
source's names with its ``source_prefixes`` entry (``source_exclude`` drops named joints of one source),
and publishes ``joint_states_topic`` (reliable) on every accepted message -- but only when every joint of
every arm's ``joint_names`` is in the latest message of exactly one source, each received within
``max_age_s``. It never fills in a joint it has not heard (``joint_state_publisher`` fills 0.0) and never
republishes an arm whose driver went quiet: the readers then see no fresh joint state and stop
(``policy_inference`` after its ``obs_timeout``). The rule and the merged stamp (the oldest contributing
one) are :mod:`rtc_ros.runtime.joint_merge`.

``/diagnostics`` per ``diagnostics_period``: OK while publishing; WARN naming the stale sources or
unheard joints (and the joints heard but not used: a wrong prefix); ERROR while two sources claim one
joint (``source_exclude`` drops it from one) or messages are rejected (NaN positions, ``position`` not
matching ``name``), each logged (throttled) with the field or joint.

Run: ``python -m rtc_ros.nodes.joint_state_merger --ros-args --params-file config/bimanual.yaml -p
source_topics:="[puppet_left/joint_states, puppet_right/joint_states]" -p source_prefixes:="[left_, right_]"``.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState

from rtc_ros.nodes import conversions as conv
from rtc_ros.nodes.common import RELIABLE, STEADY, ClockCheck, Throttle, diagnostic_array, set_timer_period
from rtc_ros.nodes.params import ROLE_MERGER, ParameterError, declare_and_validate, node_argv
from rtc_ros.nodes.spin import spin_node
from rtc_ros.runtime.joint_merge import JointStateMerge, Merged, MergeRejected, parse_exclusions


class JointStateMergerNode(Node):
    """See module docstring. Raises :class:`ParameterError` on invalid parameters."""

    def __init__(self, **kwargs) -> None:
        super().__init__("joint_state_merger", **kwargs)
        p = self.p = declare_and_validate(self, ROLE_MERGER, on_change=self._on_param_change,
                                      argv=node_argv(kwargs))
        self.merge = JointStateMerge(p.source_topics, p.joint_names, p.max_age_s, prefixes=p.source_prefixes,
                                     exclude=parse_exclusions(p.source_exclude, p.source_topics))
        self._throttled = Throttle()
        self.published = 0
        self.held_back = 0  # accepted messages after which nothing could be published
        self._period = {"published": 0, "rejected": 0}
        self._last_rejection = ""
        self._last_why = ""  # the last reason logged for not publishing
        self._check_topics(p.source_topics, p.joint_states_topic)
        self._pub = self.create_publisher(JointState, p.joint_states_topic, RELIABLE)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        for topic in p.source_topics:
            self.create_subscription(JointState, topic, lambda msg, t=topic: self._on_source(t, msg),
                                     qos_profile_sensor_data)
        # on the steady clock, as the other nodes' (with use_sim_time and no /clock it said nothing -- an audit)
        self._diag_timer = self.create_timer(p.diagnostics_period, self._publish_diagnostics, clock=STEADY)
        self.clock_check = ClockCheck(self)
        prefixes = p.source_prefixes or [""] * len(p.source_topics)
        self.get_logger().info(f"merging {', '.join(f'{t} (prefix {x!r})' for t, x in zip(p.source_topics, prefixes))} "
                               f"into {p.joint_states_topic}: {len(p.joint_names)} joints, max_age_s {p.max_age_s:g}")

    def _check_topics(self, sources: list[str], output: str) -> None:
        """ParameterError naming ``source_topics`` when one is this node's own output or
        two are one topic (an audit: ``/joint_states`` beside the output ``joint_states`` was taken as a source, the
        merger fed on itself and kept a dead arm's positions alive, freshly stamped)."""
        out = self.resolve_topic_name(output)
        resolved = {t: self.resolve_topic_name(t) for t in sources}
        for t, r in resolved.items():
            if r == out:
                raise ParameterError("source_topics", sources, f"{t!r} is this node's own output {out} "
                                     "(joint_states_topic): it would merge its own messages")
        if len(set(resolved.values())) != len(resolved):
            raise ParameterError("source_topics", sources, f"two entries name one topic: {resolved}")

    def _on_param_change(self, name: str, value: object) -> None:
        if name == "max_age_s":
            self.merge.max_age_s = float(value)
        elif name == "diagnostics_period":
            set_timer_period(self._diag_timer, float(value))

    # ------------------------------------------------------------------------------ callbacks
    def _on_source(self, topic: str, msg: JointState) -> None:
        stamp = conv.stamp_to_ns(msg.header.stamp)
        if stamp == 0:
            stamp = self.get_clock().now().nanoseconds
            if self._throttled("unstamped_" + topic, 10.0):
                self.get_logger().warn(f"{topic}: message without a header stamp; using the receipt time")
        try:
            self.merge.update(topic, list(msg.name), list(msg.position), list(msg.velocity), list(msg.effort),
                              stamp, time.monotonic())
        except MergeRejected as exc:
            self._period["rejected"] += 1
            self._last_rejection = str(exc)
            if self._throttled("rejected_" + topic, 2.0):
                self.get_logger().error(f"rejected: {exc}")
            return
        out = self.merge.merged(time.monotonic())
        if not isinstance(out, Merged):
            self.held_back += 1
            why = str(out)
            # a new reason at once (but not at the sources' rate if it flips), the same one every 2 s
            if (why != self._last_why and self._throttled("not_ready_new", 0.5)) or self._throttled("not_ready", 2.0):
                self.get_logger().warn(f"not publishing {self.p.joint_states_topic}: {why}")
                self._last_why = why
            return
        self._last_why = ""
        js = conv.joint_state_msg(list(out.names), np.asarray(out.position), conv.ns_to_stamp(out.stamp_ns))
        js.velocity, js.effort = list(out.velocity), list(out.effort)
        self._pub.publish(js)
        self.published += 1
        self._period["published"] += 1

    # ------------------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        ages = self.merge.ages(now)
        values: dict[str, object] = {"published": self.published, "held_back": self.held_back,
                                     "rejected": self.merge.rejected}
        values.update({f"age_ms {t}": (a * 1e3 if a != float("inf") else "never") for t, a in ages.items()})
        period = dict(self._period)
        self._period = {"published": 0, "rejected": 0}
        out = self.merge.merged(now)
        problems = []
        shared = {t: n for t in self.p.source_topics if (n := self.count_publishers(t)) > 1}
        if self.clock_check.message:
            problems.append(self.clock_check.message)
        if shared:  # (policy_inference warns about this on joint_states, where only the merger publishes now)
            problems.append(f"more than one publisher on {shared} (a leftover driver or simulator, a bag played?): "
                            "their messages alternate")
        if not isinstance(out, Merged):
            problems.append(f"not publishing: {out}")
        elif not period["published"]:
            problems.append("not publishing: no source message in the last period")
        if period["rejected"]:
            problems.append(f"rejected {period['rejected']} message(s), last: {self._last_rejection}")
        conflict = not isinstance(out, Merged) and bool(out.conflicts)
        level = (DiagnosticStatus.ERROR if period["rejected"] or conflict else
                 DiagnosticStatus.WARN if problems else DiagnosticStatus.OK)
        message = "; ".join(problems) if problems else f"merging {len(ages)} sources"
        self._diag_pub.publish(diagnostic_array(f"rtc_ros: joint_state_merger ({self.get_fully_qualified_name()})",
                                                level, message, values, self.get_clock().now().to_msg()))


def main(args=None) -> int:
    """Run the joint_state_merger node until Ctrl-C; exit code 2 on an invalid parameter."""
    return spin_node(JointStateMergerNode, "joint_state_merger", (ParameterError,), args)


if __name__ == "__main__":
    sys.exit(main())
