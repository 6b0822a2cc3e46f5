"""The one parameter schema of the five rtc_ros nodes: names, defaults, ranges, descriptions.

Each node has a *role*: ``executor`` (``chunk_executor``), ``inference`` (``policy_inference``),
``recorder`` (``episode_recorder``), ``sim`` (``bimanual_sim``) and ``merger`` (``joint_state_merger``). A :class:`ParamSpec` lists the
roles that declare it; the same name may appear in two specs of different roles (``camera_topics``
of the recorder and of inference). Per-arm parameters (``<arm>.<suffix>``) are
:class:`rtc_ros.nodes.params.arm_schema.ArmSpec` entries (:mod:`rtc_ros.nodes.params.arm_schema`), declared for
every arm of ``arms`` (the sim's arms are fixed: ``left``, ``right``).

``read_only`` parameters are structural (topics, sizes, the method) and fixed after start; the
others can be changed with ``ros2 param set`` and are applied at run time (see
:func:`rtc_ros.nodes.params.declare.declare_and_validate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rtc_ros.recording.params_file import ARM_JOINTS
from rtc_ros.runtime.methods import METHODS

ROLE_EXECUTOR = "executor"
ROLE_INFERENCE = "inference"
ROLE_RECORDER = "recorder"
ROLE_SIM = "sim"
ROLE_MERGER = "merger"
BOTH = (ROLE_EXECUTOR, ROLE_INFERENCE)
ROLES = (ROLE_EXECUTOR, ROLE_INFERENCE, ROLE_RECORDER, ROLE_SIM, ROLE_MERGER)
#: the node name of each role
NODE_NAMES = {ROLE_EXECUTOR: "chunk_executor", ROLE_INFERENCE: "policy_inference",
              ROLE_RECORDER: "episode_recorder", ROLE_SIM: "bimanual_sim", ROLE_MERGER: "joint_state_merger"}

OUTPUT_TYPES = ("float64_multi_array", "joint_trajectory", "joint_state")
LOOP_MODES = ("thread", "timer")
CAMERA_TRANSPORTS = ("raw", "compressed")
OBS_TIMES = ("joint_state", "oldest")
STARTUP_COMMANDS = ("none", "hold_measured")
JACOBIAN_MODES = ("exact", "identity_approx")
COMPRESSIONS = ("none", "zstd")
#: arms whose joint names have defaults (``<arm>_waist``, ...); any other arm must set ``<arm>.joint_names``
DEFAULT_ARMS = ("left", "right")
#: the simulator's arms (fixed: the MuJoCo model has these two)
SIM_ARMS = ("left", "right")

#: default per-arm command topic for each output type (relative: namespaces and remaps apply)
DEFAULT_COMMAND_TOPIC = {
    "float64_multi_array": "{arm}_controller/commands",  # forward_command_controller
    "joint_trajectory": "{arm}_controller/joint_trajectory",  # joint_trajectory_controller
    "joint_state": "{arm}/joint_commands",
}

#: episode_recorder defaults
RECORDER_TOPICS = ["rtc/chunk", "rtc/executor_state", "joint_states", "rtc/progress", "rtc/episode", "/diagnostics",
                   "sim/status", "sim/protective_stops"]
#: arm command topics of chunk_executor (any output_type) and teleop/demonstration commands
RECORDER_PATTERNS = [r"_controller/commands$", r"_controller/joint_trajectory$", r"/joint_commands$"]
RECORDER_PARAM_NODES = ["policy_inference", "chunk_executor"]

#: bimanual_sim tasks (equal to rtc_ros.sim.conveyor.TASK_NAMES; a test checks)
SIM_TASKS = ("transfer_cube", "conveyor_cube")

#: bimanual_sim workspace camera defaults (equal to rtc_ros.sim.camera.CameraConfig's; a test checks)
SIM_CAMERA = {"width": 32, "height": 32, "lookat": [0.1, 0.5, 0.0], "distance": 0.55, "azimuth": 90.0,
              "elevation": -90.0}


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: default, description, range (inclusive), choices, which roles declare it.

    ``array_type`` (``string`` / ``double``) marks list parameters (their default may be empty).
    """

    name: str
    default: Any
    description: str
    roles: tuple[str, ...] = BOTH
    read_only: bool = True
    int_range: tuple[int, int] | None = None
    float_range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    array_type: str | None = None


def _p(name: str, default: Any, description: str, roles: tuple[str, ...], **kw: Any) -> ParamSpec:
    return ParamSpec(name, default, description, roles, **kw)


