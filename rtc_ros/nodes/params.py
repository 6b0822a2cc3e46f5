"""Parameter schema shared by ``chunk_executor`` and ``policy_inference``.

One params file configures both nodes (put shared values under ``/**: ros__parameters:``). Every
parameter is declared with a :class:`~rcl_interfaces.msg.ParameterDescriptor` (description, range,
``read_only`` for structural ones). :func:`validate` checks ranges and combinations (``s_min > H``,
``b < 1``, ``beta <= 0``, ...) and raises :class:`ParameterError` naming the parameter and value; the
nodes refuse to start on it. :func:`load_params_file` + :func:`validate` do the same without ROS
(used by tests and by ``rtc_bringup`` before it starts anything).

Per-arm parameters are declared after ``arms`` is read: ``<arm>.joint_names``, ``<arm>.command_topic``,
``<arm>.lower_limits``, ``<arm>.upper_limits``, ``<arm>.max_step`` (one value per joint; a single value
is broadcast).
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from rtc_ros.runtime.methods import METHODS

ROLE_EXECUTOR = "executor"
ROLE_INFERENCE = "inference"
BOTH = (ROLE_EXECUTOR, ROLE_INFERENCE)

OUTPUT_TYPES = ("float64_multi_array", "joint_trajectory", "joint_state")
LOOP_MODES = ("thread", "timer")
JACOBIAN_MODES = ("exact", "identity_approx")
ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")

#: default per-arm command topic for each output type (relative: namespaces and remaps apply)
DEFAULT_COMMAND_TOPIC = {
    "float64_multi_array": "{arm}_controller/commands",  # forward_command_controller
    "joint_trajectory": "{arm}_controller/joint_trajectory",  # joint_trajectory_controller
    "joint_state": "{arm}/joint_commands",
}


class ParameterError(ValueError):
    """An invalid parameter or combination; the message names the parameter and its value."""

    def __init__(self, name: str, value: Any, reason: str) -> None:
        super().__init__(f"invalid parameter '{name}' = {value!r}: {reason}")
        self.name = name
        self.value = value


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: default, description, range (inclusive), choices, which nodes declare it."""

    name: str
    default: Any
    description: str
    roles: tuple[str, ...] = BOTH
    read_only: bool = True
    int_range: tuple[int, int] | None = None
    float_range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    array_type: str | None = None  # "string" / "double" for arrays whose default may be empty


