"""Bimanual RTC bringup: chunk_executor + policy_inference from one params file.

    ros2 launch rtc_ros bimanual.launch.py policy_spec:=/path/to/policy.yaml
    ros2 launch rtc_ros bimanual.launch.py namespace:=robot1 use_sim_time:=true record:=true

Arguments: params_file (default: the package's config/bimanual.yaml), namespace (both nodes; all
their topics are relative, so they follow it, except /diagnostics), policy_spec (exported as
RTC_POLICY_SPEC, which the params file's policy_spec expands), use_sim_time, record (runs
``ros2 bag record`` on the RTC topics into bag_dir). On a machine without ROS launch, the console
command ``rtc_bringup`` starts the same nodes from the same params file.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

RECORD_REGEX = r"(.*/)?(rtc/chunk|rtc/executor_state|joint_states|[^/]*controller/[^/]*|[^/]*/joint_commands)|/diagnostics"


def generate_launch_description():
    share = get_package_share_directory("rtc_ros")
    params_file = LaunchConfiguration("params_file")
    namespace = LaunchConfiguration("namespace")
    use_sim_time = LaunchConfiguration("use_sim_time")
    common = {"use_sim_time": use_sim_time}
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "bimanual.yaml"),
                              description="params YAML for both nodes"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of both nodes"),
        DeclareLaunchArgument("policy_spec", default_value=os.environ.get("RTC_POLICY_SPEC", ""),
                              description="policy spec YAML (exported as RTC_POLICY_SPEC)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock"),
        DeclareLaunchArgument("record", default_value="false", description="run ros2 bag record"),
        DeclareLaunchArgument("bag_dir", default_value="rtc_bag", description="output of ros2 bag record"),
        SetEnvironmentVariable("RTC_POLICY_SPEC", LaunchConfiguration("policy_spec")),
        Node(package="rtc_ros", executable="chunk_executor", name="chunk_executor", namespace=namespace,
             parameters=[params_file, common], output="screen", emulate_tty=True),
        Node(package="rtc_ros", executable="policy_inference", name="policy_inference", namespace=namespace,
             parameters=[params_file, common], output="screen", emulate_tty=True),
        ExecuteProcess(cmd=["ros2", "bag", "record", "-o", LaunchConfiguration("bag_dir"), "-e", RECORD_REGEX],
                       condition=IfCondition(LaunchConfiguration("record")), output="screen"),
    ])
