"""policy_inference in-process (no DDS): after an executor reset its observation never uses a frame from before it.

The node is built in this process and its callbacks are called directly, in the orders DDS may deliver
them: the reset report before a late frame taken before the reset, and a reset whose first report is
not paused (``~/resync`` and ``~/resume`` back to back)."""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from sensor_msgs.msg import Image, JointState  # noqa: E402

from rtc_ros.nodes import conversions as conv  # noqa: E402
from rtc_ros.runtime.contract import ExecutorReport  # noqa: E402
from test_nodes_harness import write_params  # noqa: E402


def _image(value: int, stamp_ns: int) -> Image:
    msg = Image(height=32, width=32, encoding="rgb8", step=96)
    msg.data = bytes([value]) * (32 * 32 * 3)
    msg.header.stamp = conv.ns_to_stamp(stamp_ns)
    return msg


def _report(step: int, seq: int, resets: int, stamp_ns: int, names: list[str]) -> JointState:
    msg = JointState(name=names, position=[0.0] * len(names))
    msg.header.frame_id = ExecutorReport(step=step, seq=seq, takeover=max(seq, -1), consumed=0,
                                         paused=False, resets=resets).encode()
    msg.header.stamp = conv.ns_to_stamp(stamp_ns)
    return msg


@pytest.fixture
def node(tmp_path):
    from conftest import make_small_policy

    from rtc_ros.nodes.policy_inference import PolicyInferenceNode

    spec = make_small_policy(tmp_path / "stack", image=(32, 32), frames=2)
    params = write_params(tmp_path / "p.yaml", inference={"policy_spec": str(spec), "camera_topics": ["cam/image_raw"],
                                                          "camera_names": ["cam"], "obs_timeout": 5.0,
                                                          "warmup_iterations": 0})
    rclpy.init()
    n = PolicyInferenceNode(cli_args=["--ros-args", "--params-file", str(params)], use_global_arguments=False)
    n.stop()  # no inference thread: the test calls the callbacks and _observation itself
    try:
        yield n
    finally:
        n.destroy_node()
        rclpy.shutdown()


def _joint_state_now(node) -> tuple[list[str], int, JointState]:
    """Feed a joint state stamped now; returns the joint names, the stamp (ns) and the message."""
    names, t0 = node.names, time.time_ns()
    js = JointState(name=names, position=[0.1] * len(names))
    js.header.stamp = conv.ns_to_stamp(t0)
    node._on_joint_state(js)
    return names, t0, js


def _frames(obs: dict) -> list[int]:
    return [int(np.asarray(f)[0, 0, 0]) for f in obs["cam"]]


def test_observation_after_a_reset_uses_only_frames_from_after_it(node) -> None:
    names, t0, js = _joint_state_now(node)
    node.cameras._on_image("cam", _image(10, t0 - 40_000_000))
    node.cameras._on_image("cam", _image(11, t0 - 20_000_000))
    node._on_executor_state(_report(100, 3, 0, t0, names))
    obs, _, _ = node._observation()
    assert _frames(obs) == [11, 10]  # newest first

    # ~/resync + ~/resume back to back: the first report that shows the reset is not paused, and the loop
    # could plan at once; the frames must be gone before it learns of the reset
    node._on_executor_state(_report(102, -1, 1, t0 + 40_000_000, names))
    assert node._observation() is None  # the joint state is from before the reset: no inference at all
    assert node.obs_rejected.get("before_reset") == 1
    js.header.stamp = conv.ns_to_stamp(t0 + 50_000_000)
    node._on_joint_state(js)
    assert node._observation() is None  # no frame since the reset
    assert node.obs_rejected.get("missing", 0) >= 1
    node.cameras._on_image("cam", _image(12, t0 + 30_000_000))  # taken before the reset's report, delivered late
    assert node._observation() is None and node.obs_rejected.get("before_reset") == 2
    node.cameras._on_image("cam", _image(13, t0 + 60_000_000))
    obs, _, _ = node._observation()
    assert _frames(obs) == [13]  # a one-frame stack until the next frame (the oldest repeated by the policy)
    node.cameras._on_image("cam", _image(14, t0 + 160_000_000))
    assert _frames(node._observation()[0]) == [14, 13]


