"""The one bags->dataset pipeline pairs observations and actions by the index-0 convention.

A synthetic bag in the sim layout with known, jittered timestamps: the command of step k carries
``1000 + k`` (+ 0.001 j on joint j), the joint state of step k carries ``-k`` (- 0.001 j), the
camera frame of step k (every 5th step) has pixel value k. Action 0 of the sample at step k must be
the command executed at step k, through both entry points: the sim policy trainer
(``sim_demos.load_demo_dataset``) and ``python -m rtc_ros.recording.from_bags``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtc_ros.recording.bag import BagWriter
from rtc_ros.recording.cdr import float64_array_cdr, image_cdr, joint_state_cdr
from rtc_ros.recording.dataset import action_grid
from rtc_ros.recording.demo_dataset import DatasetError, DemoDataset
from rtc_ros.recording.episode import Series, combine_series, load_episodes
from rtc_ros.sim import JOINT_NAMES

REPO = Path(__file__).resolve().parents[1]
T = 60  # steps
H = 50
DT = 0.02
DT_NS = 20_000_000
MISSING_JS = 17  # no joint state at this step: its observation is the previous step's
JITTER = 0.35  # arrival jitter, fraction of a tick (< 0.5: every message stays nearest its own step)


def _write_bag(path: Path) -> None:
    rng = np.random.default_rng(0)
    t0 = 1_700_000_000 * 10**9
    j = 0.001 * np.arange(14)
    js_order = list(range(14))[::-1]  # joint states list the joints in another order than the actions
    msgs: list[tuple[int, str, bytes]] = []
    for k in range(T):
        tk = t0 + k * DT_NS

        def jit() -> int:
            return int(rng.uniform(-JITTER, JITTER) * DT_NS)

        cmd = 1000.0 + k + j
        left_t = tk if k == 0 else tk + jit()  # the grid starts at the first left command
        msgs.append((left_t, "left_controller/commands", float64_array_cdr(cmd[:7])))
        msgs.append((tk + jit(), "right_controller/commands", float64_array_cdr(cmd[7:])))
        if k != MISSING_JS:
            q = -float(k) - j
            msgs.append((tk + jit(), "joint_states",
                         joint_state_cdr(tk, [JOINT_NAMES[i] for i in js_order], q[js_order])))
        if k % 5 == 0:
            msgs.append((tk + jit(), "cam_high/image_raw", image_cdr(tk, np.full((32, 32, 3), k, np.uint8))))
    w = BagWriter(path)
    w.open()
    w.add_topic("joint_states", "sensor_msgs/msg/JointState")
    w.add_topic("cam_high/image_raw", "sensor_msgs/msg/Image")
    for topic in ("left_controller/commands", "right_controller/commands"):
        w.add_topic(topic, "std_msgs/msg/Float64MultiArray")
    for ts, topic, data in sorted(msgs, key=lambda m: m[0]):
        w.write(topic, ts, data)
    w.close({"success": True, "task": "pairing_test", "dt": DT})  # dt: as in the recorder's sidecar


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pairing") / "demo_00000"
    _write_bag(path)
    return path


def _check_pairing(ds: DemoDataset) -> None:
    j = 0.001 * np.arange(14)
    assert len(ds) == T and list(ds.step) == list(range(T))
    assert ds.joint_names == list(JOINT_NAMES)
    obs = ds.observations()
    for k in range(T):
        # action i of the sample at step k = the command executed at step k + i (held past the end)
        expect = 1000.0 + np.minimum(k + np.arange(H), T - 1)[:, None] + j[None, :]
        np.testing.assert_allclose(ds.actions[k], expect, atol=1e-4, err_msg=f"step {k}")
        k_js = k - 1 if k == MISSING_JS else k
        np.testing.assert_allclose(obs[k, :14], -float(k_js) - j, atol=1e-6, err_msg=f"step {k}")
        np.testing.assert_allclose(obs[k, 14:], (k - k % 5) / 255.0, atol=1e-7, err_msg=f"step {k}")


def test_sim_trainer_pairs_action0_with_the_observation_step(bag: Path) -> None:
    from rtc_ros.experiments.sim_demos import load_demo_dataset

    ds = load_demo_dataset([bag])
    _check_pairing(ds)
    assert ds.sources[0]["actions_from"] == "left_controller/commands,right_controller/commands"


def test_from_bags_pairs_action0_with_the_observation_step(bag: Path, tmp_path: Path) -> None:
    from rtc_ros.experiments.sim_demos import load_demo_dataset
    from rtc_ros.recording.from_bags import build_parser, dataset_for

    args = build_parser().parse_args([str(bag.parent), "--out", str(tmp_path), "--params",
                                      str(REPO / "config" / "bimanual.yaml"), "--image-size", "32x32"])
    ds, _, info = dataset_for(args)
    assert info["cameras"] == {"cam_high": "cam_high/image_raw"} and info["horizon"] == H and ds.dt == DT
    _check_pairing(ds)
    # the two entry points build the same training set
    sim = load_demo_dataset([bag])
    assert ds.obs_spec == sim.obs_spec
    np.testing.assert_array_equal(ds.actions, sim.actions)
    np.testing.assert_array_equal(ds.observations(), sim.observations())


def test_episode_commands_combine_the_arms_of_one_tick(bag: Path) -> None:
    """``Episode.commands`` puts the per-arm topics on the controller grid exactly as the dataset
    does: row k holds the left and the right command of step k, whichever arm's message came first."""
    (ep,) = load_episodes(bag)
    left, right = (ep.command_topics[t] for t in ("left_controller/commands", "right_controller/commands"))
    assert np.any(right.t > left.t)  # ticks where the right arm's command was received later
    j = 0.001 * np.arange(14)
    assert ep.commands is not None and ep.commands.q.shape == (T, 14)
    np.testing.assert_allclose(ep.commands.q, 1000.0 + np.arange(T)[:, None] + j[None, :], atol=1e-9)
    t, actions, _ = action_grid(ep, ep.commands.names, DT, None)
    np.testing.assert_array_equal(actions, ep.commands.q)
    np.testing.assert_allclose(ep.commands.t, t)


