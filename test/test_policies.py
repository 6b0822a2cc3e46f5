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
        (lambda s: s.update(normalization="missing.norm.safetensors"), "normalization"),
        (lambda s: s.update(normalization="small.yaml"), "normalization"),
        (lambda s: s.update(normalization=3), "normalization"),
        (lambda s: s.update(obs_spec=[{"name": "q", "shape": [5]}]), "obs_spec"),
        # an obs_spec entry whose name is not in the statistics file
        (lambda s: s.update(obs_spec=[{"name": "q", "shape": [3]}]), "normalization.obs_mean.q"),
        # a misspelt field would be ignored and its default used; free metadata fields stay allowed
        (lambda s: s.update(n_step=5), "n_step"),
        (lambda s: s.update(obs_specs=s.pop("obs_spec")), "obs_specs"),
        (lambda s: s.update(joint_name=["a", "b"]), "joint_name"),
        (lambda s: s.update(training={"prefix_conditionning": 2}), "training.prefix_conditionning"),
        (lambda s: s.update(obs_spec=[{"name": "obs", "shape": 3}]), r"obs_spec\[0\].shape"),
        (lambda s: s.update(obs_spec=[{"name": "obs", "shape": ["3"]}]), r"obs_spec\[0\].shape"),
        (lambda s: s.update(n_steps="five"), "n_steps"),
        (lambda s: s.update(n_steps=0), "n_steps"),
        (lambda s: s.update(dt=-0.02), "dt"),
        (lambda s: s.update(joint_names=["a", "a"]), "joint_names"),
        # a rate given another way than dt would go unchecked (a 10 Hz policy run at 50 Hz)
        (lambda s: (s.pop("dt", None), s.update(fps=10)), "fps"),
        (lambda s: (s.pop("dt", None), s.update(control_hz=10)), "control_hz"),
    ],
)
def test_bad_specs_name_the_field(tmp_path, mutate, field):
    path = _edit(_save_small(tmp_path), mutate)
    with pytest.raises(PolicySpecError, match=f"field '{field}'"):
        load_policy(path)


def test_free_metadata_fields_load_and_nan_weights_are_refused(tmp_path):
    path = _edit(_save_small(tmp_path), lambda s: s.update(camera={"name": "cam_high"}, demos=40, dt=0.1, fps=10,
                                                           training={"command": "python train.py", "steps": 10}))
    assert load_policy(path).spec["demos"] == 40  # (fps beside a dt: a record)
    from safetensors.torch import load_file, save_file

    weights = path.parent / yaml.safe_load(path.read_text())["weights"]
    state = load_file(str(weights))
    key = sorted(state)[0]
    state[key] = torch.full_like(state[key], float("nan"))
    save_file(state, str(weights))
    with pytest.raises(PolicySpecError, match=f"field 'weights'.*{key}.*NaN"):
        load_policy(path)


def _edit_stats(path: Path, fn) -> Path:
    from safetensors.numpy import load_file, save_file

    stats = path.parent / yaml.safe_load(path.read_text())["normalization"]
    tensors = load_file(str(stats))
    fn(tensors)
    save_file(tensors, str(stats))
    return path


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda t: t.pop("action_std"), "normalization.action_std"),
        (lambda t: t.update(action_mean=np.zeros(3, np.float32)), "normalization.action_mean"),
        (lambda t: t.update({"obs_std.obs": np.ones(2, np.float32)}), "normalization.obs_std.obs"),
        (lambda t: t.update({"obs_mean.obs": np.array([0, np.nan, 0], np.float32)}), "normalization"),
        # a 0 std (a constant input): dividing by a floor turned a 0.01 rad drift into 118 rad actions
        (lambda t: t.update({"obs_std.obs": np.array([1, 1, 0], np.float32)}), r"normalization.obs_std.obs\[2\]"),
        (lambda t: t.update(action_std=np.zeros_like(t["action_std"])), r"normalization.action_std\[0\]"),
        # as good as 0: a 0.01 drift would be 1e7 normalised units (1e-6, what fit_normalizer floors to, is kept)
        (lambda t: t.update({"obs_std.obs": np.array([1, 1e-9, 1], np.float32)}), r"normalization.obs_std.obs\[1\]"),
    ],
)
def test_bad_stats_files_name_the_field(tmp_path, mutate, field):
    path = _edit_stats(_save_small(tmp_path), mutate)
    with pytest.raises(PolicySpecError, match=f"field '{field}'"):
        load_policy(path)


