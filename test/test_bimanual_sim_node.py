"""bimanual_sim node: command parsing and episode logic (no DDS), then the node over real DDS."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from rtc_ros.nodes.conversions import JointStateReader
from rtc_ros.sim import BimanualSim
from rtc_ros.sim.episode import STATE_DONE, STATE_HOLDING, STATE_RUNNING, SimEpisodeRunner, pick_trajectory_point


# ----------------------------------------------------------------------------------- no DDS
def _traj(names: list[str], points: list[list[float]], stamp_ns: int = 0, dt: float = 0.02):
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    msg = JointTrajectory()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.joint_names = names
    for i, p in enumerate(points):
        pt = JointTrajectoryPoint()
        pt.positions = p
        ns = int(round((i + 1) * dt * 1e9))
        pt.time_from_start = Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
        msg.points.append(pt)
    return msg


def test_trajectory_point_reordered_by_name_and_due_time() -> None:
    names = ["a", "b", "c"]
    msg = _traj(["c", "a", "b"], [[3.0, 1.0, 2.0], [30.0, 10.0, 20.0], [300.0, 100.0, 200.0]], stamp_ns=10**9)
    # at the stamp: the first point (due 20 ms later) applies at the next tick
    np.testing.assert_allclose(pick_trajectory_point(msg, names, 10**9, 0.02), [1.0, 2.0, 3.0])
    # 25 ms later the second point (due at +40 ms) is within one period
    np.testing.assert_allclose(pick_trajectory_point(msg, names, 10**9 + 25_000_000, 0.02), [10.0, 20.0, 30.0])
    with pytest.raises(ValueError, match="lacks joints"):
        pick_trajectory_point(msg, ["a", "zz"], 0, 0.02)


def test_trajectory_naming_a_joint_twice_is_refused() -> None:
    """The JointState path refuses it; the trajectory path took the last value silently."""
    msg = _traj(["a", "b", "a"], [[1.0, 2.0, 99.0]])
    with pytest.raises(ValueError, match=r"names joints \['a'\] more than once"):
        pick_trajectory_point(msg, ["a", "b"], 0, 0.02)


def test_sim_clock_stamps_are_on_the_20ms_grid() -> None:
    """``publish_clock``: tick k is stamped k x 20 ms exactly (float k x 0.02 x 1e9 fell 1 ns short for 1.2 %
    of ticks, e.g. 205: a 20 ms timer on that clock then skipped a tick)."""
    from types import SimpleNamespace

    from rtc_ros.sim.node import BimanualSimNode

    for k in (1, 205, 207, 410, 803, 199_999):
        fake = SimpleNamespace(p=SimpleNamespace(publish_clock=True), runner=SimpleNamespace(total_ticks=k))
        st = BimanualSimNode._stamp(fake)
        assert st.sec * 1_000_000_000 + st.nanosec == k * 20_000_000, k


@pytest.mark.parametrize("req", [{"seed": 5, "hold_s": float("nan")}, {"seed": 5, "hold_s": float("inf")},
                                 {"seed": -1}, {"seed": 1.9}, {"seed": True}, {"seed": "5"}, {"hold_s": -1.0},
                                 {"seed": 2**40}])
def test_bad_reset_request_changes_nothing(req: dict) -> None:
    """A NaN hold teleported the sim and counted a new episode before failing; a negative seed was lost in
    the loop thread. Now the request is refused whole, with its field named, by the runner and the node."""
    from types import SimpleNamespace

    from std_msgs.msg import String

    from rtc_ros.sim.node import BimanualSimNode

    runner = SimEpisodeRunner(sim=None, reset_hold_s=0.5)  # type: ignore[arg-type]  (the sim is not touched)
    with pytest.raises(ValueError, match="seed|hold_s"):
        runner.request_reset(req.get("seed"), req.get("hold_s"))
    assert runner._pending_reset is None
    errors: list[str] = []
    log = SimpleNamespace(error=errors.append, info=lambda _m: None)
    fake = SimpleNamespace(runner=runner, get_logger=lambda: log)
    BimanualSimNode._on_reset(fake, String(data=json.dumps(req)))
    assert runner._pending_reset is None and len(errors) == 1 and "no reset" in errors[0], errors
    runner.request_reset(3, 0.0)  # a good one is taken
    assert runner._pending_reset == {"seed": 3, "hold_s": 0.0}


def test_joint_state_command_by_name() -> None:
    from sensor_msgs.msg import JointState

    msg = JointState(name=["x", "b", "a"], position=[9.0, 2.0, 1.0])
    np.testing.assert_allclose(JointStateReader(["a", "b"]).positions(msg), [1.0, 2.0])
    with pytest.raises(ValueError, match=r"NaN or Inf: \['b'\]"):  # (the joint named: a fault walkthrough)
        JointStateReader(["a", "b"]).positions(JointState(name=["a", "b"], position=[0.0, float("nan")]))
    with pytest.raises(ValueError, match=r"names joints \['a'\] more than once"):
        JointStateReader(["a", "b"]).positions(JointState(name=["a", "b", "a"], position=[1.0, 2.0, 3.0]))


@pytest.fixture(scope="module")
def sim() -> BimanualSim:
    s = BimanualSim(max_episode_steps=40, protective_stops=False)  # steps of 0.3 rad: command following only
    yield s
    s.close()


def test_runner_holds_after_reset_then_follows_commands(sim: BimanualSim) -> None:
    r = SimEpisodeRunner(sim, reset_hold_s=0.1)
    r.request_reset(seed=3)
    home = sim.home_position
    res = r.tick()
    assert res.state == STATE_HOLDING and r.episode == 0
    r.set_arm_target(0, home[:7] + np.array([0.2, 0, 0, 0, 0, 0, 0]))  # dropped while holding (e.g. a
    for _ in range(4):  # command of the old episode that arrived after the reset): not the target afterwards
        res = r.tick()
    np.testing.assert_allclose(res.positions, home, atol=1e-9)  # frozen at the start pose
    assert res.state == STATE_RUNNING and sim.step_count == 0
    np.testing.assert_allclose(r.target, home)  # before 2026-12-05 the dropped command became the target
    r.set_arm_target(0, home[:7] + np.array([0.3, 0, 0, 0, 0, 0, 0]))
    for _ in range(30):
        res = r.tick()
    assert res.positions[0] == pytest.approx(home[0] + 0.3, abs=0.03)  # left waist followed the target
    np.testing.assert_allclose(res.positions[7:], home[7:], atol=0.02)  # right arm held
    for _ in range(15):
        res = r.tick()
    assert res.state == STATE_DONE  # truncated at max_episode_steps = 40
    sim.reset(seed=11)
    expected = sim.cube_pose()[:3].copy()
    sim.reset(seed=12)
    r.request_reset(seed=11)
    res = r.tick()
    np.testing.assert_allclose(sim.cube_pose()[:3], expected)  # seeded cube placement
    assert res.changed and r.episode == 1 and r.status()["seed"] == 11 and r.status()["progress"] == 0
    with pytest.raises(ValueError):
        r.set_arm_target(1, np.zeros(6))


def test_runner_takes_one_command_per_tick_in_arrival_order(sim: BimanualSim) -> None:
    """Two commands that arrive within one tick (two unsynchronised 50 Hz loops over DDS) are applied at
    consecutive ticks, not the newest alone (which would double the commanded step); more than
    max_queued waiting: the oldest are dropped; a reset drops the old episode's commands."""
    r = SimEpisodeRunner(sim, reset_hold_s=0.0, max_queued=2)
    r.request_reset(seed=3)
    r.tick()
    home = sim.home_position
    step = np.zeros(7)
    step[0] = 0.01
    r.set_arm_target(0, home[:7] + step)
    r.set_arm_target(0, home[:7] + 2 * step)  # arrived in the same tick
    r.tick()
    assert r.target[0] == pytest.approx(home[0] + 0.01)
    r.tick()  # nothing new arrived: the waiting one is applied now
    assert r.target[0] == pytest.approx(home[0] + 0.02)
    r.tick()
    assert r.target[0] == pytest.approx(home[0] + 0.02)  # then held
    for k in range(3, 8):  # five at once: only the newest max_queued + 1 = 3 are kept
        r.set_arm_target(0, home[:7] + k * step)
    got = []
    for _ in range(4):
        r.tick()
        got.append(round((r.target[0] - home[0]) / 0.01))
    assert got == [5, 6, 7, 7]
    r.set_arm_target(0, home[:7] + 9 * step)
    r.request_reset(seed=3)
    r.tick()
    assert r.target[0] == pytest.approx(home[0])  # the old episode's command is gone


