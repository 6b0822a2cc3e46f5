"""Crash-safe recording without ROS: bags cut at many points (SIGKILL, power loss) are repaired.

A bag is written with the project's writer and left unfinished (flushed, never closed: what a
SIGKILL'd recorder leaves); copies cut at several byte offsets are repaired by
``rtc_ros.recording.recover`` and read back with ``rosbags``, ``mcap`` and the episode reader.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rtc_ros.recording.bag import BagWriter, read_sidecar, write_sidecar
from rtc_ros.recording.recover import find_unfinished, main, recover_bag, writer_alive, writer_identity
from rtc_ros.recording.synthetic import JS, joint_state_cdr, string_cdr

T0 = 1_700_000_000 * 10**9
PER_CHUNK = 20


def _dead_writer() -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return {**writer_identity(), "pid": proc.pid, "proc_start": "1"}


def _unfinished_bag(tmp: Path, chunks: int, compression: str = "none") -> tuple[bytes, list[int]]:
    """Bytes of an unfinished bag with ``chunks`` flushed chunks, and the file size after each flush."""
    bag = BagWriter(tmp / "src" / "episode_0000", compression=compression)
    bag.open()
    bag.add_topic("/joint_states", JS)
    bag.add_topic("/rtc/episode", "std_msgs/msg/String")
    bag.write("/rtc/episode", T0, string_cdr('{"cmd": "start"}'))
    sizes = []
    for k in range(chunks):
        for i in range(PER_CHUNK):
            n = k * PER_CHUNK + i
            bag.write("/joint_states", T0 + (n + 1) * 10_000_000,
                      joint_state_cdr(T0 + n, ["a", "b"], np.array([n, -n], float)))
        bag.flush()
        sizes.append(bag.mcap_path.stat().st_size)
    data = bag.mcap_path.read_bytes()
    bag.abort()
    return data, sizes


def _make_crashed(root: Path, name: str, data: bytes, status: str = "recording") -> Path:
    bag = root / name
    bag.mkdir(parents=True)
    (bag / f"{name}.mcap").write_bytes(data)
    write_sidecar(bag, {"episode": name, "status": status, "start_time_ns": T0, "method": "rtc",
                        "params": {}, "writer": _dead_writer()})
    return bag


def _read_all(bag: Path) -> tuple[list[float], int]:
    """joint_states positions via rosbags (checked equal to mcap's), and the total count."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    from rosbags.highlevel import AnyReader

    with AnyReader([bag]) as r:
        rb = [(c.topic, r.deserialize(raw, c.msgtype)) for c, _, raw in r.messages()]
    with open(bag / f"{bag.name}.mcap", "rb") as fh:
        mc = [(ch.topic, m) for _, ch, _, m in make_reader(fh, decoder_factories=[DecoderFactory()])
              .iter_decoded_messages()]
    assert [t for t, _ in rb] == [t for t, _ in mc]
    pos = [float(m.position[0]) for t, m in rb if t == "/joint_states"]
    assert pos == [float(m.position[0]) for t, m in mc if t == "/joint_states"]
    return pos, len(rb)


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_recover_bag_cut_at_many_points(tmp_path: Path, compression: str) -> None:
    data, sizes = _unfinished_bag(tmp_path, 3, compression)
    assert len(data) == sizes[-1]
    # (cut offset, complete chunks before it)
    cuts = [(sizes[0], 1), (sizes[0] + 5, 1), ((sizes[0] + sizes[1]) // 2, 1), (sizes[1], 2),
            (sizes[2] - 1, 3), (sizes[2], 3), (30, 0), (5, 0)]  # sizes[2] - 1: in the message index
    for i, (cut, k) in enumerate(cuts):
        bag = _make_crashed(tmp_path / "crash", f"episode_{i:04d}", data[:cut])
        assert find_unfinished(bag) == [bag]
        r = recover_bag(bag)
        assert r.action == "recovered", r.line()
        pos, total = _read_all(bag)
        n = k * PER_CHUNK
        assert pos == [float(x) for x in range(n)], (cut, k)
        assert total == (n + 1 if k else 0)  # + the start command, in the first chunk
        meta = read_sidecar(bag)
        assert meta["status"] == "recovered" and meta["method"] == "rtc"
        rec = meta["recovery"]
        assert rec["message_count"] == total and rec["previous_status"] == "recording"
        assert rec["bytes_total"] == cut and rec["bytes_used"] <= cut
        if k:
            assert rec["last_ns"] == meta["stop_time_ns"] == T0 + n * 10_000_000
            assert meta["duration_s"] == pytest.approx(n * 0.01)
        assert (bag / f"{bag.name}.mcap.broken").read_bytes() == data[:cut]  # the original, untouched
        assert not (bag / ".recover").exists() and find_unfinished(bag) == []


def test_power_loss_zeros_and_garbage_after_last_flush(tmp_path: Path) -> None:
    data, sizes = _unfinished_bag(tmp_path, 2)
    for i, tail in enumerate([b"\0" * 4096, bytes(range(256)) * 8]):
        bag = _make_crashed(tmp_path / "crash", f"episode_{i:04d}", data + tail)
        r = recover_bag(bag)
        assert r.action == "recovered" and r.info["bytes_dropped"] == len(tail), r.line()
        assert _read_all(bag)[0] == [float(x) for x in range(2 * PER_CHUNK)]


def test_interrupted_recovery_is_repeated_from_the_original(tmp_path: Path) -> None:
    data, sizes = _unfinished_bag(tmp_path, 2)
    bag = _make_crashed(tmp_path / "crash", "episode_0000", data)
    # a recovery killed after renaming the original: only the .broken file is left
    os.replace(bag / "episode_0000.mcap", bag / "episode_0000.mcap.broken")
    (bag / ".recover").mkdir()
    (bag / ".recover" / "junk").write_bytes(b"x")
    assert find_unfinished(tmp_path / "crash") == [bag]
    assert recover_bag(bag).action == "recovered"
    assert len(_read_all(bag)[0]) == 2 * PER_CHUNK
    # killed after metadata.yaml, before the sidecar: the sidecar still says recording
    side = read_sidecar(bag)
    write_sidecar(bag, {**side, "status": "recording"})
    assert recover_bag(bag).action == "recovered" and read_sidecar(bag)["status"] == "recovered"
    assert (bag / "episode_0000.mcap.broken").read_bytes() == data


def test_live_writer_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = _unfinished_bag(tmp_path, 1)
    bag = _make_crashed(tmp_path / "crash", "episode_0000", data)
    me = writer_identity()
    write_sidecar(bag, {"status": "recording", "writer": me})
    assert writer_alive(me, None)
    assert not writer_alive({**me, "boot_id": "another-boot"}, None)
    assert not writer_alive({**me, "proc_start": "0"}, None)  # the pid now belongs to another process
    assert not writer_alive(_dead_writer(), None)
    r = recover_bag(bag)
    assert r.action == "skipped" and "still be writing" in r.detail
    assert main([str(bag), "--dry-run"]) == 0  # says what a repair would do: skip it (it said "would recover")
    assert capsys.readouterr().out.startswith(f"would skip: {bag} (its writer ")
    assert main([str(bag), "--dry-run", "--force"]) == 0 and capsys.readouterr().out == f"would recover: {bag}\n"
    (bag / ".reserve").write_bytes(bytes(1000))  # the recorder's reserve (session.RESERVE_BYTES), kept while it writes
    assert recover_bag(bag).action == "skipped" and (bag / ".reserve").is_file()
    assert recover_bag(bag, force=True).action == "recovered"
    assert not (bag / ".reserve").exists()  # (a killed recorder's reserve: room for the repair, then gone)


def test_recover_command_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rtc_ros.recording.episode import find_bags, load_episodes
    from rtc_ros.report.cli import build_report

    data, _ = _unfinished_bag(tmp_path, 2)
    root = tmp_path / "episodes"
    _make_crashed(root, "episode_0000", data)
    shutil.copytree(tmp_path / "src" / "episode_0000", root / "episode_0001")  # no sidecar at all
    os.rename(root / "episode_0001" / "episode_0000.mcap", root / "episode_0001" / "episode_0001.mcap")
    os.utime(root / "episode_0001" / "episode_0001.mcap", (0, 0))  # old: its writer is long gone
    done = BagWriter(root / "episode_0002")  # a finished bag is not touched
    done.open()
    done.close({"status": "completed"})
    assert find_bags(root) == [root / "episode_0002"]  # unfinished bags are invisible to readers
    with pytest.raises(FileNotFoundError, match="python -m rtc_ros.recording.recover .*episode_0000"):
        load_episodes(root / "episode_0000")  # named with the repair (rosbags said only "Expected metadata file")
    assert main([str(root)]) == 0
    out = capsys.readouterr().out
    assert out.count("recovered: ") == 2 and "episode_0002:" not in out and "41 messages kept" in out, out
    assert main([str(root)]) == 0 and "nothing to recover" in capsys.readouterr().out
    eps = load_episodes(root / "episode_0000")
    assert len(eps) == 1 and eps[0].meta["status"] == "recovered"
    assert read_sidecar(root / "episode_0001")["status"] == "recovered"
    res = build_report(root, tmp_path / "report", plots=False)
    assert res["episodes"] == 3 and sorted(res["recovered_episodes"]) == ["episode_0000", "episode_0001"]
    rows = (tmp_path / "report" / "episodes.csv").read_text()
    assert rows.count(",recovered") == 2
    assert sum(g["n"] for g in res["groups"]) == 1  # cut short: not in the group means by default
    res = build_report(root, tmp_path / "report", plots=False, include_cut_short=True)
    assert sum(g["n"] for g in res["groups"]) == 3
    # not an MCAP file: reported, exit 1, nothing deleted
    bad = root / "episode_0003"
    bad.mkdir()
    (bad / "episode_0003.mcap").write_bytes(b"not an mcap file at all")
    write_sidecar(bad, {"status": "recording", "writer": _dead_writer()})
    assert main([str(root)]) == 1
    assert "failed: " in capsys.readouterr().out and (bad / "episode_0003.mcap").is_file()
    # a report over a folder that still holds an unrecovered bag says so
    res = build_report(root, tmp_path / "report2", plots=False)
    assert res["unrecovered_bags"] == [str(bad)]
    assert json.loads((bad / "episode_0003.json").read_text())["status"] == "recording"


# --------------------------------------------------------------------- the recorder's close, cut short
def _closed_episode(tmp: Path, kill_before_sidecar: bool = False):
    """A session that records 5 joint states and stops with success/score; ``kill_before_sidecar``: the
    process dies after the bag was closed and before the final sidecar was written."""
    import rtc_ros.recording.session as session_mod
    from rtc_ros.recording.session import EpisodeSession

    session = EpisodeSession(tmp / "eps")
    bag = session.start({"task": "t"}, T0, 0)
    session.write_sidecar()  # 'recording', as the node writes it at the start
    bag.add_topic("/joint_states", JS)
    for i in range(5):
        bag.write("/joint_states", T0 + i * 10**7, joint_state_cdr(T0 + i * 10**7, ["a"], np.array([float(i)])))
    session.request_stop("completed", {"success": True, "score": 4}, T0 + 10**8, 0.0, 0.0)

    class Killed(BaseException):
        pass

    if kill_before_sidecar:
        def killed(*_a: Any, **_k: Any) -> None:
            raise Killed()
        real, session_mod.write_sidecar = session_mod.write_sidecar, killed
        try:
            with pytest.raises(Killed):
                session.finish(None, None, T0 + 10**8)
        finally:
            session_mod.write_sidecar = real
    else:
        session.finish(None, None, T0 + 10**8)
    return bag.path


def test_killed_after_the_close_only_the_sidecar_is_restored_with_the_verdict(tmp_path, capsys) -> None:
    """Before: recovery rebuilt metadata.yaml from the stale 'recording' sidecar: success and score were lost."""
    bag = _closed_episode(tmp_path, kill_before_sidecar=True)
    assert read_sidecar(bag)["status"] == "recording" and find_unfinished(bag.parent) == [bag]
    # its writer (this process) is alive, but a complete bag is restored anyway: the dry run says so (a review)
    assert main([str(bag), "--dry-run"]) == 0 and capsys.readouterr().out == f"would recover: {bag}\n"
    rec = recover_bag(bag)
    assert rec.action == "restored", rec.line()
    side = read_sidecar(bag)
    assert (side["status"], side["success"], side["score"]) == ("completed", True, 4)
    assert not (bag / f"{bag.name}.mcap.broken").exists() and find_unfinished(bag.parent) == []


@pytest.mark.parametrize("damage", ["empty", "missing"])
def test_a_complete_bag_whose_metadata_yaml_was_lost_is_repaired(tmp_path, damage) -> None:
    """A power loss can leave metadata.yaml empty or missing after the sidecar said 'completed'. Before,
    such a bag was skipped by the report (empty) or invisible everywhere (missing), and recover said
    "nothing to recover"."""
    from rtc_ros.recording.episode import load_episodes

    bag = _closed_episode(tmp_path)
    if damage == "empty":
        (bag / "metadata.yaml").write_text("")
    else:
        (bag / "metadata.yaml").unlink()
    assert find_unfinished(bag.parent) == [bag]
    side = read_sidecar(bag)
    side["writer"] = _dead_writer()
    write_sidecar(bag, side)
    rec = recover_bag(bag)
    assert rec.action == "recovered", rec.line()
    (ep,) = load_episodes(bag)
    assert ep.joint_states is not None and len(ep.joint_states) == 5
    assert read_sidecar(bag)["recovery"]["previous_status"] == "completed"


def test_bag_readers_skip_an_interrupted_repair_s_hidden_copy(tmp_path) -> None:
    from rtc_ros.recording.episode import find_bags

    bag = _closed_episode(tmp_path)
    shutil.copytree(bag, bag / ".recover" / bag.name)  # left by a recovery killed before its swap
    assert find_bags(bag.parent) == [bag]


def test_a_full_disk_while_writing_is_a_recording_error(tmp_path) -> None:
    """The writer puts a full chunk on disk inside write() (a large camera frame): an OSError there must
    become a RecordingError (the recorder closes the episode as failed and keeps running); before, it
    escaped and killed the recorder. The full disk is a file-size limit, in a child process."""
    code = f"""
import resource, signal, sys
import numpy as np
from rtc_ros.recording.bag import BagWriter, RecordingError
from rtc_ros.recording.synthetic import image_cdr
bag = BagWriter({str(tmp_path / 'episode_0000')!r})
bag.open()
bag.add_topic("/cam/image_raw", "sensor_msgs/msg/Image")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, resource.RLIM_INFINITY))
try:
    bag.write("/cam/image_raw", 1, image_cdr(1, np.zeros((480, 800, 3), np.uint8)))
except RecordingError as exc:
    print("RecordingError", exc)
    sys.exit(0)
sys.exit(3)
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "writing bag" in out.stdout


def test_one_bag_that_cannot_be_repaired_does_not_stop_the_others(tmp_path, monkeypatch) -> None:
    """The recorder repairs orphans at start-up with ``recover_all``: a sidecar that is not UTF-8 (a torn
    write on another file system) or a bag whose repair raises OSError (no permission) must not raise
    out of it (the recorder exited with a traceback), and the other bags are still repaired."""
    import rtc_ros.recording.recover as rec

    data, _ = _unfinished_bag(tmp_path, 2)
    bad = _make_crashed(tmp_path / "crash", "episode_0000", data)
    (bad / "episode_0000.json").write_bytes(b"\xff\xfe\x00garbage")
    locked = _make_crashed(tmp_path / "crash", "episode_0001", data)
    good = _make_crashed(tmp_path / "crash", "episode_0002", data)
    repair = rec.recover_bag

    def refusing(bag, force=False):
        if Path(bag).name == locked.name:
            raise PermissionError(13, "Permission denied", str(bag))
        return repair(bag, force=force)

    monkeypatch.setattr(rec, "recover_bag", refusing)
    out = {r.bag.name: r for r in rec.recover_all(tmp_path / "crash")}
    assert out["episode_0001"].action == "failed" and "PermissionError" in out["episode_0001"].detail
    assert out["episode_0002"].action == "recovered" and _read_all(good)[0]
    assert out["episode_0000"].action in ("recovered", "failed", "skipped")  # no exception out of recover_all


def test_a_folder_renamed_after_recording_is_named_with_how_to_repair_it(tmp_path, capsys) -> None:
    """A crashed episode copied to another folder name: recover said 'nothing to recover' (exit 0) and the report
    'no episodes found' with no unrecovered bag (a chaos walkthrough). Now it is found, refused without a change,
    saying which name to give; renamed back, it is repaired."""
    from rtc_ros.report.cli import build_report

    data, _ = _unfinished_bag(tmp_path, 2)
    root = tmp_path / "copies"
    crashed = _make_crashed(root, "episode_0005", data)
    moved = root / "ep5_copy"
    crashed.rename(moved)
    before = sorted((p.name, p.stat().st_size) for p in moved.iterdir())
    assert find_unfinished(root) == [moved]
    assert main([str(root)]) == 1
    out = capsys.readouterr().out
    assert "the folder was renamed after recording: its recording is episode_0005.mcap" in out, out
    assert "rename the folder back to episode_0005" in out
    assert sorted((p.name, p.stat().st_size) for p in moved.iterdir()) == before  # nothing changed
    assert build_report(root, tmp_path / "report", plots=False).get("unrecovered_bags") == [str(moved)]
    moved.rename(root / "episode_0005")
    assert main([str(root)]) == 0 and "recovered: " in capsys.readouterr().out
    rosbag2 = tmp_path / "other" / "run1"  # `ros2 bag record`'s own naming (run1/run1_0.mcap, no sidecar): not ours
    rosbag2.mkdir(parents=True)
    (rosbag2 / "run1_0.mcap").write_bytes(data)
    assert find_unfinished(rosbag2.parent) == []
