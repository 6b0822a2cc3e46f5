"""The recorder's episode session (ROS-free): the free space is checked every second whatever ``flush_period``, and
a close forced by a low disk during a stop's grace keeps the operator's verdict (both found by an audit,
2026-12-08: with ``flush_period`` 60 2.2 MB were written below ``stop_free_mb`` unchecked; the sidecar of such a close
said ``stopped_low_disk`` with success and score null)."""

from __future__ import annotations

from pathlib import Path

from rtc_ros.recording.session import DISK_CHECK_S, EpisodeSession


def test_free_space_is_checked_every_second_whatever_the_flush_period(tmp_path: Path) -> None:
    s = EpisodeSession(tmp_path, flush_period=60.0)
    s.start({"task": "t"}, 1, 0)
    first = s.flush(100.0)  # the first check
    assert first is not None and first > 0
    assert s.flush(100.0 + 0.5 * DISK_CHECK_S) is None  # neither a flush nor a check due
    assert s.flush(100.0 + 1.01 * DISK_CHECK_S) is not None  # a check, 59 s before the next flush
    assert s.flush() is None  # (without the clock: only after a flush, as before)
    s.finish("completed", {}, 2)


def test_a_low_disk_close_in_the_stop_grace_keeps_the_verdict(tmp_path: Path) -> None:
    s = EpisodeSession(tmp_path)
    s.start({"task": "t"}, 1, 0)
    s.request_stop("completed", {"success": True, "score": 4, "notes": "handed over"}, 10, 0.0, 0.3)
    meta = s.finish("stopped_low_disk", {}, 20)  # forced before the grace ended
    assert meta is not None and meta["status"] == "stopped_low_disk"
    assert (meta["success"], meta["score"], meta["notes"]) == (True, 4, "handed over")


def test_a_second_stop_in_the_grace_keeps_the_first_one_s_end(tmp_path: Path) -> None:
    s = EpisodeSession(tmp_path)
    s.start({"task": "t"}, 1, 0)
    s.request_stop("completed", {"success": True}, 10, 5.0, 0.3)
    s.request_stop("completed", {"success": False, "notes": "dropped it"}, 20, 5.2, 0.3)  # pressed again
    assert s.stop_deadline == 5.3 and s.meta["stop_time_ns"] == 10
    assert not s.stop_due(5.29) and s.stop_due(5.3)
    meta = s.finish(None, None, 30)
    assert meta is not None and (meta["success"], meta["notes"], meta["stop_time_ns"]) == (False, "dropped it", 10)
