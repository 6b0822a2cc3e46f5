"""Single parameter values, without ROS: :class:`ParameterError`, the type / range / choice check of one value
against its :class:`~rtc_ros.nodes.params.schema.ParamSpec`, and relative topic names."""

from __future__ import annotations

import math
import re
from typing import Any

from rtc_ros.nodes.params.schema import ParamSpec


class ParameterError(ValueError):
    """An invalid parameter or combination; the message names the parameter and its value."""

    def __init__(self, name: str, value: Any, reason: str) -> None:
        super().__init__(f"invalid parameter '{name}' = {value!r}: {reason}")
        self.name = name
        self.value = value


def check_value(spec: ParamSpec, v: Any) -> Any:
    """One value against its spec (type, range, choices); returns it normalised (ints -> float)."""
    if v is None:
        v = spec.default
    if isinstance(spec.default, bool) and not isinstance(v, bool):
        raise ParameterError(spec.name, v, "must be true or false")
    if spec.int_range is not None:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ParameterError(spec.name, v, "must be an integer")
        lo, hi = spec.int_range
        if not lo <= v <= hi:
            raise ParameterError(spec.name, v, f"must be in [{lo}, {hi}]")
    if spec.float_range is not None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ParameterError(spec.name, v, "must be a number")
        v = float(v)
        lo, hi = spec.float_range
        if not (math.isfinite(v) and lo <= v <= hi):
            extra = " (must be > 0)" if 0 < lo < 1e-3 else ""
            raise ParameterError(spec.name, v, f"must be in [{lo:g}, {hi:g}]{extra}")
    if spec.array_type is not None:
        v = check_array(spec.name, v, spec.array_type)
    elif isinstance(spec.default, str) and not isinstance(v, str):
        raise ParameterError(spec.name, v, "must be a string")
    if spec.choices is not None and v not in spec.choices:
        raise ParameterError(spec.name, v, f"must be one of {list(spec.choices)}")
    return v


def check_array(name: str, v: Any, kind: str) -> list[Any]:
    if not isinstance(v, (list, tuple)):
        raise ParameterError(name, v, f"must be a list of {'strings' if kind == 'string' else 'numbers'}")
    if kind == "string":
        if not all(isinstance(x, str) for x in v):
            raise ParameterError(name, list(v), "must be a list of strings")
        return list(v)
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        raise ParameterError(name, list(v), "must be a list of numbers")
    return [float(x) for x in v]


#: a relative ROS 2 topic name: tokens of letters, digits and underscores, not starting with a digit, or the
#: substitutions {node}, {ns}, {namespace}, separated by single '/' (no leading or trailing '/'); ``~``
#: (the node's private namespace) alone or leading as ``~/``
_TOKEN = r"([A-Za-z_][A-Za-z0-9_]*|\{(node|ns|namespace)\})"
_RELATIVE_TOPIC = re.compile(rf"~|(~/)?{_TOKEN}(/{_TOKEN})*")


def check_relative(name: str, topic: str) -> None:
    """Refuse a topic name that is empty, absolute or not a valid ROS 2 name (``sim/bad-name``,
    ``left//cmd``, ``2cam/image``): rclpy would raise at the subscription instead, after start-up."""
    if not topic or topic.startswith("/") or any(c.isspace() for c in topic):
        raise ParameterError(name, topic, "must be a non-empty relative topic name (no leading '/', no spaces)")
    if not _RELATIVE_TOPIC.fullmatch(topic):
        raise ParameterError(name, topic, "is not a valid ROS 2 topic name: tokens of letters, digits and '_' "
                                          "(not starting with a digit) separated by single '/'")
