"""Training-time RTC (arXiv 2512.05964, method ``rtc_trained``): per-position flow time in the
MLP-Mixer, prefix-conditioned sampling and training, the generator's refusal of a policy not trained
for it, and the method table / params / harness accepting it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rtc_ros.core.prefix import build_prefix
from rtc_ros.core.sampling import prefix_flow_time, sample_plain, sample_prefix_conditioned
from rtc_ros.policies.mixer import MLPMixerPolicy, sincos_embedding
from rtc_ros.policies.spec import PolicySpecError, load_policy
from rtc_ros.policies.toy import HORIZON, chunk_mode, expert_chunk, toy_config, train_toy_policy
from rtc_ros.policies.train import TrainConfig, flow_matching_loss
from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig
from rtc_ros.runtime.methods import METHOD_TABLE, executor_mode

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "policies" / "bimanual_sim_h50.yaml"


def _reference_velocity(m: MLPMixerPolicy, a: torch.Tensor, obs: torch.Tensor, tau: torch.Tensor,
                        per_token: bool = False) -> torch.Tensor:
    """The Mixer written out op by op as before per-position flow time existed (``per_token``: the
    conditioning computed for every token directly, ``tau (B, H)``)."""
    obs_tok, obs_cond = m.obs_in(obs), m.obs_cond(obs)
    c = m.time_mlp(sincos_embedding(tau, m.config.time_dim)) + (obs_cond[:, None] if per_token else obs_cond)

    def mod(ln, x):  # noqa: ANN001, ANN202
        out = ln.mod(c) if per_token else ln.mod(c)[:, None, :]
        scale, shift, gate = out.chunk(3, dim=-1)
        return ln.norm(x) * (1 + scale) + shift, gate

    x = m.action_in(a) + m.pos[None] + obs_tok[:, None, :]
    for b in m.blocks:
        h, gate = mod(b.ln_tok, x)
        x = x + gate * b.token_mlp(h.transpose(1, 2)).transpose(1, 2)
        h, gate = mod(b.ln_ch, x)
        x = x + gate * b.channel_mlp(h)
    h, _ = mod(m.ln_out, x)
    return m.out(h)


def _inputs(m: MLPMixerPolicy, batch: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, m.obs_dim, generator=g), torch.randn(batch, m.horizon, m.action_dim, generator=g),
            torch.rand(batch, generator=g))


def test_shipped_weights_scalar_tau_bit_identical() -> None:
    m = load_policy(SHIPPED).model
    assert m.supports_per_position_tau
    obs, a, tau = _inputs(m)
    with torch.no_grad():
        assert torch.equal(m.velocity(a, m.encode(obs), tau), _reference_velocity(m, a, obs, tau))
        assert torch.equal(m(a, obs, tau), _reference_velocity(m, a, obs, tau))


def test_per_position_tau_equals_scalar_when_equal_and_per_token_reference_otherwise() -> None:
    m = load_policy(SHIPPED).model
    obs, a, tau = _inputs(m)
    H = m.horizon
    with torch.no_grad():
        ctx = m.encode(obs)
        scalar = m.velocity(a, ctx, tau)
        per_pos = m.velocity(a, ctx, tau[:, None].expand(-1, H).contiguous())
        torch.testing.assert_close(per_pos, scalar, rtol=1e-5, atol=1e-5)
        mixed = prefix_flow_time(0.4, 3, H, 7)
        mixed[1, 20:] = 0.9  # three distinct flow times, different per row
        got = m.velocity(a, ctx, mixed)
        torch.testing.assert_close(got, _reference_velocity(m, a, obs, mixed, per_token=True), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(got, scalar, atol=1e-3)  # the per-position times matter
    with pytest.raises(ValueError, match="tau must be"):
        m.velocity(a, ctx, torch.rand(3, H - 1))


def test_per_position_caches_follow_weights_and_context() -> None:
    """Without gradients the per-position conditioning is cached: it must match the differentiable
    (training) path and follow in-place weight changes and a new or modified context."""
    m = MLPMixerPolicy(toy_config(16, 1))
    with torch.no_grad():
        for p in m.parameters():
            torch.nn.init.normal_(p, std=0.3)
    obs, a, _ = _inputs(m, batch=2)
    tau = prefix_flow_time(0.6, 2, 8, 3)
    ctx = m.encode(obs)
    with torch.no_grad():
        first = m.velocity(a, ctx, tau)
        assert torch.equal(m.velocity(a, ctx, tau), first)  # served from the cache
    trained_path = m.velocity(a, ctx, tau)  # grad enabled, parameters require grad: no cache
    assert trained_path.requires_grad
    torch.testing.assert_close(trained_path.detach(), first, rtol=1e-5, atol=1e-5)  # (float32 rounding: 1e-6 failed
    # for 4 % of random weights, 2.5e-6 apart)
    with torch.no_grad():
        m.blocks[0].ln_ch.mod.weight.mul_(2.0)  # an optimiser step / load_state_dict: in place
        changed = m.velocity(a, ctx, tau)
        assert not torch.allclose(changed, first)
        torch.testing.assert_close(changed, _reference_velocity(m, a, obs, tau, per_token=True), rtol=1e-5, atol=1e-5)
        ctx[1].add_(1.0)  # the context modified in place
        modified = m.velocity(a, ctx, tau)
        assert not torch.allclose(modified, changed)
        assert torch.equal(modified, m.velocity(a, (ctx[0], ctx[1].clone()), tau))  # a fresh tensor: no cache


def test_per_position_gather_both_branches_match_the_per_token_reference() -> None:
    """The sampler's case (few distinct flow times: rows per (batch, time) gathered with the observation
    part folded in) and the training case (a flow time per sample, more distinct values than positions:
    time rows gathered, observation part added) against the op-by-op per-token Mixer, with and without
    gradients."""
    m = MLPMixerPolicy(toy_config(16, 1))
    with torch.no_grad():
        for p in m.parameters():
            torch.nn.init.normal_(p, std=0.3)
    for batch, distinct_per_row in ((2, False), (12, True)):
        obs, a, _ = _inputs(m, batch=batch, seed=batch)
        tau = prefix_flow_time(0.3, batch, m.horizon, 2)
        if distinct_per_row:  # U = batch + 1 > H = 8: the training branch
            tau[:, 2:] = torch.linspace(0.05, 0.95, batch)[:, None]
        assert (torch.unique(tau).numel() * batch > tau.numel()) == distinct_per_row
        ref = _reference_velocity(m, a, obs, tau, per_token=True)
        with torch.no_grad():
            torch.testing.assert_close(m.velocity(a, m.encode(obs), tau), ref, rtol=1e-5, atol=1e-5)
        out = m.velocity(a, m.encode(obs), tau)  # differentiable path: values and parameter gradients
        torch.testing.assert_close(out.detach(), ref.detach(), rtol=1e-5, atol=1e-5)
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(7))
        grads = torch.autograd.grad((out * weights).sum(), list(m.parameters()), allow_unused=True)
        ref_grads = torch.autograd.grad((ref * weights).sum(), list(m.parameters()), allow_unused=True)
        for (name, _), g, r in zip(m.named_parameters(), grads, ref_grads):
            if r is None:
                assert g is None or not g.any(), name
            else:
                torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4, msg=name)
    # one observation for a batch of samples (the context broadcast), and > 64 flow times without
    # gradients (the cache starts over instead of losing rows it still needs)
    obs, a, _ = _inputs(m, batch=1, seed=5)
    a = a.expand(3, -1, -1).contiguous()
    tau = prefix_flow_time(0.3, 3, m.horizon, 2)
    tau[1, 2:], tau[2, 2:] = 0.5, 0.7
    ref = _reference_velocity(m, a, obs.expand(3, -1), tau, per_token=True)
    with torch.no_grad():
        torch.testing.assert_close(m.velocity(a, m.encode(obs), tau), ref, rtol=1e-5, atol=1e-5)
        for start in (0.001, 0.5):
            many = torch.linspace(start, start + 0.4, 70)[:, None].expand(70, m.horizon).contiguous()
            many[:, :2] = 1.0
            obs70, a70, _ = _inputs(m, batch=70, seed=9)
            torch.testing.assert_close(m.velocity(a70, m.encode(obs70), many),
                                       _reference_velocity(m, a70, obs70, many, per_token=True), rtol=1e-5, atol=1e-5)


def _velocity_recorder(calls: list[torch.Tensor]):  # noqa: ANN202
    m = MLPMixerPolicy(toy_config(16, 1))
    with torch.no_grad():
        torch.nn.init.normal_(m.out.weight, std=0.5)
        for p in m.parameters():
            p.requires_grad_(False)

    def velocity(x: torch.Tensor, ctx, tau: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        calls.append(tau.clone())
        return m.velocity(x, ctx, tau)

    return m, velocity


def test_sample_prefix_conditioned_keeps_prefix_exactly() -> None:
    calls: list[torch.Tensor] = []
    m, vel = _velocity_recorder(calls)
    g = torch.Generator().manual_seed(1)
    obs, noise, prefix = torch.randn(4, 2, generator=g), torch.randn(4, 8, 2, generator=g), torch.randn(4, 8, 2, generator=g)
    ctx = m.encode(obs)
    out = sample_prefix_conditioned(vel, ctx, noise, prefix, 3, n_steps=5)
    assert torch.equal(out[:, :3], prefix[:, :3])
    assert len(calls) == 5 and all(t.shape == (4, 8) for t in calls)
    assert all((t[:, :3] == 1).all() and (t[:, 3:] == i / 5).all() for i, t in enumerate(calls))
    assert not torch.allclose(out[:, 3:], noise[:, 3:])
    # d = 0 is plain sampling, exactly; d = H returns the prefix
    assert torch.equal(sample_prefix_conditioned(vel, ctx, noise, prefix, 0), sample_plain(vel, ctx, noise))
    assert torch.equal(sample_prefix_conditioned(vel, ctx, noise, prefix, 8), prefix)
    with pytest.raises(ValueError, match=r"d \(inference delay\) must be an integer"):
        sample_prefix_conditioned(vel, ctx, noise, prefix, 9)
    with pytest.raises(ValueError, match="prefix must be"):
        sample_prefix_conditioned(vel, ctx, noise, prefix[:, :5], 2)


def test_prefix_conditioned_loss_ignores_the_prefix_and_checks_its_config() -> None:
    m = MLPMixerPolicy(toy_config(16, 1))
    with torch.no_grad():
        torch.nn.init.normal_(m.out.weight, std=0.5)
    g = torch.Generator().manual_seed(0)
    obs, act = torch.randn(64, 2, generator=g), torch.randn(64, 8, 2, generator=g)
    # D = 0: the plain loss, same random stream as before
    g0, g1 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    noise, tau = torch.randn(act.shape, generator=g1), torch.rand(64, generator=g1)
    x = (1 - tau)[:, None, None] * noise + tau[:, None, None] * act
    assert torch.equal(flow_matching_loss(m, obs, act, g0), torch.mean((m(x, obs, tau) - (act - noise)) ** 2))
    # D = 3: what the model outputs on prefix positions does not change the loss
    seen: list[torch.Tensor] = []
    orig = m.velocity

    def spy(a, ctx, tau):  # noqa: ANN001, ANN202
        seen.append(tau)
        return orig(a, ctx, tau)

    m.velocity = spy  # type: ignore[method-assign]
    loss = flow_matching_loss(m, obs, act, torch.Generator().manual_seed(5), prefix_conditioning=3)
    tau_pos = seen[-1]
    assert tau_pos.shape == (64, 8)
    d = (tau_pos == 1).sum(1)
    assert d.min() == 0 and d.max() == 3 and len(set(d.tolist())) == 4  # d ~ U{0..3}
    out = torch.zeros(64, 8, 2, requires_grad=True)
    m.velocity = lambda a, ctx, tau: out + 0 * orig(a, ctx, tau)  # type: ignore[method-assign]
    flow_matching_loss(m, obs, act, torch.Generator().manual_seed(5), prefix_conditioning=3).backward()
    grad_on_prefix = out.grad[torch.arange(8)[None] < d[:, None]]
    assert grad_on_prefix.abs().max() == 0 and out.grad.abs().sum() > 0 and torch.isfinite(loss)
    with pytest.raises(ValueError, match="prefix_conditioning"):
        TrainConfig(prefix_conditioning=-1)
    with pytest.raises(ValueError, match="prefix_conditioning"):
        flow_matching_loss(MLPMixerPolicy(toy_config(16, 1)), obs, act, g, prefix_conditioning=8)


@pytest.fixture(scope="module")
def trained_toy(tmp_path_factory) -> Path:
    """A toy policy trained with prefix conditioning D = 3 (~10 s on one core)."""
    torch.set_num_threads(1)
    return train_toy_policy(tmp_path_factory.mktemp("trained_toy"), steps=300, prefix_conditioning=3,
                            name="toy_trained", width=32, n_samples=8000)


def _previous_chunks(n: int, s: int, seed: int = 0) -> tuple[np.ndarray, torch.Tensor]:
    """Previous chunks of random mode from the origin; the observation is taken after ``s`` actions, in
    a frame centred on it (the toy is translation-invariant). Returns (modes, prefixes (n, H, 2))."""
    rng = np.random.default_rng(seed)
    mode = rng.choice([-1.0, 1.0], n)
    prev = expert_chunk(np.zeros((n, 2)), mode, rng).astype(np.float32)
    remaining = prev[:, s:] - prev[:, s - 1:s]
    return mode, torch.from_numpy(np.stack([build_prefix(r, 0, HORIZON) for r in remaining]))


def test_trained_toy_reproduces_prefix_and_keeps_mode(trained_toy: Path) -> None:
    pol = load_policy(trained_toy)
    assert pol.prefix_conditioning == 3 and pol.spec["training"] == {"prefix_conditioning": 3}
    n, d, s = 256, 2, 3
    mode, prefix = _previous_chunks(n, s)
    obs = torch.zeros(n, 2)
    # in the policy's (normalised) space the prefix is reproduced bit for bit
    y, ctx = pol.normalize_actions(prefix), pol.encode(obs)
    noise = torch.randn((n, HORIZON, 2), generator=torch.Generator().manual_seed(0))
    assert torch.equal(sample_prefix_conditioned(pol.velocity, ctx, noise, y, d)[:, :d], y[:, :d])
    kept = {}
    for method in ("rtc_trained", "naive"):
        gen = ChunkGenerator(pol, GeneratorConfig(method=method, seed=1))
        out = gen.chunk_fn(d, s)(obs, prefix, noise).numpy()
        kept[method] = float((chunk_mode(out, np.zeros((n, 2))) == mode).mean())
        if method == "rtc_trained":  # raw units: exact up to the normalisation round trip
            np.testing.assert_allclose(out[:, :d], prefix[:, :d].numpy(), rtol=0, atol=1e-6)
    assert kept["rtc_trained"] >= 0.95, kept
    assert kept["naive"] <= 0.75 and kept["rtc_trained"] - kept["naive"] >= 0.2, kept


def test_trained_node_and_benchmark_paths_agree(trained_toy: Path) -> None:
    pol = load_policy(trained_toy)
    _, prefix = _previous_chunks(1, 3)
    remaining = prefix[0, :5].numpy()
    robot = ChunkGenerator(pol, GeneratorConfig(method="rtc_trained", seed=7)).generate(np.zeros(2, np.float32),
                                                                                      remaining, 3, 3)
    gen = torch.Generator().manual_seed(7)
    noise = torch.randn((1, HORIZON, 2), generator=gen)
    bench = ChunkGenerator(pol, GeneratorConfig(method="rtc_trained")).chunk_fn(3, 3, gen)
    batched = bench(torch.zeros(1, 2), torch.from_numpy(build_prefix(remaining, 0, HORIZON))[None], noise)[0]
    np.testing.assert_allclose(robot, batched.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(robot[:3], remaining[:3], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="training.prefix_conditioning = 3"):
        ChunkGenerator(pol, GeneratorConfig(method="rtc_trained")).generate(np.zeros(2, np.float32), remaining, 4, 4)


def test_generator_refuses_policy_not_trained_for_it(small_policy, tmp_path: Path) -> None:
    pol = load_policy(small_policy)
    assert pol.supports_per_position_tau and pol.prefix_conditioning == 0
    with pytest.raises(ValueError, match="'rtc_trained'.*training.prefix_conditioning"):
        ChunkGenerator(pol, GeneratorConfig(method="rtc_trained"))
    ChunkGenerator(pol, GeneratorConfig(method="rtc"))  # inference-time RTC needs no retraining

    class NoPerPosition(MLPMixerPolicy):
        supports_per_position_tau = False

    other = load_policy(small_policy)
    other.model.__class__ = NoPerPosition
    other.spec = {**other.spec, "training": {"prefix_conditioning": 3}}
    with pytest.raises(ValueError, match="'rtc_trained'.*supports_per_position_tau"):
        ChunkGenerator(other, GeneratorConfig(method="rtc_trained"))


@pytest.mark.parametrize("value", [-1, 50, "3", True])
def test_spec_training_field_checked(small_policy, tmp_path: Path, value) -> None:
    import yaml

    spec = yaml.safe_load(Path(small_policy).read_text())
    spec["training"] = {"prefix_conditioning": value}
    for f in (spec["weights"], spec["normalization"]):
        (tmp_path / f).write_bytes((Path(small_policy).parent / f).read_bytes())
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(PolicySpecError, match="training.prefix_conditioning"):
        load_policy(path)


def test_method_table_params_and_harness_accept_it() -> None:
    from rtc_ros.benchmarks._sampler import BENCH_METHODS, check_bench_method
    from rtc_ros.nodes.params import ROLE_EXECUTOR, validate

    info = METHOD_TABLE["rtc_trained"]
    assert info.sampling == "trained" and info.uses_prefix and executor_mode("rtc_trained") == "switch"
    assert validate({"method": "rtc_trained"}, ROLE_EXECUTOR).method == "rtc_trained"
    assert "rtc_trained" in BENCH_METHODS and check_bench_method("rtc_trained") == "rtc_trained"


def test_harness_trains_rtc_trained_policy_by_the_base_recipe(tmp_path: Path) -> None:
    """A CI-sized sweep with rtc_trained: its policy is the base recipe plus prefix conditioning up to
    the largest delay of the sweep, cached next to the base policy."""
    from rtc_ros.benchmarks import delay_sweep
    from rtc_ros.benchmarks._policies import PolicyRecipe
    from rtc_ros.benchmarks._sampler import SamplerConfig

    recipe = PolicyRecipe(width=8, depth=1, token_hidden=8, channel_hidden=16, time_dim=8, demo_envs=32,
                          train_steps=60)
    cfg = delay_sweep.SweepConfig(tasks=("catcher",), methods=("rtc", "rtc_trained"), rollouts=4, bid_rollouts=1,
                                  horizon_rollouts=0, horizon_bid_rollouts=0, workers=1, recipe=recipe,
                                  sampler=SamplerConfig())
    assert cfg.max_prefix == 4
    summary = delay_sweep.run_sweep(cfg, tmp_path / "out", tmp_path / "cache")
    assert set(summary["solve_rate"]) == {"rtc", "rtc_trained"}
    assert all(0 <= v <= 1 for v in summary["solve_rate"]["rtc_trained"].values())
    directory = tmp_path / "cache" / recipe.key("catcher")
    base, prefixed = load_policy(directory / "catcher.yaml"), load_policy(directory / "catcher_prefix4.yaml")
    assert prefixed.prefix_conditioning == 4 and base.prefix_conditioning == 0
    assert prefixed.spec["recipe"] == base.spec["recipe"] and prefixed.spec["config"] == base.spec["config"]
    assert prefixed.spec["n_samples"] == base.spec["n_samples"]  # the same demonstrations


def test_latency_benchmark_json_keeps_keys_and_adds_trained(capsys) -> None:
    import json

    from rtc_ros.benchmarks import latency

    latency.main(["--repeats", "1", "--bid-samples", "3"])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("guided_over_plain_mixer_h8", "guided_over_plain_h50", "floor_over_plain_mixer_h8",
                "floor_over_plain_h50", "bid_over_guided_h50", "mixer_h8_ms", "h50_ms",
                "target_guided_over_plain_le_2", "trained_over_plain_h50", "trained_over_plain_mixer_h8"):
        assert key in line, key
    assert line["trained_over_plain_h50"] > 0 and line["h50_ms"]["trained_ms"] > 0
    assert "spec" not in line  # only with --spec


def test_latency_benchmark_times_a_policy_file(capsys) -> None:
    """``--spec``: the shipped prefix-trained policy timed through the nodes' generator, all three kinds."""
    import json
    from pathlib import Path

    from rtc_ros.benchmarks import latency

    spec = Path(__file__).resolve().parents[1] / "policies" / "bimanual_cnn_h50_trained.yaml"
    latency.main(["--repeats", "1", "--bid-samples", "3", "--spec", str(spec)])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["spec"]["path"] == str(spec)
    assert all(line["spec"][k] > 0 for k in ("plain_ms", "guided_ms", "trained_ms"))
    assert line["trained_over_plain_spec"] > 0 and line["guided_over_plain_spec"] > 0


