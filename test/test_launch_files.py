"""Launch files, checked without importing launch/launch_ros (not installed here): parsed with ast.

Also checks the pip-only ``rtc_bringup`` command against the same params file.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))


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


def test_there_is_a_bimanual_launch_file() -> None:
    assert (REPO / "launch" / "bimanual.launch.py") in LAUNCH_FILES


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_structure(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    declared = {_str(c.args[0]) for c in _calls(tree, "DeclareLaunchArgument") if c.args}
    used = {_str(c.args[0]) for c in _calls(tree, "LaunchConfiguration") if c.args}
    assert used <= declared, f"LaunchConfiguration without DeclareLaunchArgument: {used - declared}"
    assert {"params_file", "namespace", "use_sim_time", "record"} <= declared
    nodes = _calls(tree, "Node")
    assert nodes, "no Node actions"
    scripts = console_scripts()
    for call in nodes:
        assert _str(_kw(call, "package")) == "rtc_ros"
        exe = _str(_kw(call, "executable"))
        assert exe in scripts, f"{path.name}: executable {exe!r} is not a console_script in setup.py ({sorted(scripts)})"
        module, func = scripts[exe].split(":")
        assert callable(getattr(importlib.import_module(module), func))
        params = _kw(call, "parameters")
        assert isinstance(params, ast.List) and params.elts, f"{exe}: no parameters"
        assert _kw(call, "namespace") is not None, f"{exe}: no namespace"
    # the default params file exists and is installed
    defaults = [c for c in _calls(tree, "DeclareLaunchArgument") if c.args and _str(c.args[0]) == "params_file"]
    src = ast.unparse(_kw(defaults[0], "default_value"))
    assert "config" in src and "bimanual.yaml" in src
    assert (REPO / "config" / "bimanual.yaml").is_file()
    setup_text = (REPO / "setup.py").read_text()
    assert "config/*.yaml" in setup_text and "launch/*.py" in setup_text
    # record runs ros2 bag record
    cmds = [ast.unparse(_kw(c, "cmd")) for c in _calls(tree, "ExecuteProcess")]
    assert any("'ros2', 'bag', 'record'" in c for c in cmds), cmds
    # no absolute topic remaps (namespaces must apply)
    for call in _calls(tree, "Node"):
        remaps = _kw(call, "remappings")
        if remaps is not None:
            assert "'/" not in ast.unparse(remaps)


def test_bringup_check_mode(tmp_path, capsys) -> None:
    from rtc_ros.nodes import bringup

    assert bringup.main(["--params-file", str(REPO / "config" / "bimanual.yaml"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "chunk_executor: method=rtc H=50" in out and "policy_inference" in out
    assert bringup.main(["--params-file", str(REPO / "config" / "invalid_params.yaml"), "--check"]) == 2
    assert "'s_min'" in capsys.readouterr().err
    # command-line overrides land in the file's own sections and are validated
    assert bringup.main(["--params-file", str(REPO / "config" / "bimanual.yaml"), "--method", "sync",
                         "--namespace", "robot1", "--check"]) == 0
    assert "method=sync" in capsys.readouterr().out
    assert bringup.main(["--params-file", str(REPO / "config" / "bimanual.yaml"), "--policy-spec",
                         str(tmp_path / "missing.yaml"), "--check"]) == 2
    assert "'policy_spec'" in capsys.readouterr().err
