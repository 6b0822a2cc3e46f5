"""Declaring the schema on an rclpy node, and applying validated run-time changes.

:func:`declare_and_validate` declares every parameter of a role with a
:class:`~rcl_interfaces.msg.ParameterDescriptor` (description, range, ``read_only`` for structural
ones), validates the values and returns the :class:`NodeParams`. Afterwards a ``ros2 param set`` of
a writable parameter is validated with all the node's other values (:func:`validate`); a refused
one answers ``successful: false`` with the :class:`ParameterError` text (parameter and value named)
and leaves the old value. An accepted one updates the returned object in place, then
``on_change(name, value)`` runs (e.g. to re-create a timer). Read-only ones are refused by rclpy.
"""

from __future__ import annotations

import sys
from array import array
from typing import Any, Callable

from rtc_ros.nodes.params.arm_schema import ArmSpec, arm_specs_for
from rtc_ros.nodes.params.schema import ROLE_INFERENCE, ROLE_SIM, ParamSpec, arm_names, specs_for, writable_names
from rtc_ros.nodes.params.notes import misspelt_error, moved_parameters, unknown_parameters, unknown_text
from rtc_ros.nodes.params.validate import NodeParams, ParameterError, validate
from rtc_ros.nodes.params.yaml_file import (StraySectionError, applied_in_files, cli_overrides, files_setting,
                                            same_value, stray_in_files)

#: the process's ROS arguments when rclpy was initialised with other than ``sys.argv`` (``spin_node(args=...)``)
GLOBAL_ARGV: list[str] = []

#: called after a writable parameter changed: ``on_change(name, new_value)``
OnChange = Callable[[str, Any], None]

_ARRAY_KINDS = {"string_array": "string", "double_array": "double"}


