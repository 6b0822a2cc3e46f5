"""The policy checks sampling alone cannot make: a velocity's gradient that is not its true one (guidance then
silently does too little) and a flow run the wrong way round (tau 1 = noise), on a velocity known in closed form:
the exact flow of Gaussian data, and variants of it a user could write by mistake."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rtc_ros.policies.base import FlowPolicy, Normalizer
from rtc_ros.policies.spec import load_policy, save_policy
from rtc_ros.runtime.check import check_policy, main as check_main
from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig
from rtc_ros.runtime.velocity_checks import GRADIENT_TOLERANCE, SPREAD_LIMIT, gradient_check, sample_spread

H, M = 10, 3
SIGMA = 0.1  # the data's spread given the observation (normalised units): the policy is sure


class GaussianFlow(FlowPolicy):
    """Data given the observation ~ N(mu(obs), SIGMA^2) per action, noise N(0, 1), x_tau = (1 - tau) noise +
    tau data: the exact velocity E[data - noise | x_tau]. ``mode``: ``exact``; ``reversed`` (trained with tau 1 =
    noise: v(x, tau) = -v_exact(x, 1 - tau)); ``x1_detached`` (an x1-predicting head run on a_tau.detach());
    ``zero_jacobian`` (the whole velocity on a detached input, a_tau kept in the graph with weight 0)."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.horizon, self.action_dim = int(config.get("horizon", H)), int(config.get("action_dim", M))
        self.obs_dim = self.action_dim
        self.config = dict(config)
        self.mode = config["mode"]
        self.scale = torch.nn.Parameter(torch.ones(()))  # (something for the weights file)

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return 0.5 * obs.sum(dim=1)  # mu, one per batch element

    def _exact(self, x: torch.Tensor, mu: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        t = tau.reshape(-1, 1, 1)
        m = mu.reshape(-1, 1, 1) * self.scale
        var = (1 - t) ** 2 + t ** 2 * SIGMA ** 2
        r = x - t * m
        return m + (t * SIGMA ** 2 - (1 - t)) * r / var  # E[x1 | x] - E[x0 | x]

    def velocity(self, a_tau: torch.Tensor, context: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        if self.mode == "reversed":
            return -self._exact(a_tau, context, 1 - tau)
        if self.mode == "x1_detached":
            t = tau.reshape(-1, 1, 1)
            x1 = a_tau.detach() + (1 - t) * self._exact(a_tau.detach(), context, tau)
            return (x1 - a_tau) / (1 - t).clamp_min(0.05)
        if self.mode == "zero_jacobian":
            return self._exact(a_tau.detach(), context, tau) + 0.0 * a_tau
        if self.mode == "half_detached":  # half of the velocity on a detached input
            return 0.5 * (self._exact(a_tau, context, tau) + self._exact(a_tau.detach(), context, tau))
        return self._exact(a_tau, context, tau)


def gaussian_flow(config: dict) -> GaussianFlow:
    return GaussianFlow(config)


def _spec(tmp_path, mode: str, horizon: int = H, names: tuple[str, ...] = ("a", "b", "c")):
    m = len(names)
    norm = Normalizer(obs_mean=np.full(m, 0.4), obs_std=np.ones(m), action_mean=np.zeros(m), action_std=np.ones(m))
    model = GaussianFlow({"mode": mode, "horizon": horizon, "action_dim": m})
    return save_policy(tmp_path / mode, mode, model, norm, obs_spec=[{"name": "joint_positions", "shape": [m]}],
                       extra={"dt": 0.02, "joint_names": list(names)}, model_type="test_velocity_checks:gaussian_flow")


@pytest.mark.parametrize("mode,grad_ok,spread_ok", [("exact", True, True), ("reversed", True, False),
                                                    ("x1_detached", False, True), ("zero_jacobian", False, True)])
def test_gradient_and_spread_tell_the_mistakes_apart(tmp_path, mode: str, grad_ok: bool, spread_ok: bool) -> None:
    policy = load_policy(_spec(tmp_path, mode))
    gen = ChunkGenerator(policy, GeneratorConfig(method="rtc", n_steps=5, seed=0))
    obs = policy.typical_observation()
    g = gradient_check(gen, obs)
    assert g.ok == grad_ok, g
    assert (g.rel_error < 1e-3) if grad_ok else (g.rel_error > 0.25)  # far from the tolerance (0.1) either way
    assert bool(g.text()) != grad_ok
    spread = sample_spread(gen, obs)
    assert (spread <= SPREAD_LIMIT) == spread_ok, spread
    if mode == "exact":
        assert spread < 2 * SIGMA  # the data's own spread, up to Euler's error at 5 steps
    if mode == "reversed":
        assert spread > 3.0  # run backwards, the flow spreads the noise by about 1 / SIGMA


def test_check_says_not_ok_for_a_broken_gradient_and_warns_on_a_reversed_flow(tmp_path, capsys) -> None:
    """``python -m rtc_ros.runtime.check``: a velocity whose gradient is not its true one is NOT OK (exit 1) even
    where guided sampling still lowers the prefix error through the part left in the graph; a reversed flow is
    a warning; the exact one passes with neither."""
    r = check_policy(load_policy(_spec(tmp_path, "exact")), d=2, s=5, repeats=1)
    assert r["ok"] and not r["problems"] and not r["warnings"] and r["gradient_rel_error"] < GRADIENT_TOLERANCE
    for mode in ("x1_detached", "zero_jacobian"):
        rc = check_main([str(_spec(tmp_path, mode)), "--repeats", "1"])
        out = capsys.readouterr().out
        r = json.loads(out.strip().splitlines()[-1])
        assert rc == 1 and not r["ok"] and "NOT OK: the velocity's gradient with respect to a_tau" in out, out
    rc = check_main([str(_spec(tmp_path, "reversed")), "--repeats", "1"])
    out = capsys.readouterr().out
    r = json.loads(out.strip().splitlines()[-1])
    assert "warning: plain samples at one observation vary" in out and any("tau 1 = noise" in w for w in r["warnings"])


def test_guidance_that_changes_nothing_is_not_ok(tmp_path, monkeypatch) -> None:
    """Guided and plain prefix errors equal (to 1e-9: guidance did nothing) is NOT OK; before 2026-12-07 any
    difference, a rounding one included, passed."""
    import rtc_ros.runtime.check as check

    r = check_policy(load_policy(_spec(tmp_path, "exact")), d=2, s=5, repeats=1)
    assert r["ok"]
    monkeypatch.setattr(check, "prefix_error", lambda *a: 0.47623 + 1e-10 * np.random.rand())
    r = check_policy(load_policy(_spec(tmp_path, "exact")), d=2, s=5, repeats=1)
    assert not r["ok"] and "guidance does not bring the chunk closer" in r["problems"][0]


def test_spec_without_dt_or_joint_names_is_warned(tmp_path) -> None:
    import yaml

    path = _spec(tmp_path, "exact")
    spec = yaml.safe_load(path.read_text())
    del spec["dt"], spec["joint_names"]
    path.write_text(yaml.safe_dump(spec))
    r = check_policy(load_policy(path), d=2, s=5, repeats=1)
    assert r["ok"] and len(r["warnings"]) == 2
    assert "no dt" in r["warnings"][0] and "no joint_names" in r["warnings"][1]


def test_policy_inference_refuses_to_start_with_a_gradient_that_is_not_the_true_one(tmp_path, monkeypatch) -> None:
    """The node's start-up (prepare_policy, also rtc_bringup --check) runs the gradient check for a method with
    exact guidance: an unmistakable disagreement is refused naming policy_spec, a smaller one noted; the same
    velocity is accepted for a method without a VJP (naive), and the exact one for rtc."""
    from test_policy_fit import JOINTS, _params

    from rtc_ros.nodes.params import ParameterError
    from rtc_ros.nodes.policy_setup import prepare_policy

    broken = _spec(tmp_path, "zero_jacobian", horizon=50, names=tuple(JOINTS))  # 0.98 off: unmistakable
    with pytest.raises(ParameterError, match="'policy_spec'.*gradient with respect to a_tau is not its true one"):
        prepare_policy(_params(broken, camera_names=[], camera_topics=[]))
    assert prepare_policy(_params(broken, camera_names=[], camera_topics=[], method="naive")).notes == ()
    exact = _spec(tmp_path, "exact", horizon=50, names=tuple(JOINTS))
    assert prepare_policy(_params(exact, camera_names=[], camera_topics=[])).notes == ()
    import rtc_ros.nodes.policy_setup as setup
    from rtc_ros.runtime.velocity_checks import GradientCheck

    monkeypatch.setattr(setup, "gradient_check", lambda *a, **k: GradientCheck(0.3, 1.0, 1.43))  # between: a note
    notes = prepare_policy(_params(exact, camera_names=[], camera_topics=[])).notes
    assert len(notes) == 1 and "not its true one" in notes[0] and "reduced-precision" in notes[0]
    monkeypatch.undo()
    reversed_ = _spec(tmp_path, "reversed", horizon=50, names=tuple(JOINTS))
    notes = prepare_policy(_params(reversed_, camera_names=[], camera_topics=[])).notes
    assert len(notes) == 1 and "tau 1 = noise" in notes[0]