def test_combine_series_keeps_a_later_stamped_arm_in_its_tick() -> None:
    """The right arm's command of tick k lands 3 ms after the left one: still combined with tick k."""
    k = np.arange(20, dtype=float)
    per_topic = {"left": Series(t=k * DT, q=k[:, None], names=["l"]),
                 "right": Series(t=k * DT + 0.003, q=k[:, None] + 0.5, names=["r"])}
    s = combine_series(per_topic, ["left", "right"])
    assert s is not None and s.names == ["l", "r"] and len(s) == 20
    np.testing.assert_array_equal(s.q, np.stack([k, k + 0.5], axis=1))


def test_a_late_first_command_does_not_shift_the_grid() -> None:
    """A data-collection walkthrough (2026-12-07): the first 6 ticks' commands were stamped together 110 ms late
    (queued while the recorder opened the episode's bag): a grid anchored on the first message fell half a tick
    off the others, and 8 % of the observations were paired with the previous tick's command (52 % in a real bag).
    The grid now takes the phase of all the messages (``grid_phase``)."""
    from rtc_ros.recording.episode_types import grid_phase, grid_series

    rng = np.random.default_rng(0)
    k = np.arange(300)
    t = k * DT + 0.0004 + np.abs(rng.normal(0.0, 0.001, k.size))  # each tick's arrival, up to a few ms late
    t[:6] = 0.1124 + np.arange(6) * 1e-5  # the burst (the first message 2 ms later than most ticks arrive)
    per_topic = {"left": Series(t=t, q=k[:, None].astype(float), names=["l"]),
                 "right": Series(t=t + 0.0002, q=k[:, None] + 0.5, names=["r"])}
    assert abs(grid_phase(t, DT) - 0.0088) < 0.002  # the ticks' phase: 8.8 ms after the first message's (mod 20 ms)
    s = grid_series(per_topic, ["left", "right"], DT)
    on_tick = np.round((s.t - 0.0004) / DT)  # each grid step's tick
    late = s.t >= 0.12
    np.testing.assert_array_equal(s.q[late, 0], on_tick[late])  # every grid step holds its own tick's command
    np.testing.assert_array_equal(s.q[late, 1], on_tick[late] + 0.5)
    assert np.all(np.abs(s.t[late] - (on_tick[late] * DT + 0.0004)) < 0.003)  # centred on the ticks, not 10 ms off
    jitter = k * DT + 0.005 + rng.normal(0.0, 0.006, k.size)  # 6 ms jitter round a 5 ms phase, a late first message
    jitter[0] = 0.016
    assert abs(grid_phase(jitter, DT) - 0.009) < 0.002  # (5 - 16 = -11 ms: +9 mod 20; a fall-back would be 0)
    for n, period in ((1000, 0.0201), (1000, 0.0202), (1000, 0.0205)):  # drifting round the tick 5-25 times: the
        assert grid_phase(np.arange(n) * period, DT) == 0.0, (n, period)  # mean direction is noise (a review)


