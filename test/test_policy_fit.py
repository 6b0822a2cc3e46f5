"""A policy checked against the robot's parameters (rtc_ros.nodes.policy_fit): the one check policy_inference
and the simulated-time experiment run. Each mismatch names the parameter; none is accepted silently."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import make_small_policy
from rtc_ros.nodes.params import ROLE_INFERENCE, ParameterError, load_params_file, validate
from rtc_ros.nodes.policy_fit import fit_policy
from rtc_ros.policies.spec import load_policy

CONFIG = Path(__file__).resolve().parents[1] / "config" / "sim_bimanual.yaml"
JOINTS = [f"{arm}_{j}" for arm in ("left", "right") for j in
          ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")]


def _params(spec: Path, **overrides):
    values = load_params_file(CONFIG, "policy_inference")
    values.update({"policy_spec": str(spec), "camera_names": ["cam"], **overrides})
    return validate(values, ROLE_INFERENCE)


def _spec(tmp_path: Path, **edits) -> Path:
    path = make_small_policy(tmp_path, image=(32, 32))
    spec = yaml.safe_load(path.read_text())
    spec.update(edits)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_fitting_policy_gives_its_cameras_and_notes_a_different_n_steps(tmp_path) -> None:
    spec = _spec(tmp_path, joint_names=JOINTS, dt=0.02, n_steps=10)
    fit = fit_policy(load_policy(spec), _params(spec))
    assert fit.cameras == ["cam"] and fit.joint_entry == "joint_positions"
    assert len(fit.notes) == 1 and "n_steps" in fit.notes[0] and "10" in fit.notes[0]


def test_a_spec_without_joint_names_or_dt_is_noted(tmp_path) -> None:
    """Both are optional in a spec, so their checks cannot run without them: a reversed joint order or a
    10 Hz policy would run unnoticed. policy_inference logs each note as a warning."""
    spec = _spec(tmp_path)
    fields = yaml.safe_load(spec.read_text())
    fields.pop("dt", None)
    fields.pop("joint_names", None)
    spec.write_text(yaml.safe_dump(fields, sort_keys=False))
    notes = fit_policy(load_policy(spec), _params(spec)).notes
    assert any("no joint_names" in n for n in notes) and any("no dt" in n and "rate_hz = 50" in n for n in notes)


@pytest.mark.parametrize("edits,name", [
    ({"dt": 0.1}, "rate_hz"),  # a 10 Hz policy run at 50 Hz would move five times too fast
    ({"joint_names": JOINTS[7:] + JOINTS[:7]}, "arms"),  # the arms swapped: set arms [right, left]
    ({"joint_names": JOINTS[:9] + [JOINTS[10], JOINTS[9]] + JOINTS[11:]}, "right.joint_names"),  # its elbow, roll
])
def test_a_policy_that_does_not_fit_is_refused_naming_the_parameter(tmp_path, edits, name) -> None:
    spec = _spec(tmp_path, **edits)
    with pytest.raises(ParameterError, match=f"'{name}'") as err:
        fit_policy(load_policy(spec), _params(spec))
    if name == "arms":
        assert "set arms to ['right', 'left']" in str(err.value)
    if name == "right.joint_names":  # the first difference, by arm and position
        assert "joint 2 of arm right (action 9) is 'right_elbow', the policy" in str(err.value)
        assert "has 'right_forearm_roll' there" in str(err.value)


def test_a_rounded_dt_fits_and_another_rate_does_not(tmp_path) -> None:
    """dt 0.0202 for 50 Hz (1 %: a rounded dt, as 0.033 for 30 Hz) fits; 0.021 (5 %) is another rate, refused with
    the dt to write if 50 Hz is meant (a LeRobot user's 30 fps policy with dt 0.033 was refused at 1e-6)."""
    fit_policy(load_policy(_spec(tmp_path / "a", joint_names=JOINTS, dt=0.0202)), _params(_spec(tmp_path / "b")))
    spec = _spec(tmp_path / "c", joint_names=JOINTS, dt=0.021)
    with pytest.raises(ParameterError, match=r"'rate_hz'.*set rate_hz: 47.619 \(if 50 Hz is that rate and the spec's "
                                             r"dt is rounded: give the spec dt: 0.02\)"):
        fit_policy(load_policy(spec), _params(spec))
    # 10x off (a 10 Hz policy at rate_hz 100... here 5 Hz at 50): no advice to write dt = 1 / rate_hz (a 10 Hz
    # walkthrough: that would run the policy 10 times too fast), the missing interpolation said instead
    spec = _spec(tmp_path / "d", joint_names=JOINTS, dt=0.2)
    with pytest.raises(ParameterError, match=r"set rate_hz: 5 \(the executor commands one action per tick") as err:
        fit_policy(load_policy(spec), _params(spec))
    assert "give the spec dt" not in str(err.value)
    spec = _spec(tmp_path / "e", joint_names=JOINTS, dt=0.01)  # a faster policy: interpolation is no advice there
    with pytest.raises(ParameterError, match=r"set rate_hz: 100$"):
        fit_policy(load_policy(spec), _params(spec))


def test_camera_names_that_are_not_the_policy_s_are_named(tmp_path) -> None:
    spec = _spec(tmp_path)
    with pytest.raises(ParameterError, match="'camera_names'.*names its cameras \\['cam'\\]"):
        fit_policy(load_policy(spec), _params(spec, camera_names=["front"]))


def test_cameras_must_match_the_policy_s(tmp_path) -> None:
    spec = make_small_policy(tmp_path)  # joints only
    with pytest.raises(ParameterError, match="'camera_topics'.*uses no camera: set camera_topics and camera_names to"):
        fit_policy(load_policy(spec), _params(spec), cameras_required=False)  # camera_names [cam] configured


def test_an_observation_the_robot_cannot_provide_is_refused(tmp_path) -> None:
    """An extra vector entry (here ``goal``): the spec loads and samples offline, but no topic fills it."""
    import numpy as np

    from rtc_ros.policies.base import Normalizer
    from rtc_ros.policies.mixer import MixerConfig, MLPMixerPolicy
    from rtc_ros.policies.spec import save_policy

    obs_spec = [{"name": "joint_positions", "shape": [14]}, {"name": "goal", "shape": [6]}]
    model = MLPMixerPolicy(MixerConfig(horizon=50, action_dim=14, obs_dim=20, width=16, depth=1, token_hidden=16,
                                       channel_hidden=16, time_dim=8))
    norm = Normalizer(np.zeros(20), np.ones(20), np.zeros(14), np.ones(14))
    spec = save_policy(tmp_path, "goal", model, norm, obs_spec=obs_spec, extra={"dt": 0.02})
    with pytest.raises(ParameterError, match="'policy_spec'.*obs_spec entry 'goal'"):
        fit_policy(load_policy(spec), _params(spec, camera_names=[]))
    # and `check`, "before it moves a robot", says so (it said ok)
    import json

    from rtc_ros.runtime.check import main

    out = tmp_path / "out.txt"
    import contextlib

    with out.open("w") as f, contextlib.redirect_stdout(f):
        rc = main([str(spec), "--repeats", "1"])
    result = json.loads(out.read_text().strip().splitlines()[-1])
    assert rc == 1 and not result["ok"] and "'goal'" in result["robot_observation"]


def test_a_policy_in_other_units_is_noted_with_its_map(tmp_path) -> None:
    """policy_inference logs the conversion once at start, so a wrong map is seen before the arm moves."""
    spec = _spec(tmp_path, joint_names=JOINTS, dt=0.02,
                 robot_units={"left_gripper": {"scale": 2.0, "offset": -0.5}, "right_waist": {"scale": 1.0}})
    notes = fit_policy(load_policy(spec), _params(spec)).notes
    assert notes == ["robot_units: the policy's joint values are converted to and from the robot's (limits, "
                     "joint_states, chunks: robot units): left_gripper: robot = -0.5 + 2 x policy"]


def test_a_joint_history_needs_the_dt_it_was_recorded_at(tmp_path) -> None:
    """Its rows are the dataset's control steps apart: without dt in the spec they would silently be rate_hz's."""
    path = make_small_policy(tmp_path, image=(32, 32), joint_rows=2)
    assert fit_policy(load_policy(path), _params(path)).builder.joint_history == 2  # (make_small_policy: dt 0.02)
    spec = yaml.safe_load(path.read_text())
    del spec["dt"]
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ParameterError, match="joint history of 2 control steps: give the spec the dt"):
        fit_policy(load_policy(path), _params(path))


