"""The executor's ticks as recorded (``rtc/executor_state``): from its first commanded step on, on the recording
clock, at the period the policy is trained for -- what :mod:`rtc_ros.recording.dataset` puts actions on (ROS-free)."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from rtc_ros.recording.demo_dataset import DatasetError
from rtc_ros.recording.episode import Episode, ExecutorTrace

#: the tick period measured from the executor's stamps may differ this much (relative) from ``dt`` (--dt / rate_hz)
PERIOD_TOLERANCE = 0.1


#: ticks of a run after a pause over which its start time is estimated (the least delayed receive time)
ANCHOR_TICKS = 25


def executor_step_times(t: np.ndarray, steps: np.ndarray, grid: np.ndarray, dt: float,
                        stamp: np.ndarray | None = None) -> np.ndarray:
    """The recording time of each ``grid`` step from executor ticks received at ``t`` with step numbers ``steps``
    (non-decreasing) and header stamps ``stamp`` (s, the executor's clock; optional).

    The ticks fall into runs: a new run starts with the first new step number after a repeated one (while paused --
    an operator's pause, a re-sync, a released enabling device -- the executor repeats its step number) and where
    the stamps jump by more than the step numbers (``3 dt`` more: a loop that stalled, an executor muted by another
    publisher on its outputs). Step ``k`` is at ``a_r + (k - steps_r) dt`` in the run that owns it (from the step
    after the previous run's last one: a tick lost right after a pause belongs to the run after it); ``a_r`` is the
    least delayed of the run's first :data:`ANCHOR_TICKS` ticks (``t_i - (steps_i - steps_r) dt``), so late ticks do
    not shift the run: the first ticks of a recording arrive in a burst, 28-77 ms late in the ``make demo`` bags
    (a walkthrough, 2026-12-07), and the first run was anchored on its first tick until then, which put each step's
    observation 1-4 ticks after its action (after a pause the observations were looked up too early by its length
    before 2026-12-06)."""
    n = len(steps)
    starts = _run_starts(steps, dt, stamp)
    owns = np.r_[steps[0], steps[starts[1:] - 1] + 1]  # the first step each run owns
    anchor = t[starts].astype(np.float64)
    for i, r in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else n
        rows = slice(r, min(end, r + ANCHOR_TICKS))
        anchor[i] = float(np.min(t[rows] - (steps[rows] - steps[r]) * dt))
    run = np.searchsorted(owns, grid, side="right") - 1
    return anchor[run] + (grid - steps[starts[run]]) * dt


def _run_starts(steps: np.ndarray, dt: float, stamp: np.ndarray | None) -> np.ndarray:
    """Indices of the ticks that start a run (see :func:`executor_step_times`)."""
    n = len(steps)
    new_run = np.zeros(n, bool)
    new_run[0] = True
    new_run[2:] = (steps[2:] != steps[1:-1]) & (steps[1:-1] == steps[:-2])  # the first new step after a repeat
    if stamp is not None and n > 1:  # (unstamped ticks: equal stamps, never a gap)
        new_run[1:] |= np.diff(stamp) > (np.diff(steps) + 3) * dt  # a gap in time the step numbers do not show
    return np.flatnonzero(new_run)


def check_grid_drift(t: np.ndarray, steps: np.ndarray, dt: float, name: str, stamp: np.ndarray | None = None) -> None:
    """DatasetError when the executor's ticks, received at ``t`` (the recording's clock), drift from its grid of
    ``dt`` by more than half a tick within a run: the least delayed of a run's last :data:`ANCHOR_TICKS` ticks
    compared with its first's. The executor's own stamps can say ``dt`` while the recording clock disagrees (an
    audit: an executor on ``use_sim_time`` at a real-time factor of 0.95 beside a recorder on wall time; step 390's
    observation was tick 371's, silently)."""
    starts = _run_starts(steps, dt, stamp)
    first = np.r_[True, np.diff(steps) != 0]  # each step's first tick (a paused executor repeats its step)
    for i, r in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(steps)
        rows = r + np.flatnonzero(first[r:end])
        if len(rows) < 2 * ANCHOR_TICKS:
            continue
        off = t[rows] - (steps[rows] - steps[r]) * dt
        drift = float(off[-ANCHOR_TICKS:].min() - off[:ANCHOR_TICKS].min())
        if abs(drift) > 0.5 * dt:
            span = int(steps[rows[-1]] - steps[r])
            raise DatasetError(f"{name}: rtc/executor_state's ticks drift by {drift * 1e3:+.0f} ms over {span} steps "
                               f"from a grid of {dt * 1e3:g} ms on the recording's clock (the executor's clock and the "
                               "recorder's run at different rates: use_sim_time on one and not the other? give both "
                               "the same clock)")


def commanding(ex: ExecutorTrace) -> ExecutorTrace | None:
    """The executor's ticks from its first commanded step on (None: fewer than two; a step -1 after it, a restart:
    DatasetError). Before its first tick an executor reports step -1 (started paused, ``start_paused``, waiting for
    ``~/resume`` while the recording runs): those ticks are no steps (until 2026-12-07 they made the whole trace
    unusable, and the actions came from the command topics, where pauses are not seen)."""
    ok = np.flatnonzero(ex.step >= 0)
    if len(ok) and not (ex.step[ok[0]:] >= 0).all():  # -1 after a commanded step: it started again, paused
        i = int(ok[0] + np.flatnonzero(ex.step[ok[0]:] < 0)[0])
        raise DatasetError(f"rtc/executor_state's step went back from {int(ex.step[i - 1])} to -1 ({ex.t[i]:.2f} s into "
                           "the recording): the executor restarted during the episode; leave it out, or record the "
                           "two parts as two episodes")
    if len(ok) == 0 or len(ex) - ok[0] < 2:
        return None
    if ok[0] == 0:
        return ex
    cut = int(ok[0])
    return replace(ex, **{f.name: getattr(ex, f.name)[cut:] for f in fields(ex)
                          if isinstance(getattr(ex, f.name), np.ndarray)})


def check_tick_period(ex: ExecutorTrace, dt: float, name: str) -> None:
    """DatasetError when the executor's stamps say it ticked at another period than ``dt`` (the median over
    consecutive steps; the sidecar's and the params file's rate can both be wrong: a params file of another setup
    exported a 50 Hz recording as 25 fps, observations from twice the time, a walkthrough 2026-12-07)."""
    if ex.stamp is None or len(ex.step) < 3:
        return
    one = np.flatnonzero(np.diff(ex.step) == 1)  # consecutive steps (not across a pause or a lost tick)
    if len(one) < 2:
        return
    period = float(np.median(np.diff(ex.stamp)[one]))
    if abs(period - dt) > PERIOD_TOLERANCE * dt:
        raise DatasetError(f"{name}: rtc/executor_state ticked every {period * 1e3:.1f} ms, the controller period "
                           f"given (--dt, or the params file's rate_hz) is {dt * 1e3:.1f} ms: give the recording's rate")


def tick_stamps(ep: Episode, n: int, dt: float) -> np.ndarray | None:
    """``(n,)`` the executor's own stamp of each grid step (s since the episode's start; a lost tick's from its run's
    grid), when its ticks and the joint states carry header stamps on the recording's clock (sorted, and within
    ``dt`` of their receive times in the median); else None. With them a joint state belongs to the step
    ``policy_inference`` gives it (:meth:`rtc_ros.runtime.step_clock.StepClock.step_at`): stamped before tick ``k``'s,
    step ``k``; at or after it, a later step (an audit: the nearest-step rule gave a state measured 6 ms after tick
    ``k`` to step ``k``, whose command it could not have changed, so the policy learnt to act a tick late)."""
    ex = commanding(ep.executor) if ep.executor is not None else None
    js = ep.joint_states
    if ex is None or ex.stamp is None or js is None or js.stamp is None:
        return None
    for ser in (ex, js):
        if not (np.isfinite(ser.stamp).all() and (np.diff(ser.stamp) >= 0).all()
                and abs(float(np.median(ser.t - ser.stamp))) < dt):
            return None
    steps = ex.step - ex.step[0]
    grid = np.arange(n)
    out = executor_step_times(ex.stamp, steps, grid, dt, ex.stamp)
    have = np.searchsorted(steps, grid, side="left")  # the first tick reporting each step: its own stamp
    own = (have < len(steps)) & (steps[np.minimum(have, len(steps) - 1)] == grid)
    out[own] = ex.stamp[have[own]]
    return out


def across_pause(t: np.ndarray, ks: np.ndarray, horizon: int, dt: float) -> np.ndarray:
    """Which samples ``ks`` (grid steps) have target actions on both sides of a pause: grid steps ``i, i + 1`` more
    than 1.5 ``dt`` apart in time (the executor paused, disabled, re-synced or stalled in between: the arm held),
    with ``k <= i < k + horizon - 1``. Their later actions were chosen after the pause, not what followed the
    observation; a trace without pauses (``t_0 + k dt``) has none."""
    gaps = np.flatnonzero(np.diff(t) > 1.5 * dt)
    nxt = np.r_[gaps, np.iinfo(np.int64).max][np.searchsorted(gaps, ks)]  # the first pause at or after k
    return nxt < ks + horizon - 1
