"""episode_recorder's ``/diagnostics`` status (read from the node; ROS types only for the level constants): what a
dashboard needs of a data-collection run, which before 2026-12-07 was only in the log and ``rec/status`` (a
diagnostics-only walkthrough: a full disk and an episode cut short never reached /diagnostics).

OK: idle, or recording episode N (its seconds and messages). WARN: free space under twice ``stop_free_mb`` (the
running episode closes at ``stop_free_mb``), a required topic or camera without a message after
:data:`SILENT_AFTER_S` of the running episode, messages DDS dropped in it, the last episode cut short
(``stopped_low_disk``, ``interrupted``, ``timeout``, ``aborted``), a clock disagreement. ERROR: the last episode
failed (a write error: its bag may need ``python -m rtc_ros.recording.recover``).
"""

from __future__ import annotations

import shutil
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus

from rtc_ros.nodes.common import with_clock_check, with_warning

#: seconds into an episode after which a required topic without a message is warned (publishers take a moment)
SILENT_AFTER_S = 2.0
#: the recorder's status period (s)
DIAGNOSTICS_PERIOD_S = 1.0
#: an episode that ended so is worth a WARN until the next one starts
CUT_SHORT = ("stopped_low_disk", "interrupted", "timeout", "aborted")


def recorder_status(node: Any) -> tuple[int, str, dict[str, object]]:
    """``(level, message, values)`` of the episode_recorder node ``node`` now."""
    s, last = node.session, node.last_episode or {}
    try:
        free_mb = shutil.disk_usage(node.output_dir).free / 1e6
    except OSError:
        free_mb = -1.0
    vals: dict[str, object] = {"state": "recording" if s.recording else "idle", "free_mb": round(free_mb, 1),
                               "output_dir": str(node.output_dir), "last_episode": last.get("episode", ""),
                               "last_status": last.get("status", "")}
    level, message = DiagnosticStatus.OK, "idle"
    if s.recording and s.meta is not None and s.bag is not None:
        elapsed = (node._now() - s.meta["start_time_ns"]) * 1e-9
        counts = dict(s.bag.counts)
        vals.update(episode=s.meta.get("episode", ""), episode_s=round(elapsed, 1), messages=sum(counts.values()))
        message = f"recording episode {s.meta.get('episode')} ({elapsed:.0f} s, {sum(counts.values())} messages)"
        silent = sorted(t for t in node._required if not counts.get(t))
        if silent and elapsed > SILENT_AFTER_S:
            level, message = with_warning(level, message, f"no message on {silent} in this episode (required_topics, "
                                                          "camera_topics: a camera or driver off, or a wrong name?)")
        lost = {t: n - node._lost_at_start.get(t, 0) for t, n in node.discovery.lost.items()
                if n > node._lost_at_start.get(t, 0)}
        if lost:
            level, message = with_warning(level, message, f"messages lost in this episode: {dict(sorted(lost.items()))}")
    elif last.get("status") == "failed":
        level, message = DiagnosticStatus.ERROR, (f"the last episode ({last.get('episode')}) failed: "
                                                  f"{last.get('error', '?')} (python -m rtc_ros.recording.recover "
                                                  f"{node.output_dir} repairs its bag)")
    elif last.get("status") in CUT_SHORT:
        level, message = with_warning(level, message, f"the last episode ({last.get('episode')}) ended "
                                                      f"{last['status']}" + (f": {last['error']}" if last.get("error")
                                                                             else ""))
    if 0 <= free_mb < 2 * float(node.p.stop_free_mb):
        level, message = with_warning(level, message, f"only {free_mb:.0f} MB free in {node.output_dir} (an episode "
                                                      f"closes below stop_free_mb = {node.p.stop_free_mb:g})")
    return with_clock_check(node, level, message, vals)
