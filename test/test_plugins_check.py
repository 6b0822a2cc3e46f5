"""Spec ``model:`` plugins (registered names, import paths) and the policy check command."""

from __future__ import annotations

import json

import pytest
import yaml

from rtc_ros.policies.plugins import BUILTIN_MODELS, build_model, registered_models, resolve_model_factory
from rtc_ros.policies.spec import PolicySpecError, load_policy


def test_builtin_and_import_path_resolve_to_the_same_factory() -> None:
    assert "mlp_mixer" in registered_models() and BUILTIN_MODELS["mlp_mixer"] == "rtc_ros.policies.mixer:make_mixer"
    assert resolve_model_factory("mlp_mixer") is resolve_model_factory("rtc_ros.policies.mixer:make_mixer")
    net = build_model("mlp_mixer", dict(horizon=8, action_dim=2, obs_dim=3, width=16, depth=1, token_hidden=8,
                                        channel_hidden=16, time_dim=8))
    assert (net.horizon, net.action_dim, net.obs_dim) == (8, 2, 3)


@pytest.mark.parametrize("model,match", [
    ("diffusion_transformer", r"unknown model 'diffusion_transformer'; registered: \[.*'mlp_mixer'"),
    ("no_such_package.mod:make", "cannot import module 'no_such_package.mod'"),
    ("rtc_ros.policies.mixer:nothing_here", "has no attribute 'nothing_here'"),
    ("rtc_ros.policies.mixer:MODEL_REGISTRY", "is not callable"),
])
def test_spec_model_errors_name_the_field(small_policy, tmp_path, model: str, match: str) -> None:
    spec = yaml.safe_load(small_policy.read_text())
    spec["model"] = model
    for f in ("weights", "normalization"):
        spec[f] = str((small_policy.parent / spec[f]).resolve())
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    with pytest.raises(PolicySpecError, match="field 'model'") as exc:
        load_policy(bad)
    import re

    assert re.search(match, str(exc.value)), str(exc.value)


def test_factory_config_errors_name_config(small_policy, tmp_path) -> None:
    spec = yaml.safe_load(small_policy.read_text())
    spec["config"]["no_such_size"] = 3
    for f in ("weights", "normalization"):
        spec[f] = str((small_policy.parent / spec[f]).resolve())
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    with pytest.raises(PolicySpecError, match="field 'config'.*no_such_size"):
        load_policy(bad)


def test_check_command_json(small_policy, capsys) -> None:
    from rtc_ros.runtime.check import main

    rc = main([str(small_policy), "--d", "5", "--s", "20", "--repeats", "2"])
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("horizon", "action_dim", "plain_ms", "guided_ms", "guided_over_plain", "prefix_error_plain",
                "prefix_error_guided", "finite"):
        assert key in r, key
    assert r["horizon"] == 50 and r["action_dim"] == 14 and r["finite"] is True
    assert rc == (0 if r["ok"] else 1)
    assert r["prefix_error_guided"] < r["prefix_error_plain"]


def test_check_command_fails_on_a_broken_spec(tmp_path, capsys) -> None:
    from rtc_ros.runtime.check import main

    missing = tmp_path / "nope.yaml"
    assert main([str(missing)]) == 1
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["ok"] is False and "not found" in r["error"]


def test_check_command_names_the_spec_and_the_error_when_sampling_fails(small_policy, capsys, monkeypatch) -> None:
    """An encode that indexes an observation it is not given raised a bare IndexError traceback."""
    from rtc_ros.runtime import check

    def broken(*args, **kwargs):
        raise IndexError("too many indices for tensor of dimension 2")

    monkeypatch.setattr(check, "check_policy", broken)
    assert check.main([str(small_policy)]) == 1
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["ok"] is False and r["error"] == f"{small_policy}: sampling failed: IndexError: too many indices for tensor of dimension 2"


