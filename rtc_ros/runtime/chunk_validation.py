"""The executor's one chunk validator (a mixin of :class:`~rtc_ros.runtime.executor.ExecutorCore`, whose
state it reads under the core's lock): every chunk offered passes :meth:`ChunkValidator._validate` or
raises :class:`~rtc_ros.runtime.executor_types.ChunkRejected` with a reason code, counted and remembered
(seq, reason) for the executor-state report, so the policy side can replan at once instead of waiting."""

from __future__ import annotations

import math
import threading

import numpy as np

from rtc_ros.runtime.chunk_store import SyncStore
from rtc_ros.runtime.executor_types import ChunkRejected, ExecutorConfig, ExecutorStats

#: observation stamps up to this far ahead of the executor's clock are accepted (clock skew)
FUTURE_TOLERANCE_S = 0.5


def beyond_limits(arr: np.ndarray, lower: np.ndarray, upper: np.ndarray, excess: float,
                  names: list[str] | None = None) -> str:
    """Why the chunk ``arr (H, M)`` lies implausibly far beyond the joint limits ``lower``, ``upper`` (``(M,)``)
    ('' when it does not): the executor's ``limits`` refusal.

    An action beyond a joint's limits by more than ``excess`` (``max_limit_excess``) times the joint's range
    (``upper - lower``) is no policy overshooting a little (that is clamped) but a chunk in other units,
    another joint order or another normalisation. Joints without two finite limits are not checked.
    ``names``: the joints' names for the message (default: their indices).
    """
    lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    span = hi - lo
    ok = np.isfinite(span) & (span > 0)
    if not ok.any():
        return ""
    margin = np.where(ok, excess * span, np.inf)
    excess_by = np.maximum(lo - margin - arr, arr - hi - margin)  # > 0: beyond the tolerated band
    if not (excess_by > 0).any():
        return ""
    k, j = np.unravel_index(int(np.argmax(excess_by)), excess_by.shape)
    joint = f"joint {names[j]}" if names else f"joint index {j}"
    return (f"action {k} of {joint} is {float(arr[k, j]):.4g}, beyond its limits [{lo[j]:.4g}, {hi[j]:.4g}] by more "
            f"than max_limit_excess={excess:g} of their range (other units, joint order or normalisation?)")


def start_gap(first: np.ndarray, held: np.ndarray, max_gap: float, skip: np.ndarray,
              names: tuple[str, ...] | None = None) -> str:
    """Why a start-up chunk's first action ``first (M,)`` is implausibly far from the held command ``held (M,)``
    ('' when it is not): the executor's ``start_gap`` refusal.

    A start-up chunk runs from its index 0, the observation's step, on an arm that stood still: its first action
    is where the policy believes the arm is (a teleoperated leader's lead, a little sag). Farther than
    ``max_gap`` (``max_start_gap``, in the joints' units) on a joint not in ``skip`` (grippers: a squeeze keeps the
    command off the measured opening) is a policy in other units than the driver (degrees for radians), another
    joint order or another robot, whose chunk the limits do not catch: the executor would walk the arm there at
    ``max_step`` per tick. ``names``: the joints' names for the message (default: their indices).
    """
    gap = np.where(np.asarray(skip, dtype=bool), 0.0, np.abs(np.asarray(first) - np.asarray(held)))
    if not (gap > max_gap).any():
        return ""
    j = int(np.argmax(gap))
    joint = f"joint {names[j]}" if names else f"joint index {j}"
    return (f"its first action puts {joint} at {float(first[j]):.4g}, {float(gap[j]):.4g} from where it is held "
            f"({float(held[j]):.4g}), more than max_start_gap={max_gap:g} (a policy in other units than the driver's "
            "joint_states, e.g. degrees without robot_units? another joint order or robot? or the arm is not where "
            "it is held: ~/resync)")


