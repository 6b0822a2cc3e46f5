"""Sim experiments: demo bags -> dataset, the shipped policy, the protocol runner (slow: end to end)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from rtc_ros.experiments.runner import DEFAULT_CONFIG, DEFAULT_POLICY, write_params

REPO = Path(__file__).resolve().parents[1]


def test_write_params_overrides_node_sections(tmp_path: Path) -> None:
    from rtc_ros.nodes.params import load_params_file, validate

    path = write_params(DEFAULT_CONFIG, {"/**": {"method": "te_dense"},
                                         "policy_inference": {"extra_latency_ms": 200.0}}, tmp_path / "p.yaml")
    ex = validate(load_params_file(path, "chunk_executor"), "executor")
    assert ex.method == "te_dense" and ex.horizon == 50
    assert [a.command_topic for a in ex.arms] == ["left_controller/commands", "right_controller/commands"]
    inf = load_params_file(path, "policy_inference")
    assert inf["extra_latency_ms"] == 200.0 and inf["method"] == "te_dense"
    sim = yaml.safe_load(path.read_text())["/**/bimanual_sim"]["ros__parameters"]
    assert sim["left"]["float64_topic"] == ex.arms[0].command_topic  # sim listens where the executor sends


def test_demo_bags_round_trip(tmp_path: Path) -> None:
    """One expert episode -> bag -> dataset: action 0 is the command computed from (and executed at the
    step of) each observation."""
    from rtc_ros.experiments.sim_demos import DemoConfig, generate_demos, load_demo_dataset
    from rtc_ros.sim import BimanualSim, ScriptedExpert

    info = generate_demos(tmp_path, DemoConfig(episodes=1, seed0=3, noise_fraction=0.0, tail_steps=2))
    assert info["successes"] == 1 and len(info["bags"]) == 1
    ds = load_demo_dataset(info["bags"], horizon=50)
    sim = BimanualSim(max_episode_steps=10_000)
    expert = ScriptedExpert(sim)
    obs = sim.reset(3)
    expert.reset(obs)
    T = expert.horizon + 2
    frames = ds.frames["cam_high"]
    assert len(ds) == T and ds.actions.shape == (T, 50, 14) and frames[0].shape == (32, 32, 3)
    cmds, qs = [], []
    for _ in range(T):
        a = expert.act(obs)
        cmds.append(a)
        qs.append(obs.joint_positions)
        obs = sim.step(a).obs
    cmds = np.array(cmds)
    np.testing.assert_allclose(ds.joints, np.array(qs), atol=1e-6)
    np.testing.assert_allclose(ds.actions[0], cmds[:50], atol=1e-5)
    np.testing.assert_allclose(ds.actions[100], cmds[100:150], atol=1e-5)
    np.testing.assert_allclose(ds.actions[-1], np.repeat(cmds[-1:], 50, 0), atol=1e-5)  # last action held
    idx = ds.frame_index["cam_high"]
    assert np.all(np.diff(idx) >= 0) and idx[4] == 0 and idx[5] == 1 and len(frames) == (T + 4) // 5
    prev = ds.frame_prev["cam_high"]  # one episode: each frame's predecessor, the first its own
    assert prev[0] == 0 and np.array_equal(prev[1:], np.arange(len(frames) - 1))
    stacked = load_demo_dataset(info["bags"], horizon=50, frames=2)
    assert stacked.obs_spec[1]["shape"] == [2, 32, 32, 3]
    assert stacked.frame_stack("cam_high", np.array([4, 5, 10]), 2).tolist() == [[0, 0], [1, 0], [2, 1]]
    sim.close()


def test_shipped_policy_spec_and_sampling() -> None:
    from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig
    from rtc_ros.policies.observation import ObservationBuilder
    from rtc_ros.policies.spec import load_policy

    assert DEFAULT_POLICY.is_file(), "the trained sim policy is not shipped in policies/"
    spec = yaml.safe_load(DEFAULT_POLICY.read_text())
    weights = DEFAULT_POLICY.parent / spec["weights"]
    assert weights.stat().st_size < 20 * 2**20
    assert "regenerate" in spec and "train_sim_policy" in spec["regenerate"]
    # human-sized spec; statistics in their own safetensors file, per channel for the image
    assert len(DEFAULT_POLICY.read_text().splitlines()) < 120  # incl. the full training config
    from safetensors.numpy import load_file

    stats = load_file(str(DEFAULT_POLICY.parent / spec["normalization"]))
    assert stats["obs_mean.cam_high"].shape == (3,) and stats["obs_std.joint_positions"].shape == (14,)
    pol = load_policy(DEFAULT_POLICY)
    assert (pol.horizon, pol.action_dim, pol.n_steps) == (50, 14, 5)
    builder = ObservationBuilder(spec["obs_spec"], 14)
    assert builder.camera_names == ["cam_high"]
    from rtc_ros.sim import BimanualSim

    sim = BimanualSim()
    obs = builder.build(sim.reset(10_000).joint_positions, {"cam_high": np.zeros((32, 32, 3), np.uint8)})
    sim.close()
    gen = ChunkGenerator(pol, GeneratorConfig(method="rtc"))
    first = gen.generate(obs)
    chunk = gen.generate(obs, first[10:], d=5, s=25)
    assert chunk.shape == (50, 14) and np.isfinite(chunk).all()
    # guidance pulls the frozen prefix (first d actions) onto the previous chunk; a plain sample does not
    plain = ChunkGenerator(pol, GeneratorConfig(method="naive", seed=1)).generate(obs)
    err_guided = np.abs(chunk[:5] - first[10:15]).mean()
    err_plain = np.abs(plain[:5] - first[10:15]).mean()
    # the shipped bimanual_cnn policy is nearly deterministic at one observation (plain chunks differ by
    # ~0.03-0.07 rad), so the old policy's 2x margin over plain does not apply (measured 0.032 vs 0.062);
    # the check is relative to the plain sample of the same run, not a figure fitted to one measurement
    assert err_guided < 0.7 * err_plain, (err_guided, err_plain)


@pytest.mark.slow
def test_shipped_policy_closed_loop_offline() -> None:
    """The trained policy solves the task without ROS (synchronous chunks, s = 25): it must make progress."""
    from rtc_ros.sim.camera import CameraRenderer
    from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig
    from rtc_ros.policies.observation import ObservationBuilder
    from rtc_ros.policies.spec import load_policy
    from rtc_ros.sim import BimanualSim

    pol = load_policy(DEFAULT_POLICY)
    builder = ObservationBuilder(pol.spec["obs_spec"], 14)
    gen = ChunkGenerator(pol, GeneratorConfig(method="naive"))
    sim = BimanualSim(max_episode_steps=600)
    cam = CameraRenderer(sim.model)
    progress, successes = [], 0
    for seed in range(10_000, 10_004):
        obs = sim.reset(seed)
        img = cam.render(sim.data)
        t = 0
        while t < 600 and not sim.success:
            chunk = gen.generate(builder.build(obs.joint_positions, {"cam_high": img}))
            for a in chunk[:25]:
                obs = sim.step(a).obs
                t += 1
                if t % 5 == 0:
                    img = cam.render(sim.data)
        progress.append(sim.progress)
        successes += sim.success
    cam.close()
    sim.close()
    assert np.mean(progress) >= 2.0 and successes >= 1, (progress, successes)


@pytest.mark.slow
def test_sim_latency_end_to_end(tmp_path: Path) -> None:
    """One rtc episode at +100 ms through sim, executor, inference, recorder and report."""
    from rtc_ros.experiments.sim_latency import main

    out = tmp_path / "run"
    code = main(["--clock", "ros", "--methods", "rtc", "--latencies", "100", "--episodes", "1", "--out", str(out),
                 "--timeout-s", "20"])
    res = json.loads((out / "results.json").read_text())
    assert code == 0 and len(res["episodes"]) == 1
    ep = res["episodes"][0]
    assert ep["method"] == "rtc" and ep["extra_latency_ms"] == 100.0 and ep["sim_steps"] > 50
    bags = [p for p in (out / "bags").iterdir() if not p.name.startswith(".")]
    assert len(bags) == 1 and (out / "bags" / ".episode_last").read_text().strip() == bags[0].name  # (the numbering)
    summary = list(csv_rows(out / "report" / "summary.csv"))
    assert summary and summary[0]["method"] == "rtc" and float(summary[0]["extra_latency_ms"]) == 100.0
    # +100 ms is at least 5 ticks of 20 ms: the switches' consumed delay (the summary's mean also counts the start-up
    # chunk's 0, and fell to 4.85 with switches at 5-6: a failure on 2026-12-07)
    from rtc_ros.recording.episode import iter_episodes

    ex = next(iter(iter_episodes(out / "bags"))).executor
    switches = [int(ex.consumed[i]) for i in range(1, len(ex)) if ex.seq[i] >= 0 and ex.seq[i] != ex.seq[i - 1]
                and ex.consumed[i] > 0]
    assert switches and float(np.median(switches)) >= 5, switches
    assert float(summary[0]["consumed_mean"]) > 0
    # protective stops: the driver's count (the simulator's status) and the report's (the bag's sidecar) agree
    assert ep["protective_stops"] >= 0 and float(summary[0]["protective_stops_mean"]) == ep["protective_stops"]
    assert res["summary"][0]["protective_stops"] == ep["protective_stops"]
    lo, hi = res["summary"][0]["success_ci95"]
    assert 0.0 <= lo <= res["summary"][0]["success_rate"] <= hi <= 1.0 and hi - lo > 0.5  # n = 1: a wide interval
    assert (out / "report" / "throughput_vs_latency.png").is_file()


def csv_rows(path: Path):
    import csv

    with open(path) as fh:
        yield from csv.DictReader(fh)


def test_rerun_archives_the_previous_run(tmp_path: Path) -> None:
    """A second run in the same directory must not mix its report with the first run's bags."""
    from rtc_ros.experiments.sim_latency import archive_previous_run

    assert archive_previous_run(tmp_path) is None  # nothing there yet
    (tmp_path / "bags" / "episode_0000").mkdir(parents=True)
    (tmp_path / "bags" / "episode_0000" / "x.mcap").write_bytes(b"old")
    (tmp_path / "report").mkdir()
    (tmp_path / "results.json").write_text("{}")
    dest = archive_previous_run(tmp_path)
    assert dest is not None and (dest / "bags" / "episode_0000" / "x.mcap").read_bytes() == b"old"
    assert (dest / "results.json").is_file() and (dest / "report").is_dir()
    assert not (tmp_path / "bags").exists() and not (tmp_path / "results.json").exists()