def _image_model(obs_dim: int) -> MLPMixerPolicy:
    torch.manual_seed(1)
    model = MLPMixerPolicy(MixerConfig(horizon=8, action_dim=2, obs_dim=obs_dim, width=16, depth=1,
                                       token_hidden=8, channel_hidden=16, time_dim=8))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return model


@pytest.mark.parametrize("image_shape", [[4, 5, 3], [3, 4, 5]])  # HWC and CHW
def test_image_statistics_are_per_channel(tmp_path, image_shape):
    """fit_normalizer gives one mean/std per channel; the file holds (c,) tensors; load expands them."""
    from safetensors.numpy import load_file

    from rtc_ros.policies.stats import StatsError, fit_normalizer

    spec = [{"name": "q", "shape": [2]}, {"name": "cam", "shape": image_shape}]
    rng = np.random.default_rng(0)
    n = 50
    img = rng.uniform(0, 1, size=(n, *image_shape))
    chw = image_shape[0] == 3
    scale = np.array([1.0, 0.5, 0.25])  # images are in [0, 1] (as the builder makes them)
    img = img * (scale[None, :, None, None] if chw else scale[None, None, None, :])  # channel c ~ U(0, scale_c)
    obs = np.concatenate([rng.normal(size=(n, 2)), img.reshape(n, -1)], axis=1)
    actions = rng.normal(size=(n, 8, 2))
    norm = fit_normalizer(obs, actions, spec)
    per_channel = np.moveaxis(img, 1 if chw else 3, -1).reshape(-1, 3)
    path = save_policy(tmp_path, "img", _image_model(obs.shape[1]), norm, obs_spec=spec)
    tensors = load_file(str(tmp_path / "img.norm.safetensors"))
    assert sorted(tensors) == ["action_mean", "action_std", "obs_mean.cam", "obs_mean.q", "obs_std.cam", "obs_std.q"]
    np.testing.assert_allclose(tensors["obs_mean.cam"], per_channel.mean(0), rtol=1e-5)
    np.testing.assert_allclose(tensors["obs_std.cam"], per_channel.std(0), rtol=1e-4)
    np.testing.assert_allclose(tensors["obs_mean.q"], obs[:, :2].mean(0), rtol=1e-5)
    pol = load_policy(path)
    np.testing.assert_array_equal(pol.normalizer.obs_mean, norm.obs_mean)
    np.testing.assert_array_equal(pol.normalizer.obs_std, norm.obs_std)
    assert len(path.read_text().splitlines()) < 60
    # per-pixel statistics cannot be written (they would be silently averaged otherwise)
    per_pixel = Normalizer.fit(obs, actions)
    with pytest.raises(StatsError, match="varies within a channel"):
        save_policy(tmp_path, "bad", _image_model(obs.shape[1]), per_pixel, obs_spec=spec)


def _old_format(tmp_path: Path, per_pixel_noise: float = 0.0) -> Path:
    """A spec in the old format: per-dimension normalisation lists in the YAML."""
    spec = [{"name": "q", "shape": [2]}, {"name": "cam", "shape": [4, 4, 3]}]
    obs_dim = 2 + 48
    mean = np.concatenate([[0.5, -0.5], np.tile([0.3, 0.4, 0.5], 16)])
    std = np.concatenate([[0.1, 0.2], np.tile([0.1, 0.2, 0.3], 16)])
    mean[5] += per_pixel_noise
    norm = Normalizer(mean, std, np.array([1.0, -1.0]), np.array([2.0, 0.5]))
    path = save_policy(tmp_path, "old", _image_model(obs_dim), Normalizer.identity(obs_dim, 2), obs_spec=spec)
    data = yaml.safe_load(path.read_text())
    data["normalization"] = norm.as_dict()
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    (tmp_path / "old.norm.safetensors").unlink()
    return path


