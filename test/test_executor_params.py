"""policy_inference's comparison of its model of the executor with the running executor's parameters (a split
launch, which rtc_bringup cannot check): ROS-free here; over DDS in test_nodes_pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtc_ros.nodes.executor_params import executor_notes, wanted_names
from rtc_ros.nodes.params import ROLE_INFERENCE, ParameterError, validate

SPEC = str(Path(__file__).resolve().parents[1] / "policies" / "bimanual_cnn_h50.yaml")
LIMITS = {"left.max_step": [0.05], "left.lower_limits": [-2.0], "left.upper_limits": [2.0],
          "right.max_step": [0.05], "right.lower_limits": [-2.0], "right.upper_limits": [2.0]}


def _own(**extra) -> object:
    return validate({"policy_spec": SPEC, **LIMITS, **extra}, ROLE_INFERENCE)


def test_the_same_values_give_no_note() -> None:
    own = _own()
    names = wanted_names(own)
    assert names[0] == "rate_hz" and "left.max_step" in names and "right.max_accel" in names
    fetched = {n: None for n in names} | {"rate_hz": 50.0} | LIMITS  # unset on the executor: None
    assert executor_notes(own, fetched) == []


@pytest.mark.parametrize("change,said", [
    ({"left.max_step": [0.1]}, "left.max_step is [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1] for chunk_executor but [0.05"),
    ({"right.max_accel": [8.0]}, "right.max_accel is [8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 0.0] for chunk_executor"),
    ({"rate_hz": 30.0}, "rate_hz is 30 for chunk_executor but 50 for policy_inference"),
    ({"left.upper_limits": [1.5]}, "left.upper_limits is [1.5,"),
])
def test_a_difference_is_named(change: dict, said: str) -> None:
    fetched = {"rate_hz": 50.0, **LIMITS, **change}
    notes = executor_notes(_own(), fetched)
    assert len(notes) == 1 and said in notes[0], notes


def test_limits_the_inference_node_was_not_given() -> None:
    own = validate({"policy_spec": SPEC}, ROLE_INFERENCE)
    notes = executor_notes(own, {"rate_hz": 50.0, **LIMITS})
    assert len(notes) == 6 and all("given to chunk_executor only" in n for n in notes)
    assert executor_notes(own, {"rate_hz": 50.0}) == []  # neither given: the executor warns about its defaults


def test_a_value_that_is_no_executors_is_refused_by_name() -> None:
    with pytest.raises(ParameterError) as err:
        executor_notes(_own(), {"rate_hz": 50.0, **LIMITS, "left.max_step": [-1.0]})
    assert err.value.name == "left.max_step"
