"""The README's main demo: RTC on the simulated bimanual arms with +100 ms injected latency.

``python -m rtc_ros.experiments.demo [--episodes 3] [--method rtc] [--extra-latency-ms 100] [--out DIR]``

Brings up ``bimanual_sim`` (MuJoCo, wall-clock real time), ``chunk_executor``, ``policy_inference``
(the shipped policy ``policies/bimanual_cnn_h50.yaml``) and ``episode_recorder`` as plain Python
processes (no ROS install, no ``ros2``/``launch``), runs a few cube-transfer episodes, records each
one as a rosbag2/MCAP bag, then prints the report's metrics table and writes its plots
(``DIR/report/*.png``). About 45 s on 2 CPU cores for 3 episodes (README: measured runs), plus the nodes' start-up. The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from rtc_ros.experiments.runner import DEFAULT_CONFIG, DEFAULT_POLICY
from rtc_ros.experiments.sim_latency import run_protocol


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--method", default="rtc")
    ap.add_argument("--extra-latency-ms", "--latency-ms", dest="extra_latency_ms", type=float, default=100.0,
                    help="injected latency in ms (policy_inference's extra_latency_ms)")
    ap.add_argument("--out", default=None, help="run directory (default /tmp/rtc_demo_<time>)")
    ap.add_argument("--policy", default=str(DEFAULT_POLICY))
    ap.add_argument("--config", default=str(DEFAULT_CONFIG))
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    out = Path(args.out or f"/tmp/rtc_demo_{datetime.now():%Y%m%d_%H%M%S}")
    print(f"[demo] {args.method} with +{args.extra_latency_ms:g} ms injected latency, {args.episodes} episodes -> {out}",
          flush=True)
    res = run_protocol(out, [args.method], [args.extra_latency_ms], args.episodes, Path(args.policy), Path(args.config))
    plots = sorted(str(p) for p in (out / "report").glob("*.png"))
    wall = round(time.monotonic() - t0, 1)
    print(f"[demo] bags: {out / 'bags'}\n[demo] plots: " + ", ".join(plots) + f"\n[demo] wall time {wall} s", flush=True)
    print(json.dumps({"out": str(out), "wall_s": wall, "summary": res["summary"], "plots": plots,
                      "failures": res["failures"]}))
    return 0 if res["results"] and not res["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
