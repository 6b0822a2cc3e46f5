"""The robot side of Algorithm 1 (GETACTION), ROS-free: what to command at every controller tick.

:class:`ExecutorCore` owns the chunk store of the configured execution mode
(:func:`rtc_ros.core.methods.executor_mode`) and turns it into one safe joint command per tick:

* ``switch`` (rtc, rtc_linear, rtc_hard, naive, bid): a :class:`~rtc_ros.core.chunk_buffer.ChunkBuffer`;
  a chunk observed at step ``t_obs`` that arrives when ``now`` is the next step takes over at index
  ``now - t_obs`` (the consumed delay d). Nothing is re-executed, nothing beyond d is skipped.
* ``sync``: execute ``pause_after`` (= s) actions of a chunk, then hold until the next chunk, which
  starts at its index 0 (the robot did not move while the model ran, so index 0 is still "now").
  A chunk that arrives early waits until the current one has executed its s actions.
* ``ensemble`` (te_sparse, te_dense): a :class:`~rtc_ros.core.ensemble.TemporalEnsembler`; every
  tick commands the average of all stored predictions for that step.

Every command is clamped to the joint limits and to ``max_step`` per tick relative to the previous
command, so the robot never sees NaN or a jump. When no action is available (startup, starvation,
sync pause) the core holds the last command -- it never extrapolates. Before the first command the
hold position is the measured position (``set_measured_position``); until that is known the core
commands nothing (``tick`` returns None) and does not advance its step counter.

Steps count executed ticks from 0. ``next_step`` is the step the next ``tick`` commands; a chunk's
``t_obs`` is the ``next_step`` at the time its observation was taken (index 0 = step ``t_obs``).

Origin of a chunk: the step that its index 0 corresponds to, ``takeover - consumed`` (= ``t_obs`` in
switch/ensemble mode, = the takeover step in sync mode). Index of step ``k`` = ``k - origin``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rtc_ros.core.chunk_buffer import ChunkBuffer, ChunkRejected, SpliceInfo
from rtc_ros.core.ensemble import TemporalEnsembler
from rtc_ros.core.stats import RollingStats

ExecMode = Literal["switch", "sync", "ensemble"]
EXEC_MODES: tuple[str, ...] = ("switch", "sync", "ensemble")

#: hold reasons reported in :class:`Tick`
HOLD_STARTUP = "startup"  # no chunk has arrived yet
HOLD_STARVED = "starved"  # the executing chunk ran out and no newer one arrived (inference late or dead)
HOLD_SYNC_PAUSE = "sync_pause"  # synchronous method: waiting for the next chunk by design


class RejectedChunk(ChunkRejected):
    """A chunk refused by the executor; ``reason`` is a short code, the message says why.

    Codes: ``shape``, ``nonfinite``, ``order`` (seq not increasing), ``future`` (t_obs ahead of
    now), ``stale`` (all actions in the past), ``names``, ``timing``, ``metadata``, ``age``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class ExecutorConfig:
    """Executor settings (all validated on construction).

    Attributes:
        horizon: H, actions per chunk.
        action_dim: M, joints commanded (all arms).
        mode: ``switch`` / ``sync`` / ``ensemble`` (see module docstring).
        lower, upper: joint limits ``(M,)`` (``-inf``/``inf`` allowed).
        max_step: largest change per tick ``(M,)``, ``> 0`` (``inf`` disables).
        pause_after: sync mode: actions of a chunk executed before pausing (s, ``1..H``).
        ensemble_decay: temporal-ensembling weight decay ``m`` (0 = plain average, the paper's TE).
    """

    horizon: int
    action_dim: int
    mode: ExecMode = "switch"
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    max_step: np.ndarray | float | None = None
    pause_after: int = 1
    ensemble_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.action_dim < 1:
            raise ValueError(f"horizon and action_dim must be >= 1, got {self.horizon}, {self.action_dim}")
        if self.mode not in EXEC_MODES:
            raise ValueError(f"mode must be one of {EXEC_MODES}, got {self.mode!r}")
        m = self.action_dim

        def vec(x: object, default: float, name: str) -> np.ndarray:
            v = np.full(m, default) if x is None else np.asarray(x, dtype=np.float64)
            if v.ndim == 0:
                v = np.full(m, float(v))
            if v.shape != (m,):
                raise ValueError(f"{name} must have {m} values (one per joint), got shape {v.shape}")
            if np.isnan(v).any():
                raise ValueError(f"{name} contains NaN")
            return v.astype(np.float64)

        self.lower = vec(self.lower, -np.inf, "lower limits")
        self.upper = vec(self.upper, np.inf, "upper limits")
        self.max_step = vec(self.max_step, np.inf, "max_step")
        bad = np.nonzero(self.lower > self.upper)[0]
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"lower limit {self.lower[i]} > upper limit {self.upper[i]} for joint index {i}")
        if (self.max_step <= 0).any():
            raise ValueError(f"max_step must be > 0 for every joint, got {self.max_step.tolist()}")
        if not 1 <= self.pause_after <= self.horizon:
            raise ValueError(f"pause_after (s) must be in [1, H={self.horizon}], got {self.pause_after}")
        if not self.ensemble_decay >= 0:
            raise ValueError(f"ensemble_decay must be >= 0, got {self.ensemble_decay}")


