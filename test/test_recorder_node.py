"""episode_recorder as a process: raw subscriptions, episode control, metadata, signals, bad dirs.

Every recorded message is decoded by three independent readers -- ``rosbags``, ``mcap`` +
``mcap-ros2-support`` and rclpy's own deserializer -- and compared with what was published.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, Int32, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from rtc_ros.runtime.contract import ChunkMeta  # noqa: E402

@pytest.fixture
def ros(ros_env: dict[str, str]) -> Any:
    """An rclpy context on the test run's random, localhost-only domain (conftest ``ros_env``; one per test)."""
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    yield ctx
    rclpy.try_shutdown(context=ctx)


def start_recorder(env: dict[str, str], out: Path, *params: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "rtc_ros.nodes.episode_recorder", "--ros-args",
            "-p", f"output_dir:={out}", "-p", "discovery_period:=0.2", "-p", "param_wait:=15.0",
            "-p", "camera_topics:=['camera/top/image_raw']"]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Driver:
    """Test-side node: publishers for every recorded topic + episode control + status listener."""

    def __init__(self, ctx: Any, name: str = "recorder_test_driver") -> None:
        self.node = Node(name, context=ctx)
        self.ctx = ctx
        from rclpy.executors import SingleThreadedExecutor

        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.status: list[dict[str, Any]] = []
        qos = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(String, "rtc/episode_status",
                                      lambda m: self.status.append(json.loads(m.data)), qos)
        self.ctl = self.node.create_publisher(String, "rtc/episode", 10)
        self.pubs = {
            "joint_states": self.node.create_publisher(JointState, "joint_states", 100),
            "rtc/chunk": self.node.create_publisher(JointTrajectory, "rtc/chunk", 10),
            "rtc/progress": self.node.create_publisher(Int32, "rtc/progress", 10),
            "left_controller/commands": self.node.create_publisher(Float64MultiArray, "left_controller/commands", 100),
            "camera/top/image_raw": self.node.create_publisher(
                Image, "camera/top/image_raw", QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)),
        }

    def spin_until(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        t0 = time.monotonic()
        while not cond():
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; status={self.status}")
            self.ex.spin_once(timeout_sec=0.05)

    def wait_ready(self) -> None:
        """Until the recorder has subscribed to every test topic (so nothing published is lost)."""
        self.spin_until(lambda: bool(self.status) and self.ctl.get_subscription_count() > 0
                        and all(p.get_subscription_count() > 0 for p in self.pubs.values()), 60, "recorder discovery")

    def command(self, cmd: dict[str, Any], expect_state: str) -> dict[str, Any]:
        n = len(self.status)
        self.ctl.publish(String(data=json.dumps(cmd)))
        self.spin_until(lambda: any(s["state"] == expect_state for s in self.status[n:]), 30, f"state {expect_state}")
        return [s for s in self.status[n:] if s["state"] == expect_state][-1]

    def publish_all(self, n: int, offset: int = 0) -> dict[str, list[Any]]:
        """Publish ``n`` messages on every topic with distinct values; returns them per topic."""
        sent: dict[str, list[Any]] = {k: [] for k in self.pubs}
        for i in range(offset, offset + n):
            js = JointState(name=["a", "b"], position=[float(i), -0.5 * i], velocity=[0.1, 0.2])
            js.header.frame_id = f"js{i}"
            chunk = JointTrajectory(joint_names=["a", "b"])
            chunk.header.frame_id = ChunkMeta(i, i, 3, 5, "rtc").encode()
            chunk.points = [JointTrajectoryPoint(positions=[i + 0.01 * k, float(k)]) for k in range(8)]
            img = Image(height=2, width=3, encoding="rgb8", step=9, data=bytes([(i + k) % 256 for k in range(18)]))
            msgs = {"joint_states": js, "rtc/chunk": chunk, "rtc/progress": Int32(data=i),
                    "left_controller/commands": Float64MultiArray(data=[float(i), 2.0 * i]),
                    "camera/top/image_raw": img}
            for k, m in msgs.items():
                self.pubs[k].publish(m)
                sent[k].append(m)
            self.ex.spin_once(timeout_sec=0.005)
        return sent

    def close(self) -> None:
        self.ex.remove_node(self.node)
        self.node.destroy_node()


def read_rosbags(bag: Path) -> dict[str, list[tuple[Any, bytes]]]:
    from rosbags.highlevel import AnyReader

    out: dict[str, list[tuple[Any, bytes]]] = {}
    with AnyReader([bag]) as r:
        for c, _, raw in r.messages():
            out.setdefault(c.topic, []).append((r.deserialize(raw, c.msgtype), raw))
    return out


def read_mcap(bag: Path) -> dict[str, list[Any]]:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    out: dict[str, list[Any]] = {}
    with open(bag / f"{bag.name}.mcap", "rb") as fh:
        for _, ch, _, m in make_reader(fh, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
            out.setdefault(ch.topic, []).append(m)
    return out


def check_bag(bag: Path, sent: dict[str, list[Any]], lossy_ok: tuple[str, ...] = ("camera/top/image_raw",)) -> None:
    """Every published message is in the bag, decoded identically by three readers."""
    from rclpy.serialization import deserialize_message

    rb = read_rosbags(bag)
    mc = read_mcap(bag)
    for topic, msgs in sent.items():
        key = "/" + topic
        assert key in rb, f"{key} missing from bag; topics {sorted(rb)}"
        got = rb[key]
        if topic in lossy_ok:  # best-effort camera: may drop under load, never corrupt
            assert 0 < len(got) <= len(msgs)
        else:
            assert len(got) == len(msgs), f"{key}: {len(got)} recorded, {len(msgs)} published"
        assert len(mc[key]) == len(got)
        for (m_rb, raw), m_mc in zip(got, mc[key]):
            m_ros = deserialize_message(raw, type(msgs[0]))  # the ROS deserializer reads the exact bytes
            assert m_ros in msgs
            if topic == "joint_states":
                assert list(m_rb.position) == list(m_mc.position) == list(m_ros.position)
                assert m_rb.header.frame_id == m_mc.header.frame_id == m_ros.header.frame_id
            elif topic == "rtc/chunk":
                meta = ChunkMeta.decode(m_mc.header.frame_id)
                assert [p.positions[0] for p in m_mc.points] == [meta.seq + 0.01 * k for k in range(8)]
                assert [list(p.positions) for p in m_rb.points] == [list(p.positions) for p in m_ros.points]
            elif topic == "rtc/progress":
                assert m_rb.data == m_mc.data == m_ros.data
            elif topic == "left_controller/commands":
                assert list(m_rb.data) == list(m_mc.data) == list(m_ros.data)
            elif topic == "camera/top/image_raw":
                assert bytes(m_rb.data) == bytes(m_mc.data) == bytes(m_ros.data)
        if topic not in lossy_ok:
            assert [list(_values(m)) for m, _ in got] == [list(_values(m)) for m in msgs]  # order kept


def _values(m: Any) -> Any:
    for f in ("position", "data"):
        if hasattr(m, f):
            return getattr(m, f) if f != "data" or not isinstance(m.data, int) else [m.data]
    return [p.positions[0] for p in m.points]


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 30) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"recorder did not exit on {sig}:\n{out}")
    return proc.returncode, out


