"""Parameter schema: validation (ROS-free), params files, descriptors, refusal at startup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtc_ros.nodes.params import (
    ARM_JOINTS, ROLE_EXECUTOR, ROLE_INFERENCE, ROLE_RECORDER, ROLE_SIM, SPECS, ParameterError, declare_and_validate,
    executor_notes,
    describe, expand_path, load_params_file, validate, writable_names,
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
    # the real-robot file has no default policy (a sim-trained one must not drive a real arm by omission)
    for unset in (None, ""):
        if unset is not None:
            monkeypatch.setenv("RTC_POLICY_SPEC", unset)  # empty = unset, as in the shell's ${VAR:-default}
        with pytest.raises(ParameterError, match=r"'policy_spec' = '\$\{RTC_POLICY_SPEC\}': a policy spec YAML file "
                                                 r"is required \(the launch argument policy_spec:=PATH"):
            validate(values, ROLE_INFERENCE)
    spec = tmp_path / "other.yaml"
    spec.write_text("x: 1\n")
    monkeypatch.setenv("RTC_POLICY_SPEC", str(spec))
    assert expand_path(values["policy_spec"]) == str(spec)
    inf = validate(values, ROLE_INFERENCE)
    assert inf.joint_names == ex.joint_names and inf.delay_buffer_size == 10 and inf.camera_topics


def test_an_old_params_file_s_default_to_a_shipped_sim_policy_is_refused(tmp_path, monkeypatch) -> None:
    """Params files before 2026-12-05 read policy_spec: "${RTC_POLICY_SPEC:-policies/bimanual_sim_h50.yaml}": with
    the launch's empty RTC_POLICY_SPEC a simulation-trained policy drove the real arm (an upgrade walkthrough).
    Refused, naming the variable; a default that is the user's own policy, or the variable set, still works."""
    values = load_params_file(CONFIG, "policy_inference", "/robot1")
    values["policy_spec"] = "${RTC_POLICY_SPEC:-policies/bimanual_sim_h50.yaml}"
    for unset in (None, ""):
        if unset is None:
            monkeypatch.delenv("RTC_POLICY_SPEC", raising=False)
        else:
            monkeypatch.setenv("RTC_POLICY_SPEC", unset)
        with pytest.raises(ParameterError, match=r"RTC_POLICY_SPEC is empty, so this default would run .*"
                                                 r"bimanual_sim_h50.yaml, a policy shipped with rtc_ros and trained "
                                                 r"in simulation"):
            validate(values, ROLE_INFERENCE)
    own = tmp_path / "mine.yaml"
    own.write_text("x: 1\n")
    validate({**values, "policy_spec": f"${{RTC_POLICY_SPEC:-{own}}}"}, ROLE_INFERENCE)  # the user's own default
    fork = tmp_path / "fork"  # the user's own spec in a fork's policies/: not shipped (a review)
    (fork / "policies").mkdir(parents=True)
    (fork / "package.xml").write_text("<package><name>rtc_ros</name></package>")
    (fork / "policies" / "mine.yaml").write_text("x: 1\n")
    (fork / "policies" / "bimanual_sim_h50.yaml").write_text("x: 1\n")
    validate({**values, "policy_spec": f"${{RTC_POLICY_SPEC:-{fork / 'policies' / 'mine.yaml'}}}"}, ROLE_INFERENCE)
    with pytest.raises(ParameterError, match="trained in simulation"):
        validate({**values, "policy_spec": f"${{RTC_POLICY_SPEC:-{fork / 'policies' / 'bimanual_sim_h50.yaml'}}}"},
                 ROLE_INFERENCE)
    from rtc_ros.recording.paths import SHIPPED_POLICIES

    assert sorted(SHIPPED_POLICIES) == sorted(p.name for p in (REPO / "policies").glob("*.yaml"))
    monkeypatch.setenv("RTC_POLICY_SPEC", str(REPO / "policies" / "bimanual_cnn_h50.yaml"))  # given: as sim.launch.py
    validate(values, ROLE_INFERENCE)


def test_a_params_file_without_start_paused_is_told_the_arm_moves_at_once() -> None:
    """A params file from before 2026-12-06 has no start_paused: the arm moved on the first chunk without a word (an
    upgrade walkthrough). Said where the file does not set it; not where it does, either way."""
    values = load_params_file(CONFIG, "chunk_executor")
    old = {k: v for k, v in values.items() if k != "start_paused"}
    p = validate(old, ROLE_EXECUTOR)
    assert any(n.startswith("start_paused is not set: the arm moves on the first chunk") for n in executor_notes(p, old))
    assert not any("start_paused" in n for n in executor_notes(p))  # (what the file sets not known: not said)
    for given in (True, False):
        p = validate({**old, "start_paused": given}, ROLE_EXECUTOR)
        assert not any("start_paused" in n for n in executor_notes(p, {**old, "start_paused": given}))
    sim = load_params_file(REPO / "config" / "sim_bimanual.yaml", "chunk_executor")
    assert sim["start_paused"] is False  # (the simulator sets it: no note in the demo)


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
    ("chunk_topic", "rtc/bad-name", "not a valid ROS 2 topic name"),
    ("joint_states_topic", "robot//joint_states", "joint_states_topic"),
    ("executor_state_topic", "rtc/2state", "executor_state_topic"),
    ("left.command_topic", "left_controller/commands/", "left.command_topic"),
    ("left.max_step", [0.0], "left.max_step"),
    ("left.max_step", [float("inf")], "left.max_step"),  # would switch the jump limit off
    ("left.lower_limits", [1.0], "left.lower_limits"),
    ("left.upper_limits", [1.0, 2.0], "left.upper_limits"),
    ("right.joint_names", ["left_waist"], "right.joint_names"),
    ("startup_ramp_s", 0.01, "startup_ramp_s"),  # under 2 ticks
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


