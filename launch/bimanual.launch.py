"""Bimanual RTC bringup on a real robot: chunk_executor + policy_inference from one params file.

    ros2 launch rtc_ros bimanual.launch.py policy_spec:=/path/to/policy.yaml
    ros2 launch rtc_ros bimanual.launch.py policy_spec:=/path/to/policy.yaml namespace:=robot1 recorder:=episode
    ros2 launch rtc_ros bimanual.launch.py policy_spec:=/path/to/policy.yaml merge_joint_states:=true

Arguments: params_file (default: the package's config/bimanual.yaml), namespace (all nodes; their
topics are relative, so they follow it, except /diagnostics), policy_spec (required: exported as
RTC_POLICY_SPEC, which the params file's policy_spec expands; its default is RTC_POLICY_SPEC from the
environment, else empty, and policy_inference refuses to start without one), use_sim_time, recorder (none | episode:
episode_recorder into output_dir, episodes started/stopped on rtc/episode | rosbag: ros2 bag record
into bag_dir, ROS 2 installs only), merge_joint_states (true: also joint_state_merger, for drivers that
publish one joint state topic per arm; its section of the params file names them). Without ROS launch,
``rtc_bringup`` starts the same nodes.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from rtc_ros.nodes.launch_support import recorder, recorder_arguments


def generate_launch_description():
    share = get_package_share_directory("rtc_ros")
    params = [LaunchConfiguration("params_file"), {"use_sim_time": LaunchConfiguration("use_sim_time")}]
    namespace = LaunchConfiguration("namespace")
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "bimanual.yaml"),
                              description="params YAML for all nodes"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of all nodes"),
        DeclareLaunchArgument("policy_spec", default_value=os.environ.get("RTC_POLICY_SPEC", ""),
                              description="policy spec YAML (exported as RTC_POLICY_SPEC)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock"),
        DeclareLaunchArgument("merge_joint_states", default_value="false", choices=["true", "false"],
                              description="also start joint_state_merger (per-arm joint state topics -> joint_states)"),
        *recorder_arguments(default="none", output_dir="~/rtc_episodes"),
        SetEnvironmentVariable("RTC_POLICY_SPEC", LaunchConfiguration("policy_spec")),
        recorder(params),
        Node(package="rtc_ros", executable="chunk_executor", name="chunk_executor", namespace=namespace,
             parameters=params, output="screen", emulate_tty=True),
        Node(package="rtc_ros", executable="policy_inference", name="policy_inference", namespace=namespace,
             parameters=params, output="screen", emulate_tty=True),
        Node(package="rtc_ros", executable="joint_state_merger", name="joint_state_merger", namespace=namespace,
             parameters=params, output="screen", emulate_tty=True,
             condition=IfCondition(LaunchConfiguration("merge_joint_states"))),
    ])
