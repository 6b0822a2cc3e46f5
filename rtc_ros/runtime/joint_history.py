"""The joint positions a policy with a joint history sees: at the observation's step and before (ROS-free).

A policy whose ``obs_spec`` joint entry is ``[t, M]`` (LeRobot's Diffusion Policy with ``n_obs_steps = t``)
was trained on the positions at its observation's step and at the ``t - 1`` control steps before it, one
control period ``dt`` apart (the dataset's frames). The driver publishes joint states at its own rate
(50 to 1000 Hz), so :class:`JointHistory` keeps the recent ones by their stamps and, for an observation
stamped ``t_obs``, gives row ``i`` = the measurement stamped nearest to ``t_obs - i dt`` (none after
``t_obs``), newest first: row 0 is the observation's own joint state.

What it does not give: a measurement from before the executor's last reset (``not_before_ns``: the robot
was moved by something else, so that position says nothing about the motion now), or one more than
``gap_s`` older than the next (a driver's hiccup: the row would show an older motion). Where the history
does not reach back that far (start-up, just after a reset or a gap), the oldest row it has is repeated, as
LeRobot fills its observation queue with copies of the first observation at an episode's start.
Thread-safety is the caller's (the node holds its data lock).
"""

from __future__ import annotations

from collections import deque

import numpy as np


class JointHistory:
    """Recent ``(stamp, positions)`` for ``rows``-row joint histories ``dt`` apart.

    Args:
        rows: ``t`` of the policy's ``[t, M]`` joint entry (>= 1).
        dt: the control period, s (> 0).
        gap_s: a gap between two measurements longer than this ends the history before it (> 0).
    """

    def __init__(self, rows: int, dt: float, gap_s: float) -> None:
        if int(rows) < 1:
            raise ValueError(f"rows must be >= 1, got {rows}")
        if not dt > 0 or not gap_s > 0:
            raise ValueError(f"dt and gap_s must be > 0, got {dt} and {gap_s}")
        self.rows, self.dt_ns, self.gap_ns = int(rows), int(round(dt * 1e9)), int(round(gap_s * 1e9))
        self._span_ns = (self.rows - 1) * self.dt_ns + self.dt_ns  # kept behind the newest (one period spare)
        self._stamps: deque[int] = deque()
        self._values: deque[np.ndarray] = deque()

    def __len__(self) -> int:
        return len(self._stamps)

    def push(self, stamp_ns: int, q: np.ndarray) -> None:
        """One measurement ``(M,)``. One stamped as the newest replaces it (``joint_state_merger`` stamps with its
        oldest source, so a faster arm repeats stamps: the newest values are the observation's); one stamped
        before it (the clock went back: a simulator restarted it) or after a gap longer than ``gap_s`` starts
        the history anew; measurements older than the history needs are dropped."""
        if self._stamps and stamp_ns == self._stamps[-1]:
            self._values[-1] = np.asarray(q, dtype=np.float64).copy()
            return
        if self._stamps and not 0 < stamp_ns - self._stamps[-1] <= self.gap_ns:
            self.clear()
        self._stamps.append(int(stamp_ns))
        self._values.append(np.asarray(q, dtype=np.float64).copy())
        # keep one measurement at or before the oldest row's time (the newest such is the row)
        while len(self._stamps) > 1 and self._stamps[1] <= stamp_ns - self._span_ns:
            self._stamps.popleft()
            self._values.popleft()

    def clear(self) -> None:
        self._stamps.clear()
        self._values.clear()

    def rows_at(self, stamp_ns: int, not_before_ns: int = 0) -> np.ndarray | None:
        """``(rows, M)`` newest first for an observation stamped ``stamp_ns``: row ``i`` the measurement nearest to
        ``stamp_ns - i dt`` among those stamped in ``[not_before_ns, stamp_ns]`` (so the oldest is repeated where
        the history ends), or None when there is none."""
        usable = [k for k, t in enumerate(self._stamps) if not_before_ns <= t <= stamp_ns]
        if not usable:
            return None
        stamps = np.array([self._stamps[k] for k in usable], dtype=np.int64)
        targets = stamp_ns - self.dt_ns * np.arange(self.rows, dtype=np.int64)
        nearest = np.abs(stamps[None, :] - targets[:, None]).argmin(axis=1)
        return np.stack([self._values[usable[j]] for j in nearest])
