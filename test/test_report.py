"""``python -m rtc_ros.report``: metrics on synthetic bags with known ground truth, CLI outputs."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rtc_ros.recording.episode import Series, load_episodes
from rtc_ros.recording.synthetic import write_synthetic_episode
from rtc_ros.report.cli import build_report
from rtc_ros.report.metrics import derivatives, episode_metrics, splice_smoothness

REPO = Path(__file__).resolve().parents[1]
DT = 0.02


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """3 methods x 2 latencies x 2 episodes, plus a 'real robot' bag with commands only."""
    root = tmp_path_factory.mktemp("bags")
    truth: dict[str, object] = {}
    i = 0
    for method in ("rtc", "sync", "naive"):
        for lat in (0.0, 200.0):
            for k in range(2):
                name = f"episode_{i:04d}"
                truth[name] = write_synthetic_episode(root, name, method, lat, seed=i, task_steps=300)
                i += 1
    return root, truth


def test_derivatives_exact_and_gaps() -> None:
    t = np.arange(10) * DT
    q = np.stack([t**2, 3 * t], axis=1)
    der = derivatives(Series(t=t, q=q, names=["a", "b"]), DT)
    assert np.allclose(der.acc[1:-1, 0], 2.0) and np.allclose(der.acc[1:-1, 1], 0.0, atol=1e-9)
    assert np.allclose(der.jerk[1:-2], 0.0, atol=1e-6)
    assert np.isnan(der.acc[0]).all() and np.isnan(der.jerk[-2:]).all()
    # a lost message (step 5 missing): stencils across the gap are NaN, not huge
    steps = np.array([0, 1, 2, 3, 4, 6, 7, 8, 9, 10])
    der = derivatives(Series(t=t, q=q, names=["a", "b"]), DT, steps)
    assert np.isnan(der.acc[4]).all() and np.isnan(der.acc[5]).all() and np.isfinite(der.acc[3]).all()


def test_splice_smoothness_of_a_jump() -> None:
    q = np.zeros((20, 1))
    q[10:] = 0.1  # a 0.1 jump between rows 9 and 10: the new chunk takes over at row 10
    der = derivatives(Series(t=np.arange(20) * DT, q=q, names=["a"]), DT)
    acc, jerk = splice_smoothness(der, np.array([10]))
    assert acc == pytest.approx(0.1 / DT**2) and jerk == pytest.approx(2 * 0.1 / DT**3)
    acc0, _ = splice_smoothness(der, np.array([5]))
    assert acc0 == 0.0


def test_episode_metrics_ground_truth(campaign: tuple[Path, dict[str, object]]) -> None:
    root, truth = campaign
    for name, tr in truth.items():
        (ep,) = load_episodes(root / name)
        m, der = episode_metrics(ep)
        assert m.source == "executor" and der is not None
        assert m.dt == pytest.approx(DT)
        assert m.standstill_s == pytest.approx(tr.hold_steps * DT)  # type: ignore[attr-defined]
        assert m.n_splices == len(tr.splice_steps)  # type: ignore[attr-defined]
        assert m.d == pytest.approx(6 + ep.extra_latency_ms / 20)
        assert m.d <= m.consumed <= m.d + 1
        assert m.score == 5 and m.success == 1.0
        assert m.throughput == pytest.approx(5 / (tr.duration_s / 60))  # type: ignore[attr-defined]
        if ep.method == "naive":
            assert m.splice_jerk > 100 * 15.0  # every splice jumps
        if ep.method == "rtc":
            assert m.splice_jerk < 50.0 and m.standstill_s == 0.0


def test_cli_outputs(campaign: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    root, _ = campaign
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "rtc_ros.report", str(root), "--out", str(out)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["episodes"] == 12 and len(summary["groups"]) == 6
    assert "method" in lines[0] and "score/min" in lines[0] and len(lines) >= 8
    for name in ("joint_profile.png", "progress_vs_time.png", "throughput_vs_latency.png",
                 "delay_forecast_vs_consumed.png"):
        assert (out / name).stat().st_size > 10_000, name
    with open(out / "episodes.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and {r["method"] for r in rows} == {"rtc", "sync", "naive"}
    with open(out / "summary.csv") as fh:
        groups = {(r["method"], float(r["extra_latency_ms"])): r for r in csv.DictReader(fh)}
    # sync waits d ticks per chunk: more standstill and lower throughput at +200 ms; rtc is flat
    assert float(groups[("sync", 200.0)]["standstill_mean_s"]) > float(groups[("sync", 0.0)]["standstill_mean_s"]) > 0
    rtc_flat = float(groups[("rtc", 0.0)]["throughput_mean"])
    assert float(groups[("rtc", 200.0)]["throughput_mean"]) == pytest.approx(rtc_flat)
    assert float(groups[("rtc", 200.0)]["throughput_mean"]) > float(groups[("sync", 200.0)]["throughput_mean"])
    assert float(groups[("naive", 0.0)]["splice_jerk_mean"]) > 10 * float(groups[("rtc", 0.0)]["splice_jerk_mean"])
    by_group = {(g["method"], g["extra_latency_ms"]): g for g in summary["groups"]}
    assert by_group[("sync", 200.0)]["d_mean"] == pytest.approx(16.0)


def test_degrades_without_rtc_topics(tmp_path: Path) -> None:
    """A real robot's bag: commands + joint states + operator score only (no executor, chunks, progress)."""
    truth = write_synthetic_episode(tmp_path, "episode_0000", "sync", 100.0, seed=1, task_steps=200,
                                    with_executor=False,
                            with_chunks=False, with_progress=False, with_commands=True, score=2.0, success=False)
    (ep,) = load_episodes(tmp_path / "episode_0000")
    assert ep.executor is None and not ep.chunks and ep.progress is None and ep.commands is not None
    m, _ = episode_metrics(ep)
    assert m.source == "commands" and m.score == 2.0 and m.success == 0.0
    assert math.isnan(m.protective_stops)  # not reported: unknown, not 0
    assert math.isnan(m.splice_jerk) and math.isnan(m.d)
    # standstill from the frozen command (speed < still_eps): exactly the ticks sync held
    assert truth.hold_steps > 0 and m.standstill_s == pytest.approx(truth.hold_steps * DT)
    res = build_report(tmp_path, tmp_path / "out")
    assert res["episodes"] == 1 and res["groups"][0]["splice_jerk_mean"] is None
    assert (tmp_path / "out" / "progress_vs_time.png").is_file()


