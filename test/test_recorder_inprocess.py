"""episode_recorder in-process (no DDS): its control callback called directly, as an operator's script
sends commands back to back. Nothing an operator sends loses a verdict or breaks the close."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from std_msgs.msg import String  # noqa: E402

from rtc_ros.recording.metadata import parse_command  # noqa: E402
from rtc_ros.recording.synthetic import joint_state_cdr  # noqa: E402


@pytest.fixture
def recorder(tmp_path, ros_env, request):
    """An episode_recorder in this process (``request.param``: more ``-p name:=value`` arguments)."""
    from rtc_ros.nodes.episode_recorder import EpisodeRecorder

    extra = [a for item in getattr(request, "param", []) for a in ("-p", item)]
    rclpy.init()
    node = EpisodeRecorder(cli_args=["--ros-args", "-p", f"output_dir:={tmp_path}", "-p", "param_nodes:=[]",
                                     "-p", "min_free_mb:=1.0", "-p", "stop_free_mb:=0.0", "-p", "stop_grace:=0.3",
                                     *extra], use_global_arguments=False)
    node.out = tmp_path
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown()


def _send(node, **cmd) -> None:
    node.commands.on_control(String(data=json.dumps(cmd)))


def _sidecar(node, episode: str) -> dict:
    return json.loads((node.out / episode / f"{episode}.json").read_text())


def _after_grace(node) -> None:
    time.sleep(0.35)
    node._tick()


@pytest.mark.parametrize("recorder", [["use_sim_time:=true"]], indirect=True)
def test_the_recorder_s_timers_run_on_the_steady_clock_under_sim_time(recorder) -> None:
    """An audit: with use_sim_time the flush / disk / stop-grace timer ran on /clock, so a paused or dead simulator
    froze the flushes (a SIGKILL then lost more than flush_period) and a stop never closed its episode."""
    from rclpy.clock import ClockType

    assert recorder.timers and all(t.clock.clock_type == ClockType.STEADY_TIME for t in recorder.timers)
    assert recorder.get_clock().clock_type == ClockType.ROS_TIME  # (its stamps still follow /clock)


def test_a_start_right_after_a_stop_keeps_the_stop_s_verdict(recorder) -> None:
    _send(recorder, cmd="start", meta={"task": "t"})
    recorder.discovery.subs["/joint_states"] = (None, "sensor_msgs/msg/JointState")
    recorder._on_message("/joint_states", joint_state_cdr(time.time_ns(), ["a"], np.array([1.0])))
    _send(recorder, cmd="stop", success=True, score=4)
    _send(recorder, cmd="start", meta={"task": "t2"})  # within the stop grace (before: closed 'interrupted')
    m = _sidecar(recorder, "episode_0000")
    assert (m["status"], m["success"], m["score"]) == ("completed", True, 4)
    assert recorder.session.recording and recorder.session.episode == "episode_0001"


def test_the_number_of_an_episode_moved_away_is_not_reused(recorder, tmp_path) -> None:
    _send(recorder, cmd="start")
    _send(recorder, cmd="stop", success=False)
    _after_grace(recorder)
    (tmp_path / "episode_0000").rename(tmp_path.parent / f"{tmp_path.name}_rejected_0000")  # an operator's tidy-up
    _send(recorder, cmd="start")
    assert recorder.session.episode == "episode_0001"


def test_a_score_in_the_stop_grace_goes_to_the_stopped_episode(recorder) -> None:
    _send(recorder, cmd="start")
    _send(recorder, cmd="stop", success=True, score=5)
    _after_grace(recorder)
    _send(recorder, cmd="start")
    _send(recorder, cmd="stop", success=False)
    _send(recorder, cmd="score", score=1)  # scored at once: episode_0001 is still in its grace
    _after_grace(recorder)
    assert _sidecar(recorder, "episode_0000")["score"] == 5  # before: overwritten with 1
    assert _sidecar(recorder, "episode_0001")["score"] == 1


@pytest.mark.parametrize("cmd,field", [
    ({"cmd": "stop", "status": "good run"}, "status"),
    ({"cmd": "stop", "params": "default"}, "params"),
    ({"cmd": "stop", "stop_time_ns": "now"}, "stop_time_ns"),
    ({"cmd": "score", "status": "recording"}, "status"),
    ({"cmd": "stop", "success": "true"}, "success"),
    ({"cmd": "score", "score": "4"}, "score"),
    ({"cmd": "start", "meta": {"extra_latency_ms": "200"}}, "meta.extra_latency_ms"),
    ({"cmd": "start", "meta": {"stop_time_ns": "x"}}, "stop_time_ns"),
    ({"cmd": "start", "meta": {"dropped_topics": []}}, "dropped_topics"),
    # NaN / Infinity / 1e999 were written as bare NaN / Infinity into the sidecar: not JSON (a walkthrough)
    ({"cmd": "score", "score": float("nan")}, "score"),
    ({"cmd": "stop", "score": float("inf")}, "score"),
    ({"cmd": "start", "meta": {"extra_latency_ms": float("-inf")}}, "meta.extra_latency_ms"),
    ({"cmd": "start", "meta": {"setup": {"offsets": [0.0, float("nan")]}}}, "meta.setup.offsets.1"),
])
def test_operator_fields_the_recorder_writes_or_of_the_wrong_type_are_refused(recorder, cmd, field) -> None:
    with pytest.raises(ValueError, match=f"'{field}'|\\['{field}'\\]"):
        parse_command(json.dumps(cmd))
    _send(recorder, cmd="start", meta={"task": "t"})
    recorder.commands.on_control(String(data=json.dumps(cmd)))  # refused (logged, status 'error'): the episode goes on
    _send(recorder, cmd="stop", success=True, score=3)
    _after_grace(recorder)
    episode = sorted(p.name for p in Path(recorder.out).iterdir() if p.name.startswith("episode_"))[-1]
    m = _sidecar(recorder, episode)
    assert (m["status"], m["success"], m["score"]) == ("completed", True, 3)
    assert (Path(recorder.out) / episode / "metadata.yaml").is_file()


def test_a_topic_of_unknown_type_is_dropped_once_and_named_in_the_sidecar(recorder) -> None:
    _send(recorder, cmd="start")
    recorder.discovery.subs["/robot/custom"] = (None, "my_robot_msgs/msg/Custom")
    for _ in range(3):
        recorder._on_message("/robot/custom", b"\x00\x01\x00\x00\x01\x00\x00\x00")
    _send(recorder, cmd="stop")
    _after_grace(recorder)
    m = _sidecar(recorder, "episode_0000")
    assert list(m["dropped_topics"]) == ["/robot/custom"] and "my_robot_msgs/msg/Custom" in m["dropped_topics"]["/robot/custom"]


def test_a_stop_just_after_max_duration_closed_the_episode_keeps_its_verdict(recorder) -> None:
    _send(recorder, cmd="start")
    recorder.set_parameters([rclpy.parameter.Parameter("max_duration", rclpy.parameter.Parameter.Type.DOUBLE, 0.05)])
    time.sleep(0.1)
    recorder._tick()  # stops: timeout, closed after the stop grace
    _after_grace(recorder)
    assert not recorder.session.recording
    _send(recorder, cmd="stop", success=True, score=2)  # the operator's stop, a moment late
    m = _sidecar(recorder, "episode_0000")
    assert (m["status"], m["success"], m["score"]) == ("timeout", True, 2)
    _send(recorder, cmd="stop", success=False)  # a second stop: ignored (not a timeout's verdict)
    m = _sidecar(recorder, "episode_0000")
    assert m["success"] is True


def test_command_patterns_stay_inside_the_recorder_s_namespace(ros_env) -> None:
    """Two robots, one recorder each: robot1's must not record robot2's arm commands (it did: its bag's
    command series came out 28 joints wide)."""
    from rclpy.node import Node

    from rtc_ros.nodes.params.schema import RECORDER_PATTERNS
    from rtc_ros.nodes.topic_discovery import TopicDiscovery

    rclpy.init()
    try:
        wanted = {}
        for ns in ("/robot1", "/"):
            node = Node("episode_recorder", namespace=ns)
            d = TopicDiscovery(node, ["joint_states"], RECORDER_PATTERNS, {}, 10, lambda *_: None, lambda *_: None)
            wanted[ns] = [t for t in ("/robot1/left_controller/commands", "/robot2/left_controller/commands",
                                      "/robot1/joint_states", "/robot2/joint_states") if d.wants(t)]
            node.destroy_node()
        assert wanted["/robot1"] == ["/robot1/left_controller/commands", "/robot1/joint_states"]
        assert wanted["/"] == ["/robot1/left_controller/commands", "/robot2/left_controller/commands"]
    finally:
        rclpy.shutdown()


def test_recorder_fields_in_a_start_service_meta_never_break_the_close(recorder) -> None:
    """A start whose meta sets fields the recorder writes (a string ``stop_time_ns``, a list ``dropped_topics``)
    through a path that does not parse commands: those fields are not taken, and an episode ended without a
    stop (here by a new start) still closes with a readable bag (before: TypeError in the close, bag left
    open, the recorder process gone)."""
    recorder.start_episode({"stop_time_ns": "x", "dropped_topics": [], "task": "t"})
    recorder.discovery.subs["/joint_states"] = (None, "sensor_msgs/msg/JointState")
    recorder._on_message("/joint_states", joint_state_cdr(time.time_ns(), ["a"], np.array([1.0])))
    recorder.start_episode({})  # closes episode_0000 as 'interrupted'
    m = _sidecar(recorder, "episode_0000")
    assert m["status"] == "interrupted" and m["task"] == "t" and isinstance(m["stop_time_ns"], int)
    assert (Path(recorder.out) / "episode_0000" / "metadata.yaml").is_file()


def test_a_score_after_a_failed_episode_is_not_written_into_the_one_before(recorder) -> None:
    _send(recorder, cmd="start")
    _send(recorder, cmd="stop", success=True, score=5)
    _after_grace(recorder)
    _send(recorder, cmd="start")
    recorder._fail("disk error (test)")  # episode_0001 fails mid-way
    _send(recorder, cmd="score", score=1)
    assert _sidecar(recorder, "episode_0000")["score"] == 5  # before: overwritten with 1
    m = _sidecar(recorder, "episode_0001")
    assert m["status"] == "failed" and m["score"] == 1
    # the failed bag can be repaired while this recorder still runs (before: 'skipped', its writer alive)
    import os

    from rtc_ros.recording.recover import recover_bag

    mcap = Path(recorder.out) / "episode_0001" / "episode_0001.mcap"
    os.utime(mcap, (time.time() - 60, time.time() - 60))  # unchanged for a minute
    assert recover_bag(mcap.parent).action == "recovered"
    assert (mcap.parent / "metadata.yaml").is_file()


def test_a_start_whose_sidecar_cannot_be_written_reports_failure(recorder, monkeypatch) -> None:
    def refuse(*a, **k):
        raise OSError("read-only file system (test)")

    monkeypatch.setattr(recorder.session, "write_sidecar", refuse)
    assert recorder.start_episode({}) is None  # before: the bag path, status 'recording', nothing recorded
    assert not recorder.session.recording


def test_a_score_while_the_next_episode_records_goes_to_the_last_closed_one(recorder) -> None:
    """Scoring after the fact: the operator already started the next episode."""
    _send(recorder, cmd="start")
    _send(recorder, cmd="stop", success=True)
    _after_grace(recorder)
    _send(recorder, cmd="start")
    _send(recorder, cmd="score", score=3)
    assert _sidecar(recorder, "episode_0000")["score"] == 3 and recorder.session.episode == "episode_0001"
    # the copy in metadata.yaml too (before: the verdict at the close), and the bag still opens
    from rosbags.highlevel import AnyReader

    from rtc_ros.recording.sidecar import read_metadata_yaml_meta

    bag = Path(recorder.out) / "episode_0000"
    assert read_metadata_yaml_meta(bag)["score"] == 3
    with AnyReader([bag]) as reader:
        assert reader.message_count >= 0


def test_a_score_after_a_refused_start_is_not_written_into_the_episode_before(recorder) -> None:
    """A 'start' refused for a bad field, then the operator's 'score' for it: not written into the previous
    episode's verdict (it was, found by a review); the refusal and a 'stop' while idle are answered on the status
    topic."""
    _send(recorder, cmd="start")
    _send(recorder, cmd="stop", success=True, score=5)
    _after_grace(recorder)
    statuses: list[dict] = []
    recorder._status_pub.publish = lambda msg: statuses.append(json.loads(msg.data))
    _send(recorder, cmd="start", meta={"status": "mine"})  # a field the recorder writes: refused
    _send(recorder, cmd="stop", success=False)  # ignored: nothing records
    _send(recorder, cmd="score", success=False, score=0)
    m = _sidecar(recorder, "episode_0000")
    assert (m["success"], m["score"]) == (True, 5)
    assert [s["state"] for s in statuses] == ["error", "idle", "idle"] and "while not recording" in statuses[1]["warning"]
    assert "'score' with no episode to score" in statuses[2]["warning"]  # (answered since 2026-12-07)


def test_a_stop_just_after_a_write_error_close_keeps_its_verdict(recorder) -> None:
    """The recorder closed the episode on a write error ('failed') just before the operator's stop: the stop's
    verdict goes to it (as after a timeout or a low-disk stop), not lost."""
    _send(recorder, cmd="start")
    recorder.discovery.on_lost("/joint_states", 4)
    recorder._fail("disk error (test)")
    _send(recorder, cmd="stop", success=True, score=3)
    m = _sidecar(recorder, "episode_0000")
    assert (m["status"], m["success"], m["score"]) == ("failed", True, 3)
    assert m["messages_lost"] == {"/joint_states": 4}


def test_messages_dds_lost_during_an_episode_are_in_its_sidecar(recorder) -> None:
    """The recorder's subscriptions count the messages DDS reports lost (rclpy's message_lost event); the
    sidecar names those of the episode per topic (losses before its start are not its)."""
    recorder.discovery.on_lost("/cam_high/image_raw", 3)  # before the episode
    _send(recorder, cmd="start")
    recorder.discovery.on_lost("/cam_high/image_raw", 2)
    recorder.discovery.on_lost("/joint_states", 1)
    _send(recorder, cmd="stop", success=True)
    _after_grace(recorder)
    assert _sidecar(recorder, "episode_0000")["messages_lost"] == {"/cam_high/image_raw": 2, "/joint_states": 1}
    _send(recorder, cmd="start")
    _send(recorder, cmd="stop", success=True)
    _after_grace(recorder)
    assert _sidecar(recorder, "episode_0001")["messages_lost"] == {}


def test_a_stop_verdict_is_on_disk_during_the_grace_and_survives_a_kill(recorder) -> None:
    """The stop's verdict is written into the sidecar (pending_stop) when the stop arrives, and a score in the grace
    too; a repair of a bag whose recorder died within the grace keeps that verdict (recovery.stop_status), so the
    training set does not leave it out as cut short; the close itself applies and removes pending_stop."""
    from types import SimpleNamespace

    from rtc_ros.recording.recover import _recovered_meta

    _send(recorder, cmd="start")
    _send(recorder, cmd="stop", success=True, score=2)
    _send(recorder, cmd="score", score=4)  # within the grace
    live = _sidecar(recorder, "episode_0000")
    assert live["status"] == "recording"
    assert live["pending_stop"] == {"success": True, "score": 4, "status": "completed"}
    res = SimpleNamespace(good_bytes=10, total_bytes=10, stopped="end")
    fixed = _recovered_meta(live, res, {"/joint_states": {"count": 1, "first_ns": 1, "last_ns": 2}}, "x.broken")
    assert (fixed["status"], fixed["success"], fixed["score"]) == ("recovered", True, 4)
    assert fixed["recovery"]["stop_status"] == "completed" and "pending_stop" not in fixed
    _after_grace(recorder)
    m = _sidecar(recorder, "episode_0000")
    assert (m["status"], m["success"], m["score"]) == ("completed", True, 4) and "pending_stop" not in m


def test_a_recorder_beside_arms_with_their_own_names_starts(tmp_path, ros_env, capfd) -> None:
    """The recorder declares no arms: per-arm keys under /** for arms named left_arm / right_arm (the other nodes')
    are known from the shared `arms`, neither refused as misspellings of left.* nor warned; a misspelt one of
    those arms still refuses the start."""
    import yaml

    from rtc_ros.nodes.episode_recorder import EpisodeRecorder
    from rtc_ros.nodes.params import ParameterError

    def params(arm_key: str) -> Path:
        path = tmp_path / f"{arm_key}.yaml"
        path.write_text(yaml.safe_dump({"/**": {"ros__parameters": {
            "arms": ["left_arm", "right_arm"], "left_arm": {arm_key: [0.05]}, "right_arm": {"max_step": [0.05]},
            "output_dir": str(tmp_path), "param_nodes": []}}}))
        return path

    for arm_key, refused in (("max_step", False), ("max_stpe", True)):
        rclpy.init()
        try:
            args = ["--ros-args", "--params-file", str(params(arm_key))]
            if refused:
                with pytest.raises(ParameterError, match=r"'left_arm\.max_stpe'.*did you mean 'left_arm\.max_step'"):
                    EpisodeRecorder(cli_args=args, use_global_arguments=False)
            else:
                EpisodeRecorder(cli_args=args, use_global_arguments=False).destroy_node()
                assert "is not a parameter of any rtc_ros node" not in capfd.readouterr().err
        finally:
            rclpy.shutdown()
    # `arms` only in the executor's and policy_inference's sections (the recorder sees the per-arm keys under /**
    # but not the arms): not judged (an audit: refused as "no arm 'left_arm' is configured"; the others took it)
    path = tmp_path / "sections.yaml"
    path.write_text(yaml.safe_dump({
        "/**": {"ros__parameters": {"left_arm": {"max_step": [0.05]}, "output_dir": str(tmp_path), "param_nodes": []}},
        "/**/chunk_executor": {"ros__parameters": {"arms": ["left_arm"]}},
        "/**/policy_inference": {"ros__parameters": {"arms": ["left_arm"]}}}))
    rclpy.init()
    try:
        EpisodeRecorder(cli_args=["--ros-args", "--params-file", str(path)], use_global_arguments=False).destroy_node()
    finally:
        rclpy.shutdown()


