"""Masks, guidance weight, and the exact VJP of guided sampling."""

import math

import pytest
import torch
from torch import nn

from rtc_ros.core.guidance import guidance_weight, guided_velocity
from rtc_ros.core.masks import prefix_weights
from rtc_ros.core.sampling import sample_guided, sample_plain


def test_exp_mask_golden_values():
    w = prefix_weights(8, 2, 2, "exp")
    expected = torch.tensor([1, 1, 0.5706, 0.2871, 0.1145, 0.0258, 0, 0])
    assert torch.allclose(w, expected, atol=1e-4)


def test_linear_and_hard_masks():
    lin = prefix_weights(8, 2, 2, "linear")
    assert torch.allclose(lin, torch.tensor([1, 1, 0.8, 0.6, 0.4, 0.2, 0, 0]), atol=1e-6)
    assert prefix_weights(8, 2, 2, "hard").tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert prefix_weights(8, 2, 2, "none").sum() == 0


def test_mask_start_clamped_to_end():
    # d = 5 > H - s = 3: only the first H - s actions can be frozen.
    w = prefix_weights(8, 5, 5, "exp")
    assert w.tolist() == [1, 1, 1, 0, 0, 0, 0, 0]


def test_mask_monotone_and_bounded():
    for d in range(0, 5):
        for s in range(max(d, 1), 9 - d):
            w = prefix_weights(8, d, s)
            assert (w[:-1] >= w[1:]).all() and w.max() <= 1 and w.min() >= 0
            assert (w[8 - s:] == 0).all()


@pytest.mark.parametrize("args", [(8, -1, 2), (8, 2, 9), (0, 0, 0)])
def test_mask_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        prefix_weights(*args)


def test_mask_rejects_unknown_schedule():
    with pytest.raises(ValueError, match="schedule"):
        prefix_weights(8, 1, 1, "cosine")  # type: ignore[arg-type]


def test_guidance_weight():
    assert guidance_weight(0.0, 5.0) == 5.0
    assert guidance_weight(1.0, 5.0) == 5.0
    tau = 0.4
    r2 = (1 - tau) ** 2 / (tau**2 + (1 - tau) ** 2)
    assert math.isclose(guidance_weight(tau, 100.0), (1 - tau) / (tau * r2))
    assert math.isclose(guidance_weight(tau, 100.0), (tau**2 + (1 - tau) ** 2) / (tau * (1 - tau)))
    assert guidance_weight(0.5, 1.0) == 1.0  # clipped (unclipped value is 2)
    with pytest.raises(ValueError):
        guidance_weight(-0.1, 5.0)
    with pytest.raises(ValueError):
        guidance_weight(0.5, -1.0)


class _TinyNet(nn.Module):
    """A small nonlinear velocity field coupling all tokens and the observation."""

    def __init__(self, H: int = 5, M: int = 3, O: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.H, self.M = H, M
        self.l1 = nn.Linear(H * M + O + 1, 32)
        self.l2 = nn.Linear(32, H * M)

    def forward(self, a, obs, tau):
        x = torch.cat([a.flatten(1), obs, tau[:, None]], dim=1)
        return self.l2(torch.tanh(self.l1(x))).view(-1, self.H, self.M)


def test_vjp_matches_explicit_jacobian():
    torch.manual_seed(1)
    net = _TinyNet().double()
    B, H, M = 3, 5, 3
    a = torch.randn(B, H, M, dtype=torch.float64)
    obs = torch.randn(B, 2, dtype=torch.float64)
    y = torch.randn(B, H, M, dtype=torch.float64)
    w = prefix_weights(H, 2, 1, "exp", dtype=torch.float64)
    tau, beta = 0.3, 5.0
    v_guided, v = guided_velocity(net, a, obs, tau, y, w, beta)
    for b in range(B):
        def a1_hat(x):
            tb = torch.full((1,), tau, dtype=torch.float64)
            return (x + (1 - tau) * net(x[None], obs[b : b + 1], tb)[0]).flatten()
        J = torch.autograd.functional.jacobian(a1_hat, a[b])  # (H*M, H, M)
        J = J.reshape(H * M, H * M)
        e = (w[:, None] * (y[b] - a1_hat(a[b]).view(H, M))).flatten()
        correction = (e @ J).view(H, M)
        expected = v[b] + guidance_weight(tau, beta) * correction
        assert torch.allclose(v_guided[b], expected, atol=1e-10)
    # The Jacobian matters here: the identity approximation gives a different answer.
    v_approx, _ = guided_velocity(net, a, obs, tau, y, w, beta, jacobian="identity_approx")
    assert (v_approx - v_guided).abs().max() > 1e-3


def test_beta_zero_and_zero_mask_equal_plain_sampling():
    net = _TinyNet()
    noise = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(3))
    obs = torch.randn(4, 2)
    y = torch.randn(4, 5, 3)
    plain = sample_plain(net, obs, noise, 5)
    guided_b0 = sample_guided(net, obs, noise, y, prefix_weights(5, 2, 1), beta=0.0, n_steps=5)
    guided_w0 = sample_guided(net, obs, noise, y, torch.zeros(5), beta=5.0, n_steps=5)
    assert torch.equal(plain, guided_b0)
    assert torch.equal(plain, guided_w0)
    guided = sample_guided(net, obs, noise, y, prefix_weights(5, 2, 1), beta=5.0, n_steps=5)
    assert not torch.allclose(plain, guided)


def test_guided_sampling_works_under_no_grad_and_refuses_inference_mode():
    net = _TinyNet()
    noise, obs, y = torch.randn(2, 5, 3), torch.randn(2, 2), torch.randn(2, 5, 3)
    w = prefix_weights(5, 2, 1)
    ref = sample_guided(net, obs, noise, y, w)
    with torch.no_grad():
        out = sample_guided(net, obs, noise, y, w)
    assert torch.allclose(ref, out)
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match="inference_mode"):
            sample_guided(net, obs, noise, y, w)


def test_guided_sampling_accepts_batch_weights_and_rejects_bad_shapes():
    net = _TinyNet()
    noise, obs, y = torch.randn(2, 5, 3), torch.randn(2, 2), torch.randn(2, 5, 3)
    wb = torch.stack([prefix_weights(5, 1, 1), prefix_weights(5, 2, 1)])
    out = sample_guided(net, obs, noise, y, wb)
    assert out.shape == (2, 5, 3)
    with pytest.raises(ValueError):
        sample_guided(net, obs, noise, y, torch.ones(4))
    with pytest.raises(ValueError):
        sample_guided(net, obs, noise, y[:, :3], prefix_weights(5, 1, 1))
    with pytest.raises(ValueError, match="NaN"):
        sample_guided(net, obs, noise, torch.full_like(y, float("nan")), prefix_weights(5, 1, 1))


def test_guided_sampling_takes_numpy_targets_and_names_numpy_noise():
    """A NumPy prefix failed with "'numpy.ndarray' object has no attribute 'to'" and NumPy noise with isfinite's
    type error: the prefix and weights are converted (same chunk as from tensors), noise is named."""
    import numpy as np

    net = _TinyNet()
    noise, obs, y = torch.randn(2, 5, 3), torch.randn(2, 2), torch.randn(2, 5, 3)
    w = prefix_weights(5, 2, 1)
    assert torch.equal(sample_guided(net, obs, noise, y.numpy(), w.numpy()), sample_guided(net, obs, noise, y, w))
    with pytest.raises(TypeError, match=r"noise must be a torch.Tensor \(B, H, M\), got ndarray"):
        sample_guided(net, obs, np.zeros((2, 5, 3), np.float32), y, w)
