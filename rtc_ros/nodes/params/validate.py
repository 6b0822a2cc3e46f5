"""Validation of parameter values against the schema, without ROS.

:func:`validate` checks types, ranges, choices and the combinations of one node's values
(``s_min > H``, a missing policy file, an arm without joint names, ...), fills per-arm defaults
and returns a :class:`NodeParams`. Every refusal is a :class:`ParameterError` naming the parameter
and its value. The same function checks a params file before anything starts (``rtc_bringup``),
the values a node declared at start, and every run-time ``ros2 param set``.
"""

from __future__ import annotations

import json
import fnmatch
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rtc_ros.nodes.params.paths import expand_path, fallback_taken, shipped_policy
from rtc_ros.nodes.params.values import ParameterError, check_array, check_relative, check_value  # noqa: F401 (re-exported)
from rtc_ros.runtime.joint_merge import parse_exclusions
from rtc_ros.runtime.methods import METHODS, executor_mode
from rtc_ros.nodes.params.schema import (
    DEFAULT_ARMS,
    DEFAULT_COMMAND_TOPIC,
    ROLE_EXECUTOR,
    ROLE_INFERENCE,
    ROLE_MERGER,
    ROLE_RECORDER,
    ROLE_SIM,
    arm_names,
    specs_for,
)
from rtc_ros.nodes.params.arm_schema import DEFAULT_GRIPPER_JOINTS
from rtc_ros.recording.metadata import non_finite
from rtc_ros.recording.params_file import default_joint_names

#: joints per arm of the simulator (6 arm joints + gripper)
SIM_JOINTS_PER_ARM = 7

#: per-tick step limit of a joint whose arm does not set max_step (not any real arm's: the executor warns)
DEFAULT_MAX_STEP = 0.05


@dataclass
class ArmParams:
    """One arm's validated settings.

    ``command_topic``: the executor's output topic; ``command_topics``: the sim's input topics by
    output type (``''`` = disabled). Limits and ``max_step`` have one value per joint.
    """

    name: str
    joint_names: list[str]
    command_topic: str = ""
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    max_step: list[float] = field(default_factory=list)
    command_topics: dict[str, str] = field(default_factory=dict)
    #: which of lower_limits / upper_limits / max_step were not set (their defaults are not the arm's)
    defaulted: tuple[str, ...] = ()
    #: chunk_executor's tracking watchdog, per joint (0 = not checked)
    tracking_tolerance: list[float] = field(default_factory=list)
    #: the executor's acceleration limit, rad/s^2 per joint (0 = not limited)
    max_accel: list[float] = field(default_factory=list)
    #: per joint: a gripper (``<arm>.gripper_joints``, else a name ending in ``gripper``)
    grippers: list[bool] = field(default_factory=list)
    #: ``<arm>.gripper_joints`` as given when it is not the default and holds a pattern (a typo matches nothing)
    gripper_patterns: list[str] = field(default_factory=list)


@dataclass
class NodeParams:
    """Validated parameters of one node; ``p.horizon`` reads ``p.values['horizon']``.

    Writable fields are updated in place after a validated run-time set (see
    :func:`rtc_ros.nodes.params.declare.declare_and_validate`): read them where they are used.
    """

    role: str
    values: dict[str, Any]
    arms: list[ArmParams] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def dt(self) -> float:
        """Control period ``1 / rate_hz`` in seconds."""
        return 1.0 / float(self.values["rate_hz"])

    @property
    def joint_names(self) -> list[str]:
        """All joints, arms concatenated in order."""
        return [j for a in self.arms for j in a.joint_names]


# ----------------------------------------------------------------------------------- arms
def _joint_names(arm: str, values: dict[str, Any]) -> list[str]:
    name = f"{arm}.joint_names"
    raw = values.get(name)
    if not raw:
        if arm not in DEFAULT_ARMS:
            raise ParameterError(name, list(raw or []), f"required for arm '{arm}' (defaults exist only for "
                                                        f"{' and '.join(DEFAULT_ARMS)})")
        return default_joint_names(arm)
    return check_array(name, raw, "string")


