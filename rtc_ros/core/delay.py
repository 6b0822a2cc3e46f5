"""Inference-delay forecast of Algorithm 1: ``Q = Queue([d_init], maxlen=b)``, ``d = max(Q)``."""

from __future__ import annotations

import math
import threading
from collections import deque


def latency_to_steps(latency_s: float, dt: float) -> int:
    """``d = ceil(delta / dt)`` -- controller steps that pass during one inference of ``delta`` s.

    A step that starts while the model is still running executes from the old chunk, so a partial
    step counts (rounding down would freeze too few actions).
    """
    if dt <= 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    if not math.isfinite(latency_s) or latency_s < 0:
        raise ValueError(f"latency must be finite and >= 0, got {latency_s}")
    return int(math.ceil(latency_s / dt - 1e-9))


class DelayForecaster:
    """Algorithm 1's delay queue, exactly: ``Q`` starts as ``[d_init]``, keeps the last ``b``
    entries, and the forecast is ``max(Q)``; ``d_init`` leaves ``Q`` only after ``b`` observed delays.

    Args:
        buffer_size: b >= 1 (paper: 10).
        initial_delay: ``d_init >= 0``, e.g. the warm-up latency in steps.

    Thread-safe.
    """

    def __init__(self, buffer_size: int = 10, initial_delay: int = 0) -> None:
        if buffer_size < 1:
            raise ValueError(f"buffer_size (b) must be >= 1, got {buffer_size}")
        if initial_delay < 0:
            raise ValueError(f"initial_delay (d_init) must be >= 0, got {initial_delay}")
        self.buffer_size = buffer_size
        self._q: deque[int] = deque([int(initial_delay)], maxlen=buffer_size)
        self._observed = 0
        self._lock = threading.Lock()

    def set_initial_delay(self, d_init: int) -> bool:
        """Replace ``d_init`` while no delay has been observed yet (e.g. after warm-up, whose own
        latencies never enter Q). Returns True if it was replaced."""
        if d_init < 0:
            raise ValueError(f"initial_delay (d_init) must be >= 0, got {d_init}")
        with self._lock:
            if self._observed:
                return False
            self._q = deque([int(d_init)], maxlen=self.buffer_size)
            return True

    def record(self, delay_steps: int) -> None:
        """Enqueue an observed delay (steps, >= 0)."""
        if delay_steps < 0:
            raise ValueError(f"delay must be >= 0 steps, got {delay_steps}")
        with self._lock:
            self._q.append(int(delay_steps))
            self._observed += 1

    def forecast(self) -> int:
        """``max(Q)``."""
        with self._lock:
            return max(self._q)

    def queue(self) -> list[int]:
        """The entries of Q, oldest first (``d_init`` first until ``b`` delays were observed)."""
        with self._lock:
            return list(self._q)
