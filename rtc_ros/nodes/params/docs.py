"""Markdown reference of the parameter schema (for docs and ``--help``-style listings)."""

from __future__ import annotations

from typing import Iterable

from rtc_ros.nodes.params.arm_schema import ARM_SPECS
from rtc_ros.nodes.params.schema import NODE_NAMES, ROLES, SPECS, ParamSpec


def _nodes(roles: Iterable[str]) -> str:
    return ", ".join(NODE_NAMES[r] for r in ROLES if r in roles)


def describe(specs: Iterable[ParamSpec] = SPECS) -> str:
    """A Markdown table of the parameters: node(s), default, range or choices, description."""
    rows = ["| parameter | node | default | range / choices | description |", "|---|---|---|---|---|"]
    for s in specs:
        rng = ""
        if s.int_range:
            rng = f"[{s.int_range[0]}, {s.int_range[1]}]"
        elif s.float_range:
            rng = f"[{s.float_range[0]:g}, {s.float_range[1]:g}]"
        elif s.choices:
            rng = ", ".join(s.choices)
        ro = " (read-only)" if s.read_only else " (writable at run time)"
        rows.append(f"| `{s.name}` | {_nodes(s.roles)} | `{s.default!r}` | {rng} | {s.description}{ro} |")
    for a in ARM_SPECS:
        rows.append(f"| `<arm>.{a.suffix}` | {_nodes(a.roles)} | | | {a.description} (read-only) |")
    return "\n".join(rows)