def test_ros2_bag_record_session_split(tmp_path: Path) -> None:
    """A bag without sidecar (``ros2 bag record``) is split into episodes by rtc/episode commands."""
    write_synthetic_episode(tmp_path, "session", "rtc", 0.0, seed=2, task_steps=150, with_sidecar=False)
    res = build_report(tmp_path, tmp_path / "out", plots=False)
    assert res["episodes"] == 1 and res["groups"][0]["method"] == "rtc" and res["groups"][0]["score_mean"] == 5.0


def test_empty_directory_exit_code(tmp_path: Path) -> None:
    from rtc_ros.report.cli import main

    assert main([str(tmp_path), "--out", str(tmp_path / "o")]) == 2


def test_success_and_score_fall_back_to_sim_topics(tmp_path: Path) -> None:
    """No operator verdict: success from the simulator's ``sim/status``, score from ``rtc/progress``."""
    from rtc_ros.recording.bag import BagWriter, write_sidecar
    from rtc_ros.recording.synthetic import int32_cdr, string_cdr

    bag = BagWriter(tmp_path / "episode_0000")
    bag.open()
    bag.add_topic("/rtc/progress", "std_msgs/msg/Int32")
    bag.add_topic("/sim/status", "std_msgs/msg/String")
    t0 = 10**18
    for i, p in enumerate([0, 1, 3, 4]):
        bag.write("/rtc/progress", t0 + i * 10**9, int32_cdr(p))
    bag.write("/sim/status", t0 + 1, string_cdr(json.dumps({"state": "running", "success": False})))
    bag.write("/sim/status", t0 + 3 * 10**9, string_cdr(json.dumps({"state": "done", "success": True,
                                                                     "protective_stops": 2})))
    meta = {"method": "rtc", "start_time_ns": t0, "stop_time_ns": t0 + 4 * 10**9}
    bag.close(meta)
    write_sidecar(bag.path, meta)
    (ep,) = load_episodes(bag.path)
    m, der = episode_metrics(ep)
    assert der is None and m.source == "none"
    assert m.success == 1.0 and m.score == 4.0 and m.duration_s == pytest.approx(4.0)
    assert m.throughput == pytest.approx(60.0)
    assert m.protective_stops == 2.0  # the simulator's last status
    res = build_report(tmp_path, tmp_path / "out")
    assert res["episodes"] == 1 and (tmp_path / "out" / "progress_vs_time.png").is_file()
    assert res["groups"][0]["protective_stops_mean"] == 2.0 and res["groups"][0]["stopped_frac"] == 1.0
    write_sidecar(bag.path, {**meta, "sim": {"protective_stops": 0}})  # the recorder's summary wins
    (ep,) = load_episodes(bag.path)
    assert episode_metrics(ep)[0].protective_stops == 0.0


def test_one_success_verdict_for_the_report_and_the_dataset() -> None:
    """``Episode.success``: the operator's boolean or number (0 = failure: the dataset's only_success kept
    such episodes while the report counted them as failures), else the simulator's, else unknown."""
    from rtc_ros.recording.episode_types import Episode

    def ep(meta, sim=None):
        return Episode(name="e", path=Path("e"), meta=meta, start_ns=0, end_ns=1, sim_status=sim)

    assert [ep({"success": v}).success for v in (True, False, 1, 0, 0.0)] == [True, False, True, False, False]
    assert ep({}, {"success": True}).success is True and ep({"success": None}).success is None
    assert ep({"success": False}, {"success": True}).success is False  # the operator's verdict wins