_EX, _INF, _REC, _SIM = (ROLE_EXECUTOR,), (ROLE_INFERENCE,), (ROLE_RECORDER,), (ROLE_SIM,)
_RTC_MERGER = (*BOTH, ROLE_MERGER)

_RTC: tuple[ParamSpec, ...] = (
    # --- chunk_executor and policy_inference ---------------------------------------------------
    _p("method", "rtc", "Execution method: " + ", ".join(METHODS) + ". Must be the same in both nodes "
       "(set it under /** in the params file). rtc_trained (training-time RTC) needs a policy trained with "
       "prefix conditioning (spec field training.prefix_conditioning >= the delay d).", BOTH, choices=METHODS),
    _p("horizon", 50, "H: actions per chunk (must equal the policy's horizon).", BOTH, int_range=(1, 10000)),
    _p("s_min", 25, "Minimum actions of a chunk executed before the next inference starts "
       "(Algorithm 1; s = max(d, s_min)). Sync: actions executed before pausing. 1 <= s_min <= H.", BOTH,
       int_range=(1, 10000)),
    _p("rate_hz", 50.0, "Controller rate in Hz (dt = 1 / rate_hz; d is counted in these ticks).", BOTH,
       float_range=(1.0, 1000.0)),
    _p("arms", ["left", "right"], "Arm names; per-arm parameters live under '<arm>.' (arms other than "
       "left/right must set '<arm>.joint_names').", _RTC_MERGER, array_type="string"),
    _p("chunk_topic", "rtc/chunk", "Chunk topic (trajectory_msgs/JointTrajectory, relative name).", BOTH),
    _p("executor_state_topic", "rtc/executor_state", "Executor state topic (sensor_msgs/JointState, relative "
       "name).", BOTH),
    _p("joint_states_topic", "joint_states", "Measured joint states (sensor_msgs/JointState, relative; "
       "joint_state_merger: its output).", _RTC_MERGER),
    _p("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", _RTC_MERGER, read_only=False,
       float_range=(0.05, 3600.0)),
    # --- chunk_executor ------------------------------------------------------------------------
    _p("output_type", "float64_multi_array", "Command message: float64_multi_array "
       "(forward_command_controller), joint_trajectory (single point, joint_trajectory_controller) "
       "or joint_state.", _EX, choices=OUTPUT_TYPES),
    _p("loop_mode", "thread", "thread: dedicated loop thread on absolute wall-clock deadlines (lowest "
       "jitter); timer: an rclpy timer (follows use_sim_time; forced when use_sim_time is true).", _EX,
       choices=LOOP_MODES),
    _p("realtime_priority", 0, "SCHED_FIFO priority (1-99) for the executor process's threads, as "
       "ros2_control does for its loop; 0 = normal scheduling. Needs CAP_SYS_NICE / rtprio limits; if "
       "refused, a warning is logged and the loop runs normally.", _EX, int_range=(0, 99)),
    _p("max_chunk_age", 1.0, "Reject a chunk whose observation stamp is older than this many seconds "
       "on arrival (0 disables; a chunk with no action left for the current step is refused regardless, except "
       "a start-up chunk, which runs from its index 0 on a robot that stood still).", _EX, read_only=False,
       float_range=(0.0, 3600.0)),
    _p("max_limit_excess", 0.5, "Refuse a chunk with an action beyond a joint's limits by more than this fraction of "
       "the joint's range (upper - lower): not a policy overshooting a little (clamped to the limits) but a chunk in "
       "other units, another joint order or another normalisation. 0 disables; joints without two finite limits "
       "are not checked.", _EX, read_only=False, float_range=(0.0, 100.0)),
    _p("max_start_gap", 1.0, "Refuse a start-up chunk (the first after start, a re-sync, a deadman press or plans "
       "dropped after a long pause: it runs from its index 0, the observation's step, on an arm that stood still) whose first action is farther than "
       "this from where a joint is held, grippers (<arm>.gripper_joints) excepted: a policy in other units than "
       "the driver's joint_states (degrees for radians), another joint order or robot, within the limits. In the "
       "joints' units (rad); 0 disables.", _EX, read_only=False, float_range=(0.0, 1e6)),
    _p("ensemble_decay", 0.0, "Temporal-ensembling weight decay m (0 = plain average as in the paper).", _EX,
       float_range=(0.0, 100.0)),
    _p("startup_command", "none", "Before the first chunk, and after ~/resync until the next: 'none' publishes no "
       "command (the controllers keep their last command, e.g. a gripper's grip after an executor restart; the "
       "measured position is only the base of the per-tick step limit) or 'hold_measured' (commands the measured "
       "positions, for controllers that need a command stream; a squeezing gripper loosens to its measured "
       "opening).", _EX,
       choices=STARTUP_COMMANDS),
    _p("dry_run", False, "A first bring-up: compute every command as usual but publish none to the controllers "
       "(the arm stays where it is; watch the commands in rtc/executor_state). Read-only: switching to commanding "
       "would jump from where the arm stands to where the chunk is.", _EX),
    _p("start_paused", False, "An arming step: start paused, so nothing is executed until the operator calls "
       "~/resume (std_srvs/Trigger); policy_inference plans nothing meanwhile, and the first chunk is observed after "
       "the resume. Without it the arm moves as soon as the first chunk arrives.", _EX),
    _p("hold_log_period", 1.0, "Minimum seconds between 'holding position' log lines (10x this once a hold lasts "
       "over 10 s).", _EX, read_only=False,
       float_range=(0.0, 3600.0)),
    _p("startup_ramp_s", 0.0, "Seconds over which a start-up chunk (the first after start or a re-sync) is blended "
       "in from the held command (minimum-jerk; 0 = off). From rest after a protective stop the policy's first "
       "action leads the measured position by the arm's tracking lag; stepping there at once is an acceleration "
       "the arm's torque limits refuse. 0, or 2 ticks to min(horizon, s_min) / rate_hz (ensemble methods: horizon): "
       "the next chunk, taking over after s_min actions, ends the ramp.", _EX, float_range=(0.0, 60.0)),
    _p("robot_stopped_topic", "", "sensor_msgs/JointState: the joints a protective stop holds now (name; every "
       "joint of a stopped arm) and the positions it holds them at (position); empty while nothing is stopped. "
       "Relative name, published reliably on every change and periodically (subscribed reliable, volatile: an "
       "executor started during a stop learns of it from the next message); '' = not used. When a stop begins the "
       "executor drops its chunks and holds, paused: the stopped joints where the stop holds them, the others at "
       "their last command; when it ends it re-syncs and resumes with a start-up chunk, unless an operator had "
       "paused it (rtc_ros.runtime.stop_recovery). Until 2026-12-03 std_msgs/Bool: a publisher of another type is "
       "an error, nobody publishing it for 10 s a warning (both in /diagnostics too).", _EX),
    _p("enable_topic", "", "std_msgs/Bool from an enabling device (a deadman switch, a foot pedal): the executor "
       "commands motion only while its newest value is true and younger than enable_timeout_s; released, silent "
       "or never heard it holds (reported paused), and when enabled again it drops every chunk and starts with a "
       "new one (nothing planned before the release executes after it); an arm found farther than max_step from "
       "the held command at the press (moved while released) is held where it stands. Subscribed best-effort (any publisher "
       "matches); a relative name, or absolute for one device shared by several robots; '' = not used.", _EX),
    _p("tracking_timeout_s", 0.2, "Tracking watchdog (on when an arm sets '<arm>.tracking_tolerance'): a joint farther "
       "than its tolerance from the executor's newest command for this long re-syncs the executor as ~/hold does "
       "(chunks dropped, the measured position commanded whatever startup_command says, paused until ~/resume).",
       _EX, read_only=False, float_range=(0.02, 60.0)),
    _p("enable_timeout_s", 0.2, "enable_topic: a newest value older than this counts as released (the device or "
       "its publisher died).", _EX, read_only=False, float_range=(0.02, 10.0)),
    _p("trajectory_time_from_start", 0.0, "joint_trajectory output: time_from_start of the single "
       "point in seconds (0 = one controller period).", _EX, float_range=(0.0, 10.0)),
    # --- policy_inference ----------------------------------------------------------------------
    _p("policy_spec", "", "Path to the base policy's YAML spec (see rtc_ros.policies.spec). "
       "${VAR:-default} is expanded; relative paths are also looked up in the package. A default taken (VAR empty) "
       "that is a policy shipped with rtc_ros (trained in simulation; params files before 2026-12-05 had one) is "
       "refused.", _INF),
    _p("weak_policy_spec", "", "BID only: weak policy spec for forward contrast ('' = backward only).", _INF),
    _p("device", "auto", "Torch device: auto, cpu, cuda or cuda:N.", _INF),
    _p("cuda_graphs", False, "On a CUDA device, replay the plain, guided and rtc_trained sampling loops as CUDA "
       "graphs (capture failure: logged once, then eager; no effect on CPU; not yet run on a GPU).", _INF),
    _p("beta", 5.0, "Guidance weight clip beta (> 0; paper: 5).", _INF, float_range=(1e-9, 1e6)),
    _p("delay_buffer_size", 10, "b: length of Algorithm 1's delay queue Q; d = max(Q), Q starts as [d_init = "
       "the warm-up latency in steps] (>= 1).", _INF, int_range=(1, 100000)),
    _p("ack_timeout_steps", 10, "Controller steps to wait for the executor to take over or reject a published "
       "chunk before counting it lost and planning again (a rejection is reported at once).", _INF,
       int_range=(1, 100000)),
    _p("n_steps", 5, "Denoising (Euler) steps n (paper: 5).", _INF, int_range=(1, 1000)),
    _p("jacobian", "exact", "Guidance VJP: exact (RTC) or identity_approx (cheaper approximation, "
       "not the paper's method).", _INF, choices=JACOBIAN_MODES),
    _p("bid_samples", 32, "BID: candidates per chunk N (paper: 32; the Figure 5 harness uses the same; 16 before "
       "2026-12-02).", _INF, int_range=(1, 4096)),
    _p("bid_k", 3, "BID: size K of the positive/negative sets.", _INF, int_range=(1, 4096)),
    _p("camera_topics", [], "Image topics (sensor_msgs/Image, relative), one per image entry of the "
       "policy's obs_spec, in the order of camera_names.", _INF, array_type="string"),
    _p("camera_names", [], "obs_spec entry name fed by each camera topic ([] = the image entries of "
       "obs_spec in order).", _INF, array_type="string"),
    _p("camera_transport", "raw", "How the cameras arrive: 'raw' (sensor_msgs/Image on each camera topic) or "
       "'compressed' (sensor_msgs/CompressedImage, JPEG or PNG, on <camera topic>/compressed as image_transport "
       "publishes it; only the frames an observation uses are decoded).", _INF, choices=CAMERA_TRANSPORTS),
    _p("obs_timeout", 0.5, "Observations (joint states, images) received longer ago than this many seconds, "
       "or images stamped more than this before or after the joint state, are rejected instead of acted on; a longer gap "
       "in a camera's frames (or, for a joint-history policy, in the joint states) restarts its history.", _INF,
       read_only=False, float_range=(0.001, 3600.0)),
    _p("obs_time", "joint_state", "Which stamp is the observation's time (its executor step t_obs = chunk "
       "index 0): 'joint_state' (the state the chunk continues from; camera frames as old as in the training "
       "data) or 'oldest' (the oldest of the joint state and the images, for cameras whose latency the "
       "training data did not have).", _INF, choices=OBS_TIMES),
    _p("report_lag_compensation", False, "Estimate the executor's clock from its reports' delays and place "
       "observations past the newest report when reports arrive late (a lossy link, e.g. Wi-Fi, that holds the "
       "reliable reports back for retransmissions). Off: the newest report is taken as current. A report that "
       "leaves a CPU-starved executor late looks the same, and then puts observations ahead of the stalled "
       "executor (chunks refused as 'future'), hence off by default.", _INF),
    _p("extra_latency_ms", 0.0, "Injected extra inference delay in ms (paper: +100 / +200 ms).", _INF,
       read_only=False, float_range=(0.0, 60000.0)),
    _p("warmup_iterations", 3, "Inferences run before going active; their latency is excluded from b.", _INF,
       int_range=(0, 1000)),
    _p("seed", 0, "Seed of the sampling noise.", _INF, int_range=(0, 2**31 - 1)),
    _p("torch_threads", 0, "torch.set_num_threads (0 = leave torch's default).", _INF, int_range=(0, 1024)),
)

