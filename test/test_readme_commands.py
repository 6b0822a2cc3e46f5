"""The commands the README and docs name exist: `.venv/bin/X` in the venv, `python -m M` modules runnable,
`install/rtc_ros/lib/rtc_ros/X` console scripts declared in setup.py."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _mentions(pattern: str) -> set[tuple[str, str]]:
    return {(doc.name, m) for doc in DOCS for m in re.findall(pattern, doc.read_text())}


def test_venv_commands_exist() -> None:
    """``.venv/bin/X``: X is in the running venv's bin (the venv the README's `make setup` makes)."""
    found = _mentions(r"\.venv/bin/([A-Za-z0-9_.-]+)")
    missing = [(doc, name) for doc, name in found if not (Path(sys.prefix) / "bin" / name).exists()]
    assert not missing, f"commands named in the docs but absent from {sys.prefix}/bin: {missing}"


def test_python_m_modules_are_runnable() -> None:
    found = _mentions(r"python -m ((?:rtc_ros)(?:\.[A-Za-z0-9_]+)*)")
    assert any(m == "rtc_ros.nodes.bringup" for _, m in found), "the README names the pip-only bringup"
    bad = []
    for doc, module in sorted(found):
        spec = importlib.util.find_spec(module)
        if spec is None or (spec.submodule_search_locations is not None
                            and importlib.util.find_spec(module + ".__main__") is None):
            bad.append((doc, module))
    assert not bad, f"`python -m` targets that do not run: {bad}"


def test_install_console_scripts_are_declared() -> None:
    found = _mentions(r"install/rtc_ros/lib/rtc_ros/([A-Za-z0-9_]+)")
    assert found, "the README names the colcon console script of the bringup"
    setup = (REPO / "setup.py").read_text()
    undeclared = [(doc, name) for doc, name in found if not re.search(rf'"{name} = rtc_ros\.[a-z_.]+:main"', setup)]
    assert not undeclared, undeclared
    for _, name in found:
        module = re.search(rf'"{name} = (rtc_ros\.[a-z_.]+):main"', setup).group(1)
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"console script {name} points at missing module {module}")
