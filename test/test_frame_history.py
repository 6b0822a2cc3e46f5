"""FrameHistory: the camera frames an observation is built from are cleared on a gap and on an executor re-sync."""

from __future__ import annotations

import numpy as np
import pytest

from rtc_ros.runtime.contract import ExecutorReport
from rtc_ros.runtime.executor import ExecutorConfig, ExecutorCore
from rtc_ros.runtime.frame_history import FrameHistory, executor_resynced


def _img(v: float) -> np.ndarray:
    return np.full((2, 2, 3), v, dtype=np.float32)


def _values(frames: list[np.ndarray]) -> list[float]:
    return [float(f[0, 0, 0]) for f in frames]


def test_stack_newest_first_bounded_and_cleared_after_a_gap() -> None:
    h = FrameHistory({"cam": 2, "wrist": 1}, timeout_s=0.5)
    assert h.stacks() == {"cam": [], "wrist": []}
    for i, t in enumerate([0.0, 0.1, 0.2]):
        h.add("cam", _img(i), t)
        h.add("wrist", _img(10 + i), t)
    assert _values(h.stacks()["cam"]) == [2.0, 1.0]  # the newest two, newest first
    assert _values(h.stacks()["wrist"]) == [12.0]
    h.add("cam", _img(3), 0.2 + 0.6)  # a gap longer than the timeout: the older frame shows old motion
    assert _values(h.stacks()["cam"]) == [3.0]
    with pytest.raises(ValueError, match="camera 'top'"):
        h.add("top", _img(0), 1.0)
    with pytest.raises(ValueError, match="frames\\['cam'\\]"):
        FrameHistory({"cam": 0}, 1.0)


def _rep(step: int, seq: int, resets: int = -1) -> ExecutorReport:
    return ExecutorReport(step=step, seq=seq, takeover=max(seq, -1), consumed=0, resets=resets)


def test_reset_detection() -> None:
    assert not executor_resynced(None, _rep(0, -1, 0))  # the first report
    assert not executor_resynced(_rep(4, -1, 0), _rep(5, -1, 0))  # still before the first chunk
    assert not executor_resynced(_rep(4, 0, 0), _rep(5, 1, 0))  # a new chunk
    assert not executor_resynced(_rep(40, 3, 0), _rep(41, -1, 0))  # chunks dropped by a stop: no reset
    assert executor_resynced(_rep(40, 3, 0), _rep(41, -1, 1))  # reset: the robot was moved
    assert executor_resynced(_rep(50, -1, 1), _rep(51, -1, 2))  # a second one before the next chunk
    assert executor_resynced(_rep(400, -1), _rep(3, -1))  # a restarted executor counts from 0 again
    assert not executor_resynced(_rep(40, 3), _rep(41, -1))  # an older executor: resets not seen
    back = ExecutorReport.decode(_rep(7, 2, 3).encode())
    old_executor = " ".join(w for w in _rep(7, 2, 3).encode().split() if not w.startswith("resets="))
    assert back.resets == 3 and ExecutorReport.decode(old_executor).resets == -1
    assert "resets" not in _rep(7, 2).encode()  # not carried: omitted, not -1