def _live_results(path: Path, rows: list[tuple[str, float, int, bool, int, int]]) -> Path:
    from dataclasses import asdict

    from rtc_ros.experiments.runner import EpisodeResult

    eps = [asdict(EpisodeResult(m, lat, seed, ok, prog, steps, steps if ok else -1, 1.0)) for m, lat, seed, ok, prog, steps
           in rows]
    path.write_text(json.dumps({"episodes": eps}))
    return path


def test_live_pair_differences_by_seed_across_runs(tmp_path: Path, capsys) -> None:
    """``live_results --pair``: A minus B per latency over the seeds both runs hold; throughput from
    progress and simulated ticks; a method missing from a file is named."""
    from rtc_ros.experiments.live_results import load_episodes, main, paired_live_differences, score_per_min

    a = _live_results(tmp_path / "a.json", [("x", 0.0, s, True, 5, 300) for s in range(4)]
                      + [("y", 0.0, 0, False, 1, 750)])
    b = _live_results(tmp_path / "b.json", [("z", 0.0, s, s % 2 == 0, 5 if s % 2 == 0 else 2, 600) for s in range(1, 6)])
    assert score_per_min({"progress": 5, "sim_steps": 300}) == pytest.approx(50.0)  # 5 in 6 s
    rows = paired_live_differences(load_episodes(a, "x"), load_episodes(b, "z"))
    succ, thr = rows
    assert succ["n_pairs"] == thr["n_pairs"] == 3  # seeds 1, 2, 3
    assert (succ["n_a"], succ["n_b"]) == (4, 5)  # each side's episodes at that latency: the tables mark "(n = 3)"
    assert succ["difference"] == pytest.approx(1.0 - 1 / 3)
    assert thr["difference"] == pytest.approx(50.0 - (25.0 + 10.0 + 10.0) / 3)
    assert thr["ci95"][0] <= thr["difference"] <= thr["ci95"][1]
    main(["--pair", f"{a}:x", f"{b}:z"])
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == json.loads(json.dumps(rows))
    with pytest.raises(SystemExit):
        main(["--pair", f"{a}:rtc", f"{b}:z"])
    err = capsys.readouterr().err
    assert "no episodes of method 'rtc'" in err and "['x', 'y']" in err, err
    # a latency only one side has is left out and said so; nothing in common is an error
    c = _live_results(tmp_path / "c.json", [("z", 100.0, 1, True, 5, 300), ("z", 0.0, 9, True, 5, 300)])
    with pytest.raises(SystemExit):
        main(["--pair", f"{a}:x", f"{c}:z"])
    assert "no (latency, seed) pair in both" in capsys.readouterr().err
    d = _live_results(tmp_path / "d.json", [("z", 100.0, 1, True, 5, 300), ("z", 0.0, 2, False, 0, 750)])
    main(["--pair", f"{a}:x", f"{d}:z"])
    out = capsys.readouterr().out
    assert "left out, no common seed: +100 ms" in out and json.loads(out.splitlines()[-1])[0]["n_pairs"] == 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"episodes": [{"method": "x", "seed": 0, "extra_latency_ms": 0.0}]}))
    with pytest.raises(SystemExit):
        main(["--pair", f"{bad}:x", f"{b}:z"])
    assert "episode 0 has no field 'success'" in capsys.readouterr().err
    # simulated-time results (latency_ms, their own throughput, a task per episode): --task picks one
    sim = tmp_path / "sim.json"
    sim.write_text(json.dumps({"episodes": [
        {"method": "x", "task": t, "latency_ms": 0.0, "seed": s, "success": True, "throughput": 40.0 + s + k}
        for k, t in enumerate(("transfer_cube", "conveyor_cube")) for s in range(3)]}))
    with pytest.raises(SystemExit):
        main(["--pair", f"{sim}:x", f"{sim}:x"])
    assert "choose one with --task" in capsys.readouterr().err
    main(["--pair", f"{sim}:x", f"{a}:x", "--task", "conveyor_cube"])
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert rows[1]["metric"] == "throughput" and rows[1]["n_pairs"] == 3
    assert rows[1]["difference"] == pytest.approx(42.0 - 50.0)  # 41, 42, 43 against 50 (5 in 6 s)