def test_device_auto_on_the_cpu_with_a_cuda_build_of_torch_is_noted(tmp_path, monkeypatch) -> None:
    """A CUDA build of torch that sees no GPU (a driver mismatch) falls back to the CPU under device auto: noted
    (the node logs it as a warning); a CPU build, or device cpu, is not."""
    import torch

    spec = _spec(tmp_path, joint_names=JOINTS, dt=0.02)
    policy = load_policy(spec, device="cpu")
    monkeypatch.setattr(torch.version, "cuda", None)
    assert fit_policy(policy, _params(spec, device="auto")).notes == []
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    notes = fit_policy(policy, _params(spec, device="auto")).notes
    assert len(notes) == 1 and notes[0].startswith("device auto: this torch is built for CUDA but sees no usable GPU")
    assert fit_policy(policy, _params(spec, device="cpu")).notes == []



def test_a_horizon_mismatch_says_where_the_policy_sets_h(tmp_path) -> None:
    """A LeRobot user set horizon to the n_action_steps they knew; the error said only 'H = 50'."""
    spec = _spec(tmp_path, joint_names=JOINTS, dt=0.02)
    with pytest.raises(ParameterError, match=r"'horizon'.*H = 50 \(the spec's config.horizon\): set horizon: 50"):
        fit_policy(load_policy(spec), _params(spec, horizon=10, s_min=5))


