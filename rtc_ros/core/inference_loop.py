"""The inference side of Algorithm 1 (INFERENCELOOP) as ROS-free bookkeeping.

The policy process does not own the chunk buffer: the executor (another process) reports every
tick which step it commanded and which chunk that came from (``seq``, the ``takeover`` step and the
delay it ``consumed``; see :mod:`rtc_ros.nodes.contract`). From that and the chunks it published
itself, :class:`InferenceLoopCore` decides

* **when** to start the next inference: once at least ``s_min`` actions of the executing chunk have
  run (Algorithm 1: ``wait until t >= s_min``), one inference at a time, and only after the executor
  has taken over the previously published chunk (or given up waiting for it);
* the **plan**: ``t_obs`` (the next step the executor will command, so chunk index 0 = ``t_obs``),
  ``s`` = index of the executing chunk at ``t_obs`` (actions of it consumed; the soft mask ends at
  ``H - s``), the previous chunk's remaining actions ``prev[s:]`` (the guidance target), and the
  forecast ``d = max(Q)`` over the last ``b`` observed delays;
* the **observed delay** of each published chunk, ``takeover - t_obs`` (the d that was actually
  consumed; in sync mode the pause), recorded into ``Q`` when the executor reports the takeover.

The execution horizon then adapts as in the paper: the next chunk takes over at index ``d`` and the
next inference starts at index ``max(d, s_min)``, so ``s = max(d, s_min)``.

Per method: guided methods (rtc*, bid) get ``prev_remaining``; naive/sync/te_* sample plainly.
``te_dense`` infers as often as possible (trigger index 1). ``sync``: the executor pauses after
``s_min`` actions, exactly when the trigger fires.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from rtc_ros.core.delay import DelayForecaster
from rtc_ros.core.methods import GUIDED_SCHEDULE, check_method, executor_mode
from rtc_ros.core.stats import RollingStats


@dataclass(frozen=True)
class ExecutorReport:
    """One executor-state message: the step just commanded and the chunk it came from."""

    step: int
    seq: int
    takeover: int
    consumed: int
    hold: bool = False


@dataclass(frozen=True)
class Plan:
    """Everything GUIDEDINFERENCE needs for one chunk.

    Attributes:
        seq: sequence number to publish the chunk with.
        t_obs: step of the observation (chunk index 0).
        d: forecast delay (frozen leading actions), already clamped to ``H - s``.
        s: actions of the executing chunk consumed at ``t_obs`` (mask end ``H - s``); for ``sync``
            the execution horizon ``s_min``; 0 for the first chunk.
        prev_remaining: ``(H - s, M)`` executing chunk's actions from ``t_obs`` on, or None.
        d_raw: the forecast before clamping (``> d`` means the delay was infeasible).
    """

    seq: int
    t_obs: int
    d: int
    s: int
    prev_remaining: np.ndarray | None
    d_raw: int


@dataclass
class _Published:
    chunk: np.ndarray
    t_obs: int
    d: int
    published_step: int
    delay: int | None = None


class InferenceLoopCore:
    """Algorithm 1 bookkeeping for the policy process (thread-safe).

    Args:
        horizon: H.
        s_min: minimum actions executed before the next inference starts (paper: 25 at H = 50).
        buffer_size: b, delays kept for the forecast (paper: 10).
        method: one of :data:`rtc_ros.core.methods.METHODS`.
        initial_delay: forecast before any delay was observed (e.g. from warm-up latency).
        ack_timeout_steps: steps to wait for the executor to take over a published chunk before
            assuming it was rejected and planning again.
        history: how many published chunks to remember.
    """

    def __init__(self, horizon: int, s_min: int, buffer_size: int, method: str, initial_delay: int = 0,
                 ack_timeout_steps: int | None = None, history: int = 16) -> None:
        check_method(method)
        if horizon < 1:
            raise ValueError(f"horizon (H) must be >= 1, got {horizon}")
        if not 1 <= s_min <= horizon:
            raise ValueError(f"s_min must be in [1, H={horizon}], got {s_min}")
        self.horizon = horizon
        self.s_min = s_min
        self.method = method
        self.mode = executor_mode(method)
        self.trigger_index = 1 if method == "te_dense" else s_min
        self.ack_timeout_steps = ack_timeout_steps if ack_timeout_steps is not None else horizon
        self._buffer_size = buffer_size
        self.forecaster = DelayForecaster(buffer_size, initial_delay)
        self._history = history
        self._lock = threading.Lock()
        self._report: ExecutorReport | None = None
        self._published: dict[int, _Published] = {}
        self._next_seq = 0
        self._awaiting: int | None = None  # seq published but not yet taken over
        self._in_flight = False
        self.delays = RollingStats(200)
        self.forecasts = RollingStats(200)
        self.lost = 0  # published chunks the executor never took over (rejected or superseded)
        self.infeasible = 0

    def set_initial_delay(self, d: int) -> None:
        """Set the forecast used until a delay is observed (e.g. warm latency after warm-up; the
        warm-up samples themselves are never put in Q)."""
        with self._lock:
            if not self.forecaster.samples():
                self.forecaster = DelayForecaster(self._buffer_size, int(d))

    # ------------------------------------------------------------------------------- executor
    def on_executor_report(self, rep: ExecutorReport) -> int | None:
        """Feed one executor report; returns the observed delay if it revealed a takeover."""
        with self._lock:
            prev = self._report
            if prev is not None and rep.step < prev.step - 1:
                # the executor restarted (its step counter went back): forget everything
                self._published.clear()
                self._awaiting = None
            self._report = rep
            if rep.seq >= self._next_seq:
                self._next_seq = rep.seq + 1  # another producer or a previous run: stay newer
            pub = self._published.get(rep.seq)
            observed = None
            if pub is not None and pub.delay is None and rep.takeover >= 0:
                pub.delay = max(0, rep.takeover - pub.t_obs)
                observed = pub.delay
                self.forecaster.record(pub.delay)
                self.delays.add(pub.delay)
            if self._awaiting is not None and rep.seq >= self._awaiting:
                self._awaiting = None
            return observed

    # ------------------------------------------------------------------------------- planning
    def _executing_index(self, rep: ExecutorReport) -> int | None:
        """Index of the executing chunk at the next step, or None if it is not one of ours."""
        pub = self._published.get(rep.seq)
        if pub is None:
            return None
        return rep.step + 1 - (rep.takeover - rep.consumed)

    def ready(self) -> bool:
        with self._lock:
            return self._ready_locked()

    def _ready_locked(self) -> bool:
        rep = self._report
        if rep is None or self._in_flight:
            return False
        if self._awaiting is not None:
            pub = self._published.get(self._awaiting)
            if pub is not None and rep.step + 1 - pub.published_step <= self.ack_timeout_steps:
                return False
            self._awaiting = None  # never taken over: rejected or lost
            self.lost += 1
        if rep.seq < 0:
            return True  # nothing executing: the first chunk
        idx = self._executing_index(rep)
        if idx is None:
            return True  # executing someone else's chunk: start ours now (plain sampling)
        return idx >= self.trigger_index

    def plan(self) -> Plan | None:
        """If the trigger condition holds, mark an inference in flight and return its plan."""
        with self._lock:
            if not self._ready_locked():
                return None
            rep = self._report
            assert rep is not None
            t_obs = rep.step + 1
            d_raw = self.forecaster.forecast()
            prev = None
            s = 0
            pub = self._published.get(rep.seq)
            if pub is not None:
                s = min(max(0, t_obs - (rep.takeover - rep.consumed)), self.horizon)
                if s < self.horizon and (self.method in GUIDED_SCHEDULE or self.method == "bid"):
                    prev = pub.chunk[s:].copy()
            if self.mode == "sync":
                s = self.s_min
            d = d_raw
            if self.mode == "switch" and d > self.horizon - s:
                d = max(0, self.horizon - s)
                self.infeasible += 1
            seq = self._next_seq
            self._next_seq += 1
            self._in_flight = True
            self.forecasts.add(d_raw)
            return Plan(seq=seq, t_obs=t_obs, d=d, s=s, prev_remaining=prev, d_raw=d_raw)

    def on_published(self, plan: Plan, chunk: np.ndarray) -> None:
        """Record a published chunk ``(H, M)`` (raw units)."""
        with self._lock:
            step = self._report.step + 1 if self._report is not None else plan.t_obs
            self._published[plan.seq] = _Published(np.asarray(chunk, dtype=np.float64).copy(), plan.t_obs,
                                                   plan.d, step)
            while len(self._published) > self._history:
                del self._published[min(self._published)]
            self._awaiting = plan.seq
            self._in_flight = False

    def on_failed(self, plan: Plan) -> None:
        """The inference for ``plan`` produced nothing (stale observation, error): plan again later."""
        with self._lock:
            self._in_flight = False

    def last_report(self) -> ExecutorReport | None:
        with self._lock:
            return self._report
