"""chunk_executor in-process (no DDS): its callbacks called directly, in orders a robot produces.

* ``startup_command: none``: the arm moves while the policy warms up (nothing is commanded); the first
  command starts from where the arm is then, not from the first joint state.
* a simulator that restarts its clock at a reset: after ``~/resync`` the joint states on the new clock
  are taken as the new hold position (before: all refused as "measured before the re-sync" until the
  clock passed the old time again -- no command for that long)."""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from rtc_ros.nodes import conversions as conv  # noqa: E402
from rtc_ros.runtime.contract import ChunkMeta  # noqa: E402
from test_nodes_harness import JOINTS, write_params  # noqa: E402



def _arm() -> dict:
    return {"max_step": [0.05], "lower_limits": [-3.0], "upper_limits": [3.0]}  # a new one each: no YAML alias


def _js(q: np.ndarray, stamp_ns: int) -> JointState:
    msg = JointState(name=JOINTS, position=[float(x) for x in q])
    msg.header.stamp = conv.ns_to_stamp(stamp_ns)
    return msg


@pytest.fixture
def node(tmp_path):
    yield from _node(tmp_path, _arm(), _arm())


@pytest.fixture
def loud_node(tmp_path):
    yield from _node(tmp_path, _arm(), _arm(), startup_command="hold_measured")


def _node(tmp_path, left: dict, right: dict, startup_command: str = "none", **executor):
    from rtc_ros.nodes.chunk_executor import ChunkExecutorNode

    params = write_params(tmp_path / "p.yaml", executor={"loop_mode": "timer", "startup_command": startup_command,
                                                         **executor}, left=left, right=right)
    ctx = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(params)], context=ctx)
    n = ChunkExecutorNode(context=ctx)
    from std_msgs.msg import Float64MultiArray  # stand-ins for the controllers (~/resume is refused without them)
    n.controller_subs = [n.create_subscription(Float64MultiArray, pub.topic_name, lambda m: None, 10)
                         for _arm, _sl, pub in n._arm_pubs]
    sent: list = []
    publish = n._publish
    n._publish = lambda tick: (sent.append(tick), publish(tick))
    n.sent = sent
    try:
        yield n
    finally:
        n.destroy_node()
        rclpy.shutdown(context=ctx)


def test_silent_startup_starts_from_where_the_arm_is_when_the_first_chunk_comes(node) -> None:
    node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
    for _ in range(50):  # one second of start-up: nothing published to the arm
        node._tick()
    node._on_joint_state(_js(np.full(len(JOINTS), 0.5), node.get_clock().now().nanoseconds))  # it moved
    step = node.core.next_step
    chunk = np.full((50, len(JOINTS)), 0.5)
    node._on_chunk(conv.chunk_to_msg(chunk, JOINTS, ChunkMeta(0, step, 1, 0, "rtc"),
                                     conv.ns_to_stamp(node.get_clock().now().nanoseconds), node.dt))
    node._tick()
    first = node.sent[-1]
    assert not first.hold and np.allclose(first.command, 0.5)  # before: 0.05 (0.45 rad from the arm)
    node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
    assert np.allclose(node.core.tick().command, 0.5)  # commanding: a joint state no longer moves the base


def test_joint_states_on_a_clock_restarted_after_a_resync_are_taken(node) -> None:
    node.set_parameters([Parameter("use_sim_time", Parameter.Type.BOOL, True)])
    clock = node.get_clock()
    clock.set_ros_time_override(Time(seconds=30))
    node._on_joint_state(_js(np.zeros(len(JOINTS)), clock.now().nanoseconds))
    node._tick()
    node.operator.on_resync(Trigger.Request(), Trigger.Response())  # an episode reset at sim time 30 s ...
    assert not node.core.ready
    clock.set_ros_time_override(Time(seconds=0, nanoseconds=100_000_000))  # ... and the sim clock restarts
    node._on_joint_state(_js(np.full(len(JOINTS), 0.2), clock.now().nanoseconds + 20_000_000))
    assert node.core.ready and np.allclose(node.core.tick().command, 0.2)


def test_after_a_resync_the_hold_is_the_first_measurement_not_a_moving_one(loud_node) -> None:
    """``hold_measured``, ~/resync: the hold is the first joint state after it, commanded while paused; later
    joint states (the arm sagging, a gripper measuring its opening) must not move the command (a first
    version kept measuring while paused and commanding: the commands followed the arm down)."""
    node = loud_node
    node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
    node._tick()
    node.operator.on_resync(Trigger.Request(), Trigger.Response())
    node._on_joint_state(_js(np.full(len(JOINTS), 0.3), node.get_clock().now().nanoseconds + 1))
    node._tick()
    for k in range(1, 20):  # the arm sags while paused
        node._on_joint_state(_js(np.full(len(JOINTS), 0.3 - 0.01 * k), node.get_clock().now().nanoseconds + 1))
        node._tick()
    assert all(np.allclose(t.command, 0.3) and not t.silent for t in node.sent[-19:])


def test_silent_startup_sends_nothing_after_a_resync_until_a_chunk(node) -> None:
    """``startup_command: none``, ~/resync (something else moved the robot: a teleop takeover that left a
    gripper squeezing an object): the paused ticks send nothing (before: the measured position was commanded,
    and a squeezing gripper, which measures its opening, loosened), the base follows the joint states, and
    after ~/resume the first chunk starts from where the arm is then."""
    node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
    node._tick()
    node._on_chunk(_chunk_msg(node, np.full((50, len(JOINTS)), 0.01), JOINTS))
    node._tick()
    assert not node.sent[-1].silent  # commanding
    node.operator.on_resync(Trigger.Request(), Trigger.Response())
    for k in range(10):  # paused after the re-sync: the arm is moved by something else
        node._on_joint_state(_js(np.full(len(JOINTS), 0.3 + 0.01 * k), node.get_clock().now().nanoseconds + 1))
        node._tick()
    assert all(t.paused and t.silent for t in node.sent[-10:])
    node.operator.on_resume(Trigger.Request(), Trigger.Response())
    node._tick()
    assert node.sent[-1].silent and np.allclose(node.sent[-1].command, 0.39)  # waiting for a chunk: still silent
    node._on_chunk(_chunk_msg(node, np.full((50, len(JOINTS)), 0.4), JOINTS, seq=1))
    node._tick()
    first = node.sent[-1]
    # ramped in from 0.39, where the arm is now (not from the first measurement after the re-sync, 0.3)
    assert not first.silent and not first.hold and np.all((first.command >= 0.39) & (first.command <= 0.4))


