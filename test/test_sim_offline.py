"""The simulated-time latency experiment (no ROS): the nodes' cores on BimanualSim, a virtual clock.

Short episodes (the simulator truncates them after a few seconds) with the shipped toy-sized policy
and a fixed compute time, so the delay in ticks is known exactly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rtc_ros.core.stats import paired_bootstrap, wilson_interval
from rtc_ros.experiments.runner import DEFAULT_CONFIG, DEFAULT_POLICY, write_params
from rtc_ros.experiments.sim_offline import Episode
from rtc_ros.experiments.sim_setup import load_setup, make_sim, stop_count
from rtc_ros.nodes.params import ROLE_EXECUTOR, ROLE_INFERENCE

SEED = 10_000
STEPS = 120  # 2.4 s of simulated time per episode


@pytest.fixture(scope="module")
def episode():
    from rtc_ros.sim.camera import CameraRenderer

    setup = load_setup(DEFAULT_CONFIG, DEFAULT_POLICY)
    # timing tests: a protective stop (te_dense trips some) must not pause the executor here; the stop
    # recovery has its own test below
    setup.values[ROLE_EXECUTOR]["robot_stopped_topic"] = ""
    sim = make_sim("transfer_cube", STEPS)
    renderer = CameraRenderer(sim.model, setup.camera)
    yield Episode(setup, sim, renderer)
    renderer.close()
    sim.close()


def test_paired_seeds_are_deterministic(episode: Episode) -> None:
    a = episode.run("rtc", 100.0, 30.0, SEED, keep_trace=True)
    b = episode.run("rtc", 100.0, 30.0, SEED, keep_trace=True)
    c = episode.run("rtc", 100.0, 30.0, SEED + 1, keep_trace=True)
    assert a.trace is not None and b.trace is not None and c.trace is not None
    assert a.steps == STEPS and a.chunks >= 3
    np.testing.assert_array_equal(a.trace["command"], b.trace["command"])
    ra, rb = a.row(), b.row()
    for key in ("wall_s", "infer_ms_mean"):
        ra.pop(key), rb.pop(key)
    assert json.dumps(ra, sort_keys=True) == json.dumps(rb, sort_keys=True)
    assert not np.array_equal(a.trace["command"], c.trace["command"])  # another seed: another cube, other noise


@pytest.mark.parametrize("compute_ms,latency_ms", [(30.0, 0.0), (30.0, 100.0), (15.0, 200.0)])
def test_delay_in_ticks_follows_the_latency_rule(episode: Episode, compute_ms: float, latency_ms: float) -> None:
    d = math.ceil((compute_ms + latency_ms) / 20.0)
    rec = episode.run("rtc", latency_ms, compute_ms, SEED, keep_trace=True)
    assert rec.delay_ticks == d
    assert rec.consumed_mean == d  # every chunk after the first took over exactly d ticks after its observation
    # consumed / d come from every splice of the episode (not the executor's rolling window); the
    # start-up chunk starts at its index 0 (consumed 0: the robot held still while it was computed)
    assert rec.trace["consumed"].size == rec.splices and rec.consumed_mean == rec.trace["consumed"][1:].mean()
    assert rec.trace["consumed"][0] == 0
    assert rec.d_mean == rec.trace["d"].mean()
    # the first chunk (observation after step 0, so t_obs = 1) takes over at step 1 + d
    assert rec.holds == {"startup": d + 1}
    assert rec.startup_hold_s == pytest.approx((d + 1) * 0.02) and rec.standstill_s == 0.0
    assert int(rec.trace["splice"][0]) == 1 + d
    dense = episode.run("te_dense", latency_ms, compute_ms, SEED, keep_trace=True)
    # te_dense starts the next inference right after each takeover: one chunk every d + 1 ticks
    gaps = np.diff(dense.trace["splice"])
    assert gaps.size >= 3 and set(gaps.tolist()) == {d + 1}


def test_sync_pauses_and_rtc_does_not(episode: Episode) -> None:
    d = math.ceil((30.0 + 100.0) / 20.0)
    sync = episode.run("sync", 100.0, 30.0, SEED, keep_trace=True)
    rtc = episode.run("rtc", 100.0, 30.0, SEED, keep_trace=True)
    s_min = episode.setup.params(ROLE_EXECUTOR, "sync").s_min
    assert sync.holds.get("sync_pause", 0) >= d  # at least one full pause in 2.4 s
    splices = sync.trace["splice"]
    # sync: s_min actions, then a pause of d ticks while the model runs, then the next chunk at index 0
    assert set(np.diff(splices).tolist()) == {s_min + d}
    assert sync.holds["sync_pause"] == sum(1 for k in range(int(splices[0]), STEPS)
                                           if (k - int(splices[0])) % (s_min + d) >= s_min)
    assert "sync_pause" not in rtc.holds and set(rtc.holds) == {"startup"}
    hold = rtc.trace["hold"]
    assert not hold[int(rtc.trace["splice"][0]):].any()  # never stops once the first chunk arrived
    assert sync.standstill_s == pytest.approx(sync.holds["sync_pause"] * 0.02)  # the startup hold excluded
    assert sync.standstill_s > rtc.standstill_s == 0.0


def test_camera_phase_varies_by_seed_not_by_method(episode: Episode) -> None:
    """Frames follow a per-seed phase: the same schedule for every method on a seed, another across seeds,
    so a method planning every s_min ticks does not always see a frame of the same age."""
    every = episode.setup.cam_every
    ages: set[int] = set()
    schedules = set()
    for seed in range(SEED, SEED + every):
        rtc = episode.run("rtc", 0.0, 30.0, seed, keep_trace=True)
        sync = episode.run("sync", 0.0, 30.0, seed, keep_trace=True)
        assert rtc.camera_phase == sync.camera_phase
        np.testing.assert_array_equal(rtc.trace["frame_steps"], sync.trace["frame_steps"])
        assert set(np.diff(rtc.trace["frame_steps"][1:]).tolist()) == {every}
        schedules.add(tuple(rtc.trace["frame_steps"].tolist()))
        ages |= set(rtc.trace["frame_age"][1:].tolist())  # the first plan sees the reset frame
    assert len(schedules) == every and ages == set(range(every))


def test_oldest_stamp_does_not_delay_the_first_chunk(episode: Episode) -> None:
    """With ``obs_time: oldest`` the reset frame maps to a valid step: the first chunk is not refused."""
    import dataclasses

    st = episode.setup
    values = {**st.values, ROLE_INFERENCE: {**st.values[ROLE_INFERENCE], "obs_time": "oldest"}}
    oldest = Episode(dataclasses.replace(st, values=values, _params={}), episode.sim, episode.renderer)
    d = math.ceil(30.0 / 20.0)
    for seed in (SEED, SEED + 2):  # phase 0 and 2: the first plans use the reset frame
        rec = oldest.run("rtc", 0.0, 30.0, seed, keep_trace=True)
        assert rec.too_old == 0 and rec.holds["startup"] == d + 1
        assert int(rec.trace["splice"][0]) == 1 + d


def test_protective_stops_counted_only_when_enabled() -> None:
    from rtc_ros.sim.bimanual import BimanualSim

    on = BimanualSim(max_episode_steps=50)
    off = BimanualSim(max_episode_steps=50, protective_stops=False)
    try:
        for sim in (on, off):
            sim.reset(SEED)
        assert stop_count(on) == 0 and stop_count(off) is None
        cmd = on.joint_positions().copy()
        cmd[1] += 0.5  # a 0.5 rad jump in one 20 ms tick: 25 rad/s, far past the pi rad/s limit
        on.step(cmd)
        assert stop_count(on) == 1
        on.reset(SEED)
        assert stop_count(on) == 0  # counted per episode
    finally:
        on.close()
        off.close()


def test_unknown_task_or_method_is_refused(episode: Episode) -> None:
    with pytest.raises(ValueError, match="--tasks"):
        make_sim("no_such_task", 10)
    with pytest.raises(ValueError, match="method"):
        episode.run("no_such_method", 0.0, 10.0, SEED)


def test_step_limit_joints_tells_the_step_limit_from_a_position_limit() -> None:
    """Through the executor's own clamp: a joint clamped by its position limit is not a step-limit hit;
    one clamped by max_step is, and it is "new" only when the previous step was under the limit."""
    from rtc_ros.experiments.sim_offline import step_limit_joints
    from rtc_ros.runtime.executor_types import Tick, clamp_command

    max_step = np.array([0.062, 0.062, 0.15])
    lower, upper = np.array([-1.0, -1.0, 0.0]), np.array([1.0, 1.0, 1.0])
    before_last = np.array([0.2, 0.5, 0.5])
    last = np.array([0.262, 0.5, 0.98])  # joint 0 moved a full max_step on the tick before (float as the clamp)
    last[0] = clamp_command(np.array([0.9, 0.5, 0.98]), before_last, lower, upper, max_step)[0]
    target = np.array([0.9, 0.51, 1.3])  # 0: step limit (ongoing), 1: free, 2: position limit only
    cmd = clamp_command(target, last, lower, upper, max_step)

    def tick(command: np.ndarray, clamped: bool) -> Tick:
        return Tick(step=0, command=command, hold=False, reason="", seq=0, takeover=0, consumed=1, clamped=clamped)

    assert step_limit_joints(tick(cmd, True), last, before_last, max_step) == ([0], [])  # ongoing, not new
    assert step_limit_joints(tick(cmd, True), last, None, max_step) == ([0], [0])
    target[1] = -0.9  # joint 1 now wants a big step from a standstill: a new hit
    cmd = clamp_command(target, last, lower, upper, max_step)
    assert step_limit_joints(tick(cmd, True), last, before_last, max_step) == ([0, 1], [1])
    free = clamp_command(np.array([0.3, 0.52, 1.0]), last, lower, upper, max_step)
    assert step_limit_joints(tick(free, False), last, before_last, max_step) == ([], [])
    assert step_limit_joints(tick(cmd, True), None, None, max_step) == ([], [])


def test_own_step_is_the_chunks_step_into_the_taken_over_action() -> None:
    from rtc_ros.experiments.sim_offline import own_step

    chunk = np.array([[0.0, 1.0], [0.1, 1.0], [0.3, 0.9], [0.3, 0.9]])  # (H = 4, 2 joints)
    max_step = np.array([0.2, 0.05])
    assert own_step(chunk, 1, max_step) == pytest.approx([0.5, 0.0])
    assert own_step(chunk, 2, max_step) == pytest.approx([1.0, 2.0])  # both at / over the limit by themselves
    for bad in (0, 4):
        with pytest.raises(ValueError, match="consumed"):
            own_step(chunk, bad, max_step)


def test_switches_at_the_step_limit_match_the_commanded_trace(episode: Episode) -> None:
    """Issue #13's closed-loop statistic: a switch (a takeover from a running chunk; not the start-up
    chunk; in sync mode each chunk after the first) whose first command moved a full max_step from the
    last one; recomputed here from the commanded trajectory, the splice rows and the hold reasons."""
    from rtc_ros.experiments.sim_experiment import summarize_cells
    from rtc_ros.nodes.cores import executor_core

    max_step = np.asarray(executor_core(episode.setup.params(ROLE_EXECUTOR, "naive")).cfg.max_step, dtype=float)
    assert max_step.shape == (14,) and max_step.max() > max_step.min()  # per joint: grippers have their own
    recs = [episode.run(m, 100.0, 30.0, SEED + i, keep_trace=True) for m in ("naive", "rtc", "sync") for i in range(2)]
    for rec in recs:
        assert rec.trace is not None
        q, rows, consumed = rec.trace["command"], rec.trace["splice"], rec.trace["consumed"]
        hold = rec.trace["hold_reason"]
        assert hold[rows[0] - 1] == "startup" and rows[0] > 0  # the start-up chunk comes after a hold
        if rec.method != "sync":
            assert consumed[0] == 0  # ... and starts at its index 0; a later chunk at its consumed index
        is_switch = (consumed > 0) & ~np.isin(hold[rows - 1], ["startup", "restart"])
        assert not is_switch[0] and is_switch[1:].any()
        rows = rows[is_switch]
        assert rec.switches == rows.size and rec.switches <= rec.splices - 1
        assert rec.trace["switch_ticks"].tolist() == rows.tolist()
        steps = np.abs(q[rows] - q[rows - 1]) / max_step
        before = np.abs(q[rows - 1] - q[rows - 2]) / max_step
        hits = steps >= 1.0 - 1e-9
        assert rec.splice_step_limit == int(np.sum(np.any(hits, axis=1)))
        assert rec.splice_step_limit_new == int(np.sum(np.any(hits & (before < 1.0 - 1e-9), axis=1)))
        assert rec.splice_step_limit_ticks == [int(k) for k in rows[np.any(hits, axis=1)]]
        names = list(rec.trace["joint_names"])
        assert rec.splice_step_limit_joints == {names[j]: int(n) for j, n in enumerate(hits.sum(axis=0)) if n}
        chunk_rows = rec.trace["switch_chunk_rows"]  # per switch the new chunk's actions at c - 1 and c
        assert chunk_rows.shape == (rows.size, 2, 14)
        if rec.method == "sync":
            assert rec.splice_step_limit_own is None and np.all(np.isnan(chunk_rows))
            continue
        # the recorded action c is what the executor commanded wherever it did not clamp the joint
        free = ~hits & (np.abs(q[rows] - chunk_rows[:, 1]) > 1e-9)
        assert free.sum() <= 0.02 * free.size, "commands at switches differ from the recorded chunk action"
        own = np.abs(chunk_rows[:, 1] - chunk_rows[:, 0]) / max_step
        assert rec.splice_step_limit_own == int(np.sum(np.any(hits & (own >= 1.0 - 1e-9), axis=1)))
    naive = [r for r in recs if r.method == "naive"]
    assert sum(r.splice_step_limit_new for r in naive) > 0  # the rough toy policy's naive switches do hit it
    cells = {c["method"]: c for c in summarize_cells(recs)}
    cell = cells["naive"]
    assert cell["switches"] == sum(r.switches for r in naive) > 0
    assert cell["switch_step_limit_frac"] == pytest.approx(cell["switches_at_step_limit"] / cell["switches"])
    assert cell["switch_step_limit_new_frac"] <= cell["switch_step_limit_frac"]
    assert cell["switches_at_step_limit_own"] == sum(r.splice_step_limit_own or 0 for r in naive)
    assert cell["switches_at_step_limit_own"] <= cell["switches_at_step_limit"]
    assert sum(cell["switch_step_limit_joints"].values()) >= cell["switches_at_step_limit"] > 0
    assert cells["sync"]["switches_at_step_limit_own"] is None and cells["sync"]["switches"] > 0


def test_statistics() -> None:
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-3)
    a = np.array([1.0, 0.0, 1.0, 1.0, np.nan])
    diff, lo, hi = paired_bootstrap(a, a - 0.5)
    assert (diff, lo, hi) == pytest.approx((0.5, 0.5, 0.5))  # every pair differs by 0.5 (the NaN pair dropped)
    rng = np.random.default_rng(1)
    x, y = rng.normal(1.0, 1.0, 200), rng.normal(0.0, 1.0, 200)
    diff, lo, hi = paired_bootstrap(x, y, n_boot=2000, seed=3)
    assert lo < diff < hi and lo > 0.5 and hi < 1.5
    assert paired_bootstrap(x, y, n_boot=2000, seed=3) == (diff, lo, hi)
    with pytest.raises(ValueError, match="paired"):
        paired_bootstrap(x, y[:10])


def test_run_grid_writes_results_with_the_keys(tmp_path: Path) -> None:
    from rtc_ros.experiments.sim_experiment import run_grid

    config = write_params(DEFAULT_CONFIG, {"bimanual_sim": {"max_episode_steps": 60}}, tmp_path / "params.yaml")
    out = tmp_path / "run"
    res = run_grid(out, ["transfer_cube"], ["sync", "rtc"], [0.0, 100.0], 2, SEED, config, DEFAULT_POLICY,
                   compute_override={"plain": 10.0, "guided": 30.0}, say=lambda _s: None)
    disk = json.loads((out / "results.json").read_text())
    assert disk["compute"]["source"] == "given" and disk["compute"]["ms"] == {"guided": 30.0, "plain": 10.0}
    assert set(disk["environment"]) == {"cpu", "torch", "numpy", "mujoco"} and disk["environment"]["torch"]
    assert len(disk["cells"]) == 4 and len(disk["episodes"]) == 8
    for cell in disk["cells"]:
        for key in ("method", "latency_ms", "task", "n", "successes", "success_ci95", "throughput",
                    "protective_stops", "standstill_s", "splice_jerk", "splice_jump_max", "acc_rms",
                    "switches", "switch_step_limit_frac", "switch_step_limit_ci95"):
            assert key in cell, key
        assert cell["n"] == 2 and len(cell["success_ci95"]) == 2
        mine = [e for e in disk["episodes"] if (e["method"], e["latency_ms"]) == (cell["method"], cell["latency_ms"])]
        k = sum(bool(e["success"]) for e in mine)  # the cell is its episodes' summary, not just its keys
        assert cell["successes"] == k and cell["success_ci95"] == pytest.approx(list(wilson_interval(k, 2)))
        assert cell["throughput"] == pytest.approx(float(np.mean([e["throughput"] for e in mine])))
        assert cell["delay_ticks"] == math.ceil(({"sync": 10.0, "rtc": 30.0}[cell["method"]] + cell["latency_ms"]) / 20)
        if not disk["config"]["protective_stops_counted"]:
            assert cell["protective_stops"] is None and cell["protective_stops_per_episode"] is None
    csv_head = (out / "cells.csv").read_text().splitlines()
    assert csv_head[0].startswith("task,method,latency_ms,delay_ticks,")
    if not disk["config"]["protective_stops_counted"]:
        assert all(e["protective_stops"] is None for e in disk["episodes"]) and ",null," in csv_head[1]
    seeds = {(e["method"], e["latency_ms"]): [x["seed"] for x in disk["episodes"]
                                               if (x["method"], x["latency_ms"]) == (e["method"], e["latency_ms"])]
             for e in disk["episodes"]}
    assert all(v == [SEED, SEED + 1] for v in seeds.values())  # paired seeds in every cell
    diffs = {(d["latency_ms"], d["method"], d["metric"]) for d in disk["differences"]}
    assert diffs == {(lat, "sync", m) for lat in (0.0, 100.0) for m in ("success", "throughput")}
    assert all(d["n_pairs"] == 2 for d in disk["differences"])
    for name in ("episodes.csv", "cells.csv", "differences.csv", "figure6.png", "figure1_transfer_cube.png"):
        assert (out / name).is_file(), name
    assert res["plots"]
    # an audit: a rerun into the same folder plotted the earlier run's traces beside its own and kept its
    # differences.csv; duplicates in the grid doubled n with identical episodes; a bad fig1 joint failed after the grid
    for bad, match in (({"methods": ["rtc", "rtc"]}, r"methods: \['rtc'\] given twice"),
                       ({"fig1_joint": "elbow"}, "fig1_joint 'elbow' is not one of"),
                       ({"calib_calls": 0}, "calib_calls must be >= 1")):
        kw = {"methods": ["rtc"], **bad}
        with pytest.raises(ValueError, match=match):
            run_grid(out, ["transfer_cube"], kw.pop("methods"), [100.0], 1, SEED, config, DEFAULT_POLICY, say=lambda _s: None, **kw)
    assert (out / "differences.csv").is_file()  # (refused before touching the folder)
    run_grid(out, ["transfer_cube"], ["rtc"], [100.0], 1, SEED, config, DEFAULT_POLICY,
             compute_override={"guided": 30.0}, say=lambda _s: None)
    assert not (out / "differences.csv").exists() and json.loads((out / "results.json").read_text())["differences"] == []
    assert [p.name for p in (out / "traces").iterdir()] == ["transfer_cube_rtc_100ms.npz"]
    (previous,) = (out / "previous").iterdir()
    assert (previous / "differences.csv").is_file() and len(list((previous / "traces").iterdir())) == 4


@pytest.mark.slow
def test_cli_quick_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI end to end with measured compute times: the last stdout line is the JSON summary."""
    from rtc_ros.experiments.sim_latency import main

    out = tmp_path / "run"
    assert main(["--tasks", "transfer_cube", "--methods", "sync,bid,rtc", "--latencies", "0,200", "--episodes", "2", "--out", str(out),
                 "--calib-calls", "5"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["clock"] == "sim" and summary["episodes"] == 12 and len(summary["cells"]) == 6
    assert set(summary["compute_ms"]) == {"plain", "guided", "bid"}
    assert (out / "results.json").is_file() and (out / "figure6.png").is_file()


def test_tick_report_round_trips_through_the_contract() -> None:
    """The executor report the experiment feeds the loop is the one the node publishes (same encoding)."""
    from rtc_ros.runtime.contract import ExecutorReport
    from rtc_ros.runtime.executor import ExecutorConfig, ExecutorCore

    core = ExecutorCore(ExecutorConfig(horizon=4, action_dim=2, mode="switch"))
    core.set_measured_position(np.zeros(2))
    core.offer_chunk(np.ones((4, 2)) * 0.1, seq=3, t_obs=0, d=1, s=2)
    tick = core.tick()
    rep = tick.report(123)
    back = ExecutorReport.decode(rep.encode(), 123, rep.command)
    assert back == rep and (back.step, back.seq, back.takeover, back.hold) == (0, 3, 0, False)
    np.testing.assert_array_equal(back.command, tick.command)
    assert tick.report(with_command=False).command is None


@pytest.mark.parametrize("recover", [True, False])
def test_stop_recovery_resyncs_and_execution_goes_on(episode: Episode, recover: bool) -> None:
    """Arms with a low velocity limit stop during the episode. With the executor's stop recovery (the
    params file's ``robot_stopped_topic``, as the node) every stop that ends is followed by a re-sync and a
    start-up chunk (index 0, consumed 0) taken over after it: the harness keeps planning through the pauses
    (its ticks and the executor's paused steps diverge). Without it nothing is re-synced."""
    import dataclasses

    from rtc_ros.sim.bimanual import BimanualSim
    from rtc_ros.sim.camera import CameraRenderer
    from rtc_ros.sim.limits import VELOCITY_LIMITS, ProtectiveStopConfig

    st = episode.setup
    values = {**st.values, ROLE_EXECUTOR: {**st.values[ROLE_EXECUTOR],
                                           "robot_stopped_topic": "robot_stopped" if recover else ""}}
    slow = ProtectiveStopConfig(recovery_s=0.2, velocity_limits=tuple(float(x) for x in VELOCITY_LIMITS / 6))
    sim = BimanualSim(max_episode_steps=3 * STEPS, protective_stops=slow)
    renderer = CameraRenderer(sim.model, st.camera)
    try:
        ep = Episode(dataclasses.replace(st, values=values, _params={}), sim, renderer)
        rec = ep.run("rtc", 0.0, 30.0, SEED, keep_trace=True)
        stops = [e.step for e in sim.protective_stops]
    finally:
        renderer.close()
        sim.close()
    assert rec.protective_stops and rec.protective_stops >= 1, "the slow arms never stopped: the test proves nothing"
    if not recover:
        assert rec.stop_recoveries is None and rec.holds.get("paused", 0) == 0
        return
    assert rec.stop_recoveries >= 1 and rec.holds["paused"] >= 5  # held (paused) through the stop
    splices, consumed = rec.trace["splice"], rec.trace["consumed"]
    first_end = stops[0] + 10  # recovery_s = 0.2 s = 10 ticks
    after = [i for i, k in enumerate(splices) if k > first_end]
    assert after, f"no chunk took over after the first stop ended (stops at {stops}, splices {list(splices)})"
    assert consumed[after[0]] == 0  # a start-up chunk: from its index 0, where the arm stands


def test_compute_ms_option_covers_every_sampling_kind() -> None:
    """``--compute-ms``: one number applies to every sampling kind of the method table (``rtc_trained``'s
    ``trained`` included); a pair list names its kinds; an unknown kind or a negative time is refused."""
    from rtc_ros.experiments.sim_latency import COMPUTE_KINDS, parse_compute_ms
    from rtc_ros.runtime.methods import METHOD_TABLE

    assert {info.sampling for info in METHOD_TABLE.values()} <= set(COMPUTE_KINDS)
    assert parse_compute_ms("7") == {k: 7.0 for k in COMPUTE_KINDS}
    assert parse_compute_ms("plain=6, trained=5") == {"plain": 6.0, "trained": 5.0}
    assert parse_compute_ms("") is None
    for bad in ("fast=3", "plain=-1", "plain=x"):
        with pytest.raises(ValueError, match="--compute-ms"):
            parse_compute_ms(bad)


@pytest.mark.parametrize("args, said", [(["--methods", "rtc,naive,rtc"], "--methods: ['rtc'] given twice"),
                                        (["--latencies", "0,100,100.0"], "--latencies: [100.0] given twice"),
                                        (["--calib-calls", "0"], "--calib-calls must be >= 1")])
def test_cli_refuses_a_grid_given_twice_and_no_calibration_calls(args, said, capsys) -> None:
    """An audit: a method given twice doubled its cell's n with identical episodes (a Wilson interval too narrow);
    --calib-calls 0 ended in an IndexError traceback."""
    from rtc_ros.experiments.sim_latency import main

    with pytest.raises(SystemExit) as exc:
        main(args + ["--out", "/nonexistent/never_written"])
    assert exc.value.code == 2 and said in capsys.readouterr().err


def test_switch_seams_split_each_hit_into_seam_and_own_step(episode: Episode, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """rtc_ros.experiments.switch_seams: every hit's clamped joint wanted >= max_step, and wanted is at
    most own step + seam offset; its hit counts are the harness's own."""
    from rtc_ros.experiments.switch_seams import TOL, main, seam_rows, summarize
    from rtc_ros.nodes.cores import executor_core

    max_step = np.asarray(executor_core(episode.setup.params(ROLE_EXECUTOR, "naive")).cfg.max_step, dtype=float)
    recs = [episode.run("naive", 100.0, 10.0, SEED + i, keep_trace=True) for i in range(2)]
    rows = [r for rec in recs for r in seam_rows(rec, max_step)]
    hits = [r for r in rows if r["hit"].any()]
    assert len(hits) == sum(rec.splice_step_limit for rec in recs) > 0
    for r in hits:
        j = r["hit"]
        assert np.all(r["wanted"][j] >= TOL)  # the new chunk asked for more than the executor allowed
        assert np.all(r["wanted"][j] <= r["own"][j] + r["offset"][j] + 1e-9)
    names = [str(n) for n in recs[0].trace["joint_names"]]
    s = summarize(rows, names)
    assert s["hits"] == len(hits) and s["hits_own_at_limit"] == sum(rec.splice_step_limit_own for rec in recs)
    assert s["switches"] == sum(rec.switches for rec in recs) and s["hit_offset"]["n"] == sum(s["hit_joints"].values())
    out = tmp_path / "seams.json"
    assert main(["--method", "naive", "--latency-ms", "100", "--compute-ms", "plain=10", "--episodes", "1",
                 "--max-steps", str(STEPS), "--out", str(out)]) == 0
    disk = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == disk
    # (the CLI runs the params file's stop recovery, the fixture not: same seed, another episode)
    assert 0 < disk["switches"] and disk["hits"] <= disk["switches"] and disk["episodes"] == 1
    assert 0 < len(disk["hit_rows"]) == sum(disk["hit_joints"].values())
    for h in disk["hit_rows"]:  # the raw values give the ratios back (rounded to 4-5 decimals in the JSON)
        ms = max_step[names.index(h["joint"])]
        assert h["wanted"] >= TOL - 1e-3
        assert abs(h["chunk_taken"] - h["last"]) / ms == pytest.approx(h["wanted"], abs=2e-3)
        assert abs(h["chunk_prev"] - h["last"]) / ms == pytest.approx(h["offset"], abs=2e-3)
        assert abs(h["chunk_taken"] - h["chunk_prev"]) / ms == pytest.approx(h["own"], abs=2e-3)
    assert main(["--method", "sync"]) == 2 and "sync" in capsys.readouterr().err
    assert main(["--task", "no_such_task", "--episodes", "1"]) == 2 and "no_such_task" in capsys.readouterr().err
    assert main(["--policy", str(tmp_path / "missing.yaml")]) == 2 and "missing.yaml" in capsys.readouterr().err


def test_the_experiment_s_simulator_takes_the_params_file_s_protective_stops(tmp_path: Path) -> None:
    """The sim node builds its stops from ``protective_stops`` / ``protective_stop_recovery_s``; the
    simulated-time harness hard-coded them on with 1 s, whatever the params file said."""
    config = write_params(DEFAULT_CONFIG, {"bimanual_sim": {"protective_stops": False,
                                                            "protective_stop_recovery_s": 0.3}}, tmp_path / "p.yaml")
    setup = load_setup(config, DEFAULT_POLICY)
    assert (setup.stop_config.enabled, setup.stop_config.recovery_s) == (False, 0.3)
    sim = make_sim("transfer_cube", 10, setup.stop_config)
    try:
        assert sim.protective_stop_config.enabled is False and sim.protective_stop_config.recovery_s == 0.3
    finally:
        sim.close()


def test_measure_compute_ms_times_each_sampling_kind_once(episode: Episode) -> None:
    """The calibration samples through the node's warm-up sample, once per sampling kind of the methods."""
    from rtc_ros.experiments.sim_setup import measure_compute_ms

    episode.sim.reset(SEED)
    obs = episode.observation(episode.renderer.render(episode.sim.data))
    out = measure_compute_ms(episode.setup, ["rtc", "naive", "rtc_hard"], obs, calls=3, warmup=1)
    assert set(out) == {"guided", "plain"}
    for row in out.values():
        assert row["calls"] == 3 and 0 < row["p10"] <= row["median"] <= row["p90"]