def test_executor_state_commands_are_read_by_joint_name(node) -> None:
    """The executor's commanded positions (the guidance target for an old observation's executed steps) are
    picked by name like the chunks, not taken in the message's order; a missing joint is refused, named."""
    names = node.names
    values = np.arange(len(names), dtype=float) / 10.0
    msg = _report(100, 3, 0, time.time_ns(), names)
    msg.name, msg.position = list(reversed(names)), list(reversed(values.tolist()))
    node._on_executor_state(msg)
    assert np.allclose(node.loop._commanded[100], values)
    short = _report(101, 3, 0, time.time_ns(), names[1:])
    short.position = values[1:].tolist()
    node._on_executor_state(short)
    assert 101 not in node.loop._commanded and node.obs_rejected.get("executor_state") == 1


def test_a_frame_stamped_long_before_the_joint_state_is_not_used(node) -> None:
    """Freshness is judged by the stamps too, not only by when a frame arrived: a frame received now but
    stamped more than obs_timeout (5 s here) before the joint state (a camera clock behind the robot's,
    a buffered driver) is refused as stale, named, and so is one stamped that long after it (a camera clock
    ahead); one stamped 1 s before or after is used."""
    _, t0, _ = _joint_state_now(node)
    node.cameras._on_image("cam", _image(20, t0 - 6_000_000_000))
    assert node._observation() is None and node.obs_rejected.get("stale") == 1
    node.cameras._on_image("cam", _image(21, t0 - 1_000_000_000))
    obs, stamp, oldest = node._observation()
    assert _frames(obs)[0] == 21 and stamp == t0 and oldest == t0 - 1_000_000_000
    node.cameras._on_image("cam", _image(22, t0 + 6_000_000_000))  # a camera clock ahead: refused the same way
    assert node._observation() is None and node.obs_rejected.get("stale") == 2
    node.cameras._on_image("cam", _image(23, t0 + 1_000_000_000))
    assert _frames(node._observation()[0])[0] == 23


def test_tracking_error_against_the_executor_s_command_is_in_the_diagnostics(node) -> None:
    """|measured - the executor's newest command|, largest over joints, and the joint: a controller that
    does not follow (inactive, wrong topic, wrong joint order) shows here."""
    names, t0 = node.names, time.time_ns()
    node._on_executor_state(_report(5, 0, 0, t0, names))  # commands 0.0 for every joint
    q = [0.01] * len(names)
    q[3] = -0.4
    js = JointState(name=names, position=q)
    js.header.stamp = conv.ns_to_stamp(t0)
    node._on_joint_state(js)
    diags: list = []
    node._diag_pub.publish = diags.append
    node._publish_diagnostics()
    vals = {kv.key: kv.value for kv in diags[-1].status[0].values}
    assert vals["tracking_err_worst_joint"] == names[3] and float(vals["tracking_err_worst"]) == pytest.approx(0.4)
    assert float(vals["tracking_err_max"]) == pytest.approx(0.4) and vals["tracking_err_n"] == "1"
    node._publish_diagnostics()  # the worst joint is per diagnostics period
    assert "tracking_err_worst_joint" not in {kv.key for kv in diags[-1].status[0].values}


def test_compressed_frames_are_decoded_when_an_observation_uses_them(node) -> None:
    """A CompressedFrame (camera_transport compressed) in the stack is decoded by the observation, not on
    arrival; one that does not decode makes the observation refused as 'image', named, and nothing is used."""
    import io

    from PIL import Image as PILImage

    from rtc_ros.runtime.compressed_image import CompressedFrame

    def png(value: int) -> CompressedFrame:
        buf = io.BytesIO()
        PILImage.fromarray(np.full((32, 32, 3), value, dtype=np.uint8)).save(buf, format="PNG")
        return CompressedFrame(buf.getvalue(), "rgb8; png compressed bgr8")

    _, t0, _ = _joint_state_now(node)
    first, second = png(30), png(31)
    node.cameras.store("cam", first, conv.ns_to_stamp(t0 - 40_000_000))
    node.cameras.store("cam", second, conv.ns_to_stamp(t0 - 20_000_000))
    assert first._rgb is None and second._rgb is None  # stored as received
    obs, _, _ = node._observation()
    assert _frames(obs) == [31, 30] and second._rgb is not None
    node.cameras.store("cam", CompressedFrame(b"not an image", "jpeg"), conv.ns_to_stamp(t0 - 10_000_000))
    assert node._observation() is None and node.obs_rejected.get("image") == 1


