"""policy_inference asks the running chunk_executor for its arm limits and compares them with its own.

The guidance target is the executor's commands as policy_inference models them (:mod:`rtc_ros.runtime.hold_model`:
its clamp at ``max_step`` and the joint limits, its acceleration limit, its braking hold), from the values the
inference node was given. ``rtc_bringup`` compares the two nodes' values when it starts both from one params file
(:func:`~rtc_ros.nodes.params.notes.hold_model_notes`); a split launch (the policy on a GPU workstation, the executor
on the robot's computer, each with its own file) is checked here instead: once per executor (the node publishing
``rtc/executor_state``), over its parameter services, and each difference is logged as a warning and kept for
the diagnostics. Nothing is adopted: the node keeps using its own values (``ros2 param get`` shows what it uses).
"""

from __future__ import annotations

from typing import Any

from rtc_ros.nodes.params import NodeParams, ParameterError, validate
from rtc_ros.nodes.params.notes import hold_model_notes
from rtc_ros.nodes.params.schema import ROLE_EXECUTOR

#: the executor's parameters the model depends on, per arm
ARM_KEYS = ("joint_names", "lower_limits", "upper_limits", "max_step", "max_accel")


def wanted_names(own: NodeParams) -> list[str]:
    """The executor's parameters to fetch for ``own`` (policy_inference's parameters): its rate and arm limits."""
    return ["rate_hz"] + [f"{arm.name}.{key}" for arm in own.arms for key in ARM_KEYS]


def executor_notes(own: NodeParams, fetched: dict[str, Any]) -> list[str]:
    """The differences between policy_inference's (``own``) model of the executor and the executor's values
    ``fetched`` (``name: value``; None: not set there). Raises :class:`ParameterError` naming a value that does
    not validate as the executor's (an executor of another version)."""
    values: dict[str, Any] = {"arms": [arm.name for arm in own.arms]}
    values.update({k: v for k, v in fetched.items() if v is not None and v != []})
    executor = validate(values, ROLE_EXECUTOR)
    notes = hold_model_notes(executor, own)
    if abs(executor.dt - own.dt) > 1e-12:
        notes.append(f"rate_hz is {1.0 / executor.dt:g} for chunk_executor but {1.0 / own.dt:g} for policy_inference")
    return notes


class ExecutorParamsCheck:
    """Polled from a timer of ``node`` (policy_inference; ``own``: its parameters): finds the publishers of the
    report topic ``topic`` and checks each once (:func:`executor_notes`). ``notes``: the newest differences."""

    def __init__(self, node: Any, own: NodeParams, topic: str) -> None:
        self.node, self.own, self.topic = node, own, topic
        self.notes: list[str] = []
        self.checked: set[str] = set()  # executors' fully qualified names
        self._clients: dict[str, Any] = {}

    def poll(self) -> None:
        """Start a check of each new executor whose parameter services are up (answers arrive on the executor)."""
        from rclpy.parameter_client import AsyncParameterClient

        for info in self.node.get_publishers_info_by_topic(self.topic):
            name = (info.node_namespace.rstrip("/") + "/" + info.node_name)
            if name in self.checked:
                continue
            client = self._clients.get(name) or self._clients.setdefault(name, AsyncParameterClient(self.node, name))
            if not client.services_are_ready():
                continue
            self.checked.add(name)
            future = client.get_parameters(wanted_names(self.own))
            future.add_done_callback(lambda f, n=name: self._answered(n, f))

    def _answered(self, name: str, future: Any) -> None:
        from rclpy.parameter import parameter_value_to_python

        log = self.node.get_logger()
        try:
            reply = future.result()
            fetched = {k: parameter_value_to_python(v) for k, v in zip(wanted_names(self.own), reply.values)}
            self.notes = executor_notes(self.own, fetched)
        except (ParameterError, ValueError, TypeError, AttributeError) as exc:
            log.warn(f"could not compare {name}'s limits with this node's: {exc}")
            return
        for note in self.notes:
            log.warn(f"{name}: {note}")
        if not self.notes:
            log.info(f"{name}'s max_step, joint limits, max_accel and rate are this node's: its commands are modelled "
                     "with the executor's own values")
