"""chunk_executor's ``/diagnostics`` status: its values, level and message, read from the node (ROS types only for
the level constants). ERROR: commanding nothing (another publisher on an output, a measurement beyond the limits);
WARN: waiting for joint states, disabled (an enabling device), paused, holding, a dry run, the loop late, a tracking
watchdog that is blind, controllers that interpolate from the measured state, command topics nobody subscribes, a
robot stop report of another type or that nobody publishes (:meth:`~rtc_ros.nodes.executor_stops.ProtectiveStops.check`), and
a node time that disagrees with the graph's (:class:`~rtc_ros.nodes.common.ClockCheck`)."""

from __future__ import annotations

import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus

from rtc_ros.nodes.common import with_clock_check, with_warning
from rtc_ros.runtime.executor import HOLD_STARTUP, HOLD_STARVED, HOLD_SYNC_PAUSE


#: no chunk arriving for this long (s) while a node publishes the chunk topic is named (a hung or killed policy)
QUIET_CHUNKS_S = 2.0


def hold_why(node: Any, reason: str, rejected: int, quiet_s: float = 0.0) -> str:
    """Why the executor holds (a dashboard's reader sees only this: a walkthrough's holds all read "holding position
    for N ticks" whether the policy was dead, too slow or refused). ``rejected``: the chunks refused so far;
    ``quiet_s``: since the last chunk arrived (a SIGKILLed policy_inference stays in the graph for its DDS lease,
    ~20 s, and its executor said only "no chunk yet" meanwhile: a two-robot walkthrough)."""
    why = {HOLD_STARTUP: "no chunk since the start or the last re-sync",
           HOLD_STARVED: "the executing chunk ran out and no newer one came",
           HOLD_SYNC_PAUSE: "sync: waiting for the next chunk, by design"}.get(reason, reason)
    topic = node._chunk_sub.topic_name
    n = node.count_publishers(topic)
    if not n:
        return f"{why}; nobody publishes {topic} (policy_inference stopped, or the network to it?)"
    if rejected > getattr(node, "_hold_rejects", 0):  # refused during the hold
        why += f"; chunks refused, the newest: {node.core.stats.last_reject[:200]}"
    elif quiet_s > QUIET_CHUNKS_S:
        why += (f"; {n} node{'s' if n > 1 else ''} publish{'' if n > 1 else 'es'} {topic} but no chunk arrived for "
                f"{quiet_s:.0f} s (an inference that slow, policy_inference hung, or killed: a killed process stays "
                "listed until its DDS lease ends, ~20 s)")
    return why


def waiting_text(node: Any) -> str:
    """What the executor waits for before its first hold position: the joint states on their resolved topic, and why
    none was taken (a two-robot walkthrough's typo in the namespace read only "waiting for joint states")."""
    sub = node._js_sub  # (read once: the I/O thread may drop it meanwhile)
    topic = sub.topic_name if sub is not None else node.p.joint_states_topic
    n = node.count_publishers(topic)
    why = ("nobody publishes it" if not n else f"the newest was refused: {node.js_refused}" if node.js_refused else
           f"{n} publisher{'s' if n > 1 else ''}, none taken since the start or the last re-sync yet")
    return f"waiting for joint states on {topic}: {why}"


def executor_status(node: Any) -> tuple[int, str, dict[str, object]]:
    """(level, message, values) of the chunk_executor node ``node`` now."""
    s = node.core.stats
    summary = s.summary()
    summary["overruns"] = node.overruns
    summary["errors"] = node.errors
    summary["next_step"] = node.core.next_step
    summary["enabled"] = int(node.core.enabled)
    summary["contended"] = len(node.outputs.contended)
    summary["wrong_controllers"] = len(node.outputs.wrong)
    summary["dry_run"] = int(node.p.dry_run)
    holding = s.consecutive_holds > 0
    arrived, now = s.chunks_accepted + summary["rejected"], time.monotonic()  # (chunks received so far)
    if getattr(node, "_arrivals", (None,))[0] != arrived:
        node._arrivals = (arrived, now)
    level = DiagnosticStatus.OK
    message = "executing"
    outside = dict(node.core.out_of_limits)
    if node.outputs.muted:
        level, message = DiagnosticStatus.ERROR, "commanding nothing: " + node.outputs.text()
    elif not node.core.ready and outside:
        level, message = DiagnosticStatus.ERROR, f"commanding nothing: measured {node._outside_text(outside)}"
    elif not node.core.ready:
        level, message = DiagnosticStatus.WARN, waiting_text(node)
    elif not node.core.enabled:
        level, message = DiagnosticStatus.WARN, (f"disabled: {node.p.enable_topic} {node._enable.why(time.monotonic())}"
                                                 + ("; also paused" if node.core.paused else ""))
    elif node.core.paused and node.stops.recovery.stopped:  # (it resumes by itself: ~/resume is not the advice)
        held = sorted(node.names[i] for i in node.stops.recovery.held)
        after = ("resumes by itself when it ends" if node.stops.recovery.will_resume else  # (paused before it, or
                 "stays paused after it (~/resume then)")  # ~/pause during it: a review)
        level, message = DiagnosticStatus.WARN, (f"protective stop {node.stops.recovery.stops} (holding "
                                                 f"{', '.join(held) or 'every joint'}): {after}")
    elif node.core.paused:
        level, message = DiagnosticStatus.WARN, f"paused by {node.core.pause_reason or '~/pause'} (~/resume to continue)"
    elif holding:
        level, message = DiagnosticStatus.WARN, f"holding position for {s.consecutive_holds * node.dt:.1f} s: " + \
            hold_why(node, s.hold_reason, summary["rejected"], now - node._arrivals[1])
    if not holding:  # (refusals counted from here are those during a hold: hold_why)
        node._hold_rejects = summary["rejected"]
    stops = summary["protective_stops"] = node.stops.recovery.stops
    if stops > getattr(node, "_diag_stops", 0) and not node.stops.recovery.stopped:  # (over between two statuses:
        level, message = with_warning(level, message, f"a protective stop since the last status (stop {stops}, "
                                                      "over)")  # a walkthrough's 1 s stop showed nowhere)
    node._diag_stops = stops
    rejected = summary["rejected"]  # the newest refusal, when chunks were refused since the last status
    if rejected != getattr(node, "_diag_rejected", 0) and s.last_reject:
        summary["last_rejected"] = s.last_reject[:300]
    node._diag_rejected = rejected
    if node.p.dry_run:
        level, message = max(level, DiagnosticStatus.WARN), f"dry run (no command published): {message}"
    with node._late_lock:
        late, node._late_s = node._late_s, 0.0
    if late > node.dt:  # a whole tick or more missed: the controllers held the last command meanwhile
        text = (f"control loop late by up to {late * 1e3:.0f} ms since the last report (ticks missed: the controllers "
                "held the last command; CPU load? realtime_priority)")
        level, message = with_warning(level, message, text)
    level, message = node.tracking.diagnostics(summary, level, message)  # a trip: ERROR; blind: WARN
    unheard = node._unheard_commands() if node.core.ready else []
    if node.stops.problem:  # protective stops would go unseen
        level, message = with_warning(level, message, node.stops.problem)
    for text in node._controllers.problems() if node._controllers is not None else ():
        level, message = with_warning(level, message, text)
    if unheard:
        text = f"no subscriber on {', '.join(unheard)} (is the controller loaded and configured? the topic right?)"
        level, message = with_warning(level, message, text)
        if node._throttled("unheard", 10.0):
            node.get_logger().warn(f"commands go nowhere: {text}")
    return with_clock_check(node, level, message, summary)

