"""Joint histories (a ``[t, M]`` joint entry, e.g. LeRobot's Diffusion Policy with n_obs_steps = t): the
positions dt apart from a faster driver, the builder's rows, robot_units on every row (ROS-free)."""

from __future__ import annotations

import numpy as np
import pytest

from rtc_ros.policies.observation import ObservationBuilder
from rtc_ros.runtime.joint_history import JointHistory

MS = 1_000_000


def _driver(hist: JointHistory, t0: int, n: int, period_ms: float = 5.0) -> list[int]:
    """A 200 Hz driver: measurement k is stamped t0 + k period and holds k in every joint."""
    stamps = [t0 + int(k * period_ms * MS) for k in range(n)]
    for k, t in enumerate(stamps):
        hist.push(t, np.full(2, float(k)))
    return stamps


def test_rows_are_the_measurements_nearest_each_control_step_before_the_observation():
    hist = JointHistory(3, dt=0.02, gap_s=0.5)
    stamps = _driver(hist, 10**12, 40)
    rows = hist.rows_at(stamps[-1])
    np.testing.assert_array_equal(rows[:, 0], [39, 35, 31])  # 0, 20 and 40 ms before: 4 measurements apart
    assert len(hist) <= 3 * 20 // 5 + 2  # only what the history needs behind the newest is kept
    hist = JointHistory(3, dt=0.02, gap_s=0.5)
    stamps = _driver(hist, 10**12, 32)
    rows = hist.rows_at(stamps[30] + 2 * MS)  # between two measurements: none after the observation's stamp
    np.testing.assert_array_equal(rows[:, 0], [30, 26, 22])


def test_start_up_a_reset_and_a_gap_repeat_the_oldest_row():
    hist = JointHistory(3, dt=0.02, gap_s=0.1)
    stamps = _driver(hist, 10**12, 3)  # 10 ms of measurements so far
    np.testing.assert_array_equal(hist.rows_at(stamps[-1])[:, 0], [2, 0, 0])
    stamps = _driver(hist, 10**12, 40)[3:]  # (from its first stamp again: the clock went back, anew)
    np.testing.assert_array_equal(hist.rows_at(stamps[-1], not_before_ns=stamps[-6])[:, 0], [39, 35, 34])
    assert hist.rows_at(stamps[-1], not_before_ns=stamps[-1] + 1) is None  # nothing since the reset
    later = stamps[-1] + 200 * MS  # a driver's hiccup longer than gap_s: what came before is dropped
    hist.push(later, np.full(2, 99.0))
    np.testing.assert_array_equal(hist.rows_at(later)[:, 0], [99, 99, 99])
    hist.push(later - MS, np.full(2, 7.0))  # the clock went back (a simulator reset), even by 1 ms: anew
    np.testing.assert_array_equal(hist.rows_at(later - MS)[:, 0], [7, 7, 7])
    hist.push(later - MS, np.full(2, 8.0))  # the same stamp again (a merger's slower source): the newest values
    assert len(hist) == 1 and hist.rows_at(later - MS)[0, 0] == 8


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="rows"):
        JointHistory(0, 0.02, 0.5)
    with pytest.raises(ValueError, match="dt and gap_s"):
        JointHistory(2, 0.0, 0.5)


def test_the_builder_lays_out_a_joint_history_newest_first():
    b = ObservationBuilder([{"name": "state", "shape": [2, 3]}], 3)
    assert b.joint_history == 2 and b.obs_dim == 6
    np.testing.assert_array_equal(b.build(np.array([[1, 2, 3], [4, 5, 6]])), [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(b.build(np.array([1, 2, 3])), [1, 2, 3, 1, 2, 3])  # one row: repeated
    np.testing.assert_array_equal(b.build(np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])), [1, 2, 3, 4, 5, 6])
    one = ObservationBuilder([{"name": "state", "shape": [3]}], 3)
    assert one.joint_history == 1
    np.testing.assert_array_equal(one.build(np.array([[1, 2, 3], [4, 5, 6]])), [1, 2, 3])  # the newest
    with pytest.raises(ValueError, match=r"\[t >= 1, 3\] for a joint history"):
        ObservationBuilder([{"name": "state", "shape": [2, 4]}], 3)
    with pytest.raises(ValueError, match=r"expected 3 joint positions \(or \(n, 3\) newest first\)"):
        b.build(np.zeros((2, 4)))


