"""robot_units: a policy whose units differ from the robot's (rtc_ros.policies.units), ROS-free.

The strong check: a policy re-expressed in other units -- its normalisation statistics converted into
degrees / a flipped sign / a gripper's 0..1 opening -- plus the spec's ``robot_units`` saying how to get
back must give the same chunks, plain and guided, from the same observation in robot units, as the
original does. Any conversion missing or applied twice (observation, prefix, chunk) breaks it.
"""

from __future__ import annotations

import math
from pathlib import Path
import numpy as np
import pytest
import torch
import yaml
from safetensors.numpy import load_file, save_file

from rtc_ros.policies.spec import PolicySpecError, load_policy
from rtc_ros.policies.units import RobotUnitsPolicy, parse_robot_units
from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig
from conftest import make_small_policy

NAMES = [f"{arm}_{j}" for arm in ("left", "right")
         for j in ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")]
#: robot = offset + scale x policy: left waist in degrees, right shoulder flipped, grippers ALOHA-like
UNITS = {"left_waist": "degrees", "right_shoulder": {"scale": -1.0},
         "left_gripper": {"scale": 2.1123, "offset": -0.6213}, "right_gripper": {"scale": 2.1123, "offset": -0.6213}}


@pytest.mark.parametrize("method", ["naive", "rtc"])
def test_positive_scales_reproduce_the_original_exactly(tmp_path, method):
    units = {"left_waist": "degrees", "left_gripper": {"scale": 2.1123, "offset": -0.6213},
             "right_elbow": {"offset": 0.3}}
    orig_path = make_small_policy(tmp_path, horizon=20)
    spec = yaml.safe_load(orig_path.read_text())
    spec["joint_names"] = NAMES
    orig_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    u = parse_robot_units(units, NAMES)
    stats = load_file(str(tmp_path / spec["normalization"]))
    conv = dict(stats)
    for mean, std in (("obs_mean.joint_positions", "obs_std.joint_positions"), ("action_mean", "action_std")):
        conv[mean] = ((stats[mean] - u.offset) / u.scale).astype(np.float32)
        conv[std] = (stats[std] / u.scale).astype(np.float32)
    save_file(conv, str(tmp_path / "conv.norm.safetensors"))
    conv_path = tmp_path / "conv.yaml"
    conv_path.write_text(yaml.safe_dump(dict(spec, normalization="conv.norm.safetensors", robot_units=units)))
    orig, pol = load_policy(orig_path), load_policy(conv_path)
    q = np.linspace(-0.4, 0.5, 14)  # robot units
    obs = {"joint_positions": q}
    cfg = GeneratorConfig(method="naive", n_steps=5, seed=3)
    prev = ChunkGenerator(orig, cfg).generate(obs)
    cfg = GeneratorConfig(method=method, n_steps=5, seed=4)
    prefix = (prev[5:], 2, 5) if method == "rtc" else ()
    a = ChunkGenerator(orig, cfg).generate(obs, *prefix)
    b = ChunkGenerator(pol, cfg).generate(obs, *prefix)
    assert np.abs(a).max() > 0.01 and np.abs(a - prev).max() > 1e-3  # chunks that say something
    np.testing.assert_allclose(b, a, atol=2e-5)
    # the flat layout (the Figure 5 harness, check --obs-from-bag) converts its joint entry the same way
    flat = q.astype(np.float32)
    np.testing.assert_allclose(ChunkGenerator(pol, cfg).generate(flat, *prefix), a, atol=2e-5)
    # typical_observation is in robot units: the inner policy's mean mapped back
    np.testing.assert_allclose(pol.typical_observation(), orig.typical_observation(), atol=1e-5)
    # without the map the same statistics give other chunks (the test can fail)
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump(dict(spec, normalization="conv.norm.safetensors")))
    c = ChunkGenerator(load_policy(bare), cfg).generate(obs, *prefix)
    assert np.abs(c - a).max() > 0.05


def test_a_flipped_joint_is_flipped_into_the_policy_and_back(small_policy, tmp_path):
    spec = yaml.safe_load(small_policy.read_text())
    path = tmp_path / "flip.yaml"
    for k in ("weights", "normalization"):
        spec[k] = str(small_policy.parent / spec[k])
    path.write_text(yaml.safe_dump(dict(spec, joint_names=NAMES, robot_units={"right_shoulder": {"scale": -1.0}})))
    pol, inner = load_policy(path), load_policy(small_policy)
    a = torch.as_tensor(np.linspace(-0.3, 0.3, 14))[None]
    flipped = a.clone()
    flipped[..., 8] *= -1
    torch.testing.assert_close(pol.normalize_actions(a), inner.normalize_actions(flipped))
    torch.testing.assert_close(pol.unnormalize_actions(pol.normalize_actions(a)), a.float(), atol=1e-6, rtol=0)
    ctx_a, ctx_b = pol.encode({"joint_positions": a[0].numpy()}), inner.encode({"joint_positions": flipped[0].numpy()})
    torch.testing.assert_close(ctx_a, ctx_b)


