"""The bimanual_sim node's episode logic and command decoding, without ROS.

:class:`SimEpisodeRunner` is the episode state machine around :class:`~rtc_ros.sim.bimanual.BimanualSim`
(one :meth:`~SimEpisodeRunner.tick` per 20 ms); :func:`pick_trajectory_point` picks the point of a
``trajectory_msgs/JointTrajectory`` (read by attribute, no import) that applies at the next tick.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtc_ros.sim.bimanual import CONTROL_DT, NUM_JOINTS, BimanualSim

JOINTS_PER_ARM = NUM_JOINTS // 2  # 7 = 6 arm joints + gripper

STATE_HOLDING = "holding"
STATE_RUNNING = "running"
STATE_DONE = "done"


@dataclass
class TickResult:
    """What one :meth:`SimEpisodeRunner.tick` produced (for publishing)."""

    positions: np.ndarray  # (14,) rad / normalised gripper opening
    velocities: np.ndarray  # (14,) rad/s / opening per s
    progress: int  # running max stage of the episode, 0..5
    state: str  # holding | running | done
    changed: bool  # state, progress, success or the protective-stop count changed at this tick
    new_stops: list[dict[str, Any]] = field(default_factory=list)  # protective stops tripped at this tick


@dataclass
class SimEpisodeRunner:
    """Episode state machine around :class:`BimanualSim` (no ROS; one call per 20 ms tick).

    Args:
        sim: the simulator.
        reset_hold_s: default seconds to hold the start pose after a reset (commands ignored).
        linger_steps: ticks an episode keeps ``running`` after success before it is ``done``.
        max_queued: commands per arm kept waiting (see below); 0 = only the newest command counts.

    Commands are taken **one per tick in arrival order**: the executor sends one command per 20 ms
    tick, but over DDS two of them sometimes arrive within one tick of this loop (the two 50 Hz loops
    run on separate clocks; measured on the loaded 2-core VM: arrivals 1 ms apart). Applying only the
    newest would skip one and double the commanded step, which the protective stops read as twice the
    speed. A command that arrives while older ones wait is applied at a later tick; with more than
    ``max_queued`` waiting the oldest are dropped (the arm never lags the stream by more than that).
    """

    sim: BimanualSim
    reset_hold_s: float = 1.0
    linger_steps: int = 0
    episode: int = -1
    seed: int | None = None
    state: str = STATE_HOLDING
    hold_left: int = 0
    total_ticks: int = 0
    success_step: int = -1
    target: np.ndarray = field(default_factory=lambda: np.zeros(NUM_JOINTS))
    max_queued: int = 2
    _queues: tuple[deque, deque] = field(default_factory=lambda: (deque(), deque()))
    _pending_reset: dict[str, Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _final: dict[str, Any] | None = None  # the episode's outcome, frozen when it became done

    def request_reset(self, seed: int | None = None, hold_s: float | None = None) -> None:
        """Ask for a reset at the next tick (thread-safe).

        Raises:
            ValueError: ``seed`` not an integer in [0, 2**32) or ``hold_s`` not a finite number in
                [0, 3600] (named in the message); the request is dropped and nothing changes.
        """
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or not 0 <= int(seed) < 2**32):
            raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
        hold = self.reset_hold_s if hold_s is None else hold_s
        if isinstance(hold, bool) or not isinstance(hold, (int, float, np.number)) or not 0 <= float(hold) <= 3600:
            raise ValueError(f"hold_s must be a finite number of seconds in [0, 3600], got {hold_s!r}")
        with self._lock:
            self._pending_reset = {"seed": None if seed is None else int(seed), "hold_s": float(hold)}

    def set_arm_target(self, arm_index: int, values: np.ndarray) -> None:
        """Queue a (7,) position target for arm ``arm_index`` (0 = left, 1 = right); it becomes the arm's
        target at the next tick with no older command waiting (class docstring). Thread-safe."""
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (JOINTS_PER_ARM,) or not np.isfinite(v).all():
            raise ValueError(f"arm command must be {JOINTS_PER_ARM} finite values, got {v.tolist()}")
        with self._lock:
            q = self._queues[arm_index]
            q.append(v.copy())
            while len(q) > self.max_queued + 1:
                q.popleft()

    def _take_commands(self) -> None:
        """(under the lock) Each arm's oldest waiting command becomes its target; while holding after a reset
        commands are dropped (a command of the old episode that arrived after the reset must not become the
        target when the hold ends: the executor, re-synced, may send nothing until its next chunk)."""
        for arm, q in enumerate(self._queues):
            if q and self.state == STATE_HOLDING:
                q.clear()
            elif q:
                self.target[arm * JOINTS_PER_ARM:(arm + 1) * JOINTS_PER_ARM] = q.popleft()

    def _do_reset(self, seed: int | None, hold_s: float) -> None:
        self.sim.reset(seed)
        self.episode += 1
        self.seed = seed
        self.target[:] = self.sim.home_position
        self.hold_left = max(0, int(round(hold_s / CONTROL_DT)))
        self.state = STATE_HOLDING if self.hold_left > 0 else STATE_RUNNING
        self.success_step = -1
        self._final = None

    def tick(self) -> TickResult:
        """Advance 20 ms of simulated time: apply a pending reset, then hold or follow the target."""
        with self._lock:
            pending, self._pending_reset = self._pending_reset, None
            if pending is not None:  # commands sent before the reset are for the old episode
                for q in self._queues:
                    q.clear()
            self._take_commands()
            target = self.target.copy()
        prev = (self.state, self.sim.progress, self.sim.success, len(self.sim.protective_stops))
        if pending is not None:
            self._do_reset(pending["seed"], pending["hold_s"])
            target = self.target.copy()
        self.total_ticks += 1
        if self.state == STATE_HOLDING:
            # teleported start pose, physics frozen; the step counter of the episode does not run
            self.hold_left -= 1
            if self.hold_left <= 0:
                self.state = STATE_RUNNING
            obs = self.sim.observation()
            q, v = obs.joint_positions, obs.joint_velocities
        else:
            res = self.sim.step(target)
            q, v = res.obs.joint_positions, res.obs.joint_velocities
            if res.success and self.success_step < 0:
                self.success_step = res.obs.step
            if self.state == STATE_RUNNING and (
                res.truncated or (self.success_step >= 0 and res.obs.step - self.success_step >= self.linger_steps)
            ):
                self.state = STATE_DONE
                self._final = self._outcome()
        stops = self.sim.protective_stops
        new = [e.to_dict() for e in stops[(prev[3] if pending is None else 0):]]  # a reset clears the list
        changed = prev != (self.state, self.sim.progress, self.sim.success, len(stops)) or pending is not None
        return TickResult(q, v, self.sim.progress, self.state, changed, new)

    def _outcome(self) -> dict[str, Any]:
        """The fields that describe the episode's outcome (frozen at ``done``)."""
        return {
            "step": self.sim.step_count, "progress": int(self.sim.progress), "stage": int(self.sim.stage),
            "success": bool(self.sim.success), "truncated": bool(self.sim.step_count >= self.sim.max_episode_steps),
            # None with protective stops off: not counted (0 made a run without them look stop-free -- an audit)
            "protective_stops": len(self.sim.protective_stops) if self._stops_on else None,
            "protective_stops_by_arm": dict(self.sim.protective_stop_counts) if self._stops_on else None,
        }

    @property
    def _stops_on(self) -> bool:
        return bool(self.sim.protective_stop_config.enabled)

    def status(self) -> dict[str, Any]:
        """JSON-able status (the fields of the node's ``sim/status``: see :mod:`rtc_ros.sim.node`).

        Once the episode is ``done`` its outcome (step, progress, stage, success, truncated, protective
        stops) stays as it was at that tick: the arms keep following commands until the next reset,
        but what happens then (a stop tripped while the recorder closes the bag, say) is not the
        episode's; such stops are counted in ``protective_stops_after_done``.
        """
        live = self._outcome()
        out = {
            "episode": self.episode, "seed": self.seed, "state": self.state, **live,
            "success_step": self.success_step,
            "cube": [round(float(x), 4) for x in self.sim.cube_pose()[:3]],
            **self.sim.task_info,
            "protective_stop_active": self.sim.protective_stop_active,
        }
        if self._final is not None:
            out.update(self._final)
            if self._stops_on:
                out["protective_stops_after_done"] = live["protective_stops"] - self._final["protective_stops"]
        return out