# ----------------------------------------------------------------------------------- over DDS
def test_node_over_dds(start_node, ros_env) -> None:
    """Rate, all three command formats, camera, progress and a seeded reset through real DDS."""
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64MultiArray, Int32, String

    proc = start_node("rtc_ros.sim.node", "-p", "camera_rate_hz:=10.0", "-p", "reset_hold_s:=0.2",
                      "-p", "seed:=5", "-p", "protective_stops:=false")  # the step commands below would trip
    rclpy.init()
    node = rclpy.create_node("test_bimanual_sim")
    rel = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
    js: list[tuple[float, JointState]] = []
    imgs: list[Image] = []
    prog: list[int] = []
    status: list[dict] = []
    node.create_subscription(JointState, "joint_states", lambda m: js.append((time.monotonic(), m)), rel)
    node.create_subscription(Image, "cam_high/image_raw", imgs.append, rel)
    node.create_subscription(Int32, "rtc/progress", lambda m: prog.append(m.data), rel)
    node.create_subscription(String, "sim/status", lambda m: status.append(json.loads(m.data)), rel)
    f64 = node.create_publisher(Float64MultiArray, "left_controller/commands", rel)
    jsc = node.create_publisher(JointState, "right/joint_commands", rel)
    reset = node.create_publisher(String, "sim/reset", rel)

    def spin(seconds: float, until=None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.02)
            if until is not None and until():
                return

    try:
        spin(30.0, until=lambda: len(js) > 20 and imgs)
        assert js, "no joint_states from bimanual_sim:\n" + proc.output()
        js.clear()
        spin(2.0)
        # the node's rate from its own header stamps: receipt times in this process also carry its spin delays
        t = np.array([m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for _, m in js])
        # the median period: physics and rendering stalls of the loaded machine skip a deadline now and then
        # (the loop does not catch up), which lowers a count over 2 s but not the period a tick keeps
        rate = 1.0 / float(np.median(np.diff(t)))
        assert 45.0 < rate < 55.0, f"joint_states at {rate:.1f} Hz"
        last = js[-1][1]
        assert len(last.name) == 14 and last.name[0] == "left_waist" and len(last.velocity) == 14
        img = imgs[-1]
        assert (img.width, img.height, img.encoding) == (32, 32, "rgb8") and len(img.data) == 32 * 32 * 3
        assert prog and all(0 <= p <= 5 for p in prog)
        q0 = np.array(last.position)
        # float64 on the left arm, JointState on the right arm (both by the executor's formats)
        left = q0[:7].copy()
        left[0] += 0.25
        right = JointState(name=[f"right_{j}" for j in ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle",
                                                        "wrist_rotate", "gripper")], position=(q0[7:] + [-0.2, 0, 0, 0, 0, 0, 0]).tolist())
        for _ in range(5):
            f64.publish(Float64MultiArray(data=left.tolist()))
            jsc.publish(right)
            spin(0.05)
        target = (q0[0] + 0.25, q0[7] - 0.2)  # (a loaded machine's sim runs slower than real time: until there)
        spin(10.0, until=lambda: abs(js[-1][1].position[0] - target[0]) < 0.03
             and abs(js[-1][1].position[7] - target[1]) < 0.03)
        q1 = np.array(js[-1][1].position)
        assert q1[0] == pytest.approx(q0[0] + 0.25, abs=0.03), (q0[0], q1[0])
        assert q1[7] == pytest.approx(q0[7] - 0.2, abs=0.03), (q0[7], q1[7])
        # seeded reset: back to the start pose, cube where BimanualSim puts it for that seed
        ep = status[-1]["episode"]
        reset.publish(String(data=json.dumps({"seed": 42, "hold_s": 0.2})))
        spin(5.0, until=lambda: status and status[-1]["episode"] > ep and status[-1]["state"] == "running")
        st = status[-1]
        assert st["episode"] == ep + 1 and st["seed"] == 42, st
        ref = BimanualSim()
        ref.reset(42)
        np.testing.assert_allclose(st["cube"], ref.cube_pose()[:3], atol=2e-3)
        home = ref.home_position[:6]  # (joint_states and sim/status are two topics: wait for the first to show it)
        spin(5.0, until=lambda: np.abs(np.array(js[-1][1].position)[:6] - home).max() < 0.05)
        np.testing.assert_allclose(np.array(js[-1][1].position)[:6], home, atol=0.05)
        ref.close()
        assert "holding" in [s["state"] for s in status[-20:]] or st["step"] < 20
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    assert proc.stop() in (0, -2, None)


