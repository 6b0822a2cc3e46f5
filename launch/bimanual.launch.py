"""Bimanual RTC bringup on a real robot: chunk_executor + policy_inference from one params file.

    ros2 launch rtc_ros bimanual.launch.py policy_spec:=/path/to/policy.yaml
    ros2 launch rtc_ros bimanual.launch.py policy_spec:=/path/to/policy.yaml namespace:=robot1 recorder:=episode
    ros2 launch rtc_ros bimanual.launch.py policy_spec:=/path/to/policy.yaml merge_joint_states:=true
    ros2 launch rtc_ros bimanual.launch.py nodes:=executor                               # the robot's computer
    ros2 launch rtc_ros bimanual.launch.py nodes:=inference policy_spec:=/path/to/policy.yaml  # the GPU machine

Arguments: params_file (default: the package's config/bimanual.yaml; a path that is no file stops the launch
before any node starts), namespace (all nodes; their topics are relative, so they follow it, except /diagnostics),
policy_spec (the policy: given, it is policy_inference's policy_spec whatever the params file says, as rtc_bringup
--policy-spec, and is exported as RTC_POLICY_SPEC, which the shipped params file's policy_spec expands; its default
is RTC_POLICY_SPEC from the environment, else empty: then the params file's policy_spec, and policy_inference
refuses to start without one), use_sim_time (true | false), recorder (none | episode:
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
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from rtc_ros.nodes.launch_support import check_arguments, recorder, recorder_arguments


def generate_launch_description():
    share = get_package_share_directory("rtc_ros")
    params = [LaunchConfiguration("params_file"), {"use_sim_time": LaunchConfiguration("use_sim_time")}]
    namespace = LaunchConfiguration("namespace")
    nodes = LaunchConfiguration("nodes")

    def starts(*choices: str) -> IfCondition:  # nodes:= is one of choices
        return IfCondition(PythonExpression(["'", nodes, "' in ", repr(choices)]))

    def inference(context) -> list:  # the policy_spec argument, when given, wins over the params file's (an audit:
        # a file naming a policy ran it instead of policy_spec:=, which rtc_bringup --policy-spec would have run)
        spec = LaunchConfiguration("policy_spec").perform(context)
        return [Node(package="rtc_ros", executable="policy_inference", name="policy_inference", namespace=namespace,
                     parameters=[*params, *([{"policy_spec": ParameterValue(spec, value_type=str)}] if spec else [])],
                     output="screen", emulate_tty=True, condition=starts("all", "inference"))]

    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "bimanual.yaml"),
                              description="params YAML for all nodes"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of all nodes"),
        DeclareLaunchArgument("policy_spec", default_value=os.environ.get("RTC_POLICY_SPEC", ""),
                              description="policy spec YAML (exported as RTC_POLICY_SPEC)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", choices=["true", "false"],
                              description="follow /clock"),
        DeclareLaunchArgument("merge_joint_states", default_value="false", choices=["true", "false"],
                              description="also start joint_state_merger (per-arm joint state topics -> joint_states)"),
        DeclareLaunchArgument("nodes", default_value="all", choices=["all", "executor", "inference"],
                              description="which side to start: all, executor (the robot's computer: chunk_executor "
                                          "and the merger) or inference (policy_inference, e.g. on a GPU machine)"),
        *recorder_arguments(default="none", output_dir="~/rtc_episodes"),
        check_arguments(),
        SetEnvironmentVariable("RTC_POLICY_SPEC", LaunchConfiguration("policy_spec")),
        recorder(params),
        Node(package="rtc_ros", executable="chunk_executor", name="chunk_executor", namespace=namespace,
             parameters=params, output="screen", emulate_tty=True, condition=starts("all", "executor")),
        OpaqueFunction(function=inference),
        Node(package="rtc_ros", executable="joint_state_merger", name="joint_state_merger", namespace=namespace,
             parameters=params, output="screen", emulate_tty=True,
             condition=IfCondition(PythonExpression(["'", LaunchConfiguration("merge_joint_states"), "' == 'true' and '",
                                                     nodes, "' in ('all', 'executor')"]))),
    ])
