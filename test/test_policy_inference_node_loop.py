"""policy_inference in-process (no DDS): the inference thread's failure paths, driven by hand.

A warm-up failure is retried (before 2026-12-05 one failure stopped inference for good behind a live
process), and a guided chunk whose prefix chunk was replaced while it was sampled is not published."""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from sensor_msgs.msg import JointState  # noqa: E402

from rtc_ros.nodes import conversions as conv  # noqa: E402
from rtc_ros.runtime.contract import ExecutorReport  # noqa: E402
from rtc_ros.runtime.inference_loop import Plan  # noqa: E402
from test_nodes_harness import write_params  # noqa: E402


@pytest.fixture
def node(tmp_path):
    from conftest import make_small_policy

    from rtc_ros.nodes.policy_inference import PolicyInferenceNode

    spec = make_small_policy(tmp_path / "small")
    params = write_params(tmp_path / "p.yaml", inference={"policy_spec": str(spec), "camera_topics": [],
                                                          "warmup_iterations": 1})
    rclpy.init()
    n = PolicyInferenceNode(cli_args=["--ros-args", "--params-file", str(params)], use_global_arguments=False)
    n.stop()  # no inference thread: the test drives it
    try:
        yield n
    finally:
        n.destroy_node()
        rclpy.shutdown()


def test_a_failed_warm_up_is_retried(node) -> None:
    real, calls = node.generator.generate, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory (simulated: the first call only)")
        return real(*args, **kwargs)

    node.generator.generate = flaky
    node._running.set()
    try:
        assert node._warmup_until_done(first_retry_s=0.01)
    finally:
        node._running.clear()
    assert len(calls) == 2 and node.errors == 1 and len(node.warmup_ms) == 1  # the failed try left no timing
    assert node.state == "error"  # until _run marks it active


def test_a_warm_up_failing_for_good_keeps_retrying_with_backoff_until_stopped(node) -> None:
    """The backoff holds while executor reports (50 Hz, each notifying the inference thread) arrive: a review
    found the first version retrying at the report rate, an error line each time."""
    import threading

    def broken(*args, **kwargs):
        raise ValueError("observation shape mismatch (simulated)")

    node.generator.generate = broken
    node._running.set()
    reports = threading.Event()

    def report_rate() -> None:  # what _on_executor_state does for every report
        while not reports.is_set():
            with node._wake:
                node._wake.notify()
            time.sleep(0.01)

    notifier = threading.Thread(target=report_rate)
    notifier.start()
    th = threading.Thread(target=lambda: setattr(node, "_result", node._warmup_until_done(first_retry_s=0.2)))
    th.start()
    time.sleep(1.0)  # tries at 0, 0.2, 0.6 s (then 1.4 s): 3, not ~100
    tries = node.errors
    node.stop()  # wakes the backoff wait
    th.join(5)
    reports.set()
    notifier.join(5)
    assert not th.is_alive() and node._result is False and node.state == "error"
    assert 2 <= tries <= 4, tries


def _report(node, step: int, seq: int) -> None:
    msg = JointState(name=node.names, position=[0.0] * len(node.names))
    msg.header.frame_id = ExecutorReport(step=step, seq=seq, takeover=5, consumed=1).encode()
    msg.header.stamp = conv.ns_to_stamp(time.time_ns())
    node._on_executor_state(msg)


@pytest.mark.parametrize("running_seq,published", [(3, 1), (4, 0)])
def test_a_guided_chunk_is_not_published_when_its_prefix_chunk_was_replaced(node, running_seq, published) -> None:
    """Planned toward chunk 3; by the time it is sampled chunk 3 still runs (published) or chunk 4, one counted
    lost that came after all, took over (dropped: spliced into chunk 4 it would jump; planned again)."""
    _report(node, 20, running_seq)
    m = len(node.names)
    plan = Plan(seq=9, t_obs=21, d=2, s=16, prev_remaining=np.zeros((34, m)), d_raw=2, base_seq=3)
    obs = node.policy.typical_observation()
    node._infer(plan, obs, time.time_ns(), time.perf_counter())
    assert node.published == published and node.superseded == 1 - published