def _chunk_msg(node, chunk: np.ndarray, names: list, seq: int = 0):
    return conv.chunk_to_msg(chunk, names, ChunkMeta(seq, node.core.next_step, 1, 0, "rtc"),
                             conv.ns_to_stamp(node.get_clock().now().nanoseconds), node.dt)


def test_a_chunk_listing_the_joints_in_another_order_is_commanded_by_name(node) -> None:
    """Every other test sends the executor's own joint order (the reorder by name was never exercised):
    a policy listing the joints reversed must drive each joint with its own values, not swapped ones."""
    node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
    node._tick()
    first = 0.003 * np.arange(1, len(JOINTS) + 1)  # a different value per joint, under max_step
    chunk = np.tile(first, (50, 1))
    node._on_chunk(_chunk_msg(node, chunk[:, ::-1], JOINTS[::-1]))
    node._tick()
    assert not node.sent[-1].hold and np.allclose(node.sent[-1].command, first)


def test_the_params_file_joint_limits_bound_the_command(tmp_path) -> None:
    """The limits the node reads from the params file (per arm, concatenated in arm order) clamp every
    command: a chunk at 0.5 rad against an upper limit of 0.3 on the left arm and 0.4 on the right."""
    left = {"max_step": [10.0], "lower_limits": [-3.0], "upper_limits": [0.3]}
    right = {"max_step": [10.0], "lower_limits": [-3.0], "upper_limits": [0.4]}
    for n in _node(tmp_path, left, right):
        n._on_joint_state(_js(np.zeros(len(JOINTS)), n.get_clock().now().nanoseconds))
        n._tick()
        n._on_chunk(_chunk_msg(n, np.full((50, len(JOINTS)), 0.5), JOINTS))
        for _ in range(3):
            n._tick()
        cmd = n.sent[-1].command
        assert np.allclose(cmd[:7], 0.3) and np.allclose(cmd[7:], 0.4), cmd


def test_a_stop_report_beyond_the_joint_limits_is_not_commanded(node) -> None:
    """A protective-stop report whose position for a joint lies beyond its limits by more than max_step
    (degrees sent for radians) is not held: that joint keeps its last command, the others are held
    where the stop holds them."""
    n = node
    n._on_joint_state(_js(np.zeros(len(JOINTS)), n.get_clock().now().nanoseconds))
    n._tick()
    n._on_chunk(_chunk_msg(n, np.full((50, len(JOINTS)), 0.5), JOINTS))
    for _ in range(3):
        n._tick()
    last = n.sent[-1].command.copy()  # walked toward 0.5 at max_step 0.05 per tick
    n.stops.on_report(JointState(name=[JOINTS[0], JOINTS[1]], position=[0.12, 57.3]))
    n._tick()
    cmd = n.sent[-1].command
    assert n.sent[-1].hold and cmd[0] == pytest.approx(0.12), cmd
    assert np.allclose(cmd[1:], last[1:]), (cmd, last)
    n.stops.on_report(JointState(name=[JOINTS[1]], position=[57.3]))  # still stopped, every position bad:
    n._tick()
    assert n.core.paused and n.sent[-1].hold  # not read as the stop's end


def test_chunks_guided_toward_another_chunk_or_made_for_another_mode_are_refused_by_the_node(node) -> None:
    """The node hands the metadata's base and method to the core: a chunk guided toward a chunk that no longer
    executes ('base') and one made for an ensemble method on this switch-mode executor ('method') are refused
    and reported; the executing chunk goes on."""
    node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
    node._tick()
    node._on_chunk(_chunk_msg(node, np.full((50, len(JOINTS)), 0.01), JOINTS))
    node._tick()
    stamp = conv.ns_to_stamp(node.get_clock().now().nanoseconds)
    for seq, meta in ((1, ChunkMeta(1, node.core.next_step, 1, 0, "rtc", base=7)),
                      (2, ChunkMeta(2, node.core.next_step, 1, 0, "te_dense"))):
        node._on_chunk(conv.chunk_to_msg(np.full((50, len(JOINTS)), 0.5), JOINTS, meta, stamp, node.dt))
        node._tick()
        assert node.sent[-1].seq == 0 and node.sent[-1].rejected_seq == seq
    assert node.core.stats.rejects_by_reason == {"base": 1, "method": 1}
    node._on_chunk(conv.chunk_to_msg(np.full((50, len(JOINTS)), 0.02), JOINTS,
                                     ChunkMeta(3, node.core.next_step, 1, 0, "rtc", base=0), stamp, node.dt))
    node._tick()
    assert node.sent[-1].seq == 3  # guided toward the executing chunk: taken over


def test_beyond_the_limits_nothing_is_commanded_and_the_diagnostics_say_why(node) -> None:
    """A joint measured 1 rad beyond its limit (3.0): no command, no step; diagnostics ERROR naming it. Inside
    again: paused until ~/resume, then stepping, and a command topic nobody subscribes to (no controller) is a
    WARN naming the topic -- and ~/resume is refused while it has none (a bring-up walkthrough: resumed into
    nothing, the chunks ran on, and the controller loaded later jumped 0.19 rad to the newest command)."""
    from diagnostic_msgs.msg import DiagnosticStatus

    diags: list = []
    node._diag_pub.publish = diags.append
    q = np.zeros(len(JOINTS))
    q[2] = 4.0
    node._on_joint_state(_js(q, node.get_clock().now().nanoseconds))
    node._tick()
    assert not node.sent and node.core.next_step == 0
    answer = node.operator.on_resume(Trigger.Request(), Trigger.Response())
    assert not answer.success and answer.message.startswith("refused: measured positions beyond the joint limits")
    node._publish_diagnostics()
    st = diags[-1].status[0]
    assert st.level == DiagnosticStatus.ERROR and f"{JOINTS[2]}=4" in st.message and "limits -3..3" in st.message
    node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
    node._tick()
    assert node.core.ready and node.core.paused and node.core.next_step == 0  # back inside: paused until ~/resume
    left = node.controller_subs[0]
    node.destroy_subscription(left)  # the left arm's controller unloaded
    answer = node.operator.on_resume(Trigger.Request(), Trigger.Response())
    assert not answer.success and answer.message.startswith("refused: nobody subscribes /left_controller/commands ")
    node.controller_subs[0] = node.create_subscription(left.msg_type, "left_controller/commands",
                                                       lambda m: None, 10)
    assert node.operator.on_resume(Trigger.Request(), Trigger.Response()).success
    node._tick()
    assert node.core.next_step == 1
    for sub in node.controller_subs:
        node.destroy_subscription(sub)
    node._publish_diagnostics()
    st = diags[-1].status[0]
    assert st.level == DiagnosticStatus.WARN and "no subscriber on /left_controller/commands" in st.message
    assert st.hardware_id == "/chunk_executor"  # the node's full name: two robots' statuses tell apart


