"""policy_inference's ``/diagnostics`` status: its values, level and message (read from the node, ROS types only
for the level constants), so that an operator sees a policy that runs but sends the robot nothing.

WARN (beside the node's state: warming up, error): observations all refused so far; the executor's reports
silent; its settings differ from the ones modelled; chunks lost or refused; another publisher on ``joint_states``; the arm not following
its commands (:meth:`rtc_ros.nodes.tracking_guard.TrackingGuard.not_following`); joint states stamped
ahead of the executor's clock in this period (:mod:`rtc_ros.runtime.clock_skew`); the executor's reports reaching
this node :data:`LATE_REPORTS_S` or more late at a plan in this period; and **no chunk
published for longer than** :func:`idle_limit_s` while the executor runs (not paused, measured from the last
report saying paused), whatever the cause
(inference failing, every observation refused, a hung model call): the executor holds meanwhile, and
without this the node's status stayed OK. ERROR: another chunk producer (nothing is planned).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus

from rtc_ros.nodes.common import diagnostic_array, with_clock_check
from rtc_ros.nodes.contention import contention_text
from rtc_ros.nodes.tracking_guard import WINDOW_S


FAILED_IN_ROW = 3  # chunks refused or lost in a row (none taken over) that are worth a WARN: the robot holds
LATE_REPORTS_S = 0.1  # executor reports this late (at a plan) are worth a WARN: a network retransmitting them


def idle_limit_s(horizon: int, dt: float, latency_s: float = 0.0) -> float:
    """How long without a published chunk counts as starving the executor: two chunk lengths, at least 1 s, plus
    twice the slowest recent inference ``latency_s`` (a synchronous method publishes once per executed chunk plus
    the inference latency)."""
    return max(2.0 * horizon * dt, 1.0) + 2.0 * latency_s


def _failed_chunks(node: Any) -> str:
    """Since the last status: chunks lost or refused by the executor, when at least 2 and a quarter of those published
    (a network walkthrough: 92 chunks lost at 20 % packet loss while the status said OK); '' otherwise."""
    now = (node.published, node.loop.lost, node.loop.rejected)
    prev, node._chunk_counts = getattr(node, "_chunk_counts", now), now
    published, failed = now[0] - prev[0], (now[1] - prev[1]) + (now[2] - prev[2])
    if failed < 2 or failed < 0.25 * published:
        return ""
    return (f"{failed} of the {published} chunks published since the last status were lost or refused by the executor "
            "(chunks_lost, chunks_rejected; the executor's log says why it refused: a network dropping packets, "
            "chunks arriving too late)")


def inference_status(node: Any) -> tuple[int, str, dict[str, object]]:
    """``(level, message, values)`` of the policy_inference node ``node`` now."""
    vals: dict[str, object] = {"state": node.state, "chunks_published": node.published,
                               "chunks_superseded": node.superseded, "chunks_lost": node.loop.lost,
                               "chunks_rejected": node.loop.rejected, "infeasible_delay": node.loop.infeasible,
                               "errors": node.errors, "d": node.loop.queue.forecast(),
                               "extra_latency_ms": float(node.p.extra_latency_ms)}
    warmup = node.warmup_ms  # (read once: a warm-up retry on the inference thread rebinds it to a new list)
    if warmup:
        vals["warmup_ms_first"], vals["warmup_ms_last"] = warmup[0], warmup[-1]
    d_last = node.loop.consumed.last()
    if d_last is not None:
        vals["consumed_last"] = d_last
    for prefix, stats in (("latency_ms", node.latency), ("model_ms", node.model_ms),
                          ("overhead_ms", node.overhead_ms), ("consumed", node.loop.consumed),
                          ("d", node.loop.forecasts), ("reports_behind", node.loop.behind)):
        for k, v in stats.summary().items():
            vals[f"{prefix}_{k}"] = v
    refused = dict(sorted(node.obs_rejected.copy().items()))  # (a copy: other threads add reasons)
    vals.update({f"obs_rejected_{k}": v for k, v in refused.items()})
    before, node._diag_refused = getattr(node, "_diag_refused", {}), refused  # (per period: totals since the start
    fresh = {k: v - before.get(k, 0) for k, v in refused.items() if v > before.get(k, 0)}  # quoted old faults)
    prev_infeasible = getattr(node, "_diag_infeasible", 0)
    if node._joints.recv:
        vals["joint_states_age_s"] = round(time.monotonic() - node._joints.recv, 3)
    node.tracking.diagnostics(vals)
    level = DiagnosticStatus.OK if node.state == "active" else (
        DiagnosticStatus.ERROR if node.state == "error" else DiagnosticStatus.WARN)
    if node.state == "active" and sum(refused.values()) and node.latency.count == 0:
        level = DiagnosticStatus.WARN
    notes = [node.state]
    idle = time.monotonic() - max(node.last_published_t, node.active_since, node.last_paused_t)  # (since a resume)
    slowest = float(vals.get("latency_ms_max", 0.0)) / 1e3  # (summarised above)
    standing = node._sim_time and node.clock_check.standing_s() > 0.5  # simulated time stands: so does everything
    silence = "" if standing else node._executor_silence()  # (its reports stopped: not "while it runs")
    if standing:
        notes.append("simulated time stands still (the simulator paused?)")
    elif node.state == "active" and node.loop.executor_running and not silence and \
            idle > idle_limit_s(node.p.horizon, node.dt, slowest):
        notes.append(f"no chunk published for {idle:.1f} s while the executor runs (it holds): inference errors "
                     f"{node.errors}" + (f", observations refused since the last status {fresh} (the newest: "
                                         f"{node.last_rejected})" if fresh else ""))
        vals["idle_s"] = round(idle, 2)
    since = node.busy_since  # (read once: the inference thread resets it to 0)
    busy = time.monotonic() - since if since else 0.0
    if busy > max(1.0, 2.0 * slowest):  # (a walkthrough's 30 s model call read as 'observations refused: stale')
        notes.append(f"an inference has been running for {busy:.1f} s (slowest recent {slowest:.2f} s): a model call "
                     "hung, a GPU stalled?")
    if node.loop.failed_in_row >= FAILED_IN_ROW and node.loop.executor_running:  # (one every 2 s: never a quarter
        # of a period's chunks, _failed_chunks)
        notes.append(f"the last {node.loop.failed_in_row} chunks were refused by the executor or lost, none taken over "
                     f"(the newest: {node.loop.last_failure}): the robot holds")
    infeasible, node._diag_infeasible = node.loop.infeasible, node.loop.infeasible
    if infeasible > prev_infeasible:
        notes.append(f"the forecast delay d (now {node.loop.queue.forecast()}) was beyond what a chunk allows "
                     f"{infeasible - prev_infeasible} times since the last status (infeasible_delay; the log says "
                     "why: a model slower than H allows, or old observations)")
    if silence:
        notes.append(silence)
    notes += node.executor_params.notes
    ahead = node.clock_ahead.take_worst()
    vals["joint_states_ahead"] = node.clock_ahead.ahead
    if ahead > 0:
        vals["joint_states_ahead_ms_max"] = round(ahead * 1e3, 1)
        notes.append(f"joint states stamped up to {ahead * 1e3:.0f} ms ahead of the executor's clock (clocks not in "
                     "sync, or its reports arriving that late: a lossy link, report_lag_compensation; they look "
                     "fresher than they are)")
    stuck = node.tracking.not_following()
    vals["not_following_joint"] = stuck[0] if stuck else ""
    if stuck:
        notes.append(f"the arm does not follow: the commands moved {stuck[0]} by {stuck[1]:.3f} in the last "
                     f"{WINDOW_S:g} s, its measured position by {stuck[2]:.4f} (a controller refusing the commands -- a "
                     "joint it does not own? -- or inactive, a protective stop (the executor's status says), the arm "
                     "blocked, or joint states that froze)")
    off = None if stuck else node.tracking.off_command()
    vals["off_command_joint"] = off[0] if off else ""
    if off:
        notes.append(f"the arm stands off its commands: {off[0]} was {off[1]:.3f} or more from its command for "
                     f"{WINDOW_S:g} s (the arm blocked, its driver re-homed or re-calibrated, or a controller holding "
                     "elsewhere; chunk_executor's <arm>.tracking_tolerance acts on it)")
    failed = _failed_chunks(node)
    if failed:
        notes.append(failed)
    behind, node.loop.behind_worst = node.loop.behind_worst, 0  # (per period)
    if behind * node.dt >= LATE_REPORTS_S:
        notes.append(f"the executor's reports reached this node up to {behind} steps ({behind * node.dt * 1e3:.0f} ms) "
                     "late (a network holding them back for retransmissions: config/fastdds_lossy_link.xml and "
                     "report_lag_compensation, docs/ros_interface.md 'The policy on another machine'; or this "
                     "node's callbacks running late: CPU load)")
    if node.joint_state_publishers > 1:
        notes.append(f"{node.joint_state_publishers} publishers on {node.p.joint_states_topic}: observations may "
                     "alternate between them")
    if len(notes) > 1:
        level = max(level, DiagnosticStatus.WARN)
    message = "; ".join(notes)
    if node.other_producers:
        level, message = DiagnosticStatus.ERROR, "not planning: " + contention_text(node.other_producers,
                                                                                   node._producers.own)
    return with_clock_check(node, level, message, vals)


@contextmanager
def loading_status(node: Any, publisher: Any, name: str, spec: str, period_s: float) -> Iterator[None]:
    """While the policy loads (in the node's constructor, before anything spins: seconds for a small model, a minute
    for a VLA), a WARN "loading the policy ..." every ``period_s`` from a thread, so that a dashboard does not see a
    node without a status (a diagnostics-only walkthrough: 4-6 s of silence at every start). ``name``: the status's
    (the node's own, which its later statuses keep)."""
    done, t0 = threading.Event(), time.monotonic()

    def beat() -> None:
        while True:
            publisher.publish(diagnostic_array(name, DiagnosticStatus.WARN, f"loading the policy {spec} "
                                               f"({time.monotonic() - t0:.0f} s)", {"state": "loading"},
                                               node.get_clock().now().to_msg()))
            if done.wait(period_s):
                return

    thread = threading.Thread(target=beat, name="rtc_loading_status", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