def test_a_policy_failing_its_first_sample_is_refused_at_start(tmp_path, monkeypatch) -> None:
    """encode errors, wrong shapes, a non-differentiable velocity, NaN: found by one plain and one guided sample
    while the node starts, refused naming policy_spec (exit code 2), not only by a background warm-up."""
    from conftest import make_small_policy

    from rtc_ros.nodes.params import ParameterError
    from rtc_ros.nodes.policy_inference import PolicyInferenceNode
    from rtc_ros.runtime.generator import ChunkGenerator

    def nan_chunk(self, *args, **kwargs):
        raise FloatingPointError("policy produced a non-finite chunk")

    monkeypatch.setattr(ChunkGenerator, "generate", nan_chunk)
    spec = make_small_policy(tmp_path / "small")
    params = write_params(tmp_path / "p.yaml", inference={"policy_spec": str(spec), "camera_topics": []})
    rclpy.init()
    try:
        with pytest.raises(ParameterError, match=r"'policy_spec'.*first sample.*FloatingPointError: policy produced"):
            PolicyInferenceNode(cli_args=["--ros-args", "--params-file", str(params)], use_global_arguments=False)
    finally:
        rclpy.shutdown()


def test_a_policy_in_other_units_plans_in_robot_units_in_the_node(tmp_path) -> None:
    """policy_inference with a spec whose policy works in degrees (its statistics rewritten, robot_units: degrees
    on every joint) builds its observation from the robot's joint states in radians and samples the same chunk,
    in radians, as the original policy does: the node's observation and generator go through the map."""
    import yaml
    from safetensors.numpy import load_file, save_file

    from conftest import make_small_policy
    from rtc_ros.nodes.policy_inference import PolicyInferenceNode
    from test_nodes_harness import JOINTS

    orig = make_small_policy(tmp_path / "small", seed=3)
    spec = yaml.safe_load(orig.read_text())
    stats = load_file(str(orig.parent / spec["normalization"]))
    deg = 180.0 / np.pi
    conv_stats = {k: (v * deg).astype(np.float32) if k in ("action_mean", "action_std", "obs_mean.joint_positions",
                                                         "obs_std.joint_positions") else v for k, v in stats.items()}
    save_file(conv_stats, str(orig.parent / "deg.norm.safetensors"))
    (orig.parent / "deg.yaml").write_text(yaml.safe_dump(dict(spec, normalization="deg.norm.safetensors",
                                                              joint_names=JOINTS,
                                                              robot_units={j: "degrees" for j in JOINTS})))
    chunks = []
    for path in (orig, orig.parent / "deg.yaml"):
        params = write_params(tmp_path / "p.yaml", inference={"policy_spec": str(path), "camera_topics": [],
                                                              "warmup_iterations": 1})
        rclpy.init()
        n = PolicyInferenceNode(cli_args=["--ros-args", "--params-file", str(params)], use_global_arguments=False)
        n.stop()
        try:
            js = JointState(name=JOINTS, position=[0.03 * i for i in range(len(JOINTS))])
            js.header.stamp = conv.ns_to_stamp(time.time_ns())
            n._on_joint_state(js)
            obs, _stamp, _ = n._observation()
            n.generator._gen.manual_seed(11)  # the same noise for both
            chunks.append(n.generator.generate(obs))
        finally:
            n.destroy_node()
            rclpy.shutdown()
    assert np.abs(chunks[0]).max() > 0.01
    np.testing.assert_allclose(chunks[1], chunks[0], atol=2e-4)


def test_a_joint_history_policy_sees_the_positions_dt_apart_and_none_from_before_a_reset(tmp_path) -> None:
    """A policy with a [2, M] joint entry (LeRobot's Diffusion Policy with n_obs_steps 2): from a 200 Hz driver
    the node's observation holds the newest joint state and the one nearest a control period (20 ms) before
    it; after the executor reset (its resets count changed: the robot was moved) a position from before the
    reset's report is not used: the oldest since is repeated."""
    from conftest import make_small_policy
    from rtc_ros.nodes.policy_inference import PolicyInferenceNode
    from test_nodes_harness import JOINTS

    spec = make_small_policy(tmp_path / "small", joint_rows=2)
    params = write_params(tmp_path / "p.yaml", inference={"policy_spec": str(spec), "camera_topics": [],
                                                          "warmup_iterations": 1})
    rclpy.init()
    n = PolicyInferenceNode(cli_args=["--ros-args", "--params-file", str(params)], use_global_arguments=False)
    n.stop()
    try:
        t0 = time.time_ns() - 10**9

        def joint_state(k: int) -> None:  # measurement k: 5 ms apart, every joint at k
            js = JointState(name=JOINTS, position=[float(k)] * len(JOINTS))
            js.header.stamp = conv.ns_to_stamp(t0 + k * 5_000_000)
            n._on_joint_state(js)

        def report(resets: int, k: float) -> None:
            msg = JointState(name=n.names, position=[0.0] * len(n.names))
            msg.header.frame_id = ExecutorReport(step=10, seq=-1, takeover=-1, consumed=0, resets=resets).encode()
            msg.header.stamp = conv.ns_to_stamp(t0 + int(k * 5_000_000))
            n._on_executor_state(msg)

        for k in range(20):
            joint_state(k)
        obs, stamp, _ = n._observation()
        assert stamp == t0 + 19 * 5_000_000
        np.testing.assert_array_equal(obs["joint_positions"][:, 0], [19, 15])  # 20 ms = 4 measurements before
        assert np.isfinite(n.generator.generate(obs)).all()
        report(0, 19.5)
        report(1, 20.5)  # a reset between measurements 20 and 21
        for k in range(20, 23):
            joint_state(k)
        obs, _, _ = n._observation()
        np.testing.assert_array_equal(obs["joint_positions"][:, 0], [22, 21])  # not 18, nor 20
    finally:
        n.destroy_node()
        rclpy.shutdown()


