"""The report on recordings an audit (2026-12-08) found it measured wrongly: an executor started paused (step -1
ticks: every row was then differenced as consecutive), a bag of commands only with a lost message or a silent
stretch, a protective stop's hold counted as waiting, the start-up chunk's ``consumed`` 0 averaged in, a dt estimate
of 0 that stopped the whole report, an infinite score in the JSON, and episodes cut short or dry runs averaged into
``summary.csv``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rtc_ros.recording.bag import BagWriter, write_sidecar
from rtc_ros.recording.cdr import JS, JT, STR, chunk_cdr, joint_state_cdr, string_cdr
from rtc_ros.recording.episode import load_episodes
from rtc_ros.recording.synthetic import write_synthetic_episode
from rtc_ros.report.cli import build_report
from rtc_ros.report.metrics import episode_metrics
from rtc_ros.runtime.contract import ChunkMeta, ExecutorReport

T0, DT, NAMES = 1_700_000_000 * 10**9, 0.02, ["j0", "j1"]


def _bag(root: Path, name: str, ticks=(), commands=(), control=(), meta=None, stamps=None, chunks=()) -> Path:
    """ticks: (step, seq, takeover, consumed, hold, paused, q) per executor tick k at (k + 1) DT; commands: (t, q);
    chunks: (t, ChunkMeta)."""
    bag = BagWriter(root / name)
    bag.open()
    for topic, ty in (("/rtc/executor_state", JS), ("/joint_commands", JS), ("/rtc/episode", STR), ("/rtc/chunk", JT)):
        bag.add_topic(topic, ty)
    msgs = [(T0 + int(t * 1e9), "/rtc/chunk", chunk_cdr(T0 + int(t * 1e9), NAMES, np.zeros((8, 2)), DT, cm.encode()))
            for t, cm in chunks]
    for k, (step, seq, tk, cons, hold, paused, q) in enumerate(ticks):
        ns = T0 + int((k + 1) * DT * 1e9)
        st = ExecutorReport(step, seq, tk, cons, hold, paused=paused).encode()
        msgs.append((ns, "/rtc/executor_state", joint_state_cdr(ns if stamps is None else stamps[k], NAMES,
                                                                  np.asarray(q, float), frame_id=st)))
    msgs += [(T0 + int(t * 1e9), "/joint_commands", joint_state_cdr(T0 + int(t * 1e9), NAMES, np.asarray(q, float)))
             for t, q in commands]
    msgs += [(T0 + int(t * 1e9), "/rtc/episode", string_cdr(json.dumps(c))) for t, c in control]
    for ns, topic, data in sorted(msgs, key=lambda m: m[0]):
        bag.write(topic, ns, data)
    end = max(m[0] for m in msgs) + 1
    if meta is False:
        bag.close(None)
        return bag.path
    m = {"episode": name, "status": "completed", "method": "rtc", "extra_latency_ms": 0.0, "start_time_ns": T0,
         "stop_time_ns": end, "duration_s": (end - T0) * 1e-9, "success": True, "score": 1.0, "dt": DT, **(meta or {})}
    bag.close(m)
    write_sidecar(bag.path, m)
    return bag.path


def _metrics(path: Path):
    return episode_metrics(load_episodes(path)[0])[0]


def _moving(paused_prefix: bool) -> list:
    """A joint at 1 rad/s with a protective stop (50 paused ticks, the step standing still) in the middle."""
    rows = [(-1, -1, -1, 0, True, True, [0.0, 0.5])] * 10 if paused_prefix else []
    seq = 0
    for step in range(200):
        seq += step and step % 25 == 0
        q = [step * DT, 0.5]
        rows.append((step, seq, 25 * (step // 25), 3, False, False, q))
        if step == 99:
            rows += [(99, seq, 75, 3, True, True, q)] * 50
    return rows


def test_ticks_before_the_first_step_and_a_stop_s_hold(tmp_path: Path) -> None:
    for prefix in (False, True):  # (with the step -1 ticks the stop's hold was differenced: acc 50, jerk 2500)
        m = _metrics(_bag(tmp_path, f"ep{int(prefix)}", ticks=_moving(prefix)))
        assert m.acc_max < 1e-6 and m.jerk_max < 1e-6 and m.splice_jerk < 1e-6, (prefix, m)
        assert m.standstill_s == 0.0  # the stop's 50 held ticks and the arming wait are paused: no wait for a chunk
    held = _moving(False)
    held[150:153] = [(s, q, t, c, True, False, qq) for s, q, t, c, _h, _p, qq in held[150:153]]  # waiting, unpaused
    assert abs(_metrics(_bag(tmp_path, "held", ticks=held)).standstill_s - 3 * DT) < 1e-9


def test_commands_only_a_lost_message_and_a_silent_stretch(tmp_path: Path) -> None:
    smooth = [((k + 1) * DT, [0.5 * np.sin(2 * np.pi * 0.3 * (k + 1) * DT), 0.0]) for k in range(300)]
    full = _metrics(_bag(tmp_path, "full", commands=smooth))
    lost = _metrics(_bag(tmp_path, "lost", commands=smooth[:120] + smooth[121:]))
    assert full.source == lost.source == "commands" and lost.jerk_max <= full.jerk_max * 1.01  # (709 for 3.3)
    still = smooth[:100] + [(t, [q[0] + 0.0, 0.0]) for t, q in smooth[200:]]  # nothing for 2 s, the arm held
    assert abs(_metrics(_bag(tmp_path, "still", commands=still)).standstill_s - 2.0) < 0.05


def test_the_start_up_chunk_is_no_measured_delay(tmp_path: Path) -> None:
    rows = [(-1, -1, -1, 0, True, False, [0.0, 0.0])] * 3  # waiting for the first chunk
    rows += [(k, 0 if k < 25 else 1, 0 if k < 25 else 25, 0 if k < 25 else 7, False, False, [k * DT, 0.0])
             for k in range(50)]
    chunks = [(0.01, ChunkMeta(0, 0, 6, 25, "rtc")), (0.4, ChunkMeta(1, 18, 6, 25, "rtc"))]
    ep = load_episodes(_bag(tmp_path, "startup", ticks=rows, chunks=chunks))[0]
    from rtc_ros.report.metrics import chunk_delays

    ex = ep.executor
    assert ex.paused.shape == ex.hold.shape  # the trace keeps the reports' paused flag
    assert {int(s): int(c) for s, c in zip(ex.seq, ex.consumed) if s >= 0} == {0: 0, 1: 7}
    forecast, consumed = chunk_delays(ep)  # seq 0 (from a hold, consumed 0 by convention) is no measured delay
    assert forecast.tolist() == [6.0] and consumed.tolist() == [7.0]


def test_a_bad_episode_does_not_stop_the_report_and_its_json_is_strict(tmp_path: Path) -> None:
    bags = tmp_path / "bags"
    for i in range(2):
        write_synthetic_episode(bags, f"ok{i}", "rtc", seed=i, task_steps=60)
    rows = [(k, 0, 0, 0, False, False, [k * DT, 0.0]) for k in range(20)]
    _bag(bags, "frozen", ticks=rows, stamps=[T0] * 20, meta={"dt": None})  # stamps standing still: dt 0 before
    _bag(bags, "inf", ticks=rows, meta={"score": 1e999})
    write_synthetic_episode(bags, "cut", "rtc", seed=9, task_steps=30)
    side = bags / "cut" / "cut.json"
    side.write_text(json.dumps({**json.loads(side.read_text()), "status": "interrupted"}))
    write_synthetic_episode(bags, "dry", "rtc", seed=5, task_steps=30, dry=True)
    res = build_report(bags, tmp_path / "out", plots=False)
    json.loads(json.dumps(res), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))  # no Infinity / NaN
    assert res["episodes"] == 6 and res["left_out"] == {"cut": "status interrupted", "dry": "dry run"}
    assert sum(g["n"] for g in res["groups"]) == 4
    assert "dry" in (tmp_path / "out" / "episodes.csv").read_text().splitlines()[0].split(",")
    assert sum(g["n"] for g in build_report(bags, tmp_path / "all", plots=False, include_cut_short=True)["groups"]) == 6


def test_an_episode_whose_metrics_fail_is_skipped_and_named(tmp_path: Path, monkeypatch) -> None:
    import rtc_ros.report.cli as cli

    for i in range(2):
        write_synthetic_episode(tmp_path / "bags", f"ok{i}", "rtc", seed=i, task_steps=40)
    real = cli.episode_metrics

    def failing(ep, **kw):
        if ep.name == "ok1":
            raise ValueError("broken")
        return real(ep, **kw)

    monkeypatch.setattr(cli, "episode_metrics", failing)
    res = cli.build_report(tmp_path / "bags", tmp_path / "out", plots=False)
    assert res["episodes"] == 1 and len(res["skipped_bags"]) == 1 and res["skipped_bags"][0].endswith("#ok1")


def test_a_session_start_whose_meta_is_no_object_keeps_its_episode(tmp_path: Path) -> None:
    control = [(0.01, {"cmd": "start", "meta": "pick the cube"}), (0.5, {"cmd": "stop", "success": True})]
    rows = [(k, 0, 0, 0, False, False, [k * DT, 0.0]) for k in range(30)]
    eps = load_episodes(_bag(tmp_path, "session", ticks=rows, control=control, meta=False))
    assert len(eps) == 1 and eps[0].meta.get("meta") == "pick the cube"


def test_a_joint_the_bags_do_not_have_is_an_error_not_a_traceback(tmp_path: Path, capsys) -> None:
    from rtc_ros.report.cli import main

    write_synthetic_episode(tmp_path / "bags", "ep", "rtc", seed=0, task_steps=60)
    assert main([str(tmp_path / "bags"), "--out", str(tmp_path / "out"), "--joint", "elbow"]) == 2
    assert "error: joint 'elbow' not among" in capsys.readouterr().err


def test_per_arm_command_topics_with_a_lost_message(tmp_path: Path) -> None:
    """A review: with one command topic per arm the topics are put on one grid, where a lost message is a repeated
    row, no gap in time: jerk_max 7415 for 1.0 until the grid said which rows are fresh."""
    from rtc_ros.recording.episode_types import Episode, Series, combine_series

    t = np.arange(300) * DT
    q = np.sin(t)[:, None] * np.ones((1, 3))
    kept = np.arange(300) != 150
    for lost in (False, True):
        topics = {"/left_controller/commands": Series(t=t[kept] if lost else t, q=q[kept] if lost else q, names=[]),
                  "/right_controller/commands": Series(t=t + 1e-6, q=q, names=[])}
        ep = Episode("e", tmp_path, {"dt": DT}, 0, int(300 * DT * 1e9))
        ep.command_topics, ep.commands = topics, combine_series(topics, sorted(topics), DT)
        m = episode_metrics(ep)[0]
        assert m.source == "commands" and m.jerk_max < 1.5 and m.acc_max < 1.5, (lost, m.jerk_max)