def _per_joint(arm: str, suffix: str, values: dict[str, Any], names: list[str], default: list[float]) -> list[float]:
    """``<arm>.<suffix>``: [] = default, one value = broadcast, else one per joint."""
    name = f"{arm}.{suffix}"
    given = check_array(name, values.get(name) or [], "double")
    n = len(names)
    if not given:
        return list(default)
    if len(given) == 1:
        return [given[0]] * n
    if len(given) == n:
        return given
    if values.get(f"{arm}.joint_names"):  # the joint list was set: name it (it is what changed)
        raise ParameterError(f"{arm}.joint_names", names, f"{n} joint names but '{name}' has {len(given)} "
                                                          "values (one per joint, or one for all)")
    raise ParameterError(name, given, f"needs one value per joint ({n}) or a single value")


def _arm_joints(arm: str, values: dict[str, Any], seen: set[str]) -> list[str]:
    names = _joint_names(arm, values)
    if len(set(names)) != len(names) or seen & set(names) or any(not n for n in names):
        raise ParameterError(f"{arm}.joint_names", names, "joint names must be non-empty and unique across arms")
    seen |= set(names)
    return names


def _arm_list(out: dict[str, Any]) -> list[str]:
    arms = list(out["arms"])
    if not arms or len(set(arms)) != len(arms) or any(not a for a in arms):
        raise ParameterError("arms", arms, "must be a non-empty list of distinct names")
    return arms


def _rtc_arm(arm: str, values: dict[str, Any], out: dict[str, Any], role: str, seen: set[str]) -> ArmParams:
    names = _arm_joints(arm, values, seen)
    grip, patterns = _grippers(arm, values, names)
    lower = _per_joint(arm, "lower_limits", values, names, [0.0 if g else -math.pi for g in grip])
    upper = _per_joint(arm, "upper_limits", values, names, [1.0 if g else math.pi for g in grip])
    step = _per_joint(arm, "max_step", values, names, [DEFAULT_MAX_STEP] * len(names))
    for i, (lo, hi) in enumerate(zip(lower, upper)):
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            raise ParameterError(f"{arm}.lower_limits", lower, f"lower {lo} > upper {hi} for joint {names[i]}")
        if lo == math.inf or hi == -math.inf:  # (both +inf, or both -inf: no position is within them -- an audit)
            raise ParameterError(f"{arm}.lower_limits" if lo == math.inf else f"{arm}.upper_limits",
                                 lower if lo == math.inf else upper,
                                 f"joint {names[i]}: limits [{lo}, {hi}] hold no position (-.inf / .inf: unbounded)")
    if any(not (s > 0 and math.isfinite(s)) for s in step):  # inf would switch the jump limit off
        raise ParameterError(f"{arm}.max_step", step, "every max_step must be finite and > 0")
    topic = values.get(f"{arm}.command_topic") or ""
    if role == ROLE_EXECUTOR:
        topic = topic or DEFAULT_COMMAND_TOPIC[out["output_type"]].format(arm=arm)
        check_relative(f"{arm}.command_topic", topic)
    defaulted = tuple(k for k in ("lower_limits", "upper_limits", "max_step") if not values.get(f"{arm}.{k}"))
    tol = _arm_joints_only(arm, "tracking_tolerance", values, names, grip, role == ROLE_EXECUTOR)
    acc = _arm_joints_only(arm, "max_accel", values, names, grip, role in (ROLE_EXECUTOR, ROLE_INFERENCE))
    if any(0 < a < 1e-3 for a in acc):
        raise ParameterError(f"{arm}.max_accel", acc, "must be 0 (off) or >= 0.001 rad/s^2 for every joint")
    return ArmParams(arm, names, topic, lower, upper, step, defaulted=defaulted, tracking_tolerance=tol, max_accel=acc,
                     grippers=grip, gripper_patterns=patterns)


def _grippers(arm: str, values: dict[str, Any], names: list[str]) -> tuple[list[bool], list[str]]:
    """Per joint: matched by an entry of ``<arm>.gripper_joints`` (a joint name, which must be one of this arm's, or a
    shell-style pattern; default ``['*gripper']``; ``['']``: none); and the entries as given when they are not the
    default and hold a pattern (:attr:`ArmParams.gripper_patterns`)."""
    given = [str(g) for g in values.get(f"{arm}.gripper_joints") or []] or list(DEFAULT_GRIPPER_JOINTS)
    pattern = [any(c in g for c in "*?[") for g in given]
    unknown = [g for g, pat in zip(given, pattern) if g and not pat and g not in names]
    if unknown:
        raise ParameterError(f"{arm}.gripper_joints", given, f"{unknown} are not joints of arm {arm!r} "
                                                             f"({arm}.joint_names: {names})")
    patterns = given if given != list(DEFAULT_GRIPPER_JOINTS) and any(pattern) else []
    return [any(fnmatch.fnmatchcase(nm, g) for g in given if g) for nm in names], patterns


