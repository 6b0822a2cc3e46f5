"""The GPU path: ``GeneratorConfig.cuda_graphs`` and :mod:`rtc_ros.runtime.cuda_graphs`.

On CPU: the field's validation, the generator's no-op (identical chunks), the graph runner's dry run
(static buffers, the captured programs run eagerly) equal to the eager samplers, its clean fallback
when capture fails (no CUDA here: logged once, eager chunks), the Mixer's capture-safe per-position
path, and the latency benchmark's ``--device`` refusal. The CUDA tests run only where
``torch.cuda.is_available()``; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from rtc_ros.core.masks import prefix_weights
from rtc_ros.core.sampling import prefix_flow_time, sample_guided, sample_plain, sample_prefix_conditioned
from rtc_ros.policies.spec import LoadedPolicy, load_policy
from rtc_ros.runtime import cuda_graphs
from rtc_ros.runtime.cuda_graphs import GraphedSampler
from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig

HAS_CUDA = torch.cuda.is_available()
NO_CUDA = "no CUDA device here: the CUDA-graph path has not run (it needs torch.cuda.is_available())"
METHODS = ("naive", "rtc", "rtc_trained")


def _policy(spec, device: str = "cpu") -> LoadedPolicy:
    """The small H = 50 policy, marked as prefix-trained (d <= 10) so ``rtc_trained`` accepts it (the
    chunks need not be good, only equal between paths)."""
    policy = load_policy(spec, device=device)
    policy.spec["training"] = {"prefix_conditioning": 10}
    return policy


def _chunks(policy: LoadedPolicy, method: str, graphs: bool, gen: ChunkGenerator | None = None) -> list[np.ndarray]:
    gen = gen or ChunkGenerator(policy, GeneratorConfig(method=method, seed=3, cuda_graphs=graphs))
    obs = policy.typical_observation()
    prev = gen.generate(obs)
    out = [prev]
    for k in range(3):  # the same shapes again (replays) and another d (trained: a new graph)
        out.append(gen.generate(obs + 0.1 * k, prev[5:], d=4 + k, s=10))
    return out


def test_config_field_is_validated_and_defaults_off() -> None:
    assert GeneratorConfig().cuda_graphs is False  # opt-in until verified on a GPU
    with pytest.raises(ValueError, match="cuda_graphs"):
        GeneratorConfig(cuda_graphs="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="compile"):
        GeneratorConfig(compile=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", METHODS)
def test_cpu_generator_is_a_no_op_with_identical_chunks(small_policy, method: str) -> None:
    policy = _policy(small_policy)
    on = ChunkGenerator(policy, GeneratorConfig(method=method, seed=3, cuda_graphs=True))
    assert on.graphs is None  # CPU: no graphs
    for a, b in zip(_chunks(policy, method, True, on), _chunks(policy, method, False)):
        assert np.array_equal(a, b)


def test_dry_run_runner_equals_eager_samplers(small_policy) -> None:
    """Static buffers + the captured programs, run without a graph, give the eager samplers' chunks
    bit for bit, also on a second call with new inputs into the same buffers."""
    policy = _policy(small_policy)
    H, M = policy.horizon, policy.action_dim
    runner = GraphedSampler(policy.velocity, 5, 5.0, "exact", capture=False)
    g = torch.Generator().manual_seed(0)
    w = prefix_weights(H, 4, 10)
    for _ in range(2):
        ctx = policy.encode(torch.randn(2, policy.obs_dim, generator=g))
        x0, y = torch.randn(2, H, M, generator=g), torch.randn(2, H, M, generator=g)
        with torch.no_grad():
            assert torch.equal(runner.plain(ctx, x0), sample_plain(policy.velocity, ctx, x0, 5))
            assert torch.equal(runner.guided(ctx, x0, y, w), sample_guided(policy.velocity, ctx, x0, y, w, 5.0, 5))
            for d in (0, 4):
                assert torch.equal(runner.trained(ctx, x0, y, d),
                                   sample_prefix_conditioned(policy.velocity, ctx, x0, y, d, 5))
    assert len(runner.graphs) == 3 and runner.disabled_reason is None  # plain, guided, trained d = 4
    with pytest.raises(ValueError, match="noise"):
        runner.plain(ctx, x0.clone().fill_(float("nan")))
    with pytest.raises(ValueError, match=r"d \(inference delay\) must be an integer"):
        runner.trained(ctx, x0, y, H + 1)


def test_too_many_shapes_run_eagerly(small_policy, monkeypatch, caplog) -> None:
    policy = _policy(small_policy)
    monkeypatch.setattr(cuda_graphs, "MAX_GRAPHS", 1)
    runner = GraphedSampler(policy.velocity, 2, capture=False)
    ctx, x0 = policy.encode(torch.zeros(1, policy.obs_dim)), torch.randn(1, policy.horizon, policy.action_dim)
    with caplog.at_level(logging.WARNING, logger="rtc_ros.runtime.cuda_graphs"):
        assert runner.plain(ctx, x0) is not None
        assert runner.trained(ctx, x0, x0, 3) is None and runner.trained(ctx, x0, x0, 2) is None
    assert sum("run eagerly" in r.getMessage() for r in caplog.records) == 1


def test_context_with_an_object_is_not_captured(caplog) -> None:
    """A context object other than tensors/containers/scalars (e.g. a KV-cache class) could hold tensors a
    graph would bake in: the runner declines (logged once) and the caller samples eagerly."""
    runner = GraphedSampler(lambda a, ctx, tau: a * ctx[0], 2, capture=False)
    x0 = torch.randn(1, 4, 2)
    with caplog.at_level(logging.WARNING, logger="rtc_ros.runtime.cuda_graphs"):
        assert runner.plain((torch.ones(1, 1, 1), object()), x0) is None
        assert runner.plain((torch.ones(1, 1, 1), None), x0) is None  # disabled from then on
    assert "non-tensor" in runner.disabled_reason and len(caplog.records) == 1
    ok = GraphedSampler(lambda a, ctx, tau: a * ctx["s"][0], 2, capture=False)
    assert torch.equal(ok.plain({"s": [torch.full((1, 1, 1), 2.0)], "n": 3}, x0), x0 * 4.0)


@pytest.mark.skipif(HAS_CUDA, reason="with CUDA present capture does not fail by itself")
@pytest.mark.parametrize("method", METHODS)
def test_capture_failure_falls_back_to_eager_logged_once(small_policy, method: str, caplog) -> None:
    """A runner forced onto a CPU generator: capture fails (no CUDA), is logged once, and every chunk
    equals the eager generator's."""
    policy = _policy(small_policy)
    gen = ChunkGenerator(policy, GeneratorConfig(method=method, seed=3))
    gen.graphs = GraphedSampler(policy.velocity, gen.config.n_steps, gen.config.beta, gen.config.jacobian)
    with caplog.at_level(logging.WARNING, logger="rtc_ros.runtime.cuda_graphs"):
        got = _chunks(policy, method, True, gen)
    for a, b in zip(got, _chunks(policy, method, False)):
        assert np.array_equal(a, b)
    assert gen.graphs.disabled_reason is not None and not gen.graphs.graphs
    assert sum("capture failed" in r.getMessage() for r in caplog.records) == 1


