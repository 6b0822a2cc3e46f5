"""Waypoint timing of the scripted transfer expert (:class:`rtc_ros.sim.expert.ScriptedExpert`).

Two named schedules: ``original`` (until 2026-12-05; the conveyor expert keeps it) and ``margin`` (the
transfer expert's default since then: every commanded joint step <= 80 % of the executor's step limit).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExpertSchedule:
    """Waypoint ticks (20 ms each) of the scripted transfer.

    Right arm: ``tilt`` (gripper tilted), ``above`` (above the cube), ``grasp`` (at the cube),
    ``closed`` (gripper closed), ``meet`` (at the meeting point), ``release`` (starts opening),
    ``opened``, ``retreated``. Left arm: ``replan`` (pre-grasp pose; the left grasp is re-targeted at
    the measured cube position at this tick), ``left_grasp``, ``left_closed``, ``left_hold`` (starts
    pulling), ``left_away``. Every tick must be larger than the one before it on its arm.
    """

    tilt: int
    above: int
    grasp: int
    closed: int
    meet: int
    release: int
    opened: int
    retreated: int
    replan: int
    left_grasp: int
    left_closed: int
    left_hold: int
    left_away: int

    def __post_init__(self) -> None:
        right = [0, self.tilt, self.above, self.grasp, self.closed, self.meet, self.release, self.opened,
                 self.retreated]
        left = [0, self.replan, self.left_grasp, self.left_closed, self.left_hold, self.left_away]
        for arm, ticks in (("right", right), ("left", left)):
            if any(b <= a for a, b in zip(ticks, ticks[1:])):
                raise ValueError(f"ExpertSchedule: the {arm} arm's ticks must increase, got {ticks}")


ORIGINAL_SCHEDULE = ExpertSchedule(tilt=50, above=85, grasp=115, closed=140, meet=205, release=272, opened=292,
                                   retreated=330, replan=215, left_grasp=245, left_closed=270, left_hold=295,
                                   left_away=335)
"""The transfer expert's timing until 2026-12-05 (every policy trained before then, and the conveyor
expert, which keeps it: its belt, grasp tick and lag rule were validated with it)."""

MARGIN_SCHEDULE = ExpertSchedule(tilt=58, above=93, grasp=130, closed=155, meet=232, release=299, opened=319,
                                 retreated=357, replan=242, left_grasp=272, left_closed=297, left_hold=322,
                                 left_away=362)
"""ORIGINAL_SCHEDULE with its three fastest segments slowed so that every commanded arm-joint step stays
<= 80 % of the executor's ``max_step`` (0.062 rad per tick): the tilt 50 -> 58 ticks (right wrist angle
at 0.91 of ``max_step`` before, 0.78 after), the descent 30 -> 37 (right wrist rotate / forearm roll up
to 0.97 for some cube positions; 0.79), the lift 65 -> 77 (wrist rotate up to 0.94; 0.79); later
waypoints shift by the added ticks (the left arm's by all 27, so the handover keeps its relative
timing). Checked on the demonstration seeds 0-249 and the evaluation seeds 10000-10249 (the
grippers' 0.62 / 0.50 of their 0.15 step are under the margin already). Set 2026-12-05 from the
expert's commands and the step limit alone, before any policy was trained on it; the transfer
expert's default since then (docs/sim_arms.md, "The expert's margin to the step limit")."""

SCHEDULES: dict[str, ExpertSchedule] = {"margin": MARGIN_SCHEDULE, "original": ORIGINAL_SCHEDULE}
"""Named schedules (``--expert-schedule`` of the demo, expert-check and policy-quality CLIs)."""

TASK_SCHEDULES: dict[str, tuple[str, ...]] = {"transfer_cube": ("margin", "original"), "conveyor_cube": ("original",)}
"""The schedules each task's expert runs, its default first (the conveyor expert was validated with one)."""


def schedule_name(task: str, name: str = "") -> str:
    """``name`` checked for ``task``'s expert, or that expert's default schedule name when ``""``.

    Raises:
        ValueError: naming ``expert_schedule``, for an unknown task or a schedule the task's expert does not run.
    """
    allowed = TASK_SCHEDULES.get(task)
    if allowed is None:
        raise ValueError(f"expert_schedule: no expert schedules for task {task!r} (tasks: {sorted(TASK_SCHEDULES)})")
    if name and name not in allowed:
        raise ValueError(f"expert_schedule must be one of {list(allowed)} for {task}, got {name!r}")
    return name or allowed[0]