def test_old_format_loads_with_deprecation_and_converts_exactly(tmp_path, caplog):
    from rtc_ros.policies.convert import main

    path = _old_format(tmp_path)
    with caplog.at_level("WARNING"):
        old = load_policy(path)
    assert "deprecated" in caplog.text and "rtc_ros.policies.convert" in caplog.text
    lines_before = len(path.read_text().splitlines())
    assert main([str(path)]) == 0
    assert yaml.safe_load(path.read_text())["normalization"] == "old.norm.safetensors"
    assert len(path.read_text().splitlines()) < lines_before - 100
    new = load_policy(path)
    for k in ("obs_mean", "obs_std", "action_mean", "action_std"):
        np.testing.assert_array_equal(getattr(new.normalizer, k), getattr(old.normalizer, k))
    obs = np.random.default_rng(3).uniform(size=50).astype(np.float32)
    chunks = []
    for pol in (old, new):
        gen = ChunkGenerator(pol, GeneratorConfig(method="rtc", seed=5))
        first = gen.generate(obs)
        chunks.append(np.stack([first, gen.generate(obs, first[3:], d=2, s=3)]))
    np.testing.assert_array_equal(chunks[0], chunks[1])
    assert main([str(path)]) == 2  # already converted
    # into another directory: the original stays as it was, the copy loads on its own
    src = _old_format(tmp_path / "src")
    assert main([str(src), "--out", str(tmp_path / "dst")]) == 0
    assert isinstance(yaml.safe_load(src.read_text())["normalization"], dict)
    moved = load_policy(tmp_path / "dst" / "old.yaml")
    np.testing.assert_array_equal(moved.normalizer.obs_std, old.normalizer.obs_std)
    # a retrained copy keeping the spec's name (an audit: its conversion overwrote old.norm.safetensors, and the first
    # policy then loaded the copy's statistics): refused, the first untouched; converting the same twice is fine
    again = _old_format(tmp_path / "again")
    copy = again.parent / "old_v2.yaml"
    data = yaml.safe_load(again.read_text())
    data["normalization"]["action_mean"] = [5.0] * len(data["normalization"]["action_mean"])
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    twin = again.parent / "old_twin.yaml"
    twin.write_text(again.read_text())
    assert main([str(again)]) == 0 and main([str(twin)]) == 0  # the same statistics: the file is shared
    assert main([str(copy)]) == 2 and isinstance(yaml.safe_load(copy.read_text())["normalization"], dict)
    np.testing.assert_array_equal(load_policy(again).normalizer.action_mean, old.normalizer.action_mean)
    assert [p.name for p in again.parent.glob(".*.tmp")] == []


