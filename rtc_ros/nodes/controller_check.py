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

import math
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
        self._answers: dict[str, dict[str, Any]] = {}  # controller node -> {param: value, None: lacks it}
        self._asked_at: dict[str, float] = {}  # monotonic s; unanswered for ASK_AGAIN_S: asked again
        self._asked: dict[str, tuple[int, frozenset[bytes]]] = {}  # the ask in flight: its number, the endpoints
        self._asks = 0  # (an answer to an earlier ask is dropped: it may be the controller's before a reload)
        self._present: dict[str, tuple[str, frozenset[bytes]]] = {}  # the last poll's subscribers: topic, endpoints
        self._since: dict[str, float] = {}  # monotonic s its endpoints were first seen (a verdict awaited: pending)
        self._judged: dict[str, frozenset[bytes]] = {}  # the endpoints its last complete answer was about

    def problems(self) -> list[str]:
        with self._lock:
            return list(self._problems.values())

    def wrong(self) -> dict[str, str]:
        """``{controller node: why}`` for the controllers whose ``joints`` do not take the executor's commands."""
        with self._lock:
            return dict(self._wrong)

    def pending(self) -> list[str]:
        """Subscribers whose verdict is awaited: present, not yet answered for their current endpoints, and first seen
        within :data:`PENDING_S` (one whose parameter service never answers, or that keeps re-subscribing, does not
        block for good). ``~/resume`` waits for them (a controller loaded just before the arming would otherwise
        get commands unjudged); call :meth:`poll` first to see the newest."""
        now = time.monotonic()
        with self._lock:
            return [n for n, (_t, gids) in self._present.items()
                    if self._judged.get(n) != gids and now - self._since.get(n, -math.inf) < PENDING_S]

    def poll(self) -> None:
        """Ask every new subscriber whose parameter service is up (call it periodically, and before a resume)."""
        present: dict[str, tuple[str, frozenset[bytes]]] = {}
        own = self.node.get_fully_qualified_name()
        for topic in self.topics:
            for info in self.node.get_subscriptions_info_by_topic(topic):
                # a hidden node (name '_...') is no controller: the ros2 CLI's (`ros2 topic echo/hz`: '_ros2cli_<pid>',
                # no parameter service: its verdict was awaited, a resume refused, for 10 s) and one not named yet
                # (_NODE_NAME_UNKNOWN_: judged once it is)
                if info.node_name and not info.node_name.startswith("_"):
                    name = node_fq_name(info.node_namespace, info.node_name)
                    if name == own:  # (its own subscription: a test's stand-in, a loop-back)
                        continue
                    first_topic, gids = present.get(name, (topic, frozenset()))
                    present[name] = (first_topic, gids | {bytes(info.endpoint_gid)})
        now = time.monotonic()
        with self._lock:
            for name in set(self._present) | set(self._answers) | set(self._wrong) | set(self._problems):
                if name not in present:  # gone (asked again if it returns); a verdict outlives re-asks, not this
                    for table in (self._answers, self._problems, self._wrong, self._asked, self._since, self._judged):
                        table.pop(name, None)
            for name, (_topic, gids) in present.items():
                old = self._present.get(name)
                if old is None or (old[1] != gids and self._judged.get(name) == old[1]):  # new, or reloaded after a
                    self._since[name] = now  # verdict: awaited (endpoints churning unjudged keep the first time)
            self._present = present
            for name in list(self._answers):
                if self._asked[name][1] != present[name][1] or now - self._asked_at[name] > ASK_AGAIN_S:
                    del self._answers[name]  # reloaded (new endpoints), unanswered, or old: asked again; its
                    # verdict kept until the new answer
            asking = [(n, t, g) for n, (t, g) in present.items() if n not in self._answers]
        for name, topic, gids in asking:
            client = self._clients.get(name)
            if client is None:
                client = self._clients[name] = self.node.create_client(GetParameters, f"{name}/get_parameters",
                                                                       callback_group=self.group)
            if not client.service_is_ready():
                continue
            with self._lock:
                self._asks += 1
                ask = self._asked[name] = (self._asks, gids)
                self._answers[name], self._asked_at[name] = {}, now
            for param in self.params:
                future = client.call_async(GetParameters.Request(names=[param]))
                future.add_done_callback(lambda f, n=name, t=topic, k=param, a=ask: self._on_answer(n, t, k, a, f))

    def _on_answer(self, name: str, topic: str, param: str, ask: tuple[int, frozenset[bytes]], future: Any) -> None:
        result = future.result() if future.exception() is None else None
        value = result.values[0] if result is not None and len(result.values) == 1 else None
        with self._lock:
            answers = self._answers.get(name)
            if answers is None or param in answers or self._asked.get(name) != ask:
                return  # forgotten meanwhile, or an answer to an earlier ask
            answers[param] = (None if value is None else value.bool_value if value.type == _BOOL else
                              value.string_value if value.type == _STRING else
                              list(value.string_array_value) if value.type == _STRING_ARRAY else None)
            if len(answers) < len(self.params):
                return
            self._judged[name] = ask[1]
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
