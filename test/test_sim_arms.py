"""Protective stops of the simulated ViperX arms and the ``conveyor_cube`` task (rtc_ros.sim.limits / conveyor)."""

from __future__ import annotations

import json
import math
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("mujoco", reason="mujoco not installed (requirements-sim.txt)")

from rtc_ros.sim import BimanualSim  # noqa: E402
from rtc_ros.sim.conveyor import TASK_NAMES  # noqa: E402
from rtc_ros.sim.conveyor_expert import run_chunked_expert, run_closed_loop_expert  # noqa: E402
from rtc_ros.sim.episode import STATE_DONE, SimEpisodeRunner  # noqa: E402
from rtc_ros.sim.limits import ProtectiveStopConfig, equivalent_acceleration_limits  # noqa: E402


@pytest.fixture(scope="module")
def sim() -> BimanualSim:
    s = BimanualSim()
    yield s
    s.close()


def test_limits_come_from_the_datasheets_and_are_on_by_default(sim: BimanualSim) -> None:
    cfg = sim.protective_stop_config
    assert cfg.enabled and cfg.recovery_s == 1.0
    np.testing.assert_allclose(cfg.velocity_limits[:6], math.pi)  # URDF velocity = pi = XM540-W270 30 rpm
    assert cfg.velocity_limits[6] == pytest.approx(1.0 / 0.036)  # finger 1 m/s over the 36 mm stroke
    np.testing.assert_allclose(cfg.torque_limits[:6], [10.6, 21.2, 21.2, 10.6, 10.6, 4.1])
    sim.reset(0)
    acc = equivalent_acceleration_limits(sim)
    assert np.all(acc > 50) and np.all(acc < 1e4)  # rad/s^2 a joint may be commanded alone at the home pose


@pytest.mark.parametrize("bad", [{"recovery_s": -1.0}, {"velocity_limits": (1.0,) * 6},
                                 {"torque_limits": (0.0,) * 7}, {"velocity_limits": (math.nan,) * 7}])