def test_a_status_s_hardware_id_is_the_node_s_full_name() -> None:
    from diagnostic_msgs.msg import DiagnosticStatus

    from rtc_ros.nodes.common import diagnostic_array

    named = diagnostic_array("rtc_ros: chunk_executor (/robot_a/chunk_executor)", DiagnosticStatus.OK, "", {}, None)
    assert named.status[0].hardware_id == "/robot_a/chunk_executor"
    assert diagnostic_array("other", DiagnosticStatus.OK, "", {}, None).status[0].hardware_id == "rtc_ros"
    import os
    import socket

    values = {kv.key: kv.value for kv in named.status[0].values}  # two processes of one name tell apart (a walkthrough)
    assert values["pid"] == str(os.getpid()) and values["host"] == socket.gethostname()


def test_a_misspelt_parameter_in_the_params_file_is_refused_at_start(tmp_path) -> None:
    """rclpy ignores a params-file key no node declares; a typo in a safety parameter would silently leave its
    default (here: no acceleration limit), so the executor refuses to start, naming it and what was probably
    meant (until 2026-12-07 a warning). A key close to no parameter is only warned (another program's)."""
    from rtc_ros.nodes.chunk_executor import ChunkExecutorNode
    from rtc_ros.nodes.params import ParameterError

    params = write_params(tmp_path / "p.yaml", executor={"loop_mode": "timer"}, left={**_arm(), "max_acel": [10.0]},
                          right=_arm())
    ctx = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(params)], context=ctx)
    try:
        with pytest.raises(ParameterError, match=r"'left\.max_acel' = \[10\.0\]: not a parameter of any rtc_ros node "
                                                 r"\(did you mean 'left\.max_accel'\?\); its value would be ignored"):
            ChunkExecutorNode(context=ctx)
    finally:
        rclpy.shutdown(context=ctx)