def test_train_step_benchmark_times_both_steps_and_names_bad_input(small_policy: Path, capsys) -> None:
    """``benchmarks.train_step``: plain and prefix-conditioned steps of a policy file's model, JSON last;
    a prefix length the model cannot take is refused naming it."""
    import json

    from rtc_ros.benchmarks import train_step

    train_step.main([str(small_policy), "--prefix-conditioning", "4", "--batch-size", "4", "--repeats", "1"])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["prefix_conditioning"] == 4 and line["plain_step_ms"] > 0 and line["prefix_step_ms"] > 0
    assert line["prefix_over_plain"] == pytest.approx(line["prefix_step_ms"] / line["plain_step_ms"], rel=1e-2)
    for bad in ("0", "50"):
        with pytest.raises(SystemExit):
            train_step.main([str(small_policy), "--prefix-conditioning", bad, "--repeats", "1"])
        assert "prefix_conditioning" in capsys.readouterr().err


def test_the_learning_rate_schedule_peaks_and_decays_in_a_short_run() -> None:
    """An audit: a run of fewer steps than the warm-up (200 in train_sim_policy) never reached its peak rate nor
    decayed; the warm-up is at most a tenth of the run, and long runs keep theirs."""
    from rtc_ros.policies.train import lr_scale

    short = [lr_scale(k, 100, 200, 0.1) for k in range(100)]
    assert max(short) == 1.0 and short.index(1.0) == 9 and abs(short[-1] - 0.1) < 0.01
    long_run = [lr_scale(k, 10_000, 200, 0.1) for k in range(10_000)]
    assert long_run.index(1.0) == 199 and long_run[99] == 0.5  # the shipped recipes: unchanged
