"""policy_inference's tracking: does the arm follow the executor's commands, and what to do if not.

Per measured joint state against the executor's newest command (its ``rtc/executor_state`` report):
the largest error over the joints (``tracking_err_*`` in ``/diagnostics``, the worst joint per period)
and, when any arm sets ``<arm>.tracking_tolerance``, the
:class:`~rtc_ros.runtime.tracking.TrackingWatchdog`: a joint beyond its tolerance for
``tracking_timeout_s`` calls the executor's hold service (``executor_hold_service``, default
``chunk_executor/hold``: chunks dropped, the measured position commanded -- with any ``startup_command`` --
and held, paused until ``~/resume``), logs an error and reports ERROR in that diagnostics period (``tracking_trips``,
``tracking_trip_last``). Nothing is checked while the executor reports itself paused (so at most one
re-sync per ``~/resume``) or when its newest report is older than 5 ticks (the executor gone or stalled:
no verdict on an old command). No service yet: it logs and tries again while the arm still does not follow.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from std_srvs.srv import Trigger

from rtc_ros.core.stats import RollingStats
from rtc_ros.nodes.common import Throttle
from rtc_ros.runtime.tracking import TrackingWatchdog


class TrackingGuard:
    """Owned by the policy_inference node (``node``: its rclpy node, ``p``: its validated parameters)."""

    def __init__(self, node: Any, p: Any) -> None:
        self.node = node
        self.names: list[str] = p.joint_names
        self.stats = RollingStats(500)  # largest |measured - command| over the joints, per joint state
        self._worst = (0.0, "")  # largest error since the last diagnostics and its joint
        tol = [t for arm in p.arms for t in arm.tracking_tolerance]
        self.watchdog = TrackingWatchdog(tol, p.tracking_timeout_s)
        self.service = p.executor_hold_service
        self._client = node.create_client(Trigger, self.service) if self.watchdog.enabled else None
        #: an executor report older than this gives no verdict (5 ticks: the executor reports every tick)
        self.max_command_age_s = max(0.1, 5.0 * p.dt)
        self.last_trip = ""
        self.trips_acted = 0  # re-syncs requested
        self.no_verdict = 0  # joint states not checked: the executor's newest report was too old
        self._reported = 0  # trips_acted at the last diagnostics
        self._pending = False  # tripped, the re-sync not yet requested (no service yet)
        self._throttled = Throttle()

    def on_joint_state(self, q: np.ndarray, command: np.ndarray | None, paused: bool, command_age_s: float) -> None:
        """One measurement (``(M,)``) against the executor's newest command (None: no report yet), whether
        the executor reported itself paused, and how long ago that report arrived."""
        if command is None or command.shape != q.shape:
            self.watchdog.idle()
            return
        err = np.abs(q - command)
        i = int(np.argmax(err))
        self.stats.add(float(err[i]))
        if err[i] >= self._worst[0]:
            self._worst = (float(err[i]), self.names[i])
        if self._client is None:
            return
        if paused:  # an operator's pause, a re-sync, a protective stop: nothing to follow; one trip per resume
            self.watchdog.idle()
        elif command_age_s <= self.max_command_age_s:  # an old report (executor gone, a stall): no verdict
            trip = self.watchdog.update(q, command, time.monotonic())
            if trip is not None:
                self.last_trip = (f"{self.names[trip.joint]} {trip.error:.3f} from its command (tolerance "
                                  f"{trip.tolerance:g}) for {trip.duration_s:.2f} s")
                self._pending = True
        else:
            self.no_verdict += 1
        if self._pending and self.watchdog.tripped:
            self._act()

    def _act(self) -> None:
        log = self.node.get_logger()
        if not self._client.service_is_ready():
            if self._throttled("no_service", 2.0):
                log.error(f"the arm does not follow: {self.last_trip}; cannot re-sync the executor: no service "
                          f"{self._client.srv_name} (is chunk_executor running, executor_hold_service right?)")
            return  # tried again with the next joint state while it still does not follow
        self._pending = False
        self.trips_acted += 1
        log.error(f"the arm does not follow: {self.last_trip}; re-syncing the executor ({self._client.srv_name}: "
                  "chunks dropped, holding where the arm is, paused until ~/resume)")

        def done(f: Any) -> None:
            exc = f.exception()
            if exc is not None or f.result() is None:
                log.error(f"executor re-sync failed: {exc}")
            else:
                log.info(f"executor re-sync: {f.result().message}")

        self._client.call_async(Trigger.Request()).add_done_callback(done)

    def set_timeout(self, value: float) -> None:
        self.watchdog.timeout_s = float(value)

    def diagnostics(self, vals: dict[str, object]) -> int:
        """Add ``tracking_err_*`` (and the watchdog's counts) to ``vals``; the level it asks for."""
        for k, v in self.stats.summary().items():
            vals[f"tracking_err_{k}"] = v
        worst, self._worst = self._worst, (0.0, "")
        if worst[1]:
            vals["tracking_err_worst"], vals["tracking_err_worst_joint"] = worst
        if self._client is None:
            return DiagnosticStatus.OK
        vals["tracking_trips"] = self.watchdog.trips
        vals["tracking_no_verdict"] = self.no_verdict  # grows while the reports come late (a network's jitter)
        if self.last_trip:
            vals["tracking_trip_last"] = self.last_trip
        new, self._reported = self.trips_acted > self._reported or self._pending, self.trips_acted
        return DiagnosticStatus.ERROR if new else DiagnosticStatus.OK  # the period of a trip (and until acted on)