def test_live_results_summary_counts_what_the_episodes_say() -> None:
    """The live run's per-group summary (results.json 'summary'): literal expectations, in the default tier."""
    from rtc_ros.experiments.live_results import summarize_results
    from rtc_ros.experiments.runner import EpisodeResult

    eps = [EpisodeResult("rtc", 100.0, s, ok, 5 if ok else 2, 400, step, 9.0, protective_stops=stops)
           for s, ok, step, stops in ((0, True, 300, 0), (1, True, 350, 2), (2, False, -1, 5), (3, True, 250, 0))]
    eps.append(EpisodeResult("sync", 100.0, 0, True, 5, 500, 400, 9.0))  # stops not reported (-1)
    rows = {r["method"]: r for r in summarize_results(eps)}
    rtc = rows["rtc"]
    assert rtc["n"] == 4 and rtc["success_rate"] == 0.75 and rtc["success_ci95"] == [0.301, 0.954]
    assert rtc["progress_mean"] == 4.25 and rtc["time_to_success_s"] == 6.0  # (300 + 350 + 250) / 3 x 20 ms
    assert rtc["protective_stops"] == 7 and rtc["stopped_episodes"] == 2
    assert rows["sync"]["protective_stops"] is None and rows["sync"]["stopped_episodes"] is None
    # the cell keys, as the simulated-time cells name them (an audit: latency_ms, successes, throughput
    # and task were missing); throughput is progress per minute: (5 + 5 + 2 + 5) / 4 in 8 s each -> 31.875
    assert (rtc["latency_ms"], rtc["successes"], rtc["throughput"], rtc["task"]) == (100.0, 3, 31.875, None)
    one = summarize_results([EpisodeResult("rtc", 0.0, 0, True, 5, 300, 280, 9.0, task="conveyor_cube")])[0]
    assert one["task"] == "conveyor_cube" and one["throughput"] == 50.0
