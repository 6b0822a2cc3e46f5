"""One chunk generator: the robot's path (``generate``) and the benchmark's (``chunk_fn``) agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtc_ros.benchmarks._sampler import SamplerConfig
from rtc_ros.core.prefix import build_prefix
from rtc_ros.policies.spec import load_policy
from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig


@pytest.mark.parametrize("method", ["rtc", "rtc_hard", "naive", "bid"])
def test_node_and_benchmark_produce_the_same_chunk(small_policy, method: str) -> None:
    pol = load_policy(small_policy)
    H, M, O = pol.horizon, pol.action_dim, pol.obs_dim
    rng = np.random.default_rng(3)
    obs = rng.normal(size=O).astype(np.float32)
    prev_remaining = rng.normal(scale=0.1, size=(H - 20, M))  # 20 actions of the executing chunk consumed
    d, s, seed = 6, 20, 11
    node = ChunkGenerator(pol, GeneratorConfig(method=method, seed=seed, bid_samples=8))
    robot = node.generate(obs, prev_remaining, d, s)
    bench = SamplerConfig(bid_samples=8).generator(method, pol, None)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((1, H, M), generator=gen)  # what generate() draws first from its seeded RNG
    prefix = torch.from_numpy(build_prefix(prev_remaining.astype(np.float32), 0, H))[None]
    batched = bench.chunk_fn(d, s, gen)(torch.from_numpy(obs)[None], prefix, noise)[0].numpy()
    np.testing.assert_allclose(robot, batched, rtol=0, atol=1e-6)
    if method != "naive":  # the prefix matters: a different target gives a different chunk
        other = ChunkGenerator(pol, GeneratorConfig(method=method, seed=seed, bid_samples=8))
        assert not np.allclose(other.generate(obs, prev_remaining + 1.0, d, s), robot)


def test_generator_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="bid_k"):
        GeneratorConfig(bid_samples=2, bid_k=3)
    with pytest.raises(ValueError, match="method"):
        GeneratorConfig(method="te")


def test_encode_once_per_chunk_and_same_result_as_forward(small_policy) -> None:
    """The observation is encoded once per chunk; the velocity per step gives what forward gives."""
    from rtc_ros.core.masks import prefix_weights
    from rtc_ros.core.sampling import sample_guided

    pol = load_policy(small_policy)
    m, H, M, O = pol.model, pol.horizon, pol.action_dim, pol.obs_dim
    torch.manual_seed(0)
    obs, a, tau = torch.randn(2, O), torch.randn(2, H, M), torch.tensor([0.3, 0.7])
    assert torch.equal(m(a, obs, tau), m.velocity(a, m.encode(obs), tau))
    y, w = torch.randn(2, H, M), prefix_weights(H, 5, 20)
    via_forward = sample_guided(m, obs, a, y, w, 5.0, 5)  # forward-only view: encode inside every step
    via_context = sample_guided(m.velocity, m.encode(obs), a, y, w, 5.0, 5)
    torch.testing.assert_close(via_forward, via_context, rtol=0, atol=1e-6)
    for method in ("rtc", "naive", "bid"):
        gen = ChunkGenerator(pol, GeneratorConfig(method=method, bid_samples=4))
        calls = []
        enc = gen.encode
        gen.encode = lambda o, enc=enc: calls.append(o.shape) or enc(o)
        gen.generate(obs[0].numpy(), np.zeros((10, M)), 3, 20)
        assert calls == [(1, O)], (method, calls)  # once, for the one observation (BID: not per candidate)