def test_old_format_with_a_zero_std_is_refused_naming_the_index(tmp_path):
    """The deprecated YAML-list statistics get the same std check as a statistics file (they were floored)."""
    path = _old_format(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["normalization"]["obs_std"][4] = 0.0
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(PolicySpecError, match=r"field 'normalization.obs_std\[4\]': std 0 is below 1e-06"):
        load_policy(path)
    data["normalization"]["obs_std"][4] = -0.3  # a negative one is said to be one
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(PolicySpecError, match=r"field 'normalization.obs_std\[4\]': std -0.3 is negative"):
        load_policy(path)
    data["normalization"]["obs_std"][4] = 9.999999974752427e-07  # the old floor as written (float32 1e-6): kept
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert load_policy(path).normalizer.obs_std[4] == np.float32(1e-6)


def test_conversion_refuses_per_pixel_statistics(tmp_path, capsys):
    from rtc_ros.policies.convert import main

    path = _old_format(tmp_path, per_pixel_noise=0.01)
    before = path.read_text()
    assert main([str(path)]) == 2
    assert "varies within a channel" in capsys.readouterr().err
    assert path.read_text() == before and not (tmp_path / "old.norm.safetensors").exists()


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
    with pytest.raises(ValueError, match=r"d \(inference delay\) must be an integer in \[0, H=8\], got 9"):
        gen.generate(np.zeros(3), np.ones((5, 2)), d=9, s=2)


@pytest.mark.parametrize("out_shape", [(1,), ("H", "M", "transposed")])
def test_chunk_generator_checks_the_velocity_shape(tmp_path, out_shape):
    """A velocity that returns (B, H, 1) would broadcast over the joints unnoticed; one that returns another
    shape fails deep in torch. Both are refused on the first chunk with the shapes named."""
    pol = load_policy(_save_small(tmp_path))
    velocity = pol.model.velocity
    if out_shape == (1,):
        pol.model.velocity = lambda a, c, t: velocity(a, c, t)[..., :1]
    else:
        pol.model.velocity = lambda a, c, t: velocity(a, c, t).transpose(1, 2)
    gen = ChunkGenerator(pol, GeneratorConfig(method="rtc"))
    with pytest.raises(ValueError, match=r"velocity returned shape .* for a_tau of shape \(1, 8, 2\)"):
        gen.generate(np.zeros(3))


@pytest.mark.parametrize("method,jacobian,refused", [("rtc", "exact", True), ("rtc", "identity_approx", False),
                                                     ("naive", "exact", False)])
def test_a_velocity_without_autograd_is_refused_where_the_exact_vjp_needs_it(tmp_path, method, jacobian, refused):
    """Under torch.no_grad (or through numpy) the VJP through a1_hat = a_tau + (1 - tau) v is the identity:
    exact RTC silently became the approximation (a user's policy gave identical chunks). Refused by name where
    the exact VJP is used; plain sampling and the labelled approximation do not need it."""
    pol = load_policy(_save_small(tmp_path))
    velocity = pol.model.velocity
    pol.model.velocity = torch.no_grad()(lambda a, c, t: velocity(a, c, t))
    gen = ChunkGenerator(pol, GeneratorConfig(method=method, jacobian=jacobian))
    if refused:
        with pytest.raises(ValueError, match="not differentiable with respect to a_tau"):
            gen.generate(np.zeros(3))
    else:
        assert gen.generate(np.zeros(3), np.ones((5, 2)), d=2, s=2).shape == (8, 2)


def test_a_detaching_velocity_is_refused_even_when_the_parameters_need_grad(tmp_path):
    """A model fresh from a training loop has requires_grad on its parameters: a velocity that detaches a_tau
    still returned a tensor that required grad (through the parameters), the check passed, and exact RTC was
    silently the approximation (a Python-API walkthrough, 2026-12-07). The check asks for a gradient w.r.t. a_tau."""
    pol = load_policy(_save_small(tmp_path))
    for p in pol.model.parameters():
        p.requires_grad_(True)
    velocity = pol.model.velocity
    pol.model.velocity = lambda a, c, t: velocity(a.detach(), c, t)
    with pytest.raises(ValueError, match="not differentiable with respect to a_tau"):
        ChunkGenerator(pol, GeneratorConfig(method="rtc")).generate(np.zeros(3))
    pol.model.velocity = velocity  # the same model through a_tau: accepted
    assert ChunkGenerator(pol, GeneratorConfig(method="rtc")).generate(np.zeros(3)).shape == (8, 2)


def test_guided_sampling_under_inference_mode_blames_the_callers_context(tmp_path):
    """Under torch.inference_mode the first chunk's velocity check blamed the policy ("not differentiable") while
    the core's message names inference_mode; now the first chunk says so too. Plain sampling works there."""
    pol = load_policy(_save_small(tmp_path))
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match=r"torch.inference_mode\(\) is active"):
            ChunkGenerator(pol, GeneratorConfig(method="rtc")).generate(np.zeros(3))
        assert ChunkGenerator(pol, GeneratorConfig(method="naive")).generate(np.zeros(3)).shape == (8, 2)


