"""Inference-delay forecast (Algorithm 1): max over a buffer Q of the last b observed delays."""

from __future__ import annotations

import math
import threading
from collections import deque


def latency_to_steps(latency_s: float, dt: float) -> int:
    """``d = floor(delta / dt)`` -- wall time of one inference in controller steps (>= 0)."""
    if dt <= 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    if not math.isfinite(latency_s) or latency_s < 0:
        raise ValueError(f"latency must be finite and >= 0, got {latency_s}")
    return int(math.floor(latency_s / dt + 1e-9))


class DelayForecaster:
    """Forecast d as the max of the last ``b`` delays; cold-start samples are excluded.

    Args:
        buffer_size: b >= 1 (paper: 10). A running max that never forgets would let one slow
            compile or cold start inflate d forever; the buffer forgets after b samples.
        initial_delay: the forecast before any delay has been observed.
        exclude_first: how many of the first recorded samples to drop as cold start (in addition
            to samples recorded with ``warmup=True``).
    """

    def __init__(self, buffer_size: int = 10, initial_delay: int = 0, exclude_first: int = 0) -> None:
        if buffer_size < 1:
            raise ValueError(f"buffer_size (b) must be >= 1, got {buffer_size}")
        if initial_delay < 0:
            raise ValueError(f"initial_delay must be >= 0, got {initial_delay}")
        if exclude_first < 0:
            raise ValueError(f"exclude_first must be >= 0, got {exclude_first}")
        self._q: deque[int] = deque(maxlen=buffer_size)
        self._initial = initial_delay
        self._to_skip = exclude_first
        self._lock = threading.Lock()

    def record(self, delay_steps: int, warmup: bool = False) -> None:
        """Record an observed delay (in steps); ``warmup=True`` samples are ignored."""
        if delay_steps < 0:
            raise ValueError(f"delay must be >= 0 steps, got {delay_steps}")
        with self._lock:
            if warmup:
                return
            if self._to_skip > 0:
                self._to_skip -= 1
                return
            self._q.append(int(delay_steps))

    def forecast(self) -> int:
        """max(Q), or the initial delay while Q is empty."""
        with self._lock:
            return max(self._q) if self._q else self._initial

    def samples(self) -> list[int]:
        with self._lock:
            return list(self._q)
