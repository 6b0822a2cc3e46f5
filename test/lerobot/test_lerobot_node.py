"""policy_inference with a LeRobot checkpoint (in-process, no DDS traffic): the node loads, fits and samples
the tiny SmolVLA, Diffusion Policy and GR00T at start-up, builds their observations from joint states and camera
frames (the Diffusion Policy's: a joint history 20 ms apart and a two-frame stack) and plans chunks."""

from __future__ import annotations

import time

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")

from sensor_msgs.msg import JointState  # noqa: E402

JOINTS = [f"j{i}" for i in range(6)]


def _node(tmp_path, spec, horizon: int):
    from rtc_ros.nodes.policy_inference import PolicyInferenceNode

    arm = {"joint_names": JOINTS, "max_step": [100.0], "lower_limits": [-100.0], "upper_limits": [100.0]}
    params = {"/**": {"ros__parameters": {"method": "rtc", "horizon": horizon, "s_min": 3, "rate_hz": 50.0,
                                          "arms": ["left"], "left": arm}},
              "/**/policy_inference": {"ros__parameters": {
                  "policy_spec": str(spec), "camera_topics": ["front/image_raw"], "camera_names": ["front"],
                  "device": "cpu", "warmup_iterations": 1, "torch_threads": 1, "n_steps": 5}}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    rclpy.init()
    node = PolicyInferenceNode(cli_args=["--ros-args", "--params-file", str(path)], use_global_arguments=False)
    node.stop()  # no inference thread: the test drives it
    return node


def _feed(node, t0: int, k_max: int) -> None:
    """A 200 Hz driver (measurement k: every joint at 0.01 k, stamped t0 + 5 k ms) and a 100 Hz camera (faster than
    the policy's 50 Hz dataset) whose frame at k carries k in its pixels."""
    from rtc_ros.nodes import conversions as conv

    for k in range(k_max + 1):
        js = JointState(name=JOINTS, position=[0.01 * k] * len(JOINTS))
        js.header.stamp = conv.ns_to_stamp(t0 + k * 5_000_000)
        node._on_joint_state(js)
        if k % 2 == 0:
            node.cameras.store("front", np.full((40, 48, 3), k, np.uint8), conv.ns_to_stamp(t0 + k * 5_000_000))


@pytest.mark.parametrize("which", ["tiny_diffusion", "tiny_smolvla", "tiny_groot"])
def test_policy_inference_runs_a_lerobot_checkpoint(tmp_path, request, which) -> None:
    spec = request.getfixturevalue(which)
    diffusion, horizon = which == "tiny_diffusion", {"tiny_diffusion": 7, "tiny_smolvla": 10, "tiny_groot": 16}[which]
    node = _node(tmp_path, spec, horizon=horizon)
    try:
        assert node.policy.horizon == horizon and node.obs_builder.joint_history == (2 if diffusion else 1)
        t0 = time.time_ns() - 10**9
        _feed(node, t0, 40)
        obs, stamp, _ = node._observation()
        assert stamp == t0 + 40 * 5_000_000
        if diffusion:  # the newest joint state and frame, and the ones a control period (20 ms) before
            np.testing.assert_allclose(obs["state"][:, 0], [0.40, 0.36])
            assert [int(f[0, 0, 0]) for f in obs["front"]] == [40, 36]  # (not the previous message, 38)
        else:
            np.testing.assert_allclose(obs["state"], 0.40)
            assert int(obs["front"][0, 0, 0]) == 40
        chunk = node.generator.generate(obs)
        assert chunk.shape == (node.policy.horizon, 6) and np.isfinite(chunk).all()
        guided = node.generator.generate(obs, chunk[3:], d=2, s=3)
        assert guided.shape == chunk.shape and np.isfinite(guided).all()
    finally:
        node.destroy_node()
        rclpy.shutdown()
