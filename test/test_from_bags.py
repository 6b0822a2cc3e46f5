"""Training from demonstration bags: dataset extraction (exact values) and the CLI end to end (ROS-free)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from rtc_ros.recording.dataset import DatasetError, build_dataset
from rtc_ros.recording.episode import TopicRoles, load_episodes
from rtc_ros.recording.synthetic import reference, write_synthetic_episode

NAMES = ["joint_0", "joint_1", "joint_2"]
H = 10
DT = 0.02


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demos")
    for i in range(3):
        # teleop-style demonstrations: commands + joint states + camera, no executor/chunks
        write_synthetic_episode(root, f"demo_{i:04d}", "rtc", seed=i, task_steps=120, with_executor=False,
                                with_chunks=False, with_commands=True, with_images=True)
    return root


def test_dataset_values(demos: Path) -> None:
    eps = load_episodes(demos / "demo_0000", TopicRoles(images=("camera/image_raw",)), with_images=True)
    spec = [{"name": "joint_positions", "shape": [3]}, {"name": "top", "shape": [6, 8, 3]}]
    ds = build_dataset(eps, spec, NAMES, H, DT, cameras={"top": "camera/image_raw"})
    cmd = eps[0].commands.q
    T = cmd.shape[0]
    obs = ds.observations()
    assert obs.shape == (T, 3 + 6 * 8 * 3) and ds.actions.shape == (T, H, 3)
    # target chunk k = commands k .. k+H-1, holding the last command past the end
    for k in (0, 37, T - 1):
        rows = np.minimum(np.arange(k, k + H), T - 1)
        assert np.allclose(ds.actions[k], cmd[rows], atol=1e-6)
    assert np.allclose(ds.actions[-1], cmd[-1], atol=1e-6)
    # the synthetic commands follow the reference trajectory
    assert np.allclose(cmd[:5], reference(np.arange(5) * DT, 3), atol=1e-9)
    # observation: latest measured joint state (= command - 0.01 in the synthetic bag) ...
    assert np.allclose(obs[:, :3], cmd - 0.01, atol=1e-5)
    # ... and the latest camera frame (value 3*step, published every 5 steps), scaled to [0, 1]
    for k in (0, 4, 5, 23):
        assert np.allclose(obs[k, 3:], (3 * (k - k % 5) % 256) / 255.0, atol=1e-6)


def test_dataset_errors(demos: Path) -> None:
    eps = load_episodes(demos / "demo_0000")
    spec = [{"name": "joint_positions", "shape": [3]}]
    with pytest.raises(DatasetError, match="lacks joints"):
        build_dataset(eps, spec + [], ["joint_0", "joint_1", "elbow"], H, DT)
    with pytest.raises(DatasetError, match="no image topic"):
        build_dataset(eps, spec + [{"name": "wrist", "shape": [4, 4, 3]}], NAMES, H, DT)
    with pytest.raises(DatasetError, match="no command topic"):
        build_dataset(eps, spec, NAMES, H, DT, command_topics=["teleop/commands"])


def test_cli_trains_and_spec_loads(demos: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig
    from rtc_ros.policies.spec import load_policy
    from rtc_ros.recording.from_bags import main

    out = tmp_path / "policy"
    rc = main([str(demos), "--out", str(out), "--name", "demo_policy", "--horizon", str(H),
               "--camera", "top=camera/image_raw", "--image-size", "6x8", "--steps", "150", "--batch-size", "64",
               "--model", "width=32", "--model", "depth=1", "--model", "token_hidden=16",
               "--model", "channel_hidden=32", "--model", "time_dim=16", "--no-progress"])
    assert rc == 0
    spec = yaml.safe_load((out / "demo_policy.yaml").read_text())
    assert spec["joint_names"] == NAMES and spec["config"]["horizon"] == H and spec["config"]["action_dim"] == 3
    assert spec["obs_spec"] == [{"name": "joint_positions", "shape": [3]}, {"name": "top", "shape": [6, 8, 3]}]
    assert spec["training"]["episodes"] == ["demo_0000", "demo_0001", "demo_0002"]
    assert spec["training"]["samples"] == 360 and spec["training"]["skipped_across_pause"] == 0
    # normalisation statistics (own safetensors file) are those of the training data, per image channel
    assert spec["normalization"] == "demo_policy.norm.safetensors" and len((out / "demo_policy.yaml").read_text().splitlines()) < 100
    stats = load_file(str(out / spec["normalization"]))
    eps = [e for i in range(3) for e in load_episodes(demos / f"demo_{i:04d}", with_images=True)]
    ds = build_dataset(eps, spec["obs_spec"], NAMES, H, DT, cameras={"top": "camera/image_raw"})
    a = ds.actions.reshape(-1, 3)
    obs = ds.observations()
    assert np.allclose(stats["action_mean"], a.mean(0), atol=1e-5)
    assert np.allclose(stats["action_std"], a.std(0), atol=1e-5)
    assert np.allclose(stats["obs_mean.joint_positions"], obs[:, :3].mean(0), atol=1e-5)
    # joints: at least the --obs-std-floor (0.05 rad), as the sim recipe: a joint that barely moved is not
    # divided by its tiny std (1 mrad of drift on the robot read as ~1000 std)
    assert np.allclose(stats["obs_std.joint_positions"], np.maximum(obs[:, :3].std(0), 0.05), atol=1e-5)
    assert stats["obs_mean.top"].shape == (3,)
    assert np.allclose(stats["obs_mean.top"], obs[:, 3:].reshape(len(obs), -1, 3).mean((0, 1)), atol=1e-5)
    assert np.allclose(stats["obs_std.top"], obs[:, 3:].reshape(len(obs), -1, 3).std((0, 1)), atol=1e-4)
    assert (out / "demo_policy.safetensors").stat().st_size > 1000
    params = yaml.safe_load((out / "demo_policy_params.yaml").read_text())
    inf = params["/**/policy_inference"]["ros__parameters"]  # (also applies under a namespace)
    assert Path(inf["policy_spec"]) == (out / "demo_policy.yaml").resolve()
    assert inf["camera_names"] == ["top"] and params["/**"]["ros__parameters"]["horizon"] == H
    # the same name again is refused before any training (it overwrote silently)
    assert main([str(demos), "--out", str(out), "--name", "demo_policy", "--steps", "1"]) == 2
    # the spec loads and produces chunks of the right shape for every kind of method
    pol = load_policy(out / "demo_policy.yaml")
    assert 0 < spec["training"]["final_loss"] < 2.0
    obs = np.concatenate([np.zeros(3), np.full(6 * 8 * 3, 0.5)]).astype(np.float32)
    for method in ("rtc", "naive"):
        gen = ChunkGenerator(pol, GeneratorConfig(method=method, n_steps=3))
        c0 = gen.generate(obs)
        c1 = gen.generate(obs, prev_remaining=c0[4:], d=2, s=4)
        assert c0.shape == c1.shape == (H, 3) and np.isfinite(c1).all()


def test_training_learns(demos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Loss falls and sampled chunks land near the demonstrated commands (not a shape-only check)."""
    from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig
    from rtc_ros.policies.spec import load_policy
    from rtc_ros.recording.from_bags import main

    out = tmp_path / "p"
    rc = main([str(demos / "demo_0000"), "--out", str(out), "--name", "p", "--horizon", "4", "--steps", "400",
               "--batch-size", "64", "--lr", "3e-3", "--model", "width=32", "--model", "depth=2",
               "--model", "token_hidden=16", "--model", "channel_hidden=64", "--model", "time_dim=16",
               "--no-progress"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["samples"] == 120 and summary["loss_final"] < 0.5 * summary["loss_first"]
    pol = load_policy(summary["spec"])
    gen = ChunkGenerator(pol, GeneratorConfig(method="naive", n_steps=10))
    (ep,) = load_episodes(demos / "demo_0000")
    errs = []
    for k in (10, 50, 90):
        chunk = np.mean([gen.generate(ep.joint_states.q[k].astype(np.float32)) for _ in range(4)], axis=0)
        errs.append(np.abs(chunk[0] - ep.commands.q[k]).max())
    spread = np.ptp(ep.commands.q, axis=0).max()
    assert np.mean(errs) < 0.25 * spread, (errs, spread)


def test_generated_params_file_points_every_section_at_the_new_policy(tmp_path: Path) -> None:
    """config/bimanual.yaml sets policy_spec in '/**/policy_inference': the generated file must replace it
    there (it added a root 'policy_inference' section, which a namespaced node ignores: it loaded the old
    policy)."""
    from rtc_ros.recording.from_bags import write_params_file
    from rtc_ros.recording.params_file import load_params_file

    src = Path(__file__).resolve().parents[1] / "config" / "bimanual.yaml"
    spec = tmp_path / "new.yaml"
    dest = write_params_file(src, tmp_path / "new_params.yaml", spec, 40, {"cam_high": "cam_high/image_raw"})
    data = yaml.safe_load(dest.read_text())
    assert "policy_inference" not in data  # no root-only section
    for section in data.values():
        p = section["ros__parameters"]
        assert "policy_spec" not in p or p["policy_spec"] == str(spec.resolve())
    assert load_params_file(dest, "policy_inference")["policy_spec"] == str(spec.resolve())
    assert load_params_file(dest, "chunk_executor")["horizon"] == 40


def test_generated_params_file_for_a_short_horizon_is_one_the_nodes_accept(tmp_path: Path) -> None:
    """H = 10 from config/bimanual.yaml: s_min becomes H // 2 = 5, so its 0.2 s start-up ramp (10 ticks) would
    be cut by the next chunk's takeover and the executor refuses it: shortened to s_min ticks (0.1 s)."""
    from rtc_ros.nodes.params import ROLE_EXECUTOR, ROLE_INFERENCE, load_params_file, validate
    from rtc_ros.recording.from_bags import write_params_file

    src = Path(__file__).resolve().parents[1] / "config" / "bimanual.yaml"
    spec = tmp_path / "new.yaml"
    spec.write_text("{}")
    dest = write_params_file(src, tmp_path / "new_params.yaml", spec, 10, {"cam_high": "cam_high/image_raw"})
    ex = validate(load_params_file(dest, "chunk_executor"), ROLE_EXECUTOR)
    assert ex.s_min == 5 and ex.startup_ramp_s == pytest.approx(0.1)
    assert validate(load_params_file(dest, "policy_inference"), ROLE_INFERENCE).horizon == 10


def test_generated_params_file_for_compressed_cameras(tmp_path: Path) -> None:
    """Cameras recorded as image_transport's <topic>/compressed: the generated params give policy_inference
    the base topic with camera_transport compressed (it subscribes <topic>/compressed); a mix is refused."""
    from rtc_ros.nodes.params import ROLE_INFERENCE, load_params_file, validate
    from rtc_ros.recording.dataset import DatasetError
    from rtc_ros.recording.from_bags import write_params_file

    src = Path(__file__).resolve().parents[1] / "config" / "bimanual.yaml"
    spec = tmp_path / "new.yaml"
    spec.write_text("{}")
    dest = write_params_file(src, tmp_path / "new_params.yaml", spec, 50,
                             {"cam_high": "cam_high/image_raw/compressed", "cam_low": "cam_low/image_raw/compressed"})
    p = validate(load_params_file(dest, "policy_inference"), ROLE_INFERENCE)
    assert p.camera_topics == ["cam_high/image_raw", "cam_low/image_raw"] and p.camera_transport == "compressed"
    raw = write_params_file(src, tmp_path / "raw.yaml", spec, 50, {"cam_high": "cam_high/image_raw"})
    assert load_params_file(raw, "policy_inference")["camera_transport"] == "raw"
    with pytest.raises(DatasetError, match="some are <topic>/compressed and some raw"):
        write_params_file(src, tmp_path / "mix.yaml", spec, 50, {"a": "a/image_raw/compressed", "b": "b/image_raw"})


@pytest.mark.parametrize("args,match", [
    (["--image-size", "32"], "--image-size"),
    (["--model", "width=3.5"], "--model"),
    (["--params", "nope.yaml"], "--params nope.yaml: file not found"),
    (["--obs-std-floor", "0"], "--obs-std-floor"),
    (["--obs-std-floor", "nan"], "--obs-std-floor"),
])
def test_bad_options_name_the_option(demos: Path, tmp_path: Path, capsys, args, match) -> None:
    from rtc_ros.recording.from_bags import main

    assert main([str(demos), "--out", str(tmp_path / "o"), "--steps", "1", "--camera", "top=camera/image_raw",
                 *args]) == 2
    assert match in capsys.readouterr().err
    assert main([str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_sim_latency_takes_the_params_file_s_policy_when_none_is_given(tmp_path: Path, monkeypatch) -> None:
    """`sim_latency --config NAME_params.yaml` ran the shipped policy unless --policy was given."""
    monkeypatch.delenv("RTC_POLICY_SPEC", raising=False)
    from rtc_ros.experiments.sim_latency import config_policy_spec
    from rtc_ros.recording.from_bags import write_params_file

    spec = tmp_path / "mine.yaml"
    spec.write_text("name: mine\n")
    src = Path(__file__).resolve().parents[1] / "config" / "sim_bimanual.yaml"
    assert config_policy_spec(src) is None  # ${RTC_POLICY_SPEC} unset: the shipped default is used
    dest = write_params_file(src, tmp_path / "mine_params.yaml", spec, 50, {"cam_high": "cam_high/image_raw"})
    assert config_policy_spec(dest) == spec.resolve()


def test_a_template_s_gripper_bounds_keep_their_raw_limits_under_new_statistics() -> None:
    """--spec policies/bimanual_cnn_h50.yaml: its bounded_low/high are in its own normalised units; copied as
    they were into a policy with other statistics they squashed the gripper into [0.04, 0.48] instead of 0..1."""
    from rtc_ros.policies.base import Normalizer
    from rtc_ros.policies.spec import load_policy
    from rtc_ros.recording.from_bags import _rebounded

    spec = Path(__file__).resolve().parents[1] / "policies" / "bimanual_cnn_h50.yaml"
    pol = load_policy(spec)
    cfg = yaml.safe_load(spec.read_text())["config"]
    old = pol.normalizer
    new = Normalizer(old.obs_mean, old.obs_std, np.asarray(old.action_mean) + 0.3, np.asarray(old.action_std) * 2.0)
    got = _rebounded(str(spec), cfg, new)
    for key in ("bounded_low", "bounded_high"):
        for d, v_old, v_new in zip(cfg["bounded_dims"], cfg[key], got[key]):
            raw_old = v_old * old.action_std[d] + old.action_mean[d]
            assert v_new * new.action_std[d] + new.action_mean[d] == pytest.approx(raw_old, abs=1e-9)
            assert raw_old == pytest.approx(0.0 if key == "bounded_low" else 1.0, abs=1e-5)  # the grippers' 0..1


def test_fit_normalizer_names_the_dimensions_it_floors(caplog: pytest.LogCaptureFixture) -> None:
    """A joint constant in the data: its std is the floor, and the fit says which dimension."""
    from rtc_ros.policies.stats import fit_normalizer

    rng = np.random.default_rng(0)
    obs = np.column_stack([rng.normal(size=50), np.full(50, 0.3), rng.normal(size=50)])
    with caplog.at_level("WARNING"):
        norm = fit_normalizer(obs, rng.normal(size=(50, 2)), [{"name": "joint_positions", "shape": [3]}],
                              vector_std_floor=0.05)
    assert norm.obs_std[1] == pytest.approx(0.05) and norm.obs_std[0] > 0.5
    assert "joint_positions[1]" in caplog.text and "joint_positions[0]" not in caplog.text
    # per element (a gripper in metres, whose whole range is under one 0.05 floor: a bring-up walkthrough)
    grip = np.column_stack([rng.normal(size=50), rng.uniform(0.0, 0.04, size=50), np.full(50, 0.3)])
    norm = fit_normalizer(grip, rng.normal(size=(50, 2)), [{"name": "joint_positions", "shape": [3]}],
                          vector_std_floor={"joint_positions": [0.05, 0.002, 0.05]})
    assert 0.005 < norm.obs_std[1] < 0.02 and norm.obs_std[2] == pytest.approx(0.05)  # its own std kept
    with pytest.raises(ValueError, match="vector_std_floor for 'joint_positions' must be one value or 3 values"):
        fit_normalizer(grip, rng.normal(size=(50, 2)), [{"name": "joint_positions", "shape": [3]}],
                       vector_std_floor={"joint_positions": [0.05, 0.002]})
    with pytest.raises(ValueError, match=r"vector_std_floor names \['joint_position'\], not vector entries"):
        fit_normalizer(grip, rng.normal(size=(50, 2)), [{"name": "joint_positions", "shape": [3]}],
                       vector_std_floor={"joint_position": 0.05})


def test_fit_normalizer_refuses_0_255_images() -> None:
    """The robot's ObservationBuilder feeds images in [0, 1]; statistics fitted on 0..255 pixels made the
    image input nearly constant on the robot (silently ignored)."""
    from rtc_ros.policies.stats import fit_normalizer

    spec = [{"name": "joint_positions", "shape": [2]}, {"name": "cam", "shape": [2, 2, 3]}]
    obs = np.concatenate([np.zeros((4, 2)), np.full((4, 12), 200.0)], 1)
    with pytest.raises(ValueError, match="image entry 'cam' has values up to 200"):
        fit_normalizer(obs, np.zeros((4, 2)), spec)
    fit_normalizer(np.concatenate([np.zeros((4, 2)), np.full((4, 12), 0.8)], 1), np.zeros((4, 2)), spec)


def test_from_bags_trains_for_training_time_rtc(demos: Path, tmp_path: Path, capsys) -> None:
    """``--prefix-conditioning D``: the recorded demos train a policy for ``rtc_trained`` (the spec says D;
    the generator then gives the frozen prefix exactly); D >= H is refused naming the option's field."""
    from rtc_ros.policies.spec import load_policy
    from rtc_ros.recording.from_bags import main
    from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig

    small = ["--model", "width=16", "--model", "depth=1", "--model", "token_hidden=8", "--model", "channel_hidden=16",
             "--model", "time_dim=8", "--steps", "20", "--batch-size", "16", "--no-progress", "--horizon", str(H)]
    out = tmp_path / "p"
    assert main([str(demos), "--out", str(out), "--name", "t", "--prefix-conditioning", "2", *small]) == 0
    pol = load_policy(out / "t.yaml")
    assert pol.spec["training"]["prefix_conditioning"] == 2
    gen = ChunkGenerator(pol, GeneratorConfig(method="rtc_trained", n_steps=3))
    obs = np.zeros(pol.obs_dim, dtype=np.float32)
    c0 = gen.generate(obs)
    c1 = gen.generate(obs, prev_remaining=c0[4:], d=2, s=4)
    np.testing.assert_allclose(c1[:2], c0[4:6], atol=1e-5)  # the frozen prefix, given exactly
    assert main([str(demos), "--out", str(tmp_path / "q"), "--name", "t", "--prefix-conditioning", str(H),
                 *small]) == 2
    assert f"--prefix-conditioning {H} must be < H = {H}" in capsys.readouterr().err
    assert main([str(demos), "--out", str(tmp_path / "r"), "--prefix-conditioning", "-1", *small]) == 2


def test_a_joint_only_policy_from_a_params_file_with_cameras_gets_no_cameras(demos: Path, tmp_path: Path,
                                                                           monkeypatch) -> None:
    """--obs-spec without the params file's camera (a joint-only policy): the generated params file has no camera
    (a deployment walkthrough's kept the template's, and policy_inference refused to start on it), and the
    camera's frames are not decoded (they were, then dropped)."""
    from rtc_ros.nodes.params import ROLE_INFERENCE, load_params_file, validate
    from rtc_ros.recording import from_bags
    from rtc_ros.recording.from_bags import main

    decoded = []
    load = from_bags.load_bag_episodes
    monkeypatch.setattr(from_bags, "load_bag_episodes", lambda b, cams, *a: decoded.append(dict(cams)) or load(b, cams, *a))

    params = tmp_path / "robot.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"arms": ["arm"], "arm": {"joint_names": NAMES},
                                                                  "rate_hz": 50.0, "s_min": 5}},
                                      "/**/policy_inference": {"ros__parameters": {
                                          "camera_topics": ["camera/image_raw"], "camera_names": ["top"]}}}))
    out = tmp_path / "joint_only"
    assert main([str(demos), "--out", str(out), "--name", "j", "--horizon", str(H), "--params", str(params),
                 "--obs-spec", "joint_positions:3", "--steps", "2", "--batch-size", "8", "--model", "width=16",
                 "--model", "depth=1", "--model", "token_hidden=8", "--model", "channel_hidden=16",
                 "--model", "time_dim=8", "--no-progress"]) == 0
    inf = load_params_file(out / "j_params.yaml", "policy_inference")
    assert inf["camera_topics"] == [] and inf["camera_names"] == []
    assert validate(inf, ROLE_INFERENCE).camera_topics == []
    assert decoded == [{}]