def test_nodes_refuse_invalid_params_at_startup(start_node, tmp_path, small_policy, small_policy_cam) -> None:
    ex = start_node("rtc_ros.nodes.chunk_executor", "--params-file", str(INVALID))
    spec = str(small_policy)
    cases = [(ex, f"'s_min' = 25: must be <= horizon (H = 10) (set in {INVALID})")]  # (which file: several may)
    # training-time RTC with a policy not trained for it: refused, naming the method and the spec field
    proc = start_node("rtc_ros.nodes.policy_inference", "--params-file", str(CONFIG), "--params-file",
                      _override(tmp_path, "trained", policy_spec=str(small_policy_cam), camera_topics=["cam"],
                                camera_names=["cam"], method="rtc_trained"))
    cases.append((proc, "'method' = 'rtc_trained'"))
    for name, values, needle in (("beta", {"beta": 0.0}, "'beta'"),
                                 ("b", {"delay_buffer_size": 0}, "'delay_buffer_size'"),
                                 ("h", {"horizon": 20, "s_min": 5}, "'horizon'")):
        proc = start_node("rtc_ros.nodes.policy_inference", "--params-file", str(CONFIG), "--params-file",
                          _override(tmp_path, name, policy_spec=spec, camera_topics=["cam"], **values))
        cases.append((proc, needle))
    # a section written for the root namespace's node, the node under a namespace: rcl ignores the section (a
    # two-robot walkthrough's dry_run: true was dropped, the arm would have moved); refused, naming the robot
    import yaml

    unscoped = tmp_path / "unscoped.yaml"
    unscoped.write_text(yaml.safe_dump({"chunk_executor": {"ros__parameters": {"dry_run": True}},
                                        "policy_inference": {"ros__parameters": {"policy_spec": spec}}}))
    for module in ("rtc_ros.nodes.chunk_executor", "rtc_ros.nodes.policy_inference"):
        proc = start_node(module, "--params-file", str(CONFIG), "--params-file", str(unscoped), "-r", "__ns:=/robot_a")
        node = module.rsplit(".", 1)[1]
        cases.append((proc, f"refusing to start (/robot_a/{node}): params file {unscoped}: section '{node}' is for "
                            f"/{node} (the root namespace), but this node is /robot_a/{node}"))
    for proc, needle in cases:
        proc.proc.wait(timeout=120)
        out = proc.output()
        assert proc.proc.returncode == 2, out
        assert "refusing to start" in out and needle in out, out


def test_sections_that_miss_a_namespaced_node_are_found() -> None:
    """Only a section keyed by the node's bare name (or /name) misses it under a namespace; /**/name, ns/name and
    another robot's ns/name are rcl's business; in the root namespace nothing is stray. Values the sections that
    reach the node set alike are not lost; a file that names the node by its full name too is shared with a robot
    in the root namespace (a warning, not a refusal: `addressed`)."""
    from rtc_ros.nodes.params.yaml_file import params_files, stray_sections, stray_text

    argv = ["prog", "--params-file", "no.yaml", "--ros-args", "-p", "a:=1", "--params-file", "x.yaml",
            "--params-file", "y.yaml", "--", "--params-file", "z.yaml"]
    assert params_files(argv) == ["x.yaml", "y.yaml"]
    data = {"chunk_executor": {"ros__parameters": {"dry_run": True, "left": {"max_step": 0.01}, "s_min": 5}},
            "/chunk_executor": {"ros__parameters": {"rate_hz": 50.0}},
            "/**/chunk_executor": {"ros__parameters": {"s_min": 5}},
            "robot_b/chunk_executor": {"ros__parameters": {"dry_run": False}}, "policy_inference": {"ros__parameters": {}}}
    assert stray_sections(data, "chunk_executor", "/robot_a") == [  # (s_min reaches it alike through /**)
        ("chunk_executor", ["dry_run", "left.max_step"], False), ("/chunk_executor", ["rate_hz"], False)]
    assert stray_sections(data, "chunk_executor", "/robot_b") == [  # robot_b addressed by name: shared file
        ("chunk_executor", ["dry_run", "left.max_step"], True), ("/chunk_executor", ["rate_hz"], True)]
    assert stray_sections(data, "chunk_executor", "/") == [] == stray_sections(data, "chunk_executor", "")
    same = {"/**/chunk_executor": {"ros__parameters": {"dry_run": True}}, "chunk_executor": {"ros__parameters": {
        "dry_run": True}}}
    assert stray_sections(same, "chunk_executor", "/robot_a") == []  # nothing lost
    text = stray_text("f.yaml", "chunk_executor", ["dry_run", "left.max_step"], "chunk_executor", "/robot_a")
    assert "2 parameter(s) in it (dry_run, left.max_step) would not reach this node" in text
    assert "'/**/chunk_executor' (any namespace) or 'robot_a/chunk_executor'" in text


# ------------------------------------------------------------------ all four roles, measured faults
def test_startup_ramp_longer_than_s_min_refused_unless_ensemble() -> None:
    """The next chunk takes over after >= s_min executed actions and ends a switch/sync ramp early: a step."""
    with pytest.raises(ParameterError, match=r"startup_ramp_s.*more than s_min = 5"):
        validate({"s_min": 5, "startup_ramp_s": 0.2}, ROLE_EXECUTOR)  # 10 ticks at 50 Hz
    assert validate({"s_min": 10, "startup_ramp_s": 0.2}, ROLE_EXECUTOR).startup_ramp_s == 0.2
    assert validate({"s_min": 5, "startup_ramp_s": 0.2, "method": "te_dense"}, ROLE_EXECUTOR).startup_ramp_s == 0.2