def test_failed_inferences_back_off_and_a_success_resets_it(node) -> None:
    """A failing model call (a CUDA OOM) is retried after 50 ms, doubling up to 2 s, not at the executor's report
    rate (~50 Hz, each waking the thread); _step plans nothing before then; a success starts afresh."""
    real = node.generator.generate
    m = len(node.names)
    plan = Plan(seq=9, t_obs=21, d=2, s=16, prev_remaining=np.zeros((34, m)), d_raw=2, base_seq=-1)
    obs = node.policy.typical_observation()

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    node.generator.generate = broken
    waits = []
    for _ in range(8):
        t = time.monotonic()
        node._infer(plan, obs, time.time_ns(), time.perf_counter())
        waits.append(node._retry_at - t)
    assert node.errors == 8 and node.published == 0
    assert waits == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0], abs=0.02)
    observed = []
    node._observation = lambda: observed.append(1)  # _step asks for an observation only when it may plan
    _report(node, 20, -1)
    node._step()
    assert observed == []  # backing off
    node._retry_at = 0.0
    node.generator.generate = real
    node._infer(plan, obs, time.time_ns(), time.perf_counter())
    assert node.published == 1 and node._fails == 0


def test_diagnostics_warn_when_no_chunk_is_published_while_the_executor_runs(node) -> None:
    """Active, the executor running (not paused), nothing published for longer than two chunk lengths: WARN naming
    the errors and refused observations (the status stayed OK before: a node that sent the robot nothing looked
    healthy); paused, just resumed, or a chunk published recently: no such note."""
    from diagnostic_msgs.msg import DiagnosticStatus

    from rtc_ros.nodes.inference_diagnostics import idle_limit_s, inference_status

    node.state, node.errors, node.obs_rejected = "active", 7, {"stale": 3}
    node.last_rejected = "camera 'cam_high' image is 0.551s old"
    node.active_since = time.monotonic() - 10 * idle_limit_s(node.p.horizon, node.dt)
    node.latency.add(5.0)  # (not the "every observation refused so far" rule)
    _report(node, 20, 3)
    level, message, vals = inference_status(node)
    assert level == DiagnosticStatus.WARN and "no chunk published for" in message and "errors 7" in message
    assert "refused since the last status {'stale': 3} (the newest: camera 'cam_high' image is 0.551s old)" in message
    assert vals["idle_s"] > 0
    _, message, _ = inference_status(node)  # the counts are per status (a walkthrough: old faults were quoted)
    assert "no chunk published for" in message and "refused since" not in message
    node.obs_rejected = {"stale": 3, "missing": 2}
    _, message, _ = inference_status(node)
    assert "refused since the last status {'missing': 2}" in message
    node.last_published_t = time.monotonic()
    level, message, _ = inference_status(node)
    assert "no chunk published" not in message
    node.last_published_t = 0.0
    msg = JointState(name=node.names, position=[0.0] * len(node.names))
    msg.header.frame_id = ExecutorReport(step=21, seq=3, takeover=5, consumed=1, paused=True).encode()
    node._on_executor_state(msg)
    assert "no chunk published" not in inference_status(node)[1]
    _report(node, 22, 3)  # resumed just now: idle counts from the pause (it WARNed at once after every resume)
    assert node.loop.executor_running and "no chunk published" not in inference_status(node)[1]


