"""Launch files: structure parsed with ast (works without ROS launch), the recorder helpers, and, where
``launch`` is importable (the ROS 2 CLI installed by ``make test``, or a ROS install), the real launch
descriptions. Running them is test_ros2_cli.py's job. Also checks the pip-only ``rtc_bringup`` command.
"""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
#: arguments each launch file declares itself (recorder, output_dir, bag_dir come from launch_support)
OWN_ARGS = {"bimanual.launch.py": {"params_file", "namespace", "policy_spec", "use_sim_time", "merge_joint_states",
                                   "nodes"},
            "sim.launch.py": {"params_file", "namespace", "policy_spec", "method", "extra_latency_ms", "episodes",
                              "end_launch", "use_sim_time", "real_time_factor"}}
DEFAULT_PARAMS = {"bimanual.launch.py": "bimanual.yaml", "sim.launch.py": "sim_bimanual.yaml"}


def _str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Call):
            f = n.func
            if (isinstance(f, ast.Name) and f.id == name) or (isinstance(f, ast.Attribute) and f.attr == name):
                out.append(n)
    return out


def _kw(call: ast.Call, key: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == key), None)


def console_scripts() -> dict[str, str]:
    """``name -> module:function`` from setup.py's entry_points (parsed, not executed)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    out = {}
    for call in _calls(tree, "setup"):
        ep = _kw(call, "entry_points")
        if isinstance(ep, ast.Dict):
            for k, v in zip(ep.keys, ep.values):
                if _str(k) == "console_scripts" and isinstance(v, ast.List):
                    for elt in v.elts:
                        s = _str(elt)
                        if s and "=" in s:
                            name, target = (x.strip() for x in s.split("=", 1))
                            out[name] = target
    return out


def test_the_launch_files() -> None:
    assert [p.name for p in LAUNCH_FILES] == sorted(OWN_ARGS)


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_structure(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    declared = {_str(c.args[0]) for c in _calls(tree, "DeclareLaunchArgument") if c.args}
    used = {_str(c.args[0]) for c in _calls(tree, "LaunchConfiguration") if c.args}
    shared = {"recorder", "output_dir", "bag_dir"}
    assert used <= declared | shared, f"LaunchConfiguration without DeclareLaunchArgument: {used - declared}"
    assert OWN_ARGS[path.name] <= declared
    assert _calls(tree, "recorder_arguments") and _calls(tree, "recorder"), "no recorder:= argument"
    nodes = _calls(tree, "Node")
    assert nodes, "no Node actions"
    scripts = console_scripts()
    for call in nodes:
        assert _str(_kw(call, "package")) == "rtc_ros"
        exe = _str(_kw(call, "executable"))
        assert exe in scripts, f"{path.name}: executable {exe!r} is not a console_script in setup.py ({sorted(scripts)})"
        assert _str(_kw(call, "name")) == exe
        module, func = scripts[exe].split(":")
        assert callable(getattr(importlib.import_module(module), func))
        assert _kw(call, "parameters") is not None, f"{exe}: no parameters"
        assert _kw(call, "namespace") is not None, f"{exe}: no namespace"
        remaps = _kw(call, "remappings")  # no absolute topic remaps (namespaces must apply)
        assert remaps is None or "'/" not in ast.unparse(remaps)
    # the default params file exists and is installed
    defaults = [c for c in _calls(tree, "DeclareLaunchArgument") if c.args and _str(c.args[0]) == "params_file"]
    src = ast.unparse(_kw(defaults[0], "default_value"))
    assert "config" in src and DEFAULT_PARAMS[path.name] in src
    assert (REPO / "config" / DEFAULT_PARAMS[path.name]).is_file()
    setup_text = (REPO / "setup.py").read_text()
    assert "config/*.yaml" in setup_text and "launch/*.py" in setup_text


def test_record_regex_is_namespaced() -> None:
    import re

    from rtc_ros.nodes.launch_support import record_regex

    ns = re.compile(record_regex("/robot1"))
    for topic in ("/robot1/rtc/chunk", "/robot1/rtc/executor_state", "/robot1/joint_states",
                  "/robot1/left_controller/commands", "/robot1/right/joint_commands", "/diagnostics"):
        assert ns.search(topic), topic
    for topic in ("/robot2/rtc/chunk", "/rtc/chunk", "/robot1/cam_high/image_raw", "/robot1/rtc/chunk_x"):
        assert not ns.search(topic), topic
    root = re.compile(record_regex(""))
    assert root.search("/rtc/chunk") and root.search("/left_controller/commands")
    assert not root.search("/robot1/rtc/chunk")


def test_the_recorders_record_the_policy_s_cameras(tmp_path) -> None:
    """A demonstration must hold the images the policy sees: both recorders take policy_inference's camera topics
    from the params file (<topic>/compressed with camera_transport: compressed) unless the recorder's own section
    names some (a deployment walkthrough's episodes recorded with config/bimanual.yaml had no images)."""
    import re

    from rtc_ros.nodes.launch_support import policy_cameras, record_regex, recorder_cameras

    real, sim = str(REPO / "config" / "bimanual.yaml"), str(REPO / "config" / "sim_bimanual.yaml")
    assert policy_cameras(real) == ["cam_high/image_raw"] and recorder_cameras(real) == {
        "camera_topics": ["cam_high/image_raw"]}
    assert recorder_cameras(sim) == {}  # its recorder section names them itself
    data = yaml.safe_load(Path(real).read_text())
    data["/**/policy_inference"]["ros__parameters"]["camera_transport"] = "compressed"
    compressed = tmp_path / "c.yaml"
    compressed.write_text(yaml.safe_dump(data))
    assert recorder_cameras(str(compressed), "robot1") == {"camera_topics": ["cam_high/image_raw/compressed"]}
    ns = re.compile(record_regex("/robot1", policy_cameras(str(compressed), "robot1")))
    assert ns.search("/robot1/cam_high/image_raw/compressed") and not ns.search("/robot1/cam_high/image_raw")
    assert not ns.search("/robot2/cam_high/image_raw/compressed")
    absolute = re.compile(record_regex("/robot1", ["/cam_high/image_raw", "wrist/image_raw"]))  # one absolute
    assert absolute.search("/cam_high/image_raw") and absolute.search("/robot1/wrist/image_raw")
    assert not absolute.search("/robot1/cam_high/image_raw") and not absolute.search("/wrist/image_raw")
    data["/**/policy_inference"]["ros__parameters"]["camera_topics"] = []
    compressed.write_text(yaml.safe_dump(data))
    assert recorder_cameras(str(compressed)) == {}


def test_rosbag_needs_ros2_on_path(tmp_path, monkeypatch) -> None:
    from rtc_ros.nodes.launch_support import ros2_bag_missing

    monkeypatch.setenv("PATH", str(tmp_path))
    assert "no `ros2` executable on PATH" in ros2_bag_missing()
    ros2 = tmp_path / "ros2"
    ros2.write_text("#!/bin/sh\n")
    ros2.chmod(0o755)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))  # an ament index without ros2bag
    assert "ros2bag (rosbag2) is not installed" in ros2_bag_missing()


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_description_loads(path: Path, monkeypatch) -> None:
    """The real launch description (no processes started): arguments, defaults and recorder choices."""
    pytest.importorskip("launch_ros.actions", reason="ROS 2 launch not installed (make test installs it)")
    from launch.launch_description_sources import get_launch_description_from_python_launch_file

    install = os.environ.get("RTC_ROS_INSTALL")
    if not install:
        pytest.skip("run through `make test` (needs the colcon install's share directory)")
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join([install, os.environ.get("AMENT_PREFIX_PATH", "")]))
    args = {a.name: a for a in get_launch_description_from_python_launch_file(str(path)).get_launch_arguments()}
    assert OWN_ARGS[path.name] | {"recorder", "output_dir", "bag_dir"} <= set(args)
    assert args["recorder"].choices == ["episode", "rosbag", "none"]
    default = "".join(s.perform(None) for s in args["recorder"].default_value)
    assert default == ("episode" if path.name == "sim.launch.py" else "none")
    if path.name == "bimanual.launch.py":
        assert args["merge_joint_states"].choices == ["true", "false"]
        assert "".join(s.perform(None) for s in args["merge_joint_states"].default_value) == "false"
        assert args["nodes"].choices == ["all", "executor", "inference"]
        assert "".join(s.perform(None) for s in args["nodes"].default_value) == "all"
    params = "".join(s.perform(None) for s in args["params_file"].default_value)
    assert params.endswith("config/" + DEFAULT_PARAMS[path.name]) and Path(params).is_file()
    from launch import LaunchContext
    from launch.actions import OpaqueFunction

    from launch_ros.actions import Node

    entities = get_launch_description_from_python_launch_file(str(path)).entities
    checks = [i for i, e in enumerate(entities)
              if isinstance(e, OpaqueFunction) and e._OpaqueFunction__function.__name__ == "check"]  # noqa: SLF001
    starts = [i for i, e in enumerate(entities) if isinstance(e, (Node, OpaqueFunction)) and i not in checks]
    assert len(checks) == 1 and checks[0] < min(starts)  # before any node or recorder (entities start in order)
    checks = [entities[checks[0]]]
    context = LaunchContext()
    context.launch_configurations.update(params_file="/nonexistent/params.yaml")
    with pytest.raises(RuntimeError, match="'params_file': no such file"):
        checks[0].execute(context)
    if path.name == "sim.launch.py":  # recorder:=rosbag cannot follow <namespace>/clock (a review): refused
        (rec,) = [e for e in entities
                  if isinstance(e, OpaqueFunction) and e._OpaqueFunction__function.__name__ == "choose"]  # noqa: SLF001
        context = LaunchContext()
        context.launch_configurations.update(recorder="rosbag", namespace="robot1", use_sim_time="true",
                                             params_file=params)
        with pytest.raises(RuntimeError, match="recorder:=rosbag with use_sim_time:=true under a namespace"):
            rec.execute(context)
    if path.name == "bimanual.launch.py":  # policy_spec:= wins over the params file's (an audit: it was ignored)
        assert args["use_sim_time"].choices == ["true", "false"]
        (inference,) = [e for e in get_launch_description_from_python_launch_file(str(path)).entities
                        if isinstance(e, OpaqueFunction) and e._OpaqueFunction__function.__name__ == "inference"]
        for spec, extra in (("/models/b.yaml", [{"policy_spec": "/models/b.yaml"}]), ("", [])):
            context = LaunchContext()
            context.launch_configurations.update(policy_spec=spec, namespace="", nodes="all", use_sim_time="false",
                                                 params_file=params)
            (node,) = inference._OpaqueFunction__function(context)  # noqa: SLF001
            given = node._Node__parameters  # noqa: SLF001 (normalized: the file, use_sim_time, the override)
            assert len(given) == 2 + len(extra)
            if extra:
                from launch_ros.utilities import evaluate_parameters

                assert list(evaluate_parameters(context, [given[-1]])) == extra
    if path.name == "sim.launch.py":  # the end of sim_episodes ends the launch unless end_launch:=false (included
        # beside a second robot's nodes, the first robot's last episode stopped both: a two-robot walkthrough)
        from launch import LaunchContext
        from launch.actions import RegisterEventHandler

        (handler,) = [e for e in get_launch_description_from_python_launch_file(str(path)).entities
                      if isinstance(e, RegisterEventHandler)]
        assert args["end_launch"].choices == ["true", "false"]
        for value, ends in (("true", True), ("false", False)):
            context = LaunchContext()
            context.launch_configurations["end_launch"] = value
            assert handler.condition.evaluate(context) is ends


