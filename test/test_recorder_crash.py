"""A SIGKILL'd episode_recorder (a real process) loses at most ~1 s and its bag is repaired by the next start.

Also the recorder's parameter refusals that name the parameter and the value (``flush_period``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402

RECORDER = "rtc_ros.nodes.episode_recorder"


def _read_both(bag: Path) -> list[tuple[int, float]]:
    """(receive time ns, position[0]) of every /joint_states message, read by rosbags and by mcap (equal)."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    from rosbags.highlevel import AnyReader

    with AnyReader([bag]) as r:
        rb = [(ts, float(r.deserialize(raw, c.msgtype).position[0]))
              for c, ts, raw in r.messages() if c.topic == "/joint_states"]
    with open(bag / f"{bag.name}.mcap", "rb") as fh:
        mc = [(m.log_time, float(d.position[0])) for _, ch, m, d in
              make_reader(fh, decoder_factories=[DecoderFactory()]).iter_decoded_messages()
              if ch.topic == "/joint_states"]
    assert rb == mc
    return rb


def test_sigkill_mid_episode_is_repaired_by_next_start(ros_env: dict[str, str], start_node: Any,
                                                       tmp_path: Path) -> None:
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    node = Node("crash_driver", context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    status: list[dict[str, Any]] = []
    node.create_subscription(String, "rtc/episode_status", lambda m: status.append(json.loads(m.data)),
                             QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                        reliability=ReliabilityPolicy.RELIABLE))
    pub = node.create_publisher(JointState, "joint_states", 100)
    out = tmp_path / "episodes"
    args = ("-p", f"output_dir:={out}", "-p", "discovery_period:=0.2", "-p", "param_nodes:=[]")
    try:
        rec = start_node(RECORDER, *args, "-p", "autostart:=true")  # default flush_period (0.5 s)
        t0 = time.monotonic()
        while not (pub.get_subscription_count() > 0 and any(s["state"] == "recording" for s in status)):
            assert time.monotonic() - t0 < 60 and rec.alive(), f"recorder not recording: {status}\n{rec.tail()}"
            ex.spin_once(timeout_sec=0.05)
        time.sleep(0.5)  # the subscription is matched on both sides
        i, t_next = 0, time.monotonic()
        while i < 250:  # 2.5 s at 100 Hz
            js = JointState(name=["a"], position=[float(i)])
            js.header.stamp = node.get_clock().now().to_msg()
            pub.publish(js)
            i += 1
            t_next += 0.01
            time.sleep(max(0.0, t_next - time.monotonic()))
        kill_ns = time.time_ns()
        rec.proc.kill()  # SIGKILL mid-episode, while messages still arrive
        rec.proc.wait(10)
        for _ in range(20):
            pub.publish(JointState(name=["a"], position=[-1.0]))
            time.sleep(0.01)
        bag = out / "episode_0000"
        side = json.loads((bag / "episode_0000.json").read_text())
        assert side["status"] == "recording" and not (bag / "metadata.yaml").exists()
        from mcap.reader import make_reader

        with open(bag / "episode_0000.mcap", "rb") as fh:  # the file is there ...
            with pytest.raises(Exception) as fault:  # ... and unreadable to the plain reader: the measured fault
                list(make_reader(fh).iter_messages())
        assert not isinstance(fault.value, OSError), fault.value  # an mcap decoding error, not a missing file
        # the next start repairs it
        rec2 = start_node(RECORDER, *args)
        assert rec2.wait_for_output("recording to", 60), rec2.tail()
        assert rec2.wait_for_output("recovered:", 30), rec2.tail()
    finally:
        ex.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
    got = _read_both(bag)
    n = len(got)
    assert [p for _, p in got] == [float(k) for k in range(n)]  # a gap-free prefix of what was sent
    loss_s = (kill_ns - got[-1][0]) * 1e-9
    print(f"SIGKILL: {n} of {i} messages kept, last one {loss_s:.3f} s before the kill")
    # at most about one flush period (0.5 s) of messages lost, plus the loaded machine's lag in the recorder
    # (without the periodic flush nothing of the ~25 KB would reach the file: n > 100 fails)
    assert n > 100 and loss_s <= 2 * 0.5 + 1.5, (n, loss_s)
    meta = json.loads((bag / "episode_0000.json").read_text())
    assert meta["status"] == "recovered" and meta["recovery"]["previous_status"] == "recording"
    own = meta["topics"].get("/diagnostics", {}).get("count", 0)  # (the recorder's own status, since 2026-12-07)
    assert meta["recovery"]["message_count"] == n + own and meta["recovery"]["last_ns"] >= got[-1][0]
    assert meta["topics"]["/joint_states"]["count"] == n and meta["writer"]["pid"] == rec.proc.pid
    assert (bag / "episode_0000.mcap.broken").is_file()
    from rtc_ros.recording.episode import load_episodes

    ep = load_episodes(bag)[0]
    assert ep.meta["status"] == "recovered" and ep.joint_states is not None and len(ep.joint_states.t) == n


def test_recorder_refusals_name_the_parameter(start_node: Any, tmp_path: Path) -> None:
    cases = [("flush_period:=-1", "'flush_period' = -1"), ("flush_period:=0.0", "'flush_period' = 0.0")]
    procs = [(start_node(RECORDER, "-p", f"output_dir:={tmp_path / 'out'}", "-p", arg), needle)
             for arg, needle in cases]
    for proc, needle in procs:
        proc.proc.wait(timeout=120)
        out = proc.output()
        assert proc.proc.returncode == 2 and "refusing to start" in out and needle in out, out
        assert "Traceback" not in out, out
    assert "out of range" in procs[1][0].output() and "not 50" not in procs[1][0].output()
