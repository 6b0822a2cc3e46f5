"""INFERENCELOOP of Algorithm 1, ROS-free: when to infer, and the plan for GUIDEDINFERENCE.

The policy process does not own the chunk buffer: the executor (another process) reports every tick
which step it commanded, with what, and which chunk that came from (``seq``, its ``takeover`` step,
the delay it ``consumed``, and the newest rejected chunk; :class:`~rtc_ros.runtime.contract.ExecutorReport`).
From that and the chunks it published itself, :class:`InferenceLoopCore` follows the paper's loop::

    loop
        wait until t >= s_min                      -> ready(): executing index >= s_min
        s = t; A_prev = A_cur[s:]                  -> plan(): prev_remaining from t_obs on
        o = o_cur; d = max(Q)                      -> plan(): d = max(Q) (+ observation age)
        A_new = GUIDEDINFERENCE(o, A_prev, d, s)   -> ChunkGenerator.generate (rtc_ros.runtime.generator)
        A_cur = A_new (executor); enqueue observed delay onto Q  -> on_executor_report()

What a real robot adds, and how it is handled here:

* **Observation time.** ``t_obs`` is the executor step at which the observation was taken: its
  stamp mapped through the executor's step/stamp reports (:class:`StepClock`), so chunk index 0 is
  the observation's step even when the observation is old. The executor's step now is the newest report's next,
  or later when the node gives the executor's clock (``now_ns``) and the reports reach it late (a network
  retransmitting them): the trigger and ``t_obs`` then count from where the executor is, not from where its
  newest report was. The observation's age in steps is
  already executed, so ``d >= age``: ``d = max(max(Q), age + max(C))`` where ``C`` holds the delays
  measured from planning to takeover (with fresh observations ``C <= Q`` and this is ``max(Q)``); a chunk
  planned from an observation older than the median of the last ``b`` enters ``Q`` at that median age (its
  extra age was known when it was planned: one old observation must not inflate ``d`` for ``b`` chunks).
  The guidance target for the ``age`` already-executed steps is what the executor actually
  commanded then (from its reports). Observations too old to plan from raise :class:`ObservationTooOld`:
  older than the step history, or so old that even the fastest recent inference would bring a chunk
  with no action left.
* **Late chunks.** A chunk that arrives with no action left is rejected by the executor, which says so in
  its report: the loop replans at once (no waiting for a timeout) and the delay that overran the chunk
  (``>= H``) enters ``Q`` so the next forecast covers it. It also starts at once when the executing chunk
  would have fewer remaining actions than the forecast delay one step later. While the executing chunk
  has run out, the robot holds its last command (with ``max_accel`` it brakes there from its last step:
  :mod:`~rtc_ros.runtime.hold_model`), and the guidance target is that hold, up to ``H``
  (``s = 0``, at most ``H - s_min`` frozen) for a chunk that takes over only after the executing one has
  run out. A guided method waits for a chunk this loop did not publish (a restarted policy node's
  predecessor's: its actions are unknown, a chunk spliced into it would jump) to run out, then plans so.
* **Pause.** While the executor reports ``paused`` (an operator's, a re-sync's, a released enabling device's), nothing is planned; its step
  counter stands still, so the executing chunk continues after resume and the plan stays valid (unless the
  executor dropped it after a pause longer than its ``max_chunk_age``: then the next chunk is a start-up chunk).
* **Lost chunks.** A published chunk neither taken over nor rejected within ``ack_timeout_steps`` is
  counted lost (and stays counted) and the loop plans again. If it was only late and takes over after all,
  its delay still enters ``Q``, and a chunk guided toward the chunk it replaced is not published
  (:meth:`InferenceLoopCore.superseded`): it would be spliced into the late one with a jump.

Per method (:mod:`rtc_ros.runtime.methods`): guided methods and BID get ``prev_remaining``; the
others sample plainly. ``te_dense`` infers as often as it can (trigger index 1). ``sync``: the
executor pauses after ``s_min`` actions, exactly when the trigger fires.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from rtc_ros.core.delay import DelayForecaster
from rtc_ros.core.stats import RollingStats
from rtc_ros.runtime.contract import ExecutorReport
from rtc_ros.runtime.methods import method_info
from rtc_ros.runtime.hold_model import HoldModel, remaining_actions
from rtc_ros.runtime.plan import ObservationBeforeReports, ObservationTooOld, Plan, clamp_warning  # noqa: F401
from rtc_ros.runtime.step_clock import StepClock


@dataclass
class _Published:
    chunk: np.ndarray
    t_obs: int
    plan_step: int
    published_step: int
    resolved: bool = False  # taken over, rejected or given up


class InferenceLoopCore:
    """Algorithm 1's inference-side bookkeeping (thread-safe).

    Args:
        horizon: H.
        s_min: minimum actions executed before the next inference starts (paper: 25 at H = 50).
        buffer_size: b, delays kept in Q (paper: 10).
        method: one of :data:`rtc_ros.runtime.methods.METHODS`.
        initial_delay: ``d_init``, Q's first entry (e.g. from warm-up latency).
        ack_timeout_steps: steps to wait for a published chunk's takeover or rejection before counting it lost.
        history: how many published chunks to remember.
        max_d: the largest ``d`` the chunk sampler accepts (``rtc_trained``: the policy's trained prefix
            length); a larger forecast is clamped to it (counted in ``infeasible``). None: no limit.
        hold: the executor's hold (:class:`~rtc_ros.runtime.hold_model.HoldModel`: with its ``max_accel`` the
            hold brakes, so the hold target goes on from the last step to a stop); default: the last command.
    """

    def __init__(self, horizon: int, s_min: int, buffer_size: int, method: str, initial_delay: int = 0,
                 ack_timeout_steps: int = 10, history: int = 16, max_d: int | None = None,
                 hold: HoldModel | None = None) -> None:
        info = method_info(method)
        if horizon < 1:
            raise ValueError(f"horizon (H) must be >= 1, got {horizon}")
        if not 1 <= s_min <= horizon:
            raise ValueError(f"s_min must be in [1, H={horizon}], got {s_min}")
        if history < 2:
            raise ValueError(f"history must be >= 2 (the executing chunk's record and a new one), got {history}")
        if ack_timeout_steps < 1:
            raise ValueError(f"ack_timeout_steps must be >= 1, got {ack_timeout_steps}")
        self.horizon, self.s_min, self.method, self.info = horizon, s_min, method, info
        self.mode = info.exec_mode
        self.trigger_index = 1 if info.dense else s_min
        self.ack_timeout_steps = ack_timeout_steps
        # the largest d the sampler accepts (rtc_trained: the spec's training.prefix_conditioning);
        # a larger forecast is clamped like an infeasible one instead of refused at every tick
        self.max_d = max_d
        self.hold = hold or HoldModel()  # the executor's hold after a chunk runs out (its braking under max_accel)
        self.queue = DelayForecaster(buffer_size, initial_delay)  # Q: t_obs -> takeover (at the usual age)
        self.compute = DelayForecaster(buffer_size, initial_delay)  # C: planning -> takeover
        self._ages: deque[int] = deque(maxlen=buffer_size)  # observation ages of the last chunks taken over
        self.clock = StepClock(4 * horizon)
        self._commanded: dict[int, np.ndarray] = {}
        self._history = history
        self._lock = threading.Lock()
        self._report: ExecutorReport | None = None
        self._published: dict[int, _Published] = {}
        self._next_seq = 0
        self._awaiting: int | None = None
        self._in_flight = False
        self.consumed = RollingStats(200)  # observed delays
        self.forecasts = RollingStats(200)  # d forecasts
        self.behind = RollingStats(200)  # at each plan: steps the executor ran past its newest report that came
        self.behind_worst = 0  # their largest since the caller last reset it (the node's diagnostics, per period)
        self.lost = 0
        self.foreign_seq = -1  # the executing chunk is not ours and the plan waits for it to run out (see ready)
        self.rejected = 0
        self.failed_in_row, self.last_failure = 0, ""  # chunks refused or lost since the last takeover; the newest
        self.infeasible = 0

    def set_initial_delay(self, d_init: int) -> None:
        """Set ``d_init`` (e.g. the warm latency; warm-up samples never enter Q) while Q has no
        observed delay yet."""
        self.queue.set_initial_delay(int(d_init))
        self.compute.set_initial_delay(int(d_init))

    # ------------------------------------------------------------------------------- executor
    def on_executor_report(self, rep: ExecutorReport) -> int | None:
        """Feed one executor report; returns the observed delay if it revealed a takeover."""
        with self._lock:
            prev = self._report
            if prev is not None and rep.step < prev.step - 1:  # the executor restarted: forget it all
                self._published.clear()
                self._commanded.clear()
                self.clock.clear()
                self._awaiting, self.failed_in_row = None, 0
            self._report = rep
            self.clock.add(rep.step, rep.stamp_ns)
            if rep.command is not None:
                self._commanded[rep.step] = np.asarray(rep.command, dtype=np.float64)
                if len(self._commanded) > 4 * self.horizon + 16:  # bounded also when reports were missed
                    oldest = rep.step - 4 * self.horizon
                    self._commanded = {k: v for k, v in self._commanded.items() if k >= oldest}
            # another producer or a previous run (a restarted process must not reuse the seq the executor last
            # rejected: its own chunk would be booked as that rejection)
            self._next_seq = max(self._next_seq, rep.seq + 1, rep.rejected_seq + 1)
            observed = None
            pub = self._published.get(rep.seq)
            if pub is not None and not pub.resolved and rep.takeover >= 0:
                pub.resolved = True
                observed = max(0, rep.takeover - pub.t_obs)
                self.queue.record(observed - self._excess_age(pub, True))  # (an old observation: at the usual age)
                self.compute.record(max(0, rep.takeover - pub.plan_step))
                self.consumed.add(observed)
                self.failed_in_row = 0
            rej = self._published.get(rep.rejected_seq)
            if rej is not None and not rej.resolved:
                rej.resolved = True
                self.rejected += 1
                self.failed_in_row, self.last_failure = self.failed_in_row + 1, f"refused ({rep.rejected_reason})"
                if rep.rejected_reason == "stale":  # the delay overran the chunk: Q must cover it
                    # (C keeps measured compute times only: an overrun in C would make every observation
                    # look too old once C is full of them, and no takeover could ever refresh it)
                    self.queue.record(max(self.horizon, rep.step - rej.t_obs))
                elif rep.rejected_reason == "age":  # older than max_chunk_age: that delay too (since 2026-12-07)
                    self.queue.record(max(0, rep.step - rej.t_obs - self._excess_age(rej, False)))
            if self._awaiting is not None and (rep.seq >= self._awaiting or self._awaiting == rep.rejected_seq):
                self._awaiting = None
            return observed

    def _excess_age(self, pub: _Published, taken: bool) -> int:
        """How much older than the median of the last ``b`` taken over the observation of ``pub`` was (its extra
        age was known when it was planned: d = age + max(C) covered it; one late input must not raise d for ``b``
        chunks); ``taken``: remember its age."""
        age, ages = pub.plan_step - pub.t_obs, sorted(self._ages)
        if taken:
            self._ages.append(age)
        return max(0, age - ages[len(ages) // 2]) if ages else 0

    # ------------------------------------------------------------------------------- planning
    def _origin(self, rep: ExecutorReport, pub: _Published) -> int:
        """Step of the executing chunk's index 0 (sync: its takeover; otherwise ``takeover - consumed``,
        which is ``t_obs`` except for the executor's start-up chunk, started at its index 0)."""
        if self.mode == "sync":
            return rep.takeover
        return rep.takeover - rep.consumed if rep.takeover >= 0 else pub.t_obs

    @property
    def executor_running(self) -> bool:
        """The newest executor report says it executes (not paused); False before any report."""
        with self._lock:
            return self._report is not None and not self._report.paused

    def ready(self, now_ns: int = 0) -> bool:
        """Algorithm 1's ``wait until t >= s_min``, plus the late-chunk rules (see module doc). ``now_ns``: the
        executor's clock now, estimated (:meth:`rtc_ros.runtime.clock_skew.ClockAhead.executor_now`; 0: the newest
        report is taken as current)."""
        with self._lock:
            return self._ready_locked(now_ns)

    def _next_step(self, rep: ExecutorReport, now_ns: int) -> int:
        """The executor's next step at ``now_ns``: past the newest report when reports reach this node late."""
        return max(rep.step + 1, (self.clock.step_at(now_ns) or 0) if now_ns > 0 else 0)

    def _ready_locked(self, now_ns: int = 0) -> bool:
        rep = self._report
        self.foreign_seq = -1
        if rep is None or self._in_flight or rep.paused:
            return False
        if self._awaiting is not None:
            pub = self._published.get(self._awaiting)
            if pub is not None and rep.step + 1 - pub.published_step <= self.ack_timeout_steps:
                return False
            self._awaiting = None  # neither taken over nor rejected: lost (not resolved: should it take over
            # late after all, its delay enters Q)
            self.lost += 1
            self.failed_in_row, self.last_failure = self.failed_in_row + 1, "lost (neither taken over nor refused)"
        pub = self._published.get(rep.seq)
        if rep.seq >= 0 and pub is None and self.info.uses_prefix and self.mode == "switch" and not rep.hold:
            self.foreign_seq = rep.seq  # someone else's chunk (a restarted node's predecessor): its actions are
            return False  # unknown, so wait until it runs out and the robot holds (the hold is the target)
        if rep.seq < 0 or pub is None:
            return True  # nothing executing, or someone else's chunk for a method without a prefix: start now
        idx = self._next_step(rep, now_ns) - self._origin(rep, pub)
        # start now if one step later the remaining actions (H - idx - 1) could not cover the forecast delay
        late = self.mode == "switch" and self.horizon - idx <= self.queue.forecast()
        return idx >= self.trigger_index or late

    def _remaining(self, rep: ExecutorReport, pub: _Published, t_obs: int) -> np.ndarray:
        """``(L, M)``: what the robot executes from step ``t_obs`` on, as far as known: the commands the executor
        reported for the steps already run, the executing chunk's actions, then its hold (:mod:`.hold_model`)."""
        first = min(t_obs, rep.step + 1)  # (t_obs after the newest report: reports arriving late)
        return _from(remaining_actions(pub.chunk, self._origin(rep, pub), first, rep.step + 1, self._commanded,
                                       rep.command, self.hold), t_obs - first)

    def plan(self, obs_stamp_ns: int = 0, now_ns: int = 0) -> Plan | None:
        """If the trigger condition holds, mark an inference in flight and return its plan.

        Args:
            obs_stamp_ns: the observation's stamp (executor clock, ns); 0 = taken now.
            now_ns: the executor's clock now, estimated (see :meth:`ready`); 0: the newest report is current.

        Raises:
            ObservationTooOld: the observation is older than the step history, or so old that its
                chunk would arrive with no action left (nothing is marked in flight).
        """
        with self._lock:
            if not self._ready_locked(now_ns):
                return None
            rep = self._report
            assert rep is not None
            t_next = self._next_step(rep, now_ns)
            self.behind.add(t_next - rep.step - 1)
            self.behind_worst = max(self.behind_worst, t_next - rep.step - 1)
            t_obs = t_next
            if obs_stamp_ns > 0:
                mapped = self.clock.step_at(obs_stamp_ns)
                if mapped is None and self.clock.empty:  # every report so far had stamp 0
                    raise ObservationBeforeReports("no executor report has carried a stamp yet (an executor on "
                                                   "use_sim_time before /clock?): observations cannot be placed")
                if mapped is None and not self.clock.full:
                    raise ObservationBeforeReports("observation stamped before the first executor report received "
                                                   "(start-up or an executor restart): waiting for a newer one")
                if mapped is None:
                    raise ObservationTooOld("observation stamp is older than the executor's step history (do the "
                                            "sensor and executor clocks agree? use_sim_time on one node only?)")
                t_obs = min(mapped, t_next)
            age = t_next - t_obs
            fastest = min(self.compute.queue())
            if self.mode != "sync" and age >= self.horizon:
                raise ObservationTooOld(f"observation is {age} steps old: its chunk would have no action left "
                                        f"(H={self.horizon})")
            # the forecast only while a chunk is executing: when the robot holds anyway, trying costs nothing,
            # and a forecast that is wrong (the model sped up again) must not stop planning for good
            if self.mode != "sync" and age > 0 and age + fastest >= self.horizon and not rep.hold:
                raise ObservationTooOld(f"observation is {age} steps old; even with the fastest recent inference "
                                        f"({fastest} steps) its chunk would have no action left (H={self.horizon})")
            d_raw = max(self.queue.forecast(), age + self.compute.forecast())
            pub = self._published.get(rep.seq)
            prev, s, holds = None, 0, False
            if pub is not None:
                s = t_obs - self._origin(rep, pub)
                if self.info.uses_prefix:
                    prev = self._remaining(rep, pub, t_obs)
                s = min(max(d_raw, self.s_min), self.horizon) if s >= self.horizon else max(s, 0)
            elif rep.seq >= 0 and rep.hold and rep.command is not None and self.info.uses_prefix:
                # a chunk this loop did not publish (a restarted policy node) ran out, the robot holds: the target
                # is what it commanded since t_obs, then that hold (the chunk leaves the hold, no jump)
                first = min(t_obs, rep.step + 1)
                rows = [self._commanded.get(k) for k in range(first, rep.step + 1)] + \
                    self.hold.held(rep.command, self._commanded.get(rep.step - 1), self.horizon)
                prev = _from(np.asarray([r if r is not None else rep.command for r in rows], dtype=np.float64),
                             t_obs - first)
                holds = True
            if self.mode == "sync":
                s = self.s_min
            d, clamped_by = d_raw, ""
            if self.mode == "switch" and prev is not None and (holds or d > self.horizon - s):
                # the executing chunk runs out before this one takes over; the robot then holds, so the target
                # (prev_remaining padded with the hold) is known up to H: mask end H (s = 0), the takeover at
                # d guided, not free; at most H - s_min frozen (an overestimated d would pin the whole chunk)
                s = 0
                if d > self.horizon - self.s_min:
                    d, clamped_by = self.horizon - self.s_min, "hold"
                    self.infeasible += 1
            elif self.mode == "switch" and d > self.horizon - s:
                d, clamped_by = max(0, self.horizon - s), "horizon"
                self.infeasible += 1
            elif d > self.horizon:  # other modes sample plainly; d is metadata the executor bounds by H
                d = self.horizon
                if self.mode != "sync":  # a sync chunk starts at index 0 after the pause: never too late
                    clamped_by = "length"
                    self.infeasible += 1
            if self.max_d is not None and d > self.max_d:
                d, clamped_by = self.max_d, "max_d"
                self.infeasible += 1
            seq = self._next_seq
            self._next_seq += 1
            self._in_flight = True
            self.forecasts.add(d_raw)
            plan = Plan(seq=seq, t_obs=t_obs, d=d, s=s, prev_remaining=prev, d_raw=d_raw, age=age,
                        clamped_by=clamped_by, base_seq=rep.seq if prev is not None else -1)
            return plan

    def superseded(self, plan: Plan) -> bool:
        """True if a guided ``plan``'s prefix is no longer what the robot executes: another chunk took over
        since it was planned (a chunk counted lost that arrived late after all, another producer's).
        Publishing it would splice a chunk guided toward the replaced chunk into the new one, a jump: drop it
        (:meth:`on_failed`) and plan again. An executor restart is not checked here: the executor refuses
        such a chunk itself (``future``)."""
        with self._lock:
            rep = self._report
            return plan.base_seq >= 0 and rep is not None and rep.seq != plan.base_seq

    def on_published(self, plan: Plan, chunk: np.ndarray) -> None:
        """Record a published chunk ``(H, M)`` (raw units)."""
        with self._lock:
            step = self._report.step + 1 if self._report is not None else plan.t_obs
            self._published[plan.seq] = _Published(np.asarray(chunk, dtype=np.float64).copy(), plan.t_obs,
                                                   plan.t_obs + plan.age, step)
            running = self._report.seq if self._report is not None else -1
            while len(self._published) > self._history:  # the oldest, never the executing chunk's record (without
                del self._published[min(k for k in self._published if k != running)]  # it, it would look foreign)
            self._awaiting = plan.seq
            self._in_flight = False

    def on_failed(self, plan: Plan | None = None) -> None:
        """The inference for ``plan`` produced nothing (stale observation, error): plan again later."""
        with self._lock:
            self._in_flight = False

    def last_report(self) -> ExecutorReport | None:
        with self._lock:
            return self._report


def _from(rows: np.ndarray, n: int) -> np.ndarray:
    """``rows`` from its ``n``-th on; the last one (where the robot stands) when there are no more."""
    return rows[min(n, len(rows) - 1):]