def test_executor_reset_clears_frames_until_a_new_one_arrives_and_a_stop_keeps_them() -> None:
    """Driven by a real ExecutorCore's reports: an operator re-sync (an episode reset: something else moved
    the robot) clears the frames; a protective stop's re-syncs (keep_hold) do not."""
    H, M = 10, 2
    core = ExecutorCore(ExecutorConfig(horizon=H, action_dim=M))
    core.set_measured_position(np.zeros(M))
    h = FrameHistory({"cam": 2}, timeout_s=1.0)
    h.add("cam", _img(0), 0.0)
    h.add("cam", _img(1), 0.1)

    def tick() -> bool:
        t = core.tick()
        assert t is not None
        return h.on_executor_report(ExecutorReport.decode(t.report(0).encode(), 0, t.command))

    assert not any(tick() for _ in range(3))  # before any chunk: nothing to forget
    core.offer_chunk(np.zeros((H, M)), seq=0, t_obs=core.next_step, d=0, s=5)
    assert not any(tick() for _ in range(3))
    core.resync(keep_hold=True)  # a protective stop begins ...
    assert not any(tick() for _ in range(3))
    core.resync(keep_hold=True)  # ... and ends: the scene was not moved by something else
    core.resume()
    assert not any(tick() for _ in range(3))
    assert _values(h.stacks()["cam"]) == [1.0, 0.0]
    core.resync()  # the world was moved by something else (an episode reset)
    core.set_measured_position(np.ones(M))
    assert tick() and h.clears == 1
    assert h.stacks()["cam"] == []  # no observation until the camera sends a frame from after the reset
    assert not tick()  # cleared once per reset
    h.add("cam", _img(2), 0.2)
    assert _values(h.stacks()["cam"]) == [2.0]
    core.resync()  # a second reset before any chunk (a homing move after the episode reset)
    core.set_measured_position(np.ones(M))
    assert tick() and h.clears == 2 and h.stacks()["cam"] == []


def test_a_frame_stamped_before_the_reset_report_is_dropped() -> None:
    h = FrameHistory({"cam": 2}, timeout_s=10.0)
    h.on_executor_report(_rep(10, 2, 0))
    assert h.add("cam", _img(0), 0.0, stamp_ns=900)
    h.on_executor_report(ExecutorReport(step=12, seq=-1, takeover=-1, consumed=0, stamp_ns=1000, resets=1))
    assert not h.add("cam", _img(1), 0.1, stamp_ns=999)  # taken before the reset, delivered after its report
    assert h.stacks()["cam"] == []
    assert h.add("cam", _img(2), 0.2, stamp_ns=0)  # unstamped: kept (its age is unknown)
    assert h.add("cam", _img(3), 0.3, stamp_ns=1001)
    assert _values(h.stacks()["cam"]) == [3.0, 2.0]