def test_unknown_arm_needs_joint_names() -> None:
    """``arms: [left, middle]`` without ``middle.*``: refused naming ``middle.joint_names`` (no made-up joints)."""
    with pytest.raises(ParameterError, match=r"'middle\.joint_names' = \[\]: required for arm 'middle'"):
        validate({"arms": ["left", "middle"]}, ROLE_EXECUTOR)
    names = [f"m{i}" for i in range(3)]
    p = validate({"arms": ["left", "middle"], "middle.joint_names": names}, ROLE_EXECUTOR)
    assert p.arms[1].joint_names == names and len(p.arms[1].lower) == 3
    # its limits were left at the defaults (the executor warns at start); the shipped config sets all of them
    assert p.arms[1].defaulted == ("lower_limits", "upper_limits", "max_step")
    assert validate({"arms": ["left"], "left.max_step": [0.05]}, ROLE_EXECUTOR).arms[0].defaulted == (
        "lower_limits", "upper_limits")
    shipped = validate(load_params_file(CONFIG, "chunk_executor"), ROLE_EXECUTOR)
    assert all(not a.defaulted for a in shipped.arms) and executor_notes(shipped) == []
    notes = executor_notes(p)  # the executor warns at start, rtc_bringup --check prints them
    assert [n.split(":")[0] for n in notes] == ["left", "middle", "startup_ramp_s is 0"]
    assert "lower_limits = -pi rad (grippers 0)" in notes[1] and "max_step = 0.05 rad per tick" in notes[1]
    # limits in degrees (a deployment walkthrough's): said, naming the arm and the first such joint
    values = load_params_file(CONFIG, "chunk_executor")
    values["right.lower_limits"] = [-180.0, -106.0, -101.0, -180.0, -107.0, -180.0, 0.0]
    values["right.upper_limits"] = [180.0, 72.0, 92.0, 180.0, 130.0, 180.0, 1.0]
    deg = executor_notes(validate(values, ROLE_EXECUTOR))
    assert len(deg) == 1 and deg[0].startswith("right.lower_limits / upper_limits: right_waist is limited to "
                                               "[-180, 180] (and 5 more joints), beyond a whole turn")
    # a velocity limit typed in as max_step (a bring-up walkthrough: 2.6-5.3 rad/s passed --check --strict, then
    # steps of 0.42 rad per tick were sent): said, naming the arm, the joint and the speed it allows; not the grippers
    values = load_params_file(CONFIG, "chunk_executor")
    values["left.max_step"] = [3.14]
    fast = executor_notes(validate(values, ROLE_EXECUTOR))
    assert len(fast) == 1 and fast[0].startswith("left.max_step: left_waist may move 3.14 per tick = 157 per s at "
                                                 "rate_hz 50 (and 5 more joints)"), fast
    values["left.max_step"] = [0.12]  # 6 rad/s: a UR wrist's speed, under a whole turn per second and its range / 10
    assert executor_notes(validate(values, ROLE_EXECUTOR)) == []
    values["left.lower_limits"] = [-0.3] * 6 + [0.0]  # a joint with a 0.6 rad range: 0.12 per tick is a fifth of it
    values["left.upper_limits"] = [0.3] * 6 + [1.0]
    assert executor_notes(validate(values, ROLE_EXECUTOR))[0].startswith("left.max_step: left_waist may move 0.12")


def test_six_joint_names_against_seven_limits_names_joint_names() -> None:
    """The joint list is what changed: the message names ``left.joint_names`` (not the limits or ``arms``)."""
    values = load_params_file(CONFIG, "chunk_executor")
    values["left.joint_names"] = values.get("left.joint_names", [f"left_{j}" for j in ARM_JOINTS])[:6]
    assert len(values.get("left.lower_limits", [])) == 7, "the shipped config sets 7 limits per arm"
    with pytest.raises(ParameterError, match=r"'left\.joint_names' = \[.*\]: 6 joint names but 'left\.lower_limits'"):
        validate(values, ROLE_EXECUTOR)


@pytest.mark.parametrize("value", [0.0, -1.0, 0])
def test_recorder_flush_period_must_be_positive(value) -> None:
    with pytest.raises(ParameterError, match=r"'flush_period' = "):
        validate({"flush_period": value}, ROLE_RECORDER)


@pytest.mark.parametrize("name,value,match", [
    ("topic_types", ["cam"], "topic_types"),
    ("topic_patterns", ["("], "topic_patterns"),
    ("compression", "lz4", "compression"),
    ("autostart_meta", "[1]", "autostart_meta"),
    ("autostart_meta", '{"x": NaN}', "autostart_meta"),  # (written bare into the sidecar: not JSON; a review)
    ("autostart_meta", '{"x": 1e999}', "autostart_meta"),
    ("param_nodes", "policy_inference", "param_nodes"),
    ("queue_depth", 0, "queue_depth"),
])
def test_recorder_values_refused_with_name(name, value, match) -> None:
    with pytest.raises(ParameterError, match=f"'{match}'"):
        validate({name: value}, ROLE_RECORDER)


def test_recorder_and_sim_defaults_and_config() -> None:
    rec = validate({"param_nodes": []}, ROLE_RECORDER)
    assert rec.param_nodes == [] and rec.flush_period == 0.5 and rec.topics
    sim_cfg = REPO / "config" / "sim_bimanual.yaml"
    sim = validate(load_params_file(sim_cfg, "bimanual_sim"), ROLE_SIM)
    ex = validate(load_params_file(sim_cfg, "chunk_executor"), ROLE_EXECUTOR)
    assert [a.command_topics[ex.output_type] for a in sim.arms] == [a.command_topic for a in ex.arms]
    assert sim.joint_names == ex.joint_names
    validate(load_params_file(sim_cfg, "episode_recorder"), ROLE_RECORDER)
    with pytest.raises(ParameterError, match=r"'right\.joint_names'.*needs 7 names"):
        validate({"right.joint_names": ["a", "b"]}, ROLE_SIM)
    with pytest.raises(ParameterError, match="'camera_width' = 641"):
        validate({"camera_width": 641}, ROLE_SIM)
    with pytest.raises(ParameterError, match="'status_topic'.*not a valid ROS 2 topic name"):
        validate({"status_topic": "sim/bad-name"}, ROLE_SIM)  # rclpy raised at start-up (a traceback)
    with pytest.raises(ParameterError, match=r"'left\.float64_topic'"):
        validate({"left.float64_topic": "left//cmd"}, ROLE_SIM)
    for ok in ("~/status", "~", "{node}/status", "sim/status_2"):  # as ROS 2 allows
        assert validate({"status_topic": ok}, ROLE_SIM).status_topic == ok
    # an audit: x0.5 without /clock made the simulator take every second command of a 50 Hz wall-clock executor
    with pytest.raises(ParameterError, match="'real_time_factor' = 0.5.*needs publish_clock: true"):
        validate({"real_time_factor": 0.5}, ROLE_SIM)
    assert validate({"real_time_factor": 0.5, "publish_clock": True}, ROLE_SIM).real_time_factor == 0.5


def test_sim_camera_defaults_match_the_renderer() -> None:
    from rtc_ros.nodes.params.schema import SIM_CAMERA

    camera = pytest.importorskip("rtc_ros.sim.camera")
    c = camera.CameraConfig()
    assert SIM_CAMERA == {"width": c.width, "height": c.height, "lookat": list(c.lookat), "distance": c.distance,
                          "azimuth": c.azimuth, "elevation": c.elevation}


def test_schema_covers_five_nodes() -> None:
    text = describe()
    for node in ("chunk_executor", "policy_inference", "episode_recorder", "bimanual_sim", "joint_state_merger"):
        assert node in text
    assert "| `flush_period` | episode_recorder |" in text and "| `real_time_factor` | bimanual_sim |" in text
    assert "| `source_topics` | joint_state_merger |" in text
    assert "| `joint_states_topic` | chunk_executor, policy_inference, joint_state_merger |" in text


