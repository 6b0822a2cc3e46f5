"""rtc_ros on a (tiny, random) LeRobot SmolVLA: conventions, exact RTC guidance, the check command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rtc_ros.core.guidance import guided_velocity
from rtc_ros.policies.spec import PolicySpecError, load_policy
from rtc_ros.runtime.check import check_policy, main as check_main
from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig


@pytest.fixture(scope="module")
def policy(tiny_smolvla):
    return load_policy(tiny_smolvla)


def test_loads_with_the_boundary_interface(policy):
    assert (policy.horizon, policy.action_dim, policy.sample_dim) == (10, 6, 32)
    assert policy.horizon_source == "chunk_size in pretrained_path's config.json"
    assert policy.n_steps == 5 and policy.obs_spec[0] == {"name": "state", "shape": [6]}
    obs = policy.typical_observation()
    assert obs.shape == (policy.obs_dim,) == (6 + 3 * 32 * 32,)
    a = torch.randn(2, 10, 6)
    z = policy.normalize_actions(a)
    assert z.shape == (2, 10, 32) and torch.all(z[..., 6:] == 0)
    torch.testing.assert_close(policy.unnormalize_actions(z), a, atol=1e-5, rtol=1e-5)


def test_plain_sampling_equals_lerobot_sample_actions(policy):
    """tau = 1 - t and v_rtc = -v_lerobot: our Euler sampler reproduces LeRobot's own chunk."""
    obs = policy.typical_observation()
    noise = torch.randn(1, 10, 32, generator=torch.Generator().manual_seed(3))
    ours = ChunkGenerator(policy, GeneratorConfig(method="naive", n_steps=5)).sample(torch.from_numpy(obs)[None],
                                                                                      None, 0, 0, noise)
    with torch.no_grad():
        batch = policy.preprocessor(policy._batch(obs))
        theirs = policy.postprocessor(policy.policy.predict_action_chunk(batch, noise=noise.clone()))
    torch.testing.assert_close(ours, theirs.float(), atol=1e-4, rtol=1e-4)


def test_encode_once_context_is_reusable(policy):
    """The KV cache from encode is not modified by velocity calls (it is computed once per chunk)."""
    ctx = policy.encode(policy.typical_observation())
    x, tau = torch.randn(1, 10, 32), torch.tensor([0.3])
    v1 = policy.velocity(x, ctx, tau)
    policy.velocity(torch.randn(1, 10, 32), ctx, torch.tensor([0.7]))
    torch.testing.assert_close(policy.velocity(x, ctx, tau), v1)


def test_guided_chunks_follow_the_previous_chunk(policy):
    r = check_policy(policy, d=2, s=5, repeats=1)
    assert r["finite"] and r["ok"]
    assert r["prefix_error_guided"] < 0.5 * r["prefix_error_plain"], r


