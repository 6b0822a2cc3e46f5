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
another machine, and called ``~/hold`` from there). Without a tolerance the executor stops reading joint
states after its first command, as before.
"""

from __future__ import annotations

import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import JointState

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
        self.last_trip = ""
        self._reported = 0  # trips at the last diagnostics
        if self.enabled:
            node.get_logger().info(f"tracking watchdog on: {self.describe()}")

    def describe(self) -> str:
        """The checked joints' tolerances and the timeout, for the start-up log."""
        tol = ", ".join(f"{n} {t:g}" for n, t in zip(self.names, self.watchdog.tolerance) if t > 0)
        return f"{tol} (rad) for {self.watchdog.timeout_s:g} s" + ("; idle in this dry run" if self.dry else "")

    def on_joint_state(self, msg: JointState) -> None:
        """One measurement, after the executor's first command (the io callback group)."""
        command = None if self.dry else self.node.core.tracking_reference()
        if command is None:
            self.watchdog.idle()
            return
        try:
            q = self.node._reader.positions(msg)
        except ValueError:
            return  # (a joint state without our joints: the executor's measurement path logs those)
        trip = self.watchdog.update(q, command, time.monotonic())
        if trip is None:
            return
        self.last_trip = (f"{self.names[trip.joint]} {trip.error:.3f} from its command (tolerance {trip.tolerance:g}) "
                          f"for {trip.duration_s:.2f} s")
        step = self.node.core.resync(command_hold=True)
        self.node._measure_again()
        self.node.get_logger().error(f"the arm does not follow: {self.last_trip}; re-synced at step {step}: chunks "
                                     "dropped, holding where the arm is, paused until ~/resume")

    def set_timeout(self, value: float) -> None:
        self.watchdog.timeout_s = float(value)

    def diagnostics(self, vals: dict[str, object]) -> int:
        """Add ``tracking_trips`` (and the last trip) to ``vals`` when the watchdog is on; the level it asks for
        (ERROR in the period of a trip)."""
        if not self.enabled:
            return DiagnosticStatus.OK
        vals["tracking_trips"] = self.watchdog.trips
        if self.last_trip:
            vals["tracking_trip_last"] = self.last_trip
        new, self._reported = self.watchdog.trips > self._reported, self.watchdog.trips
        return DiagnosticStatus.ERROR if new else DiagnosticStatus.OK