SPECS: tuple[ParamSpec, ...] = (
    # --- shared -------------------------------------------------------------------------------
    ParamSpec("method", "rtc", "Execution method: " + ", ".join(METHODS) + ". Must be the same in both nodes "
              "(set it under /** in the params file).", choices=METHODS),
    ParamSpec("horizon", 50, "H: actions per chunk (must equal the policy's horizon).", int_range=(1, 10000)),
    ParamSpec("s_min", 25, "Minimum actions of a chunk executed before the next inference starts "
              "(Algorithm 1; s = max(d, s_min)). Sync: actions executed before pausing. 1 <= s_min <= H.",
              int_range=(1, 10000)),
    ParamSpec("rate_hz", 50.0, "Controller rate in Hz (dt = 1 / rate_hz; d is counted in these ticks).",
              float_range=(1.0, 1000.0)),
    ParamSpec("arms", ["left", "right"], "Arm names; per-arm parameters live under '<arm>.'.", array_type="string"),
    ParamSpec("chunk_topic", "rtc/chunk", "Chunk topic (trajectory_msgs/JointTrajectory, relative name)."),
    ParamSpec("executor_state_topic", "rtc/executor_state",
              "Executor state topic (sensor_msgs/JointState, relative name)."),
    ParamSpec("joint_states_topic", "joint_states", "Measured joint states (sensor_msgs/JointState, relative)."),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", read_only=False,
              float_range=(0.05, 3600.0)),
    # --- executor -----------------------------------------------------------------------------
    ParamSpec("output_type", "float64_multi_array", "Command message: float64_multi_array "
              "(forward_command_controller), joint_trajectory (single point, joint_trajectory_controller) "
              "or joint_state.", roles=(ROLE_EXECUTOR,), choices=OUTPUT_TYPES),
    ParamSpec("loop_mode", "thread", "thread: dedicated loop thread on absolute wall-clock deadlines (lowest "
              "jitter); timer: an rclpy timer (follows use_sim_time; forced when use_sim_time is true).",
              roles=(ROLE_EXECUTOR,), choices=LOOP_MODES),
    ParamSpec("realtime_priority", 0, "SCHED_FIFO priority (1-99) for the executor process's threads, as "
              "ros2_control does for its loop; 0 = normal scheduling. Needs CAP_SYS_NICE / rtprio limits; if "
              "refused, a warning is logged and the loop runs normally.", roles=(ROLE_EXECUTOR,), int_range=(0, 99)),
    ParamSpec("max_chunk_age", 1.0, "Reject a chunk whose observation stamp is older than this many seconds "
              "on arrival (0 disables; steps are always checked).", roles=(ROLE_EXECUTOR,),
              read_only=False, float_range=(0.0, 3600.0)),
    ParamSpec("ensemble_decay", 0.0, "Temporal-ensembling weight decay m (0 = plain average as in the paper).",
              roles=(ROLE_EXECUTOR,), float_range=(0.0, 100.0)),
    ParamSpec("hold_log_period", 1.0, "Minimum seconds between 'holding position' log lines.",
              roles=(ROLE_EXECUTOR,), read_only=False, float_range=(0.0, 3600.0)),
    ParamSpec("trajectory_time_from_start", 0.0, "joint_trajectory output: time_from_start of the single "
              "point in seconds (0 = one controller period).", roles=(ROLE_EXECUTOR,),
              float_range=(0.0, 10.0)),
    # --- inference ----------------------------------------------------------------------------
    ParamSpec("policy_spec", "", "Path to the base policy's YAML spec (see rtc_ros.policies.spec). "
              "${VAR:-default} is expanded; relative paths are also looked up in the package.",
              roles=(ROLE_INFERENCE,)),
    ParamSpec("weak_policy_spec", "", "BID only: weak policy spec for forward contrast ('' = backward only).",
              roles=(ROLE_INFERENCE,)),
    ParamSpec("device", "auto", "Torch device: auto, cpu, cuda or cuda:N.", roles=(ROLE_INFERENCE,)),
    ParamSpec("beta", 5.0, "Guidance weight clip beta (> 0; paper: 5).", roles=(ROLE_INFERENCE,),
              float_range=(1e-9, 1e6)),
    ParamSpec("delay_buffer_size", 10, "b: delays kept for the forecast d = max(last b delays) (>= 1).",
              roles=(ROLE_INFERENCE,), int_range=(1, 100000)),
    ParamSpec("n_steps", 5, "Denoising (Euler) steps n (paper: 5).", roles=(ROLE_INFERENCE,),
              int_range=(1, 1000)),
    ParamSpec("jacobian", "exact", "Guidance VJP: exact (RTC) or identity_approx (cheaper approximation, "
              "not the paper's method).", roles=(ROLE_INFERENCE,), choices=JACOBIAN_MODES),
    ParamSpec("bid_samples", 16, "BID: candidates per chunk N.", roles=(ROLE_INFERENCE,), int_range=(1, 4096)),
    ParamSpec("bid_k", 3, "BID: size K of the positive/negative sets.", roles=(ROLE_INFERENCE,),
              int_range=(1, 4096)),
    ParamSpec("camera_topics", [], "Image topics (sensor_msgs/Image, relative), one per image entry of the "
              "policy's obs_spec, in the order of camera_names.", roles=(ROLE_INFERENCE,), array_type="string"),
    ParamSpec("camera_names", [], "obs_spec entry name fed by each camera topic ([] = the image entries of "
              "obs_spec in order).", roles=(ROLE_INFERENCE,), array_type="string"),
    ParamSpec("obs_timeout", 0.5, "Observations (joint states, images) older than this many seconds are "
              "rejected instead of acted on.", roles=(ROLE_INFERENCE,), read_only=False,
              float_range=(0.001, 3600.0)),
    ParamSpec("extra_latency_ms", 0.0, "Injected extra inference delay in ms (paper: +100 / +200 ms).",
              roles=(ROLE_INFERENCE,), read_only=False, float_range=(0.0, 60000.0)),
    ParamSpec("warmup_iterations", 3, "Inferences run before going active; their latency is excluded from b.",
              roles=(ROLE_INFERENCE,), int_range=(0, 1000)),
    ParamSpec("seed", 0, "Seed of the sampling noise.", roles=(ROLE_INFERENCE,), int_range=(0, 2**31 - 1)),
    ParamSpec("torch_threads", 0, "torch.set_num_threads (0 = leave torch's default).", roles=(ROLE_INFERENCE,),
              int_range=(0, 1024)),
)

