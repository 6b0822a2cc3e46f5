"""``python -m rtc_ros.report BAG_DIR --out DIR``: score and compare recorded episodes.

Reads every rosbag2 bag under BAG_DIR (the recorder's per-episode bags or ``ros2 bag record``
bags, simulated or real), computes per-episode metrics (:mod:`rtc_ros.report.metrics`), groups them
by (method, injected latency) and writes into DIR:

* ``episodes.csv``: one row per episode; ``summary.csv``: one row per (method, latency)
* ``joint_profile.png``, ``progress_vs_time.png``, ``throughput_vs_latency.png``,
  ``delay_forecast_vs_consumed.png`` (see :mod:`rtc_ros.report.plots`)

It prints a table and, as its final line, a JSON summary ``{"episodes": N, "groups": [...], ...}``.
Episodes cut short (sidecar status ``recovered``: repaired after a recorder crash, the end is the last message
that reached the disk; ``interrupted``, ``aborted``, ``stopped_low_disk``, ``unterminated``) and dry runs (nothing
reached the robot) are rows of ``episodes.csv`` (columns ``status``, ``dry``) and listed in ``left_out`` (the
recovered ones also in ``recovered_episodes``), but left out of ``summary.csv`` unless ``--include-cut-short``
(before 2026-12-08 only ``recovered`` ones were, ``--include-recovered``); unfinished
bags that were not repaired yet are not readable and are listed in ``unrecovered_bags`` (repair them
with ``python -m rtc_ros.recording.recover``).
Exit status: 0 on success, 2 when no episode could be read.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from rtc_ros.recording.episode import TopicRoles, find_bags, load_episodes
from rtc_ros.recording.recover import find_unfinished_under
from rtc_ros.report.metrics import SUMMARY_FIELDS, EpisodeMetrics, episode_metrics, summarize
from rtc_ros.report.plots import (
    Rep,
    make_rep,
    plot_delays,
    plot_joint_profile,
    plot_progress,
    plot_throughput,
    progress_curve,
    representatives,
)

log = logging.getLogger(__name__)


def _fmt(v: Any, width: int) -> str:
    if isinstance(v, float):
        s = "-" if math.isnan(v) else (f"{v:.3g}" if abs(v) >= 1000 or abs(v) < 0.01 and v != 0 else f"{v:.2f}")
    else:
        s = str(v)
    return s.rjust(width)


TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("method", "method"), ("extra_latency_ms", "extra_latency_ms"), ("n", "n"), ("n_verdict", "n_verdict"),
    ("success_rate", "success"),
    ("score_mean", "score"), ("duration_mean_s", "dur_s"), ("throughput_mean", "score/min"),
    ("standstill_mean_s", "still_s"), ("d_mean", "d"), ("consumed_mean", "consumed"),
    ("splice_acc_mean", "splice_acc"), ("splice_jerk_mean", "splice_jerk"), ("protective_stops_mean", "stops"),
)


def format_table(summary: list[dict[str, Any]]) -> str:
    """Fixed-width text table of the summary rows."""
    widths = [max(len(h), 10 if k != "method" else 12) for k, h in TABLE_COLUMNS]
    lines = [" ".join(h.rjust(w) for (_, h), w in zip(TABLE_COLUMNS, widths))]
    for row in summary:
        lines.append(" ".join(_fmt(row[k], w) for (k, _), w in zip(TABLE_COLUMNS, widths)))
    return "\n".join(lines)


#: sidecar statuses of episodes cut short (their duration, throughput and verdict are truncated): not averaged
CUT_SHORT = ("recovered", "interrupted", "aborted", "stopped_low_disk", "unterminated")


def left_out_why(r: EpisodeMetrics) -> str | None:
    """Why episode ``r`` is not averaged into ``summary.csv`` (cut short, a dry run), or None."""
    return f"status {r.status}" if r.status in CUT_SHORT else "dry run" if r.dry else None


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):  # (inf too: a bare Infinity is no JSON -- an audit)
        return None
    return v


def build_report(
    bag_dir: str | Path,
    out: str | Path,
    roles: TopicRoles | None = None,
    joint: str | int | None = None,
    extra_latency_ms: float | None = None,
    window_s: float = 4.0,
    still_eps: float = 1e-3,
    plots: bool = True,
    include_cut_short: bool = False,
) -> dict[str, Any]:
    """Compute the report; write CSVs and plots into ``out``; return the JSON summary dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unrecovered = [str(b) for b in find_unfinished_under(bag_dir)]
    bags = [b for b in find_bags(bag_dir) if str(b) not in unrecovered]  # e.g. a sidecar still 'recording'
    rows: list[EpisodeMetrics] = []
    curves: dict[float, dict[str, list[Any]]] = {}
    candidates: dict[tuple[str, float], Rep] = {}
    skipped: list[str] = []
    no_latency: list[str] = []
    for bag in bags:
        try:
            episodes = load_episodes(bag, roles)
        except Exception as exc:  # noqa: BLE001 - one broken bag must not stop the report
            log.error("skipping unreadable bag %s: %s", bag, exc)
            skipped.append(str(bag))
            continue
        for ep in episodes:
            if not ep.latency_known:
                no_latency.append(ep.name if ep.name == bag.name else f"{bag.name}/{ep.name}")
            try:
                m, der = episode_metrics(ep, still_eps=still_eps)
            except Exception as exc:  # noqa: BLE001 - one bad episode must not stop the report (an audit: dt 0)
                log.error("skipping episode %s of %s: %s", ep.name, bag, exc)
                skipped.append(f"{bag}#{ep.name}")
                continue
            rows.append(m)
            if left_out_why(m) is not None and not include_cut_short:  # (in episodes.csv, not in the plots: a review)
                continue
            curves.setdefault(m.extra_latency_ms, {}).setdefault(m.method, []).append(progress_curve(ep, m.score))
            if der is not None and der.q.shape[0] > 3 and (m.method, m.extra_latency_ms) not in candidates:
                candidates[(m.method, m.extra_latency_ms)] = make_rep(ep, m, der)
    # an episode cut short (a recovered one ends at the last message that reached the disk, not at a stop) has its
    # duration, throughput and verdict truncated, and a dry run's commands never reached the robot: not averaged
    summary = summarize([r for r in rows if include_cut_short or left_out_why(r) is None])
    with open(out / "episodes.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(EpisodeMetrics.__dataclass_fields__))
        w.writeheader()
        for r in rows:
            w.writerow(r.as_dict())
    with open(out / "summary.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(SUMMARY_FIELDS))
        w.writeheader()
        for s in summary:
            w.writerow(s)
    written: list[str] = []
    if plots and rows:
        lat, reps = representatives(candidates, extra_latency_ms)
        for p in (
            plot_joint_profile(reps, out / "joint_profile.png", joint=joint, window_s=window_s,
                               title=f"commanded trajectory at +{lat:g} ms" if lat is not None else ""),
            plot_progress(curves, out / "progress_vs_time.png"),
            plot_throughput(summary, out / "throughput_vs_latency.png"),
            plot_delays(summary, out / "delay_forecast_vs_consumed.png"),
        ):
            if p is not None:
                written.append(str(p))
    if no_latency:
        log.warning("%d of %d episodes have no injected latency in their metadata (extra_latency_ms) and are "
                    "grouped at +0 ms: %s", len(no_latency), len(rows), ", ".join(no_latency[:5])
                    + (" ..." if len(no_latency) > 5 else ""))
    for b in unrecovered:
        log.warning("unfinished bag %s (recorder killed?) is not in the report: "
                    "repair it with python -m rtc_ros.recording.recover %s", b, b)
    return {
        "episodes": len(rows),
        "bags": len(bags),
        "skipped_bags": skipped,
        "recovered_episodes": [r.episode for r in rows if r.status == "recovered"],
        "left_out": {r.episode: why for r in rows if (why := left_out_why(r)) is not None and not include_cut_short},
        "unrecovered_bags": unrecovered,
        "latency_unknown": no_latency,
        "out": str(out),
        "plots": written,
        "groups": [{k: _jsonable(v) for k, v in s.items()} for s in summary],
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m rtc_ros.report``."""
    ap = argparse.ArgumentParser(prog="python -m rtc_ros.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("bag_dir", type=Path, help="directory of episode bags (searched recursively)")
    ap.add_argument("--out", type=Path, required=True, help="output directory for CSVs and plots")
    ap.add_argument("--joint", default=None, help="joint (name or index) for joint_profile.png")
    ap.add_argument("--extra-latency-ms", "--latency", dest="extra_latency_ms", type=float, default=None,
                    help="injected latency (ms) of the group shown in joint_profile.png")
    ap.add_argument("--window", type=float, default=4.0, help="seconds shown in joint_profile.png")
    ap.add_argument("--still-eps", type=float, default=1e-3,
                    help="speed below which the arm counts as standing still (bags without executor state)")
    ap.add_argument("--command-topic", action="append", default=None,
                    help="commanded-position topic(s) when the bag has no rtc/executor_state")
    ap.add_argument("--joint-states-topic", default="joint_states")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--include-cut-short", "--include-recovered", dest="include_cut_short", action="store_true",
                    help="average episodes cut short (recovered after a recorder crash, interrupted, aborted, stopped "
                         "for low disk, unterminated) and dry runs into summary.csv too")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.bag_dir.exists():
        print(f"error: {args.bag_dir} does not exist", file=sys.stderr)
        return 2
    roles = TopicRoles(joint_states=args.joint_states_topic)
    if args.command_topic:
        roles.commands = tuple(args.command_topic)
    try:
        result = build_report(args.bag_dir, args.out, roles, joint=args.joint, extra_latency_ms=args.extra_latency_ms,
                              window_s=args.window, still_eps=args.still_eps, plots=not args.no_plots,
                              include_cut_short=args.include_cut_short)
    except ValueError as exc:  # (e.g. a --joint the bags do not have: a traceback before)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result["groups"]:
        print(format_table(result["groups"]))
    elif result["episodes"]:
        print("no episode for the summary (all were cut short or dry runs: --include-cut-short)", file=sys.stderr)
    else:
        print(f"no episodes found under {args.bag_dir}", file=sys.stderr)
    if result["left_out"]:
        print(f"{len(result['left_out'])} episode(s) in episodes.csv but not in the summary (--include-cut-short): "
              + ", ".join(f"{e} ({why})" for e, why in result["left_out"].items()))
    elif result["recovered_episodes"]:
        print(f"{len(result['recovered_episodes'])} episode(s) recovered after a recorder crash, in the summary: "
              + ", ".join(result["recovered_episodes"]))
    if result["unrecovered_bags"]:
        print(f"{len(result['unrecovered_bags'])} unfinished bag(s) not read; repair with "
              f"python -m rtc_ros.recording.recover: {', '.join(result['unrecovered_bags'])}", file=sys.stderr)
    print(f"wrote {args.out / 'episodes.csv'}, {args.out / 'summary.csv'}"
          + (", " + ", ".join(Path(p).name for p in result["plots"]) if result["plots"] else ""))
    print(json.dumps(result, separators=(",", ":")))
    return 0 if result["episodes"] else 2
