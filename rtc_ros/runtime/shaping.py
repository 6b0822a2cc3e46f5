"""Command shaping between a chunk's action and the executor's clamp, ROS-free: the start-up ramp
(``startup_ramp``) and the acceleration limit (``max_accel``); both off by default.

**Start-up ramp** (:class:`StartupRamp`, ``K`` ticks): a start-up chunk (the first after start, a
re-sync or a press of the enabling device) starts where the policy thinks the arm's *command* is, which for a position-controlled arm
leads the measured position by its tracking lag -- from rest after a re-sync (a protective stop, a
mid-task pause) that offset is a step from standstill to up to ``max_step`` per tick, an acceleration
the arm's torque limits refuse (measured: a torque stop 2 ticks after every recovery in the simulated
ViperX). With the ramp the first ``K`` ticks of a start-up chunk command ``hold + w_i (a_i - hold)``,
``w_i`` the minimum-jerk weight ``10 x^3 - 15 x^4 + 6 x^5`` at ``x = (i + 1) / K`` (``w = 1`` from tick
``K - 1`` on; ``i`` counts commanded ticks, not holds); ``hold`` is the command before it. Only start-up
chunks: the ramp ends early when another chunk takes over in switch or sync mode (a method's own
splices are untouched); in ensemble mode (every tick averages all stored chunks) it runs its K ticks.

**Acceleration limit** (:class:`AccelLimiter`): without it the executor limits the command's
*velocity* only (``max_step`` per tick): a hold (starvation, a sync pause, an operator's pause)
repeats the last command, so a joint moving at ``v`` rad/tick stops in one tick, and a splice can
change the commanded velocity by up to ``2 max_step`` at once. Arms whose controllers enforce an
acceleration or jerk limit on the command stream (they fault: a protective stop, a reflex), or whose
servos cannot give the torque, need every change of the commanded velocity bounded.

The limiter shapes the chunk target ``r`` (positions clipped to the joint limits, one tick at a time)
into a command ``x`` whose per-tick step ``u = x_t - x_{t-1}`` changes by at most ``A = max_accel`` per
tick (units: rad per tick^2; the node converts rad/s^2 with ``dt^2``):

* the target's own step ``w = r_t - r_{t-1}`` is followed exactly while the command is on the target
  (``x_{t-1} = r_{t-1}``) and ``|w_t - u_{t-1}| <= A``: a smooth chunk passes unchanged. On the tick
  a chunk takes over (a splice) ``w`` is the new
  chunk's own step where the executor knows it (switch mode: its next action minus this one), else
  the previous target's (the new plan is assumed to go on at the old speed): its jump goes into the
  gap below, not into a speed;
* off the target by ``g = r_{t-1} - x_{t-1}`` (after a splice, a hold while moving), the command closes
  the gap at the relative step ``rho`` it can still brake from at ``A / 2`` per tick without passing the
  target: the largest ``rho`` with ``rho + (rho - A/2) + (rho - A) + ... <= |g|`` (:func:`braking_step`).
  The other ``A / 2`` is for the chunk's own acceleration: a gap opened from standstill relative to the
  chunk (a splice while on it) is closed without passing a chunk whose own acceleration stays within
  ``A / 2``; a chunk that brakes harder, or a hold (the target stops at once), can be passed;
* then ``u = clip(w + rho, u_{t-1} - A, u_{t-1} + A)``;
* a **hold** (no action: starvation, a sync pause, an operator's pause, a released enabling device)
  brakes to a stop at ``A`` per tick, ``u_t = u_{t-1} - sign(u_{t-1}) min(|u_{t-1}|, A)``, and stays
  where it stopped: about ``v^2 / 2A`` beyond the last action for a joint moving at ``v`` (a controlled
  stop; it does not come back). The next chunk's first action is then a gap, closed as above.

Then ``max_step`` and the joint limits, which win (a joint braking into its limit stops there); a
command already beyond a limit (a measured or stop-held position, by less than ``max_step``) may stay
where it is but not move further out, and the recorded step never includes a clip's jump. Joints with
``A = inf`` are not shaped at all (bit-identical to no limiter). State: the last command's step, the last
target and its step (after a hold: the command and its step), per joint; reset (at rest, no target) when
the base is measured again or a protective stop holds the joint.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class StartupRamp:
    """The start-up ramp (module docstring) over ``ticks`` ticks (0 = off); ``every_chunk``: keep ramping
    when another chunk takes over (ensemble mode, where every tick averages all stored chunks)."""

    def __init__(self, ticks: int, every_chunk: bool) -> None:
        self.ticks, self.every_chunk = int(ticks), bool(every_chunk)
        self._pending = False  # a start-up chunk was accepted: ramp in from its first commanded tick
        self._state: list | None = None  # [commanded ticks so far, hold command, start-up chunk's seq]

    def arm(self) -> None:
        """A start-up chunk was accepted: ramp it in from its first commanded tick."""
        self._pending = self._pending or self.ticks > 0

    def cancel(self) -> None:
        self._pending, self._state = False, None

    def apply(self, target: np.ndarray, last: np.ndarray, seq: int) -> np.ndarray:
        """``target`` ``(M,)`` of the executing chunk ``seq``, blended in from the hold ``last`` ``(M,)`` (the
        command before the start-up chunk's first commanded tick)."""
        if self._pending:
            self._state, self._pending = [0, np.array(last, dtype=np.float64), seq], False
        if self._state is None:
            return target
        i, hold, ramp_seq = self._state
        x = (i + 1) / self.ticks
        if x >= 1.0 or (seq != ramp_seq and not self.every_chunk):
            self._state = None  # done, or another chunk took over (not the start-up chunk's to ramp)
            return target
        self._state[0] = i + 1
        w = x ** 3 * (10.0 - 15.0 * x + 6.0 * x ** 2)
        return hold + w * (target - hold)


def braking_step(gap: np.ndarray, accel: np.ndarray) -> np.ndarray:
    """Largest step ``rho >= 0`` per joint from which a joint braking at ``accel`` per tick covers at most
    ``gap`` in total, this tick included (``gap`` and ``accel`` ``(M,)``, ``gap >= 0``, ``accel > 0`` finite)."""
    g = np.asarray(gap, dtype=np.float64)
    a = np.asarray(accel, dtype=np.float64)
    n = np.floor((np.sqrt(1.0 + 8.0 * g / a) - 1.0) / 2.0)
    n = np.where(a * n * (n + 1) / 2 > g, n - 1, n)  # rounding of the square root
    n = np.where(a * (n + 1) * (n + 2) / 2 <= g, n + 1, n)
    return np.clip(g / (n + 1) + a * n / 2, a * n, a * (n + 1))


class AccelLimiter:
    """Per-joint acceleration limit of a command stream (module docstring); not thread-safe (the
    executor calls it under its lock).

    Args:
        max_accel: ``(M,)`` largest change of the per-tick step per tick (rad/tick^2), ``> 0``; ``inf``: off.
    """

    def __init__(self, max_accel: np.ndarray) -> None:
        self.max_accel = np.asarray(max_accel, dtype=np.float64).reshape(-1)
        if np.isnan(self.max_accel).any() or (self.max_accel <= 0).any():
            raise ValueError(f"max_accel must be > 0 (inf = off) for every joint, got {self.max_accel.tolist()}")
        self.on = np.isfinite(self.max_accel)
        self.active = bool(self.on.any())
        m = self.max_accel.size
        self._a = np.where(self.on, self.max_accel, 1.0)
        self._step = np.zeros(m)  # the last command's step u_{t-1}
        self._target = np.full(m, np.nan)  # the last target r_{t-1} (NaN: none since the last reset)
        self._w = np.zeros(m)  # the last target's step w_{t-1}

    def reset(self, joints: Iterable[int] | None = None) -> None:
        """At rest with no target (all joints, or the given indices): the base was measured, or a stop holds it."""
        idx = slice(None) if joints is None else list(joints)
        self._step[idx] = 0.0
        self._target[idx] = np.nan
        self._w[idx] = 0.0

    @property
    def moving(self) -> bool:
        """A limited joint's last command step is not zero (a hold has not braked it to rest yet)."""
        return bool(np.any(self._step[self.on] != 0.0))

    def resume(self, step: np.ndarray, target: np.ndarray) -> None:
        """The state after a tick that commanded the per-tick ``step`` ``(M,)`` toward ``target`` ``(M,)`` (already
        inside the joint limits): to replay the executor from its reported commands
        (:mod:`~rtc_ros.runtime.hold_model`). The target's own step only matters at a splice; it is set to 0."""
        self._step = np.where(self.on, np.asarray(step, dtype=np.float64), 0.0)
        self._target = np.where(self.on, np.asarray(target, dtype=np.float64), np.nan)
        self._w = np.zeros_like(self._step)

    def step(self, last: np.ndarray, target: np.ndarray | None, plain: np.ndarray, lower: np.ndarray,
             upper: np.ndarray, max_step: np.ndarray, splice: bool = False,
             speed: np.ndarray | None = None) -> np.ndarray:
        """The command ``(M,)`` after ``last`` ``(M,)`` toward ``target`` ``(M,)`` (None: a hold), committed.

        ``plain``: the command without the limit (the executor's clamp of ``target``, or ``last`` on a hold),
        used for the joints that are off. ``lower``, ``upper``, ``max_step``: ``(M,)`` joint limits and step
        limit. ``splice``: a chunk takes over at this tick (its jump is a gap, not a speed); ``speed``: its own
        step ``(M,)`` there if known (else the previous target's step is assumed)."""
        x = np.asarray(last, dtype=np.float64)
        if target is None:  # a hold: brake to a stop wherever that is, at A per tick, and stay there
            shaped = x + self._step - np.sign(self._step) * np.minimum(np.abs(self._step), self._a)
            r = prev = None
        else:
            r = np.clip(np.asarray(target, dtype=np.float64), lower, upper)
            w_splice = self._w if speed is None else np.asarray(speed, dtype=np.float64)
            prev = np.where(np.isnan(self._target), r, r - w_splice if splice else self._target)  # none: w = 0
            gap = prev - x
            rho = np.sign(gap) * np.minimum(np.abs(gap), braking_step(np.abs(gap), self._a / 2))
            cand = r - (gap - rho)  # = x + w + rho, exactly r when the gap closes
            lo, hi = x + self._step - self._a, x + self._step + self._a
            shaped = np.where((cand >= lo) & (cand <= hi), cand, np.clip(cand, lo, hi))
        cmd = np.clip(np.clip(shaped, np.minimum(lower, x), np.maximum(upper, x)), x - max_step, x + max_step)
        u = shaped - x  # a clip may shorten the step, never lengthen it: its jump is no speed
        self._step = np.where(self.on, np.clip(cmd - x, np.minimum(u, 0.0), np.maximum(u, 0.0)), 0.0)
        if r is None:  # held: the target is where the command is, moving at its step
            self._w, self._target = self._step.copy(), np.where(self.on, cmd, np.nan)
        else:
            self._w = np.where(self.on, r - prev, 0.0)
            self._target = np.where(self.on, r, np.nan)
        return np.where(self.on, cmd, plain)
