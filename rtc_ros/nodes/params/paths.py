"""Path parameters: ``${VAR:-default}`` expansion and lookup of relative paths in the package (the ROS-free
implementation is :mod:`rtc_ros.recording.paths`, which the recorder's provenance uses too; re-exported here)."""

from __future__ import annotations

from rtc_ros.recording.paths import expand_path, fallback_taken, package_roots, shipped_policy

__all__ = ["expand_path", "fallback_taken", "package_roots", "shipped_policy"]