def test_named_joints_that_do_not_match_are_refused_not_read_by_position() -> None:
    """Another robot's joint names (same count): reading them by position would train on joints in the wrong
    order; only unnamed values (a Float64MultiArray, named '<topic>[i]') are taken in topic order."""
    from rtc_ros.recording.dataset import DatasetError, reorder
    from rtc_ros.recording.episode_types import Series

    q = np.arange(6, dtype=float).reshape(2, 3)
    t = np.array([0.0, 0.02])
    unnamed = Series(t=t, q=q, names=["/left_controller/commands[0]", "/left_controller/commands[1]",
                                      "/right_controller/commands[0]"])
    assert reorder(unnamed, ["a", "b", "c"], "commands") is q
    other = Series(t=t, q=q, names=["robot2_a", "robot2_b", "robot2_c"])
    with pytest.raises(DatasetError, match="lacks joints"):
        reorder(other, ["a", "b", "c"], "joint states")


def test_commands_recorded_at_another_rate_are_refused(bag: Path, tmp_path: Path) -> None:
    """The same bag read with --dt 0.04 (a 25 Hz setup): its 50 Hz commands would be put on a 25 Hz grid
    and trained as a policy twice as slow (before: accepted silently)."""
    from rtc_ros.recording.dataset import DatasetError
    from rtc_ros.recording.from_bags import build_parser, dataset_for

    args = build_parser().parse_args([str(bag.parent), "--out", str(tmp_path), "--params",
                                      str(REPO / "config" / "bimanual.yaml"), "--image-size", "32x32",
                                      "--dt", "0.04"])
    with pytest.raises(DatasetError, match=r"commands on .* every 2\d.\d ms, the controller period .* 40.0 ms"):
        dataset_for(args)


def _two_arm_episode(topics: dict[str, float], names: list[str]):
    from rtc_ros.recording.episode_types import Episode

    T, dt = 40, 0.02
    t = np.arange(T) * dt
    per_arm = {top: np.full((T, 7), v) for top, v in topics.items()}
    js_q = np.concatenate([np.full((T, 7), 1.0), np.full((T, 7), -1.0)], 1)
    js = Series(t=t - 1e-6, q=js_q, names=list(names))
    return Episode(name="ep", path=Path("/tmp"), meta={}, start_ns=0, end_ns=int(T * dt * 1e9), joint_states=js,
                   command_topics={top: Series(t=t, q=q, names=[]) for top, q in per_arm.items()})


def test_unnamed_per_arm_commands_follow_the_action_order_not_the_alphabet() -> None:
    """``arms: [right, left]`` with one Float64MultiArray topic per arm: the topics were concatenated
    alphabetically (left first) and read by position, so every label held the other arm's command."""
    from rtc_ros.recording.dataset import DatasetError, build_dataset
    from rtc_ros.recording.params_file import joint_names_from_params

    names = joint_names_from_params({"arms": ["right", "left"]})
    ep = _two_arm_episode({"/robot1/right_controller/commands": 1.0, "/robot1/left_controller/commands": -1.0},
                          names)
    ds = build_dataset([ep], [{"name": "joint_positions", "shape": [14]}], names, horizon=5, dt=0.02)
    assert ds.joints[0, 0] == 1.0 and ds.actions[0, 0, 0] == 1.0  # right arm: observed and labelled alike
    assert ds.joints[0, 7] == -1.0 and ds.actions[0, 0, 7] == -1.0
    odd = _two_arm_episode({"arm_a/commands": 1.0, "arm_b/commands": -1.0}, names)  # no arm to be told
    with pytest.raises(DatasetError, match="--command-topic"):
        build_dataset([odd], [{"name": "joint_positions", "shape": [14]}], names, horizon=5, dt=0.02)


