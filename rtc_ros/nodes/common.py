"""Small pieces every rtc_ros node shares: the reliable QoS, per-key log throttling and the diagnostics message."""

from __future__ import annotations

import os
import re
import socket
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

#: reliable, keep-last 10: chunks, executor states, commands, merged joint states, sim topics
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
#: a steady clock for timers that must fire whatever ROS time does (diagnostics, the clock check)
STEADY = Clock(clock_type=ClockType.STEADY_TIME)


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


_HOST = socket.gethostname()


def diagnostic_array(name: str, level: bytes, message: str, values: dict[str, Any], stamp: Any) -> DiagnosticArray:
    """One ``DiagnosticStatus`` with ``values`` as key/value strings; its ``hardware_id`` is the node's full name
    when ``name`` ends with it in parentheses (``rtc_ros: chunk_executor (/robot1/chunk_executor)``: two robots'
    statuses tell apart on the one ``/diagnostics``), else ``rtc_ros``. The values end with ``host`` and ``pid``: two
    processes of one node name (a leftover one) publish two statuses a dashboard would merge into one row."""
    fq = re.search(r"\((/[^()]*)\)$", name)
    st = DiagnosticStatus(level=level, name=name, message=message, hardware_id=fq.group(1) if fq else "rtc_ros")
    values = {**values, "host": _HOST, "pid": os.getpid()}
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


class ClockCheck:
    """Says when a node's time and the graph's disagree, on a steady-clock timer (it fires whatever ROS time does):
    ``use_sim_time`` true and no ``/clock`` received (the node's time stands at 0: nothing ticks, plans or records,
    silently), or simulated time standing still for ``period_s`` (the simulator paused, stopped or died: the node
    waits), ``/clock`` published while ``use_sim_time`` is false (its stamps are wall-clock time beside the
    simulator's sim time: observations refused as old, bags with mixed times), or by more than one publisher (two
    time lines: the executor would re-sync at every step back). Checked every ``period_s``, a warning at most every
    ``log_period_s``; :attr:`message` is the latest finding ('' when none), for ``/diagnostics``."""

    def __init__(self, node: Any, period_s: float = 5.0, log_period_s: float = 30.0) -> None:
        self.node, self.message = node, ""
        self._throttle = Throttle()
        self._period_s, self._log_period_s = period_s, log_period_s
        self._seen: tuple[int, float] | None = None  # (ROS time ns, steady s) when it last moved
        self.timer = node.create_timer(period_s, self.check, clock=STEADY)

    def check(self) -> str:
        """The disagreement now ('' when none); logged, throttled."""
        node = self.node
        sim = bool(node.get_parameter("use_sim_time").value)
        clocks = node.count_publishers("/clock")
        still_s = self.standing_s()
        now_ns = self._seen[0] if self._seen else 0
        self.message, kind = "", ""
        if sim and now_ns == 0 and clocks == 0:
            kind, self.message = "no_clock", ("use_sim_time is true but no /clock is published: this node's time stands at 0 and it "
                            "waits (start the simulator's clock, or use_sim_time:=false)")
        elif sim and still_s >= 0.9 * self._period_s:  # (timer jitter: one period, not two)
            kind, self.message = "standing", (f"simulated time has not advanced for {still_s:.0f} s ({clocks} /clock publishers): the "
                            "simulator paused or stopped? this node waits")
        elif not sim and clocks > 0:
            kind, self.message = "wall_time", (f"/clock is published ({clocks} publishers: a simulator?) but use_sim_time is false here: "
                            "this node's stamps are wall-clock time beside the simulator's; give every node "
                            "use_sim_time:=true")
        elif sim and clocks > 1:
            kind, self.message = "two_clocks", (f"/clock has {clocks} publishers: two time lines (a bag played with --clock beside a "
                            "simulator?); time stepping back makes the executor re-sync")
        if kind and self._throttle(kind, self._log_period_s):  # (per finding)
            node.get_logger().warn(self.message)
        return self.message

    def standing_s(self) -> float:
        """Seconds (steady clock) since the node's ROS time last changed, as seen by the calls of this method and
        :meth:`check`; 0 while it moves (with ``use_sim_time``: how long the simulator has stood still)."""
        now_ns, t = self.node.get_clock().now().nanoseconds, time.monotonic()
        if self._seen is None or now_ns != self._seen[0]:
            self._seen = (now_ns, t)
        return t - self._seen[1]


def with_warning(level: Any, message: str, text: str) -> tuple[Any, str]:
    """A diagnostics ``level, message`` with ``text`` added as a WARN (it replaces an OK status's message)."""
    if not text:
        return level, message
    return max(level, DiagnosticStatus.WARN), (text if level == DiagnosticStatus.OK else f"{message}; {text}")


def with_clock_check(node: Any, level: int, message: str, summary: dict[str, object]) -> tuple[int, str, dict[str, object]]:
    """``level, message`` with the node's clock disagreement (:class:`~rtc_ros.nodes.common.ClockCheck`) as a WARN."""
    return (*with_warning(level, message, node.clock_check.message), summary)
