"""Where the executor keeps accepted chunks, one store per execution mode (no validation here).

Steps count controller ticks. A chunk observed at step ``t_obs`` predicts steps
``t_obs .. t_obs + H - 1`` (index 0 = step ``t_obs``). Every store answers ``action(step)`` with the
``(M,)`` action for that step or None (nothing to execute: the executor holds).

* :class:`SwitchStore` (rtc*, naive, bid): the newest chunk replaces the old one at the step it
  arrives, ``now``; it runs from index ``now - t_obs`` (the consumed delay). Nothing is re-executed
  and nothing beyond what was consumed is skipped.
* :class:`SyncStore` (sync): run ``s`` actions of a chunk from its index 0, then nothing until the
  next chunk, which again starts at index 0 (the robot stood still while the model ran).
* ensemble mode uses :class:`rtc_ros.core.ensemble.TemporalEnsembler` directly.

Validation (shape, order, staleness, ...) is the executor's: :meth:`ExecutorCore.offer_chunk`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpliceInfo:
    """What happened when a chunk took over.

    Attributes:
        seq: the chunk's sequence number.
        takeover: step from which the new chunk is executed.
        consumed: ``takeover - t_obs``: steps that ran before it could (the delay actually observed;
            0 in sync mode, where the robot waited instead).
        d: the frozen prefix the producer assumed (its forecast); ``consumed > d`` means the chunk
            came later than forecast.
        jump: max-abs difference at ``takeover`` between the new action and what would otherwise
            have been commanded (the old chunk's action, or the held command); 0 if neither existed.
    """

    seq: int
    takeover: int
    consumed: int
    d: int
    jump: float


class SwitchStore:
    """The currently executing chunk; the caller serialises access (the executor's lock)."""

    def __init__(self, horizon: int) -> None:
        self.horizon = horizon
        self._chunk: np.ndarray | None = None
        self._t_obs = 0

    def insert(self, chunk: np.ndarray, t_obs: int) -> None:
        """Make ``chunk (H, M)`` (already validated and copied) the executing one."""
        self._chunk, self._t_obs = chunk, t_obs

    def action(self, step: int) -> np.ndarray | None:
        """Action ``(M,)`` for ``step`` or None once the chunk has run out (or before the first)."""
        if self._chunk is None:
            return None
        i = step - self._t_obs
        return self._chunk[i].copy() if 0 <= i < self.horizon else None


class SyncStore:
    """Synchronous execution: ``s`` actions of a chunk, then a pause until the next chunk.

    A chunk normally starts at its index 0: it was observed during the pause, where the robot stands
    still. One observed earlier, while the previous chunk was still moving the robot (a camera frame
    older than the pause), starts at the index of the step the robot has reached: index ``k`` for the
    ``k`` moving steps between its observation and the pause (of this chunk and the ones before it), so
    it never commands the robot back to where it was observed; one with no action left for that step
    is stale (:meth:`moved_since` ``>= H``: the executor refuses it)."""

    def __init__(self, s: int, horizon: int) -> None:
        self.s = s
        self._chunk: np.ndarray | None = None
        self._origin = 0  # step at which the executing chunk started
        self._start = 0  # its first index executed
        self._pending: tuple[np.ndarray, int, int, int] | None = None  # chunk, seq, t_obs, d
        self._spans: deque[tuple[int, int]] = deque(maxlen=horizon)  # earlier chunks' moving steps [a, b)

    def offer(self, chunk: np.ndarray, seq: int, t_obs: int, d: int) -> None:
        """Queue ``chunk``; it starts once the current one has executed its ``s`` actions."""
        self._pending = (chunk, seq, t_obs, d)

    def pause_step(self, now: int) -> int:
        """The earliest step a queued chunk can start at."""
        return now if self._chunk is None else max(now, self._origin + self.s)

    @property
    def started(self) -> bool:
        return self._chunk is not None

    def _span(self) -> tuple[int, int]:
        """The executing chunk's moving steps ``[origin, end)`` (it may run out before ``s`` actions)."""
        assert self._chunk is not None
        return self._origin, self._origin + min(self.s, len(self._chunk) - self._start)

    def moved_since(self, t_obs: int) -> int:
        """Steps the robot moves from step ``t_obs`` until the next pause (0 if observed in the pause): the
        index a chunk observed at ``t_obs`` starts at. Every span has >= 1 step, so H of them cover H."""
        spans = [*self._spans, self._span()] if self._chunk is not None else list(self._spans)
        return sum(max(0, b - max(t_obs, a)) for a, b in spans)

    def action(self, step: int) -> tuple[np.ndarray | None, tuple[int, int, int] | None]:
        """``(action or None, (seq, t_obs, d) if a queued chunk started at this step)``."""
        if self._chunk is not None and step - self._origin < self.s:
            i = self._start + step - self._origin
            return (self._chunk[i].copy(), None) if i < len(self._chunk) else (None, None)
        if self._pending is not None:
            chunk, seq, t_obs, d = self._pending
            self._pending = None
            start = min(self.moved_since(t_obs), len(chunk) - 1)  # (>= H was refused as stale)
            if self._chunk is not None:
                self._spans.append(self._span())
            self._chunk, self._origin, self._start = chunk, step, start
            return chunk[start].copy(), (seq, t_obs, d)
        return None, None