def test_launch_arguments_are_checked_before_any_node_starts(tmp_path) -> None:
    """An audit: a params_file that is no file made launch_ros warn and start every node on its defaults (an executor
    without its limits or arming step); 'abc' for a number failed naming no argument, after some nodes had started."""
    from rtc_ros.nodes.launch_support import argument_error

    good = tmp_path / "p.yaml"
    good.write_text("{}\n")
    numbers = {"extra_latency_ms": (float, 0.0), "episodes": (int, 0), "real_time_factor": (float, 0.01)}
    assert argument_error({"params_file": str(good), "extra_latency_ms": "100.0", "episodes": "3"}, numbers) is None
    for configs, said in (({"params_file": "/home/robot/my_robot.yml"}, "'params_file': no such file"),
                          ({"params_file": "~/p.yaml"}, "does not expand '~'"),
                          ({"extra_latency_ms": "abc"}, "'extra_latency_ms': 'abc' is not a number"),
                          ({"episodes": "1.5"}, "'episodes': '1.5' is not an integer"),
                          ({"extra_latency_ms": "-5"}, "'extra_latency_ms': -5 must be a finite number >= 0"),
                          ({"extra_latency_ms": "nan"}, "must be a finite number"),
                          ({"real_time_factor": "0.5", "use_sim_time": "false"}, "needs use_sim_time:=true")):
        assert said in (argument_error(configs, numbers) or ""), (configs, argument_error(configs, numbers))