class _Clock:
    """The tracking watchdog's clock (rtc_ros.nodes.executor_tracking.time), advanced by the test: a loaded
    machine's late sleeps cannot stretch or split a violation."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


@pytest.fixture
def clock(monkeypatch) -> _Clock:
    from rtc_ros.nodes import executor_tracking

    c = _Clock()
    monkeypatch.setattr(executor_tracking, "time", c)
    return c


@pytest.mark.parametrize("dry", [False, True])
def test_the_tracking_watchdog_holds_where_a_blocked_arm_is_and_is_idle_in_a_dry_run(tmp_path, dry, clock) -> None:
    """With a tolerance the executor keeps reading joint states after its first command (in loop_mode timer the
    subscription is kept anyway: the callback decides) and re-syncs itself once a joint stays beyond it for
    tracking_timeout_s; in a dry run nothing is sent, so nothing is checked."""
    gen = _node(tmp_path, dict(_arm(), tracking_tolerance=[0.1]), dict(_arm(), tracking_tolerance=[0.1]))
    node = next(gen)
    try:
        node.tracking.dry = dry  # (dry_run is read-only: set as the node would read it)
        node.set_parameters([Parameter("tracking_timeout_s", value=0.05)])
        assert node.tracking.enabled and node.tracking.watchdog.timeout_s == 0.05
        node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
        node._tick()
        node._on_chunk(_chunk_msg(node, np.tile(0.04 * np.arange(1, 51)[:, None], (1, len(JOINTS))), JOINTS))
        for _ in range(5):
            node._tick()  # commanding: 0.04 rad more per tick
        stuck = np.zeros(len(JOINTS))  # the arm has not moved: 0.2 rad behind, beyond the tolerance
        node._on_joint_state(_js(stuck, node.get_clock().now().nanoseconds))
        for _ in range(2):  # 40 ms: not for 0.05 s yet
            clock.sleep(0.02)
            node._on_joint_state(_js(stuck, node.get_clock().now().nanoseconds))
        assert node.tracking.watchdog.trips == 0
        clock.sleep(0.02)  # 60 ms (joint states farther apart than the timeout would not count)
        node._on_joint_state(_js(stuck, node.get_clock().now().nanoseconds))
        assert node.tracking.watchdog.trips == (0 if dry else 1) and node.core.paused == (not dry)
        if not dry:
            assert node.core.measuring and "left_waist 0.200 from its command (tolerance 0.1)" in node.tracking.last_trip
            node._on_joint_state(_js(stuck, node.get_clock().now().nanoseconds + 1))  # measured again: the hold
            tick = node.core.tick()
            grip = np.array([n.endswith("gripper") for n in JOINTS])  # (their command kept: a grip is not loosened)
            assert tick.hold and not tick.silent and np.allclose(tick.command, np.where(grip, 0.2, stuck))  # commanded
            # where the arm is
            from diagnostic_msgs.msg import DiagnosticStatus

            summary: dict = {}
            level, text = node.tracking.diagnostics(summary, DiagnosticStatus.WARN, "paused")
            assert level == DiagnosticStatus.ERROR and summary["tracking_trips"] == 1 and text.startswith("the arm did")
            assert node.tracking.diagnostics(summary, DiagnosticStatus.OK, "x") == (DiagnosticStatus.OK, "x")  # once
    finally:
        next(gen, None)


def test_a_violation_does_not_outlive_a_resync_and_a_silent_joint_states_topic_is_said(tmp_path, clock) -> None:
    """A violation begun before a (silent) re-sync does not carry over into the next chunk: the joint states
    that go to the measurement re-arm the watchdog. And while the arm should follow, no readable joint state
    for longer than the timeout (at least 5 ticks) makes the diagnostics WARN that the watchdog is blind."""
    from diagnostic_msgs.msg import DiagnosticStatus

    gen = _node(tmp_path, dict(_arm(), tracking_tolerance=[0.1]), dict(_arm(), tracking_tolerance=[0.1]))
    node = next(gen)
    try:
        node.set_parameters([Parameter("tracking_timeout_s", value=0.3)])

        def commanding() -> None:
            node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
            node._tick()
            node._on_chunk(_chunk_msg(node, np.tile(0.04 * np.arange(1, 51)[:, None], (1, len(JOINTS))), JOINTS,
                                      seq=node.core.next_step))
            for _ in range(5):
                node._tick()

        def violating(seconds: float) -> None:  # the arm 0.2 rad behind, a joint state every 20 ms
            for _ in range(round(seconds / 0.02)):
                clock.sleep(0.02)
                node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))

        commanding()
        node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))  # 0.2 behind: begins
        node.operator.on_resync(Trigger.Request(), Trigger.Response())  # startup_command none: silent from here
        clock.sleep(0.16)
        node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds + 1))  # measured
        node.core.resume()
        commanding()
        violating(0.2)  # a new violation for 0.2 s (< 0.3), ended 0.36 s after the first began
        assert node.tracking.watchdog.trips == 0 and not node.core.paused
        assert node.tracking.diagnostics({}, DiagnosticStatus.OK, "executing") == (DiagnosticStatus.OK, "executing")
        violating(0.12)  # ... it trips once it lasts 0.3 s (the rule is alive: not re-armed by anything else)
        assert node.tracking.watchdog.trips == 1 and node.core.paused
        assert node.tracking.diagnostics({}, DiagnosticStatus.OK, "x")[0] == DiagnosticStatus.ERROR  # (once)
        node.core.resume()
        commanding()
        clock.sleep(0.35)  # no joint state for longer than max(timeout, 5 ticks) while commanding
        vals: dict = {}
        level, text = node.tracking.diagnostics(vals, DiagnosticStatus.OK, "executing")
        assert level == DiagnosticStatus.WARN and text.startswith("tracking watchdog blind: no readable joint state for")
        assert vals["tracking_js_age_s"] > 0.3
        node.core.pause()  # nothing to follow: not blind
        assert node.tracking.diagnostics({}, DiagnosticStatus.OK, "x")[0] == DiagnosticStatus.OK
        for _ in range(18):  # joint states keep coming while paused (e.g. a 1.5 s episode reset) ...
            clock.sleep(0.02)
            node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
        node.core.resume()  # ... so right after the resume it is not "blind" (the topic was alive all along)
        assert node.tracking.diagnostics({}, DiagnosticStatus.OK, "x")[0] == DiagnosticStatus.OK
    finally:
        next(gen, None)


def test_a_run_time_diagnostics_period_changes_the_timer_without_destroying_it(node) -> None:
    """``ros2 param set chunk_executor diagnostics_period``: the same timer, the new period (destroying it from a
    parameter callback races the MultiThreadedExecutor of loop_mode timer, whose other thread may be adding it to
    its wait set: an invalid handle there ends spin)."""
    timer = node._diag_timer
    assert timer.time_until_next_call() > 300_000_000  # (created with the node: 0.5 s)
    assert node.set_parameters([Parameter("diagnostics_period", value=0.1)])[0].successful
    assert node._diag_timer is timer and timer in node.timers and timer.timer_period_ns == 100_000_000
    assert timer.time_until_next_call() <= 100_000_000  # from now on (reset), not after the old period


def test_a_deadman_press_enables_only_at_the_next_joint_state(tmp_path) -> None:
    """Callbacks in the order a slow joint-state link gives: release, the arm moved by hand, press, a chunk planned
    at once, ticks, and only then the first joint state since the press. The chunk must not take over before it
    (it did until 2026-12-07, and the moved-while-released check was then skipped: the arm driven back to the old
    hold); the joint state enables the executor and holds where the arm stands. The joint-state subscription is
    kept throughout (it was destroyed after the first command and created again from the control loop)."""
    import time

    from rtc_ros.nodes.chunk_executor import ChunkExecutorNode

    params = write_params(tmp_path / "p.yaml", executor={"startup_command": "hold_measured", "enable_topic": "deadman",
                                                         "enable_timeout_s": 1.0}, left=_arm(), right=_arm())
    ctx = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(params)], context=ctx)
    n = ChunkExecutorNode(context=ctx)
    n._running.clear()  # (the loop thread stops: the test ticks by hand)
    n._thread.join(timeout=2.0)
    n.sent, publish = [], n._publish
    n._publish = lambda tick: (n.sent.append(tick), publish(tick))
    gate, now = n._enable.gate, lambda: n.get_clock().now().nanoseconds
    try:
        n._on_joint_state(_js(np.zeros(len(JOINTS)), now()))
        n._tick()  # the device never heard: disabled
        assert not n.core.enabled
        gate.on_message(True, time.monotonic())  # the first press ...
        n._tick()
        assert not n.core.enabled
        n._on_joint_state(_js(np.zeros(len(JOINTS)), now() - 10**9))  # (stamped before the press: not taken)
        assert not n.core.enabled
        n._on_joint_state(_js(np.zeros(len(JOINTS)), now()))  # ... enabled at the next: nothing commanded, no move
        assert n.core.enabled and n.core.stats.resets == 0
        chunk = np.full((50, len(JOINTS)), 0.04)
        n._on_chunk(conv.chunk_to_msg(chunk, JOINTS, ChunkMeta(0, n.core.next_step, 0, 0, "rtc"),
                                      conv.ns_to_stamp(now()), n.dt))
        for _ in range(3):
            n._tick()
        n._on_joint_state(_js(np.full(len(JOINTS), 0.04), now()))
        assert n._js_sub is not None  # kept: a press needs the next joint state
        gate.on_message(False, time.monotonic())  # released ...
        n._tick()
        n._on_joint_state(_js(np.full(len(JOINTS), 0.04), now() + 1))
        assert not n.core.enabled
        gate.on_message(True, time.monotonic())  # ... moved by hand, pressed again
        n._tick()
        assert not n.core.enabled and "pressed, waiting for a joint state" in n._enable.why(time.monotonic())
        n._on_chunk(conv.chunk_to_msg(chunk, JOINTS, ChunkMeta(1, n.core.next_step, 0, 0, "rtc"),
                                      conv.ns_to_stamp(now()), n.dt))
        sent = len(n.sent)
        for _ in range(5):
            gate.on_message(True, time.monotonic())
            n._tick()
        assert all(t.hold and np.allclose(t.command, 0.04) for t in n.sent[sent:])  # not taken over
        resets = n.core.stats.resets
        n._on_joint_state(_js(np.full(len(JOINTS), 0.5), now() + 1))  # the first joint state since the press
        assert n.core.enabled and n.core.stats.resets == resets + 1
        n._tick()
        assert n.sent[-1].hold and np.allclose(n.sent[-1].command, 0.5)  # held where the arm stands
    finally:
        n.destroy_node()
        rclpy.shutdown(context=ctx)


def test_a_start_up_chunk_in_degrees_is_refused_naming_the_joint(loud_node) -> None:
    """max_start_gap (default 1 rad, writable): a degree policy's first chunk on a radian arm whose limits let it
    through is refused, reported (reason start_gap) and nothing moves; set to 0 at run time the check is off."""
    node = loud_node
    assert node.core.max_start_gap == 1.0
    q = np.full(len(JOINTS), 0.5)
    node._on_joint_state(_js(q, node.get_clock().now().nanoseconds))
    node._tick()
    chunk = np.tile(np.degrees(q), (50, 1))
    chunk[:, :] = np.clip(chunk, -2.9, 2.9)  # (inside the limits of +-3: only the gap tells)
    node._on_chunk(conv.chunk_to_msg(chunk, JOINTS, ChunkMeta(0, node.core.next_step, 0, 0, "rtc"),
                                     conv.ns_to_stamp(node.get_clock().now().nanoseconds), node.dt))
    node._tick()
    last = node.sent[-1]
    assert last.hold and last.rejected_reason == "start_gap" and np.allclose(last.command, q)
    from rtc_ros.runtime.executor import ChunkRejected

    with pytest.raises(ChunkRejected, match=f"its first action puts joint {JOINTS[0]} at 2.9, 2.4 from where it is "
                                            "held \\(0.5\\), more than max_start_gap=1"):
        node.core.offer_chunk(chunk, 5, node.core.next_step, obs_age_s=0.0)
    assert node.core.stats.rejects_by_reason == {"start_gap": 2}
    assert node.set_parameters([Parameter("max_start_gap", value=0.0)])[0].successful
    node._on_chunk(conv.chunk_to_msg(chunk, JOINTS, ChunkMeta(6, node.core.next_step, 0, 0, "rtc"),
                                     conv.ns_to_stamp(node.get_clock().now().nanoseconds), node.dt))
    node._tick()
    assert not node.sent[-1].hold


def test_sim_time_going_back_resyncs_and_periods_are_on_ros_time(node) -> None:
    """Timer mode (use_sim_time): the period statistics are on ROS time (a simulator at half speed ticks every
    20 ms of sim time, 40 ms of wall time: reported 40 ms before), and ROS time going back (the simulator restarted or
    reset its world: the arm is elsewhere) re-syncs, paused, as ~/resync does (the old chunk went on against the reset
    arm, 0.64 rad in one tick, a protective stop); the node spins single-threaded in either loop mode (a
    MultiThreadedExecutor missed ticks of a /clock-driven timer)."""
    from rclpy.executors import SingleThreadedExecutor

    from rtc_ros.nodes.chunk_executor import node_executor

    assert isinstance(node_executor(node), SingleThreadedExecutor)
    node.set_parameters([Parameter("use_sim_time", Parameter.Type.BOOL, True)])
    clock = node.get_clock()
    t = 30.0
    clock.set_ros_time_override(Time(seconds=t))
    node._on_joint_state(_js(np.zeros(len(JOINTS)), clock.now().nanoseconds))
    node._tick()
    chunk = np.full((50, len(JOINTS)), 0.01)
    node._on_chunk(conv.chunk_to_msg(chunk, JOINTS, ChunkMeta(0, node.core.next_step, 0, 0, "rtc"),
                                     conv.ns_to_stamp(clock.now().nanoseconds), node.dt))
    for _ in range(10):
        t += 0.02
        clock.set_ros_time_override(Time(nanoseconds=int(round(t * 1e9))))
        node._tick()
    assert node.core.stats.summary()["period_ms_p50"] == pytest.approx(20.0, abs=1e-3)
    assert node.core.executing_seq == 0 and not node.sent[-1].hold
    resets = node.core.stats.resets
    clock.set_ros_time_override(Time(nanoseconds=100_000_000))  # the simulator restarted
    node._tick()
    assert node.core.paused and node.core.executing_seq == -1 and node.core.stats.resets == resets + 1
    assert not node.core.ready  # waits for a joint state on the new clock
    node._on_joint_state(_js(np.full(len(JOINTS), 0.3), clock.now().nanoseconds + 1))
    node._tick()
    assert node.core.ready and node.core.paused
    resets = node.core.stats.resets
    node.set_parameters([Parameter("use_sim_time", Parameter.Type.BOOL, False)])  # wall time: another time line
    node._tick()
    assert node.core.stats.resets == resets  # not a jump (forward here; a switch either way is none)
    node.set_parameters([Parameter("use_sim_time", Parameter.Type.BOOL, True)])  # back to sim time at 0.1 s
    node._tick()
    assert node.core.stats.resets == resets  # (it was a re-sync before: 1.7e9 s "back")


def test_the_clock_check_names_a_node_time_that_disagrees_with_the_graph(tmp_path) -> None:
    """ClockCheck (chunk_executor, policy_inference, episode_recorder; on a steady timer, so it also runs while ROS
    time stands): use_sim_time without any /clock (the node's time stands at 0 and it waits, said nowhere before),
    simulated time standing still, a /clock published while use_sim_time is false (wall-clock stamps beside sim
    time: refused observations, bags with mixed times), two /clock publishers; in the executor's diagnostics (which
    are on the steady clock too). On a domain of its own: it reads the ROS graph."""
    import random
    import time

    from rclpy.clock import ClockType
    from rosgraph_msgs.msg import Clock

    from rtc_ros.nodes.chunk_executor import ChunkExecutorNode
    from rtc_ros.nodes.executor_diagnostics import executor_status

    params = write_params(tmp_path / "p.yaml", executor={"loop_mode": "timer"}, left=_arm(), right=_arm())
    ctx = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(params)], context=ctx,
               domain_id=random.SystemRandom().randint(215, 232))
    node = ChunkExecutorNode(context=ctx)
    sim = rclpy.create_node("a_simulator", context=ctx)
    check = node.clock_check

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 5.0
        while text not in check.check() and time.monotonic() < deadline:
            time.sleep(0.05)
        return check.message

    try:
        assert check.timer.clock.clock_type == ClockType.STEADY_TIME
        assert node._diag_timer.clock.clock_type == ClockType.STEADY_TIME
        assert check.check() == ""
        node.set_parameters([Parameter("use_sim_time", Parameter.Type.BOOL, True)])
        assert "use_sim_time is true but no /clock is published" in check.check()
        check._period_s = 0.2
        for k in range(1, 5):  # a healthy simulated clock, slower than the check: nothing to say
            node.get_clock().set_ros_time_override(rclpy.time.Time(seconds=k))
            time.sleep(0.1)
            assert check.check() == "" and check.standing_s() < 0.2
        node.set_parameters([Parameter("use_sim_time", Parameter.Type.BOOL, False)])
        sim.create_publisher(Clock, "/clock", 10)
        assert "/clock is published (1 publishers: a simulator?) but use_sim_time is false" in wait_for("use_sim_time")
        node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
        assert "use_sim_time is false here" in executor_status(node)[1]
        node.set_parameters([Parameter("use_sim_time", Parameter.Type.BOOL, True)])
        node.get_clock().set_ros_time_override(rclpy.time.Time(seconds=30))
        check.check()  # (time stands from here)
        time.sleep(0.3)
        check.check()
        assert "simulated time has not advanced for" in wait_for("not advanced")
        sim.create_publisher(Clock, "/clock", 10)
        node.get_clock().set_ros_time_override(rclpy.time.Time(seconds=40))
        assert "/clock has 2 publishers" in wait_for("2 publishers")
    finally:
        sim.destroy_node()
        node.destroy_node()
        rclpy.shutdown(context=ctx)


def _moving_at_1_rad_s(node) -> None:
    """The arm measured at 0, then a chunk moving every joint at 0.02 rad/tick executed for 15 ticks."""
    node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
    node._tick()
    node._on_chunk(_chunk_msg(node, np.cumsum(np.full((50, len(JOINTS)), 0.02), axis=0), JOINTS))
    for _ in range(15):
        node._tick()


def test_resync_is_refused_while_the_commands_still_move_with_max_accel(tmp_path) -> None:
    """A UR-like walkthrough: ~/resync on an arm moving at 1.4 rad/s published nothing more (startup_command none),
    so the controller kept the last moving setpoint: an instant stop. With max_accel it is refused while the commands
    move ("~/pause first"); after ~/pause has braked them to rest it is accepted. Without max_accel it is as before
    (every hold stops in one tick there)."""
    gen = _node(tmp_path, {**_arm(), "max_accel": [20.0]}, {**_arm(), "max_accel": [20.0]})
    node = next(gen)
    try:
        _moving_at_1_rad_s(node)
        answer = node.operator.on_resync(Trigger.Request(), Trigger.Response())
        assert not answer.success and "~/pause first" in answer.message and not node.core.paused
        assert node.operator.on_pause(Trigger.Request(), Trigger.Response()).success
        for _ in range(10):  # braking at 20 rad/s^2 from 1 rad/s: 3 ticks
            node._tick()
        assert node.core.at_rest and node.operator.on_resync(Trigger.Request(), Trigger.Response()).success
    finally:
        gen.close()
    gen = _node(tmp_path, _arm(), _arm())  # no max_accel: accepted while moving, as before
    node = next(gen)
    try:
        _moving_at_1_rad_s(node)
        assert node.operator.on_resync(Trigger.Request(), Trigger.Response()).success
    finally:
        gen.close()


def test_a_max_chunk_age_shorter_than_a_chunk_set_at_run_time_is_warned(node, monkeypatch) -> None:
    """A fault walkthrough (2026-12-07): ``ros2 param set chunk_executor max_chunk_age 0.05`` was accepted and every
    chunk was refused from then on, the arm holding, with no word at the set (the note was said only at start)."""
    from rclpy.parameter import Parameter

    said: list[str] = []
    logger = node.get_logger()
    monkeypatch.setattr(node, "get_logger", lambda: type("L", (), {"warn": lambda self, m: said.append(m),
                                                                   "__getattr__": lambda self, k: getattr(logger, k)})())
    assert node.set_parameters([Parameter("max_chunk_age", value=0.05)])[0].successful
    assert node.core.max_chunk_age == 0.05 and any("max_chunk_age 0.05 s is shorter than a chunk" in m for m in said)
    said.clear()
    assert node.set_parameters([Parameter("max_chunk_age", value=2.0)])[0].successful and not said


def _starve(node, monkeypatch, ticks: int) -> list[str]:
    """One chunk, then ``ticks`` more ticks with nothing new (starved); the throttle's clock follows the ticks.
    Returns the warnings logged."""
    from rtc_ros.nodes import common

    now = [100.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: now[0])
    said: list[str] = []
    logger = node.get_logger()
    monkeypatch.setattr(node, "get_logger", lambda: type("L", (), {"warn": lambda self, m: said.append(m),
                                                                   "__getattr__": lambda self, k: getattr(logger, k)})())
    node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
    step = node.core.next_step
    node._on_chunk(conv.chunk_to_msg(np.zeros((50, len(JOINTS))), JOINTS, ChunkMeta(0, step, 1, 0, "rtc"),
                                     conv.ns_to_stamp(node.get_clock().now().nanoseconds), node.dt))
    for _ in range(50 + ticks):
        node._tick()
        now[0] += node.dt
    return said


def test_the_starved_hold_says_when_nobody_publishes_chunks(node, monkeypatch) -> None:
    """A fault walkthrough (2026-12-07): policy_inference killed, the executor said only "holding position (starved)
    ... N ticks in a row"; it now adds that nobody publishes the chunk topic (by its resolved, remapped name)."""
    said = _starve(node, monkeypatch, 10)
    starved = [m for m in said if m.startswith("holding position (starved)")]
    assert starved and "(nobody publishes /rtc/chunk: policy_inference stopped, or the network to it?)" in starved[0], said


