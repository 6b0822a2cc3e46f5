"""chunk_executor's check of the controllers behind ``output_type: joint_trajectory``.

The executor sends one single-point ``JointTrajectory`` per tick (the point one period ahead). ros2_control's
``joint_trajectory_controller`` starts every new trajectory from a "point before" it: with its defaults
that is the **measured** state, so a moving arm's setpoint jumps back by its tracking lag 50 times a
second and is then driven to the new point within a period -- a vibration at the tick rate. With
``interpolate_from_desired_state: true`` (Jazzy; on Humble ``open_loop_control: true``) it starts from its
last command instead, and interpolates between the executor's commands at its own rate.

Each node subscribing to an arm's command topic is asked once for each of those two parameters (the
controller node is the subscriber; it has one or both if it is a joint_trajectory_controller). One whose
parameters of the two are all false is reported (a warning now, and in ``/diagnostics``); a node with
neither (another controller, a relay) is not judged.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rcl_interfaces.srv import GetParameters

from rtc_ros.nodes.contention import node_fq_name

#: the parameters asked for (one request each: a node that lacks one answers a joint request with nothing)
PARAMS = ("interpolate_from_desired_state", "open_loop_control")
_BOOL = 1  # rcl_interfaces/ParameterType PARAMETER_BOOL
#: a request unanswered this long (s) is sent again
ASK_AGAIN_S = 5.0


class TrajectoryControllerCheck:
    """Asks the subscribers of ``topics`` (resolved names) for :data:`PARAMS`; :meth:`problems` gives one line
    per misconfigured controller. A controller that leaves the topic is forgotten (asked again if it returns,
    e.g. reloaded with the advice applied)."""

    def __init__(self, node: Any, topics: list[str], callback_group: Any = None) -> None:
        self.node, self.topics, self.group = node, list(dict.fromkeys(topics)), callback_group
        self._lock = threading.Lock()  # (answers came on another executor thread in timer mode before 2026-12-07)
        self._problems: dict[str, str] = {}  # controller node -> what is wrong
        # one get_parameters client per controller node, kept (never destroyed: destroying one from a callback
        # under a MultiThreadedExecutor can crash rclpy; a few clients in all)
        self._clients: dict[str, Any] = {}
        self._answers: dict[str, dict[str, bool | None]] = {}  # controller node -> {param: value, None: lacks it}
        self._asked_at: dict[str, float] = {}  # monotonic s; unanswered for ASK_AGAIN_S: asked again

    def problems(self) -> list[str]:
        with self._lock:
            return list(self._problems.values())

    def poll(self) -> None:
        """Ask every new subscriber whose parameter service is up (call it periodically)."""
        present: dict[str, str] = {}
        for topic in self.topics:
            for info in self.node.get_subscriptions_info_by_topic(topic):
                if info.node_name:
                    present.setdefault(node_fq_name(info.node_namespace, info.node_name), topic)
        now = time.monotonic()
        with self._lock:
            for name in list(self._answers):
                unanswered = len(self._answers[name]) < len(PARAMS) and now - self._asked_at[name] > ASK_AGAIN_S
                if name not in present or unanswered:  # gone (asked again if it returns), or no answer
                    del self._answers[name]
                    self._problems.pop(name, None)
            asking = [(n, t) for n, t in present.items() if n not in self._answers]
        for name, topic in asking:
            client = self._clients.get(name)
            if client is None:
                client = self._clients[name] = self.node.create_client(GetParameters, f"{name}/get_parameters",
                                                                       callback_group=self.group)
            if not client.service_is_ready():
                continue
            with self._lock:
                self._answers[name], self._asked_at[name] = {}, now
            for param in PARAMS:
                future = client.call_async(GetParameters.Request(names=[param]))
                future.add_done_callback(lambda f, n=name, t=topic, k=param: self._on_answer(n, t, k, f))

    def _on_answer(self, name: str, topic: str, param: str, future: Any) -> None:
        result = future.result() if future.exception() is None else None
        value = result.values[0] if result is not None and len(result.values) == 1 else None
        with self._lock:
            answers = self._answers.get(name)
            if answers is None or param in answers:
                return  # forgotten meanwhile, or an answer to an earlier request
            answers[param] = value.bool_value if value is not None and value.type == _BOOL else None
            if len(answers) < len(PARAMS):
                return
            has = {k: v for k, v in answers.items() if v is not None}
            bad = bool(has) and not any(has.values())  # a joint_trajectory_controller that interpolates from the state
            text = (f"{name} (subscribes {topic}) has {' and '.join(f'{k}: false' for k in has)}: as a "
                    "joint_trajectory_controller it starts each of the executor's one-point trajectories (one per "
                    "tick) from the measured position, so the setpoint jumps back by the arm's tracking lag every "
                    "tick; set interpolate_from_desired_state: true (Humble: open_loop_control: true) in its "
                    "parameters") if bad else ""
            if bad:
                self._problems[name] = text
        if bad:
            self.node.get_logger().warn(text)