def test_two_cameras_without_camera_names_are_not_crossed(tmp_path) -> None:
    """An audit: with camera_names [] the topics are taken in the order of the policy's cameras, so two topics in
    the other order crossed the cameras without a word. Refused where a topic names the other camera; noted
    otherwise."""
    import numpy as np

    from rtc_ros.policies.base import Normalizer
    from rtc_ros.policies.mixer import MixerConfig, MLPMixerPolicy
    from rtc_ros.policies.spec import save_policy

    obs_dim = 14 + 2 * 8 * 8 * 3
    model = MLPMixerPolicy(MixerConfig(horizon=50, action_dim=14, obs_dim=obs_dim, width=16, depth=1, token_hidden=8,
                                       channel_hidden=16, time_dim=8))
    spec = save_policy(tmp_path, "two_cams", model, Normalizer(np.zeros(obs_dim), np.ones(obs_dim), np.zeros(14),
                                                               np.ones(14)),
                       obs_spec=[{"name": "joint_positions", "shape": [14]}, {"name": "cam_left", "shape": [8, 8, 3]},
                                 {"name": "cam_right", "shape": [8, 8, 3]}], extra={"dt": 0.02, "joint_names": JOINTS})
    policy = load_policy(spec)
    swapped = ["cam_right/image_raw", "cam_left/image_raw"]
    with pytest.raises(ParameterError, match="'camera_names'.*'cam_left' would read cam_right/image_raw"):
        fit_policy(policy, _params(spec, camera_names=[], camera_topics=swapped))
    assert fit_policy(policy, _params(spec, camera_names=["cam_right", "cam_left"], camera_topics=swapped)).cameras \
        == ["cam_right", "cam_left"]
    fit = fit_policy(policy, _params(spec, camera_names=[], camera_topics=swapped[::-1]))
    assert fit.cameras == ["cam_left", "cam_right"] and any("camera_names is empty" in n for n in fit.notes)
