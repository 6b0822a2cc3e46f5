"""policy_inference's comparison of its model of the executor with the running executor's parameters (a split
launch, which rtc_bringup cannot check): ROS-free here; over DDS in test_nodes_pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtc_ros.nodes.executor_params import executor_differences, wanted_names
from rtc_ros.nodes.params import ROLE_INFERENCE, ParameterError, validate

SPEC = str(Path(__file__).resolve().parents[1] / "policies" / "bimanual_cnn_h50.yaml")
LIMITS = {"left.max_step": [0.05], "left.lower_limits": [-2.0], "left.upper_limits": [2.0],
          "right.max_step": [0.05], "right.lower_limits": [-2.0], "right.upper_limits": [2.0]}


def _own(**extra) -> object:
    return validate({"policy_spec": SPEC, **LIMITS, **extra}, ROLE_INFERENCE)


def test_the_same_values_give_no_note() -> None:
    own = _own()
    names = wanted_names(own)
    assert names[0] == "rate_hz" and "left.max_step" in names and "right.max_accel" in names and "horizon" in names
    fetched = {n: None for n in names} | {"rate_hz": 50.0} | LIMITS  # unset on the executor: None (its default)
    assert executor_differences(own, fetched) == []


@pytest.mark.parametrize("change,said", [
    ({"left.max_step": [0.1]}, "left.max_step is [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1] for chunk_executor but [0.05"),
    ({"right.max_accel": [8.0]}, "right.max_accel is [8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 0.0] for chunk_executor"),
    ({"rate_hz": 30.0}, "rate_hz is 30.0 for chunk_executor but 50.0 for policy_inference"),
    ({"horizon": 40}, "horizon is 40 for chunk_executor but 50 for policy_inference"),
    ({"method": "bid"}, "method is 'bid' for chunk_executor but 'rtc' for policy_inference"),
    ({"left.upper_limits": [1.5]}, "left.upper_limits is [1.5,"),
])
def test_a_difference_is_named(change: dict, said: str) -> None:
    fetched = {"rate_hz": 50.0, **LIMITS, **change}
    notes = executor_differences(_own(), fetched)
    assert len(notes) == 1 and said in notes[0], notes


def test_limits_the_inference_node_was_not_given() -> None:
    """Given to the executor only: policy_inference models the default, and says so; given to neither: both use the
    same default (no note; the executor warns about its defaults itself)."""
    own = validate({"policy_spec": SPEC}, ROLE_INFERENCE)
    notes = executor_differences(own, {"rate_hz": 50.0, **LIMITS})
    assert len(notes) == 4 and all("(policy_inference was not given it: the default)" in n for n in notes), notes
    assert not any("max_step" in n for n in notes)  # 0.05 given = the default: the model is the executor's
    assert executor_differences(own, {"rate_hz": 50.0}) == []


def test_other_joints_are_named_not_compared_by_position() -> None:
    names = [f"j{i}" for i in range(7)]
    notes = executor_differences(_own(), {"rate_hz": 50.0, **LIMITS, "left.joint_names": names})
    assert len(notes) == 1 and notes[0].startswith("left.joint_names is ['j0'"), notes


def test_a_value_that_is_no_executors_is_refused_by_name() -> None:
    with pytest.raises(ParameterError) as err:
        executor_differences(_own(), {"rate_hz": 50.0, **LIMITS, "left.max_step": [-1.0]})
    assert err.value.name == "left.max_step"


def test_a_running_executor_is_asked_over_its_parameter_services(tmp_path) -> None:
    """A real chunk_executor node (one arm's max_step in its own section, the other arm given nothing: a name
    without a value empties a combined get_parameters reply, hence one request per name) and
    ExecutorParamsCheck on a second node, over DDS in one process; a restarted executor under the same name
    (another publisher) is asked again and its notes replace the old ones."""
    rclpy = pytest.importorskip("rclpy")
    from rclpy.executors import SingleThreadedExecutor

    from rtc_ros.nodes.chunk_executor import ChunkExecutorNode
    from rtc_ros.nodes.executor_params import ExecutorParamsCheck
    from test_nodes_harness import write_params

    def start(step: float) -> ChunkExecutorNode:
        params = write_params(tmp_path / f"p{step}.yaml", executor={"loop_mode": "timer"},
                              left={"max_step": [step]}, right={"max_accel": [0.0]})
        return ChunkExecutorNode(context=ctx, cli_args=["--ros-args", "--params-file", str(params)])

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    probe = rclpy.create_node("policy_inference_probe", context=ctx)
    check = ExecutorParamsCheck(probe, validate({"policy_spec": SPEC}, ROLE_INFERENCE), "/rtc/executor_state")
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(probe)

    def spin_until(done, timeout: float = 30.0) -> bool:
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end and not done():
            check.poll()
            ex.spin_once(timeout_sec=0.1)
        return done()

    try:
        node = start(0.02)
        ex.add_node(node)
        assert spin_until(lambda: bool(check.notes)), "no answer from the executor"
        assert len(check.notes) == 1 and check.notes[0].startswith(
            "/chunk_executor: left.max_step is [0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02] for chunk_executor but "
            "[0.05, "), check.notes
        assert "(policy_inference was not given it: the default)" in check.notes[0]
        ex.remove_node(node)
        node.destroy_node()
        assert spin_until(lambda: not check.notes), "the gone executor's notes stayed"
        node = start(0.05)  # restarted with the default: the same as policy_inference's model
        ex.add_node(node)
        assert spin_until(lambda: len(check._done) == 1 and not check._pending and "/chunk_executor" in check._done)
        assert check.notes == []
        ex.remove_node(node)
        node.destroy_node()
    finally:
        ex.shutdown()
        probe.destroy_node()
        rclpy.shutdown(context=ctx)


def test_gripper_joints_are_fetched_so_a_declared_gripper_is_no_difference() -> None:
    """A Franka-style gripper declared in ``left.gripper_joints`` on both nodes: the fetched values are validated
    with it (before it was fetched, the default '*gripper' re-validated the executor's, and a single max_accel
    came out different on the finger: a permanent false WARN in a split launch)."""
    grip = {"left.gripper_joints": ["left_wrist_rotate"], "left.max_accel": [5.0]}
    own = _own(**grip)
    assert "left.gripper_joints" in wanted_names(own)
    assert own.arms[0].max_accel == [5.0] * 5 + [0.0, 5.0]  # (the list given replaces the default '*gripper')
    fetched = {"rate_hz": 50.0, **LIMITS, **grip}
    assert executor_differences(own, fetched) == []
    notes = executor_differences(own, {"rate_hz": 50.0, **LIMITS, "left.max_accel": [5.0]})  # the executor's: default
    assert notes and "left.max_accel" in notes[0]


def test_a_retry_keeps_the_answers_so_far() -> None:
    """Under load the executor answered the 16 one-name requests slower than RETRY_S; each retry started over and
    discarded the answers so far, so no check ever completed (once in CI). A retry now asks only the missing names."""
    from types import SimpleNamespace

    pytest.importorskip("rclpy")
    from rclpy.parameter import Parameter

    from rtc_ros.nodes.executor_params import RETRY_S, ExecutorParamsCheck

    own = _own()
    names = wanted_names(own)
    values = {n: None for n in names} | {"rate_hz": 50.0} | LIMITS
    asked: list[tuple[str, list]] = []

    class Client:
        def services_are_ready(self) -> bool:
            return True

        def get_parameters(self, keys: list[str]):
            callbacks: list = []
            asked.append((keys[0], callbacks))
            return SimpleNamespace(add_done_callback=callbacks.append)

    def answer(i: int) -> None:
        key, callbacks = asked[i]
        value = values[key]
        msg = [] if value is None else [Parameter(key, value=value).to_parameter_msg().value]
        for cb in callbacks:
            cb(SimpleNamespace(result=lambda: SimpleNamespace(values=msg)))

    now = [0.0]
    info = SimpleNamespace(node_namespace="/", node_name="chunk_executor", endpoint_gid=b"g")
    log = SimpleNamespace(warn=lambda m: None, info=lambda m: None)
    node = SimpleNamespace(get_publishers_info_by_topic=lambda t: [info], get_logger=lambda: log)
    check = ExecutorParamsCheck(node, own, "/rtc/executor_state", clock=lambda: now[0])
    check._clients["/chunk_executor"] = Client()
    check.poll()
    assert len(asked) == len(names)
    for i in range(5):  # only some answers before the retry
        answer(i)
    now[0] += RETRY_S + 0.1
    check.poll()
    assert [k for k, _ in asked[len(names):]] == names[5:]  # the rest asked again, not all
    for i in range(len(names), len(asked)):
        answer(i)
    assert "/chunk_executor" in check._done and not check._pending and check.notes == []