SPEC_BY_NAME = {s.name: s for s in SPECS}

ARM_SPECS: tuple[tuple[str, str, str], ...] = (
    # suffix, array type, description
    ("joint_names", "string", "Joint names of this arm, in action order (arms are concatenated in 'arms' order)."),
    ("command_topic", "string_scalar", "Command topic of this arm (relative; '' = the default for output_type: "
     + ", ".join(f"{k}: {v}" for k, v in DEFAULT_COMMAND_TOPIC.items()) + ")."),
    ("lower_limits", "double", "Lower joint limits (one per joint, or one for all; [] = -pi, gripper 0)."),
    ("upper_limits", "double", "Upper joint limits (one per joint, or one for all; [] = +pi, gripper 1)."),
    ("max_step", "double", "Largest command change per tick (one per joint, or one for all; [] = 0.05)."),
)


def default_joint_names(arm: str) -> list[str]:
    return [f"{arm}_{j}" for j in ARM_JOINTS]


@dataclass
class ArmParams:
    name: str
    joint_names: list[str]
    command_topic: str
    lower: list[float]
    upper: list[float]
    max_step: list[float]


@dataclass
class RtcParams:
    """Validated parameters of one node (fields of the other role keep their defaults)."""

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
        return 1.0 / float(self.values["rate_hz"])

    @property
    def joint_names(self) -> list[str]:
        return [j for a in self.arms for j in a.joint_names]


def specs_for(role: str) -> list[ParamSpec]:
    return [s for s in SPECS if role in s.roles]


# ------------------------------------------------------------------------------------- paths
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}")


def package_roots() -> list[Path]:
    """Where relative data paths (policies/, config/) are looked up after the working directory."""
    roots = [Path(__file__).resolve().parents[2]]  # source tree
    roots.append(Path(sys.prefix) / "share" / "rtc_ros")
    try:  # an ament install (colcon)
        from ament_index_python.packages import get_package_share_directory

        roots.append(Path(get_package_share_directory("rtc_ros")))
    except Exception:  # noqa: BLE001 -- no ament index or package not installed
        pass
    return roots


def expand_path(value: str) -> str:
    """Expand ``${VAR:-default}``, ``${VAR}``, ``$VAR`` and ``~``; a relative path that does not exist
    in the working directory is looked up in the package (source tree, then install share)."""
    text = _VAR.sub(lambda m: os.environ.get(m.group(1)) or (m.group(3) or ""), value)
    text = os.path.expanduser(os.path.expandvars(text))
    if not text or os.path.isabs(text) or Path(text).exists():
        return text
    for root in package_roots():
        if (root / text).exists():
            return str(root / text)
    return text


# ------------------------------------------------------------------------------------- validation
def _expand(name: str, values: list[float], n: int, default: list[float]) -> list[float]:
    if not values:
        return list(default)
    if len(values) == 1:
        return [float(values[0])] * n
    if len(values) != n:
        raise ParameterError(name, values, f"needs one value per joint ({n}) or a single value")
    return [float(v) for v in values]


def _check_relative(name: str, topic: str) -> None:
    if not topic or topic.startswith("/") or any(c.isspace() for c in topic):
        raise ParameterError(name, topic, "must be a non-empty relative topic name (no leading '/', no spaces)")


