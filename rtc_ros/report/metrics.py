"""Per-episode and per-(method, latency) metrics of the evaluation report.

Definitions (all from the recorded bags; a missing topic gives ``NaN``, never an error):

* ``success``, ``score``: operator metadata; ``success`` falls back to the last ``sim/status``
  verdict, ``score`` to the last ``rtc/progress`` value.
* ``duration_s``: episode start to stop (sidecar), else first to last message.
* ``throughput``: score per minute of episode (the paper's Figure 6 axis).
* ``standstill_s``: time the arm stood still *waiting*: executor ticks with ``hold=1`` and not ``paused`` (a
  protective stop, an operator's pause) times dt (paused ticks counted too before 2026-12-08); without executor
  state, command intervals whose largest joint speed is below ``still_eps``, plus the time no command came.
* ``d`` / ``consumed``: per chunk that took over a running one (not the start-up chunk or one after a pause,
  since 2026-12-08), the forecast delay the sampler froze (``ChunkMeta.d``) and the
  delay the executor actually observed when the chunk took over (``takeover - t_obs``);
  ``d_under`` = fraction of chunks with consumed > d (the new chunk's first unfrozen action was
  already due: a seam).
* smoothness: the commanded trajectory ``q (T, M)`` at the controller period dt is differenced
  (only across consecutive ticks): ``acc_k = (q[k+1] - 2 q[k] + q[k-1]) / dt^2``,
  ``jerk_k = (q[k+2] - 3 q[k+1] + 3 q[k] - q[k-1]) / dt^3``. ``splice_acc`` / ``splice_jerk`` are
  the largest |values| over all joints among the stencils that straddle a splice (the tick where
  the executing chunk's seq changes); ``acc_max`` / ``jerk_max`` are over the whole episode.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rtc_ros.core.trajectory import finite_differences, nanmax_abs, splice_extrema
from rtc_ros.recording.episode import Episode, Series

NAN = float("nan")


@dataclass
class EpisodeMetrics:
    """One row of ``episodes.csv``."""

    episode: str
    method: str
    extra_latency_ms: float  # injected latency (sidecar ``extra_latency_ms``)
    success: float  # 1.0 / 0.0 / NaN (unknown)
    score: float
    duration_s: float
    throughput: float  # score per minute
    standstill_s: float
    standstill_frac: float
    n_chunks: int
    n_splices: int
    d: float  # mean forecast delay (steps)
    consumed: float  # mean observed delay (steps)
    d_under: float
    splice_acc: float
    splice_jerk: float
    acc_max: float
    jerk_max: float
    dt: float
    source: str  # which commanded trajectory was used: executor | commands | none
    #: the sidecar status: completed | aborted | interrupted | timeout | recovered (the recorder died;
    #: no stop command, so success/score are unknown unless the simulator or rtc/progress tell) | ...
    status: str = ""
    #: protective stops the robot reported in the episode (the sidecar's ``sim`` entry, else the simulator's
    #: last ``sim/status``; NaN: not reported, e.g. a real robot without that bridge)
    protective_stops: float = NAN
    #: recorded in a dry run (the executor's reports say ``dry=1``): its commands never reached the robot
    dry: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Derivatives:
    """Finite differences of a commanded trajectory (NaN where the stencil crosses a gap).

    ``t (T,)``; ``vel (T, M)`` forward difference at k; ``acc (T, M)`` central at k;
    ``jerk (T, M)`` with stencil ``k-1 .. k+2``.
    """

    t: np.ndarray
    q: np.ndarray
    vel: np.ndarray
    acc: np.ndarray
    jerk: np.ndarray
    dt: float


def _num(x: Any) -> float:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)) and not (isinstance(x, float) and math.isnan(x)):
        return float(x)
    return NAN


def estimate_dt(ep: Episode) -> float:
    """Controller period: metadata ``dt``, else executor stamps per step, else command spacing."""
    for key in ("dt",):
        v = ep.meta.get(key)
        if isinstance(v, (int, float)) and v > 0:
            return float(v)
    params = ep.meta.get("params") or {}
    for node_params in params.values() if isinstance(params, dict) else []:
        if isinstance(node_params, dict):
            v = node_params.get("dt")
            if isinstance(v, (int, float)) and v > 0:
                return float(v)
    ex = ep.executor
    if ex is not None and len(ex) > 2:
        ds = np.diff(ex.step)
        ok = (ds > 0) & (ex.step[:-1] >= 0)
        if ok.any():
            tt = ex.stamp if ex.stamp is not None else ex.t
            if _period(v := float(np.median(np.diff(tt)[ok] / ds[ok]))):  # (stamps standing still, sim time before
                return v  # /clock: 0, and the whole report failed -- an audit)
    cmd = ep.commands
    if cmd is not None and len(cmd) > 2 and _period(v := float(np.median(np.diff(cmd.t)))):
        return v
    return 0.02


def _period(v: float) -> bool:
    return math.isfinite(v) and v > 1e-4


def derivatives(series: Series, dt: float, steps: np.ndarray | None = None) -> Derivatives:
    """Velocity, acceleration and jerk of ``series.q`` at period ``dt``.

    ``steps (T,)``: controller step of each row (executor; -1 before its first step); stencils spanning a
    non-consecutive pair (a lost tick, a pause, a row without a step) are NaN. Without steps, rows more than 1.5
    ``dt`` apart in time are not consecutive (a lost command message; an audit: one lost of 300 raised jerk_max
    from 3.3 to 709, and a tick with step -1 made every row count as consecutive).
    """
    q = np.asarray(series.q, dtype=np.float64)
    if steps is not None:
        steps = np.asarray(steps)
        consecutive = (np.diff(steps) == 1) & (steps[:-1] >= 0)
    else:
        consecutive = np.diff(np.asarray(series.t, dtype=np.float64)) < 1.5 * dt
        if series.fresh is not None and len(series.fresh) == len(q):  # per-arm topics on a grid: a lost message is a
            consecutive &= series.fresh[:-1] & series.fresh[1:]  # repeated row, no time gap (a review: jerk 7415)
    vel, acc, jerk = finite_differences(q, dt, consecutive)
    return Derivatives(t=series.t, q=q, vel=vel, acc=acc, jerk=jerk, dt=dt)


def splice_indices(ep: Episode) -> np.ndarray:
    """Row indices of the commanded trajectory at which a new chunk took over.

    Executor: rows whose seq differs from the previous row's (and both known). Commands only:
    the first command at or after each chunk's receive time (approximate).
    """
    ex = ep.executor
    if ex is not None and len(ex) > 1 and (ex.seq >= 0).any():
        change = (ex.seq[1:] != ex.seq[:-1]) & (ex.seq[1:] >= 0) & (ex.seq[:-1] >= 0)
        return np.nonzero(change)[0] + 1
    cmd = ep.commands
    if cmd is not None and len(cmd) > 1 and len(ep.chunks) > 1:
        idx = np.searchsorted(cmd.t, [c.t for c in ep.chunks[1:]])
        return np.unique(idx[(idx > 0) & (idx < len(cmd))])
    return np.zeros(0, dtype=int)


_nanmax_abs = nanmax_abs


def splice_smoothness(der: Derivatives, splices: np.ndarray) -> tuple[float, float]:
    """Max |acc| and |jerk| over all joints among stencils that straddle each splice row ``i``
    (acc rows ``i-1, i``; jerk rows ``i-2 .. i``). Returns the max over splices."""
    return splice_extrema(der.acc, der.jerk, splices)


def chunk_delays(ep: Episode) -> tuple[np.ndarray, np.ndarray]:
    """``(forecast (K,), consumed (K,))`` for chunks that both carry metadata and took over a running chunk: one
    that started from a hold (the start-up chunk, after a re-sync or a pause: its index 0, ``consumed`` 0 by
    convention, no measured delay -- an audit: it pulled the demo's consumed mean from 8.2 to 7.5) is left out."""
    ex = ep.executor
    if ex is None or not len(ex):
        return np.zeros(0), np.zeros(0)
    paused = ex.paused if len(ex.paused) == len(ex.seq) else np.zeros(len(ex.seq), bool)
    consumed_by_seq: dict[int, int] = {}
    seqs, cons = ex.seq.tolist(), ex.consumed.tolist()
    for i, (sq, c) in enumerate(zip(seqs, cons)):
        if sq < 0 or sq in consumed_by_seq or c < 0 or (i and seqs[i - 1] == sq):
            continue
        if i and seqs[i - 1] >= 0 and not paused[i - 1]:  # took over a running chunk (not from a hold after a pause)
            consumed_by_seq[sq] = c
    f, c = [], []
    for ch in ep.chunks:
        if ch.meta is not None and ch.meta.seq in consumed_by_seq:
            f.append(ch.meta.d)
            c.append(consumed_by_seq[ch.meta.seq])
    return np.asarray(f, dtype=float), np.asarray(c, dtype=float)


def standstill(ep: Episode, der: Derivatives | None, dt: float, still_eps: float) -> float:
    """Seconds the arm stood still waiting (see module docstring): the executor's held ticks that were not paused (a
    protective stop's hold, an operator's pause are no wait for a chunk: an audit found 49 of a demo episode's 78
    held ticks a stop's); without the executor's trace, the ticks the commands did not move plus the time no command
    came (a gap of more than 1.5 ``dt``)."""
    ex = ep.executor
    if ex is not None and len(ex) and ex.hold.any():
        paused = ex.paused if len(ex.paused) == len(ex.hold) else np.zeros(len(ex.hold), bool)
        return float((ex.hold & ~paused).sum()) * dt
    if ex is not None and len(ex) and (ex.seq >= 0).any():
        return 0.0  # executor metadata present and never held
    if der is None:
        return NAN
    speed = (np.max(np.nan_to_num(np.abs(der.vel[:-1]), nan=np.inf), axis=1) if der.vel.shape[0] > 1
             else np.zeros(0))  # (NaN across a gap: counted by the gap)
    gaps = np.diff(np.asarray(der.t, dtype=np.float64))
    return float(np.sum(speed < still_eps)) * dt + float(np.sum(gaps[gaps >= 1.5 * dt] - dt))


def episode_metrics(ep: Episode, still_eps: float = 1e-3) -> tuple[EpisodeMetrics, Derivatives | None]:
    """Compute :class:`EpisodeMetrics` (and the derivatives used for plots) of one episode."""
    dt = estimate_dt(ep)
    series = ep.command_series()
    der: Derivatives | None = None
    source = "none"
    if series is not None and len(series) and series.q.shape[1]:
        der = derivatives(series, dt, ep.executor.step if series is ep.executor else None)
        source = "executor" if series is ep.executor else "commands"
    splices = splice_indices(ep) if der is not None else np.zeros(0, dtype=int)
    s_acc, s_jerk = splice_smoothness(der, splices) if der is not None else (NAN, NAN)
    score = _num(ep.meta.get("score"))
    if math.isnan(score) and ep.progress is not None and len(ep.progress[1]):
        score = float(ep.progress[1][-1])
    success = NAN if ep.success is None else float(ep.success)  # the operator's, else the simulator's verdict
    duration = ep.duration_s
    stops = _num(_sim_field(ep, "protective_stops"))
    fc, cs = chunk_delays(ep)
    still = standstill(ep, der, dt, still_eps)
    return EpisodeMetrics(
        episode=ep.name, method=ep.method, extra_latency_ms=ep.extra_latency_ms, success=success, score=score,
        duration_s=duration, throughput=score / (duration / 60.0) if duration > 0 and not math.isnan(score) else NAN,
        standstill_s=still, standstill_frac=still / duration if duration > 0 else NAN,
        n_chunks=len(ep.chunks), n_splices=int(splices.size),
        d=float(fc.mean()) if fc.size else NAN, consumed=float(cs.mean()) if cs.size else NAN,
        d_under=float(np.mean(cs > fc)) if fc.size else NAN,
        splice_acc=s_acc, splice_jerk=s_jerk,
        acc_max=_nanmax_abs(der.acc) if der is not None else NAN,
        jerk_max=_nanmax_abs(der.jerk) if der is not None else NAN,
        dt=dt, source=source, status=str(ep.meta.get("status") or ""), protective_stops=stops,
        dry=bool(ep.executor is not None and len(ep.executor.dry) and ep.executor.dry.any()),
    ), der


def _sim_field(ep: Episode, key: str) -> Any:
    """``key`` of the simulator's summary: the sidecar's ``sim`` entry, else the last ``sim/status``."""
    side = ep.meta.get("sim")
    if isinstance(side, dict) and key in side:
        return side[key]
    return (ep.sim_status or {}).get(key)


#: columns of summary.csv, in order
SUMMARY_FIELDS = (
    "method", "extra_latency_ms", "n", "n_verdict", "success_rate", "score_mean", "duration_mean_s", "throughput_mean",
    "throughput_sem", "standstill_mean_s", "standstill_frac", "d_mean", "consumed_mean",
    "d_under_frac", "splice_acc_mean", "splice_jerk_mean", "acc_max_mean", "jerk_max_mean",
    "protective_stops_mean", "stopped_frac",
)


def _mean(xs: list[float]) -> float:
    a = np.asarray([x for x in xs if not math.isnan(x)], dtype=float)
    return float(a.mean()) if a.size else NAN


def _sem(xs: list[float]) -> float:
    a = np.asarray([x for x in xs if not math.isnan(x)], dtype=float)
    return float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else NAN


def summarize(rows: list[EpisodeMetrics]) -> list[dict[str, Any]]:
    """Aggregate per ``(method, extra_latency_ms)``, sorted by method then latency."""
    groups: dict[tuple[str, float], list[EpisodeMetrics]] = {}
    for r in rows:
        groups.setdefault((r.method, r.extra_latency_ms), []).append(r)
    out = []
    for (method, lat), rs in sorted(groups.items()):
        out.append({
            "method": method, "extra_latency_ms": lat, "n": len(rs),
            "n_verdict": sum(not math.isnan(r.success) for r in rs),  # success_rate is over these
            "success_rate": _mean([r.success for r in rs]),
            "score_mean": _mean([r.score for r in rs]),
            "duration_mean_s": _mean([r.duration_s for r in rs]),
            "throughput_mean": _mean([r.throughput for r in rs]),
            "throughput_sem": _sem([r.throughput for r in rs]),
            "standstill_mean_s": _mean([r.standstill_s for r in rs]),
            "standstill_frac": _mean([r.standstill_frac for r in rs]),
            "d_mean": _mean([r.d for r in rs]),
            "consumed_mean": _mean([r.consumed for r in rs]),
            "d_under_frac": _mean([r.d_under for r in rs]),
            "splice_acc_mean": _mean([r.splice_acc for r in rs]),
            "splice_jerk_mean": _mean([r.splice_jerk for r in rs]),
            "acc_max_mean": _mean([r.acc_max for r in rs]),
            "jerk_max_mean": _mean([r.jerk_max for r in rs]),
            "protective_stops_mean": _mean([r.protective_stops for r in rs]),
            "stopped_frac": _mean([float(r.protective_stops > 0) if not math.isnan(r.protective_stops) else NAN
                                   for r in rs]),
        })
    return out