def test_check_warns_of_actions_beyond_a_whole_turn(small_policy) -> None:
    """A LeRobot policy in degrees without robot_units passed check silently (only the bring-up's limits saw it)."""
    import numpy as np

    from rtc_ros.runtime.check import unit_warnings

    policy = load_policy(small_policy)
    H, M = policy.horizon, policy.action_dim
    radians = np.full((H, M), 0.5)
    radians[:, 3] = -3.1  # within a turn: no warning
    assert unit_warnings(policy, [radians, radians]) == []
    degrees = radians.copy()
    degrees[10, 2] = 95.0
    (text,) = unit_warnings(policy, [radians, degrees])
    assert policy.joint_names is None  # (named by index; with joint_names by name, as the shipped specs)
    assert "action 2 up to 95" in text and "robot_units" in text and "action 3" not in text


def test_check_at_a_recorded_observation_warns_of_a_first_action_far_from_the_arm(small_policy) -> None:
    """A radian policy given robot_units: degrees sampled ~0 beside a shoulder at -0.96 and passed (a walkthrough);
    index 0 is the command at the observation's step, near where the arm is (the shipped policies at the make-demo
    bags: <= 0.056 rad). Only at a recorded observation (the normalisation mean is none: the shipped policies'
    first actions are up to 0.74 rad off it); grippers, which squeeze off their command, are not compared."""
    import numpy as np

    from rtc_ros.runtime.check import check_policy, first_action_warnings

    policy = load_policy(small_policy)
    M = policy.action_dim
    policy.spec["joint_names"] = [f"j{k}" for k in range(M - 1)] + ["left_gripper"]
    obs = policy.typical_observation().copy()
    e = policy.observation_builder.entries[0]
    q = np.linspace(-1.0, 1.0, M)
    obs[e.offset:e.offset + M] = q
    chunk = np.tile(q + 0.05, (policy.horizon, 1))
    assert first_action_warnings(policy, obs, [chunk]) == []
    chunk[0, M - 1] += 0.6  # the gripper: not compared
    assert first_action_warnings(policy, obs, [chunk]) == []
    chunk[0, 3] = 0.0  # degrees taken for radians: ~0 where the joint is at q[3]
    (text,) = first_action_warnings(policy, obs, [chunk])
    assert f"rad from the recorded position of j3 ({q[3]:.3g};" in text and "robot_units" in text
    assert not any("first action" in w for w in check_policy(policy, 5, 20, repeats=1)["warnings"])  # (no bag)


def test_check_first_action_leaves_out_the_grippers_named_by_gripper_joints(small_policy) -> None:
    """A Franka's finger (``fr3_finger_joint1``) is no *gripper: ``--gripper-joints`` names it as the nodes'
    ``<arm>.gripper_joints`` does (until 2026-12-07 the check told grippers by the name's suffix alone)."""
    import numpy as np

    from rtc_ros.runtime.check import first_action_warnings

    policy = load_policy(small_policy)
    M = policy.action_dim
    policy.spec["joint_names"] = [f"fr3_joint{k}" for k in range(M - 1)] + ["fr3_finger_joint1"]
    obs = policy.typical_observation().copy()
    e = policy.observation_builder.entries[0]
    obs[e.offset:e.offset + M] = 0.0
    chunk = np.zeros((policy.horizon, M))
    chunk[0, M - 1] = 0.6  # the finger squeezes off its command
    (text,) = first_action_warnings(policy, obs, [chunk])  # by default a finger is an arm joint
    assert "fr3_finger_joint1" in text
    assert first_action_warnings(policy, obs, [chunk], ("fr3_finger_*",)) == []
    assert first_action_warnings(policy, obs, [chunk], ("fr3_finger_joint1",)) == []
    assert "fr3_finger_joint1" in first_action_warnings(policy, obs, [chunk], ())[0]


def _variant(small_policy, tmp_path, name: str, text: str, **updates) -> "Path":
    """The small policy's spec updated by ``updates``, with ``text`` appended (paths made absolute)."""
    spec = yaml.safe_load(small_policy.read_text())
    spec.update(updates)
    for f in ("weights", "normalization"):
        spec[f] = str((small_policy.parent / spec[f]).resolve())
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec) + text)
    return path