def test_arm_names_are_matched_as_whole_words() -> None:
    """Arms named ``left_arm``, topics named after the robot model (``vx300s_left_controller``) and
    namespaced joint names are found; a CamelCase name that holds no arm word is not guessed."""
    from rtc_ros.recording.command_order import first_joint_of_arm as _first_joint_of_arm

    two = ["right_arm_waist", "right_arm_elbow", "left_arm_waist", "left_arm_elbow"]
    assert (_first_joint_of_arm("left_arm", two), _first_joint_of_arm("right_arm", two)) == (2, 0)
    assert _first_joint_of_arm("vx300s_left", ["right_waist", "left_waist"]) == 1
    # left_arm_controller/commands driving joints named left_* (test_from_bags_e2e's bags)
    assert (_first_joint_of_arm("left_arm", ["left_waist", "right_waist"]),
            _first_joint_of_arm("right_arm", ["left_waist", "right_waist"])) == (0, 1)
    assert _first_joint_of_arm("left", ["vx300s_right/j0", "vx300s_left/j0"]) == 1
    assert _first_joint_of_arm("left", ["leftWaist", "rightWaist"]) is None


def _paused_episode(steps: np.ndarray) -> tuple:
    """An episode whose executor ticks every DT with step numbers ``steps`` (a repeated number: paused), commanding
    ``100 + tick`` and with a joint state per tick carrying ``-tick``."""
    from rtc_ros.recording.episode_types import Episode, ExecutorTrace

    n = len(steps)
    t = np.arange(n) * DT
    names = ["a", "b"]
    ex = ExecutorTrace(t=t, q=100.0 + np.arange(n, dtype=float)[:, None] * np.ones((1, 2)), names=names,
                       step=np.asarray(steps), seq=np.zeros(n, int), takeover=np.zeros(n, int),
                       consumed=np.zeros(n, int), hold=np.zeros(n, bool), dry=np.zeros(n, bool))
    js = Series(t=t + 0.004, q=-np.arange(n, dtype=float)[:, None] * np.ones((1, 2)), names=names)
    return Episode(name="ep", path=Path("ep"), meta={}, start_ns=0, end_ns=int(n * DT * 1e9), executor=ex,
                   joint_states=js), names


def test_a_pause_does_not_shift_the_observations_of_the_steps_after_it() -> None:
    """The executor's step number stands still while paused (50 ticks here, 1 s): the steps after it are put on the
    grid from the first tick after the pause, so step k's observation is still the joint state of the tick that
    commanded step k (before 2026-12-06 every step was at t_0 + k dt: 50 steps off after the pause), and its action
    is that tick's command; a trace without a pause is on t_0 + k dt exactly as before. A sample whose chunk would
    span the pause is left out (since 2026-12-07)."""
    from rtc_ros.recording.dataset import episode_samples

    steps = np.r_[np.arange(5), np.full(50, 4), np.arange(5, 10)]  # ticks 0-4, 50 paused ticks, ticks 55-59
    ep, names = _paused_episode(steps)
    t, A, src = action_grid(ep, names, DT, None)
    tick = np.r_[np.arange(5), np.arange(55, 60)]  # the tick that commanded each step
    assert src == "rtc/executor_state"
    np.testing.assert_allclose(t, tick * DT)
    np.testing.assert_array_equal(A[:, 0], 100.0 + tick)
    joints, _, actions, ks, prov = episode_samples(ep, names, 4, DT, {})
    np.testing.assert_array_equal(joints[:, 0], -tick[ks].astype(float))  # each step's own joint state
    np.testing.assert_array_equal(actions[:, 0, 0], 100.0 + tick[ks])
    # a chunk never spans the pause: steps 2-4's chunks (H = 4) would end with actions chosen after it
    np.testing.assert_array_equal(ks, [0, 1, 5, 6, 7, 8, 9])
    assert prov["skipped_across_pause"] == 3 and prov["samples"] == 7
    np.testing.assert_array_equal(actions[1, :, 0], 100.0 + np.arange(1, 5))  # steps 1-4, all before it
    np.testing.assert_array_equal(actions[-1, :, 0], [159.0] * 4)  # the end: the last command held, as before
    plain_ep, _ = _paused_episode(np.arange(10))
    assert episode_samples(plain_ep, names, 4, DT, {})[4]["skipped_across_pause"] == 0
    plain, names = _paused_episode(np.arange(10))
    np.testing.assert_allclose(action_grid(plain, names, DT, None)[0], np.arange(10) * DT)