def test_robot_units_convert_every_row(tmp_path):
    """A policy in degrees with a joint history: the robot's radians rows in, the same chunk as the policy's own
    units give, back in radians; flat observations too."""
    from conftest import make_small_policy

    from rtc_ros.policies.spec import load_policy
    from rtc_ros.policies.units import parse_robot_units, RobotUnitsPolicy
    from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig

    policy = load_policy(make_small_policy(tmp_path, joints=3, joint_rows=2))
    assert policy.observation_builder.joint_history == 2 and policy.obs_dim == 6
    units = parse_robot_units({"a": {"scale": 2.0, "offset": 0.5}, "c": "degrees"}, ["a", "b", "c"])
    wrapped = RobotUnitsPolicy(policy, units)
    rows = np.array([[0.1, 0.2, 0.3], [0.0, 0.1, 0.2]])
    cfg = GeneratorConfig(method="naive", seed=3)
    base = ChunkGenerator(policy, cfg).generate({"joint_positions": rows})
    ours = ChunkGenerator(wrapped, cfg).generate({"joint_positions": units.to_robot(rows)})
    np.testing.assert_allclose(ours, units.to_robot(base), atol=1e-4)
    flat = ChunkGenerator(wrapped, cfg).generate(units.to_robot(rows).reshape(-1))
    np.testing.assert_allclose(flat, ours, atol=1e-4)


def test_a_dataset_gives_each_sample_its_episodes_previous_steps():
    """Training from bags builds a joint history as the node does: steps k, k - 1 of the sample's own episode
    (its first step repeated), the frame stacks alike (the steps' frames, as the node times them with a joint
    history), and the joint-noise augmentation moves every row alike (the recorded velocity)."""
    from rtc_ros.recording.demo_dataset import DemoDataset

    n = 6  # two episodes of three steps; joint value = 10 episode + step
    episode, step = np.array([0, 0, 0, 1, 1, 1]), np.array([0, 1, 2, 0, 1, 2])
    joints = (10.0 * episode + step)[:, None].repeat(2, axis=1).astype(np.float32)
    frames = [np.full((2, 2, 3), v, np.uint8) for v in range(12)]  # a camera twice as fast: frame 2 k + 1 at step k
    frame_index = 2 * step + 1 + 6 * episode
    ds = DemoDataset(joints=joints, frames={"cam": frames}, frame_index={"cam": frame_index},
                     actions=np.zeros((n, 4, 2), np.float32), episode=episode, step=step, joint_names=["a", "b"],
                     obs_spec=[{"name": "joint_positions", "shape": [3, 2]}, {"name": "cam", "shape": [2, 2, 2, 3]}],
                     dt=0.02, frame_prev={"cam": np.maximum(np.arange(12) - 1, 6 * (np.arange(12) // 6))})
    obs = ds.observations()
    np.testing.assert_array_equal(obs[:, :6].reshape(n, 3, 2)[:, :, 0],
                                  [[0, 0, 0], [1, 0, 0], [2, 1, 0], [10, 10, 10], [11, 10, 10], [12, 11, 10]])
    cam = np.round(obs[:, 6:].reshape(n, 2, 12)[:, :, 0] * 255)  # the steps' frames, not the previous messages
    np.testing.assert_array_equal(cam, [[1, 1], [3, 1], [5, 3], [7, 7], [9, 7], [11, 9]])
    moved = ds.observations(np.array([2, 5]), joints[[2, 5]] + 0.5)[:, :6].reshape(2, 3, 2)[:, :, 0]
    np.testing.assert_array_equal(moved, [[2.5, 1.5, 0.5], [12.5, 11.5, 10.5]])
