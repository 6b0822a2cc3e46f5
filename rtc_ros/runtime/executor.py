"""GETACTION of Algorithm 1, ROS-free: what the robot commands at every controller tick.

:class:`ExecutorCore` keeps the chunks of the configured execution mode
(:func:`rtc_ros.runtime.methods.executor_mode`, stores in :mod:`rtc_ros.runtime.chunk_store`) and
turns them into one safe joint command per tick:

* ``switch`` (rtc, rtc_linear, rtc_hard, naive, bid): a chunk observed at step ``t_obs`` that
  arrives when ``now`` is the next step takes over at once, at index ``now - t_obs`` (the consumed
  delay). Nothing is re-executed, nothing beyond it is skipped.
* **start-up** (every mode): the first chunk after start, a re-sync or a press of the enabling device
  starts at its index 0 (reported ``consumed = 0``): the robot held still while it was computed.
* ``sync``: execute ``s`` actions of a chunk, then hold until the next chunk, which starts at its
  index 0 (the robot did not move while the model ran; one observed while it still moved, at the
  index of the step the robot has reached: never back to where it was observed).
* ``ensemble`` (te_sparse, te_dense): every tick commands the average of all stored predictions.

Every chunk passes one validator (:meth:`ExecutorCore.offer_chunk`); a refused chunk raises
:class:`ChunkRejected` with a reason code and is remembered (seq, reason) for the executor-state
report, so the policy side can replan at once instead of waiting.

Every action commanded is clamped to the joint limits and to ``max_step`` per tick relative to the previous
command: the robot never sees NaN or a jump within a run of commands (after a re-sync the base is the
measured position: a commanded hold steps the command to where the arm is). With no action (startup,
starvation, sync pause) the core holds the last command, never extrapolating (with ``max_accel`` a moving
joint brakes to a stop). Hold positions come from the robot: the measured position
(``set_measured_position``; until it is known ``tick`` returns None and the step counter does not advance;
beyond the limits by less than ``max_step`` it is walked in at ``max_step`` per tick, by more it is refused)
or a protective stop's report (:meth:`ExecutorCore.hold_joints`, refused beyond the limits by more than
``max_step``). With ``startup_silent`` the holds before anything is commanded (start-up; paused after a
re-sync) are not sent (``Tick.silent``; the base follows the measured position until a chunk is commanded),
except after a re-sync with ``command_hold`` (``~/hold``).

**Enabling device** (:meth:`ExecutorCore.set_enabled`): while disabled every tick holds as when paused
(reason ``disabled``), every chunk is dropped at the release and again at the press (the next is a start-up
chunk); :meth:`resume` does not move a disabled robot.

**Pause** (an operator's): every tick repeats the last command (or brakes to a stop) and the step counter stands
still, so the executing chunk is neither consumed nor skipped; **resume** continues it at its next action,
with no jump (the node drops it first, :meth:`ExecutorCore.drop_plans`, when the pause lasted longer than
``max_chunk_age``). Chunks offered while paused are validated and spliced as usual (at the frozen step).

**Re-sync** (after something else moved the robot: a homing move, an episode reset, a teleop
takeover): every stored chunk is dropped, the hold position is measured again (``tick`` returns None
until ``set_measured_position`` gives it) and the executor is left paused at that position. Chunks
observed before the re-sync are refused (reason ``resync``); after ``resume`` the next chunk is a
start-up chunk again (index 0, from rest). The step counter keeps counting (it never goes back; it
skips one number at the re-sync, so observations before and after it map to different steps).

**Shaping** (:mod:`rtc_ros.runtime.shaping`, both off by default): a start-up chunk is blended in from
the hold over ``startup_ramp`` ticks (minimum jerk), and with ``max_accel`` every command's change of
velocity is bounded (a hold then brakes instead of stopping in one tick), before the clamp.

Steps count executed ticks from 0; ``next_step`` is the step the next ``tick`` commands. For every
mode the report's ``consumed`` is the observed delay ``takeover - t_obs``; the executing chunk's
index 0 is at step ``takeover - consumed`` (= ``t_obs``, or ``takeover`` for the start-up chunk) in
switch/ensemble mode, at ``takeover`` minus the moving steps since ``t_obs`` (mostly 0) in sync mode.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

from rtc_ros.core.ensemble import TemporalEnsembler
from rtc_ros.runtime.chunk_store import SpliceInfo, SwitchStore, SyncStore
from rtc_ros.runtime.chunk_validation import ChunkValidator
from rtc_ros.runtime.executor_controls import ExecutorControls
from rtc_ros.runtime.executor_types import (  # noqa: F401 (re-exported)
    EXEC_MODES, ChunkRejected, ExecutorConfig, ExecutorStats, Tick, clamp_command, implausible_holds,
)
from rtc_ros.runtime.shaping import AccelLimiter, StartupRamp

#: hold reasons reported in :class:`Tick`
HOLD_STARTUP = "startup"  # no chunk has arrived yet
HOLD_STARVED = "starved"  # the executing chunk ran out and no newer one arrived (inference late or dead)
HOLD_SYNC_PAUSE = "sync_pause"  # synchronous method: waiting for the next chunk by design
HOLD_PAUSED = "paused"  # an operator paused execution: the step counter stands still
HOLD_DISABLED = "disabled"  # an enabling device is released (set_enabled): as paused


class ExecutorCore(ExecutorControls, ChunkValidator):
    """ROS-free executor state machine; thread-safe (one lock around chunk offers and ticks).

    ``max_chunk_age`` (seconds, 0 = off), ``max_limit_excess`` (a fraction of each joint's range, 0 = off) and
    ``max_start_gap`` (the joints' units, 0 = off; see :meth:`~rtc_ros.runtime.chunk_validation.ChunkValidator._validate`)
    may be changed at run time.
    """

    def __init__(self, config: ExecutorConfig, max_chunk_age: float = 0.0, max_limit_excess: float = 0.0,
                 max_start_gap: float = 0.0) -> None:
        self.cfg = config
        self.max_chunk_age = float(max_chunk_age)
        self.max_limit_excess = float(max_limit_excess)
        self.max_start_gap = float(max_start_gap)
        self._lock = threading.RLock()  # (re-entrant: set_muted re-syncs under it)
        self._next_step = 0
        self._last: np.ndarray | None = None  # last command, or the measured position before the first
        self._commanded = False  # anything sent since start / the last re-sync (False: _last is measured)
        self._kept: np.ndarray | None = None  # a hold's last command, for the hold_keeps joints of the measurement
        self._last_seq = -1  # newest accepted seq
        self._last_t_obs = -1  # its observation step: an older plan never replaces a newer one
        self._exec = (-1, -1, 0)  # executing chunk: seq, takeover, consumed
        self._rejected = (-1, "none")
        self._paused = False
        self.pause_reason = ""  # what paused it last (said in diagnostics): "~/pause", "a protective stop", ...
        self._pending_splice: SpliceInfo | None = None
        self._resync_step = 0  # chunks observed before this step are refused (see resync)
        self._ramp = StartupRamp(config.startup_ramp, every_chunk=config.mode == "ensemble")
        self._accel = AccelLimiter(config.max_accel)
        self._hold_loud = False  # the last re-sync's hold is commanded even with startup_silent
        self._enabled = True  # an enabling device's state (set_enabled)
        self._muted = False  # another node commands the robot (set_muted): silent, paused, no resume
        self.out_of_limits: dict[int, float] = {}  # newest measurement's joints too far out (set_measured_position)
        self.stats = ExecutorStats()
        self._new_stores()

    def _new_stores(self) -> None:
        self._switch = SwitchStore(self.cfg.horizon)
        self._sync = SyncStore(self.cfg.s, self.cfg.horizon)
        # (at most H + 1 chunks overlap a step; the cap bounds a flood offered while paused, when none expires)
        self._ens = TemporalEnsembler(self.cfg.horizon, self.cfg.ensemble_decay, max_chunks=4 * self.cfg.horizon + 4)

    # ----------------------------------------------------------------------------------- state
    @property
    def next_step(self) -> int:
        with self._lock:
            return self._next_step

    @property
    def executing_seq(self) -> int:  # the executing chunk's seq (-1: none, e.g. after a re-sync)
        with self._lock:
            return self._exec[0]

    @property
    def measuring(self) -> bool:
        """True while nothing was commanded since start or the last re-sync (the base is the measured position)."""
        with self._lock:
            return not self._commanded

    @property
    def ready(self) -> bool:  # a hold position is known (measured position or a previous command)
        with self._lock:
            return self._last is not None

    def set_measured_position(self, position: np.ndarray) -> bool:
        """Give the measured joint positions ``(M,)``; used as the hold/rate-limit base until the first command
        (later calls are ignored). Returns True if used. One beyond a joint's limits by more than ``max_step``
        is not (limits that are not the arm's: the first commands would walk it to the limit): no hold, nothing
        commanded, :attr:`out_of_limits` names them, and it pauses (someone may move the arm back: :meth:`resume`)."""
        q = np.asarray(position, dtype=np.float64).reshape(-1)
        if q.shape != (self.cfg.action_dim,) or not np.isfinite(q).all():
            return False
        outside = implausible_holds(self.cfg, dict(enumerate(q.tolist())))
        with self._lock:
            if self._commanded:
                return False
            self.out_of_limits, self._paused = outside, self._paused or bool(outside)
            self.pause_reason = "a measurement beyond the joint limits" if outside else self.pause_reason
            self._last = None if outside else self._keep(q)
            self._accel.reset()
            return not outside

    def _keep(self, q: np.ndarray) -> np.ndarray:
        """The measurement ``q`` with the ``hold_keeps`` joints at a hold's last command (``_kept``), where within
        their limits; ``_kept`` holds for every measurement until the hold is commanded (:meth:`tick`: a driver at
        500 Hz gives several before it; until 2026-12-07 only the first kept it, and the second let the squeeze go)."""
        kept = self._kept
        if kept is None:
            return q.copy()
        use = self.cfg.hold_keeps & (kept >= self.cfg.lower) & (kept <= self.cfg.upper)
        return np.where(use, kept, q)

    def hold_joints(self, held: Mapping[int, float]) -> bool:
        """Replace the held command of some joints (``{action index: position}``), e.g. with the positions a
        protective stop holds them at, so that the command is where the arm stands when the stop ends.
        Only while paused (after a re-sync); implausible entries (:func:`implausible_holds`) keep their
        last command. False (nothing changed) if not paused, no command is held yet or none is plausible."""
        bad = implausible_holds(self.cfg, held)
        ok = {int(i): float(q) for i, q in held.items() if int(i) not in bad}
        with self._lock:
            if self._kept is not None:  # a ~/hold awaiting its measurement: the stop's report says where these joints
                for i in held:  # are (a torque-off gripper has let go); the others keep their kept command
                    if 0 <= int(i) < self.cfg.action_dim:
                        self._kept[int(i)] = np.nan
            if not self._paused or self._last is None or not ok:
                return False
            last = self._last.copy()
            last[list(ok)] = list(ok.values())
            self._last = last
            self._accel.reset(ok)  # the stop holds them: at rest there
            return True

    @property
    def at_rest(self) -> bool:
        """A hold now commands the same position tick after tick: at once without ``max_accel`` (a hold repeats the
        last command), with it once every limited joint has braked to zero speed; True while nothing is commanded."""
        with self._lock:
            return not (self._accel.active and self._commanded and self._accel.moving)

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._paused

    def tracking_reference(self) -> np.ndarray | None:
        """A copy of the newest command ``(M,)`` the arm should be following; None while it need not (nothing sent
        since start or the last re-sync, paused, disabled, muted): the tracking watchdog's reference."""
        with self._lock:
            live = self._commanded and self._enabled and not (self._paused or self._muted) and self._last is not None
            return self._last.copy() if live else None

    # ----------------------------------------------------------------------------------- chunks
    def offer_chunk(self, chunk: np.ndarray, seq: int, t_obs: int, d: int = 0, s: int = 0,
                    obs_age_s: float | None = None, base: int = -1) -> int:
        """Validate and accept a chunk ``(H, M)`` observed at step ``t_obs``; returns the step where
        it takes over (sync mode: the earliest step, it may wait for the current chunk's s actions).

        Args:
            chunk: the actions, index 0 = step ``t_obs``.
            seq, t_obs, d, s: the chunk's metadata (:class:`rtc_ros.runtime.contract.ChunkMeta`).
            obs_age_s: executor clock minus the observation stamp, seconds (None: unknown).
            base: the chunk its guidance target came from (-1: none); must be the executing one.

        Raises:
            ChunkRejected: see :class:`ChunkRejected` for the codes.
        """
        arr = np.array(chunk, dtype=np.float64, copy=True)
        with self._lock:
            self._validate(arr, seq, t_obs, d, s, obs_age_s)
            if base >= 0 and base != self._exec[0]:  # (after the others: a re-sync's refusal says 'resync')
                raise self._reject("base", f"chunk seq {seq} was guided toward chunk seq {base}, but seq "
                                           f"{self._exec[0]} executes: spliced into it, it would jump", seq)
            now = self._next_step
            # the first chunk since start-up starts at its index 0: the robot held still while it was
            # computed, so its first actions were not executed and the robot is where the chunk starts
            # (as in sync mode and the authors' protocol); skipping to the consumed index would command
            # a jump from rest. Reported with consumed = 0 (index 0 at takeover - consumed = now).
            startup = self._exec[0] < 0
            origin = now if startup else t_obs
            if startup:
                self._ramp.arm()
            if self.cfg.mode == "switch":
                old = self._switch.action(now)
                ref = old if old is not None else self._last
                consumed = now - origin
                self._switch.insert(arr, origin)
                jump = 0.0 if ref is None else float(np.max(np.abs(arr[consumed] - ref)))
                self._set_exec(SpliceInfo(seq, now, consumed, d, jump))
                takeover = now
            elif self.cfg.mode == "ensemble":
                before = self._ens.action(now)
                self._ens.add(arr, origin)
                after = self._ens.action(now)
                ref = before if before is not None else self._last
                jump = 0.0 if ref is None or after is None else float(np.max(np.abs(after - ref)))
                self._set_exec(SpliceInfo(seq, now, now - origin, d, jump))
                takeover = now
            else:
                self._sync.offer(arr, seq, t_obs, d)
                takeover = self._sync.pause_step(now)
            self._last_seq, self._last_t_obs = seq, t_obs
            self.stats.chunks_accepted += 1
            return takeover

    def _set_exec(self, info: SpliceInfo) -> None:
        self._exec = (info.seq, info.takeover, info.consumed)
        self._pending_splice = info
        self.stats.consumed.add(info.consumed)
        self.stats.d.add(info.d)
        self.stats.jump.add(info.jump)

    # ----------------------------------------------------------------------------------- ticks
    def _action_locked(self, step: int) -> tuple[np.ndarray | None, str]:
        mode = self.cfg.mode
        if mode == "switch":
            a = self._switch.action(step)
        elif mode == "ensemble":
            a = self._ens.action(step)
        else:
            a, started = self._sync.action(step)
            if started is not None:
                seq, t_obs, d = started
                ref = self._last
                jump = 0.0 if ref is None or a is None else float(np.max(np.abs(a - ref)))
                self._set_exec(SpliceInfo(seq, step, step - t_obs, d, jump))
            if a is None:
                return None, HOLD_SYNC_PAUSE if self._sync.started else HOLD_STARTUP
        if a is None:
            return None, HOLD_STARTUP if self._exec[0] < 0 else HOLD_STARVED
        return a, ""

    def tick(self) -> Tick | None:
        """Command the next step. Returns None (and does not advance) until a hold position is known."""
        cfg = self.cfg
        with self._lock:
            if self._last is None:
                return None
            if self._paused or not self._enabled:  # commands the hold (the base is fixed from here on) unless silent
                silent = self._quiet() or self._muted
                if self._accel.active and not silent:  # a joint still moving brakes to a stop
                    self._last = self._shaped(None)
                self._commanded = not silent
                if self._commanded:
                    self._kept = None  # (the kept squeeze is commanded: later measurements are ignored anyway)
                self.stats.holds += 1
                self.stats.paused_ticks += 1
                self.stats.consecutive_holds = 0  # (a hold after the resume is counted afresh, not from before the pause)
                why = HOLD_PAUSED if self._enabled else HOLD_DISABLED
                self.stats.holds_by_reason[why] = self.stats.holds_by_reason.get(why, 0) + 1
                seq, takeover, consumed = self._exec
                return Tick(step=self._next_step - 1, command=self._last.copy(), hold=True, reason=why,
                            seq=seq, takeover=takeover, consumed=consumed, clamped=False,
                            rejected_seq=self._rejected[0], rejected_reason=self._rejected[1], paused=True,
                            resets=self.stats.resets, silent=silent, operator_pauses=self.stats.operator_pauses)
            step = self._next_step
            self.stats.paused_ticks = 0
            target, reason = self._action_locked(step)
            splice, self._pending_splice = self._pending_splice, None
            if target is None:
                loud = self._accel.active and not (reason == HOLD_STARTUP and self._quiet())
                cmd, hold, clamped = self._shaped(None) if loud else self._last.copy(), True, False
                self.stats.holds += 1
                self.stats.consecutive_holds, self.stats.hold_reason = self.stats.consecutive_holds + 1, reason
                self.stats.holds_by_reason[reason] = self.stats.holds_by_reason.get(reason, 0) + 1
            else:
                target = self._ramp.apply(target, self._last, self._exec[0])
                cmd = (self._shaped(target, splice is not None) if self._accel.active
                       else clamp_command(target, self._last, cfg.lower, cfg.upper, cfg.max_step))
                hold, clamped = False, bool(np.any(cmd != target))
                self.stats.consecutive_holds = 0
                if clamped:
                    self.stats.clamps += 1
            if not np.isfinite(cmd).all():  # unreachable by construction; the last line of defence
                cmd, hold, reason = self._last.copy(), True, HOLD_STARVED
            self._last = cmd
            silent = hold and reason == HOLD_STARTUP and self._quiet()
            self._commanded = not silent
            if self._commanded:
                self._kept = None
            self._next_step = step + 1
            self.stats.ticks += 1
            seq, takeover, consumed = self._exec
            return Tick(step=step, command=cmd.copy(), hold=hold, reason=reason, seq=seq, takeover=takeover,
                        consumed=consumed, clamped=clamped, rejected_seq=self._rejected[0],
                        rejected_reason=self._rejected[1], splice=splice, resets=self.stats.resets, silent=silent,
                        operator_pauses=self.stats.operator_pauses)

    def _shaped(self, target: np.ndarray | None, splice: bool = False) -> np.ndarray:
        """The clamped command toward ``target`` (None: the hold) under the acceleration limit (:mod:`.shaping`)."""
        cfg, last, step = self.cfg, self._last, self._next_step
        plain = last.copy() if target is None else clamp_command(target, last, cfg.lower, cfg.upper, cfg.max_step)
        # at a takeover in switch mode the new chunk's own step is its speed (elsewhere: the previous target's)
        nxt = self._switch.action(step + 1) if splice and cfg.mode == "switch" else None
        speed = None if nxt is None else nxt - self._switch.action(step)
        return self._accel.step(last, target, plain, cfg.lower, cfg.upper, cfg.max_step, splice, speed)

    def _quiet(self) -> bool:  # a hold now is not sent (startup_silent, nothing commanded since the re-sync)
        return self.cfg.startup_silent and not self._commanded and not self._hold_loud

    def record_period(self, period_s: float) -> None:  # measured time between two ticks (diagnostics; ROS time in timer mode)
        self.stats.period_ms.add(period_s * 1e3)