def validate(values: dict[str, Any], role: str) -> RtcParams:
    """Check ranges, choices and combinations; fill per-arm defaults. Raises :class:`ParameterError`."""
    if role not in BOTH:
        raise ValueError(f"role must be one of {BOTH}, got {role!r}")
    out: dict[str, Any] = {}
    for spec in specs_for(role):
        v = values.get(spec.name, spec.default)
        if v is None:
            v = spec.default
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
                extra = " (must be > 0)" if lo > 0 and lo < 1e-3 else ""
                raise ParameterError(spec.name, v, f"must be in [{lo}, {hi}]{extra}")
        if spec.choices is not None and v not in spec.choices:
            raise ParameterError(spec.name, v, f"must be one of {list(spec.choices)}")
        out[spec.name] = v
    if out["s_min"] > out["horizon"]:
        raise ParameterError("s_min", out["s_min"], f"must be <= horizon (H = {out['horizon']})")
    for t in ("chunk_topic", "executor_state_topic", "joint_states_topic"):
        _check_relative(t, out[t])
    arms_raw = list(out["arms"])
    if not arms_raw or len(set(arms_raw)) != len(arms_raw):
        raise ParameterError("arms", arms_raw, "must be a non-empty list of distinct names")
    arms: list[ArmParams] = []
    seen: set[str] = set()
    for arm in arms_raw:
        names = list(values.get(f"{arm}.joint_names") or default_joint_names(arm))
        if len(set(names)) != len(names) or seen & set(names) or any(not n for n in names):
            raise ParameterError(f"{arm}.joint_names", names, "joint names must be non-empty and unique across arms")
        seen |= set(names)
        n = len(names)
        grip = [nm.endswith("gripper") for nm in names]
        lower = _expand(f"{arm}.lower_limits", list(values.get(f"{arm}.lower_limits") or []), n,
                        [0.0 if g else -math.pi for g in grip])
        upper = _expand(f"{arm}.upper_limits", list(values.get(f"{arm}.upper_limits") or []), n,
                        [1.0 if g else math.pi for g in grip])
        step = _expand(f"{arm}.max_step", list(values.get(f"{arm}.max_step") or []), n, [0.05] * n)
        for i, (lo, hi) in enumerate(zip(lower, upper)):
            if math.isnan(lo) or math.isnan(hi) or lo > hi:
                raise ParameterError(f"{arm}.lower_limits", lower, f"lower {lo} > upper {hi} for joint {names[i]}")
        if any(not (s > 0) for s in step):
            raise ParameterError(f"{arm}.max_step", step, "every max_step must be > 0")
        topic = values.get(f"{arm}.command_topic") or ""
        if role == ROLE_EXECUTOR:
            topic = topic or DEFAULT_COMMAND_TOPIC[out["output_type"]].format(arm=arm)
            _check_relative(f"{arm}.command_topic", topic)
        arms.append(ArmParams(arm, names, topic, lower, upper, step))
    if role == ROLE_INFERENCE:
        if not out["policy_spec"]:
            raise ParameterError("policy_spec", out["policy_spec"], "a policy spec YAML file is required")
        if not Path(expand_path(out["policy_spec"])).is_file():
            raise ParameterError("policy_spec", out["policy_spec"], f"file not found ({expand_path(out['policy_spec'])})")
        if out["weak_policy_spec"] and not Path(expand_path(out["weak_policy_spec"])).is_file():
            raise ParameterError("weak_policy_spec", out["weak_policy_spec"], "file not found")
        dev = out["device"]
        if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
            raise ParameterError("device", dev, "must be auto, cpu, cuda or cuda:N")
        if out["bid_k"] > out["bid_samples"]:
            raise ParameterError("bid_k", out["bid_k"], f"must be <= bid_samples ({out['bid_samples']})")
        for t in out["camera_topics"]:
            _check_relative("camera_topics", t)
        if out["camera_names"] and len(out["camera_names"]) != len(out["camera_topics"]):
            raise ParameterError("camera_names", out["camera_names"],
                                 f"needs one name per camera topic ({len(out['camera_topics'])})")
    return RtcParams(role=role, values=out, arms=arms)


