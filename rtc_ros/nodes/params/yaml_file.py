"""Reading ROS 2 params files without ROS: the ROS-free reader lives in
:mod:`rtc_ros.recording.params_file` (training from bags uses it too); re-exported here. And the params files a
node was started with, and their sections written for it that do not reach it under its namespace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rtc_ros.nodes.params.values import ParameterError
from rtc_ros.recording.params_file import key_matches, load_params_file

__all__ = ["StraySectionError", "cli_overrides", "key_matches", "load_params_file", "params_files", "stray_in_files",
           "stray_sections", "stray_text"]


class StraySectionError(ParameterError):
    """A params-file section written for this node that does not reach it (:func:`stray_text`)."""

    def __init__(self, text: str) -> None:
        ValueError.__init__(self, text)
        self.name, self.value = "params file", None


def params_files(argv: list[str]) -> list[str]:
    """The ``--params-file`` paths among the ROS arguments of ``argv`` (after ``--ros-args``, up to ``--``)."""
    out, ros = [], False
    for i, tok in enumerate(argv):
        if tok == "--ros-args":
            ros = True
        elif tok == "--":
            ros = False
        elif ros and tok == "--params-file" and i + 1 < len(argv):
            out.append(argv[i + 1])
    return out


def cli_overrides(argv: list[str]) -> dict[str, Any]:
    """The ``-p name:=value`` (``--param``) overrides among the ROS arguments of ``argv``, values parsed as rcl parses
    them (YAML); node-prefixed ones (``node:name:=v``) and unparsable values are left out."""
    out, ros = {}, False
    for i, tok in enumerate(argv):
        if tok == "--ros-args":
            ros = True
        elif tok == "--":
            ros = False
        elif ros and tok in ("-p", "--param") and i + 1 < len(argv) and ":=" in argv[i + 1]:
            name, _, text = argv[i + 1].partition(":=")
            try:
                value = yaml.safe_load(text) if text else ""
            except yaml.YAMLError:
                continue
            if ":" not in name:
                out[name] = value
    return out


def stray_sections(data: Any, node_name: str, namespace: str) -> list[tuple[str, list[str]]]:
    """Sections of a params file's ``data`` written for ``node_name`` without a namespace (key ``node_name`` or
    ``/node_name``: rcl applies them to ``/node_name`` only) while the node runs in ``namespace`` (not the root):
    every value in them is ignored without a word. ``(key, parameter names)`` per such section."""
    if not isinstance(data, dict) or namespace.strip("/") == "":
        return []
    out = []
    for key, section in data.items():
        params = section.get("ros__parameters") if isinstance(section, dict) else None
        if isinstance(key, str) and key.strip("/") == node_name and isinstance(params, dict):
            out.append((key, _names("", params)))
    return out


def _names(prefix: str, d: dict[str, Any]) -> list[str]:
    return [n for k, v in d.items() for n in (_names(f"{prefix}{k}.", v) if isinstance(v, dict) else [f"{prefix}{k}"])]


def stray_text(path: str | Path, key: str, names: list[str], node_name: str, namespace: str) -> str:
    """Why a stray section (:func:`stray_sections`) does not apply, and how to write its key."""
    ns = namespace.strip("/")
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return (f"params file {path}: section '{key}' is for /{node_name} (the root namespace), but this node is "
            f"/{ns}/{node_name}: its {len(names)} parameter(s) ({shown}) would be ignored; write the key as "
            f"'/**/{node_name}' (any namespace) or '{ns}/{node_name}'")


def stray_in_files(argv: list[str], node_name: str, namespace: str) -> list[str]:
    """:func:`stray_text` for every stray section of the params files in ``argv`` (unreadable files: skipped,
    rcl reports those)."""
    texts = []
    for path in params_files(argv):
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            continue
        texts += [stray_text(path, key, names, node_name, namespace)
                  for key, names in stray_sections(data, node_name, namespace)]
    return texts