@dataclass(frozen=True)
class Tick:
    """What one controller tick commands.

    Attributes:
        step: the step commanded.
        command: ``(M,)`` joint command, clamped, finite.
        hold: True when no action was available and the previous command was repeated.
        reason: ``""`` or one of the ``HOLD_*`` reasons.
        seq / takeover / consumed: the executing chunk (``-1`` / ``-1`` / ``0`` before the first).
        clamped: True when limits or the max step changed the chunk's action.
        splice: set on the tick where a new chunk commands its first action.
    """

    step: int
    command: np.ndarray
    hold: bool
    reason: str
    seq: int
    takeover: int
    consumed: int
    clamped: bool
    splice: SpliceInfo | None = None


@dataclass
class ExecutorStats:
    """Counters and rolling windows, for diagnostics."""

    ticks: int = 0
    holds: int = 0
    holds_by_reason: dict[str, int] = field(default_factory=dict)
    consecutive_holds: int = 0
    clamps: int = 0
    chunks_accepted: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    consumed: RollingStats = field(default_factory=lambda: RollingStats(200))
    frozen: RollingStats = field(default_factory=lambda: RollingStats(200))
    delay_seen: RollingStats = field(default_factory=lambda: RollingStats(200))
    jump: RollingStats = field(default_factory=lambda: RollingStats(200))
    period_ms: RollingStats = field(default_factory=lambda: RollingStats(3000))

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "ticks": self.ticks, "holds": self.holds, "consecutive_holds": self.consecutive_holds,
            "clamps": self.clamps, "chunks_accepted": self.chunks_accepted,
            "rejected": sum(self.rejects_by_reason.values()),
        }
        out.update({f"holds_{k}": v for k, v in sorted(self.holds_by_reason.items())})
        out.update({f"rejected_{k}": v for k, v in sorted(self.rejects_by_reason.items())})
        for name in ("consumed", "frozen", "delay_seen", "jump", "period_ms"):
            for k, v in getattr(self, name).summary().items():
                out[f"{name}_{k}"] = v
        return out


def clamp_command(target: np.ndarray, last: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                  max_step: np.ndarray) -> np.ndarray:
    """Clip ``target`` to ``[lower, upper]``, then to ``last +- max_step``.

    The step limit is applied last, so a robot that starts outside its limits is walked back at
    ``max_step`` per tick rather than jumped.
    """
    x = np.clip(target, lower, upper)
    return np.clip(x, last - max_step, last + max_step)


