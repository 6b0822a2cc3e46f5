"""Parameter schema: validation (ROS-free), params files, descriptors, refusal at startup."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtc_ros.nodes.params import (
    ROLE_EXECUTOR, ROLE_INFERENCE, SPECS, ParameterError, describe, expand_path, load_params_file, validate,
)

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "bimanual.yaml"
INVALID = REPO / "config" / "invalid_params.yaml"


def test_every_parameter_has_description_and_range_or_choices() -> None:
    for s in SPECS:
        assert len(s.description) > 10, s.name
        if isinstance(s.default, (int, float)) and not isinstance(s.default, bool):
            assert s.int_range or s.float_range, f"{s.name} needs a range"
    assert "| `beta` |" in describe()


def test_bimanual_config_is_valid_for_both_nodes(tmp_path, monkeypatch) -> None:
    ex = validate(load_params_file(CONFIG, "chunk_executor"), ROLE_EXECUTOR)
    assert ex.horizon == 50 and ex.s_min == 25 and ex.method == "rtc" and len(ex.joint_names) == 14
    assert [a.command_topic for a in ex.arms] == ["left_controller/commands", "right_controller/commands"]
    assert ex.arms[0].upper[6] == 1.0 and ex.dt == pytest.approx(0.02)
    monkeypatch.delenv("RTC_POLICY_SPEC", raising=False)
    values = load_params_file(CONFIG, "policy_inference", "/robot1")
    assert expand_path(values["policy_spec"]).endswith("policies/bimanual_sim_h50.yaml")
    inf = validate(values, ROLE_INFERENCE)
    assert inf.joint_names == ex.joint_names and inf.delay_buffer_size == 10 and inf.camera_topics
    spec = tmp_path / "other.yaml"
    spec.write_text("x: 1\n")
    monkeypatch.setenv("RTC_POLICY_SPEC", str(spec))
    assert expand_path(values["policy_spec"]) == str(spec)
    monkeypatch.setenv("RTC_POLICY_SPEC", "")  # empty = unset, as in the shell's ${VAR:-default}
    assert expand_path(values["policy_spec"]).endswith("bimanual_sim_h50.yaml")


def test_invalid_config_names_s_min() -> None:
    with pytest.raises(ParameterError, match="'s_min' = 25.*horizon"):
        validate(load_params_file(INVALID, "chunk_executor"), ROLE_EXECUTOR)


@pytest.mark.parametrize("name,value,match", [
    ("s_min", 0, "s_min"),
    ("horizon", 0, "horizon"),
    ("rate_hz", 0.0, "rate_hz"),
    ("method", "fast", "method"),
    ("output_type", "pwm", "output_type"),
    ("chunk_topic", "/rtc/chunk", "chunk_topic"),
    ("left.max_step", [0.0], "left.max_step"),
    ("left.lower_limits", [1.0], "left.lower_limits"),
    ("left.upper_limits", [1.0, 2.0], "left.upper_limits"),
    ("right.joint_names", ["left_waist"], "right.joint_names"),
])
def test_executor_values_refused_with_name(name, value, match) -> None:
    with pytest.raises(ParameterError, match=match):
        validate({name: value, "left.upper_limits": [0.5]} if name == "left.lower_limits" else {name: value},
                 ROLE_EXECUTOR)


@pytest.mark.parametrize("name,value,match", [
    ("beta", 0.0, "beta"),
    ("beta", -1.0, "beta"),
    ("delay_buffer_size", 0, "delay_buffer_size"),
    ("n_steps", 0, "n_steps"),
    ("device", "tpu", "device"),
    ("policy_spec", "/nonexistent/policy.yaml", "policy_spec"),
    ("bid_k", 99, "bid_k"),
    ("camera_names", ["a"], "camera_names"),
])
def test_inference_values_refused_with_name(tmp_path, name, value, match) -> None:
    spec = tmp_path / "p.yaml"
    spec.write_text("x: 1\n")
    values = {"policy_spec": str(spec), name: value}
    with pytest.raises(ParameterError, match=match):
        validate(values, ROLE_INFERENCE)


def test_load_params_file_sections(tmp_path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters:\n    horizon: 8\n    left:\n      joint_names: [a]\n"
                 "other:\n  ros__parameters:\n    horizon: 9\n"
                 "/robot/chunk_executor:\n  ros__parameters:\n    s_min: 3\n"
                 "/**/policy_inference:\n  ros__parameters:\n    beta: 2.0\n")
    assert load_params_file(f, "chunk_executor") == {"horizon": 8, "left.joint_names": ["a"]}
    assert load_params_file(f, "chunk_executor", "/robot")["s_min"] == 3
    assert load_params_file(f, "policy_inference", "/a/b")["beta"] == 2.0
    assert load_params_file(f, "policy_inference")["beta"] == 2.0


def _override(tmp_path, name: str, **values) -> str:
    """A second params file (later files win over node sections of earlier ones; ``-p`` does not)."""
    import yaml

    f = tmp_path / f"{name}.yaml"
    f.write_text(yaml.safe_dump({"/**/policy_inference": {"ros__parameters": values}}))
    return str(f)


def test_nodes_refuse_invalid_params_at_startup(start_node, tmp_path, small_policy) -> None:
    ex = start_node("rtc_ros.nodes.chunk_executor", "--params-file", str(INVALID))
    spec = str(small_policy)
    cases = [(ex, "'s_min'")]
    for name, values, needle in (("beta", {"beta": 0.0}, "'beta'"),
                                 ("b", {"delay_buffer_size": 0}, "'delay_buffer_size'"),
                                 ("h", {"horizon": 20, "s_min": 5}, "'horizon'")):
        proc = start_node("rtc_ros.nodes.policy_inference", "--params-file", str(CONFIG), "--params-file",
                          _override(tmp_path, name, policy_spec=spec, camera_topics=["cam"], **values))
        cases.append((proc, needle))
    for proc, needle in cases:
        proc.proc.wait(timeout=120)
        out = proc.output()
        assert proc.proc.returncode == 2, out
        assert "refusing to start" in out and needle in out, out