def test_node_clock_protective_stop_and_refusal(start_node, ros_env) -> None:
    """``publish_clock``: /clock advances 20 ms of sim time per tick; a command jump trips a protective
    stop (on by default) reported on ``sim/protective_stops``, ``sim/status`` and ``robot_stopped`` (empty,
    the left arm's 7 joints and their held positions while it holds, empty again after the 1 s recovery);
    a bad camera name is refused."""
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray, String

    bad = start_node("rtc_ros.sim.node", "-p", "camera:=no_such_camera")
    left = [f"vx300s_left/j{i}" for i in range(7)]  # a real robot's names: robot_stopped must use them too
    proc = start_node("rtc_ros.sim.node", "-p", "publish_clock:=true", "-p", "camera_rate_hz:=0.0",
                      "-p", f"left.joint_names:=[{','.join(left)}]")
    rclpy.init()
    node = rclpy.create_node("test_bimanual_sim_clock")
    rel = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    clocks: list[int] = []
    stops: list[dict] = []
    status: list[dict] = []
    node.create_subscription(Clock, "/clock", lambda m: clocks.append(m.clock.sec * 10**9 + m.clock.nanosec), 100)
    node.create_subscription(String, "sim/protective_stops", lambda m: stops.append(json.loads(m.data)), rel)
    node.create_subscription(String, "sim/status", lambda m: status.append(json.loads(m.data)), rel)
    stopped: list[bool] = []
    reports: list[JointState] = []
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)

    def on_stopped(m: JointState) -> None:
        reports.append(m)
        stopped.append(bool(m.name))

    node.create_subscription(JointState, "robot_stopped", on_stopped, latched)
    f64 = node.create_publisher(Float64MultiArray, "left_controller/commands", rel)
    try:
        end = time.monotonic() + 30.0
        while time.monotonic() < end and (len(clocks) < 60 or not status):
            rclpy.spin_once(node, timeout_sec=0.02)
        jump = [0.5, -0.96, 1.16, 0.0, -0.3, 0.0, 0.5]  # far from the ALOHA start pose in one tick
        end = time.monotonic() + 10.0
        while time.monotonic() < end and not stops:
            f64.publish(Float64MultiArray(data=jump))
            rclpy.spin_once(node, timeout_sec=0.02)
        end = time.monotonic() + 2.0
        while time.monotonic() < end and not (status and status[-1].get("protective_stops", 0) >= 1):
            rclpy.spin_once(node, timeout_sec=0.02)
        end = time.monotonic() + 5.0  # the recovery (1 s) ends: robot_stopped goes false again
        while time.monotonic() < end and not (True in stopped and stopped[-1] is False):
            rclpy.spin_once(node, timeout_sec=0.02)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    assert len(clocks) >= 60, proc.output()
    steps = np.diff(clocks[-50:])
    assert np.all(steps > 0) and np.median(steps) == 20_000_000
    assert all(c % 20_000_000 == 0 for c in clocks), [c for c in clocks if c % 20_000_000][:3]  # on the grid
    assert stops, "no protective stop reported:\n" + proc.output()
    ev = stops[0]["event"]
    assert ev["arm"] == "left" and ev["reason"] in ("velocity", "torque") and stops[0]["count"] >= 1
    assert status[-1]["protective_stops"] >= 1 and status[-1]["protective_stops_by_arm"]["left"] >= 1
    assert stopped and stopped[0] is False and True in stopped and stopped[-1] is False, stopped
    held = next(m for m in reports if m.name)
    assert list(held.name) == left
    assert len(held.position) == 7 and np.all(np.isfinite(held.position))
    assert not np.allclose(held.position[:6], jump[:6])  # where the arm stood, not the command that tripped
    assert bad.proc.wait(30) == 2 and "refusing to start" in bad.output() and "no_such_camera" in bad.output()