def test_a_hold_lasting_long_is_logged_ten_times_less_often(node, monkeypatch) -> None:
    """A long-run audit (2026-12-07): a starved hold logged a line every hold_log_period for as long as it lasted
    (hours of an idle robot: 3600 lines an hour); after 10 s of a hold, every 10 periods."""
    import re

    said = _starve(node, monkeypatch, 40 * 50)  # 40 s starved
    in_a_row = [int(re.search(r"(\d+) ticks in a row", m).group(1)) for m in said if "(starved)" in m]
    period = float(node.p.hold_log_period)
    early, late = sum(n * node.dt <= 10.0 for n in in_a_row), sum(n * node.dt > 10.0 for n in in_a_row)
    assert early >= 0.8 * 10.0 / period  # every period for the first 10 s
    assert 1 <= late <= 30.0 / (10.0 * period) + 1, (early, late, period)  # then every 10 (before: 30 / period)


def test_a_released_deadman_is_logged_at_each_change_of_reason_not_every_second(tmp_path, monkeypatch) -> None:
    """A long-run audit (2026-12-07): a released enabling device, an idle robot's normal state, logged a warning every
    hold_log_period (3600 lines an hour); now at each change of reason, then once per 10 periods (a review: the
    change's line came twice, a tick apart)."""
    gen = _node(tmp_path, _arm(), _arm(), enable_topic="deadman")
    node = next(gen)
    try:
        said: list[str] = []
        logger = node.get_logger()
        monkeypatch.setattr(node, "get_logger", lambda: type("L", (), {
            "warn": lambda self, m: said.append(m), "__getattr__": lambda self, k: getattr(logger, k)})())
        from rtc_ros.nodes import common

        now = [100.0]
        monkeypatch.setattr(common.time, "monotonic", lambda: now[0])  # (the throttle's clock)
        gate = node._enable.gate
        gate.on_message(False, now[0])  # released
        for _ in range(500):  # 10 s at 50 Hz, log period 1 s
            node._enable.apply(now[0], 1.0)
            now[0] += 0.02
        released = [m for m in said if "deadman released" in m]
        assert len(released) == 1, said  # (before: 10)
        for _ in range(500):  # 10 s more: once
            node._enable.apply(now[0], 1.0)
            now[0] += 0.02
        assert sum("deadman released" in m for m in said) == 2, said
    finally:
        gen.close()


