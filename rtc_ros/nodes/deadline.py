"""The one absolute-deadline loop of the nodes' dedicated loop threads (ROS-free)."""

from __future__ import annotations

import time
from typing import Callable


def run_deadline_loop(
    tick: Callable[[], None],
    period: Callable[[], float],
    keep_running: Callable[[], bool],
    on_overrun: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Call ``tick()`` every ``period()`` seconds on absolute deadlines until ``keep_running()`` is False.

    Deadlines are ``t0 + k * period`` on ``clock`` (no drift from the tick's own duration). After an
    overrun of more than one period the missed deadlines are skipped (no catch-up burst) and
    ``on_overrun(seconds_late)`` is called. ``period`` is read every tick, so it may change.

    Returns:
        The number of overruns.
    """
    overruns = 0
    next_t = clock() + period()
    while keep_running():
        delay = next_t - clock()
        if delay > 0:
            sleep(delay)
        tick()
        dt = period()
        next_t += dt
        late = clock() - next_t
        if late > dt:  # more than one period behind: skip the missed deadlines
            overruns += 1
            next_t += dt * (int(late / dt) + 1)
            if on_overrun is not None:
                on_overrun(late)
    return overruns
