"""chunk_executor's tracking watchdog: does the arm follow the commands, and if not, hold where it is.

With ``<arm>.tracking_tolerance`` set for ``chunk_executor``, the executor keeps reading ``joint_states``
after its first command and compares every measurement with its own newest command
(:meth:`~rtc_ros.runtime.executor.ExecutorCore.tracking_reference`) through the
:class:`~rtc_ros.runtime.tracking.TrackingWatchdog`: a joint beyond its tolerance for ``tracking_timeout_s``
re-syncs the executor as ``~/hold`` does (chunks dropped, the measured position commanded whatever
``startup_command`` says, paused until ``~/resume``), logs the joint, its error and tolerance, and reports
ERROR in that diagnostics period (``tracking_trips``, ``tracking_trip_last``). Nothing is checked while the
arm need not follow (nothing sent since the start or a re-sync, paused, disabled, muted, a dry run), so it
acts at most once per ``~/resume``. It runs beside the driver, where the executor runs: no network between the
measurement, the command and the action (until 2026-12-06 it ran in ``policy_inference``, which may run on
another machine, and called ``~/hold`` from there). A driver publishing faster than the executor's rate is
checked at most once per half tick. While the arm should follow but no readable joint state came for longer
than the timeout (at least 5 ticks), the diagnostics say the watchdog is blind (WARN). Without a tolerance the
executor stops reading joint states after its first command in ``loop_mode: thread`` (as before; in timer mode
the subscription stays and the messages are dropped at once).
"""

from __future__ import annotations

import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import JointState

from rtc_ros.nodes.common import Throttle
from rtc_ros.runtime.tracking import TrackingWatchdog


class ExecutorTracking:
    """Owned by the chunk_executor node ``node`` (its core, joint-state reader, re-sync and logger); ``p``: its
    validated parameters."""

    def __init__(self, node: Any, p: Any) -> None:
        self.node = node
        self.names: list[str] = p.joint_names
        self.watchdog = TrackingWatchdog([t for arm in p.arms for t in arm.tracking_tolerance], p.tracking_timeout_s)
        self.enabled = self.watchdog.enabled
        self.dry = bool(p.dry_run)  # nothing is sent: nothing to follow
        self.dt = float(p.dt)
        self.last_trip = ""
        self.unreadable = 0  # joint states without our joints (or NaN) while checking
        self._reported = 0  # trips at the last diagnostics
        self._checked_t = -1.0  # monotonic time of the last joint state checked (at most one per half tick)
        self._heard_t: float | None = None  # ... of the last readable one
        self._throttled = Throttle()
        if self.enabled:
            node.get_logger().info(f"tracking watchdog on: {self.describe()}")

    def describe(self) -> str:
        """The checked joints' tolerances and the timeout, for the start-up log."""
        tol = ", ".join(f"{n} {t:g}" for n, t in zip(self.names, self.watchdog.tolerance) if t > 0)
        return f"{tol} (joint units) for {self.watchdog.timeout_s:g} s" + ("; idle in this dry run" if self.dry else "")

    def measuring(self) -> None:
        """A joint state went to the executor's measurement (nothing commanded since the start or a re-sync):
        nothing to follow, and a violation begun before does not carry over; the topic is alive."""
        self.watchdog.idle()
        self._heard_t = time.monotonic()

    def on_joint_state(self, msg: JointState) -> None:
        """One measurement, after the executor's first command (the io callback group). A driver publishing
        faster than the executor's rate is checked at most once per half tick (the GIL is the 50 Hz loop's)."""
        now = time.monotonic()
        if now - self._checked_t < 0.5 * self.dt:
            return
        self._checked_t = now
        try:
            q = self.node._reader.positions(msg)
        except ValueError as exc:
            self.unreadable += 1
            if self._throttled("unreadable", 2.0):
                self.node.get_logger().warn(f"tracking watchdog: ignoring joint state: {exc}")
            return
        self._heard_t = now  # (also while nothing is to be followed: the topic is alive)
        command = None if self.dry else self.node.core.tracking_reference()
        if command is None:
            self.watchdog.idle()
            return
        trip = self.watchdog.update(q, command, now)
        if trip is None:
            return
        self.last_trip = (f"{self.names[trip.joint]} {trip.error:.3f} from its command (tolerance {trip.tolerance:g}) "
                          f"for {trip.duration_s:.2f} s")
        step = self.node.core.resync(command_hold=True, why="a tracking-watchdog trip")
        self.node._measure_again()
        self.node.get_logger().error(f"the arm does not follow: {self.last_trip}; re-synced at step {step}: chunks "
                                     "dropped, holding where the arm is, paused until ~/resume")

    def blind(self) -> str:
        """Why the watchdog cannot judge while the arm should follow (no readable joint state for longer than
        the timeout), or ''."""
        if not self.enabled or self.dry or self.node.core.tracking_reference() is None:
            return ""
        age = None if self._heard_t is None else time.monotonic() - self._heard_t
        if age is not None and age <= max(self.watchdog.timeout_s, 5 * self.dt):
            return ""
        since = "no readable joint state yet" if age is None else f"no readable joint state for {age:.2f} s"
        return f"tracking watchdog blind: {since} while commanding"

    def set_timeout(self, value: float) -> None:
        self.watchdog.timeout_s = float(value)

    def diagnostics(self, vals: dict[str, object], level: Any, message: str) -> tuple[Any, str]:
        """Add ``tracking_trips``, ``tracking_unreadable``, ``tracking_js_age_s`` (and the last trip) to ``vals``
        when the watchdog is on; the executor's diagnostics ``level`` and ``message`` with what it adds: ERROR in the
        period of a trip, WARN while :meth:`blind`."""
        if not self.enabled:
            return level, message
        vals["tracking_trips"] = self.watchdog.trips
        vals["tracking_unreadable"] = self.unreadable
        if self._heard_t is not None:
            vals["tracking_js_age_s"] = round(time.monotonic() - self._heard_t, 3)
        if self.last_trip:
            vals["tracking_trip_last"] = self.last_trip
        new, self._reported = self.watchdog.trips > self._reported, self.watchdog.trips
        if new:
            return DiagnosticStatus.ERROR, f"the arm did not follow: {self.last_trip}; {message}"
        blind = self.blind()
        return (max(level, DiagnosticStatus.WARN), f"{blind}; {message}") if blind else (level, message)
