"""A long run of the main demo, watching the node processes: memory, threads, open files; and how far each start-up
chunk's first action is from the held arm (what ``max_start_gap`` refuses beyond).

``python -m rtc_ros.experiments.soak [--episodes 150] [--period-s 15] [--out DIR] [demo options...]``

Runs ``python -m rtc_ros.experiments.demo --episodes N --out DIR`` (the simulator, chunk_executor, policy_inference
and episode_recorder as processes, wall-clock real time) and samples ``/proc`` of every descendant process each
``--period-s`` seconds: resident memory (VmRSS), threads, open file descriptors. It prints, per node, the first and
last sample and the least-squares slope of RSS over the run's second half (after the allocators have warmed up), then
the start-up chunks' distances from the bags (:func:`start_up_gaps`), and JSON as its last line. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rtc_ros.recording.episode_types import Episode


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc/*/stat's parent field)."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            parent[int(d)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def _sample(pid: int) -> tuple[str, int, int, int] | None:
    """(module, RSS kB, threads, fds) of a ``python -m <module>`` process, None for others or when gone."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    if b"-m" not in argv or argv.index(b"-m") + 1 >= len(argv):
        return None
    module = argv[argv.index(b"-m") + 1].decode(errors="replace")
    field = {k: v.split()[0] for k, _, v in (ln.partition(":") for ln in status.splitlines()) if v.strip()}
    return module, int(field.get("VmRSS", 0)), int(field.get("Threads", 0)), fds


def memory_summary(rows: list[tuple[float, str, int, int, int]]) -> dict[str, dict[str, float]]:
    """Per module: first / last RSS (kB), its slope over the second half of the samples (kB per hour; least squares),
    the largest thread and file-descriptor counts. ``rows``: (t seconds, module, rss kB, threads, fds)."""
    out = {}
    for module in sorted({r[1] for r in rows}):
        mine = [r for r in rows if r[1] == module]
        t = np.array([r[0] for r in mine], dtype=np.float64)
        rss = np.array([r[2] for r in mine], dtype=np.float64)
        half = t >= t[0] + (t[-1] - t[0]) / 2
        slope = float(np.polyfit(t[half], rss[half], 1)[0] * 3600) if half.sum() >= 3 else float("nan")
        out[module] = {"samples": len(mine), "rss_kb_first": float(rss[0]), "rss_kb_last": float(rss[-1]),
                       "rss_kb_per_hour_second_half": round(slope, 1), "threads_max": max(r[3] for r in mine),
                       "fds_max": max(r[4] for r in mine), "span_s": round(float(t[-1] - t[0]), 1)}
    return out


def episode_start_gaps(ep: Episode) -> list[float]:
    """Each start-up chunk of the recorded episode ``ep`` (a takeover at index 0: ``consumed == 0``): the largest
    distance of its first action from the executor's previous command (the hold) over the joints not named
    ``*gripper`` (the executor's ``start_gap`` measure)."""
    ex, gaps = ep.executor, []
    if ex is None or len(ex) < 2:
        return gaps
    chunks = {c.meta.seq: c for c in ep.chunks if c.meta is not None}
    arm = np.array([not n.endswith("gripper") for n in ex.names])
    for i in range(1, len(ex)):
        if ex.seq[i] >= 0 and ex.seq[i] != ex.seq[i - 1] and ex.consumed[i] == 0 and int(ex.seq[i]) in chunks:
            c = chunks[int(ex.seq[i])]
            first = np.asarray(c.actions[0])[[c.names.index(n) for n in ex.names]]
            gaps.append(float(np.abs(first - ex.q[i - 1])[arm].max()))
    return gaps


def start_up_gaps(bags: Path) -> dict[str, float | int]:
    """:func:`episode_start_gaps` over every episode under ``bags`` (radians): count, median, p99, max."""
    from rtc_ros.recording.episode import iter_episodes

    g = np.array([x for ep in iter_episodes(bags) for x in episode_start_gaps(ep)])
    if not g.size:
        return {"n": 0}
    return {"n": int(g.size), "median": round(float(np.median(g)), 4), "p99": round(float(np.percentile(g, 99)), 4),
            "max": round(float(g.max()), 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=150)
    ap.add_argument("--period-s", type=float, default=15.0, help="seconds between /proc samples")
    ap.add_argument("--out", default=None, help="run directory (default /tmp/rtc_soak_<time>)")
    args, demo_args = ap.parse_known_args(argv)
    out = Path(args.out or f"/tmp/rtc_soak_{datetime.now():%Y%m%d_%H%M%S}")
    cmd = [sys.executable, "-m", "rtc_ros.experiments.demo", "--episodes", str(args.episodes), "--out", str(out),
           *demo_args]
    print(f"[soak] {' '.join(cmd[1:])}", flush=True)
    t0, rows = time.monotonic(), []
    demo = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True)
    reader.start()
    while demo.poll() is None:
        now = time.monotonic() - t0
        for pid in _children(demo.pid):
            s = _sample(pid)
            if s is not None and s[0].startswith(("rtc_ros.nodes.", "rtc_ros.sim.")):  # (not the report at the end)
                rows.append((now, *s))
        time.sleep(args.period_s)
    reader.join(timeout=5)
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    memory = memory_summary(rows) if rows else {}
    for module, m in memory.items():
        print(f"[soak] {module}: RSS {m['rss_kb_first'] / 1024:.1f} -> {m['rss_kb_last'] / 1024:.1f} MiB over "
              f"{m['span_s'] / 60:.1f} min, second half {m['rss_kb_per_hour_second_half'] / 1024:+.2f} MiB/h, "
              f"threads <= {m['threads_max']}, fds <= {m['fds_max']}")
    gaps = start_up_gaps(out / "bags") if (out / "bags").is_dir() else {"n": 0}
    print(f"[soak] start-up chunks: {gaps}")
    wall = round(time.monotonic() - t0, 1)
    print(json.dumps({"out": str(out), "episodes": args.episodes, "demo_rc": demo.returncode, "wall_s": wall,
                      "summary": result.get("summary"), "memory": memory, "start_up_gap_rad": gaps}))
    return 0 if demo.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
