"""rtc_ros on a (tiny, random) LeRobot GR00T N1.5: its time buckets, its own chunk reproduced, min-max action
statistics, exact RTC guidance through the action head, the check command, spec errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rtc_ros.core.guidance import guidance_weight, guided_velocity
from rtc_ros.core.masks import prefix_weights
from rtc_ros.core.sampling import sample_plain
from rtc_ros.policies.lerobot_groot import timestep_bucket
from rtc_ros.policies.spec import PolicySpecError, load_policy
from rtc_ros.runtime.check import check_policy, main as check_main
from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig

S, M, IMG, H, PAD = 6, 6, 32, 16, 32


@pytest.fixture(scope="module")
def policy(tiny_groot):
    return load_policy(tiny_groot)


def _obs(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"state": rng.normal(size=S).astype(np.float32), "front": rng.integers(0, 256, (IMG, IMG, 3), np.uint8)}


def test_loads_with_the_boundary_interface(policy):
    """H = the head's action_horizon, sampled in the padded max_action_dim, n = num_inference_timesteps; actions
    normalised min-max into [-1, 1] with the statistics LeRobot's postprocessor unnormalises with, and back as it
    does (a constant joint: 0, then its value)."""
    assert (policy.horizon, policy.action_dim, policy.sample_dim, policy.n_steps) == (H, M, PAD, 4)
    assert "action_horizon" in policy.horizon_source
    assert policy.obs_spec == [{"name": "state", "shape": [S]}, {"name": "front", "shape": [3, IMG, IMG]}]
    assert policy.typical_observation().shape == (policy.obs_dim,) == (S + 3 * IMG * IMG,)
    a = torch.randn(2, H, M)
    z = policy.normalize_actions(a)
    assert z.shape == (2, H, PAD) and torch.all(z[..., M:] == 0)
    back = policy.unnormalize_actions(z)
    torch.testing.assert_close(back[..., 1:], a[..., 1:], atol=1e-5, rtol=1e-5)  # joint 0 is constant (below)
    for i in (0, 7, H - 1):  # LeRobot's postprocessor unnormalises one action (B, D) at a time
        torch.testing.assert_close(policy.unnormalize_actions(z)[:, i], policy.postprocessor(z[:, i]), atol=1e-6,
                                   rtol=1e-6)
    post = next(s for s in policy.postprocessor.steps if type(s).__name__ == "GrootActionUnpackUnnormalizeStep")
    lo, hi = (torch.as_tensor(post.stats["action"][k], dtype=torch.float32) for k in ("min", "max"))
    assert lo[0] == hi[0]  # the tiny statistics' constant joint: LeRobot maps it to 0 and back to its value
    torch.testing.assert_close(policy.normalize_actions(lo)[:M], torch.cat([torch.zeros(1), -torch.ones(M - 1)]))
    torch.testing.assert_close(policy.normalize_actions(hi)[:M], torch.cat([torch.zeros(1), torch.ones(M - 1)]))
    torch.testing.assert_close(policy.unnormalize_actions(torch.randn(PAD))[0], lo[0])


def test_time_buckets_are_groots():
    """The sampler's float32 tau = i * (1 / n) lands in GR00T's bucket int(i / n * 1000) for every step of every
    n <= 1000 (a nudge of 1e-3 instead of 1e-4 misses two, at n = 979 and 983)."""
    for n in range(1, 1001):
        dt = 1.0 / n
        taus = torch.tensor([i * dt for i in range(n)], dtype=torch.float32)
        assert timestep_bucket(taus, 1000).tolist() == [int(i / float(n) * 1000) for i in range(n)], n


def _flat(policy, seed: int, batch: int = 1) -> torch.Tensor:
    """Flat raw observations ``(B, O)``: a random state (the normalisation midpoint would hide the state path: it
    normalises to 0) and random images."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, policy.obs_dim, generator=g)
    x[:, :S] = 3.0 * torch.randn(batch, S, generator=g)
    return x


@pytest.mark.parametrize("batch", [1, 2])
def test_plain_sampling_is_groots_own_chunk(policy, batch):
    """rtc_ros's Euler loop over ``velocity`` from the same noise is LeRobot's ``predict_action_chunk``: the same
    encode-once context (the state token included), the same per-step body; a batch of two too."""
    for seed in (7, 8):
        obs = _flat(policy, seed, batch)
        torch.manual_seed(seed)
        noise = torch.randn(batch, H, PAD)  # get_action's first draw from the global generator
        with torch.no_grad():
            ours = sample_plain(policy.velocity, policy.encode(obs), noise, policy.n_steps)
        torch.manual_seed(seed)
        theirs = policy.policy.predict_action_chunk(policy.preprocessor(policy._batch(obs)))
        assert theirs.shape == (batch, H, M)
        torch.testing.assert_close(ours[..., :M], theirs, atol=1e-6, rtol=1e-6)
    other = policy.encode(_flat(policy, 9, batch))
    assert not torch.equal(policy.encode(obs)[1], other[1])  # the state token depends on the state
    chunk = ChunkGenerator(policy, GeneratorConfig(method="naive", n_steps=4)).sample(obs, None, 0, 0, noise)
    torch.testing.assert_close(chunk, policy.unnormalize_actions(ours), atol=1e-5, rtol=1e-5)


