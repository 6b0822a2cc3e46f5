"""Warnings about parameters that validate: settings that are wrong for a real arm (:func:`executor_notes`,
:func:`gripper_notes`), names no node declares (:func:`unknown_parameters`), and parameters given to a node
that no longer reads them (:func:`moved_parameters`)."""

from __future__ import annotations

import difflib
import math
import re
from typing import Any, Collection

from rtc_ros.nodes.params.arm_schema import ARM_SPECS
from rtc_ros.nodes.params.schema import DEFAULT_ARMS, ROLE_EXECUTOR, ROLE_INFERENCE, SIM_ARMS, SPECS
from rtc_ros.nodes.params.validate import DEFAULT_MAX_STEP, NodeParams

_DEFAULTS_SAID = {"lower_limits": "-pi rad (grippers 0)", "upper_limits": "pi rad (grippers 1)",
                  "max_step": f"{DEFAULT_MAX_STEP} rad per tick"}  # what _rtc_arm fills in


def executor_notes(p: NodeParams, given: Collection[str] | None = None) -> list[str]:
    """Valid settings that are wrong for a real arm (chunk_executor warns at start, ``rtc_bringup --check`` too):
    limits or ``max_step`` left at their defaults, no start-up ramp, no arming step where the params file does not
    set ``start_paused`` (``given``: the names it sets; None: not known); and a dry run, gripper-like joint names."""
    said = dict(_DEFAULTS_SAID, max_step=f"{_DEFAULTS_SAID['max_step']} ({DEFAULT_MAX_STEP * p.rate_hz:g} rad/s at "
                                         f"rate_hz {p.rate_hz:g})")
    notes = [f"{arm.name}: not set, using defaults that are not your arm's: "
             f"{', '.join(f'{k} = {said[k]}' for k in arm.defaulted)}; set its joint limits and speeds"
             for arm in p.arms if arm.defaulted]
    notes += chunk_age_notes(p)
    if p.startup_ramp_s <= 0:
        notes.append("startup_ramp_s is 0: a start-up chunk's first command may step up to max_step from "
                     "standstill (config/bimanual.yaml uses 0.2 s)")
    if given is not None and "start_paused" not in given and not p.start_paused:  # (an upgrade walkthrough: a file
        # from before 2026-12-06 lost the arming step without a word)
        notes.append("start_paused is not set: the arm moves on the first chunk, with no operator's ~/resume "
                     "(config/bimanual.yaml starts paused since 2026-12-06; set start_paused: true, or false to keep "
                     "this)")
    dry = ["dry_run: no command is published to the controllers (the arm does not move)"] if p.dry_run else []
    return notes + _degree_notes(p) + _step_notes(p) + dry + gripper_notes(p) + _braking_notes(p)


#: an arm joint commanded faster than this (rad/s: two turns per second, above the fastest industrial wrists' ~12
#: rad/s and a UR wrist's 6.3) is implausible
TURNS_PER_S = 4 * math.pi


def _step_notes(p: NodeParams) -> list[str]:
    """A ``max_step`` (per tick) that allows more than two turns per second, or a tenth of the joint's range in
    one tick, on a joint that is not a gripper: a velocity limit (rad/s) typed in where a step per tick belongs (a
    bring-up walkthrough's 2.6-5.3 passed ``--check --strict`` without a word, and the executor then sent steps of
    0.42 rad per tick); the per-tick step limit, the main net under a bad chunk, is then gone."""
    out = []
    for arm in p.arms:
        grip = arm.grippers or [False] * len(arm.joint_names)
        big = [(n, step) for n, step, lo, hi, g in zip(arm.joint_names, arm.max_step, arm.lower, arm.upper, grip)
               if not g and (step * p.rate_hz > TURNS_PER_S or (math.isfinite(hi - lo) and step > (hi - lo) / 10))]
        if big:
            n, step = big[0]
            out.append(f"{arm.name}.max_step: {n} may move {step:g} per tick = {step * p.rate_hz:g} per s at rate_hz "
                       f"{p.rate_hz:g}" + (f" (and {len(big) - 1} more joints)" if len(big) > 1 else "")
                       + ": more than two turns per second or a tenth of its range in one tick -- a velocity limit "
                       "given as max_step? max_step is the most a joint moves in one tick (1 / rate_hz s): its "
                       f"velocity limit / rate_hz (e.g. 2.6 rad/s -> {2.6 / p.rate_hz:.3g})")
    return out


