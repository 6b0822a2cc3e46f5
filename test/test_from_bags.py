"""Training from demonstration bags: dataset extraction (exact values) and the CLI end to end (ROS-free)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from rtc_ros.recording.dataset import DatasetError, build_dataset
from rtc_ros.recording.episode import TopicRoles, load_episodes
from rtc_ros.recording.synthetic import reference, write_synthetic_episode

NAMES = ["joint_0", "joint_1", "joint_2"]
H = 10
DT = 0.02


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demos")
    for i in range(3):
        # teleop-style demonstrations: commands + joint states + camera, no executor/chunks
        write_synthetic_episode(root, f"demo_{i:04d}", "rtc", seed=i, task_steps=120, with_executor=False,
                                with_chunks=False, with_commands=True, with_images=True)
    return root


def test_dataset_values(demos: Path) -> None:
    eps = load_episodes(demos / "demo_0000", TopicRoles(images=("camera/image_raw",)), with_images=True)
    spec = [{"name": "joint_positions", "shape": [3]}, {"name": "top", "shape": [6, 8, 3]}]
    ds = build_dataset(eps, spec, NAMES, H, DT, cameras={"top": "camera/image_raw"})
    cmd = eps[0].commands.q
    T = cmd.shape[0]
    obs = ds.observations()
    assert obs.shape == (T, 3 + 6 * 8 * 3) and ds.actions.shape == (T, H, 3)
    # target chunk k = commands k .. k+H-1, holding the last command past the end
    for k in (0, 37, T - 1):
        rows = np.minimum(np.arange(k, k + H), T - 1)
        assert np.allclose(ds.actions[k], cmd[rows], atol=1e-6)
    assert np.allclose(ds.actions[-1], cmd[-1], atol=1e-6)
    # the synthetic commands follow the reference trajectory
    assert np.allclose(cmd[:5], reference(np.arange(5) * DT, 3), atol=1e-9)
    # observation: latest measured joint state (= command - 0.01 in the synthetic bag) ...
    assert np.allclose(obs[:, :3], cmd - 0.01, atol=1e-5)
    # ... and the latest camera frame (value 3*step, published every 5 steps), scaled to [0, 1]
    for k in (0, 4, 5, 23):
        assert np.allclose(obs[k, 3:], (3 * (k - k % 5) % 256) / 255.0, atol=1e-6)


def test_dataset_errors(demos: Path) -> None:
    eps = load_episodes(demos / "demo_0000")
    spec = [{"name": "joint_positions", "shape": [3]}]
    with pytest.raises(DatasetError, match="lacks joints"):
        build_dataset(eps, spec + [], ["joint_0", "joint_1", "elbow"], H, DT)
    with pytest.raises(DatasetError, match="no image topic"):
        build_dataset(eps, spec + [{"name": "wrist", "shape": [4, 4, 3]}], NAMES, H, DT)
    with pytest.raises(DatasetError, match="no command topic"):
        build_dataset(eps, spec, NAMES, H, DT, command_topics=["teleop/commands"])


def test_cli_trains_and_spec_loads(demos: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig
    from rtc_ros.policies.spec import load_policy
    from rtc_ros.recording.from_bags import main

    out = tmp_path / "policy"
    rc = main([str(demos), "--out", str(out), "--name", "demo_policy", "--horizon", str(H),
               "--camera", "top=camera/image_raw", "--image-size", "6x8", "--steps", "150", "--batch-size", "64",
               "--model", "width=32", "--model", "depth=1", "--model", "token_hidden=16",
               "--model", "channel_hidden=32", "--model", "time_dim=16", "--no-progress"])
    assert rc == 0
    spec = yaml.safe_load((out / "demo_policy.yaml").read_text())
    assert spec["joint_names"] == NAMES and spec["config"]["horizon"] == H and spec["config"]["action_dim"] == 3
    assert spec["obs_spec"] == [{"name": "joint_positions", "shape": [3]}, {"name": "top", "shape": [6, 8, 3]}]
    assert spec["training"]["episodes"] == ["demo_0000", "demo_0001", "demo_0002"]
    assert spec["training"]["samples"] == 360
    # normalisation statistics (own safetensors file) are those of the training data, per image channel
    assert spec["normalization"] == "demo_policy.norm.safetensors" and len((out / "demo_policy.yaml").read_text().splitlines()) < 100
    stats = load_file(str(out / spec["normalization"]))
    eps = [e for i in range(3) for e in load_episodes(demos / f"demo_{i:04d}", with_images=True)]
    ds = build_dataset(eps, spec["obs_spec"], NAMES, H, DT, cameras={"top": "camera/image_raw"})
    a = ds.actions.reshape(-1, 3)
    obs = ds.observations()
    assert np.allclose(stats["action_mean"], a.mean(0), atol=1e-5)
    assert np.allclose(stats["action_std"], a.std(0), atol=1e-5)
    assert np.allclose(stats["obs_mean.joint_positions"], obs[:, :3].mean(0), atol=1e-5)
    assert stats["obs_mean.top"].shape == (3,)
    assert np.allclose(stats["obs_mean.top"], obs[:, 3:].reshape(len(obs), -1, 3).mean((0, 1)), atol=1e-5)
    assert np.allclose(stats["obs_std.top"], obs[:, 3:].reshape(len(obs), -1, 3).std((0, 1)), atol=1e-4)
    assert (out / "demo_policy.safetensors").stat().st_size > 1000
    params = yaml.safe_load((out / "demo_policy_params.yaml").read_text())
    inf = params["policy_inference"]["ros__parameters"]
    assert Path(inf["policy_spec"]) == (out / "demo_policy.yaml").resolve()
    assert inf["camera_names"] == ["top"] and params["/**"]["ros__parameters"]["horizon"] == H
    # the spec loads and produces chunks of the right shape for every kind of method
    pol = load_policy(out / "demo_policy.yaml")
    assert 0 < spec["training"]["final_loss"] < 2.0
    obs = np.concatenate([np.zeros(3), np.full(6 * 8 * 3, 0.5)]).astype(np.float32)
    for method in ("rtc", "naive"):
        gen = ChunkGenerator(pol, GeneratorConfig(method=method, n_steps=3))
        c0 = gen.generate(obs)
        c1 = gen.generate(obs, prev_remaining=c0[4:], d=2, s=4)
        assert c0.shape == c1.shape == (H, 3) and np.isfinite(c1).all()


def test_training_learns(demos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Loss falls and sampled chunks land near the demonstrated commands (not a shape-only check)."""
    from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig
    from rtc_ros.policies.spec import load_policy
    from rtc_ros.recording.from_bags import main

    out = tmp_path / "p"
    rc = main([str(demos / "demo_0000"), "--out", str(out), "--name", "p", "--horizon", "4", "--steps", "400",
               "--batch-size", "64", "--lr", "3e-3", "--model", "width=32", "--model", "depth=2",
               "--model", "token_hidden=16", "--model", "channel_hidden=64", "--model", "time_dim=16",
               "--no-progress"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["samples"] == 120 and summary["loss_final"] < 0.5 * summary["loss_first"]
    pol = load_policy(summary["spec"])
    gen = ChunkGenerator(pol, GeneratorConfig(method="naive", n_steps=10))
    (ep,) = load_episodes(demos / "demo_0000")
    errs = []
    for k in (10, 50, 90):
        chunk = np.mean([gen.generate(ep.joint_states.q[k].astype(np.float32)) for _ in range(4)], axis=0)
        errs.append(np.abs(chunk[0] - ep.commands.q[k]).max())
    spread = np.ptp(ep.commands.q, axis=0).max()
    assert np.mean(errs) < 0.25 * spread, (errs, spread)
