"""The camera frames a policy sees: each camera's newest ``t`` frames, or ``t`` frames ``period_s`` apart (ROS-free).

A camera entry of a policy's observation is one frame (``[h, w, c]``, ``t = 1``) or a frame stack
(``[t, h, w, c]``, e.g. the conveyor policy: the newest two frames, so it sees motion). The frames must
show the scene the joint positions come from, recently: :class:`FrameHistory` forgets a camera's frames

* after a gap in its stream longer than ``timeout_s`` (older frames do not show the recent motion), and
* when the executor re-synced because something else moved the robot (:meth:`on_executor_report`: its
  report's ``resets`` count changed -- an episode reset, a homing move, an operator's ``~/resync`` --
  or its step went back: a restarted executor): frames from before a reset show a world that was moved,
  so no observation is built until every camera has sent a frame since; a frame stamped before the
  report that showed the reset (images and executor reports travel on separate topics, so a late frame
  may arrive after it) is dropped. A protective stop's re-syncs keep the hold (the arm's own controller
  held it, the camera kept streaming) and keep the frames. When the executor's clock goes back behind
  that report (a simulator that restarts its clock at a reset), the frames are cleared and the new
  clock's frames are taken from then on.

What this cannot see: a frame taken before the reset and used in an observation built before its report
arrived (within about one executor tick of the reset). With ``obs_time: oldest`` such an observation is
stamped by that frame, maps to a step before the executor's re-sync and is refused by the executor;
with ``obs_time: joint_state`` it is stamped by the joint state and may be accepted.

With fewer than ``t`` frames so far the stack repeats the oldest one, as the training set does at an
episode's start (:meth:`rtc_ros.recording.demo_dataset.DemoDataset.frame_stack`). Thread-safety is the caller's
(the node holds its data lock around every call).

A stack is the camera's newest ``t`` messages, unless ``period_s`` is given: then frame ``i`` is the one
stamped nearest ``i period_s`` before the newest (a policy whose dataset holds its frames one control step
apart, LeRobot's Diffusion Policy, fed by a camera publishing faster than the dataset's fps).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from rtc_ros.runtime.contract import ExecutorReport


def executor_resynced(prev: ExecutorReport | None, rep: ExecutorReport) -> bool:
    """True when ``rep`` is the first report after the executor was reset: re-synced because something
    else moved the robot (its ``resets`` count changed) or restarted (its steps count from 0 again).

    The first report of an executor (``prev`` None) is neither; an executor that does not report
    ``resets`` (``-1``) is only seen to restart."""
    if prev is None:
        return False
    if rep.step < prev.step - 1:
        return True
    return rep.resets >= 0 and prev.resets >= 0 and rep.resets != prev.resets


class FrameHistory:
    """Newest frames per camera for the frame-stack entries of a policy's observation.

    Args:
        frames: ``{camera name: t}`` frames each camera's entry holds (``t >= 1``).
        timeout_s: a gap between two frames longer than this clears the camera's history.
        period_s: the stack's frames by stamp, this far apart (module docstring); None: consecutive messages.
    """

    def __init__(self, frames: dict[str, int], timeout_s: float, period_s: float | None = None) -> None:
        for name, t in frames.items():
            if int(t) < 1:
                raise ValueError(f"frames['{name}'] must be >= 1, got {t}")
        if period_s is not None and not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self.timeout_s = float(timeout_s)
        self._depth = {n: int(t) for n, t in frames.items()}
        self._period_ns = None if period_s is None else int(round(period_s * 1e9))
        # (timed: every frame within the stack's span of the newest is kept, with its stamp)
        self._frames: dict[str, deque[np.ndarray]] = {n: deque(maxlen=None if period_s else int(t))
                                                      for n, t in frames.items()}
        self._stamps: dict[str, deque[int]] = {n: deque() for n in frames}
        self._last_recv: dict[str, float] = {}
        self._last_report: ExecutorReport | None = None
        self._reset_stamp_ns = 0  # frames stamped before this (the last reset's report) are dropped
        self.clears = 0  # resets (and camera clocks stepping back) that cleared the history (diagnostics and tests)
        self.dropped_why = ""  # why the last frame add() refused was dropped: before_reset, out_of_order

    @property
    def reset_stamp_ns(self) -> int:
        """Stamp (ns) of the last reset's report: data stamped before it shows the robot before the reset."""
        return self._reset_stamp_ns

    def __contains__(self, name: str) -> bool:
        return name in self._frames

    def add(self, name: str, image: np.ndarray, recv_s: float, stamp_ns: int = 0) -> bool:
        """Store camera ``name``'s newest frame, received at ``recv_s`` (monotonic seconds) and stamped
        ``stamp_ns`` (its header's, the executor's clock; 0: unknown). Returns False (frame dropped, ``dropped_why``)
        when it was stamped before the last reset's report, or (timed stacks) before the newest frame by up to
        ``timeout_s`` (farther back clears the history: the camera's clock stepped back; the same stamp replaces it)."""
        hist = self._frames.get(name)
        if hist is None:
            raise ValueError(f"camera '{name}' is not one of the policy's cameras {sorted(self._frames)}")
        if 0 < stamp_ns < self._reset_stamp_ns:
            self.dropped_why = "before_reset"
            return False
        last = self._last_recv.get(name)
        stamps = self._stamps[name]
        if last is not None and recv_s - last > self.timeout_s:
            hist.clear()
            stamps.clear()
        if self._period_ns is not None and stamps and stamp_ns <= stamps[-1]:  # (timed: a camera whose stamp froze
            # or stepped back kept every frame, 27 MB/s for 640x480 at 30 Hz until out of memory: a long-run audit)
            if stamps[-1] - stamp_ns > self.timeout_s * 1e9:  # its clock stepped back: start over
                hist.clear()
                stamps.clear()
                self.clears += 1
            elif stamp_ns == stamps[-1]:  # a repeated stamp: the newer frame replaces it
                hist.pop()
                stamps.pop()
            else:  # a little out of order (a clock re-estimating its offset): dropped, the history kept
                self.dropped_why = "out_of_order"
                return False
        hist.append(image)
        stamps.append(int(stamp_ns))
        self._last_recv[name] = recv_s
        if self._period_ns is not None:  # keep one frame at or before the oldest one a stack needs
            oldest = stamp_ns - self._depth[name] * self._period_ns
            while len(stamps) > 1 and stamps[1] <= oldest:
                stamps.popleft()
                hist.popleft()
        elif len(stamps) > len(hist):
            stamps.popleft()
        return True

    def on_executor_report(self, rep: ExecutorReport) -> bool:
        """Feed every executor report; clears all cameras' frames on a reset. Returns whether it did."""
        resynced = executor_resynced(self._last_report, rep)
        self._last_report = rep
        if 0 < rep.stamp_ns < self._reset_stamp_ns:  # the clock went back (a simulator reset its clock):
            self._reset_stamp_ns = int(rep.stamp_ns)  # a new time line; frames of the old one are dropped
            resynced = True
        if resynced:
            self._reset_stamp_ns = max(self._reset_stamp_ns, int(rep.stamp_ns))
            self.clear()
            self.clears += 1
        return resynced

    def clear(self) -> None:
        """Forget every camera's frames (the next frame starts a new stack)."""
        for hist in self._frames.values():
            hist.clear()
        for stamps in self._stamps.values():
            stamps.clear()

    def stacks(self) -> dict[str, list[np.ndarray]]:
        """``{camera: frames, newest first}`` (an empty list: no frame since the start, a gap or a re-sync); by
        stamp with ``period_s``: frame ``i`` the one nearest ``i period_s`` before the newest (``t`` of them)."""
        if self._period_ns is None:
            return {name: list(reversed(h)) for name, h in self._frames.items()}
        out: dict[str, list[np.ndarray]] = {}
        for name, hist in self._frames.items():
            if not hist:
                out[name] = []
                continue
            stamps = np.asarray(self._stamps[name], dtype=np.int64)
            targets = stamps[-1] - self._period_ns * np.arange(self._depth[name], dtype=np.int64)
            out[name] = [hist[int(k)] for k in np.abs(stamps[None, :] - targets[:, None]).argmin(axis=1)]
        return out