def test_an_episode_recorded_before_the_executor_was_resumed_keeps_its_executor_trace(caplog) -> None:
    """An executor started paused (start_paused, ~/resume after the recording began) reports step -1 until its
    first tick: those ticks are dropped and the trace still gives the actions and the pauses (before 2026-12-07
    the whole trace was set aside for the command topics, where a pause is not seen: a walkthrough's 12 s pause
    became 600 samples of standing still)."""
    from rtc_ros.recording.dataset import DatasetError, episode_samples

    steps = np.r_[np.full(20, -1), np.arange(5), np.full(50, 4), np.arange(5, 10)]  # armed, 5 ticks, paused, 5
    ep, names = _paused_episode(steps)
    t, A, src = action_grid(ep, names, DT, None)
    tick = np.r_[np.arange(20, 25), np.arange(75, 80)]
    assert src == "rtc/executor_state"
    np.testing.assert_allclose(t, tick * DT)
    np.testing.assert_array_equal(A[:, 0], 100.0 + tick)
    _, _, _, ks, prov = episode_samples(ep, names, 4, DT, {})
    np.testing.assert_array_equal(ks, [0, 1, 5, 6, 7, 8, 9])
    assert prov["skipped_across_pause"] == 3
    again, names = _paused_episode(np.r_[np.arange(4), np.full(3, -1), np.arange(3)])  # restarted, started paused
    with pytest.raises(DatasetError, match=r"ep: rtc/executor_state's step went back from 3 to -1 .*restarted"):
        action_grid(again, names, DT, None)
    never, names = _paused_episode(np.full(30, -1))  # never resumed: no commanded step at all
    with pytest.raises(DatasetError, match="no commands recorded"):
        action_grid(never, names, DT, None)
    assert "has no run of commanded steps" in caplog.text


def test_an_executor_restarted_mid_episode_is_refused() -> None:
    from rtc_ros.recording.dataset import DatasetError

    ep, names = _paused_episode(np.r_[np.arange(40, 50), np.arange(0, 10)])
    with pytest.raises(DatasetError, match=r"ep: rtc/executor_state's step went back from 49 to 0 .*restarted"):
        action_grid(ep, names, DT, None)


def test_episodes_cut_short_or_without_a_verdict_are_left_out_of_training(caplog) -> None:
    """An aborted, interrupted, crash-repaired or low-disk episode is not a demonstration of the task: left out
    (named in a warning) unless its status is asked for; --only-success keeps only a success verdict (an abort has
    none: before 2026-12-06 it was kept); a failed (write error) episode is always left out."""
    from rtc_ros.recording.dataset import DatasetError, build_dataset

    spec = [{"name": "joint_positions", "shape": [2]}]
    eps = []
    for name, meta in (("ok", {"status": "completed", "success": True}), ("no_verdict", {"status": "completed"}),
                       ("aborted", {"status": "aborted"}), ("crashed", {"status": "recovered"}),
                       ("broken", {"status": "failed", "success": True}), ("sim_demo", {"success": True}),
                       ("killed_in_grace", {"status": "recovered", "success": True,
                                            "recovery": {"stop_status": "completed"}})):
        ep, names = _paused_episode(np.arange(10))
        ep.name, ep.meta = name, meta
        eps.append(ep)

    def used(**kw) -> list[str]:
        return [s["episode"] for s in build_dataset(eps, spec, names, 4, DT, **kw).sources]

    with caplog.at_level("WARNING"):
        assert used() == ["ok", "no_verdict", "sim_demo", "killed_in_grace"]
    assert "skipping aborted (status aborted: cut short; include it with --include-status aborted)" in caplog.text
    assert used(only_success=True) == ["ok", "sim_demo", "killed_in_grace"]
    assert used(include_status=["recovered", "aborted"]) == ["ok", "no_verdict", "aborted", "crashed", "sim_demo",
                                                             "killed_in_grace"]
    with pytest.raises(DatasetError):
        build_dataset(eps[2:5], spec, names, 4, DT, only_success=True)