def test_joint_states_out_of_order_are_dropped_and_counted(node) -> None:
    """A joint state stamped before the newest one (DDS reordering, a second publisher with a clock behind) is not
    used and counted (obs_rejected joint_state_order); one more than obs_timeout (5 s) back is a clock reset."""
    names, t0, _ = _joint_state_now(node)
    old = JointState(name=names, position=[0.3] * len(names))
    old.header.stamp = conv.ns_to_stamp(t0 - 100_000_000)
    node._on_joint_state(old)
    assert node.obs_rejected.get("joint_state_order") == 1 and node._joints.stamp_ns == t0
    old.header.stamp = conv.ns_to_stamp(t0 - 60_000_000_000)  # a minute back: the clock was reset
    node._on_joint_state(old)
    assert node.obs_rejected.get("joint_state_order") == 1 and node._joints.stamp_ns == t0 - 60_000_000_000


def test_joint_states_stamped_ahead_of_the_executor_are_warned(node) -> None:
    """A driver whose clock runs ahead of the executor's (no chrony/PTP) makes observations look fresh however
    late they are: warned in the log and in /diagnostics (joint_states_ahead, WARN). Stamps on clocks in sync,
    their usual latency behind, are not."""
    from diagnostic_msgs.msg import DiagnosticStatus

    from rtc_ros.nodes.inference_diagnostics import inference_status

    names = node.names
    warned: list[str] = []
    node.get_logger().warn = lambda text, **_: warned.append(text)
    now = node.get_clock().now().nanoseconds
    for i in range(50):  # a second of reports (judged from then on); the newest reached us 2 ms after its tick
        node._on_executor_state(_report(10 + i, -1, 0, now - 2_000_000 - (49 - i) * 20_000_000, names))
    q = JointState(name=names, position=[0.1] * len(names))
    q.header.stamp = conv.ns_to_stamp(now - 5_000_000)  # 5 ms old: in sync
    node._on_joint_state(q)
    assert not warned and node.clock_ahead.ahead == 0
    level, _, vals = inference_status(node)
    assert vals["joint_states_ahead"] == 0 and "joint_states_ahead_ms_max" not in vals
    q.header.stamp = conv.ns_to_stamp(node.get_clock().now().nanoseconds + 150_000_000)  # the driver 150 ms ahead
    node._on_joint_state(q)
    assert node.clock_ahead.ahead == 1
    assert len(warned) == 1 and "joint_states is stamped 1" in warned[0] and "chrony or PTP" in warned[0], warned
    level, message, vals = inference_status(node)
    assert level >= DiagnosticStatus.WARN and "ahead of the executor's clock" in message
    assert vals["joint_states_ahead"] == 1 and 145 <= vals["joint_states_ahead_ms_max"] <= 160
    _, message, vals = inference_status(node)  # per diagnostics period: the next one is clear again
    assert "ahead of the executor's clock" not in message and vals["joint_states_ahead"] == 1
    node.clock_ahead.sim_time = True  # use_sim_time: one /clock for every node, not judged
    q.header.stamp = conv.ns_to_stamp(node.get_clock().now().nanoseconds + 150_000_000)
    node._on_joint_state(q)
    assert node.clock_ahead.ahead == 1 and len(warned) == 1


def test_reports_reaching_the_node_late_are_warned_once_per_period(node) -> None:
    """Executor reports held back by a network (the loop found the executor 6 steps past its newest report at a plan):
    a WARN naming the delay and the Fast DDS profile, in that period only; 4 steps (80 ms at 50 Hz) are not."""
    from diagnostic_msgs.msg import DiagnosticStatus

    from rtc_ros.nodes.inference_diagnostics import inference_status

    node.loop.behind_worst = 6
    level, message, _ = inference_status(node)
    assert level >= DiagnosticStatus.WARN and "reports reached this node up to 6 steps (120 ms) late" in message
    assert "fastdds_lossy_link.xml" in message
    _, message, _ = inference_status(node)  # the next period: nothing late since
    assert "reached this node" not in message
    node.loop.behind_worst = 4
    _, message, _ = inference_status(node)
    assert "reached this node" not in message