def test_a_model_in_another_precision_or_in_train_mode_is_named(tmp_path):
    """A float64 / bfloat16 model failed on its first chunk with torch's "mat1 and mat2 must have the same dtype";
    now LoadedPolicy names the precision and the fix. A model in train mode is warned about."""
    from rtc_ros.policies.loaded import LoadedPolicy

    pol = load_policy(_save_small(tmp_path))
    for dtype in (torch.float64, torch.bfloat16):
        with pytest.raises(ValueError, match=rf"model: parameters in {dtype}; rtc_ros samples in float32"):
            LoadedPolicy(pol.model.to(dtype), pol.normalizer, pol.spec)
    pol.model.float().train()
    with pytest.warns(UserWarning, match="train mode"):
        LoadedPolicy(pol.model, pol.normalizer, pol.spec)


def test_d_and_s_are_integers_in_range_on_every_path(tmp_path):
    """sample() accepted d = H + 3 and generate() d = 2.5; rtc_trained refused NumPy's int64 that rtc accepted.
    One check for all: integers of any kind in [0, H], the field named."""
    from rtc_ros.core.sampling import sample_prefix_conditioned

    pol = load_policy(_save_small(tmp_path))
    gen = ChunkGenerator(pol, GeneratorConfig(method="rtc"))
    prefix = torch.zeros(1, 8, 2)
    with pytest.raises(ValueError, match=r"d \(inference delay\) must be an integer in \[0, H=8\], got 11"):
        gen.sample(torch.zeros(1, 3), prefix, 11, 2)
    with pytest.raises(ValueError, match=r"d \(inference delay\) .* got 2.5"):
        gen.generate(np.zeros(3), np.ones((5, 2)), d=2.5, s=2)
    with pytest.raises(ValueError, match=r"s \(execution horizon\) .* got -1"):
        gen.generate(np.zeros(3), np.ones((5, 2)), d=2, s=-1)
    assert gen.generate(np.zeros(3), np.ones((5, 2)), d=np.int64(2), s=np.int32(2)).shape == (8, 2)
    vel = lambda a, c, t: -a  # noqa: E731
    out = sample_prefix_conditioned(vel, None, torch.zeros(1, 8, 2), torch.ones(1, 8, 2), np.int64(3), 2)
    assert torch.equal(out[:, :3], torch.ones(1, 3, 2))


def test_a_zero_mean_is_no_zero_std(tmp_path):
    """The zero-std refusal reads std tensors only, not a mean of an entry whose name contains 'std'."""
    from rtc_ros.policies.stats import expand_stats

    spec = [{"name": "wrench_std_est", "shape": [2]}]
    tensors = {"obs_mean.wrench_std_est": np.zeros(2, np.float32), "obs_std.wrench_std_est": np.ones(2, np.float32),
               "action_mean": np.zeros(3, np.float32), "action_std": np.ones(3, np.float32)}
    assert expand_stats(tensors, spec, 3).obs_mean.tolist() == [0.0, 0.0]


def test_a_spec_missing_its_obs_spec_says_so(tmp_path):
    """Without obs_spec one vector entry 'obs' is assumed; the error blamed normalization.obs_mean.obs only."""
    from conftest import make_small_policy

    path = make_small_policy(tmp_path / "p")
    spec = yaml.safe_load(path.read_text())
    del spec["obs_spec"]
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(PolicySpecError, match=r"no obs_spec.*entries \['joint_positions'\]: add obs_spec"):
        load_policy(path)


