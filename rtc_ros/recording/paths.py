"""Path parameters: ``${VAR:-default}`` expansion and lookup of relative paths in the package (the nodes' path
parameters, and the recorder's policy provenance: ``policy_spec: ${RTC_POLICY_SPEC}`` as ``bimanual.launch.py`` passes it)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}")


def package_roots() -> list[Path]:
    """Where relative data paths (policies/, config/) are looked up after the working directory."""
    roots = [Path(__file__).resolve().parents[2]]  # source tree
    roots.append(Path(sys.prefix) / "share" / "rtc_ros")
    try:  # an ament install (colcon)
        from ament_index_python.packages import get_package_share_directory

        roots.append(Path(get_package_share_directory("rtc_ros")))
    except Exception:  # noqa: BLE001 -- no ament index or package not installed
        pass
    return roots


def fallback_taken(value: str) -> str | None:
    """The variable of the first ``${VAR:-default}`` in ``value`` whose default expansion takes (``VAR`` unset or
    empty), else None."""
    for m in _VAR.finditer(value):
        if m.group(2) is not None and not os.environ.get(m.group(1)):
            return m.group(1)
    return None


#: the policy specs shipped in ``policies/``, all trained in simulation (a test keeps this the directory's list)
SHIPPED_POLICIES = ("bimanual_cnn_conveyor_h50.yaml", "bimanual_cnn_h50.yaml", "bimanual_cnn_h50_long.yaml",
                    "bimanual_cnn_h50_margin.yaml", "bimanual_cnn_h50_trained.yaml", "bimanual_cnn_h50_trained_d16.yaml",
                    "bimanual_sim_h50.yaml")


def shipped_policy(path: str) -> bool:
    """``path`` is one of the :data:`SHIPPED_POLICIES` in the package's ``policies/``: installed, or in a source
    checkout of rtc_ros (a ``package.xml`` naming it beside ``policies/``). A user's own spec put there is not (a
    review)."""
    target = Path(os.path.abspath(path))
    if target.name not in SHIPPED_POLICIES:
        return False
    if any(target.resolve().is_relative_to((root / "policies").resolve()) for root in package_roots()):
        return True
    try:
        return target.parent.name == "policies" and "<name>rtc_ros</name>" in (
            target.parent.parent / "package.xml").read_text(errors="replace")
    except OSError:
        return False


def expand_path(value: str) -> str:
    """Expand ``${VAR:-default}``, ``${VAR}``, ``$VAR`` and ``~``; a relative path that does not exist
    in the working directory is looked up in the package (source tree, then install share)."""
    text = _VAR.sub(lambda m: os.environ.get(m.group(1)) or (m.group(3) or ""), value)
    text = os.path.expanduser(os.path.expandvars(text))
    if not text or os.path.isabs(text) or Path(text).exists():
        return text
    for root in package_roots():
        if (root / text).exists():
            return str(root / text)
    return text
