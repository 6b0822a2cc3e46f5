"""Both nodes as real processes with a small policy, exchanging real messages over DDS.

Checks, end to end: chunks splice in at the consumed delay and every executed step is exactly the
chunk's action for that step; guided RTC chunks match the frozen prefix; injected latency raises
the measured d; stale observations are rejected and the executor then holds (starvation).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from test_nodes_harness import JOINTS, Harness, write_params

EXECUTOR = "rtc_ros.nodes.chunk_executor"
INFERENCE = "rtc_ros.nodes.policy_inference"
TOPICS = {"left": {"command_topic": "left_controller/commands"}, "right": {"command_topic": "right_controller/commands"}}


def takeovers(h: Harness) -> dict[int, object]:
    """First executor state of each chunk seq (its takeover)."""
    out: dict[int, object] = {}
    for r in h.snapshot_states():
        if r.st.seq >= 0 and r.st.seq not in out:
            out[r.st.seq] = r
    return out


def check_switch_execution(h: Harness) -> int:
    """Every non-hold step commands chunk[seq][step - origin] exactly; returns how many were checked."""
    states = h.snapshot_states()
    steps = [r.st.step for r in states]
    assert all(b > a for a, b in zip(steps, steps[1:])), "executor steps repeated or went back"
    checked = 0
    with h.lock:
        chunks = dict(h.chunks)
    for r in states:
        if r.st.hold or r.st.seq not in chunks:
            continue
        chunk, meta = chunks[r.st.seq]
        # takeover index = consumed delay; the executor's start-up chunk starts at its index 0 (consumed 0)
        origin = r.st.takeover - r.st.consumed
        assert origin == meta.t_obs or (r.st.consumed == 0 and r.st.seq == min(chunks)), (r.st, meta)
        np.testing.assert_allclose(r.position, chunk[r.st.step - origin], atol=1e-9,
                                   err_msg=f"step {r.st.step} seq {r.st.seq}")
        checked += 1
    return checked


def set_param(h: Harness, node: str, name: str, value: float) -> None:
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    cli = h.node.create_client(SetParameters, f"/{node}/set_parameters")
    assert cli.wait_for_service(timeout_sec=20)
    req = SetParameters.Request()
    req.parameters = [Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value))]
    fut = cli.call_async(req)
    end = time.monotonic() + 20
    while not fut.done() and time.monotonic() < end:
        time.sleep(0.05)
    assert fut.done() and fut.result().results[0].successful


def test_rtc_pipeline_splices_prefix_latency_and_starvation(start_node, tmp_path, small_policy) -> None:
    params = write_params(tmp_path / "p.yaml", executor=dict(TOPICS),
                          inference={"policy_spec": str(small_policy), "camera_topics": []}, s_min=20)
    ex = start_node(EXECUTOR, "--params-file", str(params))
    inf = start_node(INFERENCE, "--params-file", str(params))
    with Harness() as h:
        # phase 1: baseline, at least 6 chunks taken over
        ok = h.wait_for(lambda s: len(takeovers(s)) >= 6, 150)
        assert ok, (ex.output()[-2000:], inf.output()[-3000:])
        assert inf.wait_for_output("active", 1)
        assert inf.wait_for_output("max_step, joint limits, max_accel and rate are this node's", 30), \
            inf.output()[-3000:]  # asked over DDS (retried every 5 s: a loaded CI run once took over 10 s)
        base = takeovers(h)
        d0 = [r.st.consumed for seq, r in sorted(base.items())[-5:]]  # the latest, not the start-up's slower ones
        # phase 2: +200 ms injected latency (10 ticks at 50 Hz) raises the consumed d (by more than a loaded
        # machine's own swings between the two phases: CI measured a 9-step baseline where local runs see 1-2)
        set_param(h, "policy_inference", "extra_latency_ms", 200.0)
        with h.lock:  # after the set returned (its client's discovery takes a while): the next but one carries it
            n0 = max(h.chunks)
        assert h.wait_for(lambda s: len([q for q in takeovers(s) if q > n0 + 1]) >= 5, 90), inf.output()[-2000:]
        late = takeovers(h)
        d200 = [r.st.consumed for seq, r in sorted(late.items()) if seq > n0 + 1]
        set_param(h, "policy_inference", "extra_latency_ms", 0.0)
        assert h.wait_for(lambda s: "consumed_p50" in s.diag("policy_inference"), 10)
        diag_inf, diag_ex = h.diag("policy_inference"), h.diag("chunk_executor")
        # phase 3: the robot stops publishing joint states -> observations go stale -> no inference -> hold
        h.publish_joint_states = False
        assert inf.wait_for_output("not inferring: joint state is", 30), inf.output()[-2000:]
        assert ex.wait_for_output("holding position (starved)", 30), ex.output()[-2000:]
        assert h.wait_for(lambda s: s.states[-1].st.hold, 5)

    assert check_switch_execution(h) > 100
    # consumed delays are what the executor measured; +200 ms must add ~10 ticks
    med0, med200 = float(np.median(d0)), float(np.median(d200))
    assert med200 - med0 >= 5.0 and med200 >= 10.0, (d0, d200)
    # guided RTC: each new chunk's frozen prefix continues the chunk that was executing
    with h.lock:
        chunks = dict(h.chunks)
    errs = []
    for seq, (chunk, meta) in sorted(chunks.items()):
        if seq - 1 in chunks and meta.d > 0 and meta.s + meta.d <= 50:
            prev = chunks[seq - 1][0]
            errs.append(np.abs(chunk[:meta.d] - prev[meta.s:meta.s + meta.d]).max())
    assert len(errs) >= 5 and float(np.median(errs)) < 0.15, errs  # unguided: ~0.8 for this policy
    for key in ("latency_ms_p50", "latency_ms_p95", "latency_ms_max", "d", "consumed_p50", "overhead_ms_p50",
                "reports_behind_max"):
        assert key in diag_inf, diag_inf
    for key in ("period_ms_p50", "consumed_p50", "d_p50", "jump_max", "holds"):
        assert key in diag_ex, diag_ex


def test_latency_spike_over_dds_rejected_then_replanned_at_once(start_node, tmp_path, small_policy) -> None:
    """A +1.5 s spike (1.5 H at H = 50, 50 Hz): the late chunk is rejected as stale, the executor holds,
    policy_inference replans at once (no timeout) and the robot moves again within about one inference
    after the spike; the overrun enters Q; no step is executed twice or skipped. The acknowledgement
    timeout is set to 20 s (1000 steps), so a loop that waited for it instead of replanning on the
    rejection would resume after more than 20 s, not within the 10 s asserted (normally ~3 s: one
    inference carrying the spike and one without; the margin is a loaded machine's)."""
    params = write_params(tmp_path / "p.yaml", executor=dict(TOPICS),
                          inference={"policy_spec": str(small_policy), "camera_topics": [],
                                     "ack_timeout_steps": 1000}, s_min=20)
    ex = start_node(EXECUTOR, "--params-file", str(params))
    inf = start_node(INFERENCE, "--params-file", str(params))
    with Harness() as h:
        assert h.wait_for(lambda s: len(takeovers(s)) >= 3, 150), (ex.output()[-2000:], inf.output()[-3000:])
        set_param(h, "policy_inference", "extra_latency_ms", 1500.0)
        assert ex.wait_for_output("rejected chunk (stale)", 20), ex.output()[-2000:]
        t_rejected = time.monotonic()
        set_param(h, "policy_inference", "extra_latency_ms", 0.0)
        n_before = max(takeovers(h))
        # the inference that started at the rejection may still carry the 1.5 s; the one after must not
        assert h.wait_for(lambda s: any(q > n_before + 1 for q in takeovers(s)), 15), inf.output()[-2000:]
        resumed = time.monotonic() - t_rejected
        assert h.wait_for(lambda s: int(s.diag("policy_inference").get("chunks_rejected", 0)) >= 1, 5)
        assert inf.wait_for_output("refused by the executor: stale", 5), inf.output()[-2000:]  # said on its side too
        diag = h.diag("policy_inference")
        stale = [r for r in h.snapshot_states() if r.st.rejected_reason == "stale"]
    assert stale, "the executor's state never reported the rejection"
    assert float(diag["d_max"]) >= 50, diag  # the overrun (>= H) entered Q
    assert resumed < 10.0, resumed  # <= one inference carrying the spike (1.5 s) + one normal one, with margin;
    # a replan only after the 20 s acknowledgement timeout would take longer
    assert check_switch_execution(h) > 50


def assert_leaves_hold_guided(h: Harness, first, hold: np.ndarray, tol: float = 0.05) -> None:
    """The chunk that takes over from a hold (``first``: its first executor state) was guided toward that
    hold: its frozen actions (indices ``< d``, the delay the node forecast) lie within ``tol`` of it, and so
    does its first command when it took over within the forecast (``consumed <= d``). A takeover later
    than forecast (a latency spike of the restarted process: a CI run measured consumed 9 steps on
    2026-12-05, where local runs measure 1-2) lands in the softly weighted part of the chunk, where RTC's
    guidance is partial by design; on a robot the executor's ``max_step`` bounds that step."""
    with h.lock:
        chunk, meta = h.chunks[first.st.seq]
    frozen = np.abs(chunk[:max(meta.d, 1)] - hold).max()
    assert frozen < tol, (meta, frozen)
    if first.st.consumed <= meta.d:
        jump = np.abs(first.position - hold).max()
        assert jump < tol, (first.st, meta, jump)  # guided from the hold: no jump


def _start_rtc(start_node, tmp_path, policy, **executor) -> tuple:
    """chunk_executor and policy_inference (rtc, s_min 20) on ``policy``: (params file, executor, inference)."""
    params = write_params(tmp_path / "p.yaml", executor=dict(TOPICS, **executor),
                          inference={"policy_spec": str(policy), "camera_topics": []}, s_min=20)
    return params, start_node(EXECUTOR, "--params-file", str(params)), start_node(INFERENCE, "--params-file", str(params))


def _wait_running(h: Harness, ex, inf) -> None:
    assert h.wait_for(lambda s: len(takeovers(s)) >= 3, 150), (ex.output()[-2000:], inf.output()[-3000:])


def test_a_chunk_from_another_producer_runs_out_before_the_node_plans_again(start_node, tmp_path, small_policy) -> None:
    """The executor runs a chunk policy_inference did not publish (as after a policy node restart: its
    predecessor's chunk still runs). Its actions are unknown to the node, so a chunk spliced into it would
    not be guided toward it: the node waits until it has run out and the robot holds, then plans from that
    hold (before 2026-12-05 it planned at once and its chunk took over mid-way)."""
    from rtc_ros.runtime.contract import ChunkMeta

    _, ex, inf = _start_rtc(start_node, tmp_path, small_policy)
    with Harness() as h:
        _wait_running(h, ex, inf)
        last = h.snapshot_states()[-1]
        foreign = max(h.chunks) + 1000
        h.publish_chunk(np.tile(last.position, (50, 1)), ChunkMeta(foreign, last.st.step + 1, 0, 0, "rtc"))
        assert h.wait_for(lambda s: foreign in takeovers(s), 10), ex.output()[-2000:]
        h.drop_chunk_publisher()  # at once: while it exists the node plans nothing at all (the next test)
        assert h.wait_for(lambda s: any(q > foreign for q in takeovers(s)), 30), inf.output()[-3000:]
        states = h.snapshot_states()
    after = [r for r in states if r.st.seq == foreign]
    ran = [r for r in after if not r.st.hold]
    assert len(ran) == 50 - after[0].st.consumed, (len(ran), after[0].st)  # it ran until it was used up ...
    assert after[-1].st.hold, after[-1].st  # ... and the robot held before the node's next chunk took over
    first = next(r for r in states if r.st.seq > foreign)
    assert_leaves_hold_guided(h, first, after[-1].position)
    assert inf.wait_for_output("not published by this node", 1), inf.output()[-3000:]  # and says why it waits


def test_a_second_chunk_producer_stops_planning_until_it_is_gone(start_node, tmp_path, small_policy) -> None:
    """Another node publishing on rtc/chunk (a second policy_inference): two policies would take turns driving
    the robot, so policy_inference plans nothing while the other publisher exists (ERROR in log and
    diagnostics, the executor runs out its chunk and holds) and plans again once it is gone."""
    _, ex, inf = _start_rtc(start_node, tmp_path, small_policy)
    with Harness() as h:
        _wait_running(h, ex, inf)
        h.chunk_publisher()  # exists, publishes nothing
        assert inf.wait_for_output("not planning: another publisher on /rtc/chunk (also published by "
                                   "/test_harness)", 10), inf.output()[-3000:]
        assert h.wait_for(lambda s: "not planning: another publisher on /rtc/chunk" in s.diag_message(
            "policy_inference"), 10)
        time.sleep(0.5)  # a chunk already being computed may still arrive
        n = max(h.chunks)
        time.sleep(2.0)
        assert max(h.chunks) == n  # nothing published meanwhile
        assert h.wait_for(lambda s: s.states[-1].st.hold, 5)  # the executor ran out its chunk and holds
        h.drop_chunk_publisher()
        assert inf.wait_for_output("no other publisher on the chunk topic any more: planning again", 10)
        assert h.wait_for(lambda s: max(s.chunks) > n and any(q > n for q in takeovers(s)), 30), inf.output()[-3000:]


def test_policy_node_killed_and_restarted(start_node, tmp_path, small_policy) -> None:
    """policy_inference crashes (SIGKILL: no clean shutdown) mid-run and is started again. The executor
    runs out the chunk it has, holds (never extrapolates), and the new process continues: its seqs follow
    the old ones (none rejected as out of order), its first chunk leaves the hold without a jump (guided
    toward it), and the executor then follows its chunks exactly."""
    params, ex, inf = _start_rtc(start_node, tmp_path, small_policy)
    with Harness() as h:
        _wait_running(h, ex, inf)
        inf.proc.kill()
        inf.proc.wait(10)
        assert h.wait_for(lambda s: s.states[-1].st.hold, 5)  # the last chunk ran out: the robot holds
        old = h.snapshot_states()[-1].st.seq  # (not max(h.chunks): a chunk may still be on its way then)
        inf2 = start_node(INFERENCE, "--params-file", str(params))
        assert h.wait_for(lambda s: len([q for q in takeovers(s) if q > old]) >= 3, 150), inf2.output()[-3000:]
        states = h.snapshot_states()
    new = sorted(q for q in takeovers(h) if q > old)
    before = [r for r in states if r.st.seq <= old]
    first = next(r for r in states if r.st.seq == new[0])
    assert before[-1].st.hold and before[-1].st.seq == old  # held the old chunk's last action until then
    assert_leaves_hold_guided(h, first, before[-1].position)
    assert all(r.st.rejected_reason != "order" for r in states), "a restarted node reused a seq"
    assert check_switch_execution(h) > 50


def test_policy_node_says_when_the_executor_reports_do_not_come(start_node, tmp_path, small_policy) -> None:
    """Without rtc/executor_state nothing is planned: policy_inference says so (log and a WARN in its
    diagnostics) when none has come (a wrong namespace or domain, no executor) and when they stop (the
    executor died, the network to it failed), instead of staying quiet and green. Once the executor is there it
    asks for the executor's limits: one given to the executor's section only (a split launch) is named."""
    split = {"left": {**TOPICS["left"], "max_step": [50.0]}, "right": dict(TOPICS["right"])}
    params = write_params(tmp_path / "p.yaml", executor=split,
                          inference={"policy_spec": str(small_policy), "camera_topics": []}, s_min=20)
    inf = start_node(INFERENCE, "--params-file", str(params))
    with Harness() as h:
        assert inf.wait_for_output("not planning: no /rtc/executor_state received in", 90), inf.output()[-2000:]
        assert "nobody publishes it" in inf.output()
        assert h.wait_for(lambda s: "no /rtc/executor_state" in s.diag_message("policy_inference"), 10)
        ex = start_node(EXECUTOR, "--params-file", str(params))
        assert h.wait_for(lambda s: len(takeovers(s)) >= 2, 120), (ex.output()[-2000:], inf.output()[-3000:])
        assert h.wait_for(lambda s: "executor_state" not in s.diag_message("policy_inference"), 10)
        # (60 s: once in CI 2026-12-07, under load, no comparison was logged within 20 s of the takeovers)
        assert inf.wait_for_output("/chunk_executor: left.max_step is [50.0, 50.0", 60), inf.output()[-2000:]
        assert h.wait_for(lambda s: "for chunk_executor but [100.0" in s.diag_message("policy_inference"), 10)
        ex.proc.kill()
        assert inf.wait_for_output("not planning: the newest /rtc/executor_state is", 20), inf.output()[-2000:]
        assert h.wait_for(lambda s: "s old (the executor stopped" in s.diag_message("policy_inference"), 10)
    assert inf.alive()


def test_start_paused_runs_nothing_until_resume(start_node, tmp_path, small_policy) -> None:
    """start_paused (the arming step config/bimanual.yaml ships): both nodes up and warm, the executor reporting
    (paused), nothing is planned or executed until ~/resume; then the first chunk is observed after it and runs."""
    from test_nodes_executor import _call

    params = write_params(tmp_path / "p.yaml", executor={**TOPICS, "start_paused": True},
                          inference={"policy_spec": str(small_policy), "camera_topics": []}, s_min=20)
    ex = start_node(EXECUTOR, "--params-file", str(params))
    inf = start_node(INFERENCE, "--params-file", str(params))
    with Harness() as h:
        assert ex.wait_for_output("start_paused: nothing is executed until ~/resume", 60), ex.output()[-2000:]
        assert inf.wait_for_output("); active", 120), inf.output()[-2000:]
        assert h.wait_for(lambda s: len(s.snapshot_states()) >= 50, 30)  # a second of paused reports
        with h.lock:
            assert not h.chunks, "a chunk was published while the executor was paused"
        assert all(r.st.paused and r.st.seq < 0 for r in h.snapshot_states())
        paused_at = h.last_step()
        assert _call(h, "/chunk_executor/resume").success
        assert h.wait_for(lambda s: len(takeovers(s)) >= 2, 60), (ex.output()[-2000:], inf.output()[-2000:])
        with h.lock:
            first = h.chunks[min(h.chunks)][1]
        assert first.t_obs > paused_at  # observed after the resume
        paused = [r for r in h.snapshot_states() if r.st.paused]
        assert len({r.st.step for r in paused}) == 1  # the step counter stood still while paused


def test_a_pause_longer_than_max_chunk_age_restarts_with_a_fresh_chunk(start_node, tmp_path, small_policy) -> None:
    """~/pause mid-run for longer than max_chunk_age (1 s): ~/resume drops the executing chunk rather than run on
    through a plan that old, and the first chunk policy_inference publishes after the resume is the one that takes
    over (a review found it refused as 'resync': the first fresh observation mapped to a step number the executor
    had skipped and no report carried)."""
    from test_nodes_executor import _call

    params, ex, inf = _start_rtc(start_node, tmp_path, small_policy)
    with Harness() as h:
        _wait_running(h, ex, inf)
        assert _call(h, "/chunk_executor/pause").success
        time.sleep(1.3)
        with h.lock:  # (and every seq that took over: the harness may have joined rtc/chunk after chunk 0 was
            before = set(h.chunks) | set(takeovers(h))  # published, seeing only its execution: CI, 2026-12-07)
        r = _call(h, "/chunk_executor/resume")
        assert r.success and "chunks dropped" in r.message, r.message
        fresh = lambda s: [q for q in takeovers(s) if q not in before]  # noqa: E731
        assert h.wait_for(lambda s: fresh(s), 30), (ex.output()[-2000:], inf.output()[-3000:])
        with h.lock:
            published = sorted(q for q in h.chunks if q not in before)
    assert fresh(h)[0] == published[0], (published, fresh(h), ex.output()[-2000:])
    assert "rejected chunk (resync)" not in ex.output()


def test_executor_killed_and_restarted(start_node, tmp_path, small_policy) -> None:
    """chunk_executor crashes (SIGKILL) mid-run and is started again while policy_inference keeps running.
    The new executor commands nothing until a chunk comes (startup_command none: the arm stays where it
    is), policy_inference notices the restart (its step counter went back), plans afresh, and the first
    commands start from where the arm stands (the start-up ramp, 0.2 s as in config/bimanual.yaml; without
    it the first command jumps to the chunk at once, limited only by the harness's large max_step), not from
    the old chunk's position."""
    params, ex, inf = _start_rtc(start_node, tmp_path, small_policy, startup_ramp_s=0.2)
    with Harness() as h:
        _wait_running(h, ex, inf)
        ex.proc.kill()
        ex.proc.wait(10)
        time.sleep(0.3)
        with h.lock:
            n_states, n_cmds, q_at_restart = len(h.states), len(h.commands[TOPICS["left"]["command_topic"]]), h.q.copy()
            old_step = h.states[-1].st.step
        ex2 = start_node(EXECUTOR, "--params-file", str(params))
        assert h.wait_for(lambda s: len(s.states) > n_states and any(
            r.st.seq >= 0 for r in s.states[n_states:]) and sum(not r.st.hold for r in s.states[n_states:]) >= 60, 120), (
            ex2.output()[-2000:], inf.output()[-3000:])
        states = h.snapshot_states()[n_states:]
        with h.lock:
            cmds = list(h.commands[TOPICS["left"]["command_topic"]][n_cmds:])
    assert states[0].st.step < old_step  # a new executor: its steps start again from 0 (when the harness
    # discovers it is a matter of DDS discovery)
    moving = [r for r in states if not r.st.hold]
    assert np.abs(moving[0].position - q_at_restart).max() < 0.05  # ramped in from where the arm stood
    assert cmds and np.abs(cmds[0] - q_at_restart[:7]).max() < 0.05  # the first command sent, likewise
    assert ex2.wait_for_output("waiting for the first chunk", 1), ex2.output()[-2000:]  # silent holds before it
    assert inf.alive()


def _ensemble_expected(chunks: dict, step: int, origins: dict[int, int]) -> np.ndarray | None:
    """Mean of the predictions for ``step``; chunk ``seq``'s index 0 is at step ``origins[seq]``."""
    preds = [c[step - origins[s]] for s, (c, m) in chunks.items() if origins[s] <= step < origins[s] + c.shape[0]]
    return np.mean(preds, axis=0) if preds else None


SLOW = pytest.mark.slow


# sync (the pause) and te_dense (the ensemble) over DDS in the default tier: the other execution paths
@pytest.mark.parametrize("method", [pytest.param("naive", marks=SLOW), pytest.param("rtc_hard", marks=SLOW),
                                    pytest.param("bid", marks=SLOW), "sync", pytest.param("te_sparse", marks=SLOW),
                                    "te_dense"])
def test_every_method_end_to_end(start_node, tmp_path, small_policy, method) -> None:
    params = write_params(tmp_path / "p.yaml", executor=dict(TOPICS), method=method, s_min=20,
                          inference={"policy_spec": str(small_policy), "camera_topics": [], "bid_samples": 4,
                                     # sync: make the model slower than a tick so the pause is visible
                                     "extra_latency_ms": 60.0 if method == "sync" else 0.0})
    ex = start_node(EXECUTOR, "--params-file", str(params))
    inf = start_node(INFERENCE, "--params-file", str(params))
    with Harness() as h:
        assert h.wait_for(lambda s: len(takeovers(s)) >= 5 and sum(1 for r in s.states if r.st.seq >= 0) > 150, 150), \
            (ex.output()[-2000:], inf.output()[-2000:])
    states = h.snapshot_states()
    with h.lock:
        chunks = dict(h.chunks)
    assert all(m.method == method for _, m in chunks.values())
    if method in ("naive", "rtc_hard", "bid"):
        assert check_switch_execution(h) > 50
    elif method == "sync":
        # a chunk starts at its index 0 at the takeover (consumed: the pause), or, observed before the pause
        # while the previous chunk still moved the robot, at the index of the step the robot had reached
        takeover = {r.st.seq: r.st.takeover for r in states if r.st.seq in chunks}
        order = sorted(takeover, key=takeover.get)
        start = {seq: 0 if i == 0 else max(0, takeover[order[i - 1]] + 20 - max(chunks[seq][1].t_obs,
                                                                                  takeover[order[i - 1]]))
                 for i, seq in enumerate(order)}
        # observed at most a few ticks before the pause (the median: a stall of the harness's joint-state timer
        # ages one observation; a trigger that fired early would shift them all)
        assert sorted(start.values())[len(start) // 2] <= 5 and max(start.values()) < 20, start
        for r in states:
            if not r.st.hold and r.st.seq in chunks:
                i = start[r.st.seq] + r.st.step - r.st.takeover
                np.testing.assert_allclose(r.position, chunks[r.st.seq][0][i], atol=1e-9)
        per_seq = {}
        for r in states:
            if not r.st.hold:
                per_seq[r.st.seq] = per_seq.get(r.st.seq, 0) + 1
        full = [n for seq, n in per_seq.items() if seq + 1 in per_seq and seq >= 0]
        assert full and all(n == 20 for n in full), per_seq  # exactly s actions, then pause
        assert any(r.st.hold for r in states if r.st.seq >= 0)  # paused while the model ran
    else:
        checked = 0
        # index 0 at t_obs, except the executor's start-up chunk, which runs from index 0 at its takeover
        origins = {s: m.t_obs for s, (_, m) in chunks.items()}
        first = min(chunks)
        origins[first] = next(r.st.takeover for r in states if r.st.seq == first)
        for r in states:
            if r.st.hold or r.st.seq < 0:
                continue
            visible = {s: cm for s, cm in chunks.items() if s <= r.st.seq}
            exp = _ensemble_expected(visible, r.st.step, origins)
            if exp is not None:
                np.testing.assert_allclose(r.position, exp, atol=1e-9)
                checked += 1
        assert checked > 50


@pytest.mark.parametrize("frames", [1, pytest.param(2, marks=SLOW)])  # the camera path in the default tier
def test_camera_policy_and_missing_camera(start_node, tmp_path, small_policy_cam, frames: int) -> None:
    """A camera policy runs only once the camera speaks, at any image size (a warning when that stretches
    the frames); a frame-stack policy ([2, h, w, 3]: the newest two frames) runs from the first frame on (the
    oldest repeated)."""
    from conftest import make_small_policy

    spec = small_policy_cam if frames == 1 else make_small_policy(tmp_path / "stack", image=(32, 32), frames=frames)
    params = write_params(tmp_path / "p.yaml", executor=dict(TOPICS), s_min=20,
                          inference={"policy_spec": str(spec), "camera_topics": ["cam/image_raw"],
                                     "camera_names": ["cam"]})
    ex = start_node(EXECUTOR, "--params-file", str(params))
    inf = start_node(INFERENCE, "--params-file", str(params))
    with Harness() as h:  # no camera yet: the policy must not run
        assert inf.wait_for_output("no image from camera 'cam'", 150), inf.output()[-2000:]
        assert not takeovers(h)
    with Harness(camera=(48, 64)) as h:  # any size: resized to the policy's 32x32
        assert h.wait_for(lambda s: len(takeovers(s)) >= 3, 60), (ex.output()[-2000:], inf.output()[-2000:])
        assert check_switch_execution(h) > 20
        # 64x48 to 32x32 stretches them: said once, naming the camera and both sizes
        assert inf.output().count("camera 'cam': its 64x48 frames are resized to the policy's 32x32") == 1
        assert "which stretches them" in inf.output() and "by 33%" in inf.output()
        # an episode reset re-syncs the executor (~/resync): the policy forgets the frames from before it
        from test_nodes_executor import _call

        assert _call(h, "chunk_executor/resync").success
        assert h.wait_for(lambda s: any(x.st.resets == 1 for x in s.states), 10)
        assert inf.wait_for_output("camera frames cleared; waiting for new ones", 10), inf.output()[-2000:]
        assert _call(h, "chunk_executor/resume").success
        n = len(takeovers(h))
        assert h.wait_for(lambda s: len(takeovers(s)) >= n + 3, 60), (ex.output()[-2000:], inf.output()[-2000:])


def test_compressed_camera(start_node, tmp_path, small_policy_cam) -> None:
    """camera_transport compressed: the camera arrives as image_transport's CompressedImage on
    cam/image_raw/compressed (PNG here) and the policy runs on it; frames that do not decode are refused
    with the reason, and planning stops (the executor holds) until decodable frames come again."""
    params = write_params(tmp_path / "p.yaml", executor=dict(TOPICS), s_min=20,
                          inference={"policy_spec": str(small_policy_cam), "camera_topics": ["cam/image_raw"],
                                     "camera_names": ["cam"], "camera_transport": "compressed"})
    ex = start_node(EXECUTOR, "--params-file", str(params))
    inf = start_node(INFERENCE, "--params-file", str(params))
    with Harness(camera=(48, 64), compressed="png") as h:
        assert h.wait_for(lambda s: len(takeovers(s)) >= 3, 150), (ex.output()[-2000:], inf.output()[-2000:])
        h.compressed = "garbage"
        assert inf.wait_for_output("camera 'cam': cannot decode a compressed image (format 'rgb8; png compressed "
                                   "bgr8'", 30), inf.output()[-2000:]
        time.sleep(0.5)  # a chunk planned from a good frame before may still arrive
        n = len(takeovers(h))
        time.sleep(1.5)
        assert len(takeovers(h)) == n  # nothing planned from undecodable frames
        h.compressed = "png"
        assert h.wait_for(lambda s: len(takeovers(s)) >= n + 2, 60), inf.output()[-2000:]


def test_tracking_watchdog_makes_the_executor_hold_where_the_arm_is_when_it_stops_following(start_node, tmp_path, small_policy) -> None:
    """With <arm>.tracking_tolerance set for chunk_executor, it keeps reading joint_states and re-syncs itself
    as ~/hold does once the arm has not followed its commands for tracking_timeout_s: chunks dropped, the
    position where the arm is commanded (with the default startup_command none too: the controllers must not
    keep pushing toward the old command) and held, paused; /diagnostics ERROR. While the (perfect) fake
    controller follows, nothing trips; while the executor is paused, an arm moved by hand does not trip it
    again. policy_inference only measures (tracking_err_*)."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    # The small policy's chunks are noise (0.2-1 rad from one action to the next): the fake controller, which
    # applies a command when its callback runs and reports at its own 50 Hz, trails by a tick or two (more on a
    # loaded machine), so with unlimited steps a perfect follower is 0.2 rad off at times (a 0.02 tolerance tripped
    # in CI, 2026-12-06). As on a robot, the tolerance sits well above speed x lag: max_step 0.005 rad per tick
    # (0.25 rad/s) and 0.1 rad leave 20 ticks of lag.
    tol = [0.1] * 6 + [0.0]  # the grippers unchecked, as a real config would
    def arm() -> dict:  # (fresh lists: yaml would write aliases, which rcl's parser refuses)
        return {"max_step": [0.005], "lower_limits": [-100.0], "upper_limits": [100.0], "tracking_tolerance": list(tol)}

    params = write_params(tmp_path / "p.yaml", executor={**TOPICS, "tracking_timeout_s": 0.2,  # startup_command: none
                                                         "left": arm(), "right": arm()},
                          inference={"policy_spec": str(small_policy), "camera_topics": []}, s_min=20)
    ex = start_node(EXECUTOR, "--params-file", str(params))
    inf = start_node(INFERENCE, "--params-file", str(params))
    with Harness() as h:
        levels: list[tuple[bytes, str]] = []
        h.node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: levels.extend(
            (st.level, st.message) for st in m.status if "chunk_executor" in st.name), 10)
        _wait_running(h, ex, inf)
        assert ex.wait_for_output("tracking watchdog on: left_waist 0.1", 5), ex.output()[-2000:]
        assert h.wait_for(lambda s: "tracking_trips" in s.diag("chunk_executor"), 10)
        time.sleep(1.0)  # following: commanding for a while without a trip
        assert h.diag("chunk_executor")["tracking_trips"] == "0", ex.output()[-2000:]
        assert "tracking_err_max" in h.diag("policy_inference")  # the measurement stays in policy_inference
        with h.lock:  # the arm stops following, pushed 0.5 rad off (a collision; a controller deactivated and
            h.follow_commands = False  # the brakes slipping): the commands move 0.005 rad per tick at most
            h.q = h.q + 0.5
            stuck = h.q.copy()
        assert ex.wait_for_output("the arm does not follow", 20), ex.output()[-3000:]
        assert h.wait_for(lambda s: s.diag("chunk_executor").get("tracking_trips") == "1", 10)
        assert h.wait_for(lambda s: any(lv == DiagnosticStatus.ERROR and "the arm did not follow" in msg
                                        for lv, msg in levels), 10), levels[-3:]
        # paused, holding where the arm is (the measured position), not where the commands had gone; the grippers
        # at their last command (a squeezing gripper measures its opening: held there it would let go)
        assert h.wait_for(lambda s: s.states and s.states[-1].st.paused and s.states[-1].st.hold, 10)
        states = h.snapshot_states()
        grip = np.array([n.endswith("gripper") for n in JOINTS])
        stuck = np.where(grip, [r for r in states if not r.st.paused][-1].position, stuck)
        assert np.allclose(states[-1].position, stuck, atol=1e-9)
        sent = {topic: len(v) for topic, v in h.commands.items()}  # ... and commanded to the controllers
        assert h.wait_for(lambda s: all(len(s.commands[t]) >= n + 5 for t, n in sent.items()), 10)
        with h.lock:
            newest = np.concatenate([h.commands[t][-1] for t in h.command_topics])  # left, right
        assert np.allclose(newest, stuck, atol=1e-9), (newest, stuck)
        with h.lock:
            h.q = stuck + 0.5  # someone moves the paused arm by hand: not the executor's business, no second trip
        time.sleep(1.5)
        assert h.diag("chunk_executor").get("tracking_trips") == "1", ex.output()[-2000:]
    assert ex.output().count("the arm does not follow") == 1
