"""rtc_ros.experiments.soak's measures, ROS-free: the memory summary's slope and the start-up chunks' distance from
the hold (the executor's start_gap measure) on hand-made traces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtc_ros.experiments.soak import episode_start_gaps, memory_summary
from rtc_ros.recording.episode_types import ChunkRecord, Episode, ExecutorTrace
from rtc_ros.runtime.contract import ChunkMeta


def test_memory_summary_slope_is_over_the_second_half() -> None:
    t = np.arange(0, 3600, 60.0)
    rss = np.where(t < 1800, 1000 + t, 2800 + 0.5 * (t - 1800))  # warm-up growth, then 0.5 kB/s = 1800 kB/h
    rows = [(float(a), "rtc_ros.nodes.chunk_executor", int(b), 15, 18) for a, b in zip(t, rss)]
    rows += [(float(a), "rtc_ros.sim.node", 5000, 20 + (a > 100), 18) for a in t]
    m = memory_summary(rows)
    ex = m["rtc_ros.nodes.chunk_executor"]
    assert ex["rss_kb_first"] == 1000 and ex["rss_kb_last"] == rss[-1] and ex["samples"] == len(t)
    assert ex["rss_kb_per_hour_second_half"] == pytest.approx(1800, rel=1e-6)
    assert m["rtc_ros.sim.node"]["rss_kb_per_hour_second_half"] == 0 and m["rtc_ros.sim.node"]["threads_max"] == 21


def test_start_up_gaps_are_the_first_action_against_the_previous_command() -> None:
    names = ["a_waist", "a_gripper", "b_waist"]
    q = np.zeros((6, 3))
    q[:2] = [0.1, 0.5, -0.2]  # held
    ex = ExecutorTrace(t=np.arange(6) * 0.02, q=q, names=names, step=np.arange(6),
                       seq=np.array([-1, -1, 0, 0, 1, 1]), takeover=np.array([0, 0, 2, 2, 4, 4]),
                       consumed=np.array([0, 0, 0, 0, 3, 3]), hold=np.zeros(6, bool), dry=np.zeros(6, bool))
    first = np.array([[0.9, 0.3, 0.35]])  # in the chunk's own order: b_waist, a_gripper, a_waist
    chunks = [ChunkRecord(0.0, 0.0, ChunkMeta(0, 2, 0, 0, "rtc"), np.repeat(first, 4, axis=0),
                          ["b_waist", "a_gripper", "a_waist"]),
              ChunkRecord(0.0, 0.0, ChunkMeta(1, 1, 3, 0, "rtc"), np.full((4, 3), 9.0), names)]  # a switch
    ep = Episode("e", Path("."), {}, 0, 1, executor=ex, chunks=chunks)
    assert episode_start_gaps(ep) == pytest.approx([1.1])  # b_waist 0.9 - (-0.2); the gripper's 0.2 not counted