def descriptor(spec: ParamSpec | ArmSpec) -> Any:
    """The ``ParameterDescriptor`` of a spec (description, range, choices, ``read_only``)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    if isinstance(spec, ArmSpec):
        return ParameterDescriptor(description=spec.description, read_only=True)
    d = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.int_range is not None:
        d.integer_range = [IntegerRange(from_value=spec.int_range[0], to_value=spec.int_range[1], step=0)]
    if spec.float_range is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.float_range[0]),
                                                     to_value=float(spec.float_range[1]), step=0.0)]
    if spec.choices is not None:
        d.additional_constraints = "one of: " + ", ".join(spec.choices)
    return d


def _declare(node: Any, name: str, default: Any, desc: Any, array_type: str | None) -> Any:
    """Declare one parameter; an empty list (given or as override) is read as ``[]``."""
    from rclpy.exceptions import ParameterException
    from rclpy.parameter import Parameter

    try:
        if array_type is not None and not default:
            ptype = Parameter.Type.STRING_ARRAY if array_type == "string" else Parameter.Type.DOUBLE_ARRAY
            value = node.declare_parameter(name, ptype, desc).value
        else:
            value = node.declare_parameter(name, default, desc).value
    except ParameterException as exc:
        override = getattr(node, "_parameter_overrides", {}).get(name)
        value = override.value if override is not None else default
        hint = (" (a floating-point parameter: write e.g. 50.0, not 50)"
                if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool) else "")
        raise ParameterError(name, value, f"{exc}{hint}") from exc
    if array_type is not None:
        return [] if value is None else list(value)  # a params file's `[]` arrives unset
    return value


def node_argv(kwargs: dict[str, Any]) -> list[str]:
    """The command line a node built with ``Node(..., **kwargs)`` reads its ROS arguments from: its own
    ``cli_args`` after the process's (unless ``use_global_arguments=False``): the node's own ``-p`` wins."""
    own = list(kwargs.get("cli_args") or [])
    return (list(GLOBAL_ARGV or sys.argv) if kwargs.get("use_global_arguments", True) else []) + own


def declare_and_validate(node: Any, role: str, on_change: OnChange | None = None,
                         argv: list[str] | None = None) -> NodeParams:
    """Declare every parameter of ``role`` on ``node``, read and validate them, watch run-time sets.

    ``argv``: the node's command line (:func:`node_argv`; default the process's), whose params files are searched
    for sections written for this node's name in the root namespace while it runs in another (ignored by rcl).

    Returns:
        The validated parameters; writable fields change in place after an accepted set.

    Raises:
        ParameterError: naming the offending parameter (rclpy's type/range errors are converted), or
        StraySectionError (not for the simulator: a warning); ``exc.node`` is the node's full name, a
        ParameterError's ``exc.set_in`` where the value came from (:func:`files_setting`).
    """
    argv = list(sys.argv if argv is None else argv)
    try:
        return _declare_and_validate(node, role, on_change, argv)
    except ParameterError as exc:
        exc.node = node.get_fully_qualified_name()
        exc.set_in = files_setting(argv, exc.node, exc.name, exc.value)  # (which of several files / -p gave it)
        raise


def _declare_and_validate(node: Any, role: str, on_change: OnChange | None, argv: list[str]) -> NodeParams:
    for text, addressed in stray_in_files(argv, node.get_name(), node.get_namespace()):
        if role != ROLE_SIM and not addressed:  # (before the values: their errors would mislead, e.g. 'policy_spec
            raise StraySectionError(text)  # is required'; addressed: a file shared with a root-namespace robot)
        node.get_logger().warn(text)
    raw: dict[str, Any] = {}
    for spec in specs_for(role):
        raw[spec.name] = _declare(node, spec.name, spec.default, descriptor(spec), spec.array_type)
    for arm in arm_names(role, raw):
        for aspec in arm_specs_for(role):
            name = f"{arm}.{aspec.suffix}"
            raw[name] = _declare(node, name, aspec.default(arm), descriptor(aspec), _ARRAY_KINDS.get(aspec.kind))
    params = validate(raw, role)
    overrides = getattr(node, "_parameter_overrides", {})  # what the params files / -p gave this node
    given_arms = getattr(overrides.get("arms"), "value", None) or ()  # (a node without arms: the others' under /**)
    arms = arm_names(role, raw) or [str(a) for a in given_arms]
    for name, meant in unknown_parameters(sorted(overrides), arms):
        if "." in name and not arms:  # (a node without arms -- the recorder -- not given the others' `arms` either
            continue  # (they are in their own sections): their per-arm keys under /** cannot be judged -- an audit: it
            # refused a file they took)
        value = getattr(overrides[name], "value", overrides[name])
        refusal = misspelt_error(name, list(value) if isinstance(value, array) else value, meant, arms)
        if refusal is not None and role != ROLE_SIM:  # a typo in a limit must not switch it off silently (the
            # simulator's arms are fixed: a robot's params file beside it is not its own)
            raise refusal
        node.get_logger().warn(f"params file: {unknown_text(name, meant)}")
    executor = applied_in_files(argv, f"{node.get_namespace().rstrip('/')}/chunk_executor") if role == ROLE_INFERENCE \
        else {}
    for name in sorted(overrides):  # (under /** it works: info; in this node's section only, the executor's watchdog
        for text in moved_parameters([name], role):  # is off for it: a warning -- an upgrade walkthrough)
            if name in executor:
                node.get_logger().info(f"params file: {text}")
            else:
                node.get_logger().warn(f"params file: {text}; the params files give chunk_executor none: it runs "
                                       "without it unless its own params file sets it")
    for name, wanted in cli_overrides(argv).items():  # ROS lets a params file's node section win over -p
        got = list(raw[name]) if isinstance(raw.get(name), (list, array)) else raw.get(name)
        if name in raw and not same_value(got, wanted):
            node.get_logger().warn(f"-p {name}:={wanted!r} did not apply, {name} is {got!r}: a params file's section for "
                                   "this node sets it, and ROS lets that win over -p; give the value in a second "
                                   "--params-file (later files win)")
    watch(node, role, raw, params, on_change)
    return params


def watch(node: Any, role: str, raw: dict[str, Any], params: NodeParams, on_change: OnChange | None) -> None:
    """Validate run-time sets of ``role``'s writable parameters and apply them to ``params``."""
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.parameter import Parameter

    writable = writable_names(role)
    floats = {s.name for s in specs_for(role) if s.float_range is not None}
    pending: dict[str, Any] = {}

    def coerce(parameters: list[Parameter]) -> list[Parameter]:
        # `ros2 param set node period 2` sends an integer: accept it for a floating-point parameter
        return [Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
                if p.name in floats and p.type_ == Parameter.Type.INTEGER else p for p in parameters]

    def check(parameters: list[Parameter]) -> SetParametersResult:
        mine = {p.name: p.value for p in parameters if p.name in writable}
        if not mine:
            return SetParametersResult(successful=True)
        try:
            checked = validate({**raw, **mine}, role, files=False)
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        pending.clear()
        pending.update({name: checked.values[name] for name in mine})
        return SetParametersResult(successful=True)

    def apply(parameters: list[Parameter]) -> None:
        changed = {p.name: pending[p.name] for p in parameters if p.name in pending}
        pending.clear()
        for name, value in changed.items():
            raw[name] = value
            old = params.values.get(name)
            params.values[name] = value
            if on_change is not None and old != value:
                on_change(name, value)

    if hasattr(node, "add_pre_set_parameters_callback"):
        node.add_pre_set_parameters_callback(coerce)
    if hasattr(node, "add_post_set_parameters_callback"):
        node.add_on_set_parameters_callback(check)
        node.add_post_set_parameters_callback(apply)
    else:  # older rclpy: apply as soon as it is accepted
        def check_and_apply(parameters: list[Parameter]) -> SetParametersResult:
            result = check(parameters)
            if result.successful:
                apply(parameters)
            return result

        node.add_on_set_parameters_callback(check_and_apply)