def test_merger_params() -> None:
    """joint_state_merger: its sources are required, relative, distinct and not its output; one prefix each."""
    from rtc_ros.nodes.params import ROLE_MERGER

    ok = {"source_topics": ["puppet_left/joint_states", "puppet_right/joint_states"],
          "source_prefixes": ["left_", "right_"]}
    p = validate(ok, ROLE_MERGER)
    assert p.joint_names == [f"{arm}_{j}" for arm in ("left", "right") for j in ARM_JOINTS]
    assert p.max_age_s == 0.1 and p.joint_states_topic == "joint_states"
    assert validate({"source_topics": ["arm/joint_states"], "arms": ["a"], "a.joint_names": ["j1", "j2"]},
                    ROLE_MERGER).joint_names == ["j1", "j2"]
    # absolute names reach a driver outside the node's namespace; exclusions name a source and a joint
    assert validate({"source_topics": ["/puppet_left/joint_states", "/puppet_right/joint_states"],
                     "source_exclude": ["/puppet_left/joint_states:left_gripper"]}, ROLE_MERGER).source_exclude
    for bad, name, why in [
        ({}, "source_topics", "required"),
        ({"source_topics": ["/puppet left/joint_states"]}, "source_topics", "relative"),
        ({"source_topics": ["puppet_left//joint_states"]}, "source_topics", "not a valid ROS 2 topic name"),
        ({"source_topics": ["a", "a"]}, "source_topics", "distinct"),
        ({"source_topics": ["joint_states"]}, "source_topics", "must not include the output"),
        ({**ok, "source_prefixes": ["left_"]}, "source_prefixes", "one prefix per source topic"),
        ({**ok, "source_prefixes": ["left arm", "r"]}, "source_prefixes", "no spaces"),
        ({**ok, "max_age_s": 0.0}, "max_age_s", "must be in"),
        ({**ok, "max_age_s": 5.0}, "max_age_s", "must be in"),  # an arm 5 s old is not a measurement
        ({**ok, "source_exclude": ["left_gripper"]}, "source_exclude", "expected 'TOPIC:JOINT'"),
        ({**ok, "source_exclude": ["gripper/joint_states:left_gripper"]}, "source_exclude", "TOPIC one of"),
        ({**ok, "arms": ["x"]}, "x.joint_names", "required for arm 'x'"),
        ({**ok, "right.joint_names": ["left_waist"]}, "right.joint_names", "unique across arms"),
    ]:
        with pytest.raises(ParameterError, match=why) as err:
            validate(bad, ROLE_MERGER)
        assert err.value.name == name, (bad, err.value)


def test_run_time_sets_validated_and_applied(tmp_path) -> None:
    """A writable set is validated with the other values, applied in place, and reported to on_change;
    an invalid one is refused naming the parameter and value and leaves the old value; read-only ones
    are refused; a params file's ``param_nodes: []`` reads as an empty list."""
    rclpy = pytest.importorskip("rclpy")
    from rclpy.parameter import Parameter

    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters:\n    param_nodes: []\n    horizon: 20\n    s_min: 10\n")
    rclpy.init()
    try:
        node = rclpy.create_node("params_runtime", cli_args=["--ros-args", "--params-file", str(f)])
        changes: list[tuple[str, object]] = []
        p = declare_and_validate(node, ROLE_EXECUTOR, on_change=lambda n, v: changes.append((n, v)))
        assert p.horizon == 20 and p.diagnostics_period == 1.0
        ok = node.set_parameters([Parameter("diagnostics_period", value=2)])[0]  # an int, as `ros2 param set` sends
        assert ok.successful and p.diagnostics_period == 2.0 and changes == [("diagnostics_period", 2.0)]
        bad = node.set_parameters([Parameter("max_chunk_age", value=-1.0)])[0]
        assert not bad.successful and "max_chunk_age" in bad.reason and "-1" in bad.reason
        assert p.max_chunk_age == 1.0 and len(changes) == 1
        assert not node.set_parameters([Parameter("horizon", value=30)])[0].successful and p.horizon == 20
        rec_node = rclpy.create_node("episode_recorder", cli_args=["--ros-args", "--params-file", str(f)])
        assert declare_and_validate(rec_node, ROLE_RECORDER).param_nodes == []
        node.destroy_node()
        rec_node.destroy_node()
    finally:
        rclpy.try_shutdown()


