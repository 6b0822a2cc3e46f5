"""End to end: record scripted demonstrations with episode_recorder, train from the bags, load the
result in policy_inference (with chunk_executor) via the generated params file, receive chunks.

Slow (several processes, torch import, training): ``pytest -m slow test/test_from_bags_e2e.py``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from rtc_ros.runtime.contract import ChunkMeta  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ARM = ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper"]
NAMES = [f"{side}_{j}" for side in ("left", "right") for j in ARM]
H = 10
DT = 0.02


def spawn(env: dict[str, str], log: Path, module: str, *ros_args: str) -> subprocess.Popen:
    """A node process whose output goes to ``log`` (a file: a full pipe would block the node)."""
    fh = open(log, "w")
    proc = subprocess.Popen([sys.executable, "-m", module, "--ros-args", *ros_args], env=env,
                            stdout=fh, stderr=subprocess.STDOUT, text=True, cwd=str(REPO))
    proc.args_log = str(log)  # type: ignore[attr-defined]
    fh.close()  # the child keeps its own descriptor
    return proc


def finish(proc: subprocess.Popen) -> str:
    """SIGINT, wait, return the log."""
    if proc.poll() is None:
        proc.send_signal(2)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    return Path(proc.args_log).read_text(errors="replace") if hasattr(proc, "args_log") else ""


def demo_q(k: int, phase: float) -> np.ndarray:
    """Scripted bimanual demonstration: smooth joint motions, grippers in [0, 1]."""
    t = k * DT
    q = np.array([0.3 * math.sin(2 * math.pi * 0.5 * t + phase + 0.3 * j) for j in range(14)])
    q[6] = q[13] = 0.5 + 0.4 * math.sin(2 * math.pi * 0.5 * t + phase)
    return q


def test_record_train_infer(ros_env: dict[str, str], tmp_path: Path) -> None:
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    node = Node("e2e_driver", context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)

    def spin_until(cond: Callable[[], bool], timeout: float, what: str, logs: list[subprocess.Popen] = ()) -> None:
        t0 = time.monotonic()
        while not cond():
            if time.monotonic() - t0 > timeout:
                tails = "\n".join(finish(p)[-3000:] for p in logs)
                raise AssertionError(f"timeout waiting for {what}\n{tails}")
            ex.spin_once(timeout_sec=0.02)

    status: list[dict[str, Any]] = []
    node.create_subscription(String, "rtc/episode_status", lambda m: status.append(json.loads(m.data)),
                             QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                        reliability=ReliabilityPolicy.RELIABLE))
    ctl = node.create_publisher(String, "rtc/episode", 10)
    js_pub = node.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
    cmd_pubs = [node.create_publisher(Float64MultiArray, f"{side}_arm_controller/commands", 100)
                for side in ("left", "right")]
    cam_pub = node.create_publisher(Image, "cam_high/image_raw", qos_profile_sensor_data)
    demos = tmp_path / "demos"
    procs: list[subprocess.Popen] = []
    try:
        rec = spawn(ros_env, tmp_path / "recorder.log", "rtc_ros.nodes.episode_recorder",
                    "-p", f"output_dir:={demos}", "-p", "discovery_period:=0.2",
                    "-p", "camera_topics:=['cam_high/image_raw']")
        procs.append(rec)
        spin_until(lambda: bool(status) and ctl.get_subscription_count() > 0 and js_pub.get_subscription_count() > 0
                   and cam_pub.get_subscription_count() > 0 and all(p.get_subscription_count() for p in cmd_pubs),
                   90, "recorder discovery", procs)

        def publish_tick(k: int, phase: float, commands: bool = True) -> None:
            q = demo_q(k, phase)
            stamp = node.get_clock().now().to_msg()
            js = JointState(name=NAMES, position=(q - 0.005).tolist())
            js.header.stamp = stamp
            js_pub.publish(js)
            if commands:
                cmd_pubs[0].publish(Float64MultiArray(data=q[:7].tolist()))
                cmd_pubs[1].publish(Float64MultiArray(data=q[7:].tolist()))
            if k % 3 == 0:
                img = Image(height=12, width=16, encoding="rgb8", step=48,
                            data=bytes([int(127 + 100 * math.sin(phase + k * DT))] * (12 * 48)))
                img.header.stamp = stamp
                cam_pub.publish(img)

        for demo in range(3):
            n0 = len(status)
            ctl.publish(String(data=json.dumps({"cmd": "start", "meta": {"task": "e2e_demo", "demo": demo}})))
            spin_until(lambda: any(s["state"] == "recording" for s in status[n0:]), 30, "recording", procs)
            t_next = time.monotonic()
            for k in range(100):  # 2 s at 50 Hz
                publish_tick(k, phase=0.7 * demo)
                t_next += DT
                while time.monotonic() < t_next:
                    ex.spin_once(timeout_sec=max(0.0, t_next - time.monotonic()))
            n0 = len(status)
            ctl.publish(String(data=json.dumps({"cmd": "stop", "success": True, "score": 1})))
            spin_until(lambda: any(s["state"] == "idle" for s in status[n0:]), 30, "stop", procs)
        finish(rec)
        procs.remove(rec)
        assert sorted(p.name for p in demos.iterdir()) == [".episode_last", "episode_0000", "episode_0001",
                                                           "episode_0002"]  # (the marker: the last number started)

        # --- train from the bags (the real CLI, as a user runs it) ---
        out = tmp_path / "policy"
        res = subprocess.run(
            [sys.executable, "-m", "rtc_ros.recording.from_bags", str(demos), "--out", str(out), "--name", "e2e",
             "--params", str(REPO / "config" / "bimanual.yaml"), "--horizon", str(H), "--image-size", "6x8",
             "--steps", "60", "--batch-size", "32", "--model", "width=32", "--model", "depth=1",
             "--model", "token_hidden=16", "--model", "channel_hidden=32", "--model", "time_dim=16"],
            env=ros_env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        summary = json.loads(res.stdout.strip().splitlines()[-1])
        assert summary["episodes"] == 3 and summary["action_dim"] == 14 and summary["horizon"] == H
        assert summary["samples"] >= 3 * 90  # ~100 ticks per demo
        assert "train" in res.stderr  # the tqdm progress bar
        params = summary["params_file"]

        # --- load it in the nodes by swapping the params file ---
        for pub in cmd_pubs:  # the executor commands these topics now (it commands nothing beside another publisher)
            node.destroy_publisher(pub)
        chunks: list[JointTrajectory] = []
        node.create_subscription(JointTrajectory, "rtc/chunk", chunks.append, 10)
        # the params file is made from config/bimanual.yaml, whose executor waits for ~/resume (start_paused): not
        # this stand-in arm's (a -p override loses to the file's chunk_executor section, so the file is changed)
        import yaml

        data = yaml.safe_load(Path(params).read_text())
        data["/**/chunk_executor"]["ros__parameters"]["start_paused"] = False
        Path(params).write_text(yaml.safe_dump(data, sort_keys=False))
        procs.append(spawn(ros_env, tmp_path / "executor.log", "rtc_ros.nodes.chunk_executor",
                           "--params-file", params, "-p", "loop_mode:=timer"))
        procs.append(spawn(ros_env, tmp_path / "inference.log", "rtc_ros.nodes.policy_inference",
                           "--params-file", params, "-p", "device:=cpu",
                           "-p", "warmup_iterations:=1", "-p", "n_steps:=2", "-p", "torch_threads:=1",
                           "-p", "obs_timeout:=5.0"))
        k = 0

        def feed_until_chunks() -> bool:
            nonlocal k
            if k % 2 == 0:
                publish_tick(k, 0.0, commands=False)
            k += 1
            return len(chunks) >= 3

        spin_until(feed_until_chunks, 240, "three chunks from policy_inference", procs)
        for msg in chunks:
            meta = ChunkMeta.decode(msg.header.frame_id)
            assert meta.method == "rtc"
            assert list(msg.joint_names) == NAMES
            assert len(msg.points) == H and all(len(p.positions) == 14 for p in msg.points)
            arr = np.array([p.positions for p in msg.points])
            assert np.isfinite(arr).all() and np.abs(arr).max() < 5.0  # normalisation decoded to joint units
        seqs = [ChunkMeta.decode(m.header.frame_id).seq for m in chunks]
        assert all(b > a for a, b in zip(seqs, seqs[1:]))  # (discovery may hide the very first ones)
    finally:
        logs = [finish(p) for p in procs]
        ex.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
    for log in logs:
        assert "Traceback" not in log, log[-3000:]
