"""Bad options of the benchmark CLIs are refused up front: ``ap.error`` (exit 2) naming the option, no
traceback, before any policy is trained, any model timed or any ROS node started; plus the checks the
CLIs rely on (GeneratorConfig's beta, BID's K at small N, the policy cache key). All fast: the expensive
entry points are replaced by functions that fail the test if reached."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any, Callable

import pytest

import rtc_ros.benchmarks.tasks.__main__ as tasks_cli
from rtc_ros.benchmarks import _policies, delay_sweep, executor_timing, latency
from rtc_ros.benchmarks._policies import PolicyRecipe
from rtc_ros.policies import base as policy_base
from rtc_ros.policies import mixer as policy_mixer
from rtc_ros.policies import train as policy_train
from rtc_ros.policies.mixer import MixerConfig
from rtc_ros.runtime.generator import GeneratorConfig


def _never(what: str) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        pytest.fail(f"{what} was reached: the bad option must be refused before any work")

    return fail


def _refused(main: Callable[[list[str]], Any], argv: list[str], option: str,
             capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``main(argv)``; assert exit 2 with ``option`` named on stderr and no traceback; return stderr."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert option in err and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------------------------------- delay_sweep
@pytest.fixture
def no_sweep_work(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("run_sweep", "get_task_policies", "get_trained_rtc_policy", "run_expert", "_map"):
        monkeypatch.setattr(delay_sweep, name, _never(f"delay_sweep.{name}"))


@pytest.mark.parametrize("argv, option", [
    (["--beta", "0"], "--beta"),
    (["--beta", "-1"], "--beta"),
    (["--beta", "inf"], "--beta"),
    (["--beta", "nan"], "--beta"),
    (["--rollouts", "0"], "--rollouts"),
    (["--bid-rollouts", "0"], "--bid-rollouts"),
    (["--horizon-rollouts", "-1"], "--horizon-rollouts"),
    (["--horizon-bid-rollouts", "-1"], "--horizon-bid-rollouts"),
    (["--workers", "0"], "--workers"),
    (["--workers", "-1"], "--workers"),
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**64)], "--seed"),
    (["--quick", "--beta", "inf"], "--beta"),
])
def test_delay_sweep_refuses_bad_numbers_before_any_work(argv: list[str], option: str, tmp_path: Path,
                                                         no_sweep_work: None, capsys) -> None:
    _refused(delay_sweep.main, ["--out", str(tmp_path / "out"), *argv], option, capsys)
    assert not (tmp_path / "out").exists()


def test_delay_sweep_good_numbers_reach_the_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid options pass the checks unchanged: ``--workers 1`` stays 1, ``--beta`` reaches the sampler."""
    seen: dict[str, Any] = {}

    class Reached(Exception):
        pass

    def fake_sweep(cfg: delay_sweep.SweepConfig, out: Path, cache: Path) -> dict[str, Any]:
        seen["cfg"] = cfg
        raise Reached

    monkeypatch.setattr(delay_sweep, "run_sweep", fake_sweep)
    with pytest.raises(Reached):
        delay_sweep.main(["--quick", "--out", str(tmp_path), "--workers", "1", "--beta", "2", "--horizon-rollouts",
                          "0", "--seed", "7"])
    cfg = seen["cfg"]
    assert cfg.workers == 1 and cfg.sampler.beta == 2.0 and cfg.horizon_rollouts == 0 and cfg.seed == 7


@pytest.mark.parametrize("beta", [math.inf, -math.inf, math.nan, 0.0, -1.0])
def test_generator_config_refuses_non_finite_or_non_positive_beta(beta: float) -> None:
    with pytest.raises(ValueError, match="beta"):
        GeneratorConfig(method="rtc", beta=beta)
    assert GeneratorConfig(method="rtc", beta=1e-3).beta == 1e-3


# ----------------------------------------------------------------------------------------------- latency
@pytest.fixture
def no_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(latency, "bench_model", _never("latency.bench_model"))
    monkeypatch.setattr(latency, "bench_spec", _never("latency.bench_spec"))
    monkeypatch.setattr(latency.torch, "set_num_threads", _never("torch.set_num_threads"))


@pytest.mark.parametrize("argv, option", [
    (["--repeats", "0"], "--repeats"),
    (["--repeats", "-2"], "--repeats"),
    (["--bid-samples", "0"], "--bid-samples"),
    (["--threads", "-1"], "--threads"),
    (["--spec", "/nonexistent.yaml"], "--spec"),
])
def test_latency_refuses_bad_options_before_timing(argv: list[str], option: str, no_timing: None, capsys) -> None:
    _refused(latency.main, argv, option, capsys)


def test_latency_refuses_an_invalid_spec_file_up_front(tmp_path: Path, no_timing: None, capsys) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text("model: [unclosed\n")
    err = _refused(latency.main, ["--spec", str(spec)], "--spec", capsys)
    assert "broken.yaml" in err


@pytest.mark.parametrize("n, k", [(1, 1), (2, 2), (3, 3), (16, 3), (32, 3)])
def test_latency_bid_k_never_exceeds_n(n: int, k: int) -> None:
    assert latency.bid_k(n) == k


