"""Read a ROS 2 parameters file without ROS (what training from bags needs of the nodes' config).

A params file maps node keys to ``ros__parameters``::

    /**:                      # every node
      ros__parameters: {horizon: 50, rate_hz: 50.0, arms: [left, right]}
    policy_inference:
      ros__parameters: {camera_topics: [cam_high/image_raw], camera_names: [cam_high]}

:func:`load_params_file` returns the values a node of a given name would get; nested mappings
become dotted names (``left.joint_names``). Key matching follows ROS 2: ``/**`` any namespace
prefix, ``*`` one name token, a key without a leading ``/`` is rooted.

(The ``rtc_ros.nodes.params`` schema has the same reader; this copy keeps ``rtc_ros.recording``
free of imports from the node layer.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

#: joints of one ViperX arm, in command order; an arm's default joint names are ``<arm>_<joint>``
ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")
#: the nodes whose sections training reads (executor: arms, joints, rate; inference: cameras)
TRAINING_NODES = ("chunk_executor", "policy_inference")


def default_joint_names(arm: str) -> list[str]:
    """``<arm>_waist`` ... ``<arm>_gripper`` (the nodes' default when ``<arm>.joint_names`` is unset)."""
    return [f"{arm}_{j}" for j in ARM_JOINTS]


def key_matches(key: str, fq_name: str) -> bool:
    """ROS 2 params-file node key matching: ``/**`` any prefix, ``*`` one token; no leading '/' = root."""
    key = key if key.startswith("/") or key.startswith("**") else "/" + key
    pattern = ""
    i = 0
    while i < len(key):
        if key.startswith("/**", i):
            pattern += "(/[^/]+)*"
            i += 3
        elif key.startswith("**", i):
            pattern += "(/?[^/]+)*"
            i += 2
        elif key[i] == "*":
            pattern += "[^/]*"
            i += 1
        else:
            pattern += re.escape(key[i])
            i += 1
    return re.fullmatch(pattern, fq_name) is not None


def node_sections(data: Any) -> list[tuple[str, dict[str, Any]]]:
    """``(node key, ros__parameters)`` of every node section of a params file's ``data``, in file order, nested
    namespaces joined as rcl joins them (``robot_a: {chunk_executor: {ros__parameters: ...}}`` is
    ``robot_a/chunk_executor``; measured with rclpy, 2026-12-07). The parameter dicts are the file's own (edits apply)."""
    out: list[tuple[str, dict[str, Any]]] = []

    def walk(prefix: str, d: dict[Any, Any]) -> None:
        for k, v in d.items():
            if not isinstance(k, str) or not isinstance(v, dict):
                continue
            key = f"{prefix.rstrip('/')}/{k.lstrip('/')}" if prefix else k
            if isinstance(v.get("ros__parameters"), dict):
                out.append((key, v["ros__parameters"]))
            walk(key, {kk: vv for kk, vv in v.items() if kk != "ros__parameters"})

    if isinstance(data, dict):
        walk("", data)
    return out


def flat_params(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``ros__parameters`` with nested mappings as dotted names (``left: {max_step: ...}`` -> ``left.max_step``)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        out.update(flat_params(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def load_params_file(path: str | Path, node_name: str, namespace: str = "") -> dict[str, Any]:
    """Values a node named ``node_name`` in ``namespace`` would get from the params file ``path``.

    Sections apply in file order when their key matches the node's fully qualified name (nested namespaces:
    :func:`node_sections`).

    Raises:
        ValueError: the file is not a mapping at top level.
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"params file {path}: top level must be a mapping")
    ns = namespace.strip("/")
    fq = f"/{ns}/{node_name}" if ns else f"/{node_name}"
    out: dict[str, Any] = {}
    for key, params in node_sections(data):
        if key_matches(key, fq):
            out.update(flat_params(params))
    return out


def training_params(path: str | Path | None) -> dict[str, Any]:
    """The merged parameters of :data:`TRAINING_NODES` (later nodes win), ``{}`` when ``path`` is None."""
    merged: dict[str, Any] = {}
    if path:
        for node in TRAINING_NODES:
            merged.update(load_params_file(path, node))
    return merged


def joint_names_from_params(params: dict[str, Any]) -> list[str] | None:
    """Action joint names: ``<arm>.joint_names`` (or the defaults) for every arm of ``arms``; None without arms."""
    arms = params.get("arms")
    if not arms:
        return None
    return [n for a in arms for n in (params.get(f"{a}.joint_names") or default_joint_names(a))]
