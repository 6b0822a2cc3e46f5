"""Bimanual RTC bringup on a real robot: chunk_executor + policy_inference from one params file.

    ros2 launch rtc_ros bimanual.launch.py policy_spec:=/path/to/policy.yaml
    ros2 launch rtc_ros bimanual.launch.py policy_spec:=/path/to/policy.yaml namespace:=robot1 recorder:=episode
    ros2 launch rtc_ros bimanual.launch.py policy_spec:=/path/to/policy.yaml merge_joint_states:=true
    ros2 launch rtc_ros bimanual.launch.py nodes:=executor                               # the robot's computer
    ros2 launch rtc_ros bimanual.launch.py nodes:=inference policy_spec:=/path/to/policy.yaml  # the GPU machine

Arguments: params_file (default: the package's config/bimanual.yaml), namespace (all nodes; their
topics are relative, so they follow it, except /diagnostics), policy_spec (required: exported as
RTC_POLICY_SPEC, which the params file's policy_spec expands; its default is RTC_POLICY_SPEC from the
environment, else empty, and policy_inference refuses to start without one), use_sim_time, recorder (none | episode:
episode_recorder into output_dir, episodes started/stopped on rtc/episode | rosbag: ros2 bag record
into bag_dir, ROS 2 installs only), merge_joint_states (true: also joint_state_merger, for drivers that
publish one joint state topic per arm; its section of the params file names them), nodes (all | executor:
chunk_executor, and the merger if asked | inference: policy_inference; for the policy on another machine
of the same ROS domain, with the same params file and namespace on both; never `all` on both: two
executors on the same controllers command nothing). Without ROS launch, ``rtc_bringup`` starts the same
nodes (``--only``).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

from rtc_ros.nodes.launch_support import recorder, recorder_arguments


def generate_launch_description():
    share = get_package_share_directory("rtc_ros")
    params = [LaunchConfiguration("params_file"), {"use_sim_time": LaunchConfiguration("use_sim_time")}]
    namespace = LaunchConfiguration("namespace")
    nodes = LaunchConfiguration("nodes")

    def starts(*choices: str) -> IfCondition:  # nodes:= is one of choices
        return IfCondition(PythonExpression(["'", nodes, "' in ", repr(choices)]))

    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "bimanual.yaml"),
                              description="params YAML for all nodes"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of all nodes"),
        DeclareLaunchArgument("policy_spec", default_value=os.environ.get("RTC_POLICY_SPEC", ""),
                              description="policy spec YAML (exported as RTC_POLICY_SPEC)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock"),
        DeclareLaunchArgument("merge_joint_states", default_value="false", choices=["true", "false"],
                              description="also start joint_state_merger (per-arm joint state topics -> joint_states)"),
        DeclareLaunchArgument("nodes", default_value="all", choices=["all", "executor", "inference"],
                              description="which side to start: all, executor (the robot's computer: chunk_executor "
                                          "and the merger) or inference (policy_inference, e.g. on a GPU machine)"),
        *recorder_arguments(default="none", output_dir="~/rtc_episodes"),
        SetEnvironmentVariable("RTC_POLICY_SPEC", LaunchConfiguration("policy_spec")),
        recorder(params),
        Node(package="rtc_ros", executable="chunk_executor", name="chunk_executor", namespace=namespace,
             parameters=params, output="screen", emulate_tty=True, condition=starts("all", "executor")),
        Node(package="rtc_ros", executable="policy_inference", name="policy_inference", namespace=namespace,
             parameters=params, output="screen", emulate_tty=True, condition=starts("all", "inference")),
        Node(package="rtc_ros", executable="joint_state_merger", name="joint_state_merger", namespace=namespace,
             parameters=params, output="screen", emulate_tty=True,
             condition=IfCondition(PythonExpression(["'", LaunchConfiguration("merge_joint_states"), "' == 'true' and '",
                                                     nodes, "' in ('all', 'executor')"]))),
    ])