@pytest.mark.parametrize("bid_n", [1, 2])
def test_latency_bench_model_runs_bid_with_fewer_than_three_samples(bid_n: int, capsys) -> None:
    """``--bid-samples 1`` / ``2`` used to fail in ``bid_sample`` (default K = 3 > N); a tiny model, 1 repeat."""
    cfg = MixerConfig(horizon=8, action_dim=2, obs_dim=4, width=8, depth=1, token_hidden=8, channel_hidden=8,
                      time_dim=8)
    res = latency.bench_model("tiny", cfg, repeats=1, bid_n=bid_n)
    assert res["bid_ms"] > 0 and f"BID N={bid_n}" in capsys.readouterr().out


def test_latency_spec_only_times_your_policy_with_the_breakdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys) -> None:
    """``--spec P --spec-only``: the built-in models are not timed; the policy gets a readable line, the breakdown
    (encode, forward, forward + backward, the VJP floor) and the d / s it was timed at (a Python-API walkthrough
    found only JSON, d = 1 with a one-action previous chunk for H = 16, and no way to skip the built-ins)."""
    import json

    from conftest import make_small_policy

    monkeypatch.setattr(latency, "bench_model", _never("latency.bench_model"))
    monkeypatch.setattr(latency.torch, "set_num_threads", lambda n: None)
    path = make_small_policy(tmp_path / "p", horizon=16)
    latency.main(["--spec", str(path), "--spec-only", "--repeats", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    out = json.loads(lines[-1])
    assert set(out) == {"device", "spec", "guided_over_plain_spec"}
    spec = out["spec"]
    H = spec["H"]
    assert (H, spec["s"], spec["d"]) == (16, 8, 6)
    for key in ("plain_ms", "guided_ms", "encode_ms", "forward_ms", "forward_backward_ms", "vjp_floor_ms"):
        assert spec[key] > 0, key
    assert any("VJP floor" in line for line in lines) and any(line.startswith("spec ") for line in lines)
    _refused(latency.main, ["--spec-only"], "--spec-only", capsys)


# --------------------------------------------------------------------------------------- executor_timing
@pytest.mark.parametrize("argv, option", [
    (["--duration", "-1"], "--duration"),
    (["--duration", "0"], "--duration"),
    (["--duration", "inf"], "--duration"),
    (["--duration", "nan"], "--duration"),
    (["--rt-priority", "-1"], "--rt-priority"),
    (["--rt-priority", "100"], "--rt-priority"),
    (["--nice", "-21"], "--nice"),
    (["--nice", "20"], "--nice"),
    (["--torch-threads", "0"], "--torch-threads"),
    (["--policy-width", "0"], "--policy-width"),
    (["--joint-state-hz", "0"], "--joint-state-hz"),
    (["--joint-state-hz", "nan"], "--joint-state-hz"),
    (["--tracking-tolerance", "-0.1"], "--tracking-tolerance"),
    (["--tracking-tolerance", "inf"], "--tracking-tolerance"),
])
def test_executor_timing_refuses_bad_numbers_before_starting_nodes(argv: list[str], option: str,
                                                                   monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(executor_timing, "run", _never("executor_timing.run (starts the ROS nodes)"))
    monkeypatch.setattr(executor_timing.subprocess, "Popen", _never("subprocess.Popen"))
    monkeypatch.setattr(executor_timing, "make_policy", _never("executor_timing.make_policy"))
    _refused(executor_timing.main, argv, option, capsys)


# ----------------------------------------------------------------------------------------- tasks (CLI)
@pytest.mark.parametrize("argv, option", [
    (["--n", "0"], "--n"),
    (["--n", "-3"], "--n"),
    (["--noise", "-0.5"], "--noise"),
    (["--noise", "nan"], "--noise"),
    (["--noise", "inf"], "--noise"),
    (["--seed", "-1"], "--seed"),
])
def test_tasks_cli_refuses_bad_numbers(argv: list[str], option: str, monkeypatch: pytest.MonkeyPatch,
                                       capsys) -> None:
    for name in ("expert_solve_rates", "check_lag_rule", "check_reacting_rule", "check_consistency_rule"):
        monkeypatch.setattr(tasks_cli, name, _never(f"tasks.{name}"))
    _refused(tasks_cli.main, argv, option, capsys)


# ------------------------------------------------------------------------------------ policy cache key
TINY = PolicyRecipe(width=8, depth=1, token_hidden=8, channel_hidden=16, time_dim=8, demo_envs=32, train_steps=60)


@pytest.mark.parametrize("module", [policy_mixer, policy_train, policy_base, _policies],
                         ids=["mixer", "train", "base", "_policies"])
def test_policy_cache_key_follows_model_and_training_source(module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cached policy is not reused once the model or training code changes (here: one file's text edited)."""
    key = TINY.key("crawler")
    edited = inspect.getsourcefile(module)
    read = _policies._read_source
    monkeypatch.setattr(_policies, "_read_source",
                        lambda path: read(path) + b"\n# edited\n" if path == edited else read(path))
    assert TINY.key("crawler") != key
    monkeypatch.setattr(_policies, "_read_source", read)
    assert TINY.key("crawler") == key  # deterministic: the unedited sources give the old key back
