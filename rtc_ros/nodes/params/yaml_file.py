"""Reading ROS 2 params files without ROS: the ROS-free reader lives in
:mod:`rtc_ros.recording.params_file` (training from bags uses it too); re-exported here. And the params files a
node was started with, and their sections written for it that do not reach it under its namespace."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from rtc_ros.nodes.params.arm_schema import arm_specs_for
from rtc_ros.nodes.params.schema import arm_names, specs_for
from rtc_ros.nodes.params.values import ParameterError
from rtc_ros.recording.params_file import flat_params, key_matches, load_params_file, node_sections

__all__ = ["StraySectionError", "cli_overrides", "key_matches", "load_params_file", "params_files", "rcl_value",
           "same_value", "stray_in_files", "stray_sections", "stray_text"]


class StraySectionError(ParameterError):
    """A params-file section written for this node that does not reach it (:func:`stray_text`)."""

    def __init__(self, text: str) -> None:
        ValueError.__init__(self, text)
        self.name, self.value = "params file", None


def _ros_arguments(argv: list[str]) -> list[tuple[str, str]]:
    """``(flag, its value)`` pairs among the ROS arguments of ``argv`` (after ``--ros-args``, up to ``--``)."""
    out, ros = [], False
    for i, tok in enumerate(argv):
        if tok == "--ros-args":
            ros = True
        elif tok == "--":
            ros = False
        elif ros and i + 1 < len(argv):
            out.append((tok, argv[i + 1]))
    return out


def params_files(argv: list[str]) -> list[str]:
    """The ``--params-file`` paths among the ROS arguments of ``argv``."""
    return [value for flag, value in _ros_arguments(argv) if flag == "--params-file"]


def cli_overrides(argv: list[str]) -> dict[str, Any]:
    """The ``-p name:=value`` (``--param``) overrides among the ROS arguments of ``argv`` (a later one wins), values
    read as rcl reads them (:func:`rcl_value`); node-prefixed ones (``node:name:=v``) and unparsable ones left out."""
    out = {}
    for flag, value in _ros_arguments(argv):
        if flag in ("-p", "--param") and ":=" in value:
            name, _, text = value.partition(":=")
            try:
                parsed = rcl_value(text)
            except (yaml.YAMLError, ValueError):
                continue
            if ":" not in name:
                out[name] = parsed
    return out


#: the words rcl's parameter parser reads as booleans (rcl_yaml_param_parser's get_value)
_RCL_TRUE = {"Y", "y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_RCL_FALSE = {"N", "n", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}
_C_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")  # strtol(value, &end, 0), all consumed
_YAML_SPECIAL = {".inf": math.inf, ".Inf": math.inf, ".INF": math.inf, "+.inf": math.inf, "-.inf": -math.inf,
                 "-.Inf": -math.inf, "-.INF": -math.inf, ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan}


def rcl_value(text: str, quoted: bool = False) -> Any:
    """A ``-p`` value as rcl's parameter parser reads it (``get_value``): a quoted scalar a string; the bool words
    (``true``, ``yes``, ``on``, ``y`` ... and their false ones); an integer as C's ``strtol`` base 0 (``0x10`` 16,
    ``010`` 8); a float as ``strtod`` (``5e-1``, which YAML 1.1 keeps a string) or ``.inf`` / ``.nan``; else the text;
    a ``[...]`` flow sequence of such scalars, each with its own quoting."""
    t = text.strip()
    if t.startswith("[") and t.endswith("]") and not quoted:
        node = yaml.compose(t)
        if not isinstance(node, yaml.SequenceNode) or not all(isinstance(n, yaml.ScalarNode) for n in node.value):
            raise ValueError(f"not a list of scalars: {text!r}")
        return [rcl_value(n.value, quoted=n.style in ("'", '"')) for n in node.value]
    if not quoted and len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    if quoted:
        return text
    if t in _RCL_TRUE or t in _RCL_FALSE:
        return t in _RCL_TRUE
    if _C_INT.fullmatch(t):
        return int(t, 8) if re.fullmatch(r"[+-]?0[0-7]+", t) else int(t, 0)
    if t in _YAML_SPECIAL:
        return _YAML_SPECIAL[t]
    if "_" not in t:  # (Python's float takes 1_0, strtod does not)
        try:
            return float(t)
        except ValueError:
            pass
    return t


def rcl_load(text: str) -> Any:
    """A params file's data as rcl's parser reads it: every plain scalar through :func:`rcl_value` (``5e-1`` a float,
    which PyYAML keeps a string: ``rtc_bringup`` refused a file the nodes load -- an audit), quoted and block scalars
    strings, mapping keys as written."""
    return _rcl_node(yaml.compose(text))


def _rcl_node(node: Any) -> Any:
    if node is None:
        return None
    if isinstance(node, yaml.MappingNode):
        return {k.value if isinstance(k, yaml.ScalarNode) else _rcl_node(k): _rcl_node(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_rcl_node(n) for n in node.value]
    if node.tag == "tag:yaml.org,2002:null" and node.style is None and node.value in ("", "~", "null", "Null", "NULL"):
        return None
    return rcl_value(node.value, quoted=node.style in ("'", '"', "|", ">"))


def integer_for_float(values: dict[str, Any], role: str) -> tuple[str, Any] | None:
    """``(name, value)`` of the first floating-point parameter of ``role`` (per-arm ones included) that ``values``
    (a params file's, as rcl reads it) give as an integer or a list of integers: rclpy refuses it when the node
    declares it (``rate_hz: 50``; ``rtc_bringup --check`` passed such a file -- an audit); None if none."""
    def ints(v: Any) -> bool:
        items = v if isinstance(v, list) else [v]
        return bool(items) and all(isinstance(x, int) and not isinstance(x, bool) for x in items)

    names = [(s.name, isinstance(s.default, float) or s.array_type == "double") for s in specs_for(role)]
    names += [(f"{arm}.{a.suffix}", a.kind == "double_array") for arm in arm_names(role, values)
              for a in arm_specs_for(role)]
    for name, floating in names:
        if floating and name in values and ints(values[name]):
            return name, values[name]
    return None


def same_value(got: Any, wanted: Any) -> bool:
    """Whether a declared parameter value ``got`` is the ``-p`` value ``wanted`` (an integer given for a float
    parameter, ``[1, 2]`` for ``[1.0, 2.0]``, NaN for NaN, are)."""
    if isinstance(got, (list, tuple)) and isinstance(wanted, list):
        return len(got) == len(wanted) and all(same_value(g, w) for g, w in zip(got, wanted))
    if isinstance(got, float) and isinstance(wanted, (int, float)) and not isinstance(wanted, bool):
        return got == float(wanted) or (math.isnan(got) and math.isnan(float(wanted)))
    return type(got) is type(wanted) and got == wanted


def _applied(data: Any, fq: str) -> dict[str, Any]:
    """The (flattened) values of ``data``'s sections that reach the node named ``fq``."""
    applied: dict[str, Any] = {}
    for key, params in node_sections(data):
        if key_matches(key, fq):
            applied.update(flat_params(params))
    return applied


def _addressed(data: Any, fq: str) -> bool:
    """Whether a section of ``data`` names the node ``fq`` by its full name."""
    return any("/" + key.strip("/") == fq for key, _ in node_sections(data))


def stray_sections(data: Any, node_name: str, namespace: str, applied: dict[str, Any] | None = None,
                   addressed: bool | None = None) -> list[tuple[str, list[str], bool]]:
    """Sections of a params file's ``data`` written for ``node_name`` without a namespace (key ``node_name`` or
    ``/node_name``: rcl applies them to ``/node_name`` only) while the node runs in ``namespace`` (not the root):
    their values are ignored without a word. ``(key, parameter names, addressed)`` per such section: the names
    exclude values the sections that do reach the node set alike; ``addressed``: another section names this node
    by its full name (``robot_b/chunk_executor``), so the bare one is for a robot in the root namespace sharing the
    file (a warning, not a mistake). ``applied`` / ``addressed``: the same judged over every params file and ``-p``
    of the node (:func:`stray_in_files`), else over ``data`` alone."""
    ns = namespace.strip("/")
    if not isinstance(data, dict) or ns == "":
        return []
    fq = f"/{ns}/{node_name}"
    applied = _applied(data, fq) if applied is None else applied
    addressed = _addressed(data, fq) if addressed is None else addressed
    out = []
    for key, params in node_sections(data):
        if key.strip("/") == node_name:
            lost = [n for n, v in flat_params(params).items() if n not in applied or applied[n] != v]
            if lost:
                out.append((key, lost, addressed))
    return out


def stray_text(path: str | Path, key: str, names: list[str], node_name: str, namespace: str) -> str:
    """Why a stray section (:func:`stray_sections`) does not apply, and how to write its key."""
    ns = namespace.strip("/")
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return (f"params file {path}: section '{key}' is for /{node_name} (the root namespace), but this node is "
            f"/{ns}/{node_name}: {len(names)} parameter(s) in it ({shown}) would not reach this node; write the key "
            f"as '/**/{node_name}' (any namespace) or '{ns}/{node_name}'")


def _read_files(argv: list[str]) -> list[tuple[str, Any]]:
    """``(path, data)`` of the params files in ``argv`` (unreadable files: skipped, rcl reports those)."""
    datas = []
    for path in params_files(argv):
        try:
            datas.append((path, yaml.safe_load(Path(path).read_text())))
        except (OSError, yaml.YAMLError):
            continue
    return datas


def applied_in_files(argv: list[str], fq: str) -> dict[str, Any]:
    """The (flattened) values the params files in ``argv`` give the node named ``fq`` (later files win)."""
    return _applied_in(_read_files(argv), fq)


def _applied_in(datas: list[tuple[str, Any]], fq: str) -> dict[str, Any]:
    return {k: v for _, data in datas for k, v in _applied(data, fq).items()}


def files_setting(argv: list[str], fq: str, name: str, value: Any = None) -> list[str]:
    """Where the node named ``fq`` gets parameter ``name``: the params files in ``argv`` whose sections reaching it set
    it, and ``-p NAME`` when given on the command line (an error then names them: a walkthrough's refusal named the
    parameter, not which of several files set it). ``value``: the value refused; a ``-p`` that gave another one lost
    to a file's section for the node, and says so (a two-robot walkthrough read its ``-p policy_spec:=`` listed as
    where the refused ``${RTC_POLICY_SPEC}`` came from)."""
    out = [path for path, data in _read_files(argv) if name in _applied(data, fq)]
    cli = cli_overrides(argv)
    if name not in cli:
        return out
    given = cli[name]  # (a one-value list is refused expanded per joint: [x] -> [x, x, ...], which applied)
    same = same_value(value, given) or (isinstance(given, list) and len(given) == 1 and isinstance(value, list)
                                        and all(same_value(v, given[0]) for v in value))
    lost = bool(out) and value is not None and not same
    return out + [f"-p {name}" + (" (which did not apply: ROS lets a params file's section for the node win over -p; "
                                  "give the value in a second --params-file, later files win)" if lost else "")]


def stray_in_files(argv: list[str], node_name: str, namespace: str) -> list[tuple[str, bool]]:
    """``(stray_text, addressed)`` for every stray section of the params files in ``argv`` (:func:`stray_sections`;
    unreadable files: skipped, rcl reports those)."""
    datas = _read_files(argv)
    fq = f"/{namespace.strip('/')}/{node_name}"
    applied = _applied_in(datas, fq) | cli_overrides(argv)
    addressed = any(_addressed(data, fq) for _, data in datas)
    return [(stray_text(path, key, names, node_name, namespace), was_addressed) for path, data in datas
            for key, names, was_addressed in stray_sections(data, node_name, namespace, applied, addressed)]
