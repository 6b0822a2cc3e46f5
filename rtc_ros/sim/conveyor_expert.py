"""Scripted expert of ``conveyor_cube`` and the chunked (delayed, open-loop) execution of an expert.

:class:`ConveyorExpert` is :class:`~rtc_ros.sim.expert.ScriptedExpert` with the right arm's approach,
descent and grasp (ticks < :data:`GRASP_TICK`) re-targeted at every tick at the observed cube
position (warm-started IK, so the commands stay smooth while the cube moves); the lift starts where
the grasp happened and the left arm's handover is re-targeted at the held cube as before. Unlike the
transfer expert, the right gripper's heading at the cube waypoints points from the arm's base to the
cube (the waist follows the moving cube instead of the wrist rolls: with a fixed world heading, a
cube moving near the arm's base drives the nearly aligned forearm_roll and wrist_rotate axes past
their velocity limit).

:func:`run_chunked_expert` is the lag rule's protocol (like ``rtc_ros.benchmarks.tasks.lag``, naive
switching): every ``s`` ticks a chunk of ``H`` actions is planned by running the expert closed loop on a
copy of the state ``d`` ticks old, with the belt assumed to keep its current acceleration
(capped at its top speed: the prediction an observer of the cube's last positions can make;
:attr:`ConveyorCubeTask.frozen`); the real simulator then executes the chunk's actions
``d .. d + s - 1`` open loop. ``d = 0, s = H`` is open-loop execution of whole chunks. The first chunk is
executed for a random ``1 .. s`` ticks (seeded by the episode seed), so chunk boundaries fall at a random
phase of the task (in deployment they are not aligned with the expert's schedule either).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import mujoco
import numpy as np

from rtc_ros.sim.bimanual import BimanualSim
from rtc_ros.sim.expert import HANDOVER_OFFSET, MEET_POINT, ScriptedExpert, Waypoint, min_jerk
from rtc_ros.sim.expert_schedule import ORIGINAL_SCHEDULE, ExpertSchedule
from rtc_ros.sim.layout import SimObservation

GRASP_TICK: int = ORIGINAL_SCHEDULE.closed
"""The right gripper is closed at this tick (end of the expert's grasp waypoint); the lift follows."""
MAX_HANDOVER_SHIFT: float = 0.05
"""The left grasp is re-targeted only at a held cube this close (m) to the expected handover point."""


class ConveyorExpert(ScriptedExpert):
    """Closed-loop expert of ``conveyor_cube`` (module docstring); without observations it runs the
    open-loop transfer plan for the initial cube position. It keeps the transfer expert's original timing
    (:data:`~rtc_ros.sim.expert_schedule.ORIGINAL_SCHEDULE`), with which its belt, grasp tick and lag rule
    were validated."""

    def __init__(self, sim: BimanualSim, pick_tilt_deg: float = 60.0) -> None:
        super().__init__(sim, pick_tilt_deg, schedule=ORIGINAL_SCHEDULE)

    def waypoints(self, cube_pos: np.ndarray, handover_cube: np.ndarray | None = None) -> dict[str, list[Waypoint]]:
        """The transfer expert's waypoints with the right gripper heading at the cube waypoints
        (above, grasp, closed) rotated about world z to point from the right arm's base to the cube."""
        wps = super().waypoints(cube_pos, handover_cube)
        base = self.sim.data.xpos[self._right_base]
        d = np.asarray(cube_pos, dtype=np.float64)[:2] - base[:2]
        psi = float(np.arctan2(-d[1], -d[0]))
        rz = np.array([[np.cos(psi), -np.sin(psi), 0.0], [np.sin(psi), np.cos(psi), 0.0], [0.0, 0.0, 1.0]])
        wps["right"] = [replace(w, rot=rz @ w.rot) if i in (2, 3, 4) else w for i, w in enumerate(wps["right"])]
        return wps

    def reset(self, obs_or_cube: object) -> None:
        """Plan for a new episode from a SimObservation or a cube pose array."""
        self._right_base = int(mujoco.mj_name2id(self.sim.model, mujoco.mjtObj.mjOBJ_BODY, "vx300s_right"))
        if self._right_base < 0:
            raise ValueError("model lacks body vx300s_right/base_link")
        super().reset(obs_or_cube)
        self._grasp_cube = self._cube0.copy()

    def act(self, obs: SimObservation | None = None) -> np.ndarray:
        """Next (14,) joint target (see :meth:`ScriptedExpert.act`); re-targets the right arm at
        ``obs.cube_pose`` until :data:`GRASP_TICK`."""
        t = self._t
        if obs is not None and 0 < t < GRASP_TICK:
            self._grasp_cube = np.asarray(obs.cube_pose[:3], dtype=np.float64).copy()
            wps = self.waypoints(self._grasp_cube)["right"]
            row, _ = self._arm_trajectory("right", wps, t, t + 1, self._plan[t - 1, 7:13])
            self._plan[t, 7:14] = row[0]
        elif obs is not None and t == GRASP_TICK:
            wps = self.waypoints(self._grasp_cube)["right"]
            traj, _ = self._arm_trajectory("right", wps, t, len(self._plan), self._plan[t - 1, 7:13])
            self._plan[t:, 7:14] = traj
        return super().act(obs)

    def replan_handover(self, cube_pos: np.ndarray) -> None:
        """Re-target the left grasp at the held cube (3,) -- unless the cube is more than
        :data:`MAX_HANDOVER_SHIFT` from the handover point, i.e. the right grasp failed (re-targeting
        the left arm at a cube lying on the table would only swing it fast through the workspace)."""
        shift = np.asarray(cube_pos, dtype=np.float64)[:3] - (MEET_POINT + HANDOVER_OFFSET)
        if np.linalg.norm(shift) > MAX_HANDOVER_SHIFT:
            return
        super().replan_handover(cube_pos)

    def clone(self, sim: BimanualSim) -> "ConveyorExpert":
        """A copy acting on ``sim`` (shares the IK scratch data; single-threaded use)."""
        other = copy.copy(self)
        other.sim = sim
        other._plan = self._plan.copy()
        other._grasp_cube = self._grasp_cube.copy()
        return other


def make_expert(sim: BimanualSim, schedule: ExpertSchedule | None = None) -> ScriptedExpert:
    """The scripted expert of ``sim.task``: :class:`ConveyorExpert` or :class:`ScriptedExpert`.

    ``schedule``: the transfer expert's waypoint timing (default: its own default); the conveyor expert
    has one timing and refuses another."""
    if sim.task == "conveyor_cube":
        if schedule is not None and schedule != ORIGINAL_SCHEDULE:
            raise ValueError("schedule: the conveyor expert only runs its original schedule")
        return ConveyorExpert(sim)
    return ScriptedExpert(sim) if schedule is None else ScriptedExpert(sim, schedule=schedule)


def _clone(expert: ScriptedExpert, sim: BimanualSim) -> ScriptedExpert:
    if isinstance(expert, ConveyorExpert):
        return expert.clone(sim)
    other = copy.copy(expert)
    other.sim = sim
    other._plan = expert._plan.copy()
    return other


@dataclass(frozen=True)
class EpisodeOutcome:
    """Result of one expert episode.

    Attributes:
        seed: the reset seed.
        success: the simulator's success flag at the end.
        progress: max stage reached (0..5).
        stops: protective stops (both arms).
        peak_velocity: max |commanded velocity| / limit over the episode.
        peak_torque: max |required torque| / available torque over the episode.
        steps: ticks executed.
        peak_arm_step: largest change of a commanded arm joint (grippers excluded) from one tick to the
            next, rad (the executor's ``max_step`` is per tick); NaN where the mode does not record it.
    """

    seed: int
    success: bool
    progress: int
    stops: int
    peak_velocity: float
    peak_torque: float
    steps: int
    peak_arm_step: float = float("nan")


def episode_outcome(sim: BimanualSim, seed: int, steps: int, commands: np.ndarray | None = None) -> EpisodeOutcome:
    """The :class:`EpisodeOutcome` of the episode ``sim`` just ran (``commands``: its (T, 14) commands,
    the first tick's measured from the start pose)."""
    peak = sim._stops.peak  # noqa: SLF001 -- the monitor's margins
    arm_step = float("nan")
    if commands is not None and len(commands):
        path = np.vstack([sim.home_position, commands])
        arm_step = round(float(np.abs(np.diff(np.delete(path, [6, 13], axis=1), axis=0)).max()), 5)
    return EpisodeOutcome(seed, bool(sim.success), int(sim.progress), len(sim.protective_stops),
                          round(peak["velocity"], 4), round(peak["torque"], 4), steps, arm_step)


def run_closed_loop_expert(sim: BimanualSim, seed: int, extra_steps: int = 40,
                           schedule: ExpertSchedule | None = None) -> EpisodeOutcome:
    """The task's expert acting on every fresh observation for its horizon + ``extra_steps`` ticks
    (stops early once successful); ``schedule``: the transfer expert's timing (:func:`make_expert`)."""
    obs = sim.reset(seed)
    expert = make_expert(sim, schedule)
    expert.reset(obs)
    steps = 0
    commands = []
    for steps in range(1, expert.horizon + extra_steps + 1):
        commands.append(expert.act(obs))
        obs = sim.step(commands[-1]).obs
        if sim.success:
            break
    return episode_outcome(sim, seed, steps, np.array(commands))


def chunk_phase(seed: int, s: int) -> int:
    """Ticks ``1 .. s`` the first chunk of episode ``seed`` is executed for (seeded, uniform)."""
    return int(np.random.default_rng([seed, 7919]).integers(1, s + 1))


def run_chunked_expert(sim: BimanualSim, planner: BimanualSim, seed: int, d: int, s: int, horizon: int = 50,
                       extra_steps: int = 40, blend: int = 0, prediction: str = "acceleration",
                       schedule: ExpertSchedule | None = None) -> EpisodeOutcome:
    """The expert executed in chunks (module docstring): observation ``d`` ticks old, ``s`` actions per
    chunk, chunk length ``horizon``; ``planner`` is a second simulator of the same task (scratch).

    ``blend = 0`` switches naively (the new chunk's action replaces the old one's at once, as in the
    Figure 5 rule); ``blend = b > 0`` cross-fades from the old chunk to the new one over the first ``b``
    executed ticks with minimum-jerk weights (a smooth switch, for comparison under protective stops).
    ``prediction``: how the planner's copy continues the belt (:class:`ConveyorCubeTask`: ``acceleration``
    or ``velocity``). ``schedule``: the transfer expert's timing (:func:`make_expert`).

    Raises:
        ValueError: unless ``1 <= s``, ``0 <= d``, ``d + s <= horizon`` and ``0 <= blend <= s``.
    """
    if s < 1 or d < 0 or d + s > horizon:
        raise ValueError(f"need s >= 1, d >= 0 and d + s <= H, got d={d}, s={s}, H={horizon}")
    if not 0 <= blend <= s or d + s + blend > horizon:
        raise ValueError(f"need 0 <= blend <= s and d + s + blend <= H, got blend={blend}")
    obs = sim.reset(seed)
    tracker = make_expert(sim, schedule)  # follows the real observations (its state is copied into each plan)
    tracker.reset(obs)
    history: list[tuple[dict, ScriptedExpert]] = [(sim.snapshot(), _clone(tracker, planner))]
    total = tracker.horizon + extra_steps + d
    t = 0
    n_exec = chunk_phase(seed, s)
    old: dict[int, np.ndarray] = {}  # the previous chunk's planned action per absolute tick
    while t < total and not sim.success:
        src = max(0, t - d)
        snap, state = history[src]
        planner.restore(snap)
        if hasattr(planner._task, "frozen"):  # noqa: SLF001
            planner._task.frozen = True  # noqa: SLF001 -- the belt's future is predicted, not drawn
            planner._task.prediction = prediction  # noqa: SLF001
        pe = _clone(state, planner)
        p_obs = planner.observation()
        new: dict[int, np.ndarray] = {}
        for k in range(src, t + n_exec + blend):
            a = pe.act(p_obs)
            new[k] = a
            p_obs = planner.step(a).obs
        start = t
        for k in range(start, start + n_exec):
            a = new[k]
            if blend and k - start < blend and k in old:
                w = min_jerk((k - start + 1) / (blend + 1))
                a = (1.0 - w) * old[k] + w * a
            obs = sim.step(a).obs
            tracker.act(obs)
            t += 1
            history.append((sim.snapshot(), _clone(tracker, planner)))
            if sim.success or t >= total:
                break
        old = new
        n_exec = s
    return episode_outcome(sim, seed, t)
