"""Models, the YAML/safetensors policy spec, and input validation of chunk generation."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rtc_ros.policies.base import Normalizer
from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig
from rtc_ros.policies.mixer import MixerConfig, MLPMixerPolicy, bimanual_h50, mixer_h8
from rtc_ros.policies.spec import PolicySpecError, load_policy, save_policy
from rtc_ros.policies.train import TrainConfig, train_flow_policy


def test_models_have_expected_shapes():
    for cfg in (mixer_h8(2, 4, width=32), bimanual_h50(20, width=64)):
        m = MLPMixerPolicy(cfg)
        B = 3
        out = m(torch.randn(B, cfg.horizon, cfg.action_dim), torch.randn(B, cfg.obs_dim), torch.rand(B))
        assert out.shape == (B, cfg.horizon, cfg.action_dim)
    assert bimanual_h50(20).horizon == 50 and bimanual_h50(20).action_dim == 14
    with pytest.raises(ValueError, match="width"):
        MixerConfig(width=0)


def _save_small(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = MLPMixerPolicy(MixerConfig(horizon=8, action_dim=2, obs_dim=3, width=16, depth=1,
                                       token_hidden=8, channel_hidden=16, time_dim=8))
    for p in model.parameters():  # make it non-trivial (the output layer starts at zero)
        torch.nn.init.normal_(p, std=0.1)
    norm = Normalizer(np.zeros(3), np.ones(3), np.array([1.0, -1.0]), np.array([2.0, 0.5]))
    return save_policy(tmp_path, "small", model, norm)


def test_spec_roundtrip(tmp_path):
    path = _save_small(tmp_path)
    pol = load_policy(path)
    assert (pol.horizon, pol.action_dim, pol.obs_dim) == (8, 2, 3)
    assert all(not p.requires_grad for p in pol.model.parameters())
    assert np.allclose(pol.normalizer.action_std, [2.0, 0.5])


def _edit(path: Path, fn) -> Path:
    spec = yaml.safe_load(path.read_text())
    fn(spec)
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda s: s.update(model="transformer9000"), "model"),
        (lambda s: s.pop("weights"), "weights"),
        (lambda s: s.update(weights="missing.safetensors"), "weights"),
        (lambda s: s.update(weights="small.pt"), "weights"),
        (lambda s: s["config"].update(width=32), "weights"),  # shape mismatch
        (lambda s: s["config"].update(depth=-1), "config"),
        (lambda s: s["config"].update(colour="red"), "config"),
        (lambda s: s["normalization"].pop("action_std"), "normalization.action_std"),
        (lambda s: s["normalization"].update(obs_mean=[0, 0], obs_std=[1, 1]), "normalization.obs_mean"),
        (lambda s: s.update(obs_spec=[{"name": "q", "shape": [5]}]), "obs_spec"),
    ],
)
def test_bad_specs_name_the_field(tmp_path, mutate, field):
    path = _edit(_save_small(tmp_path), mutate)
    with pytest.raises(PolicySpecError, match=f"field '{field}'"):
        load_policy(path)


def test_missing_spec_file(tmp_path):
    with pytest.raises(PolicySpecError, match="not found"):
        load_policy(tmp_path / "nope.yaml")


def test_chunk_generator_validates_inputs(tmp_path):
    pol = load_policy(_save_small(tmp_path))
    gen = ChunkGenerator(pol, GeneratorConfig(method="rtc"))
    chunk = gen.generate(np.zeros(3), None)
    assert chunk.shape == (8, 2) and np.isfinite(chunk).all()
    guided = gen.generate(np.zeros(3), np.ones((5, 2)), d=2, s=2)
    assert guided.shape == (8, 2)
    with pytest.raises(ValueError, match="NaN"):
        gen.generate(np.array([0.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        gen.generate(np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        gen.generate(np.zeros(3), np.full((5, 2), np.inf), d=1, s=1)
    with pytest.raises(ValueError, match="method"):
        GeneratorConfig(method="fast")
    with pytest.raises(ValueError, match="beta"):
        GeneratorConfig(beta=0.0)
    bid = ChunkGenerator(pol, GeneratorConfig(method="bid", bid_samples=4, bid_k=2))
    assert bid.generate(np.zeros(3), np.ones((5, 2)), d=2, s=2).shape == (8, 2)


def test_training_reduces_flow_matching_loss():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(512, 3)).astype(np.float32)
    actions = (obs[:, None, :2] + np.linspace(0, 1, 8)[None, :, None]).astype(np.float32)
    model = MLPMixerPolicy(MixerConfig(horizon=8, action_dim=2, obs_dim=3, width=32, depth=1,
                                       token_hidden=16, channel_hidden=32, time_dim=16))
    res = train_flow_policy(model, obs, actions, TrainConfig(steps=200, batch_size=64, progress=False,
                                                             checkpoint_steps=(20,)))
    assert np.mean(res.losses[-20:]) < 0.6 * np.mean(res.losses[:20])
    assert 20 in res.checkpoints
    with pytest.raises(ValueError, match="NaN"):
        train_flow_policy(model, np.full_like(obs, np.nan), actions, TrainConfig(steps=1, progress=False))
    # a wall-clock budget far below 200 steps' time compresses the schedule at the first check (step 50)
    short = train_flow_policy(model, obs, actions, TrainConfig(steps=200, batch_size=64, progress=False,
                                                               max_minutes=1e-5))
    assert 50 <= len(short.losses) < 200