def test_frames_are_taken_again_when_the_clock_goes_back_after_a_reset() -> None:
    """A simulator that restarts its clock at a reset (Gazebo's reset_simulation): the new clock's frames are
    stamped below the reset report's stamp. Before, every one was dropped as "taken before the reset" until the
    clock passed the old stamp again (no observation, the robot stood still); now the first report on the new
    clock starts a new time line."""
    s = 1_000_000_000
    h = FrameHistory({"cam": 1}, timeout_s=10.0)
    h.on_executor_report(ExecutorReport(step=1500, seq=3, takeover=1490, consumed=2, stamp_ns=30 * s, resets=0))
    assert h.on_executor_report(ExecutorReport(step=1502, seq=-1, takeover=-1, consumed=0, stamp_ns=30 * s + 1,
                                               resets=1, paused=True))
    assert not h.add("cam", _img(1), 100.0, stamp_ns=s // 10)  # new clock, before its first report: unknown yet
    clears = h.clears
    for i in range(5):  # the executor's reports on the new clock, frames between them
        h.on_executor_report(ExecutorReport(step=1503 + i, seq=-1, takeover=-1, consumed=0,
                                            stamp_ns=s // 10 + i * 20_000_000, resets=1))
        assert h.add("cam", _img(2 + i), 100.0 + 0.02 * i, stamp_ns=s // 10 + i * 20_000_000 + 1)
    assert h.clears == clears + 1  # the clock jump cleared once (the old time line's frames)
    assert _values(h.stacks()["cam"]) == [6.0]
    assert not h.add("cam", _img(9), 100.2, stamp_ns=s // 20)  # taken before the new line's first report


def test_timed_stacks_take_the_frames_a_control_period_apart() -> None:
    """With period_s (a policy whose dataset holds frames one control step apart) a 100 fps camera's stack for a
    20 ms policy skips every other frame; only what the stack needs is kept; fewer: the oldest repeated; a gap
    and a reset clear it; a single-image entry is the newest."""
    ms = 1_000_000
    h = FrameHistory({"cam": 3, "wrist": 1}, timeout_s=0.5, period_s=0.02)
    h.add("cam", _img(0), 0.0, 10**9)
    assert _values(h.stacks()["cam"]) == [0.0, 0.0, 0.0]
    for k in range(1, 20):  # every 10 ms
        h.add("cam", _img(k), 0.01 * k, 10**9 + 10 * k * ms)
        h.add("wrist", _img(100 + k), 0.01 * k, 10**9 + 10 * k * ms)
    assert _values(h.stacks()["cam"]) == [19.0, 17.0, 15.0]  # 0, 20, 40 ms before the newest
    assert _values(h.stacks()["wrist"]) == [119.0]
    assert len(h._frames["cam"]) <= 8  # (60 ms of 10 ms frames, and one before)
    h.add("cam", _img(50), 1.0, 2 * 10**9)  # after a gap longer than the timeout
    assert _values(h.stacks()["cam"]) == [50.0, 50.0, 50.0]
    h.clear()
    assert h.stacks()["cam"] == []
    with pytest.raises(ValueError, match="period_s"):
        FrameHistory({"cam": 2}, 1.0, period_s=0.0)


def test_timed_stacks_stay_bounded_when_a_camera_stamp_freezes_or_steps_back() -> None:
    """A long-run audit (2026-12-07): in timed mode (period_s) only stamps moving on dropped old frames; a camera
    publishing with a frozen stamp kept every frame (27 MB/s for 640x480 at 30 Hz: out of memory in minutes). A
    repeated stamp now replaces its frame, a stamp going back starts the history over."""
    h = FrameHistory({"cam": 3}, timeout_s=0.5, period_s=0.02)
    t0 = 1_000_000_000
    for k in range(300):  # 10 s at 30 Hz, the stamp frozen
        h.add("cam", np.full((2, 2, 3), k % 256, np.uint8), recv_s=k / 30.0, stamp_ns=t0)
    assert len(h._frames["cam"]) == 1 and int(h.stacks()["cam"][0][0, 0, 0]) == 299 % 256  # the newest frame
    for k in range(300):  # the clock steps back 60 s, then runs on
        h.add("cam", np.full((2, 2, 3), k % 256, np.uint8), recv_s=10.0 + k / 30.0, stamp_ns=t0 - 60 * 10**9 + k * 33_000_000)
    assert len(h._frames["cam"]) <= 4 and h.clears == 1  # (before: every frame since the step back)


def test_a_frame_stamped_a_little_before_the_newest_is_dropped_not_the_history() -> None:
    """A camera clock re-estimating its offset (RealSense global time) stamps a frame a little back now and then:
    dropped with its reason, the stack kept (a review: clearing on any step back halved the full stacks)."""
    h = FrameHistory({"cam": 2}, timeout_s=0.5, period_s=0.02)
    t0 = 1_000_000_000
    full = 0
    for k in range(600):
        back = 1_000_000 if k % 3 == 2 else 0  # every third frame stamped 1 ms before the one before it
        stamp = t0 + (k - (k % 3 == 2)) * 33_000_000 - back
        kept = h.add("cam", np.full((2, 2, 3), k % 256, np.uint8), recv_s=k / 30.0, stamp_ns=stamp)
        assert kept == (k % 3 != 2) and (kept or h.dropped_why == "out_of_order")
        full += len(h.stacks()["cam"]) == 2 and h.stacks()["cam"][0] is not h.stacks()["cam"][1]
    # full at every frame but those after a dropped one (66 ms back to the previous: nearer the newest itself)
    assert h.clears == 0 and full == 400  # (clearing at each step back: 201)
