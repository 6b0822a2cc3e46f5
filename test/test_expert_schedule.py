"""The transfer expert's waypoint timing (rtc_ros.sim.expert_schedule): the margin to the step limit."""

from __future__ import annotations

import os
from dataclasses import replace

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rtc_ros.nodes.params import ROLE_EXECUTOR, load_params_file, validate  # noqa: E402
from rtc_ros.sim import BimanualSim  # noqa: E402
from rtc_ros.sim.conveyor_expert import ConveyorExpert, make_expert, run_closed_loop_expert  # noqa: E402
from rtc_ros.sim.expert import ScriptedExpert  # noqa: E402
from rtc_ros.sim.expert_schedule import MARGIN_SCHEDULE, ORIGINAL_SCHEDULE, SCHEDULES  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# seeds where the timing came closest to the step limit (scan of seeds 0-249 and 10000-10249): every
# seed's tilt (0), the lift (82: the first try of the margin timing still reached 0.83 there), the
# descent (10125: the original's 0.97) and the lift again (10149: the original's 0.94)
MARGIN_SEEDS = (0, 82, 10125, 10149)
LATER_SEEDS = (82, 10125, 10149)  # the original timing breaks the rule there after the tilt too


@pytest.fixture(scope="module")
def sim() -> BimanualSim:
    s = BimanualSim(max_episode_steps=10_000)
    yield s
    s.close()


def _arm_max_step() -> float:
    """The executor's per-tick step limit of the arm joints in the shipped sim params file."""
    p = validate(load_params_file(os.path.join(ROOT, "config", "sim_bimanual.yaml"), "chunk_executor"), ROLE_EXECUTOR)
    steps = np.concatenate([np.asarray(a.max_step[:6]) for a in p.arms])
    assert np.ptp(steps) == 0.0
    return float(steps[0])


def test_schedule_ticks_must_increase_per_arm() -> None:
    with pytest.raises(ValueError, match="right arm"):
        replace(ORIGINAL_SCHEDULE, above=ORIGINAL_SCHEDULE.tilt)
    with pytest.raises(ValueError, match="left arm"):
        replace(ORIGINAL_SCHEDULE, left_closed=ORIGINAL_SCHEDULE.left_grasp - 1)
    assert set(SCHEDULES) == {"margin", "original"}


def _arm_steps(sim: BimanualSim, seed: int, schedule) -> np.ndarray:
    """(T,) largest commanded arm-joint change per tick of the closed-loop expert (grippers excluded)."""
    obs = sim.reset(seed)
    expert = make_expert(sim, schedule)
    expert.reset(obs)
    cmds = [sim.home_position]
    for _ in range(expert.horizon):
        cmds.append(expert.act(obs))
        obs = sim.step(cmds[-1]).obs
    return np.abs(np.diff(np.delete(np.array(cmds), [6, 13], axis=1), axis=0)).max(axis=1)


def test_margin_schedule_keeps_every_commanded_arm_step_under_80_percent_of_max_step(sim: BimanualSim) -> None:
    """The design rule of MARGIN_SCHEDULE, on the seeds where the timing came closest to the limit; the
    original timing breaks it on the same seeds, also after its tilt (the descent / lift), so the seeds
    exercise the segments the margin slowed."""
    limit = 0.8 * _arm_max_step()
    margin = [run_closed_loop_expert(sim, seed, schedule=MARGIN_SCHEDULE) for seed in MARGIN_SEEDS]
    assert all(o.success and o.stops == 0 for o in margin)
    assert max(o.peak_arm_step for o in margin) <= limit, [o.peak_arm_step for o in margin]
    for seed in MARGIN_SEEDS:
        assert _arm_steps(sim, seed, MARGIN_SCHEDULE).max() <= limit
        original = _arm_steps(sim, seed, ORIGINAL_SCHEDULE)
        assert original.max() > limit
        if seed in LATER_SEEDS:
            assert original[ORIGINAL_SCHEDULE.above:].max() > limit, (seed, original[ORIGINAL_SCHEDULE.above:].max())


