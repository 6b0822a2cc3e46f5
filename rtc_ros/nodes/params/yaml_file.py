"""ROS 2 params files without ROS: which sections apply to a node, and their flattened values."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


def key_matches(key: str, fq_name: str) -> bool:
    """ROS 2 params-file node key matching against a fully qualified node name (``/ns/name``).

    ``/**`` matches any namespace prefix, ``*`` one name token; a key without a leading ``/`` is
    relative to the root namespace.
    """
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


def load_params_file(path: str | Path, node_name: str, namespace: str = "") -> dict[str, Any]:
    """Values a node named ``node_name`` in ``namespace`` would get from a ROS 2 params file (no ROS).

    Sections apply in file order when their key matches the node's fully qualified name (``/**``,
    ``/**/name``, ``name``, ``/ns/name``, ``*`` wildcards). Nested dicts become dotted names
    (``left.joint_names``).

    Raises:
        ValueError: the file's top level is not a mapping.
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"params file {path}: top level must be a mapping")
    ns = namespace.strip("/")
    fq = f"/{ns}/{node_name}" if ns else f"/{node_name}"
    out: dict[str, Any] = {}

    def flatten(prefix: str, d: dict[str, Any]) -> None:
        for k, v in d.items():
            name = f"{prefix}{k}"
            if isinstance(v, dict):
                flatten(name + ".", v)
            else:
                out[name] = v

    for key, section in data.items():
        if isinstance(key, str) and isinstance(section, dict) and key_matches(key, fq):
            params = section.get("ros__parameters", {})
            if isinstance(params, dict):
                flatten("", params)
    return out