def test_the_status_says_why_it_holds_and_what_stopped_it(node, monkeypatch) -> None:
    """A diagnostics-only walkthrough (2026-12-07): every hold read "holding position for N ticks" whether the policy
    was dead, too slow or refused; a protective stop said "~/resume to continue" though the executor resumes by
    itself, and a 1 s stop between two statuses showed nowhere. Now the hold says why, the stop says it resumes,
    and a stop over between two statuses is a WARN (and counted in protective_stops)."""
    from trajectory_msgs.msg import JointTrajectory

    from rtc_ros.nodes.executor_diagnostics import executor_status

    _starve(node, monkeypatch, 10)
    _, message, _ = executor_status(node)
    assert message.startswith("holding position for 0.") and "the executing chunk ran out and no newer one came; " \
        "nobody publishes /rtc/chunk" in message, message
    pub = node.create_publisher(JointTrajectory, "rtc/chunk", 10)  # someone publishes: refused chunks are the why
    old = node.core.next_step - 60
    node._on_chunk(conv.chunk_to_msg(np.zeros((50, len(JOINTS))), JOINTS, ChunkMeta(1, old, 1, 0, "rtc"),
                                     conv.ns_to_stamp(node.get_clock().now().nanoseconds), node.dt))
    _, message, vals = executor_status(node)
    assert "the executing chunk ran out" in message and "chunks refused, the newest: stale: " in message, message
    assert vals["last_rejected"].startswith("stale: ")
    node.destroy_publisher(pub)
    for _ in range(3):
        node._tick()
    node.stops.on_report(JointState(name=JOINTS[:7], position=[0.0] * 7))  # a stop of the left arm
    node._tick()
    _, message, vals = executor_status(node)
    assert message.startswith("protective stop 1 (holding ") and "resumes by itself when it ends" in message, message
    assert "~/resume" not in message and vals["protective_stops"] == 1
    node.stops.on_report(JointState())  # over
    node.stops.on_report(JointState(name=JOINTS[:7], position=[0.0] * 7))  # a second one, over before the next status
    node.stops.on_report(JointState())
    _, message, vals = executor_status(node)
    assert "a protective stop since the last status (stop 2, over)" in message and vals["protective_stops"] == 2
    _, message, _ = executor_status(node)
    assert "since the last status" not in message
    node.core.pause("~/pause")  # paused before the stop: it stays paused after it (a review: not "by itself")
    node.stops.on_report(JointState(name=JOINTS[:7], position=[0.0] * 7))
    _, message, _ = executor_status(node)
    assert message.startswith("protective stop 3 (holding ") and "stays paused after it (~/resume then)" in message


