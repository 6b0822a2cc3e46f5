"""The chunk contract between policy_inference, chunk_executor and anyone else (ROS-free part).

Chunks travel as standard messages only, so the package builds on any ROS 2 install:

``rtc/chunk`` -- ``trajectory_msgs/JointTrajectory`` (reliable, keep-last 10)
    header.stamp           stamp of the observation the chunk was conditioned on (the joint state's;
                           with ``obs_time: oldest`` the oldest of its joint state and images)
    header.frame_id        ``"rtc seq=<int> t_obs=<int> d=<int> s=<int> method=<name>"``
    joint_names            the M action dimensions (all arms)
    points[i].positions    action i (M values), raw joint units
    points[i].time_from_start  ``i * dt``: action i runs at controller step ``t_obs + i``
    The first ``d`` points are the frozen prefix (guided onto the executing chunk's actions).

``rtc/executor_state`` -- ``sensor_msgs/JointState`` published by the executor every tick
    header.stamp           time of the tick (the executor node's clock)
    header.frame_id        ``"rtc step=<int> seq=<int> takeover=<int> consumed=<int> hold=<0|1>
                           rejected=<int> reason=<code> paused=<0|1> resets=<int> pauses=<int>"``: the step just commanded, the seq of the
                           chunk it came from, the step at which that chunk took over and the delay
                           it consumed (``takeover - t_obs``; 0 for the executor's start-up chunk,
                           which runs from its index 0: index 0 is always at ``takeover - consumed``
                           outside sync mode), whether it held, and the newest
                           rejected chunk (seq, reason code; ``-1`` / ``none`` before any), and
                           whether execution is paused (the step then stands still), and how often
                           the executor re-synced after something else moved the robot (``resets``), and
                           how many ``~/pause`` / ``~/hold`` calls it had (``pauses``: an operator's)
    name, position         the commanded joint positions of that step

Steps are the executor's controller ticks, counted from 0. ``t_obs`` is the executor step at which
the chunk's observation was taken: the first step commanded after the observation's stamp (a stamp
equal to step ``k``'s maps to ``k + 1``: that command was already out; chunk index 0 = step ``t_obs``).
The policy side maps stamps to steps through the executor-state reports
(:class:`rtc_ros.runtime.step_clock.StepClock`).

Metadata strings are parsed strictly: at most :data:`MAX_METADATA_CHARS` characters, each key once,
integers (ASCII digits, an optional ``-``) within a signed 64-bit range, ``d``, ``s`` and ``t_obs`` non-negative. Range checks that
need the executor's state (``d <= H``, stamp not in the future) are the executor's validator's
(:meth:`rtc_ros.runtime.executor.ExecutorCore.offer_chunk`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

CHUNK_TOPIC = "rtc/chunk"
EXECUTOR_STATE_TOPIC = "rtc/executor_state"
_PREFIX = "rtc"
#: longest accepted metadata string (a normal one is ~60 characters)
MAX_METADATA_CHARS = 256
_INT_MAX = 2**63 - 1

#: rejection reason codes (the executor's ``reason=`` field)
REJECT_REASONS: tuple[str, ...] = (
    "shape", "nonfinite", "order", "future", "stale", "names", "timing", "metadata", "age", "resync", "method",
    "base", "limits", "start_gap",
)


def _encode(fields: dict[str, object]) -> str:
    return " ".join([_PREFIX, *(f"{k}={v}" for k, v in fields.items())])


def _decode(text: str, required: tuple[str, ...]) -> dict[str, str]:
    if len(text) > MAX_METADATA_CHARS:
        raise ValueError(f"metadata is {len(text)} characters long (at most {MAX_METADATA_CHARS})")
    parts = text.split()
    if not parts or parts[0] != _PREFIX:
        raise ValueError(f"not an rtc metadata string: {text!r}")
    out: dict[str, str] = {}
    for p in parts[1:]:
        k, sep, v = p.partition("=")
        if not sep:
            raise ValueError(f"malformed field {p!r} in {text!r}")
        if k in out:
            raise ValueError(f"field '{k}' given twice in {text!r}")
        out[k] = v
    missing = [k for k in required if k not in out]
    if missing:
        raise ValueError(f"missing fields {missing} in {text!r}")
    return out


_INT_RE = re.compile(r"-?[0-9]+")


def _int(fields: dict[str, str], key: str, text: str, lo: int = -_INT_MAX) -> int:
    raw = fields[key]  # (ASCII digits, an optional '-': Python's int() also takes '1_000', '+7' and other scripts'
    if not _INT_RE.fullmatch(raw):  # digits, which no other reader of the contract would -- an audit)
        raise ValueError(f"field '{key}' = {raw!r} is not an integer in {text!r}")
    v = int(raw)
    if not lo <= v <= _INT_MAX:
        raise ValueError(f"field '{key}' = {v} is out of range [{lo}, 2^63 - 1] in {text!r}")
    return v


@dataclass(frozen=True)
class ChunkMeta:
    """Metadata carried in a chunk's ``header.frame_id``.

    Attributes:
        seq: sequence number, strictly increasing per executor (since its last re-sync).
        t_obs: executor step of the observation (chunk index 0).
        d: frozen prefix the producer assumed (forecast delay).
        s: execution horizon the producer assumed (soft mask end ``H - s``).
        method: the execution method the chunk was made for.
        base: the seq of the chunk the guidance target came from (the one executing when it was planned),
            or -1 (none: plain sampling; optional on the wire). The executor refuses a chunk whose base is
            not what it executes on arrival (reason ``base``): spliced into another chunk it would jump.
    """

    seq: int
    t_obs: int
    d: int
    s: int
    method: str
    base: int = -1

    def encode(self) -> str:
        fields = {"seq": self.seq, "t_obs": self.t_obs, "d": self.d, "s": self.s, "method": self.method}
        return _encode({**fields, "base": self.base} if self.base >= 0 else fields)

    @classmethod
    def decode(cls, text: str) -> "ChunkMeta":
        """Parse; raises ValueError naming the field on anything malformed."""
        f = _decode(text, ("seq", "t_obs", "d", "s", "method"))
        return cls(_int(f, "seq", text, 0), _int(f, "t_obs", text, 0), _int(f, "d", text, 0), _int(f, "s", text, 0),
                   f["method"], _int(f, "base", text, 0) if "base" in f else -1)


@dataclass(frozen=True)
class ExecutorReport:
    """One executor-state message: the step just commanded and the chunk it came from.

    Attributes:
        step: the step just commanded.
        seq: seq of the executing chunk (``-1`` before the first).
        takeover: step at which that chunk took over (``-1`` before the first).
        consumed: the delay that chunk consumed, ``takeover - t_obs``; 0 for the start-up chunk (the first
            after the executor started or re-synced runs from its index 0). Outside sync mode the chunk's index 0 is
            at step ``takeover - consumed``.
        hold: True when the step repeated the previous command (no action available).
        rejected_seq: newest rejected chunk's seq (``-1``: none yet).
        rejected_reason: its reason code (one of :data:`REJECT_REASONS`, ``"none"`` before any).
        stamp_ns: the tick's stamp (executor clock, ns; 0 if unknown).
        command: ``(M,)`` the commanded positions, or None when not carried.
        paused: execution is paused (an operator, a re-sync, a protective stop, a released enabling device):
            ``step`` is the last step commanded, repeated.
        resets: re-syncs so far after which the executor measured the robot again because something
            else moved it (an episode reset, a homing move, an operator's ``~/resync``; not a protective
            stop's, which keeps the hold): a change tells the inference side that the scene was moved;
            ``-1`` when not carried (older executors).
        dry: the executor runs a dry run (``dry_run``): ``command`` was computed but never sent to the robot.
        operator_pauses: ``~/pause`` and ``~/hold`` calls so far (answered "already paused" too; ``-1`` when not
            carried, older executors): a driver that paused the executor itself sees an operator's pause meanwhile.
    """

    step: int
    seq: int
    takeover: int
    consumed: int
    hold: bool = False
    rejected_seq: int = -1
    rejected_reason: str = "none"
    stamp_ns: int = 0
    command: np.ndarray | None = field(default=None, compare=False)
    paused: bool = False
    resets: int = -1
    dry: bool = False
    operator_pauses: int = -1

    def encode(self) -> str:
        return _encode({"step": self.step, "seq": self.seq, "takeover": self.takeover, "consumed": self.consumed,
                        "hold": int(self.hold), "rejected": self.rejected_seq, "reason": self.rejected_reason,
                        "paused": int(self.paused), **({"resets": self.resets} if self.resets >= 0 else {}),
                        **({"pauses": self.operator_pauses} if self.operator_pauses >= 0 else {}),
                        **({"dry": 1} if self.dry else {})})

    @classmethod
    def decode(cls, text: str, stamp_ns: int = 0, command: np.ndarray | None = None) -> "ExecutorReport":
        """Parse; ``rejected``/``reason``/``paused``/``resets``/``pauses``/``dry`` are optional (older executors omit
        them)."""
        f = _decode(text, ("step", "seq", "takeover", "consumed", "hold"))
        rejected = _int(f, "rejected", text, -1) if "rejected" in f else -1
        reason = f.get("reason", "none")
        if reason != "none" and reason not in REJECT_REASONS:
            raise ValueError(f"field 'reason' = {reason!r} is not one of {REJECT_REASONS} in {text!r}")
        return cls(_int(f, "step", text, -1), _int(f, "seq", text, -1), _int(f, "takeover", text, -1),
                   _int(f, "consumed", text, 0), f["hold"] == "1", rejected, reason, int(stamp_ns), command,
                   f.get("paused", "0") == "1", _int(f, "resets", text, 0) if "resets" in f else -1,
                   f.get("dry", "0") == "1", _int(f, "pauses", text, 0) if "pauses" in f else -1)
