"""Chunk buffer with global controller-step indexing (the executor side of Algorithm 1).

Steps count controller ticks. A chunk conditioned on the observation taken at step ``t_obs``
predicts steps ``t_obs .. t_obs + H - 1`` (index 0 = step ``t_obs``). When it arrives at step
``now`` (the next step to execute), the steps ``t_obs .. now - 1`` have already run from the old
chunk, so the new chunk takes over at index ``now - t_obs`` -- the consumed delay. Nothing is
re-executed and nothing beyond what was consumed is skipped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


class ChunkRejected(ValueError):
    """A chunk that must not be executed (stale, out of order, malformed). The message says why."""


@dataclass(frozen=True)
class SpliceInfo:
    """What happened when a chunk was spliced in.

    Attributes:
        seq: the chunk's sequence number.
        takeover_step: global step from which the new chunk is executed.
        consumed_delay: ``takeover_step - t_obs``: steps that ran from the old chunk (the d that
            was actually observed).
        frozen: the d the producer assumed (leading frozen actions); ``consumed_delay > frozen``
            means the new chunk came later than forecast.
        jump: max-abs difference at ``takeover_step`` between the new action and the action the old
            chunk would have commanded (0 if there was none).
    """

    seq: int
    takeover_step: int
    consumed_delay: int
    frozen: int
    jump: float


class ChunkBuffer:
    """Holds the currently executing chunk; thread-safe; all arrays are copied in and out."""

    def __init__(self, horizon: int, action_dim: int) -> None:
        if horizon < 1 or action_dim < 1:
            raise ValueError(f"horizon and action_dim must be >= 1, got {horizon}, {action_dim}")
        self.horizon = horizon
        self.action_dim = action_dim
        self._chunk: np.ndarray | None = None
        self._t_obs = 0
        self._seq = -1
        self._lock = threading.Lock()

    def _validate(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.array(chunk, dtype=np.float64, copy=True)
        if chunk.shape != (self.horizon, self.action_dim):
            raise ChunkRejected(f"chunk shape {chunk.shape} != (H={self.horizon}, M={self.action_dim})")
        if not np.isfinite(chunk).all():
            raise ChunkRejected("chunk contains NaN or Inf")
        return chunk

    def insert(self, chunk: np.ndarray, t_obs: int, now: int, seq: int, frozen: int = 0) -> SpliceInfo:
        """Splice ``chunk (H, M)`` in; it takes over at step ``max(now, t_obs)``.

        Args:
            chunk: the new chunk (index 0 = step ``t_obs``).
            t_obs: global step at which its observation was taken.
            now: the next step the executor will command.
            seq: sequence number; must increase.
            frozen: the producer's d (informational, reported back in :class:`SpliceInfo`).

        Raises:
            ChunkRejected: malformed, out of order (``seq`` not increasing), from the future
                (``t_obs > now``), or stale (all its actions are in the past).
        """
        chunk = self._validate(chunk)
        if t_obs > now:
            raise ChunkRejected(f"chunk seq {seq} observed at step {t_obs} is ahead of now={now}")
        consumed = now - t_obs
        if consumed >= self.horizon:
            raise ChunkRejected(
                f"stale chunk seq {seq}: observed at step {t_obs}, now {now}, delay {consumed} >= H={self.horizon}"
            )
        with self._lock:
            if seq <= self._seq:
                raise ChunkRejected(f"chunk seq {seq} is not newer than the current seq {self._seq}")
            old = self._action_locked(now)
            jump = 0.0 if old is None else float(np.max(np.abs(chunk[consumed] - old)))
            self._chunk, self._t_obs, self._seq = chunk, t_obs, seq
        return SpliceInfo(seq=seq, takeover_step=now, consumed_delay=consumed, frozen=frozen, jump=jump)

    def _action_locked(self, step: int) -> np.ndarray | None:
        if self._chunk is None:
            return None
        i = step - self._t_obs
        if 0 <= i < self.horizon:
            return self._chunk[i].copy()
        return None

    def action_at(self, step: int) -> np.ndarray | None:
        """Action ``(M,)`` for global ``step`` or None (starvation: the caller holds position)."""
        with self._lock:
            return self._action_locked(step)

    def remaining(self, step: int) -> np.ndarray | None:
        """The current chunk's actions for steps ``>= step``: ``(H - i, M)``, or None if exhausted."""
        with self._lock:
            if self._chunk is None:
                return None
            i = max(0, step - self._t_obs)
            if i >= self.horizon:
                return None
            return self._chunk[i:].copy()

    @property
    def seq(self) -> int:
        with self._lock:
            return self._seq

    def clear(self) -> None:
        with self._lock:
            self._chunk = None
