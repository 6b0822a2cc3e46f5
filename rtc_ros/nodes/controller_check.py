"""chunk_executor's check of the controllers behind ``output_type: joint_trajectory``.

The executor sends one single-point ``JointTrajectory`` per tick (the point one period ahead). ros2_control's
``joint_trajectory_controller`` starts every new trajectory from a "point before" it: with its defaults
that is the **measured** state, so a moving arm's setpoint jumps back by its tracking lag 50 times a
second and is then driven to the new point within a period -- a vibration at the tick rate. With
``interpolate_from_desired_state: true`` (Jazzy; on Humble ``open_loop_control: true``) it starts from its
last command instead, and interpolates between the executor's commands at its own rate.

Each node subscribing to an arm's command topic is asked once for those two parameters (the controller
node is the subscriber; it has them if it is a joint_trajectory_controller). One that has either and has
both false is reported (a warning now, and in ``/diagnostics``); a node with neither (another controller,
a relay) is not judged.
"""

from __future__ import annotations

from typing import Any

from rclpy.parameter_client import AsyncParameterClient

#: the parameters asked for; either true is fine
PARAMS = ("interpolate_from_desired_state", "open_loop_control")
_BOOL = 1  # rcl_interfaces/ParameterType PARAMETER_BOOL


class TrajectoryControllerCheck:
    """Asks the subscribers of ``topics`` (resolved names) for :data:`PARAMS`; :attr:`problems` holds one
    line per misconfigured controller."""

    def __init__(self, node: Any, topics: list[str], callback_group: Any = None) -> None:
        self.node, self.topics, self.group = node, list(topics), callback_group
        self.problems: dict[str, str] = {}  # controller node -> what is wrong
        self._asked: dict[str, AsyncParameterClient] = {}  # controller node -> its client (asked or asking)

    def poll(self) -> None:
        """Ask every subscriber not asked yet whose parameter services are up (call it periodically)."""
        for topic in self.topics:
            for info in self.node.get_subscriptions_info_by_topic(topic):
                name = (info.node_namespace.rstrip("/") + "/" + info.node_name) if info.node_name else ""
                if not name or name in self._asked and self._asked[name] is None:
                    continue
                client = self._asked.get(name) or AsyncParameterClient(self.node, name, callback_group=self.group)
                self._asked[name] = client
                if client.services_are_ready():
                    self._asked[name] = None  # asked: never again
                    client.get_parameters(list(PARAMS)).add_done_callback(
                        lambda f, n=name, t=topic: self._on_answer(n, t, f))

    def _on_answer(self, name: str, topic: str, future: Any) -> None:
        result = future.result() if future.exception() is None else None
        if result is None:
            return
        values = {k: v.bool_value for k, v in zip(PARAMS, result.values) if v.type == _BOOL}
        if not values or any(values.values()):
            return  # not a joint_trajectory_controller, or one that interpolates from its last command
        text = (f"{name} (subscribes {topic}) has {' and '.join(f'{k}: false' for k in values)}: as a "
                "joint_trajectory_controller it starts each of the executor's one-point trajectories (one per tick) "
                "from the measured position, so the setpoint jumps back by the arm's tracking lag every tick; set "
                "interpolate_from_desired_state: true (Humble: open_loop_control: true) in its parameters")
        self.problems[name] = text
        self.node.get_logger().warn(text)
