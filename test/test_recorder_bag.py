"""ROS-free recording helpers: bag writing, flushing, sidecar, preflight, independent readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from rtc_ros.recording.bag import (
    EPISODE_META_KEY,
    BagWriter,
    RecordingError,
    next_episode_name,
    preflight_output_dir,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)
from rtc_ros.recording.episode import load_episodes, topic_matches
from rtc_ros.recording.synthetic import JS, joint_state_cdr, string_cdr, write_synthetic_episode


def read_mcap_ros2(path: Path) -> list[tuple[str, object]]:
    """(topic, decoded message) of every message, decoded by ``mcap`` + ``mcap-ros2-support``."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(path, "rb") as fh:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        return [(ch.topic, m) for _, ch, _, m in reader.iter_decoded_messages()]


def _write_joint_states(bag: BagWriter, n: int, t0: int = 10**18) -> None:
    bag.add_topic("/joint_states", JS)
    for i in range(n):
        bag.write("/joint_states", t0 + i * 20_000_000, joint_state_cdr(t0 + i, ["a", "b"], np.array([i, -i], float)))


def test_bag_roundtrip_rosbags_and_mcap(tmp_path: Path) -> None:
    from rosbags.highlevel import AnyReader

    bag = BagWriter(tmp_path / "ep")
    bag.open()
    _write_joint_states(bag, 30)
    bag.add_topic("/rtc/episode", "std_msgs/msg/String")
    bag.write("/rtc/episode", 10**18 + 5, string_cdr('{"cmd": "start"}'))
    bag.close({"method": "rtc", "score": 2})
    # rosbags
    with AnyReader([tmp_path / "ep"]) as r:
        got = [(c.topic, r.deserialize(raw, c.msgtype)) for c, _, raw in r.messages()]
    js = [m for t, m in got if t == "/joint_states"]
    assert len(js) == 30 and [float(m.position[0]) for m in js] == list(range(30))
    assert [m.data for t, m in got if t == "/rtc/episode"] == ['{"cmd": "start"}']
    # mcap + mcap-ros2-support (an independent decoder)
    msgs = read_mcap_ros2(bag.mcap_path)
    assert sum(t == "/joint_states" for t, _ in msgs) == 30
    assert [list(m.position) for t, m in msgs if t == "/joint_states"][7] == [7.0, -7.0]
    # metadata.yaml carries the episode metadata
    info = yaml.safe_load((tmp_path / "ep" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == "mcap" and info["message_count"] == 31
    assert json.loads(info["custom_data"][EPISODE_META_KEY]) == {"method": "rtc", "score": 2}
    assert read_sidecar(tmp_path / "ep") == {"method": "rtc", "score": 2}  # falls back to custom_data


def test_flush_puts_messages_on_disk_before_close(tmp_path: Path) -> None:
    from mcap.stream_reader import StreamReader
    from mcap.records import Message

    bag = BagWriter(tmp_path / "ep", flush_period_s=0.0)
    bag.open()
    size0 = bag.mcap_path.stat().st_size
    _write_joint_states(bag, 10)
    bag.flush()
    assert bag.mcap_path.stat().st_size > size0 + 10 * 100
    # a reader streaming the unfinished file sees all 10 messages (no summary yet)
    with open(bag.mcap_path, "rb") as fh:
        n = 0
        try:
            for rec in StreamReader(fh, skip_magic=False).records:
                n += isinstance(rec, Message)
        except Exception:  # noqa: BLE001 - the file has no footer yet
            pass
    assert n == 10
    bag.close()


def test_zstd_compression_readable(tmp_path: Path) -> None:
    bag = BagWriter(tmp_path / "ep", compression="zstd")
    bag.open()
    _write_joint_states(bag, 5)
    bag.close()
    assert [float(m.position[0]) for _, m in read_mcap_ros2(bag.mcap_path)] == [0, 1, 2, 3, 4]


def test_writer_refuses_existing_and_unknown_topic(tmp_path: Path) -> None:
    (tmp_path / "ep").mkdir()
    with pytest.raises(RecordingError, match="cannot open bag"):
        BagWriter(tmp_path / "ep").open()
    bag = BagWriter(tmp_path / "ep2")
    bag.open()
    with pytest.raises(RecordingError, match="not added"):
        bag.write("/nope", 1, b"\0\1\0\0")
    with pytest.raises(RecordingError, match="unknown message type"):
        bag.add_topic("/x", "no_such_pkg/msg/Nope")
    bag.close()


def test_preflight_reports_unusable_directory(tmp_path: Path) -> None:
    assert preflight_output_dir(tmp_path / "new" / "dir") > 0
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(RecordingError, match="cannot create recording directory"):
        preflight_output_dir(f / "sub")
    with pytest.raises(RecordingError, match=r"\(parameter output_dir\) exists and is not a directory"):
        preflight_output_dir(f)  # (it said "cannot create ...: File exists": a data-collection walkthrough)
    with pytest.raises(RecordingError, match="MB free"):
        preflight_output_dir(tmp_path, min_free_bytes=10**18)
    assert not list(tmp_path.glob(".rtc_write_probe*"))


def test_next_episode_name_never_reuses(tmp_path: Path) -> None:
    assert next_episode_name(tmp_path) == "episode_0000"
    (tmp_path / "episode_0000").mkdir()
    (tmp_path / "episode_0007").mkdir()
    (tmp_path / "episode_x").mkdir()
    assert next_episode_name(tmp_path) == "episode_0008"
    assert next_episode_name(tmp_path / "missing", "demo") == "demo_0000"


def test_an_episode_number_is_not_reused_when_the_newest_folder_is_moved_away(tmp_path: Path) -> None:
    """An operator moving a rejected newest episode aside got its number again on the next recording."""
    from rtc_ros.recording.bag import mark_episode_name

    (tmp_path / "episode_0003").mkdir()
    mark_episode_name(tmp_path, "episode_0003")
    (tmp_path / "episode_0003").rename(tmp_path.parent / f"{tmp_path.name}_rejected")
    assert next_episode_name(tmp_path) == "episode_0004"
    assert next_episode_name(tmp_path, "demo") == "demo_0000"  # per prefix
    (tmp_path / "episode_0009").mkdir()  # a folder copied in above the mark
    assert next_episode_name(tmp_path) == "episode_0010"
    (tmp_path / ".episode_last").write_text("garbage")  # an unreadable mark: the folders decide
    assert next_episode_name(tmp_path) == "episode_0010"


def test_sidecar_atomic_roundtrip(tmp_path: Path) -> None:
    meta = {"method": "sync", "score": 1.5, "arr": np.arange(3)}
    p = write_sidecar(tmp_path / "episode_0001", meta)
    assert p == sidecar_path(tmp_path / "episode_0001") and p.name == "episode_0001.json"
    assert read_sidecar(tmp_path / "episode_0001") == {"method": "sync", "score": 1.5, "arr": [0, 1, 2]}
    assert not list((tmp_path / "episode_0001").glob("*.tmp"))


def test_topic_matching() -> None:
    assert topic_matches("/rtc/chunk", "rtc/chunk")
    assert topic_matches("/robot1/rtc/chunk", "rtc/chunk")
    assert not topic_matches("/xrtc/chunk", "rtc/chunk")
    assert topic_matches("/diagnostics", "/diagnostics") and not topic_matches("/a/diagnostics", "/diagnostics")


def test_load_episode_arrays(tmp_path: Path) -> None:
    truth = write_synthetic_episode(tmp_path, "episode_0000", "sync", 100.0, seed=3, with_images=True,
                                    with_commands=True)
    (ep,) = load_episodes(tmp_path / "episode_0000", with_images=True)
    assert ep.method == "sync" and ep.extra_latency_ms == 100.0
    assert len(ep.executor) == truth.steps and ep.executor.q.shape == (truth.steps, 3)
    assert int(ep.executor.hold.sum()) == truth.hold_steps
    assert np.array_equal(ep.executor.step, np.arange(truth.steps))
    assert len(ep.chunks) == truth.n_chunks and ep.chunks[0].actions.shape == (50, 3)
    assert ep.chunks[2].meta is not None and ep.chunks[2].meta.seq == 2 and ep.chunks[2].meta.d == 11
    assert ep.progress is not None and ep.progress[1][-1] == truth.final_progress
    assert ep.joint_states is not None and np.allclose(ep.joint_states.q, ep.executor.q - 0.01)
    assert ep.commands is not None and np.allclose(ep.commands.q, ep.executor.q)
    t, frames = ep.images["/camera/image_raw"]
    assert len(frames) == len(range(0, truth.steps, 5)) and frames[0].shape == (12, 16, 3)
    assert abs(ep.duration_s - truth.duration_s) < 1e-6


def test_long_bag_split_by_control_messages(tmp_path: Path) -> None:
    """A ``ros2 bag record`` bag (no sidecar) is split at the recorded start/stop commands."""
    write_synthetic_episode(tmp_path, "session", "naive", seed=1, with_sidecar=False, task_steps=100)
    eps = load_episodes(tmp_path / "session")
    assert len(eps) == 1
    assert eps[0].name == "session#0" and eps[0].method == "naive"
    assert eps[0].meta["status"] == "completed" and eps[0].meta["score"] == 5.0
    assert len(eps[0].executor) == 100


def test_a_dry_run_episode_is_not_training_data(tmp_path: Path) -> None:
    """A dry run's executor reports say dry=1 (the commands were computed, never sent): the episode loads, with
    the flag, but the dataset refuses its actions (they are not what its observations show)."""
    from rtc_ros.recording.dataset import DatasetError, action_grid

    write_synthetic_episode(tmp_path, "episode_0000", "rtc", seed=1, dry=True)
    write_synthetic_episode(tmp_path, "episode_0001", "rtc", seed=1)
    (dry,) = load_episodes(tmp_path / "episode_0000")
    (wet,) = load_episodes(tmp_path / "episode_0001")
    assert dry.executor.dry.all() and not wet.executor.dry.any()
    names = list(wet.executor.names)
    assert action_grid(wet, names, 0.02, None)[2] == "rtc/executor_state"
    with pytest.raises(DatasetError, match=r"episode_0000: recorded in a dry run \(rtc/executor_state says dry=1\)"):
        action_grid(dry, names, 0.02, None)


def test_a_sidecar_never_holds_nan(tmp_path: Path) -> None:
    """A parameter snapshot or the simulator's status may hold NaN or an infinity: the sidecar and metadata.yaml's
    copy write null (Python's json writes bare NaN, which other JSON readers refuse: a review)."""
    from rtc_ros.recording.sidecar import sidecar_path, write_sidecar

    write_sidecar(tmp_path / "ep", {"params": {"n": {"a": float("nan"), "b": [1.0, float("-inf")]}}, "ok": 2.5,
                                    "np": np.array([1.0, np.nan]), "f32": np.float32("inf")})
    text = sidecar_path(tmp_path / "ep").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"params": {"n": {"a": None, "b": [1.0, None]}}, "ok": 2.5, "np": [1.0, None],
                                "f32": None}


def test_a_bag_that_cannot_write_its_header_is_closed_and_removed(tmp_path: Path, monkeypatch) -> None:
    """A full disk at an episode's start: the writer's file is closed (it was left open) and the empty folder this
    open created is removed (each retry left one, which recover then turned into an empty episode)."""
    import os

    def full(self, force: bool = False) -> None:
        raise RecordingError("writing bag failed: No space left on device")

    monkeypatch.setattr(BagWriter, "flush", full)
    before = len(os.listdir("/proc/self/fd"))
    bag = BagWriter(tmp_path / "episode_0000")
    with pytest.raises(RecordingError, match="No space"):
        bag.open()
    assert not (tmp_path / "episode_0000").exists() and len(os.listdir("/proc/self/fd")) == before