def test_bringup_refuses_a_section_that_misses_its_namespace(tmp_path, capsys, monkeypatch) -> None:
    """rtc_bringup --namespace with a params file keyed for the root namespace's nodes exited 0 without a word (the
    nodes ignored the section: its dry_run: true too)."""
    from rtc_ros.nodes import bringup

    monkeypatch.setenv("RTC_POLICY_SPEC", "")
    data = yaml.safe_load((REPO / "config" / "bimanual.yaml").read_text())
    data["chunk_executor"] = {"ros__parameters": {"dry_run": True}}
    f = tmp_path / "unscoped.yaml"
    f.write_text(yaml.safe_dump(data))
    assert bringup.main(["--params-file", str(f), "--only", "executor", "--check"]) == 0  # root namespace: applies
    capsys.readouterr()
    assert bringup.main(["--params-file", str(f), "--only", "executor", "--namespace", "robot_a", "--check"]) == 2
    err = capsys.readouterr().err
    assert "section 'chunk_executor' is for /chunk_executor" in err and "(dry_run) would not reach this node" in err, err


def test_bringup_overrides_reach_namespaced_sections_and_the_recorder(tmp_path, capsys, monkeypatch) -> None:
    """An audit: --method lost against the documented robot1/<node> section (merged only into namespace-free ones);
    --record DIR lost against the file's episode_recorder section (given as -p), and --check passed a recorder
    section the recorder then refused."""
    from rtc_ros.nodes import bringup

    monkeypatch.setenv("RTC_POLICY_SPEC", "")
    data = yaml.safe_load((REPO / "config" / "bimanual.yaml").read_text())
    data["robot1/chunk_executor"] = {"ros__parameters": {"method": "sync"}}
    data["/**/episode_recorder"] = {"ros__parameters": {"output_dir": "/tmp/elsewhere"}}
    f = tmp_path / "robots.yaml"
    f.write_text(yaml.safe_dump(data))
    bags = tmp_path / "bags"
    args = bringup.parse_args(["--params-file", str(f), "--namespace", "robot1", "--only", "executor", "--method",
                               "naive", "--record", str(bags), "--episode-recorder"])
    merged, checked, _given = bringup.build_params(args)
    assert checked["executor"].method == "naive"
    copy = tmp_path / "merged.yaml"
    copy.write_text(yaml.safe_dump(merged))
    from rtc_ros.nodes.params import load_params_file

    assert load_params_file(copy, "episode_recorder", "robot1")["output_dir"] == str(bags.resolve())
    data["/**/episode_recorder"]["ros__parameters"].update(min_free_mb=100, stop_free_mb=500)
    f.write_text(yaml.safe_dump(data))
    assert bringup.main(["--params-file", str(f), "--only", "executor", "--record", str(bags), "--episode-recorder",
                         "--check"]) == 2
    assert "'stop_free_mb'" in capsys.readouterr().err