def test_waiting_for_joint_states_names_the_topic_and_why(node) -> None:
    """Before its first hold position the status names the resolved joint state topic and why nothing was taken
    (a two-robot walkthrough's namespace typo read only "waiting for joint states"): nobody publishes it, or the
    newest message was refused (a joint missing)."""
    from diagnostic_msgs.msg import DiagnosticStatus

    diags: list = []
    node._diag_pub.publish = diags.append
    node._publish_diagnostics()
    st = diags[-1].status[0]
    assert st.level == DiagnosticStatus.WARN and st.message.startswith(
        "waiting for joint states on /joint_states: nobody publishes it"), st.message
    pub = node.create_publisher(JointState, "joint_states", 10)
    partial = JointState(name=JOINTS[:-1], position=[0.0] * (len(JOINTS) - 1))
    partial.header.stamp = conv.ns_to_stamp(node.get_clock().now().nanoseconds)
    node._on_joint_state(partial)
    node._publish_diagnostics()
    message = diags[-1].status[0].message
    assert message.startswith("waiting for joint states on /joint_states: the newest was refused: ") and (
        JOINTS[-1] in message), message
    node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
    node._tick()
    node._publish_diagnostics()
    assert not diags[-1].status[0].message.startswith("waiting for joint states")
    node.destroy_publisher(pub)