class ExecutorCore:
    """ROS-free executor state machine; thread-safe (one lock around chunk offers and ticks)."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.cfg = config
        self._lock = threading.Lock()
        self._next_step = 0
        self._last: np.ndarray | None = None  # last command, or the measured position before the first
        self._commanded = False
        self._last_seq = -1  # newest accepted seq
        self._exec_seq, self._exec_takeover, self._exec_consumed = -1, -1, 0
        self._pending_splice: SpliceInfo | None = None
        self.stats = ExecutorStats()
        if config.mode == "switch":
            self._buffer = ChunkBuffer(config.horizon, config.action_dim)
        elif config.mode == "ensemble":
            self._ens = TemporalEnsembler(config.horizon, config.ensemble_decay)
        else:
            self._sync_chunk: np.ndarray | None = None
            self._sync_origin = 0
            self._sync_pending: tuple[np.ndarray, int, int, int] | None = None  # chunk, seq, t_obs, frozen

    # ----------------------------------------------------------------------------------- state
    @property
    def next_step(self) -> int:
        with self._lock:
            return self._next_step

    @property
    def ready(self) -> bool:
        """True once a hold position is known (measured position or a previous command)."""
        with self._lock:
            return self._last is not None

    def set_measured_position(self, position: np.ndarray) -> bool:
        """Give the measured joint positions ``(M,)``; used as the hold/rate-limit base until the
        first command. Later calls are ignored once anything was commanded. Returns True if used."""
        q = np.asarray(position, dtype=np.float64).reshape(-1)
        if q.shape != (self.cfg.action_dim,) or not np.isfinite(q).all():
            return False
        with self._lock:
            if self._commanded:
                return False
            self._last = q.copy()
            return True

    # ----------------------------------------------------------------------------------- chunks
    def _reject(self, reason: str, message: str) -> RejectedChunk:
        self.stats.rejects_by_reason[reason] = self.stats.rejects_by_reason.get(reason, 0) + 1
        return RejectedChunk(reason, message)

    def reject(self, reason: str, message: str) -> RejectedChunk:
        """Count a rejection decided outside the core (names, timing, metadata) and return it."""
        with self._lock:
            return self._reject(reason, message)

    def offer_chunk(self, chunk: np.ndarray, seq: int, t_obs: int, frozen: int = 0) -> int:
        """Accept a chunk ``(H, M)`` observed at step ``t_obs``; returns the step where it takes over
        (sync mode: the earliest step, it may wait for the current chunk's s actions).

        Raises:
            RejectedChunk: malformed (``shape``, ``nonfinite``), out of order (``order``), from the
                future (``future``) or stale (``stale``: no action left for a step >= now).
        """
        cfg = self.cfg
        with self._lock:
            now = self._next_step
            arr = np.asarray(chunk, dtype=np.float64)
            if arr.shape != (cfg.horizon, cfg.action_dim):
                raise self._reject("shape", f"chunk seq {seq}: shape {arr.shape} != (H={cfg.horizon}, M={cfg.action_dim})")
            if not np.isfinite(arr).all():
                raise self._reject("nonfinite", f"chunk seq {seq} contains NaN or Inf")
            if seq <= self._last_seq:
                raise self._reject("order", f"chunk seq {seq} is not newer than seq {self._last_seq}")
            if t_obs > now:
                raise self._reject("future", f"chunk seq {seq} observed at step {t_obs} is ahead of now={now} "
                                             "(executor restarted, or a clock/step mix-up)")
            if cfg.mode != "sync" and now - t_obs >= cfg.horizon:
                raise self._reject("stale", f"stale chunk seq {seq}: observed at step {t_obs}, now {now}: "
                                            f"delay {now - t_obs} >= H={cfg.horizon}, no action left")
            if cfg.mode == "switch":
                old = self._buffer.action_at(now)
                ref = old if old is not None else self._last
                info = self._buffer.insert(arr, t_obs, now, seq, frozen)
                jump = 0.0 if ref is None else float(np.max(np.abs(arr[info.consumed_delay] - ref)))
                self._set_exec(SpliceInfo(seq, info.takeover_step, info.consumed_delay, frozen, jump))
                takeover = now
            elif cfg.mode == "ensemble":
                before = self._ens.action(now)
                self._ens.add(arr, t_obs)
                after = self._ens.action(now)
                ref = before if before is not None else self._last
                jump = 0.0 if ref is None or after is None else float(np.max(np.abs(after - ref)))
                self._set_exec(SpliceInfo(seq, now, now - t_obs, frozen, jump))
                takeover = now
            else:
                self._sync_pending = (arr, seq, t_obs, frozen)
                takeover = max(now, self._sync_pause_step())
            self._last_seq = seq
            self.stats.chunks_accepted += 1
            return takeover

    def _set_exec(self, info: SpliceInfo, delay_seen: int | None = None) -> None:
        self._exec_seq, self._exec_takeover, self._exec_consumed = info.seq, info.takeover_step, info.consumed_delay
        self._pending_splice = info
        self.stats.consumed.add(info.consumed_delay)
        self.stats.delay_seen.add(info.consumed_delay if delay_seen is None else delay_seen)
        self.stats.frozen.add(info.frozen)
        self.stats.jump.add(info.jump)

    def _sync_pause_step(self) -> int:
        if self._sync_chunk is None:
            return self._next_step
        return self._sync_origin + self.cfg.pause_after

    # ----------------------------------------------------------------------------------- ticks
    def _action_locked(self, step: int) -> tuple[np.ndarray | None, str]:
        cfg = self.cfg
        if cfg.mode == "switch":
            a = self._buffer.action_at(step)
            if a is None:
                return None, HOLD_STARTUP if self._exec_seq < 0 else HOLD_STARVED
            return a, ""
        if cfg.mode == "ensemble":
            a = self._ens.action(step)
            return a, ("" if a is not None else (HOLD_STARTUP if self._exec_seq < 0 else HOLD_STARVED))
        # sync
        if self._sync_chunk is not None and step - self._sync_origin < cfg.pause_after:
            return self._sync_chunk[step - self._sync_origin].copy(), ""
        if self._sync_pending is not None:
            arr, seq, t_obs, frozen = self._sync_pending
            self._sync_pending = None
            ref = self._last
            jump = 0.0 if ref is None else float(np.max(np.abs(arr[0] - ref)))
            self._sync_chunk, self._sync_origin = arr, step
            # sync: nothing of the old chunk is consumed (consumed = 0); the delay seen is the pause
            self._set_exec(SpliceInfo(seq, step, 0, frozen, jump), delay_seen=step - t_obs)
            return arr[0].copy(), ""
        return None, HOLD_STARTUP if self._sync_chunk is None else HOLD_SYNC_PAUSE

    def tick(self) -> Tick | None:
        """Command the next step. Returns None (and does not advance) until a hold position is known."""
        cfg = self.cfg
        with self._lock:
            if self._last is None:
                return None
            step = self._next_step
            target, reason = self._action_locked(step)
            splice, self._pending_splice = self._pending_splice, None
            if target is None:
                cmd, hold, clamped = self._last.copy(), True, False
                self.stats.holds += 1
                self.stats.consecutive_holds += 1
                self.stats.holds_by_reason[reason] = self.stats.holds_by_reason.get(reason, 0) + 1
                splice = None if splice is None or cfg.mode == "sync" else splice
            else:
                cmd = clamp_command(target, self._last, cfg.lower, cfg.upper, cfg.max_step)
                hold, clamped = False, bool(np.any(cmd != target))
                self.stats.consecutive_holds = 0
                if clamped:
                    self.stats.clamps += 1
            if not np.isfinite(cmd).all():  # unreachable by construction; the last line of defence
                cmd, hold, reason = self._last.copy(), True, HOLD_STARVED
            self._last = cmd
            self._commanded = True
            self._next_step = step + 1
            self.stats.ticks += 1
            return Tick(step=step, command=cmd.copy(), hold=hold, reason=reason, seq=self._exec_seq,
                        takeover=self._exec_takeover, consumed=self._exec_consumed, clamped=clamped,
                        splice=splice)

    def record_period(self, period_s: float) -> None:
        """Record the measured wall time between two ticks (for diagnostics)."""
        self.stats.period_ms.add(period_s * 1e3)
