"""Recorded episodes -> LeRobot frames (rtc_ros.recording.to_lerobot), the parts that need no LeRobot: the frames
of an episode split at its pauses, the images as LeRobot takes them, the integer frame rate and the message without
LeRobot. The whole export through LeRobot's own writer and reader: test/lerobot/test_to_lerobot_export.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from rtc_ros.recording.dataset import DatasetError
from rtc_ros.recording.episode import Series
from rtc_ros.recording.episode_types import Episode, ExecutorTrace
from rtc_ros.recording.to_lerobot import episode_parts, integer_fps, main, rgb

DT = 0.02


def _paused_episode(steps: np.ndarray, meta: dict) -> Episode:
    """The executor ticks every DT with step numbers ``steps`` (a repeated one: paused) commanding ``100 + tick``;
    a joint state per tick carrying ``-tick``."""
    n = len(steps)
    t = np.arange(n) * DT
    ex = ExecutorTrace(t=t, q=100.0 + np.arange(n, dtype=float)[:, None] * np.ones((1, 2)), names=["a", "b"],
                       step=np.asarray(steps), seq=np.zeros(n, int), takeover=np.zeros(n, int),
                       consumed=np.zeros(n, int), hold=np.zeros(n, bool), dry=np.zeros(n, bool))
    js = Series(t=t + 0.004, q=-np.arange(n, dtype=float)[:, None] * np.ones((1, 2)), names=["a", "b"])
    return Episode(name="ep", path=Path("ep"), meta=meta, start_ns=0, end_ns=int(n * DT * 1e9), executor=ex,
                   joint_states=js)


def test_an_episode_is_split_at_its_pause_into_frames_of_one_step_each() -> None:
    """LeRobot samples action chunks from consecutive frames: across the pause (50 paused ticks) they would pair an
    observation with actions chosen after it, so the steps before and after it become two LeRobot episodes; frame
    k's state is the joint state of the tick that commanded step k, its action that tick's command."""
    ep = _paused_episode(np.r_[np.arange(5), np.full(50, 4), np.arange(5, 10)], {"task": "fold"})
    parts = episode_parts(ep, ["a", "b"], DT, {}, None, None)
    tick = [np.arange(5), np.arange(55, 60)]  # the tick that commanded each step
    assert [p.source for p in parts] == ["ep part 0", "ep part 1"] and all(p.task == "fold" for p in parts)
    for part, ticks in zip(parts, tick):
        assert part.state.dtype == part.action.dtype == np.float32
        np.testing.assert_array_equal(part.state[:, 0], -ticks)
        np.testing.assert_array_equal(part.action[:, 1], 100 + ticks)
    (whole,) = episode_parts(_paused_episode(np.arange(10), {}), ["a", "b"], DT, {}, None, "pick")
    assert whole.source == "ep" and len(whole.state) == 10 and whole.task == "pick"
    (given,) = episode_parts(_paused_episode(np.arange(10), {"task": "transfer_cube"}), ["a", "b"], DT, {}, None,
                             "move the cube to the left hand")  # --task wins over the recorded one
    assert given.task == "move the cube to the left hand"
    with pytest.raises(DatasetError, match="ep: no task recorded .* no --task"):
        episode_parts(_paused_episode(np.arange(10), {}), ["a", "b"], DT, {}, None, None)


def test_images_become_three_channels_and_the_rate_an_integer() -> None:
    mono = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)
    assert rgb(mono).shape == (2, 3, 3) and (rgb(mono)[..., 2] == mono[..., 0]).all()
    rgba = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(rgb(rgba), rgba[..., :3])
    assert (integer_fps(0.02), integer_fps(1 / 30), integer_fps(0.0333333)) == (50, 30, 30)
    with pytest.raises(DatasetError, match=r"--dt 0.0645 s .*integer frame rate"):
        integer_fps(0.0645)


def _has_lerobot() -> bool:
    try:  # (test/lerobot makes 'lerobot' a namespace package on the test path: look for its datasets)
        return importlib.util.find_spec("lerobot.datasets") is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.skipif(_has_lerobot(), reason="LeRobot is installed here")
def test_without_lerobot_it_says_which_python_to_use(tmp_path, capsys) -> None:
    assert main([str(tmp_path), "--out", str(tmp_path / "ds"), "--task", "t"]) == 2
    assert ".venv-lerobot/bin/python" in capsys.readouterr().err and not (tmp_path / "ds").exists()
