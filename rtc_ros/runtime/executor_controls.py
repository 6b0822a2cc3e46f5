"""The executor's controls (a mixin of :class:`~rtc_ros.runtime.executor.ExecutorCore`, whose state it changes under
the core's lock): an operator's pause and resume, a re-sync after something else moved the robot, muting while
another node commands the robot, an enabling device, and dropping plans grown too old. What each does to the
executing chunk and the step counter is described in :mod:`rtc_ros.runtime.executor`."""

from __future__ import annotations

import threading

import numpy as np

from rtc_ros.runtime.chunk_store import SpliceInfo
from rtc_ros.runtime.executor_types import ExecutorConfig, ExecutorStats, implausible_holds
from rtc_ros.runtime.shaping import AccelLimiter, StartupRamp


class ExecutorControls:
    """Pause, resume, mute, re-sync, enable and drop plans, for :class:`~rtc_ros.runtime.executor.ExecutorCore`."""

    cfg: ExecutorConfig
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
    pause_reason: str
    _pending_splice: SpliceInfo | None
    _resync_step: int
    _ramp: StartupRamp
    _accel: AccelLimiter
    _hold_loud: bool
    _enabled: bool
    _muted: bool

    def _new_stores(self) -> None:  # (the core's)
        raise NotImplementedError

    def pause(self, why: str = "~/pause") -> bool:
        """Hold the current command and stop the step counter; False if already paused. ``why``: said in the
        executor's diagnostics while paused (:attr:`pause_reason`)."""
        with self._lock:
            was, self._paused = self._paused, True
            self.pause_reason = self.pause_reason if was else why
            return not was

    def count_operator_pause(self) -> None:
        """An operator's ``~/pause`` or ``~/hold`` (counted whatever it answers: "already paused" too); reported
        as ``operator_pauses``, so a driver that paused the executor itself (a reset's re-sync) can tell that an
        operator paused it too before it resumes."""
        with self._lock:
            self.stats.operator_pauses += 1

    def resume(self) -> bool:
        """Continue the executing chunk at its next action; False if not paused or measured beyond the limits."""
        with self._lock:
            was, self._paused = self._paused, self._paused and (bool(self.out_of_limits) or self._muted)
            if was and not self._paused:
                self.stats.paused_ticks = 0  # (the next pause is counted afresh)
            return was and not self._paused

    def set_muted(self, muted: bool, resume: bool = False, why: str = "another publisher on the outputs") -> None:
        """Another node publishes on the executor's outputs, or a controller there takes other joints
        (:class:`rtc_ros.nodes.contention.OutputGuard`; ``why``): re-sync, and while muted every tick is silent and
        :meth:`resume` refused. Unmuted: re-sync again (whatever ran meanwhile ran silently), paused unless ``resume``.
        One step under the lock: no tick in between."""
        with self._lock:
            self.resync(why=why + ("" if muted else " (gone now)"))
            self._muted, self._paused = bool(muted), bool(muted) or not resume

    def resync(self, keep_hold: bool = False, command_hold: bool = False, why: str = "~/resync") -> int:
        """Forget every chunk and the hold position, and pause (see the module doc); returns the step from
        which observations are accepted again. Call it after the robot was moved by something else; give
        the new measured position with :meth:`set_measured_position`, then :meth:`resume`.

        ``keep_hold``: keep holding the last command instead (nothing to measure: e.g. while a protective
        stop holds the arm, the arm that did not stop keeps its command -- a gripper keeps squeezing).
        ``command_hold``: the measured hold is commanded even with ``startup_silent`` (a fault, e.g. an arm
        that does not follow: its controllers must not keep the last command); the ``hold_keeps`` joints (grippers)
        keep their last command there (a squeezing gripper is not loosened to its measured opening)."""
        with self._lock:
            self._hold_loud = command_hold or (keep_hold and self._hold_loud)  # a stop keeps a ~/hold's
            if not keep_hold:  # (a second ~/hold before the measurement keeps the first one's command; a protective
                # stop's report forgets the kept command of the joints it holds: hold_joints)
                sent = self._last.copy() if self._commanded and self._last is not None else self._kept
                self._kept = sent if command_hold else None
            if not keep_hold or self._last is None:
                self._last = None
                self._commanded = False
                self.out_of_limits = {}
                self._accel.reset()
            if not keep_hold:
                self.stats.resets += 1
            self._paused = True
            self.pause_reason = why
            self.stats.resyncs += 1
            return self._drop_plans()

    def set_enabled(self, enabled: bool) -> bool:
        """An enabling device (a deadman; ``chunk_executor``'s ``enable_topic``): while False every tick holds as
        when paused (reason ``disabled``, reported paused, the step counter stands). Released, every chunk is
        dropped as at a re-sync keeping the hold (one observed before is refused); pressed again, whatever
        arrived meanwhile too: the next chunk is a start-up chunk. Independent of :meth:`pause` /
        :meth:`resume`. A press goes through :meth:`press` (the node keeps the core disabled until the first joint
        state measured since, then enables and checks it in one step). Returns True if it changed."""
        with self._lock:
            if bool(enabled) == self._enabled:
                return False
            self._enabled = bool(enabled)
            self._drop_plans(skip_step=not self._enabled)  # (pressed: observations while released stay valid)
            return True

    def moved_while_released(self, position: np.ndarray, at_release: np.ndarray | None = None) -> list[int]:
        """After a press of the enabling device: the measured ``position (M,)``. Where the arm is farther than
        ``max_step`` from the held command on some joint -- a ``hold_keeps`` joint (a gripper, whose squeeze
        keeps it off its command) farther from its command than it was at ``at_release``, its first measurement after
        the release, by more than ``max_step``, and not compared without one -- and nothing is still braking
        (``max_accel``), the arm
        moved while released (a device that also cuts the drives, a hand): the executor re-syncs to where it
        stands -- that position commanded at once whatever ``startup_command`` says (the controllers still hold the
        old one), chunks dropped, ``resets`` + 1 -- and returns the moved joints' indices. Otherwise nothing
        changes and it returns [] (an arm that held within ``max_step``, or one still braking from a motion: its
        lag is no move; nothing commanded yet; a chunk already taken over, which :meth:`press` rules out: a moving
        arm's lag is no move). One beyond the limits by more than ``max_step``: no hold
        and paused, as at start-up."""
        q = np.asarray(position, dtype=np.float64).reshape(-1)
        with self._lock:
            if (q.shape != (self.cfg.action_dim,) or not np.isfinite(q).all() or self._last is None
                    or self._accel.moving or not self._enabled or not self._commanded or self._exec[0] >= 0):
                return []  # (nothing commanded yet: the hold follows the measurement anyway; a chunk already runs:
                # a late measurement would read its tracking lag as a move; still braking: its lag. Until 2026-12-07
                # any max_accel switched the check off, at rest too: a docs audit)
            gap = np.abs(q - self._last)
            far = (gap > self.cfg.max_step) & ~self.cfg.hold_keeps  # (a squeezing gripper's opening is no move; one that
            if at_release is not None and np.shape(at_release) == q.shape:  # fell farther open than then is)
                then = np.abs(np.asarray(at_release, dtype=np.float64) - self._last)
                far |= self.cfg.hold_keeps & (gap > then + self.cfg.max_step)
            moved = [int(j) for j in np.flatnonzero(far)]
            if not moved:
                return []
            outside = implausible_holds(self.cfg, dict(enumerate(q.tolist())))
            self.out_of_limits, self._paused = outside, self._paused or bool(outside)
            self.pause_reason = "a measurement beyond the joint limits" if outside else self.pause_reason
            self._last = None if outside else q.copy()  # (all joints: the drives may have been cut, a grip let go)
            self._commanded = not outside  # (not a measuring start: it is commanded from the next tick on, loud)
            self._accel.reset()
            self.stats.resets += 1
            self.stats.resyncs += 1
            self._drop_plans()
            return moved

    def press(self, position: np.ndarray, at_release: np.ndarray | None = None) -> list[int]:
        """The enabling device pressed again, checked against ``position (M,)``, the first joint state measured since
        the press: :meth:`set_enabled` (True) and :meth:`moved_while_released` in one step, so that no chunk can
        take over between them. The node keeps the core disabled from the press until that measurement (a chunk
        taken over before it would be read as the arm's lag, and the check skipped). Returns the moved joints."""
        with self._lock:
            self.set_enabled(True)
            return self.moved_while_released(position, at_release)

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