_MERGER: tuple[ParamSpec, ...] = (
    _p("source_topics", [], "joint_state_merger: the per-arm (or per-driver) sensor_msgs/JointState topics to merge "
       "into joint_states_topic (e.g. [puppet_left/joint_states, puppet_right/joint_states]; relative names follow "
       "the namespace, absolute ones reach a driver outside it). It publishes only when every joint of every arm's "
       "joint_names is in the latest message of exactly one source, received within max_age_s: never a joint it "
       "has not heard.", (ROLE_MERGER,), array_type="string"),
    _p("source_prefixes", [], "Prepended to the joint names of each source, one per source_topics entry ([] = "
       "none): drivers that publish unprefixed names (waist, ..., gripper) become left_waist, ...", (ROLE_MERGER,),
       array_type="string"),
    _p("source_exclude", [], "Joints to ignore in one source's messages, as 'TOPIC:JOINT' (JOINT with its prefix, "
       "e.g. 'puppet_left/joint_states:left_gripper' when a gripper node publishes it too): a joint in two "
       "sources' messages stops the output.", (ROLE_MERGER,), array_type="string"),
    _p("max_age_s", 0.1, "A source whose latest message was received longer ago than this many seconds is stale: "
       "nothing is published until it is fresh again (its arm's state would be old). At most 1 s.", (ROLE_MERGER,),
       read_only=False, float_range=(0.001, 1.0)),
)