@pytest.mark.parametrize("text,match", [
    ("units: degrees\n", r"field 'units': unknown field; did you mean 'robot_units'"),
    ("joint_units: degrees\n", r"field 'joint_units': unknown field; did you mean 'robot_units'"),
    ("fps: 10\n", r"field 'fps': 10 disagrees with dt: 0.02"),
    ("control_period: 0.1\n", r"field 'control_period': 0.1 disagrees with dt: 0.02"),
    ("robot_units: {}\nrobot_units: degrees\n", r"field 'robot_units' is given twice"),
])
def test_spec_fields_read_otherwise_or_given_twice_are_refused(small_policy, tmp_path, text, match) -> None:
    """An audit: `units:` / `joint_units:` (meant as robot_units) were ignored -- degrees read as radians --, a dt
    contradicting the spec's fps was used, and a key given twice silently took its later value."""
    assert yaml.safe_load(small_policy.read_text())["dt"] == 0.02
    with pytest.raises(PolicySpecError, match=match):
        load_policy(_variant(small_policy, tmp_path, "bad", text))
    load_policy(_variant(small_policy, tmp_path, "agree", "fps: 50\n"))  # agreeing: fine


@pytest.mark.parametrize("source,match", [
    ("def make(:\n", r"importing module 'plug_\w+' failed: SyntaxError"),
    ("X = undefined_name\n", r"importing module 'plug_\w+' failed: NameError"),
    ("def make():\n    return None\n", r"its factory cannot be called as factory\(config: dict\)"),
])
def test_a_plug_in_that_does_not_import_or_take_a_config_names_model(small_policy, tmp_path, monkeypatch, source,
                                                                     match) -> None:
    """An audit: a plug-in module raising other than ImportError at import gave a raw traceback (the node's
    refusal did not name policy_spec, `check` printed no JSON), and a factory taking no config was blamed on
    `config`."""
    import uuid

    module = f"plug_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PolicySpecError, match="field 'model'") as exc:
        load_policy(_variant(small_policy, tmp_path, "plug", "", model=f"{module}:make"))
    import re

    assert re.search(match, str(exc.value)), str(exc.value)


def test_a_spec_that_is_no_text_file_is_said_so(tmp_path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"\xff\xfemodel: x\n")
    with pytest.raises(PolicySpecError, match="not UTF-8 text"):
        load_policy(tmp_path / "latin1.yaml")
    with pytest.raises(PolicySpecError, match="is a directory, not a file"):
        load_policy(tmp_path)


