"""Simulated-time closed loop: the robot runtime on :class:`~rtc_ros.sim.bimanual.BimanualSim`, no ROS.

One episode drives the SAME ROS-free cores the nodes run, built from the same params file by the
same functions (:mod:`rtc_ros.nodes.cores`): GETACTION (:class:`~rtc_ros.runtime.executor.ExecutorCore`,
every execution mode incl. the sync pause and temporal ensembling), INFERENCELOOP
(:class:`~rtc_ros.runtime.inference_loop.InferenceLoopCore`, delay queue, StepClock) and GUIDEDINFERENCE
(:class:`~rtc_ros.runtime.generator.ChunkGenerator`). Chunk metadata and executor reports go through the
contract's encoders (:class:`~rtc_ros.runtime.contract.ChunkMeta`, ``ExecutorReport``), as on the wire.

**Virtual clock.** One control tick = one ``BimanualSim.step`` = 20 ms; executor step ``k`` is stamped
``T_k = T_0 + k dt``. Per tick ``k``: a chunk due at ``k`` is handed to the executor (``offer_chunk``,
observation age = ``T_k`` minus its stamp); the executor commands step ``k`` and reports it; the
simulator applies the command; the camera renders every ``1 / camera_rate_hz`` (the sim node's
rate; 32x32 ``workspace`` view, as in training) after the steps ``n`` with ``n % cam_every ==
camera_phase(seed)`` (the live camera's phase is arbitrary; per seed, the same for every method);
the observation (joint positions + newest frame,
the node's layout) is stamped ``T_k + dt/2``, so its step is ``t_obs = k + 1``; if the loop is ready it
plans and samples, and the chunk is due at tick ``t_obs + ceil(latency / dt)``, where
``latency = compute_ms + extra_latency_ms`` (``policy_inference`` sleeps ``extra_latency_ms`` after
the model). The reset frame is stamped ``T_0`` (the state before step 0 moved anything), so with
``obs_time: oldest`` it maps to ``t_obs = 1`` like a frame taken after step 0. Nothing else waits.

**Compute time** (``compute_ms``): one number per sampling kind (plain / guided / bid, from the method
table), the median wall time of ``calls`` warm ``ChunkGenerator.generate`` calls measured at start-up
on a real observation (:func:`rtc_ros.experiments.sim_setup.measure_compute_ms`; recorded in results.json), or given on the command
line. A fixed number per kind, not each call's own time, keeps episodes deterministic for a seed and
independent of what else runs on the machine while keeping each method's real cost (guided sampling
with the exact VJP and BID's 32 candidates are slower than plain sampling); the same rule for every method.

Episodes start from the reset pose with fresh cores (a freshly started robot program): the executor
holds the measured position until the first chunk arrives (``startup_hold_s``, kept apart from
``standstill_s``). Protective stops are ``None`` (null) where the simulator does not count them.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported (headless rendering)

import numpy as np  # noqa: E402

from rtc_ros.core.delay import latency_to_steps  # noqa: E402
from rtc_ros.core.trajectory import finite_differences, nanmax_abs, splice_extrema  # noqa: E402
from rtc_ros.experiments.sim_setup import DEFAULT_TASK, Setup, stop_count  # noqa: E402
from rtc_ros.nodes.cores import executor_core, generator_config, inference_loop, initial_delay  # noqa: E402
from rtc_ros.nodes.params import ROLE_EXECUTOR, ROLE_INFERENCE  # noqa: E402
from rtc_ros.runtime.contract import ChunkMeta, ExecutorReport  # noqa: E402
from rtc_ros.runtime.executor import ChunkRejected  # noqa: E402
from rtc_ros.runtime.frame_history import FrameHistory  # noqa: E402
from rtc_ros.runtime.inference_loop import ObservationTooOld  # noqa: E402
from rtc_ros.runtime.stop_recovery import StopRecovery  # noqa: E402
from rtc_ros.sim.bimanual import BimanualSim  # noqa: E402
from rtc_ros.sim.camera import CameraRenderer  # noqa: E402
from rtc_ros.sim.layout import GRIPPER_INDICES  # noqa: E402

T0_NS = 1_000_000_000  # stamp of step 0 (> 0: the StepClock ignores unstamped reports)
@dataclass
class EpisodeRecord:
    """One simulated-time episode: outcome, timing, smoothness; the trace only when asked for.

    Smoothness is of the commanded trajectory (finite differences, :mod:`rtc_ros.core.trajectory`):
    ``acc_rms`` over the arm joints (grippers excluded), ``splice_jerk`` / ``splice_acc`` as in the
    report (largest |value| among stencils straddling a chunk switch), ``splice_jump_*`` the
    executor's own jump at each takeover (max |new action - old action| over joints, rad).
    ``switches``: takeovers of a running chunk by the next one (every splice but the start-up chunk and
    the restarts after a protective stop, which start at index 0 from a hold, ramped in; in sync mode
    each later chunk, started at its index 0 after the pause (here always observed at the pause); in the
    ensemble modes a chunk's arrival into the average). ``splice_step_limit``: switches whose first
    command hit the executor's per-tick step limit on some joint (it moved exactly ``max_step`` from
    the last command because the new chunk's action was farther away: issue #13's "chunk switches
    hitting the step limit", counted in closed loop); ``splice_step_limit_new`` those where that joint's
    previous step was under the limit (the clamp started at the switch, not an ongoing one of the old
    chunk's own steep stretch); ``splice_step_limit_own`` those where the new chunk itself stepped at
    least ``max_step`` on a hit joint between its action before the takeover and the taken-over one
    (``chunk[consumed] - chunk[consumed - 1]``: a seamless switch would have been clamped as well, the
    policy's own speed rather than a seam; in the ensemble modes the arriving chunk's step, not the
    average's; None in sync mode, where no action of the chunk precedes its start);
    ``splice_step_limit_joints`` / ``_ticks`` per joint name / the ticks.
    """

    task: str
    method: str
    latency_ms: float
    delay_ticks: int  # the consumed delay of the model: ceil((compute_ms + latency_ms) / dt)
    compute_ms: float
    seed: int
    success: bool
    progress: int
    steps: int
    duration_s: float
    throughput: float  # progress per minute (the report's definition)
    standstill_s: float  # executor holds x dt after the first chunk (every reason but "startup"; incl. "paused"
    #                      during a stop and "restart", the wait for a start-up chunk after one)
    startup_hold_s: float  # the wait for the first chunk (holds["startup"] x dt)
    holds: dict[str, int]
    protective_stops: int | None  # None: the simulator does not count them
    camera_phase: int
    frame_age_mean: float  # steps between the camera frame and the observation's step, per inference
    chunks: int
    splices: int
    consumed_mean: float  # over every splice after the start-up one (which starts at index 0)
    d_mean: float
    clamps: int
    rejected: int
    too_old: int
    splice_jump_max: float
    splice_jump_mean: float
    splice_acc: float
    splice_jerk: float
    acc_rms: float
    acc_max: float
    stage_steps: list[int]  # first tick each progress level 0..5 was reached (-1: never)
    infer_ms_mean: float  # measured wall time of this episode's generate calls (information only)
    wall_s: float
    stop_recoveries: int | None = None  # re-syncs after a stop ended (None: stop recovery off)
    switches: int = 0  # splices that took over from a running chunk (no start-up / restart)
    splice_step_limit: int = 0  # switches whose first command hit max_step on some joint
    splice_step_limit_new: int = 0  # ... on a joint whose previous step was under max_step
    splice_step_limit_own: int | None = 0  # ... where the new chunk's own step reached max_step (None: sync)
    splice_step_limit_joints: dict[str, int] = field(default_factory=dict)  # the same per joint
    splice_step_limit_ticks: list[int] = field(default_factory=list)  # the ticks of those switches
    trace: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        """JSON-able fields (no trace)."""
        return {k: v for k, v in self.__dict__.items() if k != "trace"}


@dataclass
class Episode:
    """Runs one episode on a simulator and its camera renderer (create both in the same thread)."""

    setup: Setup
    sim: BimanualSim
    renderer: CameraRenderer
    task: str = DEFAULT_TASK

    def observation(self, frame: np.ndarray | list[np.ndarray]) -> dict[str, Any]:
        """The node's structured observation: newest frame (or the newest frames, newest first, for a
        frame-stack policy) + measured joint positions."""
        return {self.setup.camera_name: frame, self.setup.joint_entry: self.sim.joint_positions()}

    def run(self, method: str, extra_latency_ms: float, compute_ms: float, seed: int,
            keep_trace: bool = False) -> EpisodeRecord:
        """One episode of ``method`` at ``extra_latency_ms`` with cube (and flow-noise) seed ``seed``."""
        from rtc_ros.runtime.generator import ChunkGenerator

        t_wall = time.perf_counter()
        st = self.setup
        pe = st.params(ROLE_EXECUTOR, method)
        pi = st.params(ROLE_INFERENCE, method, extra_latency_ms)
        dt, dt_ns, names = st.dt, int(round(st.dt * 1e9)), pi.joint_names
        core, loop = executor_core(pe), inference_loop(pi)
        recovery = StopRecovery() if pe.robot_stopped_topic else None  # as the node: re-sync around stops
        gen = ChunkGenerator(st.policy, generator_config(pi, seed=seed), st.weak_policy)
        loop.max_d = gen.max_prefix  # rtc_trained: d up to its trained prefix length
        delay = latency_to_steps((compute_ms + float(extra_latency_ms)) / 1e3, dt)
        loop.set_initial_delay(initial_delay(compute_ms, extra_latency_ms, dt))
        phase = st.camera_phase(seed)
        self.sim.reset(seed)
        stops0 = stop_count(self.sim)
        frame, frame_ns, frame_step = self.renderer.render(self.sim.data), T0_NS, 0
        depth = st.policy.observation_builder.camera_frames.get(st.camera_name, 1)
        history = FrameHistory({st.camera_name: depth}, math.inf)  # as the node (no resets within an episode)
        history.add(st.camera_name, frame, 0.0)
        if not core.set_measured_position(self.sim.joint_positions()):
            raise ValueError(f"seed {seed}: the simulator's start pose is not a hold position for the executor "
                             f"(beyond the joint limits by more than max_step: {core.out_of_limits})")
        max_steps = int(self.sim.max_episode_steps)
        linger = int(round(float(st.sim_params.success_linger_s) / dt))
        pending: tuple[int, Any, np.ndarray, str, int] | None = None  # due tick, plan, chunk, frame_id, stamp
        cmds, holds, splice_rows, jumps, consumed, d_vals, ages, frames = [], [], [], [], [], [], [], [0]
        stage_steps = [-1] * 6
        stage_steps[0] = 0
        rejected = too_old = chunks = switches = at_limit = at_limit_new = at_limit_own = 0
        offered: dict[int, np.ndarray] = {}  # seq -> chunk offered and not yet taken over (a switch's own step)
        switch_rows: list[np.ndarray] = []  # per switch the new chunk's actions (c - 1, c) (trace; NaN in sync)
        switch_ticks: list[int] = []  # the tick of every switch (trace)
        sync = core.cfg.mode == "sync"
        limit_joints: dict[str, int] = {}
        limit_ticks: list[int] = []
        infer_ms: list[float] = []
        success_step = -1
        k = 0
        for k in range(max_steps):
            t_k = T0_NS + k * dt_ns
            if pending is not None and pending[0] == k:  # published just before this tick
                _, plan, chunk, frame_id, stamp_ns = pending
                pending = None
                loop.on_published(plan, chunk)
                meta = ChunkMeta.decode(frame_id)
                offered[meta.seq] = np.asarray(chunk, dtype=float)
                try:
                    core.offer_chunk(chunk, meta.seq, meta.t_obs, meta.d, meta.s, (t_k - stamp_ns) * 1e-9, meta.base)
                except ChunkRejected:
                    rejected += 1
            tick = core.tick()
            assert tick is not None  # the measured position is known
            rep = tick.report(t_k)
            rep = ExecutorReport.decode(rep.encode(), t_k, rep.command)
            loop.on_executor_report(rep)
            history.on_executor_report(rep)
            cmds.append(tick.command)
            # a start-up wait after the first chunk (a stop recovery's restart) is standstill, not start-up
            holds.append("" if not tick.hold else "restart" if tick.reason == "startup" and splice_rows else tick.reason)
            if tick.splice is not None:
                splice_rows.append(k)
                jumps.append(tick.splice.jump)
                consumed.append(tick.splice.consumed)
                d_vals.append(tick.splice.d)
                prev_hold = holds[-2] if len(holds) > 1 else "startup"
                if tick.splice.consumed > 0 and prev_hold not in ("startup", "restart"):  # a switch
                    switches += 1
                    last, before_last = (cmds[-2] if len(cmds) > 1 else None), (cmds[-3] if len(cmds) > 2 else None)
                    hit, new = step_limit_joints(tick, last, before_last, core.cfg.max_step)
                    chunk = offered[tick.splice.seq]
                    offered = {q: c for q, c in offered.items() if q >= tick.splice.seq}
                    if sync:  # observed at the pause, it starts at its index 0: no own step into it
                        rows, own = np.full((2, len(names)), np.nan), np.full(len(names), np.nan)
                    else:
                        c = tick.splice.consumed
                        rows, own = chunk[c - 1:c + 1], own_step(chunk, c, core.cfg.max_step)
                    switch_rows.append(rows)
                    switch_ticks.append(k)
                    if hit:
                        at_limit += 1
                        at_limit_new += bool(new)
                        at_limit_own += bool(np.any(own[hit] >= 1.0 - 1e-9))
                        limit_ticks.append(k)
                    for j in hit:
                        limit_joints[names[j]] = limit_joints.get(names[j], 0) + 1
            res = self.sim.step(tick.command)
            if recovery is not None and recovery.update(self.sim.protective_stop_holds, core) and not core.ready:
                core.set_measured_position(self.sim.joint_positions())
            for lvl in range(1, res.progress + 1):
                if stage_steps[lvl] < 0:
                    stage_steps[lvl] = k + 1
            if (k + 1 - phase) % st.cam_every == 0:
                frame, frame_ns, frame_step = self.renderer.render(self.sim.data), t_k + dt_ns // 2, k + 1
                history.add(st.camera_name, frame, (k + 1) * dt)
                frames.append(k + 1)
            stack = history.stacks()[st.camera_name]  # newest first
            if pending is None and stack and loop.ready():
                stamp_ns = t_k + dt_ns // 2
                if pi.obs_time == "oldest":
                    stamp_ns = min(stamp_ns, frame_ns)
                try:
                    plan = loop.plan(stamp_ns)
                except ObservationTooOld:
                    too_old += 1
                    plan = None
                if plan is not None:
                    t0 = time.perf_counter()
                    seen = stack[0] if depth == 1 else stack
                    chunk = gen.generate(self.observation(seen), plan.prev_remaining, plan.d, plan.s)
                    infer_ms.append((time.perf_counter() - t0) * 1e3)
                    ages.append(k + 1 - frame_step)
                    chunks += 1
                    meta = ChunkMeta(seq=plan.seq, t_obs=plan.t_obs, d=plan.d, s=plan.s, method=method,
                                     base=plan.base_seq)
                    # due `delay` ticks after the next one (tick k + 1 = executor step t_obs + age, unless a
                    # pause (stop recovery) made the executor's steps lag the ticks)
                    pending = (k + 1 + delay, plan, chunk, meta.encode(), stamp_ns)
            if res.success and success_step < 0:
                success_step = res.obs.step
            if res.truncated or (success_step >= 0 and res.obs.step - success_step >= linger):
                break
        steps = k + 1
        q = np.asarray(cmds)
        _, acc, jerk = finite_differences(q, dt)
        arm = [i for i in range(q.shape[1]) if i not in GRIPPER_INDICES]
        s_acc, s_jerk = splice_extrema(acc, jerk, np.asarray(splice_rows[1:], dtype=np.int64))
        arm_acc = acc[:, arm]
        arm_acc = arm_acc[np.isfinite(arm_acc)]
        stats = core.stats
        hold_counts: dict[str, int] = {}
        for h in holds:
            if h:
                hold_counts[h] = hold_counts.get(h, 0) + 1
        duration = steps * dt
        progress = int(self.sim.progress)
        stops = None if stops0 is None else stop_count(self.sim)
        startup = hold_counts.get("startup", 0)
        trace = None
        if keep_trace:
            trace = {"command": q, "hold": np.asarray([bool(h) for h in holds]),
                     "splice": np.asarray(splice_rows, dtype=np.int64), "dt": np.asarray(dt),
                     "joint_names": np.asarray(names), "frame_age": np.asarray(ages, dtype=np.int64),
                     "frame_steps": np.asarray(frames, dtype=np.int64),
                     "consumed": np.asarray(consumed, dtype=np.int64), "d": np.asarray(d_vals, dtype=np.int64),
                     "hold_reason": np.asarray(holds), "switch_ticks": np.asarray(switch_ticks, dtype=np.int64),
                     "switch_chunk_rows": np.asarray(switch_rows).reshape(len(switch_rows), 2, len(names))}
        return EpisodeRecord(
            task=self.task, method=method, latency_ms=float(extra_latency_ms), delay_ticks=delay,
            compute_ms=float(compute_ms), seed=int(seed), success=bool(self.sim.success), progress=progress,
            steps=steps, duration_s=duration, throughput=progress / (duration / 60.0),
            standstill_s=(sum(hold_counts.values()) - startup) * dt, startup_hold_s=startup * dt, holds=hold_counts,
            protective_stops=None if stops is None or stops0 is None else stops - stops0, camera_phase=phase,
            frame_age_mean=float(np.mean(ages)) if ages else math.nan, chunks=chunks, splices=len(splice_rows),
            consumed_mean=float(np.mean(consumed[1:])) if len(consumed) > 1 else math.nan,  # start-up chunk: 0
            d_mean=float(np.mean(d_vals)) if d_vals else math.nan, clamps=stats.clamps, rejected=rejected,
            too_old=too_old, splice_jump_max=max(jumps[1:], default=math.nan),
            splice_jump_mean=float(np.mean(jumps[1:])) if len(jumps) > 1 else math.nan,
            splice_acc=s_acc, splice_jerk=s_jerk,
            acc_rms=float(np.sqrt(np.mean(arm_acc**2))) if arm_acc.size else math.nan,
            acc_max=nanmax_abs(acc[:, arm]), stage_steps=stage_steps,
            infer_ms_mean=float(np.mean(infer_ms)) if infer_ms else math.nan,
            wall_s=time.perf_counter() - t_wall, trace=trace,
            stop_recoveries=None if recovery is None else recovery.recoveries, switches=switches,
            splice_step_limit=at_limit, splice_step_limit_new=at_limit_new,
            splice_step_limit_own=None if sync else at_limit_own, splice_step_limit_joints=limit_joints,
            splice_step_limit_ticks=limit_ticks)


def step_limit_joints(tick: Any, last: np.ndarray | None, before_last: np.ndarray | None,
                      max_step: np.ndarray) -> tuple[list[int], list[int]]:
    """The joints whose command in ``tick`` was clamped to a full ``max_step`` away from ``last`` (the
    step limit, not a position limit, bounded them; empty when nothing was clamped), and those of them
    whose previous step (``before_last`` -> ``last``) was under the limit (None: counted as under)."""
    if last is None or not tick.clamped:
        return [], []
    lim = np.asarray(max_step, dtype=float) * (1.0 - 1e-9)  # clamp_command lands on last +- max_step
    hit = np.abs(np.asarray(tick.command, dtype=float) - np.asarray(last, dtype=float)) >= lim
    prev = (np.zeros_like(hit) if before_last is None
            else np.abs(np.asarray(last, dtype=float) - np.asarray(before_last, dtype=float)) >= lim)
    return [int(j) for j in np.flatnonzero(hit)], [int(j) for j in np.flatnonzero(hit & ~prev)]


def own_step(chunk: np.ndarray, consumed: int, max_step: np.ndarray) -> np.ndarray:
    """``|chunk[consumed] - chunk[consumed - 1]| / max_step`` per joint, shape ``(n_joints,)``: the step a
    chunk ``(H, n_joints)`` takes by itself into its taken-over action (``consumed >= 1``, chunk index 0 =
    the observation's step); >= 1 where it alone would reach the executor's step limit."""
    if not 1 <= consumed < len(chunk):
        raise ValueError(f"consumed must be in [1, H = {len(chunk)}), got {consumed}")
    return np.abs(chunk[consumed] - chunk[consumed - 1]) / np.asarray(max_step, dtype=float)