_RECORDER: tuple[ParamSpec, ...] = (
    _p("output_dir", "~/rtc_episodes", "Directory for episode bags (~ expanded; checked writable at start).", _REC),
    _p("topics", RECORDER_TOPICS, "Topics to record (relative or absolute names).", _REC, array_type="string"),
    _p("topic_patterns", RECORDER_PATTERNS, "Regexes: also record every topic under the recorder's namespace whose resolved name matches.",
       _REC, array_type="string"),
    _p("camera_topics", [], "Camera topics to record (optional).", _REC, array_type="string"),
    _p("required_topics", ["joint_states"], "Topics (recorded too) that every episode needs: one with no message in "
       "an episode is warned at its close and listed in the sidecar's silent_topics, as are the camera_topics ([''] "
       "= none; per-arm joint states without joint_state_merger: name them here).", _REC, array_type="string"),
    _p("topic_types", [], "Explicit types 'name=pkg/msg/Type' (subscribe without waiting for discovery).",
       _REC, array_type="string"),
    _p("control_topic", "rtc/episode", "Episode control topic (std_msgs/String JSON).", _REC),
    _p("status_topic", "rtc/episode_status", "Episode status topic (std_msgs/String JSON).", _REC),
    _p("param_nodes", RECORDER_PARAM_NODES, "Nodes whose parameters are stored with each episode ([] = none).",
       _REC, array_type="string"),
    _p("min_free_mb", 500.0, "Refuse to start (node / episode) below this free space in MB.", _REC,
       read_only=False, float_range=(0.0, 1e9)),
    _p("stop_free_mb", 50.0, "Close the running episode below this free space in MB (must be below min_free_mb; "
       "0 = never).", _REC, read_only=False,
       float_range=(0.0, 1e9)),
    _p("flush_period", 0.5, "Seconds between writes + fsyncs of buffered messages (> 0); a SIGKILL or power "
       "loss loses at most this plus 0.1 s.", _REC,
       float_range=(0.01, 3600.0)),
    _p("discovery_period", 0.5, "Seconds between topic discovery scans.", _REC, read_only=False,
       float_range=(0.01, 3600.0)),
    _p("stop_grace", 0.3, "Seconds messages are still recorded after 'stop' (in flight).", _REC,
       read_only=False, float_range=(0.0, 60.0)),
    _p("max_duration", 0.0, "Close an episode after this many seconds (0 = never).", _REC, read_only=False,
       float_range=(0.0, 1e7)),
    _p("param_wait", 5.0, "Seconds to keep asking param_nodes that are not (yet) discovered at episode start.",
       _REC, read_only=False, float_range=(0.0, 3600.0)),
    _p("compression", "none", "MCAP chunk compression: none or zstd.", _REC, choices=COMPRESSIONS),
    _p("prefix", "episode", "Episode bag name prefix.", _REC),
    _p("sim_status_topic", "sim/status", "The simulator's status topic (recorded): its last message's task, "
       "success and protective-stop counts go into the sidecar's 'sim' entry ('' = none).", _REC),
    _p("queue_depth", 1000, "Subscription queue depth (keep-last).", _REC, int_range=(1, 1_000_000)),
    _p("autostart", False, "Start an episode immediately (meta from 'autostart_meta').", _REC),
    _p("autostart_meta", "{}", "JSON object: meta of the autostarted episode.", _REC),
)