def test_a_robot_observation_is_its_flat_layout(policy):
    """State and a uint8 camera frame encode like the flat layout; a frame of another size is resized to the
    obs_spec's by rtc_ros (then LeRobot's Eagle processor resizes to its tile)."""
    obs = _obs(1)
    flat = np.concatenate([obs["state"], obs["front"].transpose(2, 0, 1).reshape(-1) / 255.0]).astype(np.float32)
    for a, b in zip(policy.encode(obs), policy.encode(torch.from_numpy(flat)[None])):
        torch.testing.assert_close(a, b)
    other = {"state": obs["state"], "front": np.zeros((48, 80, 3), np.uint8)}
    assert np.isfinite(ChunkGenerator(policy, GeneratorConfig(method="rtc", n_steps=4)).generate(other)).all()


def test_the_exact_vjp_goes_through_the_action_head(policy):
    """Guided velocity = v + w(tau) * e^T d(a + (1 - tau) v)/da, checked against torch.func.vjp of the head."""
    g = torch.Generator().manual_seed(5)
    ctx = policy.encode(_obs(2))
    prev = policy.normalize_actions(torch.randn(1, H, M, generator=g))
    x = torch.randn(1, H, PAD, generator=g)
    w = prefix_weights(H, 3, 4, "exp")
    for tau in (0.0, 0.25, 0.5):
        guided, v = guided_velocity(policy.velocity, x, ctx, tau, prev, w, 5.0, "exact")
        err = w[None, :, None] * (prev - (x + (1 - tau) * v))
        _, pull = torch.func.vjp(lambda a: a + (1 - tau) * policy.velocity(a, ctx, torch.tensor([tau])), x)
        torch.testing.assert_close(guided, v + guidance_weight(tau, 5.0) * pull(err)[0], atol=1e-5, rtol=1e-4)
        approx, _ = guided_velocity(policy.velocity, x, ctx, tau, prev, w, 5.0, "identity_approx")
        assert (guided - approx).norm() > 1e-3 * (approx - v).norm()  # the Jacobian term is there


def test_guided_chunks_follow_the_previous_chunk(policy):
    r = check_policy(policy, d=3, s=4, repeats=2)
    assert r["finite"] and r["ok"]
    assert r["prefix_error_guided"] < 0.5 * r["prefix_error_plain"], r