def test_mixer_capture_safe_per_position_path_matches(small_policy) -> None:
    """The per-token modulation (used on CUDA: no unique/.tolist() host sync) equals the CPU path's."""
    model = load_policy(small_policy).model
    tau = prefix_flow_time(0.4, 2, model.horizon, 5)
    obs_cond = torch.randn(2, model.config.width)
    with torch.no_grad():
        ref = model.per_position_modulation(tau, obs_cond)
        got = model._per_token_modulation(model._mod_layers(), tau, obs_cond)
    assert ref.mods.keys() == got.mods.keys()
    for k in ref.mods:
        torch.testing.assert_close(got.mods[k], ref.mods[k], rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA: nothing to refuse")
@pytest.mark.parametrize("device", ["cuda", "cuda:1", "tpu"])
def test_latency_benchmark_refuses_device_naming_the_option(device: str, capsys) -> None:
    from rtc_ros.benchmarks import latency

    with pytest.raises(SystemExit) as exc:
        latency.main(["--device", device, "--repeats", "1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--device" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------- CUDA only
@pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA)
@pytest.mark.parametrize("method", METHODS)
def test_cuda_graph_chunks_equal_eager(small_policy, method: str) -> None:
    policy = _policy(small_policy, "cuda")
    gen = ChunkGenerator(policy, GeneratorConfig(method=method, seed=3, cuda_graphs=True))
    assert gen.graphs is not None
    got = _chunks(policy, method, True, gen)
    assert gen.graphs.disabled_reason is None and gen.graphs.graphs  # captured and replayed
    for a, b in zip(got, _chunks(policy, method, False)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    cpu = _chunks(_policy(small_policy), method, False)  # noise is drawn on CPU: the same chunks
    for a, b in zip(got, cpu):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA)
def test_cuda_latency_benchmark_and_check(small_policy, capsys) -> None:
    from rtc_ros.benchmarks import latency
    from rtc_ros.runtime import check

    latency.main(["--device", "cuda", "--repeats", "2", "--bid-samples", "4"])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["device"] == "cuda" and line["cuda_graphs"] is True and line["h50_ms"]["guided_ms"] > 0
    assert check.main([str(small_policy), "--device", "cuda", "--repeats", "2"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["device"].startswith("cuda") and result["finite"]


def test_warm_up_captures_every_trained_delay_when_graphs_are_used() -> None:
    """rtc_trained's prefix-conditioned loop is captured per d: with CUDA graphs the node's warm-up samples every d
    the policy was trained for (a capture during live inference would be a latency spike); otherwise one small d."""
    from types import SimpleNamespace

    from rtc_ros.nodes.policy_setup import warmup_delays

    assert warmup_delays(SimpleNamespace(graphs=object(), max_prefix=6), horizon=50) == [1, 2, 3, 4, 5, 6]
    assert warmup_delays(SimpleNamespace(graphs=None, max_prefix=6), horizon=50) == [2]
    assert warmup_delays(SimpleNamespace(graphs=object(), max_prefix=None), horizon=50) == [2]  # rtc: d is data
    assert warmup_delays(SimpleNamespace(graphs=None, max_prefix=1), horizon=50) == [1]
