"""The field checks of a policy spec (rtc_ros.policies.spec): misspelt or misplaced fields, the rate given beside
``dt``, scalars, the observation layout's size, and a YAML loader refusing a key given twice."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml


#: ``${VAR:-default}``, ``${VAR}`` and ``$VAR`` in a path a spec names
ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def spec_path(spec_file: Path, raw: str, fld: str) -> Path:
    """A file the spec ``spec_file`` names in field ``fld`` (``weights``, ``normalization``, a checkpoint folder):
    ``~``, ``${VAR:-default}``, ``${VAR}`` and ``$VAR`` expanded as a shell does (as the ``policy_spec`` parameter
    is; an audit: ``weights: ~/...`` was read as a folder named ``~``), then relative to the spec's folder. A variable
    that is not set (and has no default) is a :class:`PolicySpecError` naming it (it read as a file named ``$VAR``)."""
    unset: list[str] = []

    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        got = os.environ.get(name)
        if got or (got is not None and m.group(2) is None):
            return got
        if m.group(2) is not None:  # unset or empty: the default
            return m.group(2)
        unset.append(name)
        return m.group(0)

    text = ENV_VAR.sub(value, str(raw))
    if unset:
        raise spec_error(spec_file, fld, f"{raw!r} names the environment variable "
                                         f"{', '.join('$' + n for n in dict.fromkeys(unset))}, which is not set "
                                         "(set it, or write ${VAR:-default})")
    return (spec_file.parent / os.path.expanduser(text)).resolve()


class PolicySpecError(ValueError):
    """An invalid policy spec; the message names the file and the field."""


def spec_error(path: Path | str, fld: str, msg: str) -> PolicySpecError:
    return PolicySpecError(f"policy spec {path}: field '{fld}': {msg}")


#: top-level fields that give the control rate another way than ``dt``: without a ``dt`` an error (the rate
#: would go unchecked: a 10 Hz policy run at 50 Hz moves five times too fast)
RATE_FIELDS = ("rate", "rate_hz", "hz", "fps", "frequency", "control_hz", "control_rate", "control_frequency",
               "control_period", "control_dt", "period")
#: fields meant as ``robot_units`` that the similarity check does not catch (an audit: ``units:`` was ignored, the
#: policy's degrees then read as radians)
UNITS_FIELDS = ("units", "unit", "joint_units", "action_units", "robot_unit", "policy_units", "dataset_units")


def check_typos(path: Path, mapping: dict[str, Any], known: tuple[str, ...], prefix: str = "") -> None:
    """An unknown field that reads like a known one (e.g. ``n_step``, ``obs_specs``) is an error naming
    both: a misspelt field would otherwise be ignored and its default used. So is a rate given another way
    than ``dt`` (:data:`RATE_FIELDS`) in a spec without ``dt``."""
    for key in mapping:
        if key in known or not isinstance(key, str):
            continue
        if not prefix and "dt" in known and "dt" not in mapping and key.lower() in RATE_FIELDS:
            raise spec_error(path, key, "rtc_ros reads the control rate only from dt, the controller period in "
                             "seconds (e.g. dt: 0.1 for a 10 Hz policy); write dt instead, or the rate goes unchecked")
        if not prefix and "dt" in known and key.lower() in RATE_FIELDS and _rate_disagrees(mapping["dt"], key,
                                                                                          mapping[key]):
            raise spec_error(path, key, f"{mapping[key]!r} disagrees with dt: {mapping['dt']!r} (rtc_ros runs the "
                             "policy at 1 / dt; an audit's spec said dt: 0.02 beside fps: 10): make them agree, or "
                             "remove it")
        if not prefix and "robot_units" in known and key.lower() in UNITS_FIELDS:
            raise spec_error(path, key, "unknown field; did you mean 'robot_units' (the units of the policy's actions "
                             "and joint inputs where they differ from the robot's, e.g. robot_units: degrees)?")
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if close:
            raise spec_error(path, prefix + key, f"unknown field; did you mean '{prefix}{close[0]}'?")


def _rate_disagrees(dt: Any, key: str, value: Any) -> bool:
    """A rate field given beside ``dt`` that does not say the same period (within 2 %); periods for the ``*period``
    / ``*_dt`` fields, rates (Hz) for the others."""
    if isinstance(dt, bool) or isinstance(value, bool) or not isinstance(dt, (int, float)) \
            or not isinstance(value, (int, float)) or not dt > 0 or not value > 0:
        return False
    period = value if key.lower().endswith(("period", "_dt")) else 1.0 / value
    return abs(period - dt) > 0.02 * dt


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader refusing a key given twice in one mapping (the later one won silently: an audit's spec
    gave robot_units twice, the second empty, and ran without units)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # (`<<: *anchor`: PyYAML merges it itself)
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise yaml.constructor.ConstructorError(None, None, f"a mapping key must be a name, got a {type(key).__name__}",
                                                        key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"field '{key}' is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def obs_dim_of(obs_spec: list[dict[str, Any]], path: Path) -> int:
    total = 0
    for i, item in enumerate(obs_spec):
        if not isinstance(item, dict) or "name" not in item or "shape" not in item:
            raise spec_error(path, f"obs_spec[{i}]", "each entry needs 'name' and 'shape'")
        shape = item["shape"]
        if (not isinstance(shape, list) or not shape
                or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in shape)):
            raise spec_error(path, f"obs_spec[{i}].shape", f"must be a list of positive integers (e.g. [14] or "
                       f"[32, 32, 3]), got {shape!r}")
        if not isinstance(item["name"], str) or not item["name"]:
            raise spec_error(path, f"obs_spec[{i}].name", f"must be a non-empty string, got {item['name']!r}")
        total += int(np.prod(shape))
    return total


def check_scalars(path: Path, spec: dict[str, Any]) -> None:
    """``n_steps`` an integer >= 1, ``dt`` a positive number of seconds, ``joint_names`` distinct strings."""
    n = spec.get("n_steps", 5)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise spec_error(path, "n_steps", f"must be an integer >= 1 (denoising steps), got {n!r}")
    dt = spec.get("dt")
    if dt is not None and (isinstance(dt, bool) or not isinstance(dt, (int, float)) or not 0 < dt < 10):
        raise spec_error(path, "dt", f"must be the controller period in seconds (e.g. 0.02 for 50 Hz), got {dt!r}")
    names = spec.get("joint_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(x, str) for x in names)
                              or len(set(names)) != len(names)):
        raise spec_error(path, "joint_names", f"must be a list of distinct joint names, got {names!r}")