def _arm_joints_only(arm: str, suffix: str, values: dict[str, Any], names: list[str], grip: list[bool],
                     used: bool) -> list[float]:
    """``<arm>.<suffix>``, finite and >= 0 per joint, 0 = off; one value is for every joint but the grippers
    (their units and motion are not the arm's); [] if the role does not use it."""
    if not used:
        return []
    out = _per_joint(arm, suffix, values, names, [0.0] * len(names))
    if len(values.get(f"{arm}.{suffix}") or []) == 1:
        out = [0.0 if g else x for g, x in zip(grip, out)]
    if any(not (x >= 0 and math.isfinite(x)) for x in out):
        raise ParameterError(f"{arm}.{suffix}", out, "must be finite and >= 0 (0 = off for that joint)")
    return out


# ------------------------------------------------------------------------------ role checks
def _check_rtc(out: dict[str, Any], values: dict[str, Any], role: str) -> list[ArmParams]:
    if out["s_min"] > out["horizon"]:
        raise ParameterError("s_min", out["s_min"], f"must be <= horizon (H = {out['horizon']})")
    for t in ("chunk_topic", "executor_state_topic", "joint_states_topic"):
        check_relative(t, out[t])
    if role == ROLE_EXECUTOR and out["robot_stopped_topic"]:
        check_relative("robot_stopped_topic", out["robot_stopped_topic"])
    if role == ROLE_EXECUTOR and (t := out["enable_topic"]):  # absolute too: one device for several robots
        check_relative("enable_topic", t[1:] if t.startswith("/") and not t.startswith("/~") else t)
    ramp = round(out["startup_ramp_s"] * out["rate_hz"]) if role == ROLE_EXECUTOR else 0
    if role == ROLE_EXECUTOR and (ramp > out["horizon"] or (out["startup_ramp_s"] > 0 and ramp < 2)):
        raise ParameterError("startup_ramp_s", out["startup_ramp_s"], f"must be 0 (off) or between 2 ticks "
                             f"({2 / out['rate_hz']:g} s) and horizon / rate_hz ({out['horizon'] / out['rate_hz']:g} s)")
    if role == ROLE_EXECUTOR and ramp > out["s_min"] and out["method"] in METHODS and executor_mode(out["method"]) != "ensemble":
        # the next chunk takes over after >= s_min executed actions and ends the ramp (switch/sync mode); a guided
        # chunk follows the start-up chunk's actions, not the ramped commands, so a cut ramp is a step
        raise ParameterError("startup_ramp_s", out["startup_ramp_s"], f"is {ramp} ticks at rate_hz "
                             f"{out['rate_hz']:g}, more than s_min = {out['s_min']}: the next chunk would take over "
                             f"before the ramp ends (a step); at most s_min / rate_hz = "
                             f"{out['s_min'] / out['rate_hz']:g} s -- or is rate_hz not the policy's rate? It is the policy's step rate "
                             "(1 / its spec's dt), not the driver's or the controllers' rate")
    seen: set[str] = set()
    arms = [_rtc_arm(arm, values, out, role, seen) for arm in _arm_list(out)]
    if role == ROLE_EXECUTOR and out["output_type"] != "joint_state":  # (names only there: two arms' arrays or
        by_topic: dict[str, str] = {}  # trajectories on one topic would take turns at the controller -- a review)
        for arm in arms:
            if arm.command_topic in by_topic:
                raise ParameterError(f"{arm.name}.command_topic", arm.command_topic, f"is also {by_topic[arm.command_topic]}"
                                     f"'s: with output_type {out['output_type']} each arm needs its own controller "
                                     "topic (only joint_state messages carry the joint names to share one)")
            by_topic[arm.command_topic] = arm.name
    if role == ROLE_INFERENCE:
        _check_inference(out)
    return arms


def _check_inference(out: dict[str, Any]) -> None:
    dev = out["device"]
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ParameterError("device", dev, "must be auto, cpu, cuda or cuda:N")
    if out["bid_k"] > out["bid_samples"]:
        raise ParameterError("bid_k", out["bid_k"], f"must be <= bid_samples ({out['bid_samples']})")
    for t in out["camera_topics"]:
        check_relative("camera_topics", t)
    if out["camera_names"] and len(out["camera_names"]) != len(out["camera_topics"]):
        raise ParameterError("camera_names", out["camera_names"],
                             f"needs one name per camera topic ({len(out['camera_topics'])})")