def test_joint_states_from_two_publishers_are_not_mixed_into_one_column(tmp_path: Path, caplog) -> None:
    """Messages on joint_states that name the joints in another order are reordered by name; ones that name other
    joints (the other arm's driver publishing on the same topic) are left out with a warning, not read into the
    newest message's columns (before 2026-12-06 the left-arm column alternated between the two arms)."""
    names = list(JOINT_NAMES)
    w = BagWriter(tmp_path / "two_publishers")
    w.open()
    w.add_topic("joint_states", "sensor_msgs/msg/JointState")
    t0 = 1_700_000_000 * 10**9
    q = np.arange(14, dtype=float)
    for k in range(12):
        tk = t0 + k * DT_NS
        if k % 3 == 0:
            w.write("joint_states", tk, joint_state_cdr(tk, names[::-1], np.ascontiguousarray((q + k)[::-1])))  # reversed
        elif k % 3 == 1:
            w.write("joint_states", tk, joint_state_cdr(tk, names, q + k))
        else:
            w.write("joint_states", tk, joint_state_cdr(tk, [n.replace("left", "third") for n in names], -q))
    tk = t0 + 12 * DT_NS
    w.write("joint_states", tk, joint_state_cdr(tk, names, q + 12))
    w.close({"dt": DT})
    with caplog.at_level("WARNING"):
        (ep,) = load_episodes(tmp_path / "two_publishers")
    js = ep.joint_states
    assert js is not None and js.names == names and len(js) == 9
    np.testing.assert_allclose(js.q - js.q[:, :1], np.tile(q, (9, 1)))  # every row in the newest's order
    assert "4 of 13 messages name other joints" in caplog.text


def test_executor_step_times_after_pauses_gaps_and_late_ticks() -> None:
    """A tick lost right after a pause belongs to the run after it; a stall without a repeated step number (a gap in
    the executor's stamps) starts a new run; a late first tick after a pause does not shift its run, nor a late burst
    at the recording's start (the least delayed of a run's first ticks anchors it; the first run was anchored on its
    first tick before 2026-12-07: the make-demo bags' first ticks came 28-77 ms late, 1-4 ticks of shift); pause-free
    traces with lost ticks and jitter lie on that anchor + k dt."""
    from rtc_ros.recording.dataset import executor_step_times

    steps = np.array([0, 1, 2, 3, 4, 4, 4, 4, 6, 7, 8])  # step 5's tick lost right after the pause
    np.testing.assert_allclose(executor_step_times(np.arange(11) * DT, steps, np.arange(9), DT) / DT,
                               [0, 1, 2, 3, 4, 7, 8, 9, 10])
    t = np.r_[np.arange(5) * DT, 2.0 + np.arange(5) * DT]  # a 2 s stall, step numbers running on
    np.testing.assert_allclose(executor_step_times(t, np.arange(10), np.arange(10), DT, t + 7.0), t)
    steps = np.r_[np.arange(5), [4] * 10, np.arange(5, 40)]
    t = np.arange(len(steps)) * DT
    t[15] += 0.03  # the first tick after the pause arrives 30 ms late
    np.testing.assert_allclose(executor_step_times(t, steps, np.arange(8), DT)[5:] / DT, [15, 16, 17])
    t = np.arange(40) * DT + 0.001
    t[:4] += [0.0757, 0.0592, 0.0396, 0.0198]  # the first ticks in a burst (episode_0000 of a make-demo run)
    np.testing.assert_allclose(executor_step_times(t, np.arange(40), np.arange(40), DT), 0.001 + np.arange(40) * DT)
    rng = np.random.default_rng(0)
    for _ in range(100):
        s = np.sort(rng.choice(200, int(rng.integers(5, 60)), replace=False))
        t = s * DT + rng.uniform(0.0, 0.009, len(s))
        grid = np.arange(s[-1] - s[0] + 1)
        first = slice(0, 25)  # (ANCHOR_TICKS)
        anchor = np.min(t[first] - (s[first] - s[0]) * DT)
        np.testing.assert_allclose(executor_step_times(t, s - s[0], grid, DT, s * DT), anchor + grid * DT)