def test_a_factory_failing_for_any_reason_is_a_config_error(tmp_path, monkeypatch):
    """A factory that reads a config key the spec lacks raised a bare KeyError traceback naming no field."""
    from rtc_ros.policies import plugins

    def factory(config):
        return config["hidden"]

    monkeypatch.setattr(plugins, "resolve_model_factory", lambda model: factory)
    with pytest.raises(ValueError, match=r"config: the factory 'pkg.mod:make' failed: KeyError: 'hidden'"):
        plugins.build_model("pkg.mod:make", {"horizon": 8})


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


def test_train_flow_policy_fits_images_per_channel(tmp_path):
    """With obs_spec, the fitted normaliser has per-channel image statistics, so save_policy accepts it."""
    spec = [{"name": "q", "shape": [2]}, {"name": "cam", "shape": [2, 2, 3]}]
    rng = np.random.default_rng(0)
    obs = rng.uniform(size=(64, 14)).astype(np.float32)
    actions = rng.normal(size=(64, 8, 2)).astype(np.float32)
    model = _image_model(14)
    res = train_flow_policy(model, obs, actions, TrainConfig(steps=2, batch_size=8, progress=False), obs_spec=spec)
    img = obs[:, 2:].reshape(-1, 3)
    np.testing.assert_allclose(res.normalizer.obs_mean[2:5], img.mean(0), rtol=1e-5)
    np.testing.assert_allclose(res.normalizer.obs_mean[5:8], img.mean(0), rtol=1e-5)
    assert load_policy(save_policy(tmp_path, "t", model, res.normalizer, obs_spec=spec)).obs_dim == 14


@pytest.mark.parametrize("model", ["lerobot_smolvla", "lerobot_diffusion", "lerobot_groot"])
def test_a_lerobot_spec_without_lerobot_names_the_model_and_the_fix(tmp_path, model):
    """In a venv without lerobot (this one; the LeRobot tier has it) a LeRobot spec fails naming ``model`` and how
    to install it, rather than with an ImportError from deep inside."""
    import importlib.util

    try:
        installed = importlib.util.find_spec("lerobot.policies") is not None  # (test/lerobot/ is a namespace package)
    except ModuleNotFoundError:  # no lerobot at all, not even that namespace
        installed = False
    if installed:
        pytest.skip("lerobot is installed here")
    (tmp_path / "pretrained_model").mkdir()
    spec = tmp_path / "s.yaml"
    spec.write_text(f"model: {model}\npretrained_path: pretrained_model\n")
    with pytest.raises(PolicySpecError, match=r"field 'model': cannot import lerobot.*setup_lerobot_venv\.sh"):
        load_policy(spec)


def test_save_policy_writes_numpy_config_values_as_numbers_and_leaves_nothing_on_an_error(tmp_path):
    """A config with numpy scalars (np.int64 from a shape) is saved as plain numbers; a value YAML cannot hold
    is an error naming the field, before any file is written (before 2026-12-07: a bare yaml RepresenterError
    with the weights and statistics files left behind without a spec)."""
    from dataclasses import asdict

    cfg = MixerConfig(horizon=8, action_dim=2, obs_dim=3, width=16, depth=1, token_hidden=8, channel_hidden=16,
                      time_dim=8)
    model = MLPMixerPolicy(cfg)
    norm = Normalizer(np.zeros(3), np.ones(3), np.zeros(2), np.ones(2))
    model.config = {**asdict(cfg), "horizon": np.int64(8), "extra": np.float32(0.5), "shape": np.array([1, 2])}
    spec = yaml.safe_load(save_policy(tmp_path / "ok", "p", model, norm).read_text())
    assert spec["config"]["horizon"] == 8 and type(spec["config"]["horizon"]) is int and spec["config"]["shape"] == [1, 2]
    model.config = {**asdict(cfg), "device": torch.device("cpu")}
    with pytest.raises(ValueError, match="spec field 'config.device': a device cannot be written"):
        save_policy(tmp_path / "bad", "p", model, norm)
    assert not (tmp_path / "bad").exists()