def _check_policy_files(out: dict[str, Any]) -> None:
    """policy_inference's policy files exist (at startup only: a run-time set of another parameter after the
    checkpoint folder moved was refused naming ``policy_spec``, which cannot be set at run time -- an audit)."""
    spec = expand_path(out["policy_spec"])
    if not spec:  # '' or an unset ${RTC_POLICY_SPEC}
        raise ParameterError("policy_spec", out["policy_spec"], "a policy spec YAML file is required (the launch "
                             "argument policy_spec:=PATH, rtc_bringup --policy-spec PATH, or RTC_POLICY_SPEC)")
    if not Path(spec).is_file():
        raise ParameterError("policy_spec", out["policy_spec"], f"file not found ({spec})")
    if (var := fallback_taken(out["policy_spec"])) and shipped_policy(spec):  # (a params file from before 2026-12-05)
        raise ParameterError("policy_spec", out["policy_spec"], f"{var} is empty, so this default would run {spec}, "
                             "a policy shipped with rtc_ros and trained in simulation (params files before 2026-12-05 "
                             "had such a default): give your policy (policy_spec:=PATH, rtc_bringup --policy-spec PATH "
                             f"or {var}), and write policy_spec: \"${{{var}}}\" as config/bimanual.yaml does")
    if out["weak_policy_spec"] and not Path(expand_path(out["weak_policy_spec"])).is_file():
        raise ParameterError("weak_policy_spec", out["weak_policy_spec"], "file not found")


