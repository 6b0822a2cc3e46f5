"""Recorded episodes -> a LeRobot dataset written by LeRobot's own writer and read back by LeRobot's own
LeRobotDataset (rtc_ros.recording.to_lerobot): frame k holds the joint state and the camera frame of step k and the
command executed at step k, checked against the synthetic recordings' known trajectories."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from rtc_ros.recording.synthetic import reference, write_synthetic_episode
from rtc_ros.recording.to_lerobot import main

STEPS, DT = 60, 0.02


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bags")
    for i in range(2):  # rtc: no holds, the executor commands reference(k dt) at step k, joint states 0.01 below
        write_synthetic_episode(root, f"episode_{i:04d}", "rtc", seed=i, task_steps=STEPS, with_images=True)
    write_synthetic_episode(root, "episode_0002", "rtc", seed=2, task_steps=STEPS, with_images=True, success=False)
    return root


def _export(bags: Path, out: Path, capsys, *extra: str) -> tuple[int, dict | None, str]:
    rc = main([str(bags), "--out", str(out), "--camera", "top=camera/image_raw", *extra])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out.strip().splitlines()[-1]) if rc == 0 else None), cap.err


def test_frames_hold_each_step_s_observation_and_executed_command(bags: Path, tmp_path: Path, capsys) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    out = tmp_path / "ds"
    rc, summary, err = _export(bags, out, capsys, "--task", "move the joints", "--images", "--only-success")
    assert rc == 0, err
    assert summary["episodes"] == 2 and summary["frames"] == 2 * STEPS and summary["fps"] == 50
    assert summary["left_out"] == {"episode_0002": "not a success"}
    ds = LeRobotDataset("local/ds", root=out)
    assert (len(ds), ds.fps, ds.meta.total_episodes) == (2 * STEPS, 50, 2)
    assert ds.features["action"]["names"] == ["joint_0", "joint_1", "joint_2"]
    q = reference(np.arange(STEPS) * DT, 3)
    for i in (0, 4, 5, 23, STEPS - 1, STEPS, STEPS + 37):
        f, k = ds[i], i % STEPS
        np.testing.assert_allclose(f["action"].numpy(), q[k], atol=1e-6)
        np.testing.assert_allclose(f["observation.state"].numpy(), q[k] - 0.01, atol=1e-6)
        img = f["observation.images.top"]  # a frame every 5 steps, value 3 x its step; LeRobot gives [0, 1] CHW
        assert img.shape == (3, 12, 16) and np.allclose(img.numpy() * 255, 3 * (k - k % 5) % 256, atol=1e-3)
        assert f["task"] == "move the joints" and int(f["episode_index"]) == i // STEPS
    # as LeRobot's training samples a chunk (a VLA's chunk_size actions from the observation's frame on): index 0 is
    # the command of the observation's step, and the chunk does not run into the next episode (padded, flagged)
    chunks = LeRobotDataset("local/ds", root=out, delta_timestamps={"action": [j * DT for j in range(10)]})
    for i in (0, 23, STEPS - 4, STEPS + 5):
        f, k = chunks[i], i % STEPS
        n = min(10, STEPS - k)
        np.testing.assert_allclose(f["action"].numpy()[:n], q[k:k + n], atol=1e-6)
        assert f["action_is_pad"].tolist() == [False] * n + [True] * (10 - n)


def test_a_missing_task_or_an_existing_out_is_refused_before_writing(bags: Path, tmp_path: Path, capsys) -> None:
    rc, _, err = _export(bags, tmp_path / "a", capsys, "--images")  # the synthetic sidecars record no task
    assert rc == 2 and "no task recorded" in err and "--task" in err and not (tmp_path / "a").exists()
    (tmp_path / "b").mkdir()
    rc, _, err = _export(bags, tmp_path / "b", capsys, "--task", "t", "--images")
    assert rc == 2 and "--out" in err and "exists" in err and not any((tmp_path / "b").iterdir())
    rc, _, err = _export(bags, tmp_path / "c", capsys, "--task", "t")  # 16 px wide: SVT-AV1 would crash
    assert rc == 2 and "--vcodec h264" in err and not (tmp_path / "c").exists()
    rc, _, err = _export(bags, tmp_path / "d", capsys, "--task", "t", "--images", "--params", str(tmp_path / "nope.yaml"))
    assert rc == 2 and f"--params {tmp_path / 'nope.yaml'}: no such file" in err and not (tmp_path / "d").exists()


def test_an_empty_episode_is_left_out_and_named(tmp_path: Path, capsys) -> None:
    """An episode started and stopped at once (an empty bag): left out, named with why; it stopped the export before."""
    from rtc_ros.recording.bag import BagWriter
    from rtc_ros.recording.sidecar import write_sidecar

    root = tmp_path / "bags"
    write_synthetic_episode(root, "episode_0000", "rtc", seed=0, task_steps=STEPS, with_images=True)
    empty = BagWriter(root / "episode_0001")
    empty.open()
    empty.close()
    write_sidecar(root / "episode_0001", {"status": "completed", "task": "t"})
    rc, summary, err = _export(root, tmp_path / "ds", capsys, "--task", "t", "--images")
    assert rc == 0, err
    assert summary["episodes"] == 1 and summary["frames"] == STEPS
    assert summary["left_out"] == {"episode_0001": "empty: no joint states and no commands recorded (0 messages in "
                                                   "0.0 s)"}


def test_bags_with_cameras_exported_without_one_are_warned(bags: Path, tmp_path: Path, capsys, caplog) -> None:
    """Without --params or --camera the dataset is state-only: said, naming the image topics (it was silent)."""
    rc = main([str(bags), "--out", str(tmp_path / "ds"), "--task", "t", "--images"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and summary["cameras"] == {}
    (warned,) = [r.getMessage() for r in caplog.records if "no camera is exported" in r.getMessage()]
    assert "/camera/image_raw" in warned and "--camera NAME=TOPIC" in warned


def test_videos_hold_the_frames(bags: Path, tmp_path: Path, capsys) -> None:
    """LeRobot's default storage (videos); decoded with PyAV here (this venv's torchvision has no VideoReader,
    which LeRobot 0.4.4 reads videos with when torchcodec is absent)."""
    import av

    out = tmp_path / "v"
    rc, summary, err = _export(bags, out, capsys, "--task", "t", "--vcodec", "h264")
    assert rc == 0, err
    (video,) = sorted(out.glob("videos/observation.images.top/**/*.mp4"))
    with av.open(str(video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == summary["frames"] == 3 * STEPS
    for i in (0, 7, 23, STEPS + 12, 2 * STEPS + 41):
        k = i % STEPS
        assert frames[i].shape == (12, 16, 3) and abs(frames[i].mean() - 3 * (k - k % 5) % 256) < 4


def test_a_diffusion_policy_trained_by_lerobot_on_the_export_runs_here(bags: Path, tmp_path: Path, capsys) -> None:
    """The loop a user runs: record -> to_lerobot -> LeRobot trains (a tiny Diffusion Policy, a few steps of its own
    loss on the dataset, statistics from the dataset) -> its checkpoint runs under rtc_ros (loaded, checked against
    the joint names and rate of the recording, sampled with RTC guidance from the robot's observation layout)."""
    import torch
    import yaml
    from lerobot.configs.types import FeatureType
    from lerobot.datasets.factory import resolve_delta_timestamps
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.datasets.utils import dataset_to_policy_features
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    from lerobot.policies.diffusion.processor_diffusion import make_diffusion_pre_post_processors

    from rtc_ros.policies.spec import load_policy
    from rtc_ros.runtime.check import check_policy

    out = tmp_path / "ds"
    assert _export(bags, out, capsys, "--task", "t", "--images")[0] == 0
    meta = LeRobotDataset("local/ds", root=out).meta
    feats = dataset_to_policy_features(meta.features)
    cfg = DiffusionConfig(device="cpu", n_obs_steps=2, horizon=8, n_action_steps=4, down_dims=(16, 32), kernel_size=3,
                          n_groups=8, diffusion_step_embed_dim=16, spatial_softmax_num_keypoints=8, crop_shape=None,
                          num_inference_steps=5,
                          input_features={k: f for k, f in feats.items() if f.type != FeatureType.ACTION},
                          output_features={k: f for k, f in feats.items() if f.type == FeatureType.ACTION})
    ds = LeRobotDataset("local/ds", root=out, delta_timestamps=resolve_delta_timestamps(cfg, meta))
    torch.manual_seed(0)
    policy = DiffusionPolicy(cfg)
    pre, post = make_diffusion_pre_post_processors(cfg, dataset_stats=meta.stats)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    for _, batch in zip(range(3), torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True)):
        loss, _ = policy.forward(pre(batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
    ckpt = tmp_path / "pretrained_model"
    for thing in (policy, pre, post):
        thing.save_pretrained(ckpt)
    names = ["joint_0", "joint_1", "joint_2"]
    spec = tmp_path / "dp.yaml"
    spec.write_text(yaml.safe_dump({"model": "lerobot_diffusion", "pretrained_path": "pretrained_model", "n_steps": 5,
                                    "dt": DT, "joint_names": names}))
    loaded = load_policy(spec)
    assert (loaded.horizon, loaded.action_dim, loaded.joint_names) == (7, 3, names)
    assert loaded.observation_builder.camera_names == ["top"]
    r = check_policy(loaded, d=1, s=3, repeats=1)
    assert r["finite"] and r["robot_observation"] == "ok" and r["prefix_error_guided"] < r["prefix_error_plain"]
    # lerobot-train writes train_config.json beside the checkpoint: the spec's rate and joint order are checked
    # against the dataset's (a walkthrough's swapped arms and wrong dt passed rtc_bringup --check)
    (ckpt / "train_config.json").write_text(json.dumps({"dataset": {"repo_id": "local/ds", "root": str(out)}}))
    load_policy(spec)  # (the spec agrees)
    for field, value, said in (("dt", 0.04, "at 50 fps: give dt: 0.02"),
                               ("joint_names", names[::-1], "in the order ['joint_0', 'joint_1', 'joint_2']")):
        wrong = tmp_path / f"wrong_{field}.yaml"
        wrong.write_text(yaml.safe_dump({**yaml.safe_load(spec.read_text()), field: value}))
        with pytest.raises(Exception, match=rf"field '{field}'.*{re.escape(said)}"):
            load_policy(wrong)


def test_a_sigterm_stops_after_the_episode_being_written_and_leaves_a_readable_dataset(bags: Path, tmp_path: Path,
                                                                                       capsys, monkeypatch) -> None:
    """A supervisor's SIGTERM (or Ctrl-C) mid-export: the episode being written is finished, the dataset finalised
    (it raised inside LeRobot's writer, where finalize could be cut off too: a review)."""
    import os
    import signal

    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from rtc_ros.recording import to_lerobot

    parts = to_lerobot.episode_parts

    def signalled(*args, **kwargs):
        out = parts(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # (main's handler: noted, the export goes on to the episode's end)
        return out

    monkeypatch.setattr(to_lerobot, "episode_parts", signalled)
    before = signal.getsignal(signal.SIGTERM)
    rc = main([str(bags), "--out", str(tmp_path / "ds"), "--camera", "top=camera/image_raw", "--task", "t", "--images"])
    err = capsys.readouterr().err
    assert rc == 130 and "stopping after the episode being written" in err, err
    assert signal.getsignal(signal.SIGTERM) is before  # restored
    ds = LeRobotDataset("local/ds", root=tmp_path / "ds")
    assert ds.meta.total_episodes == 1 and len(ds) == STEPS
