"""policy_inference asks the running chunk_executor for its shared settings and arm limits and compares them.

The guidance target is the executor's commands as policy_inference models them (:mod:`rtc_ros.runtime.hold_model`:
its clamp at ``max_step`` and the joint limits, its acceleration limit, its braking hold), from the values the
inference node was given; the rate, method, ``H`` and ``s_min`` must be the executor's too. ``rtc_bringup``
compares the two nodes' values when it starts both from one params file
(:func:`~rtc_ros.nodes.params.notes.hold_model_notes`); a split launch (the policy on a GPU workstation, the executor
on the robot's computer: one node per machine, so nothing compares them at start, and the two copies of the file
or their overrides may drift) is checked here instead: once per executor process (the node publishing
``rtc/executor_state``), over its parameter services, and each difference is logged as a warning and kept for
the diagnostics. Nothing is adopted: the node keeps using its own values (``ros2 param get`` shows what it uses).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rtc_ros.nodes.params import NodeParams, ParameterError, validate
from rtc_ros.nodes.params.notes import hold_model_notes
from rtc_ros.nodes.params.schema import ROLE_EXECUTOR

#: the executor's parameters the model depends on, per arm
ARM_KEYS = ("joint_names", "lower_limits", "upper_limits", "max_step", "max_accel", "gripper_joints")


#: shared parameters that must be equal (a difference: chunks refused, or executed in another mode)
SHARED_KEYS = ("rate_hz", "method", "horizon", "s_min")


def wanted_names(own: NodeParams) -> list[str]:
    """The executor's parameters to fetch for ``own`` (policy_inference's parameters): the shared ones (the rate
    first) and the arms' joint names and limits."""
    return [*SHARED_KEYS] + [f"{arm.name}.{key}" for arm in own.arms for key in ARM_KEYS]


def executor_differences(own: NodeParams, fetched: dict[str, Any]) -> list[str]:
    """The differences between policy_inference's (``own``) model of the executor and the executor's values
    ``fetched`` (``name: value``; None: not set there). Raises :class:`ParameterError` naming a value that does
    not validate as the executor's (an executor of another version)."""
    values: dict[str, Any] = {"arms": [arm.name for arm in own.arms]}
    values.update({k: v for k, v in fetched.items() if v is not None and v != []})  # None: not set there
    executor = validate(values, ROLE_EXECUTOR)
    notes = [f"{key} is {executor.values[key]!r} for chunk_executor but {own.values[key]!r} for policy_inference "
             "(give it under /** in both files)" for key in SHARED_KEYS if executor.values[key] != own.values[key]]
    return notes + hold_model_notes(executor, own)


#: seconds before an unanswered check is asked again (the executor died between its services and the answer)
RETRY_S = 5.0


class ExecutorParamsCheck:
    """Polled from a timer of ``node`` (policy_inference; ``own``: its parameters): finds the publishers of the
    report topic ``topic`` and checks each once (:func:`executor_differences`) -- again when it is another process under
    the same name (a restarted executor). ``notes``: the differences of the executors there now."""

    def __init__(self, node: Any, own: NodeParams, topic: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.node, self.own, self.topic, self._clock = node, own, topic, clock
        self._notes: dict[str, list[str]] = {}  # executor's fully qualified name -> its differences
        self._done: dict[str, bytes] = {}  # name -> the publisher (endpoint gid) checked
        self._pending: dict[str, tuple[bytes, float, dict[str, Any]]] = {}  # name -> (gid, asked at, answers so far)
        self._clients: dict[str, Any] = {}

    @property
    def notes(self) -> list[str]:
        return [f"{name}: {note}" for name, notes in sorted(self._notes.items()) for note in notes]

    def poll(self) -> None:
        """Ask each new executor whose parameter services are up (the answers arrive on the node's executor)."""
        from rclpy.parameter_client import AsyncParameterClient

        live = {info.node_namespace.rstrip("/") + "/" + info.node_name: bytes(info.endpoint_gid)
                for info in self.node.get_publishers_info_by_topic(self.topic)}
        for name in [n for n in self._notes if n not in live]:  # gone: its notes with it
            del self._notes[name]
        now = self._clock()
        for name, gid in live.items():
            pending = self._pending.get(name)
            if self._done.get(name) == gid or (pending and pending[0] == gid and now - pending[1] < RETRY_S):
                continue
            client = self._clients.get(name) or self._clients.setdefault(name, AsyncParameterClient(self.node, name))
            if not client.services_are_ready():
                continue
            # a retry keeps the answers so far and asks the rest (before 2026-12-07 it started over: under load,
            # when 16 answers took longer than RETRY_S, no check ever completed -- seen once in CI)
            got: dict[str, Any] = pending[2] if pending and pending[0] == gid else {}
            self._pending[name] = (gid, now, got)
            for key in [k for k in wanted_names(self.own) if k not in got]:  # one per request: a name the executor
                # has no value for empties a reply
                client.get_parameters([key]).add_done_callback(
                    lambda f, name=name, gid=gid, key=key, got=got: self._answered(name, gid, key, got, f))

    def _answered(self, name: str, gid: bytes, key: str, got: dict[str, Any], future: Any) -> None:
        from rclpy.parameter import parameter_value_to_python

        pending = self._pending.get(name)
        if pending is None or pending[2] is not got:
            return  # an older check's answer
        log = self.node.get_logger()
        try:
            values = future.result().values
            got[key] = parameter_value_to_python(values[0]) if len(values) == 1 else None
            if len(got) < len(wanted_names(self.own)):
                return
            del self._pending[name]
            self._done[name] = gid
            if got["rate_hz"] is None:
                log.info(f"{name} publishes {self.topic} but has no rate_hz: not a chunk_executor, not compared")
                return
            self._notes[name] = executor_differences(self.own, got)
        except (ParameterError, ValueError, TypeError, AttributeError, RuntimeError) as exc:
            log.warn(f"could not compare {name}'s limits with this node's: {exc}")
            return
        for note in self._notes[name]:
            log.warn(f"{name}: {note}")
        if not self._notes[name]:
            log.info(f"{name}'s joint names, max_step, joint limits, max_accel and rate are this node's: its "
                     "commands are modelled with the executor's own values")