def test_records_two_episodes_with_metadata(ros: Any, ros_env: dict[str, str], tmp_path: Path) -> None:
    # a stand-in for policy_inference whose parameters the recorder snapshots
    from rclpy.parameter import Parameter

    spec = tmp_path / "policy.yaml"
    spec.write_text("name: demo\nmodel: mlp_mixer\nweights: demo.safetensors\n")
    (tmp_path / "demo.safetensors").write_bytes(b"weights")
    fake = Node("policy_inference", context=ros, parameter_overrides=[
        Parameter("method", value="rtc"), Parameter("extra_latency_ms", value=100.0),
        Parameter("policy_spec", value=str(spec)), Parameter("horizon", value=8), Parameter("s_min", value=5),
        Parameter("beta", value=5.0), Parameter("rate_hz", value=50.0)],
        automatically_declare_parameters_from_overrides=True)
    drv = Driver(ros)
    drv.ex.add_node(fake)
    out = tmp_path / "episodes"
    proc = start_recorder(ros_env, out)
    try:
        drv.wait_ready()
        assert drv.status[-1]["state"] == "idle"
        st = drv.command({"cmd": "start", "meta": {"task": "unit", "operator": "pytest"}}, "recording")
        assert st["episode"] == "episode_0000"
        # wait until the parameter snapshot landed in the sidecar (async service calls)
        side = out / "episode_0000" / "episode_0000.json"
        drv.spin_until(lambda: side.is_file() and "method" in json.loads(side.read_text()).get("params", {})
                       .get("policy_inference", {}), 30, "parameter snapshot")
        sent = drv.publish_all(40)
        # the simulator's status: its task and protective-stop counts go into the sidecar's 'sim' entry
        sim_pub = drv.node.create_publisher(String, "sim/status", 10)
        drv.spin_until(lambda: sim_pub.get_subscription_count() > 0, 30, "sim/status subscription")
        for stops in (2, 3):
            sim_pub.publish(String(data=json.dumps({"episode": 4, "seed": 9, "state": "running", "task": "conveyor_cube",
                                                    "success": False, "progress": 2, "step": 80, "cube": [0, 0.5, 0],
                                                    "protective_stops": stops,
                                                    "protective_stops_by_arm": {"left": 0, "right": stops}})))
        t_end = time.monotonic() + 1.0
        drv.spin_until(lambda: time.monotonic() > t_end, 5, "in-flight messages")
        st = drv.command({"cmd": "stop", "success": True, "score": 3, "notes": "clean"}, "idle")
        assert st["last_status"] == "completed"
        # second episode, different values, operator sets method/latency explicitly
        drv.command({"cmd": "start", "meta": {"method": "sync", "extra_latency_ms": 200}}, "recording")
        sent2 = drv.publish_all(15, offset=1000)
        t_end = time.monotonic() + 1.0
        drv.spin_until(lambda: time.monotonic() > t_end, 5, "in-flight messages")
        drv.command({"cmd": "stop", "success": False, "score": 1}, "idle")
        drv.ctl.publish(String(data=json.dumps({"cmd": "score", "score": 1.5})))  # operator amends later
        t_end = time.monotonic() + 1.0
        drv.spin_until(lambda: time.monotonic() > t_end, 5, "score amend")
    finally:
        rc, log = stop_process(proc)
        drv.ex.remove_node(fake)
        fake.destroy_node()
        drv.close()
    assert rc == 0, log
    check_bag(out / "episode_0000", sent)
    check_bag(out / "episode_0001", sent2)
    m0 = json.loads((out / "episode_0000" / "episode_0000.json").read_text())
    assert m0["status"] == "completed" and m0["success"] is True and m0["score"] == 3 and m0["notes"] == "clean"
    assert m0["task"] == "unit" and m0["method"] == "rtc" and m0["extra_latency_ms"] == 100.0
    assert m0["dt"] == pytest.approx(0.02) and m0["rtc"]["horizon"] == 8 and m0["rtc"]["beta"] == 5.0
    assert m0["policy_spec"]["spec"]["name"] == "demo" and len(m0["policy_spec"]["weights_sha256"]) == 64
    assert m0["params"]["policy_inference"]["extra_latency_ms"] == 100.0
    assert m0["duration_s"] > 1.0 and m0["topics"]["/joint_states"]["count"] == 40
    assert m0["sim"] == {"task": "conveyor_cube", "episode": 4, "seed": 9, "success": False, "progress": 2,
                         "step": 80, "protective_stops": 3, "protective_stops_by_arm": {"left": 0, "right": 3}}
    assert m0["topics"]["/sim/status"]["count"] == 2
    m1 = json.loads((out / "episode_0001" / "episode_0001.json").read_text())
    assert m1["method"] == "sync" and m1["extra_latency_ms"] == 200 and m1["success"] is False
    assert m1["score"] == 1.5 and m1["scored_after_stop"] is True
    assert "sim" not in m1  # no simulator status during the second episode
    # the bag's own metadata carries the episode metadata too
    import yaml

    info = yaml.safe_load((out / "episode_0000" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert json.loads(info["custom_data"]["rtc_episode"])["score"] == 3
    assert info["storage_identifier"] == "mcap"


@pytest.mark.parametrize("sig,burst", [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGHUP, False),
                                       (signal.SIGINT, True)])
def test_signal_mid_episode_leaves_readable_bag(ros: Any, ros_env: dict[str, str], tmp_path: Path, sig: int,
                                               burst: bool) -> None:
    """One signal, or (``burst``) Ctrl-C in a terminal and then ``ros2 launch``'s own SIGINT: more SIGINTs
    arrive while the recorder closes the bag and while Python finalizes; none may kill it (exit -2)."""
    drv = Driver(ros, f"recorder_sig_driver_{int(sig)}_{int(burst)}")
    out = tmp_path / "episodes"
    proc = start_recorder(ros_env, out)
    try:
        drv.wait_ready()
        drv.command({"cmd": "start", "meta": {"method": "naive"}}, "recording")
        sent = drv.publish_all(25)
        t_end = time.monotonic() + 1.5
        drv.spin_until(lambda: time.monotonic() > t_end, 5, "in-flight messages")
        t_end = time.monotonic() + 30
        while burst and proc.poll() is None and time.monotonic() < t_end:
            proc.send_signal(sig)
            time.sleep(0.002)
        rc, log = stop_process(proc, sig)
    finally:
        if proc.poll() is None:
            proc.kill()
        drv.close()
    assert rc == 0, log
    assert "closing episode" in log
    check_bag(out / "episode_0000", sent)
    meta = json.loads((out / "episode_0000" / "episode_0000.json").read_text())
    assert meta["status"] == "interrupted" and meta["reason"] == signal.Signals(sig).name
    assert meta["method"] == "naive" and meta["message_count"] >= 4 * 25


def test_unwritable_or_full_directory_fails_at_start(ros_env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "a_file"
    f.write_text("not a directory")
    proc = start_recorder(ros_env, f / "episodes")
    log, _ = proc.communicate(timeout=90)  # exits by itself, before any episode
    assert proc.returncode == 1 and "cannot create recording directory" in log, log
    proc = start_recorder(ros_env, tmp_path / "ok", "min_free_mb:=1000000000.0")
    log, _ = proc.communicate(timeout=90)
    assert proc.returncode == 1 and "MB free" in log and "min_free_mb" in log, log


def test_best_effort_publisher_after_explicit_type(ros: Any, ros_env: dict[str, str], tmp_path: Path) -> None:
    """A topic subscribed before any publisher exists (``topic_types``) is re-subscribed best effort
    when a best-effort camera appears -- otherwise DDS would never match them and nothing is recorded."""
    drv = Driver(ros, "recorder_qos_driver")
    out = tmp_path / "episodes"
    proc = start_recorder(ros_env, out, "topic_types:=['cam2/image_raw=sensor_msgs/msg/Image']",
                          "camera_topics:=['cam2/image_raw']")
    try:
        drv.spin_until(lambda: bool(drv.status) and drv.ctl.get_subscription_count() > 0, 60, "recorder")
        drv.command({"cmd": "start"}, "recording")
        pub = drv.node.create_publisher(Image, "cam2/image_raw",
                                        QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
        drv.spin_until(lambda: pub.get_subscription_count() > 0, 60, "best-effort match")
        for i in range(20):
            pub.publish(Image(height=1, width=1, encoding="mono8", step=1, data=bytes([i])))
            drv.ex.spin_once(timeout_sec=0.02)
        t_end = time.monotonic() + 1.0
        drv.spin_until(lambda: time.monotonic() > t_end, 5, "in-flight messages")
        drv.command({"cmd": "stop"}, "idle")
    finally:
        rc, log = stop_process(proc)
        drv.close()
    assert rc == 0 and "re-subscribing /cam2/image_raw" in log, log
    got = read_mcap(out / "episode_0000").get("/cam2/image_raw", [])
    assert len(got) >= 15 and all(len(m.data) == 1 for m in got)


def _call(drv: "Driver", srv_type: Any, name: str, request: Any, timeout: float = 20.0) -> Any:
    client = drv.node.create_client(srv_type, name)
    end = time.monotonic() + timeout
    while not client.service_is_ready() and time.monotonic() < end:
        drv.ex.spin_once(timeout_sec=0.05)
    assert client.service_is_ready(), f"no service {name}"
    fut = client.call_async(request)
    while not fut.done() and time.monotonic() < end:
        drv.ex.spin_once(timeout_sec=0.05)
    assert fut.done(), f"{name} did not answer"
    return fut.result()


def test_episode_services_start_stop_abort(ros: Any, ros_env: dict[str, str], tmp_path: Path) -> None:
    """Operator controls through std_srvs: ~/start_episode, ~/stop_episode (data = success), ~/abort_episode."""
    from std_srvs.srv import SetBool, Trigger

    drv = Driver(ros, "recorder_srv_driver")
    out = tmp_path / "episodes"
    proc = start_recorder(ros_env, out, "stop_grace:=0.0")
    try:
        drv.wait_ready()
        assert not _call(drv, SetBool, "/episode_recorder/stop_episode", SetBool.Request(data=True)).success
        r = _call(drv, Trigger, "/episode_recorder/start_episode", Trigger.Request())
        assert r.success and "episode_0000" in r.message
        r = _call(drv, Trigger, "/episode_recorder/start_episode", Trigger.Request())  # a second press: refused
        assert not r.success and "already recording episode_0000" in r.message, r.message  # (it cut the demo)
        drv.publish_all(5)
        assert _call(drv, SetBool, "/episode_recorder/stop_episode", SetBool.Request(data=False)).success
        drv.spin_until(lambda: (out / "episode_0000" / "metadata.yaml").exists(), 10, "episode 0 closed")
        assert _call(drv, Trigger, "/episode_recorder/start_episode", Trigger.Request()).success
        assert _call(drv, Trigger, "/episode_recorder/abort_episode", Trigger.Request()).success
        drv.spin_until(lambda: (out / "episode_0001" / "metadata.yaml").exists(), 10, "episode 1 closed")
    finally:
        stop_process(proc)
        drv.close()
    first = json.loads((out / "episode_0000" / "episode_0000.json").read_text())
    second = json.loads((out / "episode_0001" / "episode_0001.json").read_text())
    assert first["status"] == "completed" and first["success"] is False
    assert second["status"] == "aborted"
