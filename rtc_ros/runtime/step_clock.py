"""Map stamps on the executor's clock to executor steps (chunk index 0 = the observation's step)."""

from __future__ import annotations

import bisect
from collections import deque


#: steps the history needs before its period is measured (and stamps past the newest report are mapped past it)
MIN_STEPS = 8


class StepClock:
    """Maps stamps (ns, the executor's clock) to executor steps, from the executor's reports.

    Step ``k`` was commanded at stamp ``T_k``. An observation stamped ``t`` with ``T_k <= t < T_{k+1}``
    was taken after step ``k`` was commanded, so the first command that can react to it is ``k + 1``:
    ``step_at(t) = k + 1``. A stamp newer than the newest report maps past it at the executor's measured period
    while that report showed the steps advancing (reports that reach the policy late, behind a network's
    retransmissions, would otherwise place a fresh observation at the step after the newest report: up to 9
    steps early in a walkthrough), rounded down with a fifth of a period to spare (a tick a few ms late); after a
    report of a step standing still (paused), at the step after it. How far past the newest report a stamp may lie
    is for the caller to bound (:meth:`rtc_ros.runtime.clock_skew.ClockAhead.executor_now`).
    """

    def __init__(self, history: int) -> None:
        self._steps: deque[int] = deque(maxlen=history)
        self._stamps: deque[int] = deque(maxlen=history)
        self._moving = False  # the newest report's step was new (the executor was stepping)
        self._period: float | None = None  # ns per step, measured (None: not yet, or to be computed)

    def add(self, step: int, stamp_ns: int) -> None:
        if stamp_ns <= 0:
            return
        if self._steps and step == self._steps[-1]:
            self._moving = False
            return  # paused: the step stands still; its first stamp is the one that counts
        if self._stamps and (stamp_ns < self._stamps[-1] or step < self._steps[-1]):
            self.clear()  # clock or step counter went back: restart
        self._steps.append(step)
        self._stamps.append(stamp_ns)
        self._moving, self._period = True, None

    @property
    def empty(self) -> bool:
        """True while no report with a stamp (> 0) was added."""
        return not self._steps

    @property
    def full(self) -> bool:
        """True once the history holds its length of steps (before: it starts at the first report received)."""
        return len(self._steps) == self._steps.maxlen

    def clear(self) -> None:
        self._steps.clear()
        self._stamps.clear()
        self._moving, self._period = False, None

    def period_ns(self) -> float | None:
        """The executor's step period (ns): the median over the history of stamp differences per step (a pause
        or a missed report does not move it); None before :data:`MIN_STEPS` steps (one late tick and the short gap
        after it, right after a restart, are no period: a review)."""
        if self._period is None and len(self._steps) >= MIN_STEPS:
            rates = sorted((b - a) / (k - j) for a, b, j, k in
                           zip(self._stamps, list(self._stamps)[1:], self._steps, list(self._steps)[1:]))
            self._period = rates[len(rates) // 2]
        return self._period

    def step_at(self, stamp_ns: int) -> int | None:
        """The observation step for ``stamp_ns``, or None if it is older than the history."""
        if not self._stamps or stamp_ns < self._stamps[0]:
            return None
        k = bisect.bisect_right(self._stamps, stamp_ns) - 1
        step = self._steps[k] + 1
        if k == len(self._steps) - 1 and self._moving and (period := self.period_ns()):  # past the newest report
            step += max(0, int((stamp_ns - self._stamps[-1]) / period - 0.2))
        return step
