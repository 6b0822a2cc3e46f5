"""chunk_executor's check of the controllers behind its command topics (``output_type`` ``joint_trajectory`` and
``float64_multi_array``): every node subscribing to an arm's command topic is asked once for the parameters a
ros2_control controller declares (the controller node is the subscriber; a node without them -- a relay, another
kind of controller -- is not judged).

* ``joints`` (both; judged for a node that also declares ``interface_name``, a ``forward_command_controller``, or
  an interpolation parameter, a ``joint_trajectory_controller``): a ``forward_command_controller`` applies a ``Float64MultiArray`` in the order of its own
  ``joints``; listed in another order than the arm's ``joint_names`` (or other joints), every command would move the
  wrong joints -- a first bring-up walkthrough: 0.78 rad in one tick on the first command after arming, which the
  per-tick step limit cannot see (it acts in the executor's order). A ``joint_trajectory_controller`` maps a
  trajectory by its joint names, but rejects one naming a joint it does not own, or only some of its joints unless
  ``allow_partial_joints_goal``. Either is **wrong** (:meth:`ControllerCheck.wrong`): the executor commands
  nothing while it lasts (:class:`rtc_ros.nodes.contention.OutputGuard`, as with another publisher).
* ``interpolate_from_desired_state`` / ``open_loop_control`` (``joint_trajectory`` only): the executor sends one
  single-point ``JointTrajectory`` per tick (the point one period ahead). ``joint_trajectory_controller`` starts every
  new trajectory from a "point before" it: with its defaults that is the **measured** state, so a moving arm's
  setpoint jumps back by its tracking lag 50 times a second and is then driven to the new point within a period -- a
  vibration at the tick rate. With ``interpolate_from_desired_state: true`` (Jazzy; on Humble ``open_loop_control:
  true``) it starts from its last command instead, and interpolates between the executor's commands at its own rate.
  One whose parameters of the two are all false is a **problem** (:meth:`ControllerCheck.problems`: a warning in the
  log and ``/diagnostics``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rcl_interfaces.srv import GetParameters

from rtc_ros.nodes.contention import node_fq_name

#: the interpolation parameters of a joint_trajectory_controller (Jazzy's, Humble's)
INTERPOLATION = ("interpolate_from_desired_state", "open_loop_control")
#: the parameters asked for, per output type (one request each: a node that lacks one answers a joint request with
#: nothing)
PARAMS = {"joint_trajectory": (*INTERPOLATION, "joints", "allow_partial_joints_goal"),
          "float64_multi_array": ("joints", "interface_name")}
_BOOL, _STRING, _STRING_ARRAY = 1, 4, 9  # rcl_interfaces/ParameterType PARAMETER_BOOL, _STRING, _STRING_ARRAY
#: a request unanswered this long (s) is sent again, and an answered one too (a controller reloaded with other
#: parameters under the same node name, which the graph may not show leaving)
ASK_AGAIN_S = 5.0
#: a controller's first answer is awaited this long (s) before ~/resume goes ahead without its verdict
PENDING_S = 2 * ASK_AGAIN_S


class ControllerCheck:
    """Asks the subscribers of ``topics`` (resolved command topic -> the arm's joint names there) for
    :data:`PARAMS` of ``output_type``; :meth:`problems` gives one line per controller that interpolates from the
    measured state, :meth:`wrong` the controllers that would apply the commands to other joints or reject them. A
    controller that leaves the topic is forgotten (asked again if it returns, e.g. reloaded with the advice applied)."""

    def __init__(self, node: Any, topics: dict[str, list[str]], output_type: str, callback_group: Any = None) -> None:
        self.node, self.topics, self.group = node, dict(topics), callback_group
        self.params, self.trajectory = PARAMS[output_type], output_type == "joint_trajectory"
        self._lock = threading.Lock()  # (answers came on another executor thread in timer mode before 2026-12-07)
        self._problems: dict[str, str] = {}  # controller node -> what is wrong (a warning)
        self._wrong: dict[str, str] = {}  # controller node -> why the executor must not command it
        # one get_parameters client per controller node, kept (never destroyed: destroying one from a callback
        # under a MultiThreadedExecutor can crash rclpy; a few clients in all)
        self._clients: dict[str, Any] = {}
        self._answers: dict[str, dict[str, bool | None]] = {}  # controller node -> {param: value, None: lacks it}
        self._asked_at: dict[str, float] = {}  # monotonic s; unanswered for ASK_AGAIN_S: asked again
        self._gids: dict[str, frozenset[bytes]] = {}  # its subscriptions' endpoints when asked (changed: reloaded)
        self._first_asked: dict[str, float] = {}  # monotonic s of the first ask since it appeared (pending)

    def problems(self) -> list[str]:
        with self._lock:
            return list(self._problems.values())

    def wrong(self) -> dict[str, str]:
        """``{controller node: why}`` for the controllers whose ``joints`` do not take the executor's commands."""
        with self._lock:
            return dict(self._wrong)

    def pending(self) -> list[str]:
        """Subscribers asked whose answers are not all in yet, within :data:`PENDING_S` of their first ask (one whose
        service never answers does not block for good): ``~/resume`` waits for their verdict (a controller loaded
        just before the arming would otherwise get commands unjudged)."""
        now = time.monotonic()
        with self._lock:
            return [n for n, answers in self._answers.items()
                    if len(answers) < len(self.params) and now - self._first_asked.get(n, now) < PENDING_S]

    def poll(self) -> None:
        """Ask every new subscriber whose parameter service is up (call it periodically)."""
        present: dict[str, tuple[str, frozenset[bytes]]] = {}
        for topic in self.topics:
            for info in self.node.get_subscriptions_info_by_topic(topic):
                if info.node_name:
                    name = node_fq_name(info.node_namespace, info.node_name)
                    old_topic, gids = present.get(name, (topic, frozenset()))
                    present[name] = (old_topic, gids | {bytes(info.endpoint_gid)})
        now = time.monotonic()
        with self._lock:
            for name in set(self._answers) | set(self._wrong) | set(self._problems):  # (a verdict outlives a re-ask)
                if name not in present:  # gone (asked again if it returns)
                    self._answers.pop(name, None)
                    self._problems.pop(name, None)
                    self._wrong.pop(name, None)
                    self._gids.pop(name, None)
                    self._first_asked.pop(name, None)
                elif name in self._answers and self._gids.get(name) != present[name][1]:  # reloaded under its name
                    del self._answers[name]  # (new endpoints): asked again at once, awaited as a new one
                    self._first_asked.pop(name, None)
                elif name in self._answers and now - self._asked_at[name] > ASK_AGAIN_S:  # no answer, or an old one:
                    del self._answers[name]  # asked again, its verdict kept until then
            asking = [(n, t, g) for n, (t, g) in present.items() if n not in self._answers]
        for name, topic, gids in asking:
            client = self._clients.get(name)
            if client is None:
                client = self._clients[name] = self.node.create_client(GetParameters, f"{name}/get_parameters",
                                                                       callback_group=self.group)
            if not client.service_is_ready():
                continue
            with self._lock:
                self._answers[name], self._asked_at[name], self._gids[name] = {}, now, gids
                self._first_asked.setdefault(name, now)
            for param in self.params:
                future = client.call_async(GetParameters.Request(names=[param]))
                future.add_done_callback(lambda f, n=name, t=topic, k=param: self._on_answer(n, t, k, f))

    def _on_answer(self, name: str, topic: str, param: str, future: Any) -> None:
        result = future.result() if future.exception() is None else None
        value = result.values[0] if result is not None and len(result.values) == 1 else None
        with self._lock:
            answers = self._answers.get(name)
            if answers is None or param in answers:
                return  # forgotten meanwhile, or an answer to an earlier request
            answers[param] = (None if value is None else value.bool_value if value.type == _BOOL else
                              value.string_value if value.type == _STRING else
                              list(value.string_array_value) if value.type == _STRING_ARRAY else None)
            if len(answers) < len(self.params):
                return
            has = {k: v for k, v in answers.items() if k in INTERPOLATION and v is not None}
            bad = bool(has) and not any(has.values())  # a joint_trajectory_controller that interpolates from the state
            text = (f"{name} (subscribes {topic}) has {' and '.join(f'{k}: false' for k in has)}: as a "
                    "joint_trajectory_controller it starts each of the executor's one-point trajectories (one per "
                    "tick) from the measured position, so the setpoint jumps back by the arm's tracking lag every "
                    "tick; set interpolate_from_desired_state: true (Humble: open_loop_control: true) in its "
                    "parameters") if bad else ""
            new = bad and self._problems.get(name) != text
            if bad:
                self._problems[name] = text
            else:
                self._problems.pop(name, None)
            # judged only as a ros2_control controller (a relay or mux may declare 'joints' for another order):
            # a trajectory controller declares an interpolation parameter, a forward_command_controller interface_name
            controller = bool(has) if self.trajectory else isinstance(answers.get("interface_name"), str)
            wrong = joints_mismatch(name, topic, self.topics.get(topic, []), answers.get("joints"),
                                    answers.get("allow_partial_joints_goal"), self.trajectory) if controller else ""
            if wrong:
                self._wrong[name] = wrong
            else:
                self._wrong.pop(name, None)
        if new:
            self.node.get_logger().warn(text)


def joints_mismatch(name: str, topic: str, arm: list[str], joints: Any, partial: Any, trajectory: bool) -> str:
    """Why controller ``name`` (subscribing ``topic``) with parameter ``joints`` (None: not declared, not judged)
    does not take the executor's commands for the joints ``arm``; '' when it does. ``trajectory``: a
    joint_trajectory_controller (by joint names; ``partial``: its ``allow_partial_joints_goal``), else a
    Float64MultiArray in the controller's order."""
    if not isinstance(joints, list) or not joints or not arm:
        return ""
    if trajectory:
        foreign = [j for j in arm if j not in joints]
        if foreign:
            return (f"{name} (subscribes {topic}) does not own {foreign} (its joints: {joints}): it rejects every "
                    "trajectory naming them (a joint of another controller, e.g. a gripper, in this arm's "
                    "joint_names?)")
        rest = [j for j in joints if j not in arm]
        if rest and partial is False:
            return (f"{name} (subscribes {topic}) also owns {rest}, which the executor does not command, and has "
                    "allow_partial_joints_goal: false: it rejects every trajectory (add them to the arm's joint_names, "
                    "or set allow_partial_joints_goal: true)")
        return ""
    if list(joints) == list(arm):
        return ""
    how = ("the same joints in another order" if sorted(joints) == sorted(arm) else "other joints")
    return (f"{name} (subscribes {topic}) lists its joints as {joints}, the executor's arm as {arm} ({how}): a "
            "Float64MultiArray is applied in the controller's order, so every command would move the wrong joints "
            "(make the arm's joint_names the controller's joints, in its order)")