def test_same_names_keeps_the_majority_publisher_and_relabels_reordered_rows() -> None:
    """The reference names are the most frequent (the newest message may come from the minority publisher); a
    reordered row gets the reference names with its values; unnamed rows are read by position as before."""
    from rtc_ros.recording.episode import _same_names

    a, b, other = ["x", "y"], ["y", "x"], ["u", "v"]
    rows = [(0.0, np.array([1.0, 2.0]), a), (0.1, np.array([3.0, 4.0]), a), (0.2, np.array([5.0, 6.0]), a),
            (0.3, np.array([9.0, 9.0]), []), (0.4, np.array([8.0, 7.0]), b), (0.5, np.array([0.0, 0.0]), other)]
    out = _same_names("t", rows, (1,), 2)
    assert [r[0] for r in out] == [0.0, 0.1, 0.2, 0.3, 0.4] and out[-1][2] == a
    np.testing.assert_array_equal(out[-1][1], [7.0, 8.0])
    single = rows[:3]
    assert _same_names("t", single, (1,), 2) is single


def test_a_controller_period_other_than_the_executor_s_ticks_is_refused() -> None:
    """A params file of another setup (rate_hz 25 for a 50 Hz recording) was exported as 25 fps, observations looked up
    over twice the time (a walkthrough, 2026-12-07): the executor's own stamps give its period."""
    from rtc_ros.recording.executor_trace import check_tick_period
    from rtc_ros.recording.episode_types import ExecutorTrace

    steps = np.r_[np.arange(10), [9] * 20, np.arange(10, 30)]  # with a pause: its repeats are not periods
    n = len(steps)
    stamp = np.arange(n) * DT
    ex = ExecutorTrace(t=stamp + 0.001, q=np.zeros((n, 2)), names=["a", "b"], step=steps, seq=np.zeros(n, int),
                       takeover=np.zeros(n, int), consumed=np.zeros(n, int), hold=np.zeros(n, bool),
                       dry=np.zeros(n, bool), stamp=stamp)
    check_tick_period(ex, DT, "ep")
    check_tick_period(ex, 1.05 * DT, "ep")  # (within 10 %: a rounded rate)
    with pytest.raises(DatasetError, match=r"ep: rtc/executor_state ticked every 20.0 ms, the controller period given "
                                           r"\(--dt, or the params file's rate_hz\) is 40.0 ms"):
        check_tick_period(ex, 2 * DT, "ep")


@pytest.mark.parametrize("offset, rule, first", [(0.006, "stamps", 1), (-0.000002, "stamps", 0),
                                                 (100.006, "nearest", 0)])
def test_a_stamped_joint_state_belongs_to_the_step_policy_inference_gives_it(offset, rule, first) -> None:
    """An audit: a joint state measured 6 ms after tick k went to step k (the nearest step), whose command it could
    not have changed; policy_inference (StepClock.step_at) puts it at step k + 1, so the policy learnt to act a tick
    late. With the executor's ticks and the joint states stamped on the recording's clock the dataset applies the
    node's rule: a state stamped 2 us before tick k is step k's, one 6 ms after it step k + 1's. Stamps on another
    clock (100 s off) fall back to the nearest step."""
    from rtc_ros.recording.dataset import episode_samples
    from rtc_ros.runtime.step_clock import StepClock

    ep, names = _paused_episode(np.arange(40))
    ep.executor.stamp = ep.executor.t.copy()
    ep.executor.t = ep.executor.t + 0.0003  # received 0.3 ms after the tick
    ep.joint_states.stamp = np.arange(40) * DT + offset
    ep.joint_states.t = np.arange(40) * DT + (offset if abs(offset) < 1 else offset - 100) + 0.0005
    joints, _, actions, ks, prov = episode_samples(ep, names, 4, DT, {})
    assert prov["observation_step_rule"] == rule and ks[0] == first
    measured_after = -joints[:, 0]  # the tick whose state it is
    if rule == "stamps":
        clock, base = StepClock(64), 10**9  # (a stamp <= 0 is no report)
        for k in range(40):
            clock.add(k, base + int(round(k * DT * 1e9)))
        for k, tick in zip(ks, measured_after):  # the node's step for that state = the sample's step
            got = clock.step_at(base + int(round((tick * DT + offset) * 1e9)))
            assert got == k or (got is None and k == 0)  # (before the first tick: older than the node's history)
    np.testing.assert_array_equal(actions[:, 0, 0], 100.0 + ks)  # action 0: the command of the sample's step