def test_the_map_and_its_inverse():
    u = parse_robot_units(UNITS, NAMES)
    assert u.scale[0] == pytest.approx(math.pi / 180) and u.scale[8] == -1.0 and u.offset[6] == -0.6213
    assert u.converted == ["left_waist", "left_gripper", "right_shoulder", "right_gripper"]
    x = np.random.default_rng(0).normal(size=(3, 14))
    np.testing.assert_allclose(u.to_policy(u.to_robot(x)), x, atol=1e-12)
    t = torch.as_tensor(x, dtype=torch.float32)
    np.testing.assert_allclose(u.to_robot(t).numpy(), u.to_robot(x), atol=1e-5)
    assert u.to_robot(np.ones(14))[6] == pytest.approx(1.4910)  # an ALOHA gripper fully open, in motor rad
    assert "left_gripper: robot = -0.6213 + 2.1123 x policy" in u.describe()


@pytest.mark.parametrize("value, names, field", [
    ({"left_wasit": "degrees"}, NAMES, "robot_units.left_wasit: not one of the spec's joint_names; did you mean 'left_waist'"),
    ({"left_waist": {"scale": 0}}, NAMES, "robot_units.left_waist.scale: must not be 0"),
    ({"left_waist": {"scale": "2"}}, NAMES, "robot_units.left_waist.scale: must be a finite number"),
    ({"left_waist": {"offset": float("nan")}}, NAMES, "robot_units.left_waist.offset: must be a finite number"),
    ({"left_waist": {"scael": 2.0}}, NAMES, "robot_units.left_waist: must be 'degrees' or a mapping"),
    ({"left_waist": "radians"}, NAMES, "robot_units.left_waist: must be 'degrees' or a mapping"),
    ({"left_waist": "degrees"}, None, "robot_units: needs the spec's joint_names"),
    (["degrees"], NAMES, "robot_units: must be a mapping"),
])
def test_bad_maps_name_the_field(value, names, field):
    with pytest.raises(ValueError, match="^" + field.replace(".", r"\.").replace("(", r"\(")):
        parse_robot_units(value, names)


def test_a_spec_with_a_bad_map_fails_to_load_naming_the_field(tmp_path):
    path = make_small_policy(tmp_path, horizon=20)
    spec = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(dict(spec, robot_units={"left_waist": "degrees"})))
    with pytest.raises(PolicySpecError, match="field 'robot_units': needs the spec's joint_names"):
        load_policy(path)
    path.write_text(yaml.safe_dump(dict(spec, joint_names=NAMES, robot_units={"right_gripper": {"scale": 0.0}})))
    with pytest.raises(PolicySpecError, match=r"field 'robot_units\.right_gripper\.scale': must not be 0"):
        load_policy(path)
    path.write_text(yaml.safe_dump(dict(spec, joint_names=NAMES, robot_unit={})))
    with pytest.raises(PolicySpecError, match="did you mean 'robot_units'"):
        load_policy(path)


def test_check_runs_a_policy_in_other_units_and_says_so(tmp_path, small_policy):
    from rtc_ros.runtime.check import check_policy

    spec = yaml.safe_load(small_policy.read_text())
    for k in ("weights", "normalization"):
        spec[k] = str(small_policy.parent / spec[k])
    path = tmp_path / "units.yaml"
    path.write_text(yaml.safe_dump(dict(spec, joint_names=NAMES, robot_units=UNITS)))
    out = check_policy(load_policy(path), d=3, s=10, repeats=1)
    assert out["ok"] and out["robot_units"].startswith("left_waist: robot = 0 + 0.0174533 x policy")


def test_a_template_in_other_units_gives_its_bounds_in_robot_units(tmp_path):
    """from_bags trains on the bags' robot units: a template's bounded gripper (0..1 in its units) is re-expressed
    through its robot_units (a negative scale swaps the ends)."""
    from rtc_ros.policies.base import Normalizer
    from rtc_ros.recording.from_bags import _rebounded

    shipped = Path(__file__).resolve().parents[1] / "policies" / "bimanual_cnn_h50.yaml"
    spec = yaml.safe_load(shipped.read_text())
    for k in ("weights", "normalization"):
        spec[k] = str(shipped.parent / spec[k])
    cfg = spec["config"]
    dims = [int(d) for d in cfg["bounded_dims"]]
    identity = Normalizer.identity(1, 14)
    plain = _rebounded(str(shipped), cfg, identity)  # the template's raw limits: the grippers' 0..1
    np.testing.assert_allclose(plain["bounded_low"], [0.0] * len(dims), atol=1e-5)
    np.testing.assert_allclose(plain["bounded_high"], [1.0] * len(dims), atol=1e-5)
    name = spec["joint_names"][dims[0]]
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(dict(spec, robot_units={name: {"scale": -2.0, "offset": 1.0}})))
    out = _rebounded(str(path), cfg, identity)
    np.testing.assert_allclose([out["bounded_low"][0], out["bounded_high"][0]], [-1.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(out["bounded_high"][1:], plain["bounded_high"][1:], atol=1e-6)


def _variant(small_policy: Path, tmp_path: Path, name: str, **edits) -> Path:
    spec = yaml.safe_load(small_policy.read_text())
    for k in ("weights", "normalization"):
        spec[k] = str(small_policy.parent / spec[k])
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**spec, **edits}))
    return path


