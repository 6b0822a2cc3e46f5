"""episode_recorder's ``/diagnostics`` status (read from the node; ROS types only for the level constants): what a
dashboard needs of a data-collection run, which before 2026-12-07 was only in the log and ``rtc/episode_status`` (a
diagnostics-only walkthrough: a full disk and an episode cut short never reached /diagnostics).

OK: idle, or recording episode N (its seconds and messages). WARN: free space under twice ``stop_free_mb`` while
recording (the running episode closes at ``stop_free_mb``), under ``min_free_mb`` too while idle (the next start is
refused), ``output_dir`` missing; a required topic or camera without a message after :data:`SILENT_AFTER_S` of the
running episode, messages DDS dropped in it, the last episode cut short by the recorder (:data:`CUT_SHORT`), a clock
disagreement. ERROR: the last start refused (until one succeeds), the last episode failed (a write error: its bag
may need ``python -m rtc_ros.recording.recover``).
"""

from __future__ import annotations

import shutil
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus

from rtc_ros.nodes.common import with_clock_check

#: seconds into an episode after which a required topic without a message is warned (publishers take a moment)
SILENT_AFTER_S = 2.0
#: the recorder's status period (s)
DIAGNOSTICS_PERIOD_S = 1.0
#: an episode the recorder cut short (not an operator's abort, not a max_duration timeout: kept for training) is worth
#: a WARN until the next one starts
CUT_SHORT = ("stopped_low_disk", "interrupted")


def _warn(level: Any, message: str, text: str) -> tuple[Any, str]:
    """``text`` added as a WARN, after the state (recording episode N ...) which stays first."""
    return max(level, DiagnosticStatus.WARN), f"{message}; {text}"


def recorder_status(node: Any) -> tuple[int, str, dict[str, object]]:
    """``(level, message, values)`` of the episode_recorder node ``node`` now."""
    s, last = node.session, node.last_episode or {}
    try:
        free_mb = shutil.disk_usage(node.output_dir).free / 1e6
    except OSError:
        free_mb = -1.0
    vals: dict[str, object] = {"state": "recording" if s.recording else "idle", "free_mb": int(free_mb),
                               "output_dir": str(node.output_dir), "last_episode": last.get("episode", ""),
                               "last_status": last.get("status", "")}
    level, message = DiagnosticStatus.OK, "idle"
    if s.recording and s.meta is not None and s.bag is not None:
        elapsed = (node._now() - s.meta["start_time_ns"]) * 1e-9
        counts = dict(s.bag.counts)
        vals.update(episode=s.meta.get("episode", ""), episode_s=round(elapsed, 1), messages=sum(counts.values()))
        message = f"recording episode {s.meta.get('episode')} ({elapsed:.0f} s, {sum(counts.values())} messages)"
        silent = node.silent_topics()
        if silent and elapsed > SILENT_AFTER_S:
            level, message = _warn(level, message, f"no message on {silent} in this episode (required_topics, "
                                                          "camera_topics: a camera or driver off, or a wrong name?)")
        lost = node.lost_in_episode()
        if lost:
            level, message = _warn(level, message, f"messages lost in this episode: {lost}")
    elif node.last_start_error and "min_free_mb" in node.last_start_error and free_mb >= float(node.p.min_free_mb):
        level, message = _warn(level, message, f"the last start was refused ({node.last_start_error}); now {free_mb:.0f} "
                                               f"MB free, enough for min_free_mb = {node.p.min_free_mb:g}: the next "
                                               "start can go ahead")  # (space freed, or the threshold set back: the
        # ERROR stayed until the next start, a two-robot walkthrough)
    elif node.last_start_error:  # (a refused start reached only the log and the service's answer: a review)
        level, message = DiagnosticStatus.ERROR, f"the last start was refused: {node.last_start_error}"
    elif last.get("status") == "failed":
        error = str(last.get("error", "?"))
        level, message = DiagnosticStatus.ERROR, (f"the last episode ({last.get('episode')}) failed: {error}" + (
            "" if "recover" in error else f" (python -m rtc_ros.recording.recover {node.output_dir} repairs its "
                                           "bag; --force without its sidecar)"))
    elif last.get("status") in CUT_SHORT:
        level, message = _warn(level, message, f"the last episode ({last.get('episode')}) ended "
                                                      f"{last['status']}" + (f": {last['error']}" if last.get("error")
                                                                             else ""))
    low = 2 * float(node.p.stop_free_mb)
    low = low if s.recording else max(float(node.p.min_free_mb), low)  # (idle: the next start is refused below it)
    if free_mb < 0:  # (missing or unmounted: a bag written into a removed directory is lost at its close)
        level, message = _warn(level, message, f"output_dir {node.output_dir} is missing or unreadable")
    elif free_mb < low:
        level, message = _warn(level, message, f"only {free_mb:.0f} MB free in {node.output_dir} (a running "
                                                      f"episode closes below stop_free_mb = {node.p.stop_free_mb:g}, a "
                                                      f"start is refused below min_free_mb = {node.p.min_free_mb:g})")
    return with_clock_check(node, level, message, vals)