def test_an_observation_layout_other_than_the_statistics_was_written_for_is_refused(small_policy_cam, tmp_path) -> None:
    """An audit: a copy of a spec with its obs_spec entries reordered or reshaped ([3, 32, 32] for [32, 32, 3])
    loaded and passed `check` (sampled at the mean, every input 0) -- the model read misplaced inputs. The
    statistics file records the layout (since 2026-12-07, late) and a spec giving another is refused; a file
    without it (older) is not checked."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    spec = yaml.safe_load(small_policy_cam.read_text())
    obs = spec["obs_spec"]
    assert [e["name"] for e in obs] == ["joint_positions", "cam"]
    for name, layout in (("reordered", [obs[1], obs[0]]), ("chw", [obs[0], {"name": "cam", "shape": [3, 32, 32]}])):
        path = _variant(small_policy_cam, tmp_path, name, "", obs_spec=layout)
        with pytest.raises(PolicySpecError, match="field 'obs_spec'.*is the layout the statistics"):
            load_policy(path)
    stats = (small_policy_cam.parent / spec["normalization"]).resolve()
    with safe_open(str(stats), framework="numpy") as f:
        meta = dict(f.metadata())
    assert "obs_layout" in meta
    old = tmp_path / "old.norm.safetensors"  # a file from before: no layout recorded
    save_file(load_file(str(stats)), str(old), metadata={k: v for k, v in meta.items() if k != "obs_layout"})
    load_policy(_variant(small_policy_cam, tmp_path, "old", "", obs_spec=[obs[0], {"name": "cam", "shape": [3, 32, 32]}],
                         normalization=str(old)))


def test_yaml_merge_keys_and_read_only_size_properties_still_load(small_policy, tmp_path, monkeypatch) -> None:
    """A review of the duplicate-key loader and the size coercion: a spec using a YAML merge key (`<<: *anchor`)
    was refused as "not valid YAML", and a plug-in model whose horizon is a read-only property crashed the load
    with an AttributeError; both load again."""
    load_policy(_variant(small_policy, tmp_path, "merge", "meta_a: &m {a: 1}\nmeta_b:\n  <<: *m\n  b: 2\n"))
    (tmp_path / "prop_plug.py").write_text(
        "from rtc_ros.policies.mixer import make_mixer\n"
        "def make(config):\n"
        "    net = make_mixer(config)\n"
        "    cls = type('PropNet', (type(net),), {'horizon': property(lambda self: self._h)})\n"
        "    h = net.horizon\n"
        "    del net.horizon\n"
        "    net.__class__ = cls\n"
        "    net._h = h\n"
        "    return net\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_policy(_variant(small_policy, tmp_path, "prop", "", model="prop_plug:make")).model.horizon == 50


def test_spec_paths_expand_home_and_variables_and_check_names_an_out_of_range_d(small_policy, tmp_path, monkeypatch,
                                                                               capsys) -> None:
    """An audit: `weights: ~/...` or `${VAR}/...` in a spec was read as a folder named `~` (the policy_spec
    parameter expands them), and `check --d 100` on an H = 50 policy said "sampling failed"."""
    from rtc_ros.runtime.check import main

    spec = yaml.safe_load(small_policy.read_text())
    monkeypatch.setenv("HOME", str(small_policy.parent))
    monkeypatch.setenv("RTC_TEST_POLICY_DIR", str(small_policy.parent))
    path = tmp_path / "home.yaml"
    path.write_text(yaml.safe_dump(dict(spec, weights=f"~/{spec['weights']}",
                                        normalization=f"${{RTC_TEST_POLICY_DIR}}/{spec['normalization']}")))
    assert load_policy(path).horizon == 50
    assert main([str(small_policy), "--d", "100"]) == 2
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["ok"] is False and r["error"] == "--d 100: must be in [0, H = 50]"


def test_spec_paths_take_a_default_and_name_an_unset_variable(small_policy, tmp_path, monkeypatch) -> None:
    """`${VAR:-default}` takes its default; an unset `$VAR` is an error naming the field and the variable (it read
    as a file named '$VAR': 'file not found'); a set but empty `${VAR:-d}` takes the default as a shell does."""
    spec = yaml.safe_load(small_policy.read_text())
    monkeypatch.delenv("RTC_TEST_UNSET_DIR", raising=False)
    monkeypatch.setenv("RTC_TEST_EMPTY_DIR", "")
    path = tmp_path / "default.yaml"
    path.write_text(yaml.safe_dump(dict(spec, weights=f"${{RTC_TEST_UNSET_DIR:-{small_policy.parent}}}/{spec['weights']}",
                                        normalization=f"${{RTC_TEST_EMPTY_DIR:-{small_policy.parent}}}/"
                                                      f"{spec['normalization']}")))
    assert load_policy(path).horizon == 50
    for fld, raw in (("weights", "$RTC_TEST_UNSET_DIR/w.safetensors"),
                     ("normalization", "${RTC_TEST_UNSET_DIR}/n.safetensors")):
        path.write_text(yaml.safe_dump({**spec, "weights": str(small_policy.parent / spec["weights"]), fld: raw}))
        with pytest.raises(PolicySpecError, match=rf"field '{fld}'.*\$RTC_TEST_UNSET_DIR, which is not set"):
            load_policy(path)
