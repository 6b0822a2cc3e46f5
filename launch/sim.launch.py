"""The main demo as a launch file: simulated bimanual ViperX arms + RTC + episode recording.

    ros2 launch rtc_ros sim.launch.py                          # 3 episodes, rtc, +100 ms, then exits
    ros2 launch rtc_ros sim.launch.py episodes:=0 namespace:=robot1 recorder:=none method:=naive

Starts bimanual_sim (MuJoCo, real time), chunk_executor, policy_inference (policy_spec, default the
shipped policies/bimanual_cnn_h50.yaml), the recorder (recorder:=episode | rosbag | none) and
sim_episodes, which resets the sim, records and scores `episodes` episodes (0 = until Ctrl-C) and
then ends the launch (end_launch:=false: only sim_episodes ends, e.g. when this file is included beside
another robot's nodes, which the end of the launch would stop too). All from params_file (default config/sim_bimanual.yaml); method,
extra_latency_ms, use_sim_time and the simulator's publish_clock (= use_sim_time) and real_time_factor override it. use_sim_time:=true: the simulator publishes /clock and every node follows it
(real_time_factor:=0.5 then runs the simulation at half speed, as a loaded physics simulator would); under a
namespace the clock is <namespace>/clock, so two simulated robots keep their own time. A params_file that is no
file, or a numeric argument that is no number, stops the launch before any node starts. sim_episodes does not read
the params file: it uses the default topic names (rtc/chunk, rtc/episode, sim/status, sim/reset, relative to the
namespace), so a params file that renames them leaves it waiting for the nodes until its ready_timeout_s.
Report: python -m rtc_ros.report <output_dir> --out <dir>.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import EqualsSubstitution, LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from rtc_ros.nodes.launch_support import check_arguments, recorder, recorder_arguments
from rtc_ros.runtime.methods import METHODS

#: the numeric arguments, checked before any node starts: (type, lowest value)
NUMBERS = {"extra_latency_ms": (float, 0.0), "episodes": (int, 0), "real_time_factor": (float, 0.01)}
#: every node follows its own namespace's simulator: /clock becomes <namespace>/clock (an audit: a second simulated
#: robot's /clock made the first one's nodes see time jump back 24 times; without a namespace it stays /clock)
CLOCK = [("/clock", "clock")]


def generate_launch_description():
    share = get_package_share_directory("rtc_ros")
    arg = LaunchConfiguration
    namespace = arg("namespace")
    params = [arg("params_file"), {"use_sim_time": arg("use_sim_time")}]
    method = {"method": arg("method")}
    latency = {"extra_latency_ms": ParameterValue(arg("extra_latency_ms"), value_type=float)}
    episodes = Node(package="rtc_ros", executable="sim_episodes", name="sim_episodes", namespace=namespace,
                    output="screen", emulate_tty=True, remappings=CLOCK,
                    parameters=[{**method, **latency, "episodes": ParameterValue(arg("episodes"), value_type=int),
                                 "record": EqualsSubstitution(arg("recorder"), "episode"),
                                 "use_sim_time": arg("use_sim_time")}])
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "sim_bimanual.yaml"),
                              description="params YAML for all nodes"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of all nodes (one robot)"),
        DeclareLaunchArgument("policy_spec", default_value=os.path.join(share, "policies", "bimanual_cnn_h50.yaml"),
                              description="policy spec YAML"),
        DeclareLaunchArgument("method", default_value="rtc", choices=list(METHODS),
                              description="execution method (both nodes)"),
        DeclareLaunchArgument("extra_latency_ms", default_value="100.0", description="injected inference latency"),
        DeclareLaunchArgument("episodes", default_value="3", description="episodes to run, then exit (0 = forever)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", choices=["true", "false"],
                              description="the simulator publishes /clock and every node follows it"),
        DeclareLaunchArgument("real_time_factor", default_value="1.0",
                              description="simulated seconds per wall-clock second (another value than 1.0 needs "
                                          "use_sim_time:=true)"),
        DeclareLaunchArgument("end_launch", default_value="true", choices=["true", "false"],
                              description="end the whole launch when sim_episodes is done (false: when included "
                                          "beside other nodes, e.g. a second robot's)"),
        *recorder_arguments(default="episode", output_dir="~/rtc_episodes"),
        check_arguments(NUMBERS),
        recorder(params, remappings=CLOCK),
        Node(package="rtc_ros", executable="bimanual_sim", name="bimanual_sim", namespace=namespace,
             parameters=[*params, {"publish_clock": arg("use_sim_time"),
                                   "real_time_factor": ParameterValue(arg("real_time_factor"), value_type=float)}],
             output="screen", emulate_tty=True, remappings=CLOCK),
        Node(package="rtc_ros", executable="chunk_executor", name="chunk_executor", namespace=namespace,
             parameters=[*params, method], output="screen", emulate_tty=True, remappings=CLOCK),
        Node(package="rtc_ros", executable="policy_inference", name="policy_inference", namespace=namespace,
             parameters=[*params, {**method, **latency, "policy_spec": arg("policy_spec")}],
             output="screen", emulate_tty=True, remappings=CLOCK),
        episodes,
        RegisterEventHandler(OnProcessExit(target_action=episodes, on_exit=[
            EmitEvent(event=Shutdown(reason="sim_episodes finished"))]), condition=IfCondition(arg("end_launch"))),
    ])
