"""Bring your own policy: the package in examples/rtc_example_policy, with no change to rtc_ros, is
loaded by import path, passes the check command, and drives policy_inference + chunk_executor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_SRC = REPO / "examples" / "rtc_example_policy" / "src"


@pytest.fixture(scope="module")
def example_spec(tmp_path_factory) -> Path:
    sys.path.insert(0, str(EXAMPLE_SRC))
    try:
        from rtc_example_policy.train import train

        return train(tmp_path_factory.mktemp("example"), steps=600)
    finally:
        sys.path.remove(str(EXAMPLE_SRC))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLE_SRC), str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_spec_names_the_external_factory(example_spec: Path) -> None:
    spec = yaml.safe_load(example_spec.read_text())
    assert spec["model"] == "rtc_example_policy.policy:make_policy"
    # without the package on the path (a fresh process) the error names the field and says what to do
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-m", "rtc_ros.runtime.check", str(example_spec)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "field 'model'" in out.stderr and "PYTHONPATH" in out.stderr, out.stderr


def test_check_command_passes(example_spec: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "rtc_ros.runtime.check", str(example_spec), "--d", "2", "--s", "3",
                          "--repeats", "3"], env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["ok"] and r["finite"] and r["horizon"] == 8 and r["action_dim"] == 2
    assert r["prefix_error_guided"] < 0.7 * r["prefix_error_plain"], r


def test_selected_by_params_file_and_run_by_the_nodes(example_spec: Path, ros_env, start_node, tmp_path) -> None:
    import numpy as np
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState

    from rtc_ros.nodes.conversions import parse_executor_state

    params = {"/**": {"ros__parameters": {"method": "rtc", "horizon": 8, "s_min": 4, "rate_hz": 50.0,
                                           "arms": ["toy"], "toy": {"joint_names": ["toy_x", "toy_y"], "max_step": [1.0],
                                                                    "lower_limits": [-5.0], "upper_limits": [5.0]}}},
              "/**/policy_inference": {"ros__parameters": {"policy_spec": str(example_spec), "device": "cpu",
                                                           "warmup_iterations": 1, "torch_threads": 1}}}
    pfile = tmp_path / "example.yaml"
    pfile.write_text(yaml.safe_dump(params))
    env = {**ros_env, "PYTHONPATH": _env()["PYTHONPATH"]}
    ex = start_node("rtc_ros.nodes.chunk_executor", "--params-file", str(pfile), env=env)
    inf = start_node("rtc_ros.nodes.policy_inference", "--params-file", str(pfile), env=env)
    ctx = Context()
    rclpy.init(context=ctx)
    node = Node("example_robot", context=ctx)
    states: list = []
    node.create_subscription(JointState, "rtc/executor_state", lambda m: states.append(parse_executor_state(m)),
                             QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    pub = node.create_publisher(JointState, "joint_states", 10)
    def publish() -> None:
        msg = JointState(name=["toy_x", "toy_y"], position=[0.1, -0.2])
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)

    node.create_timer(0.02, publish)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and not any(s.seq >= 3 for s in states):
            executor.spin_once(timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
    assert any(s.seq >= 3 for s in states), (ex.output()[-2000:], inf.output()[-3000:])
    cmds = np.array([s.command for s in states if s.seq >= 0 and s.command is not None])
    assert np.isfinite(cmds).all()