def test_transfer_expert_defaults_to_margin_and_conveyor_keeps_original() -> None:
    transfer = BimanualSim(max_episode_steps=10_000)
    conveyor = BimanualSim(max_episode_steps=10_000, task="conveyor_cube")
    try:
        assert ScriptedExpert(transfer).schedule == MARGIN_SCHEDULE
        assert make_expert(transfer).schedule == MARGIN_SCHEDULE
        assert make_expert(transfer, ORIGINAL_SCHEDULE).schedule == ORIGINAL_SCHEDULE
        expert = make_expert(conveyor)
        assert isinstance(expert, ConveyorExpert) and expert.schedule == ORIGINAL_SCHEDULE
        with pytest.raises(ValueError, match="schedule"):
            make_expert(conveyor, MARGIN_SCHEDULE)
        # the plan follows the schedule: its length, and the left arm re-targeted at the replan tick
        # (with observations) -- the rows before it stay those of the open-loop plan, the rows from it on change
        obs = transfer.reset(3)
        ex = make_expert(transfer)
        ex.reset(obs)
        assert ex.horizon == max(MARGIN_SCHEDULE.retreated, MARGIN_SCHEDULE.left_away) + 16
        open_loop = ex.plan.copy()
        r = MARGIN_SCHEDULE.replan
        for k in range(r + 1):
            if k == r:
                cube_at_replan = obs.cube_pose[:3].copy()
            obs = transfer.step(ex.act(obs)).obs
        np.testing.assert_array_equal(ex.plan[:r, :7], open_loop[:r, :7])
        assert np.abs(ex.plan[r + 1:, :6] - open_loop[r + 1:, :6]).max() > 1e-4
        ref = make_expert(transfer)  # the same re-targeting from the cube seen at the replan tick
        ref.reset(transfer.reset(3))
        ref.replan_handover(cube_at_replan)
        np.testing.assert_allclose(ex.plan, ref.plan, atol=1e-12)
    finally:
        transfer.close()
        conveyor.close()


def test_demo_config_and_cli_validate_the_schedule() -> None:
    from rtc_ros.experiments.sim_demos import DemoConfig
    from rtc_ros.experiments.train_sim_policy import main as train_main
    from rtc_ros.sim.expert_check import main as check_main

    assert DemoConfig(expert_schedule="original").expert_schedule == "original"
    with pytest.raises(ValueError, match="expert_schedule"):
        DemoConfig(expert_schedule="fast")
    with pytest.raises(ValueError, match="expert_schedule"):
        DemoConfig(task="conveyor_cube", expert_schedule="margin")
    for cli in (train_main, check_main):
        with pytest.raises(SystemExit):
            cli(["--task", "conveyor_cube", "--expert-schedule", "margin"])


def test_train_cli_refuses_reused_bags_of_another_task_and_a_prefix_as_long_as_the_horizon(tmp_path, capsys) -> None:
    """An audit: --reuse-bags trained on bags of another task or schedule, its spec's command naming the one given;
    --prefix-conditioning >= H was refused only in training, after the demos had been generated."""
    from rtc_ros.experiments.train_sim_policy import main as train_main
    from rtc_ros.recording.bag import write_sidecar

    with pytest.raises(SystemExit):
        train_main(["--prefix-conditioning", "50", "--out", str(tmp_path / "o"), "--bags", str(tmp_path / "b")])
    assert "--prefix-conditioning must be in [0, 49]" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # nothing generated
    bag = tmp_path / "b" / "demo_0000"
    bag.mkdir(parents=True)
    write_sidecar(bag, {"task": "conveyor_cube", "expert_schedule": "original", "success": True})
    with pytest.raises(SystemExit):
        train_main(["--reuse-bags", "--bags", str(tmp_path / "b"), "--out", str(tmp_path / "o"), "--task",
                    "transfer_cube", "--expert-schedule", "margin"])
    err = capsys.readouterr().err
    assert "--reuse-bags: 1 bags in" in err and "'task': 'conveyor_cube'" in err, err