def parse_topic_types(items: list[str]) -> dict[str, str]:
    """``name=pkg/msg/Type`` (or ``name=pkg/Type``) entries -> ``{name: pkg/msg/Type}``."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, ty = item.partition("=")
        ty = ty.strip()
        if not sep or not name.strip() or ty.count("/") not in (1, 2) or "" in ty.split("/"):
            raise ParameterError("topic_types", item, "expected entries name=pkg/msg/Type")
        out[name.strip()] = ty if ty.count("/") == 2 else ty.replace("/", "/msg/")
    return out


def _check_recorder(out: dict[str, Any], values: dict[str, Any], role: str) -> list[ArmParams]:
    out["required_topics"] = [t for t in out["required_topics"] if t]  # ([''] = none: a ROS list cannot be empty)
    for name in ("topics", "camera_topics", "param_nodes", "required_topics"):
        for item in out[name]:
            if not item.strip() or any(c.isspace() for c in item):
                raise ParameterError(name, out[name], f"entry {item!r} is not a name")
    for pattern in out["topic_patterns"]:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ParameterError("topic_patterns", pattern, f"not a regular expression ({exc})") from None
    parse_topic_types(out["topic_types"])
    for name in ("control_topic", "status_topic", "output_dir", "prefix"):
        if not out[name].strip():
            raise ParameterError(name, out[name], "must not be empty")
    if "/" in out["prefix"]:
        raise ParameterError("prefix", out["prefix"], "must be a file name (no '/')")
    try:
        meta = json.loads(out["autostart_meta"])
    except json.JSONDecodeError as exc:
        raise ParameterError("autostart_meta", out["autostart_meta"], f"not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ParameterError("autostart_meta", out["autostart_meta"], "must be a JSON object")
    if (where := non_finite(meta, "")) is not None:  # (NaN, 1e999: no JSON reader reads them back from the sidecar)
        raise ParameterError("autostart_meta", out["autostart_meta"], f"'{where[0]}' is not a finite number")
    if 0 < out["stop_free_mb"] >= out["min_free_mb"]:  # (an audit: every episode closed 'stopped_low_disk' at once)
        raise ParameterError("stop_free_mb", out["stop_free_mb"], f"must be below min_free_mb "
                             f"({out['min_free_mb']:g}; stop_free_mb's default is 50): an episode started with less "
                             "free space than stop_free_mb would be closed at its first check; lower stop_free_mb "
                             "(0 = never) or raise min_free_mb")
    return []


def _check_sim(out: dict[str, Any], values: dict[str, Any], role: str) -> list[ArmParams]:
    for t in ("joint_states_topic", "progress_topic", "status_topic", "reset_topic", "camera_topic",
              "protective_stop_topic"):
        check_relative(t, out[t])
    if out["robot_stopped_topic"]:
        check_relative("robot_stopped_topic", out["robot_stopped_topic"])
    if len(out["camera_lookat"]) != 3:
        raise ParameterError("camera_lookat", out["camera_lookat"], "needs 3 values (x, y, z)")
    if not out["camera"].strip():
        raise ParameterError("camera", out["camera"], "must be 'workspace' or an MJCF camera name")
    if out["real_time_factor"] != 1.0 and not out["publish_clock"]:  # an audit: x0.5 dropped every second command
        raise ParameterError("real_time_factor", out["real_time_factor"], "needs publish_clock: true (and use_sim_time "
                             "on every node: sim.launch.py use_sim_time:=true): without /clock the other nodes tick "
                             "on wall time, so the simulator would take every second command at x0.5 (steps doubled: "
                             "protective stops the executor never commanded) or each twice at x2")
    arms: list[ArmParams] = []
    seen: set[str] = set()
    for arm in arm_names(ROLE_SIM, values):
        names = _joint_names(arm, values)
        if len(names) != SIM_JOINTS_PER_ARM:
            raise ParameterError(f"{arm}.joint_names", names, f"needs {SIM_JOINTS_PER_ARM} names (6 joints + gripper)")
        if len(set(names)) != len(names) or seen & set(names) or any(not n for n in names):
            raise ParameterError(f"{arm}.joint_names", names, "joint names must be non-empty and unique across arms")
        seen |= set(names)
        topics: dict[str, str] = {}
        for kind, suffix in (("float64_multi_array", "float64_topic"), ("joint_trajectory", "trajectory_topic"),
                             ("joint_state", "joint_state_topic")):
            name = f"{arm}.{suffix}"
            topic = values.get(name)
            topic = DEFAULT_COMMAND_TOPIC[kind].format(arm=arm) if topic is None else str(topic)
            if topic:
                check_relative(name, topic)
            topics[kind] = topic
        arms.append(ArmParams(arm, names, command_topics=topics))
    return arms


def _check_merger(out: dict[str, Any], values: dict[str, Any], role: str) -> list[ArmParams]:
    check_relative("joint_states_topic", out["joint_states_topic"])
    sources, prefixes = out["source_topics"], out["source_prefixes"]
    if not sources:
        raise ParameterError("source_topics", sources, "required: the joint state topics to merge (e.g. "
                                                       "[puppet_left/joint_states, puppet_right/joint_states])")
    for t in sources:  # absolute names too: a driver outside this node's namespace
        check_relative("source_topics", t[1:] if t.startswith("/") and not t.startswith("/~") else t)
    if len(set(sources)) != len(sources) or out["joint_states_topic"] in sources:
        raise ParameterError("source_topics", sources, "must be distinct and must not include the output, "
                             f"joint_states_topic ({out['joint_states_topic']!r})")
    try:
        parse_exclusions(out["source_exclude"], sources)
    except ValueError as exc:
        raise ParameterError("source_exclude", out["source_exclude"], str(exc)) from None
    if prefixes and len(prefixes) != len(sources):
        raise ParameterError("source_prefixes", prefixes, f"needs one prefix per source topic ({len(sources)}) or []")
    if any(any(c.isspace() or c == "/" for c in pre) for pre in prefixes):
        raise ParameterError("source_prefixes", prefixes, "a prefix is part of a joint name: no spaces or '/'")
    seen: set[str] = set()
    return [ArmParams(arm, _arm_joints(arm, values, seen)) for arm in _arm_list(out)]


_ROLE_CHECKS: dict[str, Callable[[dict[str, Any], dict[str, Any], str], list[ArmParams]]] = {
    ROLE_EXECUTOR: _check_rtc, ROLE_INFERENCE: _check_rtc, ROLE_RECORDER: _check_recorder, ROLE_SIM: _check_sim,
    ROLE_MERGER: _check_merger,
}


def validate(values: dict[str, Any], role: str, files: bool = True) -> NodeParams:
    """Check one node's values (names as in the params file, per-arm ones dotted); fill defaults. ``files``: also
    that policy_inference's policy files exist (at startup; not for a run-time set).

    Raises:
        ParameterError: naming the first offending parameter and its value.
        ValueError: ``role`` is not a known role.
    """
    out = {spec.name: check_value(spec, values.get(spec.name)) for spec in specs_for(role)}
    arms = _ROLE_CHECKS[role](out, values, role)
    if files and role == ROLE_INFERENCE:
        _check_policy_files(out)
    return NodeParams(role=role, values=out, arms=arms)