def test_a_hold_names_a_chunk_publisher_that_sends_nothing(node, monkeypatch) -> None:
    """A SIGKILLed policy_inference stays in the graph until its DDS lease ends (~20 s): its executor said only
    "no chunk yet" meanwhile (a two-robot walkthrough). Now a hold with a chunk publisher listed but no chunk for
    more than 2 s says so."""
    import time as time_module

    from trajectory_msgs.msg import JointTrajectory

    from rtc_ros.nodes.executor_diagnostics import executor_status

    _starve(node, monkeypatch, 10)
    pub = node.create_publisher(JointTrajectory, "rtc/chunk", 10)  # listed, sends nothing
    now = [1000.0]
    monkeypatch.setattr(time_module, "monotonic", lambda: now[0])
    _, message, _ = executor_status(node)
    assert "the executing chunk ran out and no newer one came" in message and "no chunk arrived" not in message
    now[0] += 5.0
    _, message, _ = executor_status(node)
    assert message.endswith("the executing chunk ran out and no newer one came; 1 node publishes /rtc/chunk but no "
                            "chunk arrived for 5 s (an inference that slow, policy_inference hung, or killed: a killed "
                            "process stays listed until its DDS lease ends, ~20 s)"), message
    node.destroy_publisher(pub)


@pytest.mark.parametrize("call", ["pause", "hold"])
def test_an_operator_s_pause_while_muted_is_kept_at_the_unmute(node, call) -> None:
    """An audit: muted before it ever commanded (another publisher on its outputs), the executor answered an
    operator's ~/pause "already paused (...); it stays paused until ~/resume" -- and started as after a start when
    the other publisher left (the next chunk moved the arm). Without the operator's call it does start."""
    from rtc_ros.nodes.contention import node_fq_name  # noqa: F401 (the guard names nodes this way)

    node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
    node._tick()
    topic = node._arm_pubs[0][2].topic_name
    for operator in (False, True):
        node.outputs._graph.others = lambda: {topic: ["/teleop"]}
        node.outputs.check()
        assert node.outputs.muted and node.core.paused
        if operator:
            answer = getattr(node.operator, f"on_{call}")(Trigger.Request(), Trigger.Response())
            assert call == "hold" or answer.message.startswith("already paused"), answer.message
        node.outputs._graph.others = lambda: {}
        node.outputs.check()
        node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds + 1))
        node._tick()
        assert node.core.paused == operator, (operator, call)


def test_a_chunk_accepted_during_any_long_pause_is_dropped_at_the_resume(node) -> None:
    """An audit: only a ~/pause's length was measured at ~/resume, so a chunk accepted while paused after a
    re-sync (or start_paused, a measurement beyond the limits) ran at a resume however long after. Now the paused
    ticks count too: paused longer than max_chunk_age (1 s), the chunk is dropped and the executor waits for a new
    one; a short pause keeps it."""
    node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds))
    node._tick()
    for seq, ticks, dropped in ((0, 60, True), (1, 10, False)):  # 1.2 s and 0.2 s paused at 50 Hz
        node.operator.on_resync(Trigger.Request(), Trigger.Response())
        node._on_joint_state(_js(np.zeros(len(JOINTS)), node.get_clock().now().nanoseconds + 1))
        node._tick()
        node._on_chunk(_chunk_msg(node, np.full((50, len(JOINTS)), 0.01), JOINTS, seq=seq))
        assert node.core.executing_seq == seq  # accepted while paused (fresh)
        for _ in range(ticks):
            node._tick()
        answer = node.operator.on_resume(Trigger.Request(), Trigger.Response())
        assert answer.success and ("chunks dropped" in answer.message) == dropped, answer.message
        assert node.core.executing_seq == (-1 if dropped else seq)


def test_a_stop_report_naming_a_joint_twice_is_refused() -> None:
    """An audit: a protective-stop report naming a joint twice was read with the last position winning (a joint
    state naming one twice is refused): now refused too, naming the joints (the executor treats an unreadable stop
    report as a stop of every joint)."""
    from rtc_ros.nodes.conversions import held_joints

    assert held_joints(JointState(name=[JOINTS[0]], position=[0.1]), JOINTS) == ({0: 0.1}, [])
    with pytest.raises(ValueError, match=rf"names joints \['{JOINTS[0]}'\] more than once"):
        held_joints(JointState(name=[JOINTS[0], JOINTS[0]], position=[0.1, 2.9]), JOINTS)


def test_an_image_without_a_channel_order_and_a_report_without_positions_are_read_safely() -> None:
    """An audit: an `8UC3` frame (cv_bridge's default 'passthrough' of an OpenCV BGR image) was read as RGB, red and
    blue swapped in every observation: refused, naming the encoding. An executor report without positions (another
    executor's) gave an empty array, which failed every guided plan with an unnamed numpy error: None, as
    ExecutorReport.command says when not carried."""
    from sensor_msgs.msg import Image

    img = Image(height=2, width=2, encoding="8UC3", step=6, data=bytes(12))
    with pytest.raises(ValueError, match="'8UC3' does not say the channel order.*'bgr8' or 'rgb8'"):
        conv.image_to_rgb(img)
    img.encoding = "bgr8"
    img.data = bytes([0, 0, 255] * 4)  # red in BGR
    assert conv.image_to_rgb(img)[0, 0].tolist() == [255, 0, 0]
    msg = JointState()
    msg.header.frame_id = "rtc step=5 seq=1 takeover=3 consumed=1 hold=0"
    assert conv.parse_executor_state(msg).command is None
    assert conv.parse_executor_state(msg, conv.JointStateReader(JOINTS)).command is None