def chunk_age_notes(p: NodeParams) -> list[str]:
    """``max_chunk_age`` shorter than a chunk (at start and when set at run time: a walkthrough's 0.05 s held the arm
    for good without a word at the set)."""
    chunk_s = p.horizon * p.dt
    if not 0 < p.max_chunk_age < chunk_s - 1e-9:
        return []
    return [f"max_chunk_age {p.max_chunk_age:g} s is shorter than a chunk (horizon / rate_hz = {chunk_s:g} s): "
            f"a chunk whose inference took longer than {p.max_chunk_age:g} s is refused although some of its "
            f"actions remain, and the arm holds; set max_chunk_age to about {chunk_s:g} s"]


#: longest wait for the arm to brake to rest when chunk_executor is asked to stop (SIGINT / SIGTERM;
#: ``ros2 launch`` sends SIGTERM 5 s after its SIGINT)
BRAKE_LIMIT_S = 3.0


def _braking_notes(p: NodeParams) -> list[str]:
    """A ``max_accel`` too small to brake from ``max_step`` per tick within :data:`BRAKE_LIMIT_S`: a stop signal's
    brake would be cut short (the rest of the speed stops in one tick)."""
    out = []
    for arm in p.arms:
        t = [(step / p.dt / a, step / p.dt, n) for n, step, a in zip(arm.joint_names, arm.max_step, arm.max_accel)
             if a > 0]
        if t and max(t)[0] > BRAKE_LIMIT_S:
            secs, speed, n = max(t)
            out.append(f"{arm.name}.max_accel: braking {n} from max_step per tick ({speed:g} per s) takes {secs:.1f} s, "
                       f"longer than the {BRAKE_LIMIT_S:g} s a stop signal (Ctrl-C, ros2 launch) waits for the arm to "
                       "come to rest: the rest of the speed would stop in one tick")
    return out


def _degree_notes(p: NodeParams) -> list[str]:
    """Joint limits beyond +-2 pi (a revolute joint's whole turn): limits in degrees? Clamping and the
    ``max_limit_excess`` refusal would then hardly ever act (radians are expected; a multi-turn joint: say so)."""
    out = []
    for arm in p.arms:
        big = [(n, lo, hi) for n, lo, hi in zip(arm.joint_names, arm.lower, arm.upper)
               if any(abs(x) > 2 * math.pi + 1e-3 and math.isfinite(x) for x in (lo, hi))]
        if big:
            n, lo, hi = big[0]
            out.append(f"{arm.name}.lower_limits / upper_limits: {n} is limited to [{lo:g}, {hi:g}]"
                       + (f" (and {len(big) - 1} more joints)" if len(big) > 1 else "")
                       + ", beyond a whole turn (2 pi = 6.28): degrees? The limits are radians; in degrees clamping "
                       "and max_limit_excess would hardly ever act (a joint that turns several times: ignore this)")
    return out


def hold_model_notes(executor: NodeParams, inference: NodeParams) -> list[str]:
    """Arm settings both nodes read that differ between them (given in one node's section only): policy_inference's
    model of the executor's commands (``max_step``, joint limits, ``max_accel``) would not be the executor's."""
    notes, inf_arms = [], {arm.name: arm for arm in inference.arms}
    for ex in executor.arms:
        inf = inf_arms.get(ex.name)
        if inf is None:
            continue
        if ex.joint_names != inf.joint_names:
            notes.append(f"{ex.name}.joint_names is {ex.joint_names} for chunk_executor but {inf.joint_names} for "
                         "policy_inference")
            continue
        for key, attr in (("max_accel", "max_accel"), ("max_step", "max_step"), ("lower_limits", "lower"),
                          ("upper_limits", "upper")):
            a, b = list(getattr(ex, attr)), list(getattr(inf, attr))
            if a == b:
                continue
            given = " (policy_inference was not given it: the default)" if key in inf.defaulted else ""
            notes.append(f"{ex.name}.{key} is {a} for chunk_executor but {b} for policy_inference{given}: give it where "
                         "both read it (the params file's /** section), or the guidance target will not be where the "
                         "executor commands")
    return notes


