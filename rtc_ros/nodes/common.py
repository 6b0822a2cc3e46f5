"""Small pieces every rtc_ros node shares: the reliable QoS, per-key log throttling and the diagnostics message."""

from __future__ import annotations

import re
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

#: reliable, keep-last 10: chunks, executor states, commands, merged joint states, sim topics
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


class Throttle:
    """``throttle(key, period)`` is True at most once per ``period`` seconds for each key.

    Used on the 50 Hz paths instead of logging every tick (keys separate unrelated messages).
    """

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def __call__(self, key: str, period: float) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) >= period:
            self._last[key] = now
            return True
        return False


def diagnostic_array(name: str, level: bytes, message: str, values: dict[str, Any], stamp: Any) -> DiagnosticArray:
    """One ``DiagnosticStatus`` with ``values`` as key/value strings; its ``hardware_id`` is the node's full name
    when ``name`` ends with it in parentheses (``rtc_ros: chunk_executor (/robot1/chunk_executor)``: two robots'
    statuses tell apart on the one ``/diagnostics``), else ``rtc_ros``."""
    fq = re.search(r"\((/[^()]*)\)$", name)
    st = DiagnosticStatus(level=level, name=name, message=message, hardware_id=fq.group(1) if fq else "rtc_ros")
    st.values = [KeyValue(key=k, value=f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in values.items()]
    arr = DiagnosticArray()
    arr.header.stamp = stamp
    arr.status = [st]
    return arr


def set_timer_period(timer: Any, seconds: float) -> None:
    """A run-time change of ``timer``'s period (a parameter set), taking effect from now: the timer is changed, not
    destroyed and created again -- under a MultiThreadedExecutor another thread may be adding it to its wait set
    right then, and a destroyed timer's handle raises there (rclpy issues #1206, #1355), ending ``spin``."""
    timer.timer_period_ns = int(round(float(seconds) * 1e9))
    timer.reset()
