"""One parameter schema for the five rtc_ros nodes: declare, document, validate, apply changes.

* :mod:`.schema` -- every parameter (default, range, description, ``read_only``) per role;
* :mod:`.validate` -- ROS-free checks -> :class:`NodeParams` (:mod:`.values`: one value, :class:`ParameterError`);
* :mod:`.notes` -- warnings about valid settings: not a real arm's, unknown names, moved parameters;
* :mod:`.declare` -- :func:`declare_and_validate` on an rclpy node, run-time sets applied in place;
* :mod:`.yaml_file` -- ROS 2 params files without ROS (:func:`load_params_file`, :func:`key_matches`);
* :mod:`.paths` -- ``${VAR:-default}`` expansion and package lookup of relative paths;
* :mod:`.docs` -- the Markdown table.

One params file configures all nodes (shared values under ``/**: ros__parameters:``).
"""

from rtc_ros.nodes.params.declare import OnChange, declare_and_validate, node_argv
from rtc_ros.nodes.params.docs import describe
from rtc_ros.recording.params_file import default_joint_names
from rtc_ros.nodes.params.paths import expand_path, package_roots
from rtc_ros.nodes.params.arm_schema import ARM_SPECS, ArmSpec
from rtc_ros.nodes.params.schema import (
    ARM_JOINTS,
    BOTH,
    DEFAULT_COMMAND_TOPIC,
    NODE_NAMES,
    ROLE_EXECUTOR,
    ROLE_INFERENCE,
    ROLE_MERGER,
    ROLE_RECORDER,
    ROLE_SIM,
    ROLES,
    SPECS,
    ParamSpec,
    specs_for,
    writable_names,
)
from rtc_ros.nodes.params.notes import (chunk_age_notes, executor_notes, gripper_notes, hold_model_notes, misspelt_error,
                                       moved_parameters, unknown_parameters, unknown_text)
from rtc_ros.nodes.params.validate import (
    ArmParams,
    NodeParams,
    ParameterError,
    check_relative,
    parse_topic_types,
    validate,
)
from rtc_ros.nodes.params.yaml_file import StraySectionError, key_matches, load_params_file, stray_in_files

__all__ = [
    "node_argv", "chunk_age_notes", "StraySectionError", "stray_in_files",
    "ARM_JOINTS", "ARM_SPECS", "BOTH", "DEFAULT_COMMAND_TOPIC", "NODE_NAMES", "ROLES", "ROLE_EXECUTOR",
    "ROLE_INFERENCE", "ROLE_MERGER", "ROLE_RECORDER", "ROLE_SIM", "SPECS", "ArmParams", "ArmSpec", "NodeParams", "OnChange",
    "ParamSpec", "ParameterError", "check_relative", "declare_and_validate", "default_joint_names",
    "describe", "executor_notes", "expand_path", "gripper_notes", "hold_model_notes", "key_matches", "load_params_file", "moved_parameters", "package_roots", "parse_topic_types",
    "specs_for", "misspelt_error", "unknown_parameters", "unknown_text", "validate", "writable_names",
]