_GRIPPER_LIKE = re.compile(r"finger|knuckle|jaw|claw|grip|hand", re.IGNORECASE)  # Franka fingers, a Robotiq knuckle


def gripper_notes(p: NodeParams) -> list[str]:
    """Joints named like a gripper but not taken as one (not in ``<arm>.gripper_joints``, not ending in
    ``gripper``): a hold would command their measured opening (a squeeze let go), and a single ``max_accel`` /
    ``tracking_tolerance`` value covers them (a squeezing gripper trips the watchdog)."""
    notes = [f"{arm.name}.gripper_joints: {arm.gripper_patterns} match none of its joints ({arm.joint_names}): a typo?"
             for arm in p.arms if arm.gripper_patterns and not any(arm.grippers)]
    for arm in p.arms:
        for i, nm in enumerate(arm.joint_names):
            if (arm.grippers and arm.grippers[i]) or not _GRIPPER_LIKE.search(nm):
                continue
            used = [k for k, v in (("max_accel", arm.max_accel), ("tracking_tolerance", arm.tracking_tolerance))
                    if len(v) > i and v[i] > 0]
            also = f"; {' and '.join(used)} apply to it" if used else ""
            notes.append(f"{arm.name}: joint {nm!r} looks like a gripper but is not taken as one (a hold would command "
                         f"its measured opening, letting a squeeze go{also}): if it is one, set "
                         f"{arm.name}.gripper_joints: [{nm!r}]")
    return notes


#: parameters renamed since they were published: old name -> new name
RENAMED: dict[str, str] = {}
#: parameters retired since they were published: name -> why (said when a params file still sets one)
RETIRED = {name: "the tracking watchdog runs in chunk_executor since 2026-12-06 and re-syncs it itself"
           for name in ("executor_hold_service", "executor_resync_service")}
#: parameters every rclpy node has (not in the schema)
ROS_NAMES = ("use_sim_time", "start_type_description_service", "start_parameter_event_publisher")


def unknown_parameters(names: Any, arms: Any = ()) -> list[tuple[str, str | None]]:
    """The ``names`` (from a params file) that no rtc_ros node declares -- rclpy ignores them without a word,
    so a typo (``left.max_acel``) or a renamed parameter would silently fall back to the default -- each with
    the name probably meant (a rename, or the closest known name; None if nothing is close). ``arms``: the
    configured arms, whose ``<arm>.*`` parameters are known (default: left, right)."""
    arm_set = {str(a) for a in arms} or set(DEFAULT_ARMS) | set(SIM_ARMS)  # (a node declares only its arms')
    known = ({s.name for s in SPECS} | {f"{a}.{s.suffix}" for a in arm_set for s in ARM_SPECS} | set(ROS_NAMES))
    out = []
    for name in names:
        if name in known or name.startswith("qos_overrides."):
            continue
        close = None if name in RETIRED else difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        out.append((name, RENAMED.get(name) or (close[0] if close else None)))
    return out


#: top-level parameters whose misspelling refuses a start: every one chunk_executor declares (the node beside the
#: arm: a typo in ``start_paused`` let the arm move at once) and ``obs_timeout``; a near miss of any other is warned
#: (a key under ``/**`` may be another program's: ``timeout``, ``camera_name``)
SAFETY_PARAMETERS = frozenset({s.name for s in SPECS if ROLE_EXECUTOR in s.roles} | {"obs_timeout"})


#: per-arm settings no other program names so: ``<x>.<one of these>`` for an ``x`` that is no configured arm, or one
#: of these at top level, is a mistake (the arm meant keeps its default: its limits, its watchdog off)
ARM_ONLY_SUFFIXES = ("lower_limits", "upper_limits", "max_step", "max_accel", "tracking_tolerance", "command_topic",
                     "gripper_joints")


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _near(name: str, meant: str) -> bool:
    """A typo of ``meant``: the same up to case and '-' for '_', or one edit for names of six and more (two for ten
    and more; a short generic name -- ``arm`` -- may be another program's)."""
    a, b = name.lower().replace("-", "_"), meant.lower()
    return a == b or (len(meant) >= 6 and _edits(a, b) <= (2 if len(meant) >= 10 else 1))  # (short: arm / arms)