def _wait(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("recorder", [["camera_topics:=[cam/image_raw]"]], indirect=True)
def test_a_topic_whose_publishers_change_type_and_a_silent_camera_are_named(recorder, ros_env) -> None:
    """A data-collection walkthrough (2026-12-07): /joint_states republished as Float64MultiArray while recording
    lost every joint state without a word -- the topic's type list holds the recorder's own JointState
    subscription, so 'the recorded type is gone' never fired -- and a camera that published nothing in an episode
    was only found at conversion. Both are now logged and named in the sidecar (``dropped_topics``,
    ``silent_topics``: the ``required_topics``, default joint_states, and the cameras); an event topic
    (``sim/protective_stops``) is not named. (An earlier test faked ``get_topic_names_and_types`` without the
    recorder's own type, and passed.)"""
    import subprocess
    import sys

    from sensor_msgs.msg import JointState

    from std_msgs.msg import String as Str

    other = rclpy.create_node("driver")
    pub = other.create_publisher(JointState, "/joint_states", 10)
    sim = rclpy.create_node("sim")
    sim.create_publisher(Str, "/sim/protective_stops", 10)  # an event topic: its publisher is there, silent
    assert _wait(lambda: (recorder.discovery.scan(), {"/joint_states", "/sim/protective_stops"}
                          <= set(recorder.discovery.subs))[1])
    _send(recorder, cmd="start")
    other.destroy_node()
    # (another process: one DDS participant cannot hold two types on a topic)
    code = ("import rclpy, time; from std_msgs.msg import Float64MultiArray; rclpy.init(); "
            "n = rclpy.create_node('driver2'); n.create_publisher(Float64MultiArray, '/joint_states', 10); time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=ros_env)
    try:
        assert _wait(lambda: (recorder.discovery.scan(), "/joint_states" in recorder.discovery.type_changed)[1], 20)
        _send(recorder, cmd="stop")
        _after_grace(recorder)
    finally:
        proc.kill()
        proc.wait()
        sim.destroy_node()
    m = _sidecar(recorder, "episode_0000")
    assert "std_msgs/msg/Float64MultiArray" in m["dropped_topics"]["/joint_states"]
    # (the camera never published; joint states were published, then nothing of their type came)
    assert m["silent_topics"] == ["/cam/image_raw", "/joint_states"]


def test_messages_queued_while_the_recorder_was_busy_keep_their_receipt_time(recorder) -> None:
    """A data-collection walkthrough (2026-12-07): commands queued while the recorder opened an episode's bag were
    stamped when their callback ran, together, up to 230 ms late; a command topic's grid then took the burst for the
    ticks' phase. The bag now gets the middleware's receipt time (rclpy's message info)."""
    from rosbags.highlevel import AnyReader
    from sensor_msgs.msg import JointState

    other = rclpy.create_node("driver")
    pub = other.create_publisher(JointState, "/joint_states", 10)
    assert _wait(lambda: (recorder.discovery.scan(), "/joint_states" in recorder.discovery.subs)[1])
    _send(recorder, cmd="start")
    sent = []
    for k in range(5):  # the recorder does not spin meanwhile: busy
        sent.append(time.time_ns())
        pub.publish(JointState(name=["a"], position=[float(k)]))
        time.sleep(0.05)
    for _ in range(20):
        rclpy.spin_once(recorder, timeout_sec=0.01)
    _send(recorder, cmd="stop")
    _after_grace(recorder)
    other.destroy_node()
    with AnyReader([Path(recorder.out) / "episode_0000"]) as r:
        got = [ts for c, ts, _ in r.messages() if c.topic == "/joint_states"]
    assert len(got) == 5
    late = np.array(got) - np.array(sent)
    assert np.all(late >= 0) and np.all(late < 20_000_000), late / 1e6  # (before: 200 ms late for the first)


def test_a_score_before_any_stop_and_a_start_that_fails_are_answered(recorder, monkeypatch) -> None:
    """A data-collection walkthrough (2026-12-07): a 'score' before any episode was stopped was only logged (stop and
    abort while idle are answered on the status topic), and the start service said only "could not start"."""
    from std_srvs.srv import Trigger

    said: list[tuple] = []
    monkeypatch.setattr(recorder, "_publish_status", lambda state, **kw: said.append((state, kw)))
    _send(recorder, cmd="score", score=3)
    assert said == [("idle", {"warning": "'score' with no episode to score (none stopped yet, or the last start failed): ignored"})]
    recorder.session.output_dir = Path(recorder.out) / "afile"
    recorder.session.output_dir.write_text("x")  # the output directory became a file
    r = recorder.commands.srv_start(Trigger.Request(), Trigger.Response())
    assert not r.success and r.message.startswith("could not start: recording path") and "output_dir" in r.message


def test_the_recorder_publishes_a_diagnostics_status(recorder, monkeypatch) -> None:
    """A diagnostics-only walkthrough (2026-12-07): the recorder published no /diagnostics, so a full disk or an episode
    cut short never reached a dashboard. Idle OK; recording names the episode; a required topic silent after 2 s, DDS
    losses, an episode cut short: WARN; a failed one (a write error): ERROR naming the recover command; little free
    space: WARN."""
    from diagnostic_msgs.msg import DiagnosticStatus

    from rtc_ros.nodes import recorder_diagnostics
    from rtc_ros.nodes.recorder_diagnostics import recorder_status

    level, message, vals = recorder_status(recorder)
    assert (level, message, vals["state"]) == (DiagnosticStatus.OK, "idle", "idle") and vals["free_mb"] > 0
    _send(recorder, cmd="start", meta={"task": "t"})
    level, message, vals = recorder_status(recorder)
    assert level == DiagnosticStatus.OK and message.startswith("recording episode episode_0000 (0 s, 0 messages)")
    monkeypatch.setattr(recorder_diagnostics, "SILENT_AFTER_S", -1.0)  # (no 2 s wait in a test)
    recorder.discovery.on_lost("/joint_states", 2)
    level, message, _ = recorder_status(recorder)
    assert level == DiagnosticStatus.WARN and "no message on ['/joint_states'] in this episode" in message
    assert "messages lost in this episode: {'/joint_states': 2}" in message
    recorder.shutdown("test")  # cut short by the recorder: 'interrupted'
    level, message, vals = recorder_status(recorder)
    assert level == DiagnosticStatus.WARN and "the last episode (episode_0000) ended interrupted" in message
    assert vals["last_status"] == "interrupted"
    _send(recorder, cmd="start")
    _send(recorder, cmd="abort")  # an operator's abort (or a max_duration timeout) is no warning
    _after_grace(recorder)
    level, message, _ = recorder_status(recorder)
    assert (level, message) == (DiagnosticStatus.OK, "idle")
    _send(recorder, cmd="start")
    recorder._fail("disk error (test)")
    level, message, _ = recorder_status(recorder)
    assert level == DiagnosticStatus.ERROR and "the last episode (episode_0002) failed: disk error (test)" in message
    assert "python -m rtc_ros.recording.recover" in message
    recorder.p.min_free_mb = 1e12  # a start refused (too little free space): ERROR until a start succeeds
    _send(recorder, cmd="start")
    level, message, _ = recorder_status(recorder)
    assert level == DiagnosticStatus.ERROR and message.startswith("the last start was refused: ") and "MB free" in message
    assert "a start is refused below min_free_mb" in message  # (idle: warned below min_free_mb too)
    recorder.p.min_free_mb = 1.0  # set back (or space freed): a WARN saying the next start can go ahead
    level, message, _ = recorder_status(recorder)
    assert level == DiagnosticStatus.WARN and message.startswith("idle; the last start was refused (") and (
        "enough for min_free_mb = 1: the next start can go ahead" in message), message
    _send(recorder, cmd="start")
    level, message, _ = recorder_status(recorder)
    assert message.startswith("recording episode episode_0003") and "refused" not in message, message  # (silent: WARN)
    recorder.p.stop_free_mb = 1e12  # (a disk under twice stop_free_mb while recording)
    _, message, _ = recorder_status(recorder)
    assert "MB free in" in message and "a running episode closes below stop_free_mb" in message
