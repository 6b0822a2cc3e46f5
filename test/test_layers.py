"""Layers import only downward, with no cycles, and no module grows past ~400 lines.

core <- policies <- runtime <- recording <- nodes <- sim <- experiments / benchmarks / report
(``a <- b``: b may import a). Every import is checked, also the ones inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "rtc_ros"
RANK = {"core": 0, "policies": 1, "runtime": 2, "recording": 3, "nodes": 4, "sim": 5,
        "experiments": 6, "benchmarks": 6, "report": 6}
MAX_LINES = 420


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):  # typing-only imports (``if TYPE_CHECKING:``) do not run
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    found = set()
    pkg = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m == "rtc_ros" or m.startswith("rtc_ros.")}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


MODULES = _modules()
GRAPH = {m: {i for i in _imports(p, m) if i in MODULES and i != m} for m, p in MODULES.items()}


def test_every_layer_is_known() -> None:
    layers = {_layer(m) for m in MODULES} - {None}
    assert layers <= set(RANK), f"unranked packages: {layers - set(RANK)}"


def test_imports_only_run_downward() -> None:
    bad = []
    for m, deps in GRAPH.items():
        lm = _layer(m)
        for dep in deps:
            ld = _layer(dep)
            if lm is None or ld is None or ld == lm:
                continue
            if RANK[ld] > RANK[lm] or (RANK[ld] == RANK[lm] and RANK[lm] == 6):
                bad.append(f"{m} imports {dep} ({lm} may not import {ld})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles() -> None:
    color: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        color[m] = 1
        for dep in sorted(GRAPH[m]):
            if dep.startswith(m + "."):  # a package importing its own submodules is not a cycle
                continue
            if color.get(dep) == 1 and not m.startswith(dep + "."):
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]) if dep in stack else f"{m} -> {dep}")
            elif dep not in color:
                visit(dep, stack + [dep])
        color[m] = 2

    for m in sorted(GRAPH):
        if m not in color:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module: str) -> None:
    n = len(MODULES[module].read_text().splitlines())
    assert n <= MAX_LINES, f"{module} has {n} lines (one concern per module, under ~400)"


def test_the_checker_sees_an_upward_import(tmp_path) -> None:
    """The checker itself: a core module importing nodes would be found."""
    p = tmp_path / "bad.py"
    p.write_text("def f():\n    from rtc_ros.nodes.params import validate\n")
    assert _imports(p, "rtc_ros.core.bad") == {"rtc_ros.nodes.params", "rtc_ros.nodes.params.validate"}


@pytest.mark.parametrize("module", ["rtc_ros.nodes.chunk_executor", "rtc_ros.nodes.joint_state_merger",
                                    "rtc_ros.nodes.episode_recorder"])
def test_the_robot_side_nodes_do_not_import_torch(module: str) -> None:
    """The robot's computer (chunk_executor, joint_state_merger, the recorder) needs no torch: a split launch runs
    the policy elsewhere. Imported in a fresh interpreter (torch would be in sys.modules after the import)."""
    import os
    import subprocess
    import sys

    pytest.importorskip("rclpy")
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(PKG.parent)})
    assert out.returncode == 0 and out.stdout.strip() == "False", (out.stdout, out.stderr[-2000:])