def test_docs_parameter_table_is_the_schema() -> None:
    """docs/ros_interface.md's parameter table is describe()'s output (regenerate it when the schema changes)."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "ros_interface.md").read_text()
    assert describe().strip() in doc


def test_tracking_watchdog_params(tmp_path) -> None:
    """chunk_executor: <arm>.tracking_tolerance per joint (one for all; 0 = unchecked; [] = off), validated;
    policy_inference does not read them (the watchdog moved to the executor on 2026-12-06) and says so when a
    params file gives them to it; its old hold-service parameter is retired, with the reason."""
    from rtc_ros.nodes.params import moved_parameters, unknown_parameters, unknown_text

    p = validate({}, ROLE_EXECUTOR)
    assert all(t == 0.0 for a in p.arms for t in a.tracking_tolerance) and p.tracking_timeout_s == 0.2
    p = validate({"left.tracking_tolerance": [0.3], "right.tracking_tolerance": [0.3] * 6 + [0.0]}, ROLE_EXECUTOR)
    assert p.arms[0].tracking_tolerance == [0.3] * 6 + [0.0]  # one for all: not the gripper (it squeezes)
    assert p.arms[1].tracking_tolerance == [0.3] * 6 + [0.0]
    p = validate({"left.tracking_tolerance": [0.3] * 6 + [0.5]}, ROLE_EXECUTOR)
    assert p.arms[0].tracking_tolerance[-1] == 0.5  # per joint: the gripper too, when given
    for bad, name in [({"left.tracking_tolerance": [-0.1]}, "left.tracking_tolerance"),
                      ({"left.tracking_tolerance": [0.1, 0.2]}, "left.tracking_tolerance"),
                      ({"tracking_timeout_s": 0.0}, "tracking_timeout_s")]:
        with pytest.raises(ParameterError) as err:
            validate(bad, ROLE_EXECUTOR)
        assert err.value.name == name, err.value
    base = {"policy_spec": str(Path(__file__).resolve().parents[1] / "policies" / "bimanual_cnn_h50.yaml")}
    assert validate({**base, "left.tracking_tolerance": [0.3]}, ROLE_INFERENCE).arms[0].tracking_tolerance == []
    said = moved_parameters(["left.tracking_tolerance", "tracking_timeout_s", "seed"], ROLE_INFERENCE)
    assert len(said) == 2 and all("chunk_executor reads it" in t for t in said) and said[0].startswith("'left.")
    assert moved_parameters(["left.tracking_tolerance"], ROLE_EXECUTOR) == []
    assert dict(unknown_parameters(["executor_hold_service"])) == {"executor_hold_service": None}
    assert "retired: the tracking watchdog runs in chunk_executor" in unknown_text("executor_hold_service", None)


def test_max_accel_params_reach_the_executor_core_in_rad_per_tick_squared() -> None:
    """chunk_executor and policy_inference: <arm>.max_accel in rad/s^2 (one for all = every joint but the gripper; 0 = off, the
    default), validated, and converted to the core's rad/tick^2 (inf = off) with dt = 1 / rate_hz."""
    from rtc_ros.nodes.cores import executor_core

    p = validate({}, ROLE_EXECUTOR)
    assert all(a == 0.0 for arm in p.arms for a in arm.max_accel)
    assert not executor_core(p)._accel.active  # off: the executor's commands are bit-identical to before
    # (and a hold keeps the grippers' commands: the joints named *gripper, as for max_accel's one-for-all)
    assert executor_core(p).cfg.hold_keeps.tolist() == [n.endswith("gripper") for n in p.joint_names] == ([False] * 6
                                                                                                        + [True]) * 2
    p = validate({"rate_hz": 50.0, "left.max_accel": [10.0], "right.max_accel": [5.0] * 6 + [2.0]}, ROLE_EXECUTOR)
    assert p.arms[0].max_accel == [10.0] * 6 + [0.0]  # one for all: not the gripper (normalised units)
    got = executor_core(p).cfg.max_accel
    assert np.allclose(got[:6], 10.0 / 50 ** 2) and np.isinf(got[6]) and np.allclose(got[7:13], 5.0 / 2500)
    assert got[13] == pytest.approx(2.0 / 2500)
    for bad in ([-1.0], [float("nan")], [1.0, 2.0], [1e-320]):
        with pytest.raises(ParameterError) as err:
            validate({"left.max_accel": bad}, ROLE_EXECUTOR)
        assert err.value.name == "left.max_accel", err.value
    # policy_inference reads it too (its hold target brakes like the executor), into its loop core, with the limits
    from rtc_ros.nodes.cores import inference_loop

    spec = str(Path(__file__).resolve().parents[1] / "policies" / "bimanual_cnn_h50.yaml")
    inf = validate({"policy_spec": spec, "left.max_accel": [3.0]}, ROLE_INFERENCE)
    assert inf.arms[0].max_accel == [3.0] * 6 + [0.0]
    hold = inference_loop(inf).hold
    assert np.allclose(hold.accel[:6], 3.0 / 2500) and np.isinf(hold.accel[6:]).all()
    assert hold.upper[0] == pytest.approx(np.pi) and hold.lower[6] == 0.0  # not given: the executor's defaults too
    assert hold.max_step[0] == 0.05
    assert inference_loop(validate({"policy_spec": spec}, ROLE_INFERENCE)).hold.accel is None  # off: as before
    # the joint limits and max_step given: the target is clipped and clamped as the executor's commands
    given = validate({"policy_spec": spec, "left.lower_limits": [-1.0], "left.upper_limits": [2.0],
                      "left.max_step": [0.04]}, ROLE_INFERENCE)
    hold = inference_loop(given).hold
    assert hold.upper[0] == 2.0 and hold.lower[6] == -1.0 and hold.max_step[3] == 0.04 and hold.upper[7] == np.pi
    assert "the executor's commands (its max_step and joint limits replayed)" in hold.describe()


def test_enable_topic_params() -> None:
    """chunk_executor: enable_topic '' (off, the default) or a topic name, relative or absolute (one pedal for
    several robots); enable_timeout_s in [0.02, 10], writable."""
    p = validate({}, ROLE_EXECUTOR)
    assert p.enable_topic == "" and p.enable_timeout_s == 0.2
    assert validate({"enable_topic": "/deadman"}, ROLE_EXECUTOR).enable_topic == "/deadman"
    for bad, name in [({"enable_topic": "dead man"}, "enable_topic"), ({"enable_topic": "a//b"}, "enable_topic"),
                      ({"enable_timeout_s": 0.0}, "enable_timeout_s"), ({"enable_timeout_s": 11.0}, "enable_timeout_s")]:
        with pytest.raises(ParameterError) as err:
            validate(bad, ROLE_EXECUTOR)
        assert err.value.name == name, err.value
    assert "enable_timeout_s" in writable_names(ROLE_EXECUTOR) and "enable_topic" not in writable_names(ROLE_EXECUTOR)


def test_unknown_parameters_are_named_with_what_was_probably_meant() -> None:
    """A key no rtc_ros node declares (rclpy ignores it silently): a typo gets the closest name, a renamed
    parameter its new name; arms' keys are known for the given arms; ROS's own and qos_overrides pass."""
    from rtc_ros.nodes.params import unknown_parameters, unknown_text

    got = dict(unknown_parameters(["left.max_acel", "executor_resync_service", "enable_topc", "zzz", "method",
                                   "arm3.max_step", "arm4.max_step", "use_sim_time", "qos_overrides./x.depth"],
                                  arms=["left", "right", "arm3"]))
    assert got == {"left.max_acel": "left.max_accel", "executor_resync_service": None,
                   "enable_topc": "enable_topic", "zzz": None, "arm4.max_step": "arm3.max_step"}
    assert "(retired: " in unknown_text("executor_resync_service", None)  # renamed once, retired since
    assert unknown_text("zzz", None).endswith("ignored")


