"""policy_inference's tracking measurement: how far the arm is from the executor's commands.

Per measured joint state against the executor's newest command (its ``rtc/executor_state`` report): the
largest error over the joints (``tracking_err_*`` in ``/diagnostics``, the worst joint per period). Only a
measurement: a moving arm trails its command by its tracking lag, a gripper squeezing an object by its
squeeze, and a controller that does not follow at all shows as an error that keeps growing. Acting on it
is ``chunk_executor``'s tracking watchdog (``<arm>.tracking_tolerance``, :mod:`rtc_ros.nodes.executor_tracking`),
beside the driver; until 2026-12-06 it ran here and called the executor's ``~/hold``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rtc_ros.core.stats import RollingStats


class TrackingGuard:
    """Owned by the policy_inference node (``p``: its validated parameters)."""

    def __init__(self, p: Any) -> None:
        self.names: list[str] = p.joint_names
        self.stats = RollingStats(500)  # largest |measured - command| over the joints, per joint state
        self._worst = (0.0, "")  # largest error since the last diagnostics and its joint
        #: an executor report older than this is not compared (5 ticks: the executor reports every tick)
        self.max_command_age_s = max(0.1, 5.0 * p.dt)

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

    def diagnostics(self, vals: dict[str, object]) -> None:
        """Add ``tracking_err_*`` (and the worst joint since the last call) to ``vals``."""
        for k, v in self.stats.summary().items():
            vals[f"tracking_err_{k}"] = v
        worst, self._worst = self._worst, (0.0, "")
        if worst[1]:
            vals["tracking_err_worst"], vals["tracking_err_worst_joint"] = worst
