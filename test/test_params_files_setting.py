"""Where a refused parameter came from (``files_setting``): the params files whose sections reach the node, and a
``-p`` -- said to have lost when a file's section for the node gave the refused value instead (a two-robot walkthrough:
``-p policy_spec:=PATH`` was listed as a source of the refused ``${RTC_POLICY_SPEC}``)."""

from __future__ import annotations

from rtc_ros.nodes.params.yaml_file import files_setting


def test_a_p_that_lost_to_a_file_says_so(tmp_path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("/**/policy_inference:\n  ros__parameters:\n    policy_spec: ${RTC_POLICY_SPEC}\n")
    argv = ["node", "--ros-args", "--params-file", str(f), "-p", "policy_spec:=/x/spec.yaml"]
    where = files_setting(argv, "/robot2/policy_inference", "policy_spec", "${RTC_POLICY_SPEC}")
    assert where[0] == str(f) and where[1].startswith("-p policy_spec (which did not apply: ROS lets a params file's "
                                                      "section for the node win over -p"), where
    # the -p value itself refused: it applied, nothing more to say
    assert files_setting(argv, "/robot2/policy_inference", "policy_spec", "/x/spec.yaml") == [str(f), "-p policy_spec"]
    # no file sets it: the -p is the source
    alone = ["node", "--ros-args", "-p", "policy_spec:=/x/spec.yaml"]
    assert files_setting(alone, "/policy_inference", "policy_spec", "/x/spec.yaml") == ["-p policy_spec"]


def test_a_one_value_list_that_applied_expanded_is_not_said_to_have_lost(tmp_path) -> None:
    """A review: ``-p left.max_step:=[-1.0]`` is refused expanded per joint; it did apply."""
    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters:\n    left:\n      max_step: [0.05]\n")
    argv = ["node", "--ros-args", "--params-file", str(f), "-p", "left.max_step:=[-1.0]"]
    assert files_setting(argv, "/chunk_executor", "left.max_step", [-1.0] * 7) == [str(f), "-p left.max_step"]