def test_an_empty_episode_is_left_out_not_the_end_of_the_build(demos: Path, caplog) -> None:
    """Started and stopped at once (nothing recorded): left out with a warning, the others built (it stopped the
    whole build before); with joint states but no commands it is a wrong topic, still an error."""
    from rtc_ros.recording.episode_types import Episode

    eps = load_episodes(demos / "demo_0000")
    spec = [{"name": "joint_positions", "shape": [3]}]
    empty = Episode("empty_0001", demos / "empty_0001", {}, 0, 0, counts={"rosout": 2})
    with caplog.at_level("WARNING"):
        ds = build_dataset([empty, *eps], spec, NAMES, H, DT)
    assert ds.episodes == ["demo_0000"] and "skipping empty_0001 (empty: no joint states and no commands" in caplog.text
    with pytest.raises(DatasetError, match=r"no usable demonstration episode \(1 empty\)"):
        build_dataset([empty], spec, NAMES, H, DT)
    odd = Episode("odd_type", demos / "odd_type", {}, 0, 0, counts={"/robot2/joint_states": 500})  # another type or
    with pytest.raises(DatasetError, match="odd_type: no commands recorded"):  # namespace: a wrong topic, an error
        build_dataset([odd, *eps], spec, NAMES, H, DT)
    joints_only = Episode("joints_only", demos / "joints_only", {}, 0, 0, joint_states=eps[0].joint_states)
    with pytest.raises(DatasetError, match="joints_only: no commands recorded"):
        build_dataset([joints_only, *eps], spec, NAMES, H, DT)