def test_stale_inputs_are_no_samples_and_a_stride_keeps_histories_whole(caplog) -> None:
    """An audit: a joint state stream silent for 2 s paired one state with 100 moving actions (policy_inference
    refuses inputs older than obs_timeout); --stride 2 with a joint history gave rows [k, k, k - 2]."""
    from rtc_ros.recording.dataset import build_dataset, episode_samples

    ep, names = _paused_episode(np.arange(200))
    keep = (np.arange(200) < 50) | (np.arange(200) >= 150)  # no joint state for ticks 50-149
    ep.joint_states = Series(t=ep.joint_states.t[keep], q=ep.joint_states.q[keep], names=names)
    with caplog.at_level("WARNING"):
        _j, _c, _a, ks, prov = episode_samples(ep, names, 4, DT, {})
    assert prov["skipped_stale_input"] == 75 and not ((ks >= 75) & (ks < 150)).any()  # 0.5 s of the gap is kept
    assert "whose joint state or camera frame was received more than 0.50 s before" in caplog.text
    history = [{"name": "joint_positions", "shape": [3, 2]}]
    with pytest.raises(DatasetError, match="stride 2: the obs_spec has a joint history"):
        build_dataset([ep], history, names, 4, DT, stride=2)
    assert len(build_dataset([ep], history, names, 4, DT, stride=1)) > 0


def test_commands_at_another_rate_than_dt_are_refused(tmp_path: Path) -> None:
    """An audit: 40 Hz teleop commands with dt 0.02 passed the 0.75-1.34 dt check and were resampled to 50 Hz (every
    fifth label a duplicate); the tolerance is the executor path's 10 %."""
    from rtc_ros.recording.dataset import dataset_from_bags

    names = [f"j{i}" for i in range(3)]
    w = BagWriter(tmp_path / "ep")
    w.open()
    w.add_topic("joint_states", "sensor_msgs/msg/JointState")
    w.add_topic("joint_commands", "sensor_msgs/msg/JointState")
    t0 = 1_700_000_000 * 10**9
    for k in range(100):
        tk = t0 + k * 25_000_000
        w.write("joint_states", tk, joint_state_cdr(tk, names, np.full(3, -float(k))))
        w.write("joint_commands", tk + 1000, joint_state_cdr(tk, names, np.full(3, float(k))))
    w.close({"success": True, "task": "x"})
    spec = [{"name": "joint_positions", "shape": [3]}]
    with pytest.raises(DatasetError, match="commands on joint_commands every 25.0 ms, the controller period"):
        dataset_from_bags([tmp_path / "ep"], spec, names, 10, 0.02, {}, ["joint_commands"])
    assert len(dataset_from_bags([tmp_path / "ep"], spec, names, 10, 0.025, {}, ["joint_commands"])) > 0


def test_executor_ticks_drifting_from_the_recording_clock_are_refused() -> None:
    """An audit: an executor on use_sim_time at a real-time factor of 0.95 beside a recorder on wall time (ticks
    stamped 20 ms apart, received 21 ms apart): step 390's observation was tick 371's, silently. (The make demo bags
    drift 0.25 ms over 320 steps.)"""
    from rtc_ros.recording.dataset import episode_samples

    ep, names = _paused_episode(np.arange(400))
    ep.executor.stamp = ep.executor.t.copy()
    ep.executor.t = np.arange(400) * 0.021
    ep.joint_states.t = ep.executor.t + 0.002
    with pytest.raises(DatasetError, match=r"ticks drift by \+375 ms over 399 steps"):
        episode_samples(ep, names, 10, DT, {})
    ep.executor.t = np.arange(400) * DT + 0.003 * np.random.default_rng(0).random(400)  # delays, no drift: taken
    ep.joint_states.t = ep.executor.t + 0.002
    assert len(episode_samples(ep, names, 10, DT, {})[3]) > 300