class ChunkValidator:
    """Validation and rejection bookkeeping of :class:`~rtc_ros.runtime.executor.ExecutorCore`."""

    cfg: ExecutorConfig
    stats: ExecutorStats
    max_chunk_age: float
    max_limit_excess: float
    max_start_gap: float
    _last: np.ndarray | None
    _enabled: bool
    _lock: threading.Lock
    _next_step: int
    _last_seq: int
    _last_t_obs: int
    _exec: tuple[int, int, int]
    _rejected: tuple[int, str]
    _resync_step: int
    _sync: SyncStore

    def reject(self, reason: str, message: str, seq: int = -1) -> ChunkRejected:
        """Count a rejection (also one decided while decoding the message) and return it."""
        with self._lock:
            return self._reject(reason, message, seq)

    def _reject(self, reason: str, message: str, seq: int) -> ChunkRejected:
        self.stats.rejects_by_reason[reason] = self.stats.rejects_by_reason.get(reason, 0) + 1
        self.stats.last_reject = f"{reason}: {message}"
        if seq >= 0:
            self._rejected = (seq, reason)
        return ChunkRejected(reason, message, seq)

    def _validate(self, arr: np.ndarray, seq: int, t_obs: int, d: int, s: int, obs_age_s: float | None) -> None:
        """The one chunk validator. Raises :class:`ChunkRejected` (counted, remembered)."""
        cfg, now, H = self.cfg, self._next_step, self.cfg.horizon
        if arr.shape != (H, cfg.action_dim):
            raise self._reject("shape", f"chunk seq {seq}: shape {arr.shape} != (H={H}, M={cfg.action_dim})", seq)
        if not np.isfinite(arr).all():
            raise self._reject("nonfinite", f"chunk seq {seq} contains NaN or Inf", seq)
        if self.max_limit_excess > 0 and (msg := self._beyond_limits(arr)):
            raise self._reject("limits", f"chunk seq {seq}: {msg}", seq)
        if not (0 <= d <= H and 0 <= s <= H):
            raise self._reject("metadata", f"chunk seq {seq}: d={d}, s={s} outside [0, H={H}]", seq)
        if seq <= self._last_seq:
            raise self._reject("order", f"chunk seq {seq} is not newer than seq {self._last_seq}", seq)
        if t_obs < self._resync_step:
            raise self._reject("resync", f"chunk seq {seq} observed at step {t_obs}, before the re-sync at step "
                                         f"{self._resync_step} (the robot was moved since)", seq)
        if t_obs > now:
            raise self._reject("future", f"chunk seq {seq} observed at step {t_obs} is ahead of now={now} "
                                         "(by a step or two: this loop ran late, missing ticks, while the policy side "
                                         "estimated its step from the clock -- replanned at once; by more: an executor "
                                         "restarted, or a clock/step mix-up)", seq)
        if cfg.mode != "sync" and self._exec[0] >= 0 and now - t_obs >= H:  # (the start-up chunk runs from index 0)
            raise self._reject("stale", f"stale chunk seq {seq}: observed at step {t_obs}, now {now}: "
                                        f"delay {now - t_obs} >= H={H}, no action left", seq)
        if cfg.mode == "sync" and (moved := self._sync.moved_since(t_obs)) >= H:  # (its pauses do not count)
            raise self._reject("stale", f"stale chunk seq {seq}: observed at step {t_obs}, the robot moves "
                                        f"{moved} >= H={H} steps before it could start", seq)
        if t_obs < self._last_t_obs:  # (after 'stale': the policy side counts its own stale overruns)
            raise self._reject("order", f"chunk seq {seq} observed at step {t_obs}, before the observation (step "
                                        f"{self._last_t_obs}) of the newer plan seq {self._last_seq} already "
                                        "accepted (two policy nodes on one executor?)", seq)
        if self.max_chunk_age > 0:
            if obs_age_s is None or not math.isfinite(obs_age_s):
                raise self._reject("age", f"chunk seq {seq} has no observation stamp (max_chunk_age is on)", seq)
            if obs_age_s > self.max_chunk_age:
                raise self._reject("age", f"chunk seq {seq}: observation is {obs_age_s:.3f}s old "
                                          f"(max_chunk_age {self.max_chunk_age}s)", seq)
            if obs_age_s < -FUTURE_TOLERANCE_S:
                raise self._reject("age", f"chunk seq {seq}: observation stamp is {-obs_age_s:.3f}s in the future "
                                          f"(clocks out of sync?)", seq)
        if self.max_start_gap > 0 and self._exec[0] < 0 and self._last is None:  # (an audit: accepted before the
            # first measurement, after a re-sync or one beyond the limits, a chunk in degrees walked the arm away)
            raise self._reject("start_gap", f"start-up chunk seq {seq}: no hold position yet (no joint state measured "
                                            "since the start, the re-sync or one beyond the limits): its first action "
                                            "cannot be checked against where the arm stands (max_start_gap)", seq)
        if self.max_start_gap > 0 and self._exec[0] < 0 and self._last is not None and self._enabled and (
                msg := start_gap(arr[0], self._last, self.max_start_gap, cfg.hold_keeps, cfg.joint_names)):
            # (not while an enabling device is released: that chunk is dropped at the press anyway, and the arm may
            # have been moved by hand meanwhile)
            raise self._reject("start_gap", f"start-up chunk seq {seq}: {msg}", seq)

    def _beyond_limits(self, arr: np.ndarray) -> str:
        return beyond_limits(arr, self.cfg.lower, self.cfg.upper, self.max_limit_excess,
                             list(self.cfg.joint_names) if self.cfg.joint_names else None)
