"""joint_state_merger as a real process over DDS, feeding a real chunk_executor: per-arm driver topics
(ALOHA-like unprefixed names) -> one joint_states; a quiet driver stops the output; a bad message is
refused and reported."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import JointState

from rtc_ros.nodes import conversions as conv
from rtc_ros.nodes.params import ParameterError
from test_nodes_harness import JOINTS, RELIABLE, Harness, write_params

MERGER = "rtc_ros.nodes.joint_state_merger"
EXECUTOR = "rtc_ros.nodes.chunk_executor"
ARM = ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper"]
SOURCES = ("puppet_left/joint_states", "puppet_right/joint_states")


class Drivers:
    """Two per-arm drivers on the harness node: unprefixed names plus finger joints, 50 Hz each."""

    def __init__(self, h: Harness) -> None:
        self.lock = threading.Lock()
        self.q = {"left": [0.1 * (i + 1) for i in range(7)], "right": [-0.1 * (i + 1) for i in range(7)]}
        self.q["left"][6] = self.q["right"][6] = 0.5  # grippers inside [0, 1]
        self.on = {"left": True, "right": True}
        self.bad: str | None = None  # an arm whose next message carries a NaN
        self.pubs = {arm: h.node.create_publisher(JointState, topic, 10) for arm, topic in zip(("left", "right"), SOURCES)}
        self.merged: list[JointState] = []
        self.sent: dict[str, list[int]] = {"left": [], "right": []}
        self.diag: list[DiagnosticStatus] = []
        h.node.create_subscription(JointState, "joint_states", self._on_merged, RELIABLE)
        h.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        h.node.create_timer(0.02, self._publish)
        self.node = h.node

    def _publish(self) -> None:
        now = self.node.get_clock().now().nanoseconds
        with self.lock:
            for arm, pub in self.pubs.items():
                # the left driver stamps 1 s back (a slow clock): older than any right message still current, even
                # when this timer runs late on a loaded machine
                stamp = conv.ns_to_stamp(now - (1_000_000_000 if arm == "left" else 0))
                if not self.on[arm]:
                    continue
                pos = list(self.q[arm]) + [0.02, -0.02]
                if self.bad == arm:
                    pos[1] = math.nan
                    self.bad = None
                msg = conv.joint_state_msg(ARM + ["left_finger", "right_finger"], np.array(pos), stamp)
                self.sent[arm].append(conv.stamp_to_ns(stamp))
                msg.velocity = [0.0] * 9
                pub.publish(msg)

    def _on_merged(self, msg: JointState) -> None:
        with self.lock:
            self.merged.append(msg)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.diag.extend(st for st in msg.status if "joint_state_merger" in st.name)

    def count(self) -> int:
        with self.lock:
            return len(self.merged)


def test_merger_feeds_the_executor_and_stops_on_a_quiet_driver(start_node, tmp_path) -> None:
    params = write_params(tmp_path / "p.yaml", executor={
        "startup_command": "hold_measured", "left": {"command_topic": "left_controller/commands"},
        "right": {"command_topic": "right_controller/commands"}})
    data = yaml.safe_load(params.read_text())
    data["/**/joint_state_merger"] = {"ros__parameters": {"source_topics": list(SOURCES),
                                                          "source_prefixes": ["left_", "right_"],
                                                          "max_age_s": 0.5, "diagnostics_period": 0.3}}
    params.write_text(yaml.safe_dump(data, sort_keys=False))
    merger = start_node(MERGER, "--params-file", str(params))
    ex = start_node(EXECUTOR, "--params-file", str(params))
    with Harness(publish_joint_states=False, follow_commands=False) as h:
        drv = Drivers(h)
        # the executor holds where the per-arm drivers say the arms are (it read the merged topic)
        assert h.wait_for(lambda s: all(len(v) > 5 for v in s.commands.values()), 60), ex.output() + merger.output()
        with h.lock:
            left, right = h.commands["left_controller/commands"][-1], h.commands["right_controller/commands"][-1]
        assert np.allclose(left, drv.q["left"]) and np.allclose(right, drv.q["right"])
        with drv.lock:
            last = drv.merged[-1]
        assert list(last.name) == JOINTS and np.allclose(last.position, drv.q["left"] + drv.q["right"])
        assert len(last.velocity) == 14 and len(last.effort) == 0
        with drv.lock:  # each merged stamp is a left-arm stamp (the oldest), not a right one nor the merger's clock
            stamps = [conv.stamp_to_ns(m.header.stamp) for m in drv.merged[-20:]]
            left_stamps = set(drv.sent["left"])
        assert stamps and all(st in left_stamps for st in stamps), (stamps[:3], sorted(left_stamps)[-3:])

        # the left driver goes quiet: after max_age_s nothing more is published, and diagnostics say which
        with drv.lock:
            drv.on["left"] = False
        assert h.wait_for(lambda s: any(d.level == DiagnosticStatus.WARN and "stale source(s) "
                                        "['puppet_left/joint_states']" in d.message for d in drv.diag), 20), \
            merger.output()
        h.wait_for(lambda s: False, 0.3)  # (merged messages sent before the WARN may still be in this process's queue)
        n = drv.count()
        h.wait_for(lambda s: False, 1.0)  # the right driver still publishes at 50 Hz meanwhile
        assert drv.count() == n, "published with a stale arm"
        assert "not publishing joint_states: stale source(s) ['puppet_left/joint_states']" in merger.output()

        # back, but with a NaN in one message: that message is refused (ERROR naming the joint), the rest merged
        with drv.lock:
            drv.on["left"] = True
            drv.bad = "right"
        assert h.wait_for(lambda s: drv.count() > n + 20, 20), merger.output()
        assert merger.wait_for_output("position of 'right_shoulder' is nan", 10), merger.output()
        assert h.wait_for(lambda s: any(d.level == DiagnosticStatus.ERROR and "right_shoulder" in d.message
                                        for d in drv.diag), 10)
        with drv.lock:
            assert all(all(math.isfinite(x) for x in m.position) for m in drv.merged)
    assert merger.stop() == 0 and ex.stop() == 0


def test_merger_refuses_to_start_without_sources(start_node, tmp_path) -> None:
    merger = start_node(MERGER)
    assert merger.wait_for_output("refusing to start: invalid parameter 'source_topics' = []", 60), merger.output()
    assert merger.proc.wait(30) == 2


def test_merger_node_in_process_params_and_unstamped_sources(ros_env) -> None:
    """The node's adapter without DDS delivery: max_age_s set at run time (validated: 5 s refused), an
    unstamped source message stamped at receipt, a conflict reported as ERROR in /diagnostics."""
    import rclpy
    from rclpy.parameter import Parameter

    from rtc_ros.nodes.joint_state_merger import JointStateMergerNode

    rclpy.init()
    try:
        node = JointStateMergerNode(parameter_overrides=[
            Parameter("source_topics", value=list(SOURCES)), Parameter("source_prefixes", value=["left_", "right_"])])
        sent: list = []
        node._pub.publish = sent.append
        diags: list = []
        node._diag_pub.publish = diags.append
        assert node.set_parameters([Parameter("max_age_s", value=0.3)])[0].successful and node.merge.max_age_s == 0.3
        bad = node.set_parameters([Parameter("max_age_s", value=5.0)])[0]
        assert not bad.successful and "max_age_s" in bad.reason and node.merge.max_age_s == 0.3
        t0 = node.get_clock().now().nanoseconds
        left = conv.joint_state_msg(ARM, np.zeros(7), conv.ns_to_stamp(0))  # unstamped
        right = conv.joint_state_msg(ARM, np.ones(7), conv.ns_to_stamp(t0 - 1_000_000_000))
        node._on_source(SOURCES[0], left)
        assert not sent and node.held_back == 1
        node._on_source(SOURCES[1], right)  # the right one is older than the receipt time given to the left
        assert len(sent) == 1 and conv.stamp_to_ns(sent[0].header.stamp) == t0 - 1_000_000_000
        right.header.stamp = conv.ns_to_stamp(t0 + 10_000_000_000)  # now the left one's receipt stamp is older
        node._on_source(SOURCES[1], right)
        assert len(sent) == 2 and t0 <= conv.stamp_to_ns(sent[1].header.stamp) <= node.get_clock().now().nanoseconds
        node._publish_diagnostics()
        assert diags[-1].status[0].level == DiagnosticStatus.OK
        # the left driver starts listing a right-arm joint too (its prefix makes it 'left_right_waist': no clash);
        # a source without a prefix that does clash: no output, ERROR naming the joint and both sources
        now = conv.ns_to_stamp(node.get_clock().now().nanoseconds)  # (newer than the left one's receipt stamp)
        node._on_source(SOURCES[0], conv.joint_state_msg(ARM + ["right_waist"], np.zeros(8), now))
        assert len(sent) == 3
        node.merge._prefix[SOURCES[0]] = ""  # (what source_prefixes ["", right_] would configure)
        node._on_source(SOURCES[0], conv.joint_state_msg([f"left_{j}" for j in ARM] + ["right_waist"], np.zeros(8),
                                                         now))
        assert len(sent) == 3
        node._publish_diagnostics()
        st = diags[-1].status[0]
        assert st.level == DiagnosticStatus.ERROR and "'right_waist' by ['puppet_left/joint_states', " \
            "'puppet_right/joint_states']" in st.message, st.message
        from rclpy.clock import ClockType

        assert node._diag_timer.clock.clock_type == ClockType.STEADY_TIME  # (silent under use_sim_time before)
        node.destroy_node()
        for sources, why in ((["joint_states", SOURCES[1]], "must not include the output"),
                             (["/joint_states", SOURCES[1]], "is this node's own output /joint_states"),
                             ([SOURCES[0], "/" + SOURCES[0]], "two entries name one topic")):
            with pytest.raises(ParameterError, match=why):  # (an audit: it fed on itself and kept a dead arm alive)
                JointStateMergerNode(parameter_overrides=[Parameter("source_topics", value=sources)]).destroy_node()
    finally:
        rclpy.try_shutdown()