def test_a_standing_simulated_clock_is_not_called_an_idle_policy(node) -> None:
    """use_sim_time and the simulator paused: the diagnostics (on the steady clock) said "no chunk published for X s
    while the executor runs" and "the newest rtc/executor_state is X s old" though everything waits for simulated
    time; now they say that simulated time stands still."""
    import time

    from rtc_ros.nodes.inference_diagnostics import inference_status

    from rclpy.parameter import Parameter
    from rclpy.time import Time

    node.set_parameters([Parameter("use_sim_time", Parameter.Type.BOOL, True)])
    node._sim_time = True
    node.get_clock().set_ros_time_override(Time(seconds=100))
    node.state, node.active_since, node.last_published_t = "active", time.monotonic() - 60, time.monotonic() - 60
    node._on_executor_state(_report(10, -1, 0, node.get_clock().now().nanoseconds, node.names))  # running
    node.state, node.active_since, node.last_published_t = "active", time.monotonic() - 60, time.monotonic() - 60
    assert node.loop.executor_running
    node.clock_check.standing_s()
    time.sleep(0.6)
    _, message, _ = inference_status(node)
    assert "simulated time stands still" in message and "no chunk published" not in message, message
    node.get_clock().set_ros_time_override(Time(seconds=101))  # it moves again: an idle policy is one
    _, message, _ = inference_status(node)
    assert "simulated time stands still" not in message and "no chunk published for" in message, message


def test_chunks_lost_or_refused_since_the_last_status_are_warned(node) -> None:
    """A network walkthrough (2026-12-07): at 20 % packet loss 92 chunks were counted lost while the status said OK.
    Two or more lost or refused since the last status, a quarter of those published, now WARN; one refusal (an
    episode reset's resync) does not."""
    from diagnostic_msgs.msg import DiagnosticStatus

    from rtc_ros.nodes.inference_diagnostics import inference_status

    inference_status(node)  # (the counts so far)
    node.published += 8
    node.loop.rejected += 1
    _, message, _ = inference_status(node)
    assert "lost or refused" not in message
    node.published += 8
    node.loop.lost += 2
    node.loop.rejected += 1
    level, message, _ = inference_status(node)
    assert level >= DiagnosticStatus.WARN and "3 of the 8 chunks published since the last status were lost" in message
    _, message, _ = inference_status(node)  # per status period
    assert "lost or refused" not in message


def test_a_run_time_set_goes_through_after_the_policy_file_moved(node, tmp_path) -> None:
    """An audit: every run-time set re-ran the startup checks, so once the checkpoint folder had moved, setting
    obs_timeout was refused naming policy_spec (read-only; the loaded policy runs on). The files are checked at
    startup only."""
    from rclpy.parameter import Parameter

    (tmp_path / "stack").rename(tmp_path / "moved")
    result = node.set_parameters([Parameter("obs_timeout", value=1.0)])[0]
    assert result.successful, result.reason
    assert node.p.obs_timeout == 1.0


@pytest.mark.parametrize("reset_meanwhile", [False, True])
def test_a_chunk_from_a_frame_before_a_reset_that_came_while_it_was_computed_is_not_published(node,
                                                                                             reset_meanwhile) -> None:
    """An audit's race: ~/resync + ~/resume back to back; the observation snapshot held the last frame from before
    the reset and a joint state from after it, and the reset's report came while the chunk was computed: the
    executor accepted it (its t_obs is after the re-sync). Now the node looks again before publishing."""
    from rtc_ros.runtime.inference_loop import Plan

    names, t0, _js = _joint_state_now(node)
    node.cameras._on_image("cam", _image(10, t0 - 40_000_000))
    node.cameras._on_image("cam", _image(11, t0 - 20_000_000))
    node._on_executor_state(_report(100, 3, 0, t0 - 30_000_000, names))
    obs, stamp, oldest = node._observation()
    if reset_meanwhile:  # the report showing the reset, stamped before the joint state, after the frames
        node._on_executor_state(_report(102, -1, 1, t0 - 1_000_000, names))
    plan = Plan(seq=0, t_obs=103, d=0, s=16, prev_remaining=None, d_raw=0)
    node._infer(plan, obs, stamp, time.perf_counter(), oldest_ns=oldest)
    assert node.published == (0 if reset_meanwhile else 1)
    assert node.obs_rejected.get("before_reset", 0) == (1 if reset_meanwhile else 0)
