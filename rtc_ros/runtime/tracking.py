"""Tracking watchdog: act when an arm stops following its commands (ROS-free rule).

An arm that does not follow -- blocked by an obstacle, a controller that is loaded but not active,
a driver that dropped torque -- makes every later command a larger step away from where the arm
is, and the first command that reaches it after the cause clears is a jump. ros2_control's
``joint_trajectory_controller`` aborts on its path tolerances for the same reason.

:class:`TrackingWatchdog` compares each measured joint state with the executor's newest command
(``chunk_executor`` with ``<arm>.tracking_tolerance``: :mod:`rtc_ros.nodes.executor_tracking`): a joint *violates* when ``|measured - command| > tolerance`` for that
joint (``tolerance`` 0 = the joint is not checked: a gripper squeezing an object never reaches its
command). When some joint violates continuously for ``timeout_s`` the watchdog **trips** once (the
caller re-syncs the executor: chunks dropped, the hold taken from the measured position, paused until an
operator resumes). It re-arms when every checked joint is within its tolerance again, or on
:meth:`idle` (the caller's: while the executor is paused, nothing is checked; so one trip per resume). Two
measurements farther apart than the timeout do not make a continuous violation (a driver's hiccup, a
paused simulator): the violation starts anew at the second.
A moving arm trails its command by its tracking lag (joint speed x controller latency: 3 rad/s x
60 ms = 0.18 rad), so the tolerance must be above that; the timeout rides through brief excursions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Trip:
    """A trip: the worst joint (index, error in the joint's units, its tolerance) and how long some joint
    had violated (s)."""

    joint: int
    error: float
    tolerance: float
    duration_s: float


class TrackingWatchdog:
    """See the module docstring. ``tolerance``: ``(M,)`` per joint (0 = unchecked); ``timeout_s`` > 0."""

    def __init__(self, tolerance: Sequence[float], timeout_s: float) -> None:
        tol = np.asarray(tolerance, dtype=np.float64)
        if tol.ndim != 1 or not np.all(np.isfinite(tol)) or np.any(tol < 0):
            raise ValueError(f"tolerance must be finite and >= 0 per joint, got {list(tol)}")
        self.tolerance = tol
        self.timeout_s = timeout_s
        self._checked = tol > 0
        self._since: float | None = None  # start of the current continuous violation
        self._last_s: float | None = None  # the previous measurement's time
        self.tripped = False
        self.trips = 0

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    @timeout_s.setter
    def timeout_s(self, value: float) -> None:
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"timeout_s must be finite and > 0, got {value}")
        self._timeout_s = float(value)

    @property
    def enabled(self) -> bool:
        """False when no joint is checked (every tolerance 0)."""
        return bool(self._checked.any())

    def idle(self) -> None:
        """Not checking now (the executor is paused: nothing it commands is expected to be followed): the
        current violation, if any, ends and the watchdog re-arms."""
        self._since = self._last_s = None
        self.tripped = False

    def update(self, measured: np.ndarray, command: np.ndarray, now_s: float) -> Trip | None:
        """One measurement against the newest command (both ``(M,)``, the same joints); the :class:`Trip`
        when it trips now, else None."""
        err = np.abs(np.asarray(measured, dtype=np.float64) - np.asarray(command, dtype=np.float64))
        over = self._checked & (err > self.tolerance)
        gap = self._last_s is not None and now_s - self._last_s > self._timeout_s + 1e-9
        self._last_s = now_s
        if gap and not self.tripped:  # no measurement for longer than the timeout: no continuous violation seen
            self._since = None
        if not over.any():
            self._since = None
            self.tripped = False  # re-armed
            return None
        if self._since is None:
            self._since = now_s
        if self.tripped or now_s - self._since < self._timeout_s - 1e-9:  # (20 ms ticks summed in floats)
            return None
        self.tripped = True
        self.trips += 1
        excess = np.where(over, err / np.where(self._checked, self.tolerance, 1.0), 0.0)
        j = int(np.argmax(excess))
        return Trip(j, float(err[j]), float(self.tolerance[j]), now_s - self._since)
