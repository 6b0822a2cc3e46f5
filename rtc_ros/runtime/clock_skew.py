"""Is a sensor's clock ahead of the executor's? (ROS-free.)

An observation's stamp is mapped to the executor step it can first act on
(:class:`~rtc_ros.runtime.step_clock.StepClock`), no later than the executor's step now
(:meth:`ClockAhead.executor_now`). A sensor whose clock runs *ahead* of the executor's (two machines without
chrony/PTP) therefore looks fresh however late its messages arrive: its observations are taken as newer than they are, the chunk's
index 0 lands on a later step than the one observed, and the staleness checks (``obs_timeout``,
``max_chunk_age``) measure from the wrong time. Nothing else detects it: a clock *behind* shows as old
observations, which those checks refuse.

:class:`ClockAhead` estimates the executor's clock from its reports: each report's stamp minus its receipt
time on the receiving node's clock is the offset between the two clocks less that report's delay (transport,
a callback run late), so the largest offset over the recent reports is the best estimate, low by the least
delay. A sensor stamp is compared with the executor's time at its receipt (``receipt + offset``): on clocks in
sync it cannot lie ahead of it by more than that least delay, so a lead beyond ``tolerance_s`` is a clock out
of sync. Nothing is judged before the window is full. Not for simulated time (``use_sim_time``): one ``/clock``
for every node leaves nothing to be out of sync, and a node's view of it moves in the clock's steps (Gazebo
Classic publishes it at 10 Hz by default), which would read as leads of up to a step.
"""

from __future__ import annotations

from collections import deque

#: a gap of more than this many control periods between two of the node's callbacks (joint states, reports) is the
#: node itself stalled (CPU load); a report it then reads late says nothing of the network (:meth:`ClockAhead.on_report`)
STALL_PERIODS = 3


class ClockAhead:
    """Sensor stamps against the executor's clock (all times in ns).

    Args:
        tolerance_s: a lead up to this is taken as jitter (the least report delay); beyond it a stamp
            counts as ahead.
        reports: how many recent reports the offset is the largest over (at 50 Hz, 50: one second).
        sim_time: the nodes run on simulated time (module docstring): nothing is judged, the executor's clock not
            estimated.
        period_s: the executor's control period (default: ``tolerance_s``), for :meth:`executor_now`.
    """

    def __init__(self, tolerance_s: float, reports: int = 50, sim_time: bool = False,
                 period_s: float | None = None) -> None:
        if not tolerance_s > 0:
            raise ValueError(f"tolerance_s must be > 0, got {tolerance_s}")
        self.tolerance_s, self.sim_time = float(tolerance_s), bool(sim_time)
        self.period_ns = int((tolerance_s if period_s is None else period_s) * 1e9)
        self._offsets: deque[int] = deque(maxlen=max(1, int(reports)))  # executor stamp - receipt, ns
        self._offset = 0  # their largest
        self._received = 0  # the newest report's receipt (this node's clock, ns)
        self._stamp = 0  # the newest report's stamp (the executor's clock, ns)
        self.ahead = 0  # stamps counted ahead, in all
        self.worst_s = 0.0  # the largest lead since the last :meth:`take_worst` (0: none ahead)
        self._last_callback = 0  # the node's newest callback (joint state or report; this node's clock, ns)
        self._stall_end = -(1 << 62)  # when the newest gap of over STALL_PERIODS periods in them ended

    def _callback(self, now_ns: int) -> None:
        gap = STALL_PERIODS * self.period_ns
        if self._last_callback and now_ns - self._last_callback > gap:
            self._stall_end = int(now_ns)
        self._last_callback = max(self._last_callback, int(now_ns))

    def on_report(self, stamp_ns: int, received_ns: int) -> None:
        """The executor's newest report: its stamp (its clock) and its receipt (this node's clock). Read within
        :data:`STALL_PERIODS` periods after a gap of as long in this node's callbacks (its joint states stopped
        too: the node stalled, CPU load), its delay is taken as the least one: the executor most likely stalled
        with it and made no step meanwhile (a two-robot test on 2 cores: a chunk refused as 12 steps in the future),
        whereas reports a network holds back come late while the joint states keep coming."""
        self._callback(received_ns)
        if stamp_ns > 0:
            self._offsets.append(int(stamp_ns) - int(received_ns))
            self._offset = max(self._offsets)  # (once per report, not per joint state: those may come at 500 Hz)
            stalled = received_ns - self._stall_end <= STALL_PERIODS * self.period_ns
            self._received = min(int(received_ns), int(stamp_ns) - self._offset) if stalled else int(received_ns)
            self._stamp = int(stamp_ns)

    def executor_now(self, now_ns: int) -> int:
        """The executor's clock at ``now_ns`` (this node's clock), low by the least report delay, but at most a
        period past the newest report's stamp, or past where the executor's clock was at that report's receipt less
        half a period (the delays' usual jitter): a report that came late says how far the executor had gone
        meanwhile (its next step can then be told while a burst of reports held back by a network's retransmissions
        is read: :meth:`rtc_ros.runtime.step_clock.StepClock.step_at`), and no step is assumed for reports that do
        not come (an executor that stalls or stopped makes none; it never catches up; a review found the cap at
        a period past the receipt let one step through when the newest report came a few ms late). 0 (unknown)
        until ``reports`` reports came, and on simulated time. Receipts and ``now_ns`` on a monotonic clock: a
        step of this machine's clock then changes nothing."""
        if len(self._offsets) < (self._offsets.maxlen or 1) or self.sim_time:
            return 0
        seen = max(self._stamp, self._received + self._offset - self.period_ns // 2)
        return min(int(now_ns) + self._offset, seen + self.period_ns)

    def lead_s(self, stamp_ns: int, now_ns: int) -> float | None:
        """How far ``stamp_ns`` (a sensor's) lies ahead of the executor's clock at ``now_ns``, its receipt on
        this node's clock, in seconds (negative: behind, the usual latency); None until ``reports`` reports
        came (a few reports may all have been late). A lead beyond the tolerance is counted and kept as the
        worst. Every joint state's receipt goes through here (the node's callbacks: a gap in them is a stall)."""
        self._callback(now_ns)
        if len(self._offsets) < (self._offsets.maxlen or 1) or self.sim_time:
            return None
        lead = (int(stamp_ns) - int(now_ns) - self._offset) * 1e-9
        if lead > self.tolerance_s:
            self.ahead += 1
            self.worst_s = max(self.worst_s, lead)
        return lead

    def take_worst(self) -> float:
        """The largest lead beyond the tolerance since the last call (0.0: none), and start afresh."""
        worst, self.worst_s = self.worst_s, 0.0
        return worst


def ahead_text(topic: str, lead_s: float) -> str:
    """The warning for a sensor on ``topic`` stamped ``lead_s`` ahead of the executor's clock."""
    return (f"{topic} is stamped {lead_s * 1e3:.0f} ms ahead of the executor's clock: the clocks are not in sync "
            "(run chrony or PTP between the driver's and the executor's machines), or the executor's reports reach "
            "this node that late (a network retransmitting them: they are reliable, joint states best effort; the "
            "two cannot be told apart here). Its observations look that much fresher than they are: chunks start "
            "late by up to that, and obs_timeout / max_chunk_age cannot see it")