_SIM_SPECS: tuple[ParamSpec, ...] = (
    _p("real_time_factor", 1.0, "Simulated seconds per wall-clock second (1.0 = real time; another value needs "
       "publish_clock: true and use_sim_time on every node).", _SIM,
       read_only=False, float_range=(0.01, 100.0)),
    _p("max_episode_steps", 750, "Ticks (20 ms) after which an episode is done (truncated).", _SIM,
       int_range=(1, 10_000_000)),
    _p("reset_hold_s", 1.0, "Default seconds the start pose is held after a reset.", _SIM, read_only=False,
       float_range=(0.0, 3600.0)),
    _p("success_linger_s", 0.0, "Seconds an episode keeps running after success before 'done'.", _SIM,
       float_range=(0.0, 3600.0)),
    _p("seed", 0, "Cube seed of the first episode (-1: unseeded).", _SIM, int_range=(-1, 2**31 - 1)),
    _p("task", "transfer_cube", "Task: transfer_cube (static cube) or conveyor_cube (cube on a belt of random "
       "speed; docs/sim_arms.md).", _SIM, choices=SIM_TASKS),
    _p("protective_stops", True, "Arms stop on commands beyond the ViperX velocity/torque limits (docs/sim_arms.md).",
       _SIM),
    _p("protective_stop_recovery_s", 1.0, "Seconds an arm holds its position after a protective stop.", _SIM,
       float_range=(0.0, 60.0)),
    _p("protective_stop_topic", "sim/protective_stops", "Protective stop events (std_msgs/String JSON, relative).",
       _SIM),
    _p("robot_stopped_topic", "robot_stopped", "sensor_msgs/JointState: the joints of the arms holding after a "
       "protective stop and their held positions, empty while none (published on every change and with the "
       "status; transient local), relative; '' = not published.", _SIM),
    _p("start_hold_s", 0.0, "Seconds the first episode holds the start pose.", _SIM, float_range=(0.0, 3600.0)),
    _p("joint_states_topic", "joint_states", "Joint state topic (sensor_msgs/JointState, relative).", _SIM),
    _p("progress_topic", "rtc/progress", "Task progress topic (std_msgs/Int32, relative).", _SIM),
    _p("status_topic", "sim/status", "Episode status (std_msgs/String JSON, relative).", _SIM),
    _p("reset_topic", "sim/reset", "Episode reset requests (std_msgs/String JSON, relative).", _SIM),
    _p("status_period", 0.2, "Seconds between periodic status messages.", _SIM, read_only=False,
       float_range=(0.01, 3600.0)),
    _p("publish_clock", False, "Publish /clock with simulated time.", _SIM),
    _p("camera_topic", "cam_high/image_raw", "Camera image topic (sensor_msgs/Image, relative).", _SIM),
    _p("camera", "workspace", "'workspace' (top-down free camera) or an MJCF camera name.", _SIM),
    _p("camera_rate_hz", 10.0, "Camera rate in Hz (0 disables; at most 50).", _SIM, float_range=(0.0, 50.0)),
    _p("camera_width", SIM_CAMERA["width"], "Image width in pixels (the model's offscreen buffer: 1..640).",
       _SIM, int_range=(1, 640)),
    _p("camera_height", SIM_CAMERA["height"], "Image height in pixels (1..480).", _SIM, int_range=(1, 480)),
    _p("camera_lookat", SIM_CAMERA["lookat"], "workspace camera: look-at point x, y, z (m).", _SIM,
       array_type="double"),
    _p("camera_distance", SIM_CAMERA["distance"], "workspace camera: distance from the look-at point (m).",
       _SIM, float_range=(0.01, 100.0)),
    _p("camera_azimuth", SIM_CAMERA["azimuth"], "workspace camera: azimuth (deg).", _SIM,
       float_range=(-360.0, 360.0)),
    _p("camera_elevation", SIM_CAMERA["elevation"], "workspace camera: elevation (deg, -90 = straight down).",
       _SIM, float_range=(-90.0, 90.0)),
)

#: every parameter of every role
SPECS: tuple[ParamSpec, ...] = _RTC + _MERGER + _RECORDER + _SIM_SPECS


def check_role(role: str) -> None:
    """Raise ValueError unless ``role`` is one of :data:`ROLES`."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")


def specs_for(role: str) -> list[ParamSpec]:
    """The parameters a node of ``role`` declares (not the per-arm ones)."""
    check_role(role)
    return [s for s in SPECS if role in s.roles]


def arm_names(role: str, values: dict[str, Any]) -> list[str]:
    """The arms of a node: the ``arms`` parameter, or the sim's fixed :data:`SIM_ARMS`."""
    if role == ROLE_SIM:
        return list(SIM_ARMS)
    arms = values.get("arms")
    return [str(a) for a in arms] if isinstance(arms, (list, tuple)) else []


def writable_names(role: str) -> set[str]:
    """Names of the parameters of ``role`` that may change at run time."""
    return {s.name for s in specs_for(role) if not s.read_only}