def test_only_unmistakable_misspellings_refuse_a_start() -> None:
    """A misspelt per-arm key of a known arm, a per-arm key of a misspelt arm (that arm's value ignored), or a near
    miss of a safety parameter (every executor parameter: a typo in start_paused let the arm move at once) refuses
    the start (its default would apply silently); a key another program may set under /** (joint_names,
    camera_name, timeout, ...) and a per-arm key of an arm not configured and not close to one (a recorder without
    arms, another robot's) are only warned."""
    from rtc_ros.nodes.params import misspelt_error, unknown_parameters

    arms = ["left", "right", "arm3"]
    names = ["left.max_acel", "right.tracking_tolerence", "arm3.max_acel", "max_chunk_agee", "dry_rn", "enable_topc",
             "obs_timout", "start_pause", "dry-run", "Dry_run", "arm_3.tracking_tolerance", "left_arm.max_step",
             "follower.max_accel", "max_step", "follower.joint_names", "arm", "joint_names", "camera_name", "timeout",
             "topic", "device_id", "output", "zzz"]
    refused = {n for n, meant in unknown_parameters(names, arms) if misspelt_error(n, 1, meant, arms)}
    assert refused == {"left.max_acel", "right.tracking_tolerence", "arm3.max_acel", "max_chunk_agee", "dry_rn",
                       "enable_topc", "obs_timout", "start_pause", "dry-run", "Dry_run", "arm_3.tracking_tolerance",
                       "left_arm.max_step", "follower.max_accel", "max_step"}
    assert "did you mean 'arm3.tracking_tolerance'" in str(misspelt_error("arm_3.tracking_tolerance", 1, None, arms))
    # an arm's setting beside other arms: that arm would keep its default (a walkthrough's watchdog was off)
    assert "no arm 'left' is configured (arms: ['left_arm', 'right_arm']" in str(misspelt_error(
        "left.max_step", 1, None, ["left_arm", "right_arm"]))
    assert "a per-arm setting: give it as <arm>.max_step" in str(misspelt_error("max_step", 1, None))
    err = misspelt_error("left.max_acel", [10.0], "left.max_accel", (), "chunk_executor")
    assert str(err) == ("invalid parameter 'left.max_acel' = [10.0]: chunk_executor: not a parameter of any rtc_ros "
                        "node (did you mean 'left.max_accel'?); its value would be ignored and 'left.max_accel' left "
                        "at its default")
    assert not unknown_parameters(["left_arm.max_step"], ["left_arm", "right_arm"])  # (a recorder: the others' arms)
    assert unknown_parameters(["left.max_step"], ["left_arm", "right_arm"])  # declared only for the configured arms


def test_sim_config_leaves_no_parameter_of_the_recorded_nodes_unset(tmp_path, monkeypatch) -> None:
    """Every parameter chunk_executor and policy_inference declare from config/sim_bimanual.yaml has a value.
    An unset one (an empty-list default) makes rclpy's get_parameters answer nothing for the whole request,
    and episode_recorder's parameter snapshot then falls back to one request per parameter: seconds under
    load, and a short episode closed without the node's parameters (seen in CI, 2026-12-06)."""
    rclpy = pytest.importorskip("rclpy")
    from rclpy.exceptions import ParameterUninitializedException

    repo = Path(__file__).resolve().parents[1]
    cfg = repo / "config" / "sim_bimanual.yaml"
    monkeypatch.setenv("RTC_POLICY_SPEC", str(repo / "policies" / "bimanual_cnn_h50.yaml"))  # as sim.launch.py does
    rclpy.init()
    try:
        for name, role in (("chunk_executor", ROLE_EXECUTOR), ("policy_inference", ROLE_INFERENCE)):
            node = rclpy.create_node(name, cli_args=["--ros-args", "--params-file", str(cfg)])
            declare_and_validate(node, role)
            unset = []
            for pname in node._parameters:
                try:
                    node.get_parameter(pname).get_parameter_value()
                except ParameterUninitializedException:
                    unset.append(pname)
            assert not unset, (name, unset)
            node.destroy_node()
    finally:
        rclpy.try_shutdown()


def test_a_joint_named_like_a_gripper_but_not_taken_as_one_is_named(tmp_path) -> None:
    """A Franka finger or a Robotiq knuckle is not a gripper unless ``<arm>.gripper_joints`` names it (else only names
    ending in 'gripper' are): a hold would command its measured opening (a Franka walkthrough's squeeze was let go at
    ``~/hold``) and a single max_accel / tracking_tolerance value would cover it, so the nodes warn and name the
    parameter; declared, there is no note, a single value leaves it out and the executor's hold keeps it."""
    from rtc_ros.nodes.cores import executor_core
    from rtc_ros.nodes.params import ROLE_INFERENCE, ParameterError, gripper_notes

    spec = tmp_path / "p.yaml"
    spec.write_text("x: 1\n")
    names = [f"fr3_joint{i}" for i in range(1, 8)] + ["fr3_finger_joint1"]
    base = {"arms": ["left"], "left.joint_names": names, "policy_spec": str(spec)}
    ex = validate(dict(base, **{"left.max_accel": [20.0]}), ROLE_EXECUTOR)
    notes = gripper_notes(ex)
    assert len(notes) == 1 and "joint 'fr3_finger_joint1' looks like a gripper" in notes[0] and "max_accel" in notes[0]
    assert "left.gripper_joints: ['fr3_finger_joint1']" in notes[0] and notes[0] in executor_notes(ex)
    ex = validate(dict(base, **{"left.tracking_tolerance": [0.3]}), ROLE_EXECUTOR)
    assert len(gripper_notes(ex)) == 1 and "tracking_tolerance apply" in gripper_notes(ex)[0]
    assert "letting a squeeze go" in gripper_notes(validate(base, ROLE_EXECUTOR))[0]  # (the hold, whatever applies)
    declared = dict(base, **{"left.gripper_joints": ["fr3_finger_joint1"], "left.tracking_tolerance": [0.3]})
    ex = validate(declared, ROLE_EXECUTOR)
    assert gripper_notes(ex) == [] and ex.arms[0].tracking_tolerance == [0.3] * 7 + [0.0]
    assert ex.arms[0].lower[-1] == 0.0 and ex.arms[0].upper[-1] == 1.0  # a gripper's default limits
    assert executor_core(ex).cfg.hold_keeps.tolist() == [False] * 7 + [True]
    assert validate(dict(declared, **{"left.max_accel": [5.0]}), ROLE_INFERENCE).arms[0].max_accel[-1] == 0.0
    with pytest.raises(ParameterError, match=r"left.gripper_joints.*\['fr3_fingr'\] are not joints of arm 'left'"):
        validate(dict(base, **{"left.gripper_joints": ["fr3_fingr"]}), ROLE_EXECUTOR)
    pattern = validate(dict(base, **{"left.gripper_joints": ["*finger*"]}), ROLE_EXECUTOR)  # (shell-style)
    assert pattern.arms[0].grippers == [False] * 7 + [True]
    shipped_names = load_params_file(CONFIG, "chunk_executor")
    assert validate(shipped_names, ROLE_EXECUTOR).arms[0].grippers == [False] * 6 + [True]  # the default, '*gripper'
    assert validate(dict(shipped_names, **{"left.gripper_joints": [""]}), ROLE_EXECUTOR).arms[0].grippers == [False] * 7
    shipped = validate(dict(load_params_file(CONFIG, "chunk_executor"), **{"left.tracking_tolerance": [0.3]}),
                       ROLE_EXECUTOR)
    assert gripper_notes(shipped) == []  # left_gripper ends in 'gripper'
    assert executor_core(shipped).cfg.hold_keeps.sum() == 2


