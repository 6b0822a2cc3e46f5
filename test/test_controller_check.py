"""controller_check.joints_mismatch: which controllers would not take the executor's commands for an arm's joints
(a forward_command_controller in another order moves the wrong joints; a joint_trajectory_controller rejects a
trajectory naming a joint it does not own, or only some of its joints without allow_partial_joints_goal)."""

from __future__ import annotations

import pytest

pytest.importorskip("rcl_interfaces")

from rtc_ros.nodes.controller_check import joints_mismatch  # noqa: E402

ARM = ["j1", "j2", "j3"]


def test_a_forward_controller_must_list_the_arm_s_joints_in_its_order() -> None:
    assert joints_mismatch("/c", "/c/commands", ARM, ["j1", "j2", "j3"], None, trajectory=False) == ""
    assert "the same joints in another order" in joints_mismatch("/c", "/c/commands", ARM, ["j2", "j1", "j3"], None,
                                                                 trajectory=False)
    assert "other joints" in joints_mismatch("/c", "/c/commands", ARM, ["j1", "j2", "j3", "g"], None, trajectory=False)
    assert "other joints" in joints_mismatch("/c", "/c/commands", ARM, ["j1", "j2", "x"], None, trajectory=False)


def test_a_trajectory_controller_maps_by_name_but_rejects_foreign_or_partial_goals() -> None:
    assert joints_mismatch("/c", "/c/jt", ARM, ["j3", "j1", "j2"], False, trajectory=True) == ""  # by name
    text = joints_mismatch("/c", "/c/jt", ARM + ["g"], ["j1", "j2", "j3"], True, trajectory=True)
    assert "does not own ['g']" in text
    text = joints_mismatch("/c", "/c/jt", ARM, ["j1", "j2", "j3", "j4"], False, trajectory=True)
    assert "also owns ['j4']" in text and "allow_partial_joints_goal: false" in text
    assert joints_mismatch("/c", "/c/jt", ARM, ["j1", "j2", "j3", "j4"], True, trajectory=True) == ""
    assert joints_mismatch("/c", "/c/jt", ARM, ["j1", "j2", "j3", "j4"], None, trajectory=True) == ""  # not declared


def test_a_node_without_joints_is_not_judged() -> None:
    for joints in (None, [], "j1"):
        assert joints_mismatch("/relay", "/c/commands", ARM, joints, None, trajectory=False) == ""


class _Value:
    def __init__(self, v) -> None:
        self.type = 0 if v is None else 1 if isinstance(v, bool) else 4 if isinstance(v, str) else 9
        self.bool_value = v if isinstance(v, bool) else False
        self.string_value = v if isinstance(v, str) else ""
        self.string_array_value = v if isinstance(v, list) else []


