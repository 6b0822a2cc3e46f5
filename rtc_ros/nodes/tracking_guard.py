"""policy_inference's tracking measurement: how far the arm is from the executor's commands.

Per measured joint state against the executor's newest command (its ``rtc/executor_state`` report): the
largest error over the joints (``tracking_err_*`` in ``/diagnostics``, the worst joint per period). Only a
measurement: a moving arm trails its command by its tracking lag, a gripper squeezing an object by its
squeeze. A controller that does not follow at all (refusing every command, inactive) does not show as an error
that keeps growing -- the policy plans from where the arm stands, so the error stays at about a chunk's travel --
hence :meth:`TrackingGuard.not_following`: over the last :data:`WINDOW_S` the commands moved an arm joint by
:data:`MIN_TRAVEL` or more while its measurement moved less than a tenth of that (a refusing or inactive
controller, an arm blocked, or a driver whose joint states froze); and :meth:`TrackingGuard.off_command`: an
arm joint :data:`OFF_COMMAND` or more from its command all that time. Acting on it is ``chunk_executor``'s tracking watchdog (``<arm>.tracking_tolerance``, :mod:`rtc_ros.nodes.executor_tracking`),
beside the driver; until 2026-12-06 it ran here and called the executor's ``~/hold``.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np

from rtc_ros.core.stats import RollingStats

#: how far back :meth:`TrackingGuard.not_following` looks (s), and the commands' least travel there on one joint
#: (rad) for it to judge: a policy moving the arm covers more, an arm holding or creeping less
WINDOW_S = 2.0
MIN_TRAVEL = 0.05
#: an arm joint at least this far from its command at every measurement of the window (rad) stands off it
#: (:meth:`TrackingGuard.off_command`): a tracking lag dips at every turn (a lag of 60 ms at 3 rad/s does)
OFF_COMMAND = 0.1


class TrackingGuard:
    """Owned by the policy_inference node (``p``: its validated parameters)."""

    def __init__(self, p: Any) -> None:
        self.names: list[str] = p.joint_names
        self.stats = RollingStats(500)  # largest |measured - command| over the joints, per joint state
        self._worst = (0.0, "")  # largest error since the last diagnostics and its joint
        #: an executor report older than this is not compared (5 ticks: the executor reports every tick)
        self.max_command_age_s = max(0.1, 5.0 * p.dt)
        # arm joints (a gripper squeezing an object stands while its command closes further)
        self._arm = np.array([not g for a in p.arms for g in a.grippers], dtype=bool)
        self._window: deque[tuple[float, np.ndarray, np.ndarray]] = deque()  # (monotonic, q, command), >= 20 ms apart

    def on_joint_state(self, q: np.ndarray, command: np.ndarray | None, command_age_s: float) -> None:
        """One measurement (``(M,)``) against the executor's newest command (None: no report yet) received
        ``command_age_s`` ago."""
        if command is None or command.shape != q.shape or command_age_s > self.max_command_age_s:
            return
        err = np.abs(q - command)
        i = int(np.argmax(err))
        self.stats.add(float(err[i]))
        if err[i] >= self._worst[0]:
            self._worst = (float(err[i]), self.names[i])
        now = time.monotonic()
        if not self._window or now - self._window[-1][0] >= 0.02:
            self._window.append((now, q.copy(), command.copy()))
            while now - self._window[0][0] > WINDOW_S:
                self._window.popleft()

    def _filled_window(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The last :data:`WINDOW_S`'s measurements and commands ``(n, M)`` each, None unless it spans most of it
        with recent comparisons."""
        w = list(self._window)
        if len(w) < 10 or time.monotonic() - w[0][0] > 1.5 * WINDOW_S or w[-1][0] - w[0][0] < 0.8 * WINDOW_S:
            return None
        return np.array([x[1] for x in w]), np.array([x[2] for x in w])

    def not_following(self) -> tuple[str, float, float] | None:
        """``(joint, commanded travel, measured travel)`` of the arm joint (not a gripper) whose commands moved it
        most over the last :data:`WINDOW_S`, at least :data:`MIN_TRAVEL`, while its measurement moved less than a
        tenth of that; None if every joint follows (or the window is not filled: no commands compared lately)."""
        if (window := self._filled_window()) is None:
            return None
        q, c = window
        moved, measured = np.ptp(c, axis=0), np.ptp(q, axis=0)
        bad = self._arm[:moved.size] & (moved >= MIN_TRAVEL) & (measured < 0.1 * moved)
        if not bad.any():
            return None
        i = int(np.argmax(np.where(bad, moved, -1.0)))
        return self.names[i], float(moved[i]), float(measured[i])

    def off_command(self) -> tuple[str, float] | None:
        """``(joint, least error)`` of the arm joint (not a gripper) farthest from its command that was at least
        :data:`OFF_COMMAND` from it at every measurement of the last :data:`WINDOW_S`: an arm blocked, a driver
        re-homed or re-calibrated under the executor (a walkthrough: 0.3 rad for 7 s said nothing), a controller
        holding elsewhere; None otherwise (or the window is not filled)."""
        if (window := self._filled_window()) is None:
            return None
        least = np.abs(window[0] - window[1]).min(axis=0)
        bad = self._arm[:least.size] & (least >= OFF_COMMAND)
        if not bad.any():
            return None
        i = int(np.argmax(np.where(bad, least, -1.0)))
        return self.names[i], float(least[i])

    def diagnostics(self, vals: dict[str, object]) -> None:
        """Add ``tracking_err_*`` (and the worst joint since the last call) to ``vals``."""
        for k, v in self.stats.summary().items():
            vals[f"tracking_err_{k}"] = v
        worst, self._worst = self._worst, (0.0, "")
        if worst[1]:
            vals["tracking_err_worst"], vals["tracking_err_worst_joint"] = worst