def test_diagnostics_say_chunks_refused_in_a_row_a_hung_model_call_and_infeasible_delays(node) -> None:
    """A diagnostics-only walkthrough: with extra_latency_ms 2000 every chunk was refused as stale while the status
    said OK (one chunk every 2 s never reached a quarter per period), a 30 s model call read as 'observations
    refused: stale', and a forecast delay the chunk cannot hold was in the log only. Each is a WARN now, the refusals
    until a chunk takes over, the infeasible delays per period."""
    from diagnostic_msgs.msg import DiagnosticStatus

    from rtc_ros.nodes.inference_diagnostics import inference_status

    node.state = "active"
    _report(node, 20, 3)
    level, message, _ = inference_status(node)
    assert "chunks were refused" not in message and "running for" not in message and "beyond what a chunk" not in message
    node.loop.failed_in_row, node.loop.last_failure = 3, "refused (stale)"
    node.busy_since = time.monotonic() - 5.0
    node.loop.infeasible += 2
    level, message, _ = inference_status(node)
    assert level == DiagnosticStatus.WARN
    assert "the last 3 chunks were refused by the executor or lost, none taken over (the newest: refused (stale))" \
        in message
    assert "an inference has been running for 5." in message and "a model call hung" in message
    assert "was beyond what a chunk allows 2 times since the last status" in message
    node.busy_since = 0.0
    _, message, _ = inference_status(node)
    assert "chunks were refused" in message and "running for" not in message and "beyond what a chunk" not in message


def test_a_node_loading_its_policy_publishes_a_status(tmp_path, monkeypatch, ros_env) -> None:
    """A diagnostics-only walkthrough: policy_inference published nothing for the 4-6 s its policy took to load (a
    minute for a VLA), so a dashboard saw no node at all; now a WARN 'loading the policy ...' every period."""
    import threading

    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor

    from conftest import make_small_policy

    from rtc_ros.nodes import policy_inference as pi

    real = pi.prepare_policy
    monkeypatch.setattr(pi, "prepare_policy", lambda p: (time.sleep(1.5), real(p))[1])  # a slow load
    spec = make_small_policy(tmp_path / "small")
    params = write_params(tmp_path / "p.yaml", inference={"policy_spec": str(spec), "camera_topics": []})
    rclpy.init()
    try:
        seen: list[tuple[str, str]] = []
        listener = rclpy.create_node("listener")
        listener.create_subscription(DiagnosticArray, "/diagnostics", lambda m: seen.extend(
            (s.message, {kv.key: kv.value for kv in s.values}.get("state", "")) for s in m.status), 10)
        ex = SingleThreadedExecutor()
        ex.add_node(listener)
        threading.Thread(target=ex.spin, daemon=True).start()
        n = pi.PolicyInferenceNode(cli_args=["--ros-args", "--params-file", str(params)], use_global_arguments=False)
        n.stop()
        loading = [m for m, state in seen if state == "loading"]
        assert loading and loading[-1].startswith(f"loading the policy {spec}"), seen
        n.destroy_node()
        ex.shutdown()
        listener.destroy_node()
    finally:
        rclpy.shutdown()


def test_the_warm_up_latency_is_one_chunk_s_when_a_pass_samples_several() -> None:
    """An audit: with CUDA graphs an rtc_trained policy's warm-up pass samples one chunk per trained delay
    (warmup_delays), and the node took the whole pass as one inference: d_init was several inferences long (the
    first chunks froze more actions than needed, infeasible-delay warnings). A stand-in generator: 20 ms a chunk,
    6 trained delays."""
    import threading
    from types import SimpleNamespace

    from rtc_ros.nodes.policy_inference import PolicyInferenceNode
    from rtc_ros.runtime.inference_loop import InferenceLoopCore

    class Graphed:
        graphs, max_prefix, calls = object(), 6, 0

        def generate(self, obs, prev, d, s):
            Graphed.calls += 1
            time.sleep(0.02)
            return np.zeros((50, 2))

    running = threading.Event()
    running.set()
    loop = InferenceLoopCore(50, 25, 10, "rtc_trained", max_d=6)
    me = SimpleNamespace(policy=SimpleNamespace(typical_observation=lambda: np.zeros(3)), generator=Graphed(),
                         p=SimpleNamespace(warmup_iterations=2, s_min=25, horizon=50, extra_latency_ms=0.0),
                         warmup_ms=[], _running=running, loop=loop, dt=0.02)
    PolicyInferenceNode._warmup(me)
    assert Graphed.calls == 12 and 15 < me.warmup_ms[-1] < 60, me.warmup_ms  # one chunk's time (was ~120 ms)
    assert max(loop.queue.queue()) <= 3, loop.queue.queue()  # d_init: about one inference (was 7)
