"""Executor configuration, rejections, per-tick output, statistics and the command clamp (types of
:mod:`rtc_ros.runtime.executor`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from rtc_ros.core.stats import RollingStats
from rtc_ros.runtime.chunk_store import SpliceInfo
from rtc_ros.runtime.contract import ExecutorReport
from rtc_ros.runtime.methods import ExecMode

EXEC_MODES: tuple[str, ...] = ("switch", "sync", "ensemble")


def _vec(x: object, default: float, name: str, m: int) -> np.ndarray:
    v = np.full(m, default) if x is None else np.asarray(x, dtype=np.float64)
    if v.ndim == 0:
        v = np.full(m, float(v))
    if v.shape != (m,):
        raise ValueError(f"{name} must have {m} values (one per joint), got shape {v.shape}")
    if np.isnan(v).any():
        raise ValueError(f"{name} contains NaN")
    return v.astype(np.float64)


class ChunkRejected(ValueError):
    """A chunk that must not be executed; ``reason`` is a code, the message says why.

    Codes (:data:`rtc_ros.runtime.contract.REJECT_REASONS`): ``shape``, ``nonfinite``, ``order``
    (seq not increasing since the last re-sync, or observed before the newest accepted chunk's observation),
    ``future`` (t_obs ahead of now), ``stale`` (no action left for a step >= now), ``names``, ``timing``,
    ``metadata`` (d or s out of range, bad frame_id), ``age`` (observation stamp too old, missing, or in the
    future), ``resync`` (observed before a re-sync), ``method`` (executes differently; decided by the node),
    ``base`` (guided toward a chunk that no longer executes), ``limits`` (an action implausibly far beyond a
    joint's limits: other units, joint order or normalisation), ``start_gap`` (a start-up chunk whose first action
    is implausibly far from where the arm is held: the same mistakes, within the limits).
    """

    def __init__(self, reason: str, message: str, seq: int = -1) -> None:
        super().__init__(message)
        self.reason = reason
        self.seq = seq


@dataclass(frozen=True)
class ExecutorConfig:
    """Executor settings, validated on construction (ValueError naming the field).

    Attributes:
        horizon: H, actions per chunk.
        action_dim: M, joints commanded (all arms).
        mode: ``switch`` / ``sync`` / ``ensemble`` (see module docstring).
        lower, upper: joint limits ``(M,)`` (``-inf``/``inf`` allowed).
        max_step: largest change per tick ``(M,)``, ``> 0`` (``inf`` disables).
        max_accel: largest change of the per-tick step per tick ``(M,)`` (rad/tick^2), ``> 0`` (``inf``, the
            default, disables; see :mod:`rtc_ros.runtime.shaping`).
        s: sync mode: actions of a chunk executed before pausing (``1..H``).
        ensemble_decay: temporal-ensembling weight decay ``m`` (0 = plain average, the paper's TE).
        startup_ramp: ticks over which a start-up chunk (the first after start or a re-sync) is blended in
            from the hold position (minimum-jerk weight; 0 = off; see :mod:`rtc_ros.runtime.executor`).
        startup_silent: the holds before anything is commanded (start-up; paused after a re-sync) are not
            sent to the robot (``startup_command: none``: its controllers keep their own command), so until
            a chunk is commanded the hold and rate-limit base keeps following the measured position (the
            arm may move meanwhile).
        hold_keeps: ``(M,)`` bool, the joints whose last command a commanded hold keeps instead of their measured
            position (grippers: a gripper squeezing an object measures its opening, not its command, so holding it
            at the measurement loosens it and drops the object): ``~/hold`` and a tracking-watchdog trip
            (``resync(command_hold=True)``). Not ``~/resync`` (a scene reset: measured), not a protective stop (its
            report says where the stop holds each joint: a torque-off gripper has let go), and a deadman press
            does not take their distance from the command for a move (a squeeze is none).
        joint_names: the ``M`` joints' names, for messages (None: their indices).
    """

    horizon: int
    action_dim: int
    mode: ExecMode = "switch"
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    max_step: np.ndarray | float | None = None
    s: int = 1
    ensemble_decay: float = 0.0
    startup_ramp: int = 0
    startup_silent: bool = False
    max_accel: np.ndarray | float | None = None
    hold_keeps: np.ndarray | None = None
    joint_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon (H) must be >= 1, got {self.horizon}")
        if self.action_dim < 1:
            raise ValueError(f"action_dim (M) must be >= 1, got {self.action_dim}")
        if self.mode not in EXEC_MODES:
            raise ValueError(f"mode must be one of {EXEC_MODES}, got {self.mode!r}")
        m = self.action_dim
        for name, default in (("lower", -np.inf), ("upper", np.inf), ("max_step", np.inf), ("max_accel", np.inf)):
            object.__setattr__(self, name, _vec(getattr(self, name), default, name, m))
        keeps = np.zeros(m, dtype=bool) if self.hold_keeps is None else np.asarray(self.hold_keeps, dtype=bool)
        if keeps.shape != (m,):
            raise ValueError(f"hold_keeps must have one entry per joint ({m}), got shape {keeps.shape}")
        object.__setattr__(self, "hold_keeps", keeps)
        if self.joint_names is not None:
            object.__setattr__(self, "joint_names", tuple(str(n) for n in self.joint_names))
            if len(self.joint_names) != m:
                raise ValueError(f"joint_names must have one name per joint ({m}), got {len(self.joint_names)}")
        bad = np.nonzero(self.lower > self.upper)[0]
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"lower {self.lower[i]} > upper {self.upper[i]} for joint index {i}")
        if (self.max_step <= 0).any():
            raise ValueError(f"max_step must be > 0 for every joint, got {self.max_step.tolist()}")
        if (self.max_accel <= 0).any():
            raise ValueError(f"max_accel must be > 0 (inf = off) for every joint, got {self.max_accel.tolist()}")
        if not 1 <= self.s <= self.horizon:
            raise ValueError(f"s must be in [1, H={self.horizon}], got {self.s}")
        if not (math.isfinite(self.ensemble_decay) and self.ensemble_decay >= 0):
            raise ValueError(f"ensemble_decay must be finite and >= 0, got {self.ensemble_decay}")
        if not 0 <= self.startup_ramp <= self.horizon:
            raise ValueError(f"startup_ramp must be in [0, H={self.horizon}] ticks, got {self.startup_ramp}")


@dataclass(frozen=True)
class Tick:
    """What one controller tick commands.

    Attributes:
        step: the step commanded.
        command: ``(M,)`` joint command, clamped, finite.
        hold: True when no action was available and the previous command was repeated (with ``max_accel``: the
            hold; a joint still moving brakes to a stop).
        reason: ``""`` or one of the ``HOLD_*`` reasons.
        seq / takeover / consumed: the executing chunk (``-1`` / ``-1`` / ``0`` before the first).
        clamped: True when limits or the max step changed the chunk's action.
        rejected_seq / rejected_reason: the newest rejected chunk (``-1`` / ``"none"``).
        splice: set on the tick where a new chunk commands its first action.
        paused: True while paused (an operator, a re-sync, a protective stop) or the enabling device is
            released (``step`` is then the last step commanded, repeated; ``-1`` if nothing was commanded yet).
        resets: re-syncs so far that re-measure the robot (:meth:`ExecutorCore.resync` without
            ``keep_hold``: something else moved it; reported so the inference side knows).
        silent: not to be sent to the robot: a hold (start-up, or paused) while nothing was commanded since
            start or the last re-sync, with ``startup_silent``; the base is still the measured position.
        operator_pauses: ``~/pause`` and ``~/hold`` calls so far (:meth:`ExecutorCore.count_operator_pause`).
    """

    step: int
    command: np.ndarray
    hold: bool
    reason: str
    seq: int
    takeover: int
    consumed: int
    clamped: bool
    rejected_seq: int = -1
    rejected_reason: str = "none"
    splice: SpliceInfo | None = None
    paused: bool = False
    resets: int = -1
    silent: bool = False
    operator_pauses: int = -1

    def report(self, stamp_ns: int = 0, with_command: bool = True) -> ExecutorReport:
        """The ``rtc/executor_state`` contents of this tick (:class:`~rtc_ros.runtime.contract.ExecutorReport`),
        stamped ``stamp_ns`` (the executor's clock), carrying the command unless ``with_command`` is False."""
        return ExecutorReport(step=self.step, seq=self.seq, takeover=self.takeover, consumed=self.consumed,
                              hold=self.hold, rejected_seq=self.rejected_seq, rejected_reason=self.rejected_reason,
                              stamp_ns=int(stamp_ns), command=self.command.copy() if with_command else None,
                              paused=self.paused, resets=self.resets, operator_pauses=self.operator_pauses)


@dataclass
class ExecutorStats:
    """Counters and rolling windows, for diagnostics (``consumed``: observed delay; ``d``: forecast)."""

    ticks: int = 0
    holds: int = 0
    holds_by_reason: dict[str, int] = field(default_factory=dict)
    consecutive_holds: int = 0
    hold_reason: str = ""  # the newest hold's reason (HOLD_*), while ``consecutive_holds`` > 0
    last_reject: str = ""  # the newest refusal's reason and message
    clamps: int = 0
    chunks_accepted: int = 0
    resyncs: int = 0
    resets: int = 0  # re-syncs without keep_hold (the robot was moved by something else)
    operator_pauses: int = 0  # ~/pause and ~/hold calls (an operator's; "already paused" ones too)
    paused_ticks: int = 0  # ticks paused in a row (the current pause's length, whatever paused it)
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    consumed: RollingStats = field(default_factory=lambda: RollingStats(200))
    d: RollingStats = field(default_factory=lambda: RollingStats(200))
    jump: RollingStats = field(default_factory=lambda: RollingStats(200))
    period_ms: RollingStats = field(default_factory=lambda: RollingStats(3000))

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "ticks": self.ticks, "holds": self.holds, "consecutive_holds": self.consecutive_holds,
            "clamps": self.clamps, "chunks_accepted": self.chunks_accepted, "resyncs": self.resyncs, "resets": self.resets,
            "rejected": sum(self.rejects_by_reason.values()),
        }
        out.update({f"holds_{k}": v for k, v in sorted(self.holds_by_reason.items())})
        out.update({f"rejected_{k}": v for k, v in sorted(self.rejects_by_reason.items())})
        for name in ("consumed", "d", "jump", "period_ms"):
            for k, v in getattr(self, name).summary().items():
                out[f"{name}_{k}"] = v
        return out


def clamp_command(target: np.ndarray, last: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                  max_step: np.ndarray) -> np.ndarray:
    """Clip ``target`` to ``[lower, upper]``, then to ``last +- max_step``.

    The step limit is applied last, so a robot that starts outside its limits is walked back at
    ``max_step`` per tick rather than jumped (the executor refuses to start from a measured position beyond
    them by more than ``max_step``: :meth:`~rtc_ros.runtime.executor.ExecutorCore.set_measured_position`).
    """
    x = np.clip(target, lower, upper)
    return np.clip(x, last - max_step, last + max_step)


def implausible_holds(cfg: ExecutorConfig, held: Mapping[int, float]) -> dict[int, float]:
    """The entries of ``{action index: position}`` (a protective stop's report) that cannot be where a
    joint stands: an index outside the joints, a position that is not finite or lies beyond the joint's
    limits by more than its ``max_step`` (a report in degrees, or with its names mapped wrongly)."""
    bad = {}
    for i, q in held.items():
        i, q = int(i), float(q)
        if not (0 <= i < cfg.action_dim and math.isfinite(q)
                and cfg.lower[i] - cfg.max_step[i] <= q <= cfg.upper[i] + cfg.max_step[i]):
            bad[i] = q
    return bad
