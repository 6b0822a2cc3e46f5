"""The executor's controls (a mixin of :class:`~rtc_ros.runtime.executor.ExecutorCore`, whose state it changes under
the core's lock): an operator's pause and resume, a re-sync after something else moved the robot, muting while
another node commands the robot, an enabling device, and dropping plans grown too old. What each does to the
executing chunk and the step counter is described in :mod:`rtc_ros.runtime.executor`."""

from __future__ import annotations

import threading

import numpy as np

from rtc_ros.runtime.chunk_store import SpliceInfo
from rtc_ros.runtime.executor_types import ExecutorStats
from rtc_ros.runtime.shaping import AccelLimiter, StartupRamp


class ExecutorControls:
    """Pause, resume, mute, re-sync, enable and drop plans, for :class:`~rtc_ros.runtime.executor.ExecutorCore`."""

    stats: ExecutorStats
    out_of_limits: dict[int, float]
    _lock: threading.RLock
    _next_step: int
    _last: np.ndarray | None
    _commanded: bool
    _last_seq: int
    _exec: tuple[int, int, int]
    _rejected: tuple[int, str]
    _paused: bool
    _pending_splice: SpliceInfo | None
    _resync_step: int
    _ramp: StartupRamp
    _accel: AccelLimiter
    _hold_loud: bool
    _enabled: bool
    _muted: bool

    def _new_stores(self) -> None:  # (the core's)
        raise NotImplementedError

    def pause(self) -> bool:
        """Hold the current command and stop the step counter; False if already paused."""
        with self._lock:
            was, self._paused = self._paused, True
            return not was

    def resume(self) -> bool:
        """Continue the executing chunk at its next action; False if not paused or measured beyond the limits."""
        with self._lock:
            was, self._paused = self._paused, self._paused and (bool(self.out_of_limits) or self._muted)
            return was and not self._paused

    def set_muted(self, muted: bool, resume: bool = False) -> None:
        """Another node publishes on the executor's outputs (:class:`rtc_ros.nodes.contention.OutputGuard`): re-sync,
        and while muted every tick is silent and :meth:`resume` refused. Unmuted: re-sync again (whatever ran
        meanwhile ran silently), paused unless ``resume``. One step under the lock: no tick in between."""
        with self._lock:
            self.resync()
            self._muted, self._paused = bool(muted), bool(muted) or not resume

    def resync(self, keep_hold: bool = False, command_hold: bool = False) -> int:
        """Forget every chunk and the hold position, and pause (see the module doc); returns the step from
        which observations are accepted again. Call it after the robot was moved by something else; give
        the new measured position with :meth:`set_measured_position`, then :meth:`resume`.

        ``keep_hold``: keep holding the last command instead (nothing to measure: e.g. while a protective
        stop holds the arm, the arm that did not stop keeps its command -- a gripper keeps squeezing).
        ``command_hold``: the measured hold is commanded even with ``startup_silent`` (a fault, e.g. an arm
        that does not follow: its controllers must not keep the last command)."""
        with self._lock:
            self._hold_loud = command_hold or (keep_hold and self._hold_loud)  # a stop keeps a ~/hold's
            if not keep_hold or self._last is None:
                self._last = None
                self._commanded = False
                self.out_of_limits = {}
                self._accel.reset()
            if not keep_hold:
                self.stats.resets += 1
            self._paused = True
            self.stats.resyncs += 1
            return self._drop_plans()

    def set_enabled(self, enabled: bool) -> bool:
        """An enabling device (a deadman; ``chunk_executor``'s ``enable_topic``): while False every tick holds as
        when paused (reason ``disabled``, reported paused, the step counter stands). Released, every chunk is
        dropped as at a re-sync keeping the hold (one observed before is refused); pressed again, whatever
        arrived meanwhile too, and the hold is forgotten as at a re-sync (``resets`` counts it): the arm may have
        moved while released (a device that also cuts the drives, a hand), so the executor measures it again
        (:meth:`set_measured_position`; until then :meth:`tick` commands nothing) and the next chunk is a
        start-up chunk from there, ramped in. Before 2026-12-07 it went on from the old hold, which after a
        move would have been a jump. Independent of :meth:`pause` / :meth:`resume`. Returns True if it changed."""
        with self._lock:
            if bool(enabled) == self._enabled:
                return False
            self._enabled = bool(enabled)
            if self._enabled:
                self._last = None
                self._commanded = False
                self.out_of_limits = {}
                self._accel.reset()
                self.stats.resets += 1
            self._drop_plans(skip_step=not self._enabled)  # (pressed: observations while released stay valid)
            return True

    @property
    def enabled(self) -> bool:
        with self._lock:
            return self._enabled

    def drop_plans(self) -> None:
        """Forget every chunk, keeping the hold and whether paused: the next chunk is a start-up chunk. For plans
        grown older than ``max_chunk_age`` while nothing advanced (a long operator pause, a stalled process), so
        no step number is skipped (a chunk observed before is refused by its age; the reports after a resume or
        a stall carry no skipped step, so one that was would refuse the first fresh observation too). The newest
        accepted chunk is reported refused (``resync``): one not yet taken over would otherwise be awaited by
        the policy side until its ack timeout."""
        with self._lock:
            if self._last_seq >= 0:
                self._rejected = (self._last_seq, "resync")
            self._drop_plans(skip_step=False)

    def _drop_plans(self, skip_step: bool = True) -> int:
        """Forget every chunk; with ``skip_step``, chunks observed before the returned step are refused (reason
        ``resync``)."""
        self._new_stores()
        self._exec = (-1, -1, 0)
        self._pending_splice = None
        self._ramp.cancel()
        self._last_seq = -1  # seqs start afresh (older plans: refused by t_obs); else a restarted policy node
        # would be refused ('order') chunk after chunk
        # skip one step number: the paused reports carry step k = the old next step, so an observation
        # stamped after the re-sync maps to k + 1 and one stamped before it to <= k (refused)
        if skip_step:
            self._next_step += 1
            self._resync_step = self._next_step
        return self._resync_step
