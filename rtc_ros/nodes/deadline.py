"""The one absolute-deadline loop of the nodes' dedicated loop threads (ROS-free)."""

from __future__ import annotations

import math
import time
from typing import Callable


def run_deadline_loop(
    tick: Callable[[], None],
    period: Callable[[], float],
    keep_running: Callable[[], bool],
    on_overrun: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    min_gap: float = 0.5,
) -> int:
    """Call ``tick()`` every ``period()`` seconds on absolute deadlines until ``keep_running()`` is False.

    Deadlines are ``t0 + k * period`` on ``clock`` (no drift from the tick's own duration). After an
    overrun of more than one period the missed deadlines are skipped (no catch-up burst) and
    ``on_overrun(seconds_late)`` is called; so they are when a tick started so late that the next deadline
    would follow its start by less than ``min_gap`` periods (a wake-up 19 ms late at 50 Hz would otherwise
    be followed by another tick 1 ms later: two steps of a command inside one cycle of the robot's
    controller; measured between tick starts: a tick that itself runs long may still be followed closely).
    ``min_gap = 0`` keeps the catch-up tick (a simulator whose time is its tick count).
    ``period`` is read every tick, so it may change.

    Returns:
        The number of overruns.
    """
    overruns = 0
    next_t = clock() + period()
    while keep_running():
        delay = next_t - clock()
        if delay > 0:
            sleep(delay)
        started, deadline = clock(), next_t
        tick()
        dt = period()
        next_t += dt
        late = clock() - next_t
        if late > dt:  # more than one period behind: skip the missed deadlines
            next_t += dt * (int(late / dt) + 1)
        elif min_gap > 0 and next_t - started < min_gap * dt:  # this tick started late: no second one right after it
            next_t += dt * math.ceil((started + min_gap * dt - next_t) / dt)
        else:
            continue
        overruns += 1
        if on_overrun is not None:
            on_overrun(max(late, started - deadline))
    return overruns