def test_a_cli_override_that_a_params_file_section_shadows_is_warned(tmp_path, ros_env) -> None:
    """`-p output_dir:=...` beside a params file whose node section sets it: ROS applies the file's value, silently
    (a chaos walkthrough's recordings went to the file's directory). The node says so; a -p that applies does not."""
    rclpy = pytest.importorskip("rclpy")
    import yaml

    from rtc_ros.nodes.params.yaml_file import cli_overrides

    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"hold_log_period": 2.0}},  # (as the shipped files:
                                 "/**/chunk_executor": {"ros__parameters": {"max_chunk_age": 1.0}}}, sort_keys=False))
    # /** first; rcl puts -p into the /** section, so a node section after it wins, whatever the argument order)
    argv = ["--ros-args", "--params-file", str(f), "-p", "max_chunk_age:=0.5", "-p", "hold_log_period:=3e0",
            "-p", "other_node:x:=1"]  # (3e0: a float to rcl, a string to YAML 1.1, which warned wrongly)
    assert cli_overrides(argv) == {"max_chunk_age": 0.5, "hold_log_period": 3.0}
    rclpy.init(args=["chunk_executor", *argv])  # (the process's arguments, as `ros2 run` gives them)
    try:
        node = rclpy.create_node("chunk_executor")
        warned: list[str] = []

        class Log:
            def warn(self, text: str, **_: object) -> None:
                warned.append(text)

            info = warn

        node.get_logger = Log  # (rclpy's logger writes to the process's stderr: read here instead)
        p = declare_and_validate(node, ROLE_EXECUTOR, argv=argv)
        assert p.max_chunk_age == 1.0 and p.hold_log_period == 3.0  # ROS's precedence, measured: the file's section
        shadowed = [w for w in warned if w.startswith("-p ")]
        assert len(shadowed) == 1 and "-p max_chunk_age:=0.5 did not apply, max_chunk_age is 1.0" in shadowed[0]
        node.destroy_node()
    finally:
        rclpy.shutdown()


@pytest.mark.parametrize("section", ["/**", "/**/policy_inference"])
def test_a_watchdog_setting_left_in_policy_inference_s_section_is_a_warning(tmp_path, ros_env, section) -> None:
    """The shipped files of 2026-12-05/06 said to put left: {tracking_tolerance: [0.3]} under policy_inference; the
    watchdog moved to chunk_executor, which then ran without it while policy_inference said so at INFO only (an
    upgrade walkthrough). In its own section: a warning; under /** (chunk_executor gets it too): info."""
    rclpy = pytest.importorskip("rclpy")
    import yaml

    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({section: {"ros__parameters": {
        "policy_spec": str(REPO / "policies" / "bimanual_cnn_h50.yaml"), "left": {"tracking_tolerance": [0.3]}}}}))
    argv = ["--ros-args", "--params-file", str(f)]
    rclpy.init(args=["policy_inference", *argv])
    try:
        node = rclpy.create_node("policy_inference")
        said: dict[str, list[str]] = {"warn": [], "info": []}

        class Log:
            def warn(self, text: str, **_: object) -> None:
                said["warn"].append(text)

            def info(self, text: str, **_: object) -> None:
                said["info"].append(text)

        node.get_logger = Log
        declare_and_validate(node, ROLE_INFERENCE, argv=argv)
        moved = [(k, t) for k, texts in said.items() for t in texts if "'left.tracking_tolerance' is not read" in t]
        assert len(moved) == 1, said
        level, text = moved[0]
        assert level == ("info" if section == "/**" else "warn"), said
        assert ("the params files give chunk_executor none" in text) == (section != "/**")
        node.destroy_node()
    finally:
        rclpy.shutdown()


def test_cli_values_are_read_as_rcl_reads_them_and_a_node_s_own_arguments_win(monkeypatch) -> None:
    """rcl's get_value, not YAML 1.1 (which keeps 5e-1 a string, so a -p that applied was warned as not applied)."""
    import math

    from rtc_ros.nodes.params import declare
    from rtc_ros.nodes.params.yaml_file import cli_overrides, rcl_value, same_value

    cases = {"5e-1": 0.5, "1e-05": 1e-05, "3": 3, "0x10": 16, "010": 8, "-7": -7, "yes": True, "Off": False,
             "true": True, "~": "~", "1_000": "1_000", "'12'": "12", "abc": "abc", ".inf": math.inf,
             '["a", "1", 2, yes]': ["a", "1", 2, True]}
    for text, want in cases.items():
        got = rcl_value(text)
        assert got == want and type(got) is type(want), (text, got)
    assert math.isnan(rcl_value(".nan")) and same_value(math.nan, math.nan) and same_value(50.0, 50)
    assert not same_value(True, 1) and same_value([1.0, 2.0], [1, 2])
    monkeypatch.setattr(declare, "GLOBAL_ARGV", ["prog", "--ros-args", "-p", "beta:=2.0"])
    argv = declare.node_argv({"cli_args": ["--ros-args", "-p", "beta:=3.0"]})  # the node's own -p wins in rclpy
    assert cli_overrides(argv) == {"beta": 3.0}
    assert cli_overrides(declare.node_argv({"cli_args": [], "use_global_arguments": False})) == {}


def test_a_stray_section_is_judged_over_every_params_file_and_p(tmp_path) -> None:
    """A value the node gets from another params file or a -p is not lost; a second file naming the node by its full
    name makes the bare section another (root-namespace) robot's: a warning."""
    import yaml

    from rtc_ros.nodes.params.yaml_file import stray_in_files

    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump({"chunk_executor": {"ros__parameters": {"dry_run": True, "s_min": 5}}}))
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"/**/chunk_executor": {"ros__parameters": {"s_min": 5}}}))
    argv = ["--ros-args", "--params-file", str(bare), "--params-file", str(other)]
    ((text, addressed),) = stray_in_files(argv, "chunk_executor", "/robot_a")
    assert "1 parameter(s) in it (dry_run)" in text and not addressed
    assert stray_in_files(argv + ["-p", "dry_run:=true"], "chunk_executor", "/robot_a") == []
    named = tmp_path / "named.yaml"
    named.write_text(yaml.safe_dump({"robot_a/chunk_executor": {"ros__parameters": {"rate_hz": 50.0}}}))
    ((_, addressed),) = stray_in_files(argv + ["--params-file", str(named)], "chunk_executor", "/robot_a")
    assert addressed