# ------------------------------------------------------------------------------- params files
def _key_matches(key: str, fq_name: str) -> bool:
    """ROS 2 params-file node key matching: ``/**`` any prefix, ``*`` one token; no leading '/' = root."""
    import re

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
        if isinstance(key, str) and isinstance(section, dict) and _key_matches(key, fq):
            params = section.get("ros__parameters", {})
            if isinstance(params, dict):
                flatten("", params)
    return out


# ------------------------------------------------------------------------------------- ROS side
def declare_and_validate(node: Any, role: str) -> RtcParams:
    """Declare every parameter of ``role`` on ``node`` (with descriptors), read and validate them.

    Raises:
        ParameterError: naming the offending parameter (rclpy's type/range errors are converted).
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.exceptions import ParameterException
    from rclpy.parameter import Parameter

    def declare(name: str, default: Any, desc: ParameterDescriptor, array_type: str | None = None) -> Any:
        try:
            if isinstance(default, list) and not default:
                ptype = Parameter.Type.STRING_ARRAY if array_type == "string" else Parameter.Type.DOUBLE_ARRAY
                return node.declare_parameter(name, ptype, desc).value
            return node.declare_parameter(name, default, desc).value
        except ParameterException as exc:
            hint = ""
            if isinstance(default, float):
                hint = " (a floating-point parameter: write e.g. 50.0, not 50)"
            override = getattr(node, "_parameter_overrides", {}).get(name)
            value = override.value if override is not None else default
            raise ParameterError(name, value, f"{exc}{hint}") from exc

    values: dict[str, Any] = {}
    for spec in specs_for(role):
        d = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
        if spec.int_range is not None:
            d.integer_range = [IntegerRange(from_value=spec.int_range[0], to_value=spec.int_range[1], step=0)]
        if spec.float_range is not None:
            d.floating_point_range = [FloatingPointRange(from_value=float(spec.float_range[0]),
                                                         to_value=float(spec.float_range[1]), step=0.0)]
        if spec.choices is not None:
            d.additional_constraints = "one of: " + ", ".join(spec.choices)
        values[spec.name] = declare(spec.name, spec.default, d, spec.array_type)
    arms = values.get("arms") or []
    for arm in arms:
        for suffix, kind, desc in ARM_SPECS:
            if role == ROLE_INFERENCE and suffix != "joint_names":
                continue
            name = f"{arm}.{suffix}"
            d = ParameterDescriptor(description=desc, read_only=True)
            if suffix == "joint_names":
                default: Any = default_joint_names(arm)
            elif kind == "string_scalar":
                default = ""
            else:
                default = []
            values[name] = declare(name, default, d, "string" if kind == "string" else "double")
    return validate(values, role)


def describe(specs: Iterable[ParamSpec] = SPECS) -> str:
    """A Markdown table of the parameters (for docs)."""
    rows = ["| parameter | node | default | range / choices | description |", "|---|---|---|---|---|"]
    for s in specs:
        rng = ""
        if s.int_range:
            rng = f"[{s.int_range[0]}, {s.int_range[1]}]"
        elif s.float_range:
            rng = f"[{s.float_range[0]:g}, {s.float_range[1]:g}]"
        elif s.choices:
            rng = ", ".join(s.choices)
        node = "both" if s.roles == BOTH else ("chunk_executor" if s.roles == (ROLE_EXECUTOR,) else "policy_inference")
        ro = " (read-only)" if s.read_only else ""
        rows.append(f"| `{s.name}` | {node} | `{s.default!r}` | {rng} | {s.description}{ro} |")
    for suffix, _, desc in ARM_SPECS:
        rows.append(f"| `<arm>.{suffix}` | {'both' if suffix == 'joint_names' else 'chunk_executor'} | | | {desc} |")
    return "\n".join(rows)