def pick_trajectory_point(msg: Any, names: list[str], now_ns: int, dt: float) -> np.ndarray:
    """Positions ``(len(names),)`` of a ``JointTrajectory`` that apply at the next tick.

    The point used is the last one whose due time (``header.stamp + time_from_start``, or receipt
    time when the stamp is zero) is at most one period ``dt`` from ``now_ns``; the first point if
    none is due yet. Joints are matched by name.

    Raises:
        ValueError: missing joints, no points, wrong sizes, non-finite values.
    """
    if not msg.points:
        raise ValueError("trajectory has no points")
    index = {n: i for i, n in enumerate(msg.joint_names)}
    if len(index) != len(msg.joint_names):
        twice = sorted({n for n in msg.joint_names if list(msg.joint_names).count(n) > 1})
        raise ValueError(f"trajectory names joints {twice} more than once")
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"trajectory lacks joints {missing} (has {list(msg.joint_names)})")
    start_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
    if start_ns == 0:
        start_ns = now_ns
    horizon_ns = now_ns + int(dt * 1e9)
    chosen = msg.points[0]
    for p in msg.points:
        due = start_ns + p.time_from_start.sec * 1_000_000_000 + p.time_from_start.nanosec
        if due <= horizon_ns:
            chosen = p
        else:
            break
    pos = np.asarray(chosen.positions, dtype=np.float64)
    if pos.shape[0] != len(msg.joint_names):
        raise ValueError(f"point has {pos.shape[0]} positions for {len(msg.joint_names)} joints")
    out = pos[[index[n] for n in names]]
    if not np.isfinite(out).all():
        raise ValueError("trajectory point contains NaN/inf")
    return out
