"""Pieces shared by ``launch/bimanual.launch.py`` and ``launch/sim.launch.py`` (needs ROS 2 ``launch``).

Only the launch files use it (``launch``/``launch_ros`` are imported inside the functions that build
actions, so the rest is importable and tested without ROS launch). The ``recorder`` argument
(``episode | rosbag | none``):

* ``episode``: rtc_ros's ``episode_recorder`` (one MCAP bag + JSON sidecar per episode, started and
  stopped on ``rtc/episode``), writing to ``output_dir``;
* ``rosbag``: ``ros2 bag record`` of the RTC topics of this namespace into ``bag_dir`` (one bag for the
  whole launch). Only a ROS 2 install has it; elsewhere the launch stops at once with an error that
  says so (the pip-only ROS CLI has no rosbag2);
* ``none``: nothing is recorded.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from typing import Any, Mapping

RECORDERS = ("episode", "rosbag", "none")
#: RTC topics for ``ros2 bag record -e`` (relative to the namespace, plus /diagnostics)
RECORD_TOPICS = r"rtc/chunk|rtc/executor_state|rtc/progress|rtc/episode|sim/status|joint_states" \
                r"|[^/]*_controller/[^/]*|[^/]*/joint_commands"


def record_regex(namespace: str, cameras: list[str] | tuple[str, ...] = ()) -> str:
    """``ros2 bag record -e`` regex: the RTC topics and the relative ``cameras`` under ``namespace`` (only there),
    the absolute ``cameras`` as they are, and /diagnostics."""
    ns = namespace.strip("/")
    prefix = "/" + re.escape(ns) + "/" if ns else "/"
    extra = "".join("|" + re.escape(c) for c in cameras if not c.startswith("/"))
    absolute = "".join(f"|^{re.escape(c)}$" for c in cameras if c.startswith("/"))  # (not under the namespace)
    return f"^{prefix}({RECORD_TOPICS}{extra})$|^/diagnostics${absolute}"


def policy_cameras(params_file: str, namespace: str = "") -> list[str]:
    """The camera topics ``policy_inference`` reads per the params file (``<topic>/compressed`` with
    ``camera_transport: compressed``): what a demonstration must hold to be trained on. The recorders record them
    beside the RTC topics (before 2026-12-07 only a recorder section's own ``camera_topics`` were recorded, and the
    shipped robot config has none: a camera policy's demonstrations had no images, found only when training)."""
    from rtc_ros.recording.params_file import load_params_file

    values = load_params_file(params_file, "policy_inference", namespace)
    topics = [str(t) for t in values.get("camera_topics") or []]
    compressed = values.get("camera_transport") == "compressed"
    return [f"{t}/compressed" if compressed else t for t in topics]


def recorder_cameras(params_file: str, namespace: str = "") -> dict[str, Any]:
    """Parameters for ``episode_recorder``: its own section's ``camera_topics``, else the policy's cameras."""
    from rtc_ros.recording.params_file import load_params_file

    if load_params_file(params_file, "episode_recorder", namespace).get("camera_topics"):
        return {}
    cams = policy_cameras(params_file, namespace)
    return {"camera_topics": cams} if cams else {}


def ros2_bag_missing() -> str | None:
    """Why ``ros2 bag`` cannot run here, or None when it can (``ros2`` on PATH and rosbag2's ``ros2bag``)."""
    if shutil.which("ros2") is None:
        return "no `ros2` executable on PATH"
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix("ros2bag")
    except PackageNotFoundError:
        return ("the ROS 2 package ros2bag (rosbag2) is not installed; `ros2 bag` exists only on a ROS 2 "
                "install, not with the pip-only ROS CLI")
    return None


def argument_error(configs: Mapping[str, str], numbers: Mapping[str, tuple[type, float]]) -> str | None:
    """Why the launch arguments ``configs`` (name -> text) cannot start the nodes, or None: ``params_file`` names no
    file (launch_ros only warns "Parameter file path is not a file" and starts every node on its defaults: an
    executor without its limits or arming step -- an audit), or an argument of ``numbers`` (name -> (int or float,
    lowest value)) is not such a number (a conversion error naming no argument, after some nodes had started)."""
    params = configs.get("params_file")
    if params is not None and not os.path.isfile(params):
        hint = " (launch does not expand '~': give the full path)" if params.startswith("~") else ""
        return f"launch argument 'params_file': no such file: {params!r}{hint}"
    for name, (kind, low) in numbers.items():
        text = configs.get(name)
        if text is None:
            continue
        try:
            value = kind(text)
        except ValueError:
            return f"launch argument '{name}': {text!r} is not {'an integer' if kind is int else 'a number'}"
        if not math.isfinite(value) or value < low:
            return f"launch argument '{name}': {text} must be a finite number >= {low:g}"
    if "real_time_factor" in numbers and float(configs.get("real_time_factor", 1.0)) != 1.0 \
            and configs.get("use_sim_time") != "true":  # (the simulator refuses it too, after the other nodes started)
        return ("launch argument 'real_time_factor': another value than 1.0 needs use_sim_time:=true (on wall time "
                "the simulator would take every second command at 0.5)")
    return None


def check_arguments(numbers: Mapping[str, tuple[type, float]] | None = None) -> Any:
    """The launch action that refuses :func:`argument_error`'s cases before any node starts (put it first)."""
    from launch.actions import OpaqueFunction

    def check(context: Any) -> list:
        why = argument_error(context.launch_configurations, numbers or {})
        if why is not None:
            raise RuntimeError(why)
        return []

    return OpaqueFunction(function=check)


def recorder_arguments(default: str, output_dir: str) -> list[Any]:
    """``DeclareLaunchArgument`` for recorder (default ``default``), output_dir and bag_dir."""
    from launch.actions import DeclareLaunchArgument

    return [
        DeclareLaunchArgument("recorder", default_value=default, choices=list(RECORDERS),
                              description="episode: rtc_ros episode_recorder (bag + sidecar per episode, "
                                          "into output_dir); rosbag: ros2 bag record into bag_dir (ROS 2 "
                                          "install only); none"),
        DeclareLaunchArgument("output_dir", default_value=output_dir, description="episode_recorder's output_dir"),
        DeclareLaunchArgument("bag_dir", default_value="rtc_bag", description="output of recorder:=rosbag"),
    ]


def recorder(params: list, node_parameters: dict | None = None, remappings: list | None = None) -> Any:
    """The action behind ``recorder:=...``; ``params``: the params files (the recorder's own section applies);
    ``remappings`` for the episode_recorder node."""
    from launch.actions import ExecuteProcess, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def choose(context: Any) -> list:
        if "record" in context.launch_configurations:  # the old argument, silently ignored otherwise
            raise RuntimeError("launch argument 'record' was replaced by 'recorder': use recorder:=rosbag "
                               "(ros2 bag record) or recorder:=episode (episode_recorder)")
        kind = LaunchConfiguration("recorder").perform(context)
        namespace = LaunchConfiguration("namespace").perform(context)
        files = [p.perform(context) for p in params if hasattr(p, "perform")]  # (the params file; dicts skipped)
        if kind != "none" and context.launch_configurations.get("nodes") == "inference":
            raise RuntimeError(f"recorder:={kind} with nodes:=inference: the recorder runs beside the executor, one "
                               "per robot (give recorder:= to the launch with nodes:=executor; two would record "
                               "every episode twice)")
        if kind == "episode":
            return [Node(package="rtc_ros", executable="episode_recorder", name="episode_recorder",
                         namespace=namespace, output="screen", emulate_tty=True, remappings=remappings or [],
                         parameters=[*params, {"output_dir": LaunchConfiguration("output_dir"),
                                               **(recorder_cameras(files[0], namespace) if files else {}),
                                               **(node_parameters or {})}])]
        if kind == "rosbag":
            if remappings and namespace.strip("/") and \
                    str(context.launch_configurations.get("use_sim_time")).lower() == "true":
                raise RuntimeError("recorder:=rosbag with use_sim_time:=true under a namespace: the nodes follow "
                                   f"{namespace.strip('/')}/clock, which `ros2 bag record --use-sim-time` does not "
                                   "(it waits for /clock and writes nothing); use recorder:=episode")
            why = ros2_bag_missing()
            if why is not None:
                raise RuntimeError(f"recorder:=rosbag needs `ros2 bag record`, which is not available: {why}. "
                                   "Use recorder:=episode (rtc_ros's episode_recorder) or recorder:=none.")
            cams = policy_cameras(files[0], namespace) if files else []
            sim_time = ["--use-sim-time"] if str(context.launch_configurations.get("use_sim_time")).lower() == "true" else []
            return [ExecuteProcess(cmd=["ros2", "bag", "record", "-o", LaunchConfiguration("bag_dir"), *sim_time,
                                        "-e", record_regex(namespace, cams)], output="screen")]
        return []

    return OpaqueFunction(function=choose)