def test_nested_namespaces_in_a_params_file_are_read_as_rcl_reads_them(tmp_path) -> None:
    """`robot_a: {chunk_executor: {ros__parameters: ...}}` reaches /robot_a/chunk_executor in rcl (measured with
    rclpy); the package's own reader (rtc_bringup --check, training, the stray-section check) skipped it."""
    import yaml

    from rtc_ros.nodes.params.yaml_file import stray_sections
    from rtc_ros.recording.params_file import node_sections

    data = {"/**": {"ros__parameters": {"horizon": 40}},
            "robot_a": {"chunk_executor": {"ros__parameters": {"max_chunk_age": 0.25, "left": {"max_step": [0.05]}}}},
            "/robot_b": {"arm": {"chunk_executor": {"ros__parameters": {"max_chunk_age": 0.5}}}}}
    assert [k for k, _ in node_sections(data)] == ["/**", "robot_a/chunk_executor", "/robot_b/arm/chunk_executor"]
    f = tmp_path / "nested.yaml"
    f.write_text(yaml.safe_dump(data, sort_keys=False))
    got = load_params_file(f, "chunk_executor", "/robot_a")
    assert got == {"horizon": 40, "max_chunk_age": 0.25, "left.max_step": [0.05]}
    assert load_params_file(f, "chunk_executor", "/robot_b/arm")["max_chunk_age"] == 0.5
    assert load_params_file(f, "chunk_executor") == {"horizon": 40}
    shared = {**data, "chunk_executor": {"ros__parameters": {"dry_run": True}}}  # a root-namespace robot's too
    assert stray_sections(shared, "chunk_executor", "/robot_a") == [("chunk_executor", ["dry_run"], True)]


def test_a_max_accel_too_small_to_brake_within_the_stop_wait_is_warned(tmp_path) -> None:
    """A stop signal waits BRAKE_LIMIT_S (3 s) for the arm to brake; from max_step per tick (0.05 rad at 50 Hz =
    2.5 rad/s) at 0.5 rad/s^2 that takes 5 s, so the executor warns; at 2 rad/s^2 (1.25 s) it does not. A
    gripper_joints pattern that matches nothing is a typo and said so."""
    from rtc_ros.nodes.params import executor_notes

    slow = validate({"left.max_accel": [0.5]}, ROLE_EXECUTOR)
    notes = [n for n in executor_notes(slow) if "stop signal" in n]
    assert len(notes) == 1 and notes[0].startswith("left.max_accel: braking left_") and "takes 5.0 s" in notes[0]
    assert not [n for n in executor_notes(validate({"left.max_accel": [2.0]}, ROLE_EXECUTOR)) if "stop signal" in n]
    typo = validate({"left.gripper_joints": ["*griper"]}, ROLE_EXECUTOR)
    assert any(n.startswith("left.gripper_joints: ['*griper'] match none of its joints") for n in executor_notes(typo))


def test_defaults_wrong_at_a_low_rate_are_said_with_the_rate() -> None:
    """A 10 Hz walkthrough (H = 16): max_chunk_age's 1 s default is shorter than a chunk (1.6 s), so a 1.2 s
    inference was refused with 4 actions left and the arm held: warned, naming the chunk's duration; the default
    max_step is said as a speed at this rate (0.05 rad per tick is 0.5 rad/s at 10 Hz)."""
    from rtc_ros.nodes.params import executor_notes

    p = validate({"rate_hz": 10.0, "horizon": 16, "s_min": 4, "startup_ramp_s": 0.3}, ROLE_EXECUTOR)
    notes = executor_notes(p)
    assert any(n.startswith("max_chunk_age 1 s is shorter than a chunk (horizon / rate_hz = 1.6 s)") for n in notes)
    assert any("max_step = 0.05 rad per tick (0.5 rad/s at rate_hz 10)" in n for n in notes)
    ok = validate({"rate_hz": 10.0, "horizon": 16, "s_min": 4, "startup_ramp_s": 0.3, "max_chunk_age": 1.6},
                  ROLE_EXECUTOR)
    assert not any("max_chunk_age" in n for n in executor_notes(ok))


def test_two_arms_on_one_command_topic_only_with_joint_state_messages() -> None:
    """A Float64MultiArray or a trajectory carries no (or only some) joint names: two arms publishing on one topic
    would take turns at its controller (a review). joint_state messages carry the names and may share one."""
    shared = {"left.command_topic": "both/commands", "right.command_topic": "both/commands"}
    for kind in ("float64_multi_array", "joint_trajectory"):
        with pytest.raises(ParameterError, match=r"'right\.command_topic' = 'both/commands': is also left's"):
            validate({**shared, "output_type": kind}, ROLE_EXECUTOR)
    assert validate({**shared, "output_type": "joint_state"}, ROLE_EXECUTOR).arms[1].command_topic == "both/commands"


def test_limits_holding_no_position_and_a_stop_free_space_above_the_start_s_are_refused() -> None:
    """An audit: both limits +inf (or both -inf) were accepted (the executor then measured every position beyond them
    and commanded nothing), and a recorder's stop_free_mb at or above min_free_mb closed every episode at its first
    check ('stopped_low_disk', 0 messages)."""
    for lo, hi, field in ((np.inf, np.inf, "left.lower_limits"), (-np.inf, -np.inf, "left.upper_limits")):
        with pytest.raises(ParameterError, match=f"'{field}'.*hold no position"):
            validate({"left.lower_limits": [lo], "left.upper_limits": [hi]}, ROLE_EXECUTOR)
    validate({"left.lower_limits": [-np.inf], "left.upper_limits": [np.inf]}, ROLE_EXECUTOR)  # unbounded: fine
    with pytest.raises(ParameterError, match="'stop_free_mb'.*must be below min_free_mb"):
        validate({"stop_free_mb": 600.0, "min_free_mb": 500.0}, ROLE_RECORDER)
    validate({"stop_free_mb": 0.0, "min_free_mb": 0.0}, ROLE_RECORDER)  # both off
    validate({"stop_free_mb": 50.0, "min_free_mb": 500.0}, ROLE_RECORDER)  # the defaults