def test_a_map_needs_a_joint_entry_and_keeps_shape_errors_named(small_policy, tmp_path):
    """A flat 'obs' vector: what its joints are is unknown, so a map that converted only the actions is refused;
    wrong sizes are still named by the policy (not a numpy broadcast error)."""
    flat_path = _two_entry_policy(tmp_path, [{"name": "obs", "shape": [14]}], {"joint_names": NAMES, "robot_units": UNITS})
    with pytest.raises(PolicySpecError, match=r"field 'robot_units': obs_spec has no joint entry .* \['obs'\]"):
        load_policy(flat_path)
    pol = load_policy(_variant(small_policy, tmp_path, "ok", joint_names=NAMES, robot_units=UNITS))
    with pytest.raises(ValueError, match="14"):
        pol.encode({"joint_positions": np.zeros(13)})
    with pytest.raises(ValueError, match=r"flat observations must be \(B, 14\)"):
        pol.encode(np.zeros((1, 13), dtype=np.float32))
    with pytest.raises(ValueError, match="raw actions must have M = 14 values"):
        pol.normalize_actions(torch.zeros(1, 20, 13))
    with pytest.raises(PolicySpecError, match=r"robot_units\.left_waist\.scale.*write 1\.0e-3"):
        load_policy(_variant(small_policy, tmp_path, "sci", joint_names=NAMES,
                             robot_units={"left_waist": {"scale": "1e-3"}}))


def _two_entry_policy(tmp_path: Path, obs_spec: list, extra: dict) -> Path:
    from rtc_ros.policies.base import Normalizer
    from rtc_ros.policies.mixer import MixerConfig, MLPMixerPolicy
    from rtc_ros.policies.spec import save_policy

    torch.manual_seed(0)
    o = sum(int(np.prod(e["shape"])) for e in obs_spec)
    model = MLPMixerPolicy(MixerConfig(horizon=20, action_dim=14, obs_dim=o, width=32, depth=1, token_hidden=32,
                                       channel_hidden=64, time_dim=16))
    with torch.no_grad():
        torch.nn.init.normal_(model.out.weight, std=0.3)
    return save_policy(tmp_path, f"p{o}", model, Normalizer(np.zeros(o), np.ones(o), np.zeros(14), np.ones(14)),
                       obs_spec=obs_spec, extra=extra)


def test_two_joint_entries_are_both_converted_named_or_flat(tmp_path):
    path = _two_entry_policy(tmp_path, [{"name": "qpos", "shape": [14]}, {"name": "joint_positions", "shape": [14]}],
                             {"joint_names": NAMES, "robot_units": {"left_waist": "degrees"}})
    pol = load_policy(path)
    q = np.linspace(-1.0, 1.0, 14)
    cfg = GeneratorConfig(method="naive", n_steps=5, seed=1)
    named = ChunkGenerator(pol, cfg).generate({"qpos": q})
    flat = ChunkGenerator(pol, cfg).generate(np.concatenate([q, q]).astype(np.float32))
    np.testing.assert_allclose(named, flat, atol=1e-5)
    tobs = pol.typical_observation()
    assert tobs[0] == tobs[14] == 0.0  # the inner mean 0 in robot units: 0 + 0 x pi/180


def test_a_weak_policy_in_other_units_than_the_policy_is_refused(small_policy, tmp_path):
    pol = load_policy(_variant(small_policy, tmp_path, "u", joint_names=NAMES, robot_units=UNITS))
    same = load_policy(_variant(small_policy, tmp_path, "u2", joint_names=NAMES, robot_units=UNITS))
    bare = load_policy(small_policy)
    ChunkGenerator(pol, GeneratorConfig(method="bid", n_steps=2), same)  # the same map: fine
    for weak, strong in ((bare, pol), (pol, bare)):
        with pytest.raises(ValueError, match="^weak_policy_spec: BID's weak policy must see the robot in the same units"):
            ChunkGenerator(strong, GeneratorConfig(method="bid", n_steps=2), weak)