def test_bringup_check_mode(tmp_path, capsys, monkeypatch) -> None:
    from rtc_ros.nodes import bringup

    real = ["--params-file", str(REPO / "config" / "bimanual.yaml")]
    monkeypatch.setenv("RTC_POLICY_SPEC", "")  # empty = unset; restored after the test (bringup sets it)
    # the real-robot file names no policy: refused (a sim-trained policy must not drive a real arm by omission)
    assert bringup.main([*real, "--check"]) == 2
    assert "'policy_spec'" in capsys.readouterr().err
    assert bringup.main([*real, "--policy-spec", str(REPO / "policies" / "bimanual_cnn_h50.yaml"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "chunk_executor: method=rtc H=50" in out and "policy_inference" in out
    assert "warning: chunk_executor" not in out  # the shipped file sets every limit and the ramp
    assert "warning" not in out and bringup.main([*real, "--policy-spec", str(REPO / "policies" / "bimanual_cnn_h50.yaml"),
                                                  "--check", "--strict"]) == 0  # nothing to warn: --strict passes
    # a file without the left arm's limits and with no ramp: --check says so (the executor warns at start too)
    import yaml

    data = yaml.safe_load((REPO / "config" / "bimanual.yaml").read_text())
    for key in ("lower_limits", "upper_limits", "max_step"):
        del data["/**"]["ros__parameters"]["left"][key]
    data["/**/chunk_executor"]["ros__parameters"]["startup_ramp_s"] = 0.0
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump(data))
    assert bringup.main(["--params-file", str(bare), "--only", "executor", "--check"]) == 0
    warned = [ln for ln in capsys.readouterr().out.splitlines() if "warning: chunk_executor" in ln]
    assert bringup.main(["--params-file", str(bare), "--only", "executor", "--check", "--strict"]) == 1  # a gate
    assert "--strict: 2 warning(s) above" in capsys.readouterr().err
    assert len(warned) == 2 and "left: not set" in warned[0] and "startup_ramp_s is 0" in warned[1]
    # a dry-run file (a first bring-up's step) is said, but not a warning: --strict passes it (a walkthrough's gate
    # failed on it)
    dry = yaml.safe_load((REPO / "config" / "bimanual.yaml").read_text())
    dry["/**/chunk_executor"]["ros__parameters"]["dry_run"] = True
    (tmp_path / "dry.yaml").write_text(yaml.safe_dump(dry))
    assert bringup.main(["--params-file", str(tmp_path / "dry.yaml"), "--only", "executor", "--check", "--strict"]) == 0
    assert "note: chunk_executor: dry_run: no command is published" in capsys.readouterr().out
    # a typo and a retired parameter: rclpy would ignore them silently; bringup refuses the typo (a limit left at its
    # default; the node refuses it too) and names the retired one
    data["/**/chunk_executor"]["ros__parameters"]["left"]["max_acel"] = [10.0]
    data["/**/policy_inference"]["ros__parameters"]["executor_resync_service"] = "chunk_executor/resync"
    bare.write_text(yaml.safe_dump(data))
    assert bringup.main(["--params-file", str(bare), "--only", "executor", "--check"]) == 2
    assert ("refusing to start: invalid parameter 'left.max_acel' = [10.0]: chunk_executor: not a parameter of any "
            "rtc_ros node (did you mean 'left.max_accel'?)") in capsys.readouterr().err
    del data["/**/chunk_executor"]["ros__parameters"]["left"]["max_acel"]
    bare.write_text(yaml.safe_dump(data))
    assert bringup.main(["--params-file", str(bare), "--policy-spec", str(REPO / "policies" / "bimanual_cnn_h50.yaml"),
                         "--check"]) == 0
    out2 = capsys.readouterr().out
    assert "policy_inference: 'executor_resync_service' is not a parameter of any rtc_ros node: ignored (retired: " \
           "the tracking watchdog runs in chunk_executor" in out2
    assert "max_accel is" not in out2 and "limits is" not in out2  # both nodes read the same values
    # max_accel given to the executor's section only: policy_inference's hold model would not be the executor's
    data = yaml.safe_load((REPO / "config" / "bimanual.yaml").read_text())
    data["/**/chunk_executor"]["ros__parameters"]["left"]["max_accel"] = [10.0]
    bare.write_text(yaml.safe_dump(data))
    assert bringup.main(["--params-file", str(bare), "--policy-spec", str(REPO / "policies" / "bimanual_cnn_h50.yaml"),
                         "--check"]) == 0
    assert ("warning: left.max_accel is [10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 0.0] for chunk_executor but "
            "[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0] for policy_inference") in capsys.readouterr().out
    # limits and max_step given to the executor only: policy_inference's target would ignore its clamp there
    del data["/**/chunk_executor"]["ros__parameters"]["left"]["max_accel"]
    for key in ("lower_limits", "upper_limits", "max_step"):
        data["/**/chunk_executor"]["ros__parameters"]["left"][key] = data["/**"]["ros__parameters"]["left"].pop(key)
    bare.write_text(yaml.safe_dump(data))
    assert bringup.main(["--params-file", str(bare), "--policy-spec", str(REPO / "policies" / "bimanual_cnn_h50.yaml"),
                         "--check"]) == 0
    out3 = capsys.readouterr().out
    for key in ("lower_limits", "upper_limits", "max_step"):
        assert f"warning: left.{key} is [" in out3
        assert f"for policy_inference (policy_inference was not given it: the default)" in out3
    assert "right." not in out3  # the right arm's are shared
    data["/**/policy_inference"]["ros__parameters"].setdefault("left", {})["upper_limits"] = [3.0]
    bare.write_text(yaml.safe_dump(data))
    assert bringup.main(["--params-file", str(bare), "--policy-spec", str(REPO / "policies" / "bimanual_cnn_h50.yaml"),
                         "--check"]) == 0
    assert "warning: left.upper_limits is [3.14, 1.26" in capsys.readouterr().out
    # a recorder on the GPU side of a split launch: refused (one per robot, beside the executor)
    assert bringup.main([*real, "--only", "inference", "--record", str(tmp_path / "bags")]) == 2
    assert "the recorder runs beside the executor" in capsys.readouterr().err
    assert bringup.main(["--params-file", str(REPO / "config" / "invalid_params.yaml"), "--check"]) == 2
    assert "'s_min'" in capsys.readouterr().err
    # command-line overrides land in the file's own sections and are validated
    assert bringup.main([*real, "--policy-spec", str(REPO / "policies" / "bimanual_cnn_h50.yaml"), "--method", "sync",
                         "--namespace", "robot1", "--check"]) == 0
    assert "method=sync" in capsys.readouterr().out
    assert bringup.main(["--params-file", str(REPO / "config" / "bimanual.yaml"), "--policy-spec",
                         str(tmp_path / "missing.yaml"), "--check"]) == 2
    assert "'policy_spec'" in capsys.readouterr().err
    assert "policies/bimanual_cnn_h50.yaml fits (cameras ['cam_high']) and samples" in out  # the first call's
    # a policy that does not fit the params: what policy_inference would refuse at start, refused here too
    from conftest import make_small_policy

    h40 = make_small_policy(tmp_path / "h40", horizon=40, image=(32, 32))
    assert bringup.main(["--params-file", str(REPO / "config" / "bimanual.yaml"), "--policy-spec", str(h40),
                         "--check"]) == 2
    assert "would refuse to start: invalid parameter 'horizon' = 50: the policy" in capsys.readouterr().err


def test_bringup_check_warns_a_watchdog_set_for_policy_inference_only(tmp_path, capsys, monkeypatch) -> None:
    """The tracking watchdog moved to chunk_executor (2026-12-06): a params file that still gives its tolerance
    to policy_inference alone would leave it off, so --check says so; under /** (both nodes get it) or in the
    executor's section, nothing is said."""
    import yaml

    from rtc_ros.nodes import bringup

    monkeypatch.setenv("RTC_POLICY_SPEC", "")
    data = yaml.safe_load((REPO / "config" / "bimanual.yaml").read_text())
    path = tmp_path / "p.yaml"
    spec = ["--policy-spec", str(REPO / "policies" / "bimanual_cnn_h50.yaml")]
    data["/**/policy_inference"]["ros__parameters"].setdefault("left", {})["tracking_tolerance"] = [0.3]
    path.write_text(yaml.safe_dump(data))
    for only in ([], ["--only", "executor"]):  # the robot's side alone is checked against the whole file too
        assert bringup.main(["--params-file", str(path), *spec, *only, "--check"]) == 0
        out = capsys.readouterr().out
        assert ("warning: left.tracking_tolerance is set for policy_inference only, which no longer reads it: "
                "chunk_executor does not check left's joints") in out, out
    del data["/**/policy_inference"]["ros__parameters"]["left"]
    data["/**"]["ros__parameters"]["left"]["tracking_tolerance"] = [0.3]
    path.write_text(yaml.safe_dump(data))
    assert bringup.main(["--params-file", str(path), *spec, "--check"]) == 0
    assert "tracking_tolerance" not in capsys.readouterr().out


def test_bringup_merge_joint_states(tmp_path, capsys, monkeypatch) -> None:
    """--merge-joint-states checks (and would start) joint_state_merger from the file's own section."""
    import yaml

    from rtc_ros.nodes import bringup

    monkeypatch.setenv("RTC_POLICY_SPEC", "")
    real = ["--params-file", str(REPO / "config" / "bimanual.yaml")]
    assert bringup.main([*real, "--only", "merger", "--check"]) == 0
    out = capsys.readouterr().out
    assert "joint_state_merger: puppet_left/joint_states, puppet_right/joint_states -> joint_states, 14 joints" in out
    assert "chunk_executor" not in out
    assert bringup.main([*real, "--only", "executor", "--merge-joint-states", "--check"]) == 0  # the robot's side
    out = capsys.readouterr().out
    assert "joint_state_merger: puppet_left/joint_states" in out and "rtc_bringup: chunk_executor:" in out
    assert "policy_inference" not in out
    data = yaml.safe_load((REPO / "config" / "bimanual.yaml").read_text())
    data["/**/joint_state_merger"]["ros__parameters"]["source_prefixes"] = ["left_"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert bringup.main(["--params-file", str(bad), "--policy-spec", str(REPO / "policies" / "bimanual_cnn_h50.yaml"),
                         "--merge-joint-states", "--check"]) == 2
    assert "'source_prefixes' = ['left_']: needs one prefix per source topic (2)" in capsys.readouterr().err


def test_bringup_reads_the_params_file_as_the_nodes_do(tmp_path, capsys) -> None:
    """An audit: `rtc_bringup --check` passed `rate_hz: 50` (an integer, which the node's declare refuses for a
    floating-point parameter) and refused `max_chunk_age: 5e-1` (PyYAML keeps it a string; rcl reads 0.5)."""
    from rtc_ros.nodes import bringup

    text = (REPO / "config" / "bimanual.yaml").read_text()
    assert "rate_hz: 50.0" in text and "max_chunk_age: 1.0" in text
    for name, old, new, rc, said in (("int", "rate_hz: 50.0", "rate_hz: 50", 2, "'rate_hz' = 50: is an integer"),
                                     ("exp", "max_chunk_age: 1.0", "max_chunk_age: 10e-1", 0, "method=rtc")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text.replace(old, new, 1))
        assert bringup.main(["--params-file", str(path), "--only", "executor", "--check"]) == rc, name
        out = capsys.readouterr()
        assert said in out.out + out.err, (name, out)