def test_two_robots_joint_states_in_one_bag_refused(tmp_path: Path) -> None:
    """Two robots' ``*/joint_states`` in one bag: they were interleaved into one series (robot2's values
    under robot1's names); now the bag is refused, naming the topics, and the qualified name reads it."""
    from rtc_ros.recording.bag import BagWriter, write_sidecar
    from rtc_ros.recording.episode import TopicRoles
    from rtc_ros.recording.synthetic import joint_state_cdr

    bag = BagWriter(tmp_path / "episode_0000")
    bag.open()
    for ns in ("robot1", "robot2"):
        bag.add_topic(f"/{ns}/joint_states", "sensor_msgs/msg/JointState")
    t0 = 10**18
    for i in range(10):
        ns_t = t0 + i * 20_000_000
        bag.write("/robot1/joint_states", ns_t, joint_state_cdr(ns_t, ["a", "b"], np.array([1.0, 1.0]), np.zeros(2)))
        bag.write("/robot2/joint_states", ns_t + 1, joint_state_cdr(ns_t, ["c", "d"], np.array([9.0, 9.0]),
                                                                    np.zeros(2)))
    meta = {"method": "rtc", "start_time_ns": t0, "stop_time_ns": t0 + 10**9}
    bag.close(meta)
    write_sidecar(bag.path, meta)
    with pytest.raises(ValueError, match="/robot1/joint_states, /robot2/joint_states"):
        load_episodes(bag.path)
    (ep,) = load_episodes(bag.path, TopicRoles(joint_states="/robot2/joint_states"))
    assert ep.joint_states.names == ["c", "d"] and np.all(ep.joint_states.q == 9.0)
    assert len(ep.joint_states.t) == 10


def test_unknown_verdicts_and_latencies_are_counted_not_hidden(tmp_path: Path) -> None:
    """``success_rate`` is over the episodes with a verdict (``n_verdict``), not ``n``; an episode whose
    metadata names no injected latency is grouped at +0 ms and said so (``latency_unknown``)."""
    from rtc_ros.recording.bag import read_sidecar, write_sidecar

    for i in range(3):
        write_synthetic_episode(tmp_path, f"episode_{i:04d}", "rtc", 100.0, seed=i, task_steps=150)
    write_synthetic_episode(tmp_path, "episode_0003", "rtc", 100.0, seed=3, task_steps=150, with_progress=False,
                            control_messages=False)
    side = read_sidecar(tmp_path / "episode_0003")
    write_sidecar(tmp_path / "episode_0003", {k: v for k, v in side.items() if k not in ("success", "score")})
    write_synthetic_episode(tmp_path, "episode_0004", "rtc", 100.0, seed=4, task_steps=150)
    side = read_sidecar(tmp_path / "episode_0004")
    write_sidecar(tmp_path / "episode_0004", {k: v for k, v in side.items() if k != "extra_latency_ms"})
    res = build_report(tmp_path, tmp_path / "out", plots=False)
    groups = {g["extra_latency_ms"]: g for g in res["groups"]}
    assert groups[100.0]["n"] == 4 and groups[100.0]["n_verdict"] == 3 and groups[100.0]["success_rate"] == 1.0
    assert groups[0.0]["n"] == 1 and res["latency_unknown"] == ["episode_0004"]
    with open(tmp_path / "out" / "summary.csv") as fh:
        assert {r["n_verdict"] for r in csv.DictReader(fh)} == {"3", "1"}


def test_a_gripper_driver_s_own_joint_states_beside_the_arm_s_are_not_refused(tmp_path: Path) -> None:
    """``ros2 bag record -a`` on a robot whose gripper has its own driver: ``/joint_states`` (the arm) and
    ``/gripper/joint_states`` (fewer joints) -> the arm's series, as before; a declared but silent second
    ``*/rtc/chunk`` does not make the bag ambiguous either."""
    from rtc_ros.recording.bag import BagWriter, write_sidecar
    from rtc_ros.recording.synthetic import joint_state_cdr

    bag = BagWriter(tmp_path / "episode_0000")
    bag.open()
    bag.add_topic("/joint_states", "sensor_msgs/msg/JointState")
    bag.add_topic("/gripper/joint_states", "sensor_msgs/msg/JointState")
    bag.add_topic("/rtc/chunk", "trajectory_msgs/msg/JointTrajectory")
    bag.add_topic("/old/rtc/chunk", "trajectory_msgs/msg/JointTrajectory")  # never written
    t0 = 10**18
    for i in range(10):
        ns_t = t0 + i * 20_000_000
        bag.write("/joint_states", ns_t, joint_state_cdr(ns_t, ["a", "b", "c"], np.full(3, 1.0), np.zeros(3)))
        bag.write("/gripper/joint_states", ns_t + 1, joint_state_cdr(ns_t, ["g"], np.array([0.5]), np.zeros(1)))
    meta = {"method": "rtc", "start_time_ns": t0, "stop_time_ns": t0 + 10**9}
    bag.close(meta)
    write_sidecar(bag.path, meta)
    (ep,) = load_episodes(bag.path)
    assert ep.joint_states.names == ["a", "b", "c"] and len(ep.joint_states.t) == 10