class _Graph:
    """A node's graph and its controllers' parameter services, answered at once."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        self.ns = SimpleNamespace
        self.subs: dict[str, list] = {}  # topic -> endpoint infos
        self.params: dict[str, dict] = {}  # controller node -> its parameters
        self.ready: dict[str, bool] = {}
        self.asked: list[str] = []

    def subscribe(self, topic: str, node: str, gid: bytes, params: dict) -> None:
        self.subs.setdefault(topic, []).append(self.ns(node_name=node, node_namespace="/", endpoint_gid=gid))
        self.params["/" + node], self.ready["/" + node] = params, True

    def leave(self, topic: str, node: str) -> None:
        self.subs[topic] = [i for i in self.subs[topic] if i.node_name != node]

    def get_subscriptions_info_by_topic(self, topic: str) -> list:
        return list(self.subs.get(topic, []))

    def create_client(self, srv, name: str, callback_group=None):
        graph, node = self, name.rsplit("/get_parameters", 1)[0]

        class Client:
            def service_is_ready(self) -> bool:
                return graph.ready.get(node, False)

            def call_async(self, request):
                graph.asked.append(node)
                value = _Value(graph.params.get(node, {}).get(request.names[0]))
                result = graph.ns(values=[value] if value.type else [])

                class Future:
                    def add_done_callback(self, cb) -> None:
                        cb(self)

                    def exception(self):
                        return None

                    def result(self):
                        return result

                return Future()

        return Client()

    def get_logger(self):
        return self.ns(warn=lambda m: None)

    def get_fully_qualified_name(self) -> str:
        return "/chunk_executor"


def _check(graph: _Graph, output_type: str = "float64_multi_array"):
    from rtc_ros.nodes.controller_check import ControllerCheck

    return ControllerCheck(graph, {"/c/commands": ARM}, output_type)


def test_a_wrong_verdict_goes_with_its_controller_even_between_asks(monkeypatch) -> None:
    """A review: re-asked every 5 s, a verdict outlived a controller that left while its service was not ready
    (the executor stayed muted for good)."""
    from rtc_ros.nodes import controller_check

    now = [0.0]
    monkeypatch.setattr(controller_check.time, "monotonic", lambda: now[0])
    g = _Graph()
    g.subscribe("/c/commands", "fwd", b"1", {"joints": ["j2", "j1", "j3"], "interface_name": "position"})
    check = _check(g)
    check.poll()
    assert list(check.wrong()) == ["/fwd"]
    now[0] += 6.0  # time to ask again, its service not ready (unloading): the verdict is kept meanwhile
    g.ready["/fwd"] = False
    check.poll()
    assert list(check.wrong()) == ["/fwd"] and check.pending() == []
    g.leave("/c/commands", "fwd")
    check.poll()
    assert check.wrong() == {}


def test_a_controller_reloaded_under_its_name_is_asked_again_at_once(monkeypatch) -> None:
    from rtc_ros.nodes import controller_check

    monkeypatch.setattr(controller_check.time, "monotonic", lambda: 0.0)
    g = _Graph()
    g.subscribe("/c/commands", "fwd", b"1", {"joints": ["j2", "j1", "j3"], "interface_name": "position"})
    check = _check(g)
    check.poll()
    assert list(check.wrong()) == ["/fwd"]
    g.leave("/c/commands", "fwd")  # reloaded with the right order between two polls: new endpoints, same name
    g.subscribe("/c/commands", "fwd", b"2", {"joints": list(ARM), "interface_name": "position"})
    check.poll()
    assert check.wrong() == {}


def test_only_ros2_control_controllers_are_judged(monkeypatch) -> None:
    """A relay or mux declaring 'joints' (its hardware-side order) is not a forward_command_controller."""
    g = _Graph()
    g.subscribe("/c/commands", "relay", b"1", {"joints": ["j2", "j1", "j3"]})
    check = _check(g)
    check.poll()
    assert check.wrong() == {} and check.pending() == []
    g2 = _Graph()  # a trajectory relay without interpolation parameters: not judged either
    g2.subscribe("/c/commands", "relay", b"1", {"joints": ["x"]})
    check = _check(g2, "joint_trajectory")
    check.poll()
    assert check.wrong() == {}
    g2.params["/relay"]["open_loop_control"] = True  # Humble's JTC
    g2.leave("/c/commands", "relay")
    check.poll()
    g2.subscribe("/c/commands", "relay", b"2", g2.params["/relay"])
    check.poll()
    assert "does not own ['j1', 'j2', 'j3']" in check.wrong()["/relay"]


def test_a_first_answer_is_awaited_but_not_forever(monkeypatch) -> None:
    """~/resume waits for a new controller's verdict (pending), but a parameter service that never answers blocks
    it only PENDING_S."""
    from rtc_ros.nodes import controller_check

    now = [0.0]
    monkeypatch.setattr(controller_check.time, "monotonic", lambda: now[0])
    g = _Graph()
    g.subscribe("/c/commands", "hung", b"1", {})
    check = _check(g)
    calls = []
    g.create_client = lambda srv, name, callback_group=None: type("C", (), {
        "service_is_ready": lambda self: True,
        "call_async": lambda self, req: calls.append(req) or type("F", (), {"add_done_callback": lambda s, cb: None})()})()
    check.poll()
    assert check.pending() == ["/hung"] and len(calls) == 2
    now[0] += 6.0
    check.poll()  # asked again, still awaited
    assert check.pending() == ["/hung"] and len(calls) == 4
    now[0] += controller_check.PENDING_S
    check.poll()
    assert check.pending() == []


def test_pending_covers_the_unasked_but_not_a_judged_controller_asked_again(monkeypatch) -> None:
    """A second review: a subscriber whose parameter service is not discovered yet was not awaited, and a judged
    controller asked again every 5 s counted as awaited meanwhile (a resume refused for nothing)."""
    from rtc_ros.nodes import controller_check

    now = [0.0]
    monkeypatch.setattr(controller_check.time, "monotonic", lambda: now[0])
    g = _Graph()
    g.subscribe("/c/commands", "fwd", b"1", {"joints": list(ARM), "interface_name": "position"})
    g.ready["/fwd"] = False  # its service not discovered yet
    check = _check(g)
    check.poll()
    assert check.pending() == ["/fwd"]
    g.ready["/fwd"] = True
    check.poll()
    assert check.pending() == [] and check.wrong() == {}
    held = []  # the next ask's answers held back: asked again, still judged
    make = g.create_client
    g.create_client = lambda *a, **k: type("C", (), {"service_is_ready": lambda s: True, "call_async": lambda s, r: (
        held.append(r), type("F", (), {"add_done_callback": lambda f, cb: None})())[1]})()
    check._clients.clear()
    now[0] += 6.0
    check.poll()
    assert held and check.pending() == []
    g.create_client = make


def test_an_answer_to_an_earlier_ask_is_dropped(monkeypatch) -> None:
    """A second review: a re-ask still in flight when a reload's endpoints trigger a new ask filled the new ask's
    slots with the old controller's answers (the reloaded wrong one judged fine)."""
    from rtc_ros.nodes import controller_check

    now = [0.0]
    monkeypatch.setattr(controller_check.time, "monotonic", lambda: now[0])
    g = _Graph()
    g.subscribe("/c/commands", "fwd", b"1", {"joints": list(ARM), "interface_name": "position"})
    check = _check(g)
    late = []
    make = g.create_client
    g.create_client = lambda *a, **k: type("C", (), {"service_is_ready": lambda s: True, "call_async": lambda s, r: (
        late.append(r), type("F", (), {"add_done_callback": lambda f, cb: late.append(cb)})())[1]})()
    check.poll()  # asked; the answers (of the right controller) are late
    g.create_client = make
    check._clients.clear()
    g.leave("/c/commands", "fwd")  # reloaded in the wrong order before they came
    g.subscribe("/c/commands", "fwd", b"2", {"joints": ["j2", "j1", "j3"], "interface_name": "position"})
    check.poll()
    assert list(check.wrong()) == ["/fwd"]
    for cb in [c for c in late if callable(c)]:  # the old answers arrive now: dropped
        cb(type("F", (), {"exception": lambda s: None, "result": lambda s: type("R", (), {
            "values": [_Value(list(ARM))]})()})())
    assert list(check.wrong()) == ["/fwd"]


def test_hidden_nodes_are_not_awaited(monkeypatch) -> None:
    """CI 2026-12-07: a `ros2 topic hz` on a command topic (node /_ros2cli_7585, no parameter service) was awaited as
    a controller, so sim_episodes' ~/resume was refused for 0.6 s ("waiting for the parameters of /_ros2cli_7585");
    an operator's `ros2 topic echo` would block an arming for 10 s. Hidden nodes ('_...', also a node not named yet)
    are no controllers."""
    g = _Graph()
    for name in ("_ros2cli_7585", "_NODE_NAME_UNKNOWN_"):
        g.subscribe("/c/commands", name, name.encode(), {})
        g.ready["/" + name] = False
    g.subscribe("/c/commands", "fwd", b"1", {"joints": list(ARM), "interface_name": "position"})
    g.ready["/fwd"] = False
    check = _check(g)
    check.poll()
    assert check.pending() == ["/fwd"]
