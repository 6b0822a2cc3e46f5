"""config/fastdds_lossy_link.xml (docs/ros_interface.md, "The policy on another machine"): Fast DDS loads it and a
chunk-sized reliable message still goes through with it. A network walkthrough (2026-12-07) measured what it is for
(a lossy link's 2-2.5 s repairs with the default heartbeat); this checks only that the file is valid for the RMW the
package runs on, and that a broken profile would be noticed (Fast DDS logs an XML parse error and goes on)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")

PROFILE = Path(__file__).resolve().parents[1] / "config" / "fastdds_lossy_link.xml"

CHILD = r"""
import time, rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from rclpy.utilities import get_rmw_implementation_identifier
rclpy.init()
n = rclpy.create_node("profile_check")
qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
got = []
n.create_subscription(JointTrajectory, "rtc/chunk", lambda m: got.append(len(m.points)), qos)
pub = n.create_publisher(JointTrajectory, "rtc/chunk", qos)
msg = JointTrajectory(joint_names=[f"j{i}" for i in range(14)])
msg.points = [JointTrajectoryPoint(positions=[0.1 * i] * 14) for i in range(50)]  # a chunk: H = 50, 14 joints
deadline = time.monotonic() + 20
while not got and time.monotonic() < deadline:
    pub.publish(msg)
    rclpy.spin_once(n, timeout_sec=0.1)
print("RMW", get_rmw_implementation_identifier(), "GOT", got[:1])
"""


def _run(profile: Path, ros_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**ros_env, "FASTRTPS_DEFAULT_PROFILES_FILE": str(profile), "FASTDDS_DEFAULT_PROFILES_FILE": str(profile)}
    return subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60)


def test_the_lossy_link_profile_loads_and_chunks_go_through(ros_env, tmp_path) -> None:
    out = _run(PROFILE, ros_env)
    assert out.returncode == 0, out.stdout + out.stderr
    if "rmw_fastrtps" not in out.stdout:
        pytest.skip(f"not Fast DDS: {out.stdout.strip()}")
    assert "GOT [50]" in out.stdout and "Error" not in out.stdout + out.stderr, out.stdout + out.stderr
    broken = tmp_path / "broken.xml"  # the same file cut short: Fast DDS says so (what the check reads)
    broken.write_text(PROFILE.read_text()[: len(PROFILE.read_text()) // 2])
    bad = _run(broken, ros_env)
    assert "Error" in bad.stdout + bad.stderr