def misspelt_error(name: str, value: Any, meant: str | None, arms: Any = (), node: str = "") -> "ParameterError | None":
    """The refusal for an unknown parameter that is unmistakably a mistake of ours whose default would silently
    apply: a misspelt per-arm key of a configured arm (``left.max_acel``); a per-arm setting for an arm that is not
    configured (``rightarm.tracking_tolerance`` for arm ``right_arm``, ``left.max_step`` beside ``arms: [left_arm,
    right_arm]``: :data:`ARM_ONLY_SUFFIXES`) or at top level (``max_step``); a typo (:func:`_near`) of a safety
    parameter (:data:`SAFETY_PARAMETERS`: ``dry-run``, ``start_pause``); or a renamed one. None for anything else
    (a retired parameter, another program's key under ``/**``: warned). ``arms``: the configured arms (default:
    left, right); ``node``: said first (``rtc_bringup``, which checks every node's)."""
    from rtc_ros.nodes.params.values import ParameterError

    known_arms = {str(a) for a in arms} or set(DEFAULT_ARMS) | set(SIM_ARMS)
    arm, dot, suffix = name.partition(".")
    if not dot and name in ARM_ONLY_SUFFIXES:
        return ParameterError(name, value, f"{node + ': ' if node else ''}a per-arm setting: give it as "
                                           f"<arm>.{name} for each of the arms {sorted(known_arms)}; at top level it "
                                           "would be ignored")
    if dot and arm not in known_arms and suffix in ARM_ONLY_SUFFIXES + tuple(a.suffix for a in ARM_SPECS):
        close = difflib.get_close_matches(arm, sorted(known_arms), n=1, cutoff=0.8)
        if close or suffix in ARM_ONLY_SUFFIXES:
            meant = f"{close[0]}.{suffix}" if close else f"<one of {sorted(known_arms)}>.{suffix}"
            return ParameterError(name, value, f"{node + ': ' if node else ''}no arm {arm!r} is configured (arms: "
                                               f"{sorted(known_arms)}; did you mean '{meant}'?); its value would be "
                                               "ignored and that arm's setting left at its default")
        return None
    if meant is None:
        return None
    renamed = RENAMED.get(name) == meant
    ours = bool(dot) and arm in known_arms  # a misspelt key of a configured arm
    safety = meant in SAFETY_PARAMETERS and _near(name, meant)
    if not (renamed or ours or safety):
        return None
    what = f"renamed: set '{meant}'" if renamed else f"did you mean '{meant}'?"
    return ParameterError(name, value, f"{node + ': ' if node else ''}not a parameter of any rtc_ros node ({what}); its "
                                       f"value would be ignored and '{meant}' left at its default")


def unknown_text(name: str, meant: str | None) -> str:
    """One line on an unknown parameter (:func:`unknown_parameters`)."""
    hint = (f" (renamed: '{meant}')" if meant and RENAMED.get(name) == meant
            else f" (did you mean '{meant}'?)" if meant else f" (retired: {RETIRED[name]})" if name in RETIRED else "")
    return f"'{name}' is not a parameter of any rtc_ros node: ignored{hint}"


#: parameters a role's params file may still set from before they moved to another node: role -> name -> where
MOVED = {ROLE_INFERENCE: {"tracking_timeout_s": "chunk_executor", "tracking_tolerance": "chunk_executor"}}


def moved_parameters(names: Any, role: str) -> list[str]:
    """One line for each of ``names`` (a node's overrides; per-arm ones dotted) that ``role`` no longer reads
    because the parameter moved to another node (:data:`MOVED`). A value under ``/**`` reaches both nodes (and
    works), one in this node's own section does nothing: the node cannot tell which, so it says both."""
    moved = MOVED.get(role, {})
    out = []
    for name in names:
        where = moved.get(name) or moved.get(str(name).rsplit(".", 1)[-1] if "." in str(name) else "")
        if where:
            out.append(f"'{name}' is not read by this node: {where} reads it (the tracking watchdog runs there "
                       f"since 2026-12-06), so it takes effect only where {where} gets it too (its section or /**; "
                       f"{where} logs 'tracking watchdog on' at start)")
    return out
