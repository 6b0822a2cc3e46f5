"""Synthetic episode bags with known ground truth, for tests and report demos (ROS-free).

:func:`write_synthetic_episode` writes a bag exactly like the recorder would (sidecar, MCAP, topics
``/rtc/executor_state``, ``/rtc/chunk``, ``/joint_states``, ``/rtc/progress``, ``/rtc/episode``,
optionally ``/joint_commands`` and a camera) for a fake task in which progress advances only while
the arm moves. Methods behave like their namesakes at the level the report can see:

* ``rtc``: smooth splices, never holds.
* ``sync``: holds (``hold=1``, command frozen) ``d`` ticks after every ``s`` executed ones.
* ``naive``: a jump at every splice (the new chunk ignores the old one).

The joint state of step k is stamped 1 us before the executor's tick k (so a dataset puts it at step k, as
``policy_inference`` does). The messages are serialized by :mod:`rtc_ros.recording.cdr` (byte-identical to the wire).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtc_ros.runtime.contract import ChunkMeta, ExecutorReport
from rtc_ros.recording.bag import BagWriter, write_sidecar
from rtc_ros.recording.cdr import (  # noqa: F401 (re-exported: tests build bags with them)
    F64A,
    I32,
    IMG,
    JS,
    JT,
    STR,
    chunk_cdr,
    float64_array_cdr,
    image_cdr,
    int32_cdr,
    joint_state_cdr,
    string_cdr,
)


@dataclass
class SyntheticTruth:
    """What the synthetic episode did (for assertions)."""

    steps: int
    hold_steps: int
    n_chunks: int
    splice_steps: list[int]
    duration_s: float
    final_progress: int


def reference(t: np.ndarray, m: int) -> np.ndarray:
    """Smooth reference trajectory ``(T, m)``: joint j = 0.5 sin(2 pi f_j t) + 0.1 j."""
    f = 0.3 + 0.1 * np.arange(m)
    return 0.5 * np.sin(2 * math.pi * f[None, :] * t[:, None]) + 0.1 * np.arange(m)[None, :]


def write_synthetic_episode(
    root: str | Path,
    name: str,
    method: str = "rtc",
    extra_latency_ms: float = 0.0,
    seed: int = 0,
    task_steps: int = 400,
    stages: int = 5,
    m: int = 3,
    horizon: int = 50,
    s: int = 25,
    dt: float = 0.02,
    jump: float = 0.05,
    with_executor: bool = True,
    with_chunks: bool = True,
    with_progress: bool = True,
    with_commands: bool = False,
    with_sidecar: bool = True,
    with_images: bool = False,
    control_messages: bool = True,
    score: float | None = None,
    success: bool | None = None,
    t0_ns: int = 1_700_000_000 * 10**9,
    dry: bool = False,
) -> SyntheticTruth:
    """Write one synthetic episode bag ``root/name`` (see module docstring); return the truth.

    The task needs ``task_steps`` moving ticks; progress rises by one every ``task_steps/stages``
    moving ticks. ``d = 6 + round(extra_latency_ms / 20)`` (the paper's real-robot numbers). ``dry``: the
    executor reports say dry run (``dry=1``).
    """
    rng = np.random.default_rng(seed)
    names = [f"joint_{j}" for j in range(m)]
    d = 6 + int(round(extra_latency_ms / (dt * 1000)))
    bag = BagWriter(Path(root) / name, flush_period_s=0.5)
    bag.open()
    topics = {"/rtc/executor_state": JS, "/rtc/chunk": JT, "/joint_states": JS, "/rtc/progress": I32,
              "/rtc/episode": STR, "/joint_commands": JS, "/camera/image_raw": IMG}
    for tp, ty in topics.items():
        bag.add_topic(tp, ty)
    # executed trajectory
    moving = 0
    step = 0
    seq = -1
    offset = np.zeros(m)
    hold_steps = 0
    splices: list[int] = []
    rows: list[tuple[int, int, int, int, bool, np.ndarray]] = []
    chunk_rows: list[tuple[int, ChunkMeta, np.ndarray]] = []
    q_prev = reference(np.zeros(1), m)[0]
    since_switch = 0
    takeover = 0
    consumed = 0
    while moving < task_steps:
        hold = False
        if since_switch == 0 or since_switch >= s:
            # a new chunk takes over now (sync: after holding d ticks)
            seq += 1
            t_obs = max(0, step - d)
            fc = d
            cons = d + (1 if rng.random() < 0.2 else 0)
            if method == "sync" and seq > 0:
                for _ in range(d):
                    rows.append((step, seq - 1, takeover, consumed, True, q_prev.copy()))
                    step += 1
                    hold_steps += 1
            if method == "naive" and seq > 0:
                offset = offset + rng.choice([-1.0, 1.0], size=m) * jump
            takeover, consumed = step, cons
            tq = (moving + np.arange(horizon)) * dt
            chunk = reference(tq, m) + offset
            chunk_rows.append((max(0, step - 1), ChunkMeta(seq, t_obs, fc, s, method), chunk))
            if seq > 0:
                splices.append(step)
            since_switch = 0
        q = reference(np.array([moving * dt]), m)[0] + offset
        rows.append((step, seq, takeover, consumed, hold, q))
        q_prev = q
        step += 1
        moving += 1
        since_switch += 1
    # write messages in time order
    per_stage = task_steps / stages
    progress = 0
    moving = 0
    start_ns = t0_ns
    if control_messages:
        bag.write("/rtc/episode", start_ns, string_cdr(json.dumps({"cmd": "start", "meta": {"method": method}})))
    chunk_iter = iter(chunk_rows)
    next_chunk = next(chunk_iter, None)
    if with_progress:
        bag.write("/rtc/progress", start_ns + 1, int32_cdr(0))
    for step_i, seq_i, tk, cons, hold, q in rows:
        ns = start_ns + int((step_i + 1) * dt * 1e9)
        while with_chunks and next_chunk is not None and next_chunk[0] <= step_i:
            cns = start_ns + int((next_chunk[0] + 0.5) * dt * 1e9)
            bag.write("/rtc/chunk", cns, chunk_cdr(cns - 10**7, names, next_chunk[2], dt, next_chunk[1].encode()))
            next_chunk = next(chunk_iter, None)
        if with_executor:
            st = ExecutorReport(step_i, seq_i, tk, cons, hold, dry=dry)
            bag.write("/rtc/executor_state", ns, joint_state_cdr(ns, names, q, frame_id=st.encode()))
        if with_commands:
            bag.write("/joint_commands", ns + 1000, joint_state_cdr(ns, names, q))
        # (the state step k's command reacts to: stamped 1 us before its tick, as policy_inference places it)
        bag.write("/joint_states", ns + 2000, joint_state_cdr(ns - 1000, names, q - 0.01, np.zeros(m)))
        if with_images and step_i % 5 == 0:
            img = np.full((12, 16, 3), (step_i * 3) % 256, dtype=np.uint8)
            bag.write("/camera/image_raw", ns + 3000, image_cdr(ns, img))
        if not hold:
            moving += 1
            new_p = int(moving // per_stage)
            if with_progress and new_p != progress:
                progress = new_p
                bag.write("/rtc/progress", ns + 4000, int32_cdr(progress))
        bag.maybe_flush()
    progress = int(moving // per_stage)
    end_ns = start_ns + int((len(rows) + 1) * dt * 1e9)
    final_score = float(progress) if score is None else float(score)
    final_success = (progress >= stages) if success is None else bool(success)
    if control_messages:
        stop = {"cmd": "stop", "success": final_success, "score": final_score}
        bag.write("/rtc/episode", end_ns, string_cdr(json.dumps(stop)))
    duration = (end_ns - start_ns) * 1e-9
    meta: dict[str, Any] = {
        "episode": name, "status": "completed", "method": method, "extra_latency_ms": extra_latency_ms,
        "start_time_ns": start_ns, "stop_time_ns": end_ns, "duration_s": duration,
        "success": final_success, "score": final_score, "dt": dt,
        "rtc": {"horizon": horizon, "s_min": s, "beta": 5.0, "n_steps": 5},
    }
    bag.close(meta if with_sidecar else None)
    if with_sidecar:
        write_sidecar(bag.path, meta)
    return SyntheticTruth(steps=len(rows), hold_steps=hold_steps, n_chunks=len(chunk_rows), splice_steps=splices,
                          duration_s=duration, final_progress=progress)