def test_check_command(tiny_smolvla, capsys):
    assert check_main([str(tiny_smolvla), "--d", "2", "--s", "5", "--repeats", "1"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["model"] == "lerobot_smolvla" and r["horizon"] == 10 and r["action_dim"] == 6 and r["ok"]


def test_lerobot_rtc_drops_the_jacobian_ours_is_exact(policy):
    """LeRobot's RTCProcessor equals rtc_ros's labelled identity approximation; the exact VJP differs."""
    from lerobot.policies.rtc.configuration_rtc import RTCConfig
    from lerobot.policies.rtc.modeling_rtc import RTCProcessor

    beta, d, end, H = 5.0, 2, 5, 10
    rtc = RTCProcessor(RTCConfig(enabled=True, max_guidance_weight=beta, execution_horizon=end))
    g = torch.Generator().manual_seed(5)
    ctx = policy.encode(policy.typical_observation())
    pad_masks, kv = ctx
    prev = policy.normalize_actions(torch.randn(1, H, 6, generator=g))
    x = torch.randn(1, H, 32, generator=g)
    weights = rtc.get_prefix_weights(d, end, H)
    rel = []
    for tau in (0.2, 0.4, 0.6):
        t = 1.0 - tau
        step = lambda x_t: policy.policy.model.denoise_step(  # noqa: E731
            prefix_pad_masks=pad_masks, past_key_values=kv, x_t=x_t, timestep=torch.tensor([t]))
        lerobot = -rtc.denoise_step(x.clone(), prev, d, t, step, execution_horizon=end)  # our sign
        approx, v = guided_velocity(policy.velocity, x, ctx, tau, prev, weights, beta, "identity_approx")
        exact, v_exact = guided_velocity(policy.velocity, x, ctx, tau, prev, weights, beta, "exact")
        torch.testing.assert_close(lerobot.detach(), approx, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(v, v_exact)
        rel.append(float((exact - approx).norm() / (approx - v).norm()))  # |correction diff| / |correction|
        # the exact correction is e^T dA1/dA = e + (1 - tau) J_v^T e: check it with torch.func.vjp
        err = weights[None, :, None] * (prev - (x + (1 - tau) * v))
        _, pull = torch.func.vjp(lambda a: a + (1 - tau) * policy.velocity(a, ctx, torch.tensor([tau])), x)
        from rtc_ros.core.guidance import guidance_weight
        torch.testing.assert_close(exact, v + guidance_weight(tau, beta) * pull(err)[0], atol=1e-5, rtol=1e-4)
    print("relative difference of LeRobot's correction from the exact VJP:", [round(r, 3) for r in rel])
    assert min(rel) > 0.05, rel  # measured 0.20, 0.14, 0.09


def test_spec_errors_name_the_field(tmp_path, tiny_smolvla):
    ckpt = tiny_smolvla.parent / "pretrained_model"
    bad = tmp_path / "bad.yaml"
    for text, match in [
        ("model: lerobot_smolvla\n", "field 'pretrained_path'"),
        (f"model: lerobot_smolvla\npretrained_path: {tmp_path}\n", "field 'pretrained_path': no LeRobot config.json"),
        (f"model: lerobot_smolvla\npretrained_path: {ckpt}\njoint_names: [a, b]\ntask: t\n", "field 'joint_names'"),
        # a VLA without its instruction ran on an empty prompt, silently (a LeRobot user's walkthrough, 2026-12-07)
        (f"model: lerobot_smolvla\npretrained_path: {ckpt}\n",
         "field 'task': a vision-language-action policy needs its instruction"),
        # a local VLM folder that is not there: named (it went to the hub as an id, a raw traceback)
        (f"model: lerobot_smolvla\npretrained_path: {ckpt}\ntask: t\nvlm_model_name: no_such_vlm\n",
         "field 'vlm_model_name': loading the SmolVLA with its VLM 'no_such_vlm'"),
    ]:
        bad.write_text(text)
        with pytest.raises(PolicySpecError, match=match):
            load_policy(bad)


def test_a_checkpoint_without_its_statistics_names_pretrained_path(tmp_path, tiny_smolvla):
    """A processor state file missing (the normalisation statistics): a field named and the files a LeRobot
    pretrained_model holds (LeRobot's hub message was taken for the field name)."""
    import shutil

    ckpt = tmp_path / "pretrained_model"
    shutil.copytree(tiny_smolvla.parent / "pretrained_model", ckpt)
    for f in ckpt.glob("policy_preprocessor_step_*normalizer*.safetensors"):
        f.unlink()
    spec = tmp_path / "s.yaml"
    spec.write_text(f"model: lerobot_smolvla\npretrained_path: {ckpt}\ntask: pick up the cube\n"
                    f"vlm_model_name: {tiny_smolvla.parent / 'vlm'}\n")
    with pytest.raises(PolicySpecError, match="field 'pretrained_path': cannot load the checkpoint's processors"):
        load_policy(spec)


def test_structured_observation(policy):
    """A robot observation (state + camera frame of any size) samples like its flat layout."""
    rng = np.random.default_rng(0)
    obs = {"state": rng.normal(size=6).astype(np.float32), "front": rng.integers(0, 256, (48, 64, 3), np.uint8)}
    gen = ChunkGenerator(policy, GeneratorConfig(method="rtc", n_steps=5))
    chunk = gen.generate(obs)
    guided = gen.generate(obs, chunk[3:], d=2, s=3)
    assert chunk.shape == guided.shape == (10, 6) and np.isfinite(guided).all()


@pytest.mark.parametrize("method", ["bid", "rtc_hard", "rtc_linear"])
def test_other_methods_run(policy, method):
    """BID (batched candidates: the KV cache is repeated per candidate) and the other RTC masks."""
    gen = ChunkGenerator(policy, GeneratorConfig(method=method, n_steps=5, bid_samples=4, bid_k=2))
    obs = policy.typical_observation()
    chunk = gen.generate(obs)
    assert np.isfinite(gen.generate(obs, chunk[3:], d=2, s=3)).all()


def test_vlm_model_name_override(tmp_path, tiny_smolvla):
    """``vlm_model_name`` in the spec points the model and the tokenizer at a local VLM directory."""
    import shutil

    local = tmp_path / "my_vlm"
    shutil.copytree(tiny_smolvla.parent / "vlm", local)
    spec = tmp_path / "s.yaml"
    spec.write_text(f"model: lerobot_smolvla\npretrained_path: {tiny_smolvla.parent / 'pretrained_model'}\n"
                    "vlm_model_name: my_vlm\ntask: pick up the cube\n")
    p = load_policy(spec)
    assert p.config.vlm_model_name == str(local)
    tok = next(s for s in p.preprocessor.steps if type(s).__name__ == "TokenizerProcessorStep")
    assert tok.tokenizer_name == str(local)
    assert np.isfinite(ChunkGenerator(p, GeneratorConfig(method="naive", n_steps=5)).generate(p.typical_observation())).all()


def test_robot_units_wrap_the_lerobot_policy(tmp_path, tiny_smolvla, policy):
    """A LeRobot policy recorded in other units (LeRobot's robots record degrees): with ``robot_units`` the
    runtime gives and gets robot units; the chunk is the unwrapped policy's, from the observation in its own
    units, mapped back (the padded sampling space untouched)."""
    import yaml

    spec = yaml.safe_load(tiny_smolvla.read_text())
    spec["pretrained_path"] = str((tiny_smolvla.parent / spec["pretrained_path"]).resolve())
    names = [f"j{i}" for i in range(6)]
    path = tmp_path / "units.yaml"
    path.write_text(yaml.safe_dump(dict(spec, joint_names=names,
                                        robot_units={"j0": "degrees", "j5": {"scale": 2.0, "offset": -0.5}})))
    wrapped = load_policy(path)
    assert wrapped.sample_dim == 32 and wrapped.units.converted == ["j0", "j5"]
    rng = np.random.default_rng(1)
    q_robot = rng.normal(size=6)
    frame = rng.integers(0, 256, (32, 32, 3), np.uint8)
    q_policy = wrapped.units.to_policy(q_robot)
    cfg = GeneratorConfig(method="rtc", n_steps=5, seed=7)
    base = ChunkGenerator(policy, cfg).generate({"state": q_policy.astype(np.float32), "front": frame})
    ours = ChunkGenerator(wrapped, cfg).generate({"state": q_robot, "front": frame})
    np.testing.assert_allclose(ours, wrapped.units.to_robot(base), atol=1e-4)
    prev = wrapped.units.to_robot(base)
    g_base = ChunkGenerator(policy, cfg).generate({"state": q_policy.astype(np.float32), "front": frame}, base[3:], 2, 3)
    g_ours = ChunkGenerator(wrapped, cfg).generate({"state": q_robot, "front": frame}, prev[3:], 2, 3)
    np.testing.assert_allclose(g_ours, wrapped.units.to_robot(g_base), atol=1e-4)


def test_a_misspelt_field_of_a_lerobot_spec_is_named(tmp_path, tiny_smolvla):
    """A LeRobot spec is checked for misspelt fields like any other: a dropped robot_units would send degrees as
    radians; a bad map fails before the slow load."""
    base = f"model: lerobot_smolvla\npretrained_path: {tiny_smolvla.parent / 'pretrained_model'}\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text(base + "robot_unit: {j0: degrees}\n")
    with pytest.raises(PolicySpecError, match="did you mean 'robot_units'"):
        load_policy(bad)
    bad.write_text(base + "pretrained_pth: x\n")
    with pytest.raises(PolicySpecError, match="did you mean 'pretrained_path'"):
        load_policy(bad)
    bad.write_text(base + "joint_names: [j0, j1, j2, j3, j4, j5]\nrobot_units: {j9: degrees}\n")
    with pytest.raises(PolicySpecError, match=r"field 'robot_units\.j9': not one of the spec's joint_names"):
        load_policy(bad)
