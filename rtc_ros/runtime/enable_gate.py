"""An enabling device's state from its messages (a deadman switch, a foot pedal), ROS-free.

The executor may command motion only while the device's newest value is True and arrived less than
``timeout_s`` ago: a released device, one whose publisher died (silent), or one never heard hold the
robot (:meth:`~rtc_ros.runtime.executor.ExecutorCore.set_enabled`). Times are the receiver's monotonic
clock in seconds (a ``std_msgs/Bool`` has no stamp).
"""

from __future__ import annotations

import math
import threading


class EnableGate:
    """``timeout_s`` (> 0, may be changed at run time): how old the newest True may be."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = float(timeout_s)
        self._value = False
        self._t = -math.inf  # receive time of the newest message
        self._released = False  # a False arrived since the last sample (a release shorter than a tick)
        self._lock = threading.Lock()  # (messages on the executor thread, samples on the control loop)

    def on_message(self, value: bool, t: float) -> None:
        with self._lock:
            self._t, self._value = float(t), bool(value)
            self._released = self._released or not value

    def sample(self, t: float) -> bool:
        """:meth:`enabled` once per control tick, and False once after any release since the previous sample
        (pressed again within a tick: still a release)."""
        with self._lock:
            released, self._released = self._released, False
            return self.enabled(t) and not released

    def enabled(self, t: float) -> bool:
        """True while the newest value is True and younger than ``timeout_s`` at time ``t``."""
        return self._value and t - self._t <= self.timeout_s

    def why(self, t: float) -> str:
        """Why it is not enabled at ``t`` (also after a release shorter than a tick)."""
        if math.isinf(self._t):
            return "never heard"
        if not self._value or self.enabled(t):  # (enabled again after a short release)
            return "released"
        return f"silent for {t - self._t:.2f} s (enable_timeout_s {self.timeout_s:g})"
