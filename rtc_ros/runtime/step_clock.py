"""Map stamps on the executor's clock to executor steps (chunk index 0 = the observation's step)."""

from __future__ import annotations

import bisect
from collections import deque


class StepClock:
    """Maps stamps (ns, the executor's clock) to executor steps, from the executor's reports.

    Step ``k`` was commanded at stamp ``T_k``. An observation stamped ``t`` with ``T_k <= t < T_{k+1}``
    was taken after step ``k`` was commanded, so the first command that can react to it is ``k + 1``:
    ``step_at(t) = k + 1``. Stamps newer than the newest report map to the next step.
    """

    def __init__(self, history: int) -> None:
        self._steps: deque[int] = deque(maxlen=history)
        self._stamps: deque[int] = deque(maxlen=history)

    def add(self, step: int, stamp_ns: int) -> None:
        if stamp_ns <= 0:
            return
        if self._steps and step == self._steps[-1]:
            return  # paused: the step stands still; its first stamp is the one that counts
        if self._stamps and (stamp_ns < self._stamps[-1] or step < self._steps[-1]):
            self.clear()  # clock or step counter went back: restart
        self._steps.append(step)
        self._stamps.append(stamp_ns)

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

    def step_at(self, stamp_ns: int) -> int | None:
        """The observation step for ``stamp_ns``, or None if it is older than the history."""
        if not self._stamps or stamp_ns < self._stamps[0]:
            return None
        k = bisect.bisect_right(self._stamps, stamp_ns) - 1
        return self._steps[k] + 1