def test_bad_config_is_refused_naming_the_field(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        ProtectiveStopConfig(**bad)


def test_velocity_jump_trips_a_stop_that_holds_then_recovers(sim: BimanualSim) -> None:
    sim.reset(0)
    home = sim.home_position
    cmd = home.copy()
    cmd[0] += 0.3  # 15 rad/s on left_waist
    res = sim.step(cmd)
    assert res.protective_stop and sim.protective_stop_active
    ev = sim.protective_stops[0]
    assert (ev.arm, ev.joint, ev.reason, ev.step) == ("left", "waist", "velocity", 0)
    assert ev.value == pytest.approx(15.0) and ev.limit == pytest.approx(math.pi)
    assert sim.protective_stop_counts == {"left": 1, "right": 0}
    right_target = home.copy()
    right_target[7] += 0.02  # 1 rad/s: the right arm keeps following
    for _ in range(49):  # commands to the left arm are ignored for 1 s
        res = sim.step(np.r_[cmd[:7], right_target[7:]])
        assert not res.protective_stop
    assert abs(sim.joint_positions()[0] - home[0]) < 0.01
    assert abs(sim.joint_positions()[7] - right_target[7]) < 0.01
    assert not sim.protective_stop_active
    res = sim.step(np.r_[cmd[:7], right_target[7:]])  # still 0.3 rad from the held pose: trips again
    assert res.protective_stop and len(sim.protective_stops) == 2
    sim.reset(0)
    assert sim.protective_stops == [] and not sim.protective_stop_active


@pytest.mark.parametrize("report", ["held_positions", "last_command"])
def test_stop_recovery_with_a_late_report_does_not_trip_again(sim: BimanualSim, report: str) -> None:
    """The executor learns of a stop and of its end 2 ticks late (as over DDS). Holding the stopped joints
    where the stop holds them (the sim's ``robot_stopped`` report), the command in the ticks before it
    learns that the stop ended is where the arm stands: no second stop. Holding its last command instead
    (all a plain stopped flag allows) re-sends the command that tripped the stop: a second stop at once.
    ``held`` reports the holds of the sim; ``protective_stop_holds`` names the left arm's 7 joints."""
    from rtc_ros.runtime.executor import ExecutorConfig, ExecutorCore
    from rtc_ros.runtime.stop_recovery import StopRecovery

    sim.reset(0)
    home = sim.home_position
    core, rec = ExecutorCore(ExecutorConfig(horizon=50, action_dim=14)), StopRecovery()
    assert core.set_measured_position(sim.joint_positions())
    chunk = np.tile(home, (50, 1))
    chunk[5:, 0] += 0.3  # a jump on left_waist at index 5: a velocity stop
    core.offer_chunk(chunk, seq=0, t_obs=0)
    lag, reports = 2, []
    stops_at_release = None
    for k in range(80):
        cmd = core.tick().command
        sim.step(cmd)
        reports.append(sim.protective_stop_holds)
        held = reports[-1 - lag] if len(reports) > lag else {}
        if held and report == "last_command":
            held = {j: float(cmd[j]) for j in held}  # what holding the last command amounts to
        rec.update(held, core)
        if k == 5:
            assert set(sim.protective_stop_holds) == set(range(7)) and len(sim.protective_stops) == 1
        if k == 5 + 50:  # the 1 s hold has ended at this tick
            stops_at_release = len(sim.protective_stops)
    assert rec.stops >= 1 and stops_at_release is not None
    if report == "held_positions":
        assert len(sim.protective_stops) == 1, [e.step for e in sim.protective_stops]
        assert rec.recoveries == 1
    else:
        assert len(sim.protective_stops) >= 2  # the held command that tripped the stop, re-sent


def test_jerky_acceleration_trips_a_torque_stop(sim: BimanualSim) -> None:
    sim.reset(0)
    home = sim.home_position
    cmd = home.copy()
    for k in range(1, 4):  # 0.03 rad/tick = 1.5 rad/s on the right shoulder (after 75 rad/s^2 once): fine
        cmd[8] = home[8] + 0.03 * k
        assert not sim.step(cmd).protective_stop
    cmd[8] -= 0.06  # reverse to -1.5 rad/s at once: 150 rad/s^2
    assert sim.step(cmd).protective_stop
    ev = sim.protective_stops[-1]
    assert (ev.arm, ev.joint, ev.reason) == ("right", "shoulder", "torque") and abs(ev.value) > ev.limit


def test_disabled_stops_follow_any_command() -> None:
    with BimanualSim(protective_stops=False) as s:
        s.reset(0)
        cmd = s.home_position
        cmd[0] += 0.3
        for _ in range(40):
            assert not s.step(cmd).protective_stop
        assert s.protective_stops == [] and abs(s.joint_positions()[0] - cmd[0]) < 0.03


def test_disabled_stops_are_reported_as_not_counted() -> None:
    """An audit: with stops off the status said `protective_stops: 0`, so a run without them read as stop-free in
    the sidecars and the live tables (the simulated-time harness said null)."""
    with BimanualSim(max_episode_steps=5, protective_stops=False) as s:
        r = SimEpisodeRunner(s, reset_hold_s=0.0)
        r.request_reset(seed=3)
        while r.tick().state != STATE_DONE:
            pass
        st = r.status()
        json.dumps(st)
        assert st["protective_stops"] is None and st["protective_stops_by_arm"] is None
        assert "protective_stops_after_done" not in st


def test_transfer_expert_never_trips_a_stop(sim: BimanualSim) -> None:
    for seed in (0, 3):
        out = run_closed_loop_expert(sim, seed)
        assert out.success and out.stops == 0 and out.peak_velocity < 1.0 and out.peak_torque < 1.0


def test_unknown_task_is_refused() -> None:
    with pytest.raises(ValueError, match="task"):
        BimanualSim(task="juggling")
    assert TASK_NAMES == ("transfer_cube", "conveyor_cube")


def test_conveyor_moves_the_cube_and_the_expert_solves_it() -> None:
    with BimanualSim(task="conveyor_cube") as s:
        obs = s.reset(5)
        y0 = obs.cube_pose[1]
        for _ in range(25):
            obs = s.step(s.home_position).obs
        info = s.task_info
        assert info["task"] == "conveyor_cube" and info["cube_driven"]
        assert abs(obs.cube_pose[1] - y0) > 0.01  # moved > 1 cm in 0.5 s
        snap = s.snapshot()
        a = [s.step(s.home_position).obs.cube_pose for _ in range(5)]
        s.restore(snap)
        b = [s.step(s.home_position).obs.cube_pose for _ in range(5)]
        np.testing.assert_allclose(a, b)  # snapshot/restore continues identically
        out = run_closed_loop_expert(s, 1)
        assert out.success and out.stops == 0


def test_chunked_expert_runs_with_delay() -> None:
    kw = {"task": "conveyor_cube", "protective_stops": False}  # the lag rule: observation lag only
    with BimanualSim(**kw) as s, BimanualSim(**kw) as planner:
        out = run_chunked_expert(s, planner, 2, d=10, s=10)
        assert out.success and out.stops == 0
        with pytest.raises(ValueError, match="d \\+ s"):
            run_chunked_expert(s, planner, 2, d=30, s=30)
        with pytest.raises(ValueError, match="blend"):
            run_chunked_expert(s, planner, 2, d=10, s=10, blend=11)


def test_runner_status_reports_stops() -> None:
    with BimanualSim(max_episode_steps=40) as s:
        r = SimEpisodeRunner(s, reset_hold_s=0.0)
        r.request_reset(seed=3)
        r.tick()
        target = s.home_position[:7].copy()
        target[0] += 0.3
        r.set_arm_target(0, target)
        res = r.tick()
        assert res.changed and len(res.new_stops) == 1 and res.new_stops[0]["reason"] == "velocity"
        st = r.status()
        json.dumps(st)
        assert st["protective_stops"] == 1 and st["protective_stops_by_arm"] == {"left": 1, "right": 0}
        assert st["protective_stop_active"] and st["task"] == "transfer_cube"
        assert r.tick().new_stops == []


def test_runner_status_freezes_the_outcome_at_done() -> None:
    """A stop after the episode is done (the arms still follow commands until the next reset) is not
    the episode's: the status keeps the outcome of the done tick and counts it separately."""
    with BimanualSim(max_episode_steps=5) as s:
        r = SimEpisodeRunner(s, reset_hold_s=0.0)
        r.request_reset(seed=3)
        while r.tick().state != STATE_DONE:
            pass
        done = r.status()
        assert done["truncated"] and done["protective_stops"] == 0 and done["protective_stops_after_done"] == 0
        target = s.home_position[:7].copy()
        target[0] += 0.3
        r.set_arm_target(0, target)
        res = r.tick()
        assert len(res.new_stops) == 1 and res.changed  # still reported as it happens (the executor re-syncs)
        st = r.status()
        assert st["protective_stops"] == 0 and st["protective_stops_after_done"] == 1
        assert st["step"] == done["step"] and s.step_count > done["step"] and st["protective_stop_active"]
        r.request_reset(seed=4)
        r.tick()
        assert "protective_stops_after_done" not in r.status() and r.status()["protective_stops"] == 0


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~8 min on the usual VM; over the 600 s default on one with ~4x slower Python (2026-12-05)
def test_expert_validation_full() -> None:
    """The numbers of docs/sim_arms.md: transfer expert 50 seeds without a stop; conveyor expert >= 95 %
    over 100 seeds without a stop; chunked with +200 ms (d = 10, s = 10) >= 90 %; open-loop whole chunks
    (d = 0, s = H) clearly worse (>= 10 points)."""
    from rtc_ros.sim.expert_check import run_mode

    tr = run_mode("transfer_cube", "closed", range(50), 50, True)
    assert tr["success_rate"] == 1.0 and tr["stops"] == 0
    cl = run_mode("conveyor_cube", "closed", range(100), 50, True)
    assert cl["success_rate"] >= 0.95 and cl["stops"] == 0
    lag = run_mode("conveyor_cube", "10,10", range(100), 50, False)
    assert lag["success_rate"] >= 0.9
    open_loop = run_mode("conveyor_cube", "0,50", range(100), 50, False)
    assert open_loop["success_rate"] <= lag["success_rate"] - 0.1


def test_node_schema_knows_the_tasks_and_the_recorder_keeps_the_stop_count() -> None:
    from rtc_ros.nodes.params.schema import RECORDER_TOPICS, SIM_TASKS
    from rtc_ros.recording.cdr import string_cdr, string_from_cdr
    from rtc_ros.recording.metadata import sim_summary

    assert SIM_TASKS == TASK_NAMES
    assert "sim/protective_stops" in RECORDER_TOPICS and "sim/status" in RECORDER_TOPICS
    status = {"episode": 2, "seed": 7, "state": "running", "task": "conveyor_cube", "success": False,
              "progress": 3, "step": 120, "protective_stops": 4, "protective_stops_by_arm": {"left": 1, "right": 3},
              "cube": [0.0, 0.5, 0.02]}
    text = json.dumps(status)
    assert string_from_cdr(string_cdr(text)) == text
    summary = sim_summary(json.loads(text))
    assert summary["protective_stops"] == 4 and summary["protective_stops_by_arm"]["right"] == 3
    assert "cube" not in summary and "state" not in summary


def test_executor_settings_that_make_the_stops_trip_or_loop_are_named(tmp_path) -> None:
    """An upgrade walkthrough's sim_bimanual.yaml from 2026-11-21 (max_step 0.1 rad per tick at 50 Hz: 5 rad/s, no
    robot_stopped_topic) failed its episode with 13 protective stops and no word: the simulator names both, read from
    the params files it is given (the executor's sections); the shipped file gets no note."""
    import yaml

    from rtc_ros.nodes.params.yaml_file import applied_in_files
    from rtc_ros.sim.limits import executor_stop_notes as executor_notes

    repo = os.path.join(os.path.dirname(__file__), "..")
    shipped = applied_in_files(["--ros-args", "--params-file", os.path.join(repo, "config", "sim_bimanual.yaml")],
                               "/chunk_executor")
    assert shipped and executor_notes(shipped, ["left", "right"], 0.02) == []
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"rate_hz": 50.0}}, "/**/chunk_executor": {
        "ros__parameters": {"left": {"max_step": [0.1] * 6 + [0.15]}, "right": {"max_step": [0.062] * 6 + [0.15]}}}}))
    notes = executor_notes(applied_in_files(["--ros-args", "--params-file", str(old)], "/robot1/chunk_executor"),
                           ["left", "right"], 0.02)
    assert len(notes) == 2, notes
    assert notes[0].startswith("chunk_executor's left.max_step lets joint 0 move 5.00 rad/s") and "3.14" in notes[0]
    assert notes[1].startswith("chunk_executor has no robot_stopped_topic")
    assert executor_notes({}, ["left", "right"], 0.02) == []  # nothing given to the executor here: nothing said
    # an audit: a 25 Hz executor still has its whole max_step taken in one 20 ms tick (0.1 rad: 5 rad/s, a stop), and
    # the gripper's step was not checked
    slow = executor_notes({"rate_hz": 25.0, "robot_stopped_topic": "robot_stopped", "left.max_step": [0.1] * 7},
                          ["left"], 0.02)
    assert len(slow) == 1 and "joint 0 move 5.00 rad/s" in slow[0] and "rate_hz 25 is slower" in slow[0], slow
    grip = executor_notes({"robot_stopped_topic": "robot_stopped", "left.max_step": [0.062] * 6 + [0.6]}, ["left"], 0.02)
    assert len(grip) == 1 and "joint 6 move 30.00 openings/s" in grip[0], grip