def test_deadline_loop_keeps_absolute_deadlines_and_skips_after_overrun() -> None:
    """Fake clock: ticks at t0 + k * period; one stall of 3.5 periods counts one overrun and skips
    the missed deadlines (no catch-up burst); a period change applies from the next tick."""
    from rtc_ros.nodes.deadline import run_deadline_loop

    now = [0.0]
    ticks: list[float] = []
    period = [0.02]

    def tick() -> None:
        ticks.append(now[0])
        if len(ticks) == 3:
            now[0] += 0.07  # stall
        if len(ticks) == 6:
            period[0] = 0.01

    def sleep(s: float) -> None:
        now[0] += s

    overruns = run_deadline_loop(tick, lambda: period[0], lambda: len(ticks) < 9, clock=lambda: now[0], sleep=sleep)
    assert overruns == 1
    np.testing.assert_allclose(ticks[:3], [0.02, 0.04, 0.06])
    assert ticks[3] == pytest.approx(0.14)  # no burst: the next deadline of the grid after the stall
    assert np.diff(ticks[3:6]) == pytest.approx([0.02, 0.02])
    assert np.diff(ticks[5:]) == pytest.approx([0.01, 0.01, 0.01])


@pytest.mark.parametrize("min_gap,gaps_ms", [
    (0.5, [20, 20, 39, 21, 20, 20, 45, 15, 20]),  # the executor: no two tick starts ~1 ms apart
    (0.0, [20, 20, 39, 1, 20, 20, 45, 0, 15]),  # the simulator: catches up (its time is the tick count)
])
def test_deadline_loop_late_wake_up(min_gap: float, gaps_ms: list[int]) -> None:
    """Fake clock: wake-ups 19 and 25 ms late at 50 Hz. With min_gap the next tick keeps at least half a
    period from a late one's start (one overrun each); without, it follows on the grid at once."""
    from rtc_ros.nodes.deadline import run_deadline_loop

    now, ticks, wakes, late = [0.0], [], [0], []

    def sleep(s: float) -> None:
        wakes[0] += 1
        now[0] += s + {4: 0.019, 8: 0.025}.get(wakes[0], 0.0)

    overruns = run_deadline_loop(lambda: ticks.append(now[0]), lambda: 0.02, lambda: len(ticks) < 10,
                                 on_overrun=late.append, clock=lambda: now[0], sleep=sleep, min_gap=min_gap)
    assert np.diff(ticks) * 1e3 == pytest.approx(gaps_ms, abs=1e-6)
    assert overruns == len(late) == (2 if min_gap else 0)
    if min_gap:
        assert late == pytest.approx([0.019, 0.025])


def test_a_chunk_with_nan_names_where() -> None:
    """A refused chunk's message names the first non-finite point and joint (in the executor's order)."""
    from rtc_ros.nodes.conversions import ChunkFormatError, chunk_to_msg, msg_to_chunk, ns_to_stamp
    from rtc_ros.runtime.contract import ChunkMeta

    chunk = np.zeros((4, 3))
    chunk[2, 1] = np.inf
    msg = chunk_to_msg(chunk, ["c", "b", "a"], ChunkMeta(7, 3, 0, 0, "rtc"), ns_to_stamp(0), 0.02)
    with pytest.raises(ChunkFormatError, match="first at point 2, joint b"):  # (column 1 of c, b, a: b)
        msg_to_chunk(msg, ["a", "b", "c"], 4, 0.02)