def test_check_command(tiny_groot, capsys):
    assert check_main([str(tiny_groot), "--d", "3", "--s", "4", "--repeats", "1"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["model"] == "lerobot_groot" and r["horizon"] == H and r["action_dim"] == M and r["ok"]


@pytest.mark.parametrize("method", ["bid", "rtc_hard", "naive"])
def test_other_methods_run(policy, method):
    """BID repeats the (vl_embs, state, embodiment) context per candidate."""
    gen = ChunkGenerator(policy, GeneratorConfig(method=method, n_steps=4, bid_samples=4, bid_k=2))
    chunk = gen.generate(_obs(3))
    assert np.isfinite(gen.generate(_obs(3), chunk[3:], d=2, s=3)).all()


def test_bf16_as_lerobot_runs_it(tiny_groot):
    """A checkpoint with ``use_bf16`` (LeRobot's default) is built with compute_dtype bfloat16 and run under bfloat16
    autocast: rtc_ros's loop still reproduces LeRobot's own chunk, and guided sampling runs (float32 out)."""
    p = load_policy(tiny_groot)
    p.policy.config.use_bf16, p.model.compute_dtype = True, "bfloat16"  # what LeRobot sets when it builds one
    assert p._autocast().fast_dtype == torch.bfloat16
    obs = _flat(p, 4)
    torch.manual_seed(4)
    noise = torch.randn(1, H, PAD)
    with torch.no_grad():
        ours = sample_plain(p.velocity, p.encode(obs), noise, p.n_steps)
    torch.manual_seed(4)
    theirs = p.policy.predict_action_chunk(p.preprocessor(p._batch(obs)))
    torch.testing.assert_close(ours[..., :M], theirs.float(), atol=1e-6, rtol=1e-6)
    ref = load_policy(tiny_groot)
    with torch.no_grad():
        fp32 = sample_plain(ref.velocity, ref.encode(obs), noise, ref.n_steps)
    assert not torch.equal(ours, fp32)  # bf16 did run
    cfg = GeneratorConfig(method="rtc", n_steps=4, seed=3)
    a = ChunkGenerator(p, cfg).generate(_obs(4))
    guided = ChunkGenerator(p, cfg).generate(_obs(4), a[3:], d=2, s=3)
    assert guided.dtype == np.float64 and np.isfinite(guided).all()


def test_spec_errors_name_the_field(tmp_path, tiny_groot, tiny_diffusion):
    src = tiny_groot.parent / "pretrained_model"
    bad = tmp_path / "bad.yaml"
    for text, match in [
        (f"model: lerobot_groot\npretrained_path: {tiny_diffusion.parent / 'pretrained_model'}\n",
         "holds a 'diffusion' policy, not 'groot' .model: lerobot_diffusion"),
        (f"model: lerobot_diffusion\npretrained_path: {src}\n", "model: lerobot_groot loads it"),
        (f"model: lerobot_groot\npretrained_path: {src}\nn_steps: 0\n", "field 'n_steps'"),
        (f"model: lerobot_groot\npretrained_path: {src}\ntask: t\njoint_names: [a, b]\n", "field 'joint_names'"),
        (f"model: lerobot_groot\npretrained_path: {src}\ntask: t\nbase_model_path: {tmp_path / 'nowhere'}\n",
         "field 'base_model_path': no GR00T config.json"),
        (f"model: lerobot_groot\npretrained_path: {src}\n", "field 'task': a vision-language-action policy"),
    ]:
        bad.write_text(text)
        with pytest.raises(PolicySpecError, match=match):
            load_policy(bad)
    (tmp_path / "config_only").mkdir()  # LeRobot would take it for a base model and build that
    (tmp_path / "config_only" / "config.json").write_text((src / "config.json").read_text())
    bad.write_text(f"model: lerobot_groot\npretrained_path: {tmp_path / 'config_only'}\ntask: t\n")
    with pytest.raises(PolicySpecError, match="field 'pretrained_path': no model.safetensors"):
        load_policy(bad)
    from tiny_groot import gr00t_config  # a base whose DiT has another depth: the fine-tuned weights do not fit

    from lerobot.policies.groot.groot_n1 import GR00TN15
    from rtc_ros.policies.lerobot_groot import sdpa_without_flash_attn

    other = gr00t_config()
    other.action_head_cfg["diffusion_model_cfg"]["num_layers"] = 3
    with sdpa_without_flash_attn():
        GR00TN15(other, local_model_path=str(tmp_path / "deeper")).save_pretrained(tmp_path / "deeper")
    bad.write_text(f"model: lerobot_groot\npretrained_path: {src}\ntask: t\nbase_model_path: {tmp_path / 'deeper'}\n")
    with pytest.raises(PolicySpecError, match="field 'pretrained_path': its weights do not fit"):
        load_policy(bad)


def test_base_model_path_override(tmp_path, tiny_groot):
    """``base_model_path`` (relative to the spec) points LeRobot at a local copy of the base model: it loads with
    the checkpoint's own base moved away, and the fine-tuned weights load over the copy's (perturbed) ones."""
    import shutil

    from safetensors.torch import load_file, save_file

    base = tiny_groot.parent / "base_model"
    shutil.copytree(base, tmp_path / "my_base")
    weights = tmp_path / "my_base" / "model.safetensors"
    save_file({k: v + 0.1 if v.is_floating_point() else v for k, v in load_file(weights).items()}, weights)
    spec = tmp_path / "s.yaml"
    spec.write_text(f"model: lerobot_groot\npretrained_path: {tiny_groot.parent / 'pretrained_model'}\n"
                    "base_model_path: my_base\ntask: pick up the cube\n")
    ref = load_policy(tiny_groot)
    base.rename(tmp_path / "moved")
    try:
        p = load_policy(spec)
    finally:
        (tmp_path / "moved").rename(base)
    assert p.config.base_model_path == str(tmp_path / "my_base")
    for (k, a), b in zip(p.policy.state_dict().items(), ref.policy.state_dict().values()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=k)
    cfg = GeneratorConfig(method="naive", n_steps=4, seed=1)
    np.testing.assert_allclose(ChunkGenerator(p, cfg).generate(_obs(5)), ChunkGenerator(ref, cfg).generate(_obs(5)),
                               atol=1e-5)
