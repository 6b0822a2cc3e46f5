"""``bimanual_cnn`` (CNN image encoder once per chunk + mixer trunk), its training pieces (EMA,
vectorised sampler, image shifts) and the offline quality measures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rtc_ros.core.masks import prefix_weights
from rtc_ros.policies.base import Normalizer
from rtc_ros.policies.cnn_mixer import BimanualCNNPolicy, CNNMixerConfig, make_cnn_mixer
from rtc_ros.policies.plugins import registered_models, resolve_model_factory
from rtc_ros.policies.spec import PolicySpecError, load_policy, save_policy
from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "policies" / "bimanual_cnn_h50.yaml"


def _cfg(**kw) -> CNNMixerConfig:
    base = dict(horizon=50, action_dim=14, obs_dim=14 + 16 * 16 * 3, width=32, depth=1, token_hidden=16,
                channel_hidden=32, time_dim=16, image_height=16, image_width=16, cnn_channels=8, feature_dim=16)
    return CNNMixerConfig(**{**base, **kw})


def _random_policy(tmp_path: Path, prediction: str = "x") -> Path:
    torch.manual_seed(0)
    model = BimanualCNNPolicy(_cfg(prediction=prediction))
    with torch.no_grad():  # untrained trunks output zero; make the field non-trivial
        torch.nn.init.normal_(model.trunk.out.weight, std=0.3)
        for mod in model.modules():
            if mod.__class__.__name__ == "_AdaLN":
                torch.nn.init.normal_(mod.mod.weight, std=0.05)
    o = model.obs_dim
    norm = Normalizer(np.zeros(o), np.ones(o), np.zeros(14), np.full(14, 0.1))
    spec = [{"name": "joint_positions", "shape": [14]}, {"name": "cam", "shape": [16, 16, 3]}]
    return save_policy(tmp_path, "cnn", model, norm, obs_spec=spec, extra={"dt": 0.02}, model_type="bimanual_cnn")


def test_registered_and_config_errors_name_the_field() -> None:
    assert "bimanual_cnn" in registered_models()
    assert resolve_model_factory("bimanual_cnn") is make_cnn_mixer
    with pytest.raises(ValueError, match="obs_dim"):
        _cfg(obs_dim=100)
    with pytest.raises(ValueError, match="prediction"):
        _cfg(prediction="eps")
    with pytest.raises(ValueError, match="feature_dim"):
        _cfg(feature_dim=0)
    with pytest.raises(ValueError, match="image_channels"):
        _cfg(image_channels=2, obs_dim=14 + 16 * 16 * 2)


def test_loads_from_spec_and_bad_config_names_config(tmp_path) -> None:
    import yaml

    path = _random_policy(tmp_path)
    pol = load_policy(path)
    assert isinstance(pol.model, BimanualCNNPolicy) and pol.spec["model"] == "bimanual_cnn"
    spec = yaml.safe_load(path.read_text())
    spec["config"]["obs_dim"] = 99
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    with pytest.raises(PolicySpecError, match="field 'config'.*obs_dim"):
        load_policy(bad)


@pytest.mark.parametrize("obs_spec", [
    [{"name": "cam", "shape": [16, 16, 3]}, {"name": "joint_positions", "shape": [14]}],  # image first
    [{"name": "joint_positions", "shape": [14]}, {"name": "cam", "shape": [3, 16, 16]}],  # CHW
    [{"name": "obs", "shape": [14 + 16 * 16 * 3]}],  # one flat vector
])
def test_an_obs_spec_the_cnn_cannot_read_is_refused(tmp_path, obs_spec) -> None:
    """The CNN slices joints then an HWC image out of the flat observation; another layout of the same size
    loaded and ran on scrambled pixels (only a poor policy showed it)."""
    import yaml

    path = _random_policy(tmp_path)
    spec = yaml.safe_load(path.read_text())
    spec["obs_spec"] = obs_spec
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    with pytest.raises(PolicySpecError, match="field 'obs_spec'.*joints \\[14\\] then one HWC camera"):
        load_policy(bad)


@pytest.mark.parametrize("which", ["random", "shipped"])
def test_encode_once_per_chunk_and_exact_guidance(tmp_path, which: str) -> None:
    """The CNN runs once per chunk (the VJP goes through the velocity only); guidance toward a
    previous chunk changes the chunk and reduces the prefix error; chunks are finite.

    The error reduction varies a lot with the draw (observation noise, flow noise): for the shipped
    policies the guided/plain ratio ranged 0.12-0.77 over 10 draws (medians 0.41 for the first
    ``bimanual_cnn_h50``, 0.53 for the gripper-bounded one, measured 2026-12-02), so the check is on
    the median of 10 draws (< 0.6) and on every draw (< 1); it used to be one draw (< 0.5)."""
    if which == "shipped" and not SHIPPED.is_file():
        pytest.fail(f"shipped policy missing: {SHIPPED}")
    pol = load_policy(_random_policy(tmp_path) if which == "random" else SHIPPED)
    counts = {"cnn": 0, "trunk": 0}
    pol.model.cnn.register_forward_hook(lambda *a: counts.__setitem__("cnn", counts["cnn"] + 1))
    pol.model.trunk.blocks[0].register_forward_hook(lambda *a: counts.__setitem__("trunk", counts["trunk"] + 1))
    gen = ChunkGenerator(pol, GeneratorConfig(method="rtc", n_steps=5))
    H, d, s = pol.horizon, 3, 20
    gen.sample(torch.from_numpy(pol.typical_observation())[None], None, d, s)  # a generator's first chunk also
    assert counts == {"cnn": 1, "trunk": 6}  # checks the velocity's output shape once: one more velocity call
    w = prefix_weights(H, d, s, "exp")[:, None]
    # a target the plain chunk does not already meet, inside the action limits: the arm joints shifted
    # (a gripper shifted past its 0..1 range is no valid chunk; the shipped policy bounds the grippers)
    arm = torch.ones(14)
    arm[[6, 13]] = 0.0
    ratios = []
    for draw in range(10):
        rng = np.random.default_rng(draw)
        obs = pol.typical_observation() + 0.1 * rng.standard_normal(pol.obs_dim).astype(np.float32)
        noise = torch.randn((1, H, 14), generator=torch.Generator().manual_seed(draw))
        o = torch.from_numpy(obs)[None]
        counts.update(cnn=0, trunk=0)
        plain = gen.sample(o, None, d, s, noise)
        assert counts == {"cnn": 1, "trunk": 5}
        prev = gen.sample(o, None, d, s, torch.randn((1, H, 14), generator=torch.Generator().manual_seed(100 + draw)))
        prev = prev + 0.05 * arm
        counts.update(cnn=0, trunk=0)
        guided = gen.sample(o, prev, d, s, noise)
        assert counts["cnn"] == 1 and counts["trunk"] >= 5  # VJP re-runs the trunk, never the encoder
        assert torch.isfinite(plain).all() and torch.isfinite(guided).all()
        assert not torch.allclose(guided, plain, atol=1e-4)

        def err(c: torch.Tensor) -> float:
            return float(((pol.normalize_actions(c) - pol.normalize_actions(prev))[0] ** 2 * w).sum() / (14 * w.sum()))

        ratios.append(err(guided) / err(plain))
    assert max(ratios) < 1.0 and float(np.median(ratios)) < 0.6, np.round(ratios, 3)


def test_x_prediction_lands_on_the_clean_prediction() -> None:
    """With x-prediction an Euler step from tau to 1 lands on the trunk's output exactly; ``tau`` per
    sample ``(B,)`` and broadcast per position ``(B, H)`` give the same velocity."""
    torch.manual_seed(0)
    m = BimanualCNNPolicy(_cfg(smooth_basis=0))
    with torch.no_grad():
        torch.nn.init.normal_(m.trunk.out.weight, std=0.3)
    obs, a = torch.randn(2, m.obs_dim), torch.randn(2, 50, 14)
    tau = torch.tensor([0.2, 0.8])
    ctx = m.encode(obs)
    x_hat = m.trunk.velocity(a, ctx, tau)
    v = m.velocity(a, ctx, tau)
    assert torch.allclose(a + (1 - tau)[:, None, None] * v, x_hat, atol=1e-5)
    t = tau[:, None].expand(2, 50)
    assert m.supports_per_position_tau  # the trunk takes (B, H) flow times: the same velocity as (B,)
    assert torch.allclose(m.velocity(a, ctx, t), v, atol=1e-5)


def test_bounded_dims_keep_the_clean_prediction_and_plain_chunks_inside_the_limits() -> None:
    """``bounded_dims``: x_hat of those dimensions lies in [low, high] whatever the trunk outputs (a plain
    chunk, which lands on x_hat, needs no clipping); other dimensions are unchanged; bad bounds name the field."""
    torch.manual_seed(0)
    m = BimanualCNNPolicy(_cfg(bounded_dims=[6, 13], bounded_low=[-1.0, -2.0], bounded_high=[1.0, 0.5]))
    free = BimanualCNNPolicy(_cfg())
    with torch.no_grad():
        for p in m.parameters():
            torch.nn.init.normal_(p, std=1.0)
    free.load_state_dict(m.state_dict())
    obs, a, tau = torch.randn(3, m.obs_dim), 5 * torch.randn(3, 50, 14), torch.tensor([0.1, 0.5, 0.9])
    x_hat = a + (1 - tau)[:, None, None] * m(a, obs, tau)
    x_free = a + (1 - tau)[:, None, None] * free(a, obs, tau)
    assert x_free[..., 6].abs().max() > 5 and x_free[..., 13].abs().max() > 5  # unbounded, it would leave them
    eps = 1e-5  # (x_hat rebuilt from the velocity: float round-off)
    assert x_hat[..., 6].min() >= -1 - eps and x_hat[..., 6].max() <= 1 + eps
    assert x_hat[..., 13].min() >= -2 - eps and x_hat[..., 13].max() <= 0.5 + eps
    keep = [j for j in range(14) if j not in (6, 13)]
    assert torch.allclose(x_hat[..., keep], x_free[..., keep], rtol=1e-4, atol=1e-3)
    for bad, field in ((dict(bounded_dims=[6], bounded_low=[1.0], bounded_high=[0.0]), "bounded_low"),
                       (dict(bounded_dims=[14], bounded_low=[0.0], bounded_high=[1.0]), "bounded_dims"),
                       (dict(bounded_dims=[6], bounded_low=[0.0], bounded_high=[]), "bounded_dims"),
                       (dict(bounded_dims=[6], bounded_low=[0.0], bounded_high=[1.0], prediction="v",
                             smooth_basis=0), "bounded_dims"),
                       # (an audit: "'float' object is not iterable", and a str compared with an int)
                       (dict(bounded_dims=[6], bounded_low=0.5, bounded_high=[1.0]), "bounded_low must be a list"),
                       (dict(bounded_dims=6, bounded_low=[0.0], bounded_high=[1.0]), "bounded_dims must be a list"),
                       (dict(bounded_dims=[6], bounded_low=["a"], bounded_high=[1.0]), "bounded_low must be a list"),
                       (dict(smooth_basis="20"), "smooth_basis must be an integer")):
        with pytest.raises(ValueError, match=field):
            _cfg(**bad)


def test_spline_basis_and_smooth_chunks() -> None:
    """The projection reproduces cubics and is idempotent; with ``smooth_basis`` a plain chunk lies
    in the spline span (the last Euler step lands on the projected clean prediction)."""
    from rtc_ros.core.sampling import sample_plain
    from rtc_ros.policies.cnn_mixer import spline_basis, spline_projection

    b = spline_basis(50, 20)
    assert b.shape == (50, 20) and np.allclose(b.sum(1), 1.0) and (b >= -1e-12).all()
    p = spline_projection(50, 20)
    x = np.linspace(-1, 1, 50)
    cubic = 0.3 * x ** 3 - x ** 2 + 0.5
    assert np.allclose(p @ cubic, cubic, atol=1e-9) and np.allclose(p @ p, p, atol=1e-9)
    noise = np.random.default_rng(0).standard_normal(50)
    assert not np.allclose(p @ noise, noise, atol=1e-2)
    with pytest.raises(ValueError, match="smooth_basis"):
        _cfg(prediction="v", smooth_basis=20)
    with pytest.raises(ValueError, match="smooth_basis"):
        _cfg(smooth_basis=60)
    torch.manual_seed(0)
    m = BimanualCNNPolicy(_cfg(smooth_basis=20))
    assert "smooth" not in m.state_dict()  # derived from the config, not stored with the weights
    with torch.no_grad():
        torch.nn.init.normal_(m.trunk.out.weight, std=0.3)
        chunk = sample_plain(m.velocity, m.encode(torch.randn(2, m.obs_dim)), torch.randn(2, 50, 14), 5)
    pt = torch.as_tensor(p, dtype=torch.float32)
    assert torch.allclose(torch.einsum("ij,bjm->bim", pt, chunk), chunk, atol=1e-4)


def _tiny_dataset():
    from rtc_ros.recording.demo_dataset import DemoDataset

    rng = np.random.default_rng(0)
    n, h = 12, 8
    frames = [rng.integers(0, 256, (h, h, 3), dtype=np.uint8) for _ in range(4)]
    return DemoDataset(joints=rng.standard_normal((n, 3)).astype(np.float32), frames={"cam": frames},
                       frame_index={"cam": rng.integers(0, 4, n)}, actions=rng.standard_normal((n, 5, 3)).astype(np.float32),
                       episode=np.zeros(n, int), step=np.arange(n), joint_names=["a", "b", "c"],
                       obs_spec=[{"name": "joint_positions", "shape": [3]}, {"name": "cam", "shape": [h, h, 3]}], dt=0.02)


def test_tensor_sampler_matches_the_row_builder_and_shifts() -> None:
    from rtc_ros.experiments.sim_sampler import random_shift, tensor_batch_sampler

    ds = _tiny_dataset()
    norm = ds.fit_normalizer()
    ref = ds.batch_sampler(norm)(6, torch.Generator().manual_seed(3))
    new = tensor_batch_sampler(ds, norm)(6, torch.Generator().manual_seed(3))
    assert torch.allclose(ref[0], new[0], atol=1e-5) and torch.equal(ref[1], new[1])
    img = torch.arange(2 * 8 * 8 * 3, dtype=torch.float32).reshape(2, 8, 8, 3)
    assert torch.equal(random_shift(img, 0, torch.Generator()), img)
    out = random_shift(img, 2, torch.Generator().manual_seed(0))
    assert out.shape == img.shape and not torch.equal(out, img)
    # interior pixels are a shifted copy: some offset in [-2, 2]^2 reproduces each image's centre
    for b in range(2):
        assert any(torch.equal(out[b, 2:6, 2:6], img[b, 2 + dy:6 + dy, 2 + dx:6 + dx])
                   for dy in range(-2, 3) for dx in range(-2, 3))
    with pytest.raises(ValueError, match="shift_px"):
        tensor_batch_sampler(ds, norm, shift_px=-1)


def test_frame_stack_observation_dataset_sampler_and_model() -> None:
    """A [t, h, w, c] entry: the builder lays out the newest t frames newest first and repeats the oldest
    given at start-up; the dataset stacks each row's frame with the ones recorded before it in the same
    episode (an episode's first frame repeated); the tensor sampler matches the row builder; the CNN
    takes the stack as t * c channels and its single-frame layout is unchanged."""
    from rtc_ros.experiments.sim_sampler import tensor_batch_sampler
    from rtc_ros.policies.cnn_mixer import BimanualCNNPolicy, CNNMixerConfig
    from rtc_ros.policies.observation import ObservationBuilder
    from rtc_ros.recording.demo_dataset import DemoDataset

    rng = np.random.default_rng(1)
    h = 8
    f = [rng.integers(0, 256, (h, h, 3), dtype=np.uint8) for _ in range(5)]
    b = ObservationBuilder([{"name": "joint_positions", "shape": [3]}, {"name": "cam", "shape": [2, h, h, 3]}], 3)
    assert b.camera_frames == {"cam": 2} and b.obs_dim == 3 + 2 * h * h * 3
    with pytest.raises(ValueError, match="camera 'cam': expected uint8"):  # a float image would be scaled twice
        b.build(np.zeros(3), {"cam": f[0].astype(np.float32) / 255.0})
    x = b.build(np.zeros(3), {"cam": [f[1], f[0]]})
    assert np.allclose(x[3:3 + h * h * 3], f[1].reshape(-1) / 255.0)  # newest first
    assert np.allclose(x[3 + h * h * 3:], f[0].reshape(-1) / 255.0)
    one = b.build(np.zeros(3), {"cam": f[1]})  # one frame so far: repeated
    assert np.allclose(one[3 + h * h * 3:], f[1].reshape(-1) / 255.0)
    with pytest.raises(ValueError, match="cam"):
        b.build(np.zeros(3), {"cam": np.zeros((h, h))})
    with pytest.raises(ValueError, match="frame stack"):
        ObservationBuilder([{"name": "cam", "shape": [0, h, h, 3]}], 3)
    # frames of another size are resized; the hook hears of each camera's first frame of each size once
    heard: list[tuple] = []
    b.on_resize = lambda *a: heard.append(a)
    big = np.repeat(np.repeat(f[0], 2, axis=0), 3, axis=1)  # (16, 24): every pixel doubled down, tripled across
    assert np.allclose(b.build(np.zeros(3), {"cam": big})[3:3 + h * h * 3], f[0].reshape(-1) / 255.0)  # nearest
    b.build(np.zeros(3), {"cam": [big, big]})
    b.build(np.zeros(3), {"cam": f[0]})  # the entry's own size: nothing to hear
    assert heard == [("cam", (2 * h, 3 * h), (h, h))]
    from rtc_ros.policies.observation import aspect_change

    assert aspect_change((2 * h, 3 * h), (h, h)) == pytest.approx(0.5)
    assert aspect_change((480, 640), (224, 224)) == pytest.approx(1 / 3)
    assert aspect_change((224, 224), (480, 640)) == pytest.approx(1 / 3)  # squeezed or stretched alike
    assert aspect_change((480, 640), (240, 320)) == 0.0
    # two episodes of frames: 0, 1, 2 and 3, 4; rows point at frames 0, 2, 3, 4
    n = 4
    ds = DemoDataset(joints=rng.standard_normal((n, 3)).astype(np.float32), frames={"cam": f},
                     frame_index={"cam": np.array([0, 2, 3, 4])}, actions=rng.standard_normal((n, 5, 3)).astype(np.float32),
                     episode=np.array([0, 0, 1, 1]), step=np.arange(n), joint_names=["a", "b", "c"],
                     obs_spec=[{"name": "joint_positions", "shape": [3]}, {"name": "cam", "shape": [2, h, h, 3]}],
                     dt=0.02, frame_prev={"cam": np.array([0, 0, 1, 3, 3])})
    assert ds.frame_stack("cam", np.arange(n), 2).tolist() == [[0, 0], [2, 1], [3, 3], [4, 3]]
    norm = ds.fit_normalizer()
    ref = ds.batch_sampler(norm)(6, torch.Generator().manual_seed(3))
    new = tensor_batch_sampler(ds, norm)(6, torch.Generator().manual_seed(3))
    assert torch.allclose(ref[0], new[0], atol=1e-5) and torch.equal(ref[1], new[1])
    cfg = dict(horizon=5, action_dim=3, width=8, depth=1, token_hidden=4, channel_hidden=8, time_dim=4, joint_dim=3,
               image_height=h, image_width=h, cnn_channels=4, feature_dim=8, smooth_basis=0)
    model = BimanualCNNPolicy(CNNMixerConfig(obs_dim=b.obs_dim, image_frames=2, **cfg))
    assert model.cnn[0].in_channels == 6 and model.features(new[0]).shape == (6, 16)
    with pytest.raises(ValueError, match="image_frames"):
        CNNMixerConfig(obs_dim=3 + h * h * 3, image_frames=2, **cfg)
    single = BimanualCNNPolicy(CNNMixerConfig(obs_dim=3 + h * h * 3, **cfg))
    obs = torch.randn(2, 3 + h * h * 3)
    img = obs[:, 3:].reshape(2, h, h, 3).permute(0, 3, 1, 2)  # the layout before frame stacks existed
    assert torch.equal(single.image_proj(single.cnn(img)), single.features(obs)[:, 8:])


def test_fit_flow_ema_is_the_moving_average_of_the_raw_weights() -> None:
    from rtc_ros.policies.mixer import MixerConfig, MLPMixerPolicy
    from rtc_ros.policies.train import TrainConfig, fit_flow

    torch.manual_seed(0)
    model = MLPMixerPolicy(MixerConfig(horizon=4, action_dim=2, obs_dim=3, width=8, depth=1, token_hidden=4,
                                       channel_hidden=8, time_dim=4))
    snaps: list[dict[str, torch.Tensor]] = []
    data = torch.randn(32, 3), torch.randn(32, 4, 2)

    def sample(batch: int, gen: torch.Generator):
        snaps.append({k: v.clone() for k, v in model.state_dict().items()})
        idx = torch.randint(0, 32, (batch,), generator=gen)
        return data[0][idx], data[1][idx]

    n, decay = 12, 0.6
    _, ckpt = fit_flow(model, sample, TrainConfig(steps=n, batch_size=8, warmup_steps=2, progress=False,
                                                  ema_decay=decay, checkpoint_steps=(n,)))
    raw = snaps[1:] + [ckpt[n]]
    ema = {k: v.clone() for k, v in snaps[0].items()}
    for step, w in enumerate(raw):
        dec = min(decay, (1 + step) / (10 + step))
        for k in ema:
            ema[k] = ema[k] + (w[k] - ema[k]) * (1 - dec)
    got = model.state_dict()
    assert all(torch.allclose(got[k], ema[k], atol=1e-6) for k in ema)
    assert not all(torch.allclose(got[k], ckpt[n][k]) for k in ema)  # the EMA, not the raw weights
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)


def test_quality_measures() -> None:
    from rtc_ros.experiments.policy_quality import DEFAULT_PARAMS, accel_rms, arm_limits, pick_rows

    t = np.arange(50) * 0.02
    chunk = np.stack([0.5 * 3.0 * t ** 2, t], axis=1)[None]  # constant acceleration 3, then 0
    assert accel_rms(chunk, 0.02, np.array([0])) == pytest.approx(3.0, rel=1e-6)
    assert accel_rms(chunk, 0.02, np.array([1])) == pytest.approx(0.0, abs=1e-6)
    lo, hi, step = arm_limits(DEFAULT_PARAMS, ["left_gripper", "right_waist"])
    assert lo[0] == 0.0 and hi[0] == 1.0 and step.shape == (2,) and (step > 0).all()
    with pytest.raises(ValueError, match="no_joint"):
        arm_limits(DEFAULT_PARAMS, ["no_joint"])
    rows, later = pick_rows(np.array([0, 0, 0, 1, 1]), np.array([0, 1, 2, 0, 1]), 10, 2, 0)
    assert rows.tolist() == [0] and later.tolist() == [2]


def test_policy_quality_eval_set_is_fixed_held_out_and_reused(tmp_path) -> None:
    """``--eval-set``: clean expert episodes from seed EVAL_DEMO_SEED0 on (disjoint from training demos and
    the closed-loop seeds), written once and then reused as they are; another task's set is refused."""
    from rtc_ros.experiments.policy_quality import EVAL_DEMO_SEED0, eval_set
    from rtc_ros.recording.bag import read_sidecar

    bags = eval_set(tmp_path / "eval", episodes=2)
    metas = [read_sidecar(b) for b in bags]
    assert bags and [m["seed"] for m in metas] == [EVAL_DEMO_SEED0 + i for i in range(len(bags))]
    assert all(m["task"] == "transfer_cube" and not m["noisy"] for m in metas) and EVAL_DEMO_SEED0 >= 20_000
    assert all(m["expert_schedule"] == "margin" for m in metas)  # the transfer expert's default timing
    stamp = [b.stat().st_mtime_ns for b in bags]
    assert eval_set(tmp_path / "eval", episodes=2) == bags and [b.stat().st_mtime_ns for b in bags] == stamp
    with pytest.raises(ValueError, match="conveyor_cube"):
        eval_set(tmp_path / "eval", task="conveyor_cube", episodes=2)
    with pytest.raises(ValueError, match="original"):  # another expert timing is another set
        eval_set(tmp_path / "eval", episodes=2, expert_schedule="original")
    # a set written before the schedule was part of its identity (2026-12-05) was made with the original timing
    marker = tmp_path / "eval" / "EVAL_SET.json"
    old = {k: v for k, v in json.loads(marker.read_text()).items() if k != "expert_schedule"}
    marker.write_text(json.dumps(old))
    assert eval_set(tmp_path / "eval", episodes=2, expert_schedule="original") == bags
    with pytest.raises(ValueError, match="margin"):
        eval_set(tmp_path / "eval", episodes=2)
    (tmp_path / "cut" / "demo_00000").mkdir(parents=True)  # a set cut short (no marker): refused
    with pytest.raises(ValueError, match="not the complete evaluation set"):
        eval_set(tmp_path / "cut", episodes=2)


@pytest.mark.parametrize("model", ["bimanual_cnn", "mlp_mixer"])
def test_train_sim_policy_builds_and_saves_the_chosen_model(tmp_path, model: str) -> None:
    """The trainer's model option: one expert episode -> bag -> dataset -> a few steps with EMA;
    the spec loads as the chosen model and records the command in ``training``."""
    import yaml

    from rtc_ros.experiments.sim_demos import DemoConfig, generate_demos, load_demo_dataset
    from rtc_ros.experiments.train_sim_policy import SimTrainConfig, train_policy
    from rtc_ros.policies.mixer import MLPMixerPolicy
    from rtc_ros.sim.camera import CameraConfig

    info = generate_demos(tmp_path / "bags", DemoConfig(episodes=1, seed0=3, noise_fraction=0.0, tail_steps=2))
    ds = load_demo_dataset(info["bags"], horizon=50)
    bounds = ("left_gripper", "right_gripper") if model == "bimanual_cnn" else ()
    cfg = SimTrainConfig(steps=3, batch_size=4, width=16, depth=1, token_hidden=8, channel_hidden=16, time_dim=8,
                         threads=1, model=model, feature_dim=8, cnn_channels=4, ema_decay=0.9, bound_joints=bounds,
                         prefix_conditioning=4)
    path, out = train_policy(ds, tmp_path / "out", CameraConfig(), cfg, "t", command=f"python -m x --model {model}")
    spec = yaml.safe_load(path.read_text())
    assert spec["model"] == model and spec["training"]["command"].endswith(f"--model {model}")
    pol = load_policy(path)
    assert pol.prefix_conditioning == 4  # training-time RTC: rtc_trained may give it prefixes up to 4 actions
    assert isinstance(pol.model, BimanualCNNPolicy if model == "bimanual_cnn" else MLPMixerPolicy) and out["steps"] == 3
    if model == "bimanual_cnn":
        assert spec["config"]["smooth_basis"] == 20 and spec["config"]["prediction"] == "x"
        c = spec["config"]  # the grippers' 0..1 limits in the normaliser's units
        assert c["bounded_dims"] == [6, 13] and all(lo < hi for lo, hi in zip(c["bounded_low"], c["bounded_high"]))
        a_mean, a_std = pol.normalizer.action_mean, pol.normalizer.action_std
        assert np.allclose(np.array(c["bounded_low"]) * a_std[[6, 13]] + a_mean[[6, 13]], 0.0, atol=1e-6)
        assert np.allclose(np.array(c["bounded_high"]) * a_std[[6, 13]] + a_mean[[6, 13]], 1.0, atol=1e-6)
    else:
        with pytest.raises(ValueError, match="bound_joints"):
            SimTrainConfig(model=model, bound_joints=("left_gripper",))
    with pytest.raises(ValueError, match="model"):
        SimTrainConfig(model="resnet")


@pytest.mark.parametrize("name", ["bimanual_cnn_h50", "bimanual_cnn_h50_long", "bimanual_cnn_h50_margin"])
def test_shipped_cnn_spec(name: str) -> None:
    """The transfer policies of one recipe (the first default, the longer-trained one, the one trained on
    the expert with a margin to the step limit): spec with its training command, small weights, and a
    chunk from a typical observation finite with the grippers inside 0..1; the expert timing of the
    demonstrations is part of the regenerate command (the default timing changed on 2026-12-05)."""
    import yaml

    path = ROOT / "policies" / f"{name}.yaml"
    assert path.is_file(), f"not shipped: {path}"
    spec = yaml.safe_load(path.read_text())
    assert spec["model"] == "bimanual_cnn"
    assert "--model bimanual_cnn" in spec["training"]["command"] and "train_sim_policy" in spec["training"]["command"]
    assert ("--expert-schedule margin" if name.endswith("_margin") else "--expert-schedule original") in spec["regenerate"]
    total = sum((path.parent / spec[k]).stat().st_size for k in ("weights", "normalization"))
    assert total < 5 * 2 ** 20
    pol = load_policy(path)
    chunk = ChunkGenerator(pol, GeneratorConfig(method="naive", n_steps=5, seed=0)).generate(pol.typical_observation())
    assert np.isfinite(chunk).all() and chunk.shape == (50, 14)
    assert chunk[:, [6, 13]].min() >= 0.0 and chunk[:, [6, 13]].max() <= 1.0


@pytest.mark.parametrize("name, max_d", [("bimanual_cnn_h50_trained", 12), ("bimanual_cnn_h50_trained_d16", 16)])
def test_shipped_prefix_trained_policy_keeps_its_given_prefix(name: str, max_d: int) -> None:
    """``policies/bimanual_cnn_h50_trained`` (training-time RTC, D = 12) and ``..._d16`` (D = 16): the
    spec says so, and an ``rtc_trained`` chunk reproduces the given prefix of the executing chunk exactly
    (raw units, up to the normalisation round trip) while the rest is sampled; finite, grippers inside
    0..1; a d beyond D is refused naming the spec field."""
    path = ROOT / "policies" / f"{name}.yaml"
    assert path.is_file(), f"not shipped: {path}"
    pol = load_policy(path)
    assert pol.prefix_conditioning == max_d and pol.supports_per_position_tau
    obs = pol.typical_observation()
    prev = ChunkGenerator(pol, GeneratorConfig(method="naive", n_steps=5, seed=1)).generate(obs)[10:]
    gen = ChunkGenerator(pol, GeneratorConfig(method="rtc_trained", n_steps=5, seed=2))
    with pytest.raises(ValueError, match="prefix_conditioning"):
        gen.generate(obs, prev, max_d + 1, 25)
    for d in (1, 6, max_d):
        chunk = gen.generate(obs, prev, d, 25)
        assert np.isfinite(chunk).all() and chunk.shape == (50, 14)
        assert np.abs(chunk[:d] - prev[:d]).max() < 1e-5, d
        assert np.abs(chunk[d:len(prev)] - prev[d:]).max() > 1e-3  # the rest is sampled, not copied
        assert chunk[:, [6, 13]].min() >= 0.0 and chunk[:, [6, 13]].max() <= 1.0


def test_shipped_conveyor_policy_takes_a_two_frame_stack() -> None:
    """The shipped conveyor policy observes the camera's two newest frames ([2, h, w, c], newest first):
    its spec says so, it loads, its chunk from a typical observation is finite with the grippers inside 0..1,
    and the older frame changes the chunk (the stack is really used)."""
    import yaml

    path = ROOT / "policies" / "bimanual_cnn_conveyor_h50.yaml"
    assert path.is_file(), f"not shipped: {path}"
    spec = yaml.safe_load(path.read_text())
    cams = [e for e in spec["obs_spec"] if len(e["shape"]) == 4]
    assert len(cams) == 1 and cams[0]["shape"][0] == 2 and spec["config"]["image_frames"] == 2
    pol = load_policy(path)
    gen = ChunkGenerator(pol, GeneratorConfig(method="naive", n_steps=5))
    obs = pol.typical_observation()
    noise = torch.randn((1, pol.horizon, 14), generator=torch.Generator().manual_seed(0))
    chunk = gen.sample(torch.from_numpy(obs)[None], None, 0, 25, noise)[0]
    assert torch.isfinite(chunk).all() and chunk.shape == (50, 14)
    assert float(chunk[:, [6, 13]].min()) >= 0.0 and float(chunk[:, [6, 13]].max()) <= 1.0
    frame = int(np.prod(cams[0]["shape"][1:]))
    older = obs.copy()
    lo = next(i for i, e in enumerate(spec["obs_spec"]) if len(e["shape"]) == 4)
    start = sum(int(np.prod(e["shape"])) for e in spec["obs_spec"][:lo]) + frame  # the older frame's slice
    older[start:start + frame] = 0.0  # the older frame black, the newest unchanged
    moved = gen.sample(torch.from_numpy(older)[None], None, 0, 25, noise)[0]
    assert not torch.allclose(moved, chunk, atol=1e-4)


def test_frame_stack_policy_trains_saves_and_runs_in_the_sim_harness(tmp_path) -> None:
    """``--frames 2``: the trained spec's obs_spec is a [2, 32, 32, 3] stack, the model sees 6 channels, and the
    simulated-time harness feeds it the newest two rendered frames, newest first (a short RTC episode runs)."""
    from rtc_ros.experiments.runner import DEFAULT_CONFIG
    from rtc_ros.experiments.sim_offline import Episode
    from rtc_ros.experiments.sim_setup import load_setup, make_sim
    from rtc_ros.experiments.sim_demos import DemoConfig, generate_demos, load_demo_dataset
    from rtc_ros.experiments.train_sim_policy import SimTrainConfig, train_policy
    from rtc_ros.sim.camera import CameraConfig, CameraRenderer

    info = generate_demos(tmp_path / "bags", DemoConfig(episodes=1, seed0=3, noise_fraction=0.0, tail_steps=2))
    ds = load_demo_dataset(info["bags"], horizon=50, frames=2)
    cfg = SimTrainConfig(steps=2, batch_size=4, width=16, depth=1, token_hidden=8, channel_hidden=16, time_dim=8,
                         threads=1, model="bimanual_cnn", feature_dim=8, cnn_channels=4)
    path, _ = train_policy(ds, tmp_path / "out", CameraConfig(), cfg, "stack")
    pol = load_policy(path)
    assert pol.obs_spec[1]["shape"] == [2, 32, 32, 3] and pol.model.cnn[0].in_channels == 6
    seen: list[list] = []
    setup = load_setup(DEFAULT_CONFIG, path)
    gen_observation = Episode.observation

    def spy(self, frame):
        seen.append(frame)
        return gen_observation(self, frame)

    sim = make_sim("transfer_cube", 60)
    renderer = CameraRenderer(sim.model, setup.camera)
    try:
        Episode.observation = spy
        rec = Episode(setup, sim, renderer).run("rtc", 0.0, 10.0, 10_000)
    finally:
        Episode.observation = gen_observation
        renderer.close()
        sim.close()
    assert rec.chunks >= 2 and len(seen) == rec.chunks
    assert all(isinstance(s, list) and 1 <= len(s) <= 2 for s in seen) and len(seen[-1]) == 2


def test_policy_quality_measures_rtc_trained_switches_for_a_prefix_trained_policy(tmp_path) -> None:
    """``evaluate``: a prefix-trained policy also gets ``splice_rtc_trained`` (a Wilson interval around
    its fraction); a policy without prefix training (also at d = 0), or a d beyond its prefix length, does not."""
    from rtc_ros.experiments.policy_quality import eval_set, evaluate

    bags = eval_set(tmp_path / "eval", episodes=1)
    repo = Path(__file__).resolve().parents[1]
    trained = evaluate(repo / "policies" / "bimanual_cnn_h50_trained.yaml", bags, n=6, d=3, s=25, batch=6)
    r = trained["splice_rtc_trained"]
    assert r is not None and 0.0 <= r["hit_fraction"] <= 1.0 and r["hit_ci95"][0] <= r["hit_fraction"] <= r["hit_ci95"][1]
    assert r["max_jump"] > 0.0 and r != trained["splice_rtc"]  # its own chunks, not RTC's
    expert, policy = trained["expert_step_over_limit"], trained["policy_step_over_limit"]
    import yaml

    names = yaml.safe_load((repo / "policies" / "bimanual_cnn_h50_trained.yaml").read_text())["joint_names"]
    assert list(expert) == list(policy) == names  # per joint, in action order
    assert all(0.0 <= v <= 1.0 for v in expert.values())  # the scripted expert keeps inside the step limit
    assert all(v > 0.0 for v in policy.values())  # every joint of a sampled chunk moves
    for d in (3, 0):  # d = 0 too (a policy without prefix training has prefix_conditioning 0)
        assert evaluate(repo / "policies" / "bimanual_cnn_h50.yaml", bags, n=6, d=d, s=25, batch=6)["splice_rtc_trained"] is None
    too_long = evaluate(repo / "policies" / "bimanual_cnn_h50_trained.yaml", bags, n=6, d=13, s=25, batch=6)
    assert too_long["splice_rtc_trained"] is None  # d = 13 > training.prefix_conditioning = 12
