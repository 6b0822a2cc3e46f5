"""Checks of a policy's velocity that sampling alone cannot make (ROS-free): is its gradient the true one, and
does it run the flow the package's way round?

* :func:`gradient_check` -- exact guidance takes the vector-Jacobian product of the data estimate
  ``a1_hat = a_tau + (1 - tau) velocity(a_tau, context, tau)`` with respect to ``a_tau``. A velocity that is
  partly outside autograd (a head run on ``a_tau.detach()``, under ``no_grad``, through numpy, with only a
  residual term left in the graph) still gives a gradient, just a wrong one -- an x1-predicting head on a
  detached input gives ``d a1_hat / d a_tau = 0`` in autograd -- and guidance then silently does too little
  or nothing (the generator's own check catches only a velocity with no graph at all). Along a few random
  directions ``delta`` and weights ``u``, autograd's ``u . J delta`` is compared with the central finite
  difference ``u . (a1_hat(a + eps delta) - a1_hat(a - eps delta)) / (2 eps)``, with the step ``eps`` that
  agrees best of 0.01, 0.1 and 0.3: a small step is exact for a smooth float32 velocity, a large one averages
  over the rounding of a reduced-precision model (one that casts ``a_tau`` to bfloat16 is constant over steps of
  ~0.008 at unit scale, so a 0.01 step measures its rounding, not its slope), while a detached part is off at
  every step. They agree to ~1e-3 for a velocity fully in autograd in float32 (:data:`GRADIENT_TOLERANCE`).
* :func:`sample_spread` -- the convention is tau 0 = noise, 1 = data, ``v = data - noise``. A model trained
  the other way round (tau 1 = noise, LeRobot's convention, ``v = noise - data``) has
  ``v_reversed(x, tau) = -v(x, 1 - tau)``: sampled our way it runs its own flow backwards, from data to noise,
  and so spreads what it is given instead of concentrating it. A trained policy's plain samples at one
  observation vary much less than the unit noise they start from (the actions given the observation are
  surer than the normalised actions overall); a reversed one's vary more (about 1 / that spread). Neither
  end of the flow tells them apart (for unit-variance normalised data both velocities are about ``-a`` at
  tau = 0 and ``+a`` at tau = 1), the samples do. The spread is the std over noise draws of each normalised
  action, averaged over positions and dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

#: largest relative disagreement (median direction, worse flow time) between autograd's directional derivative
#: and the finite difference that counts as agreement (``check`` says NOT OK above it, ``policy_inference`` warns):
#: the shipped float32 models agree to <= 6e-4, LeRobot's tiny GR00T under its default bfloat16 autocast to <= 0.03,
#: a review's toys that cast a_tau itself to float16 / bfloat16 to <= 0.02 / 0.12; velocities with a part on a
#: detached input disagree by 0.29-1.0 (the ones a walkthrough wrote by mistake on purpose, 2026-12-07)
GRADIENT_TOLERANCE = 0.2
#: above this the disagreement is unmistakable (an x1 head on a detached input: 1.0) and ``policy_inference``
#: refuses to start; between the two it warns (a reduced-precision model could come close to the tolerance)
GRADIENT_REFUSAL = 0.5
#: a sample spread above this: the samples vary with their noise more than the noise does
SPREAD_LIMIT = 1.0


@dataclass(frozen=True)
class GradientCheck:
    """``rel_error``: ``|autograd - finite difference| / max(|autograd|, |finite difference|, 0.1 sqrt(n))`` in
    the median direction tried at the worse flow time (``n`` elements: an identity Jacobian gives about
    ``sqrt(n)``; the median, since rounding under bfloat16 scatters single directions while a detached part is
    off in every one);
    ``autograd``, ``finite_difference``: that direction's two values."""

    rel_error: float
    autograd: float
    finite_difference: float

    @property
    def ok(self) -> bool:
        return self.rel_error <= GRADIENT_TOLERANCE

    @property
    def refused(self) -> bool:
        """Unmistakably not the true gradient (``policy_inference`` refuses to start)."""
        return self.rel_error > GRADIENT_REFUSAL

    def text(self) -> str:
        """Why it is not ok ('' when it is)."""
        if self.ok:
            return ""
        return (f"the velocity's gradient with respect to a_tau is not its true one (the data estimate a_tau + (1 - "
                f"tau) v along a random direction: autograd gives {self.autograd:.4g}, a finite difference "
                f"{self.finite_difference:.4g}): part of "
                "velocity runs outside torch autograd (.detach(), no_grad, numpy), so exact guidance would do too "
                "little or nothing. Keep every use of a_tau in the graph")


def _sample_shape(generator: Any) -> tuple[int, int, int]:
    return (1, int(generator.sample_horizon), int(generator.sample_dim))


def gradient_check(generator: Any, obs: Any, seed: int = 0, taus: tuple[float, ...] = (0.5, 0.8),
                   directions: int = 5, eps: tuple[float, ...] = (0.01, 0.1, 0.3)) -> GradientCheck:
    """Autograd's directional derivative of the data estimate ``a1_hat`` (module doc) against a central finite
    difference.

    Args:
        generator: a :class:`~rtc_ros.runtime.generator.ChunkGenerator` (its policy, encoding and sample shape).
        obs: one raw observation, as :meth:`ChunkGenerator.generate` takes it.
        taus: flow times to test at (inside ``(0, 1)``: the ends may be singular in a wrapper; late enough that
            a sure policy's ``a1_hat`` still depends on ``a_tau`` measurably).
        directions: random ``(u, delta)`` pairs per flow time, each of unit RMS per element; the median
            direction of each flow time counts, the worse flow time is returned (a detached part shows most at
            an early flow time if it is the velocity's own, at a late one if it is an x1 head's).
        eps: the finite-difference steps along ``delta`` (normalised action units); the one agreeing best counts.

    A policy's explicit clamps are off meanwhile (``policy.unclamped()`` where it has one: a diffusion model's
    ``clip_sample``), since a finite difference across a clamp's kink disagrees with autograd's true derivative.
    """
    with getattr(generator.policy, "unclamped", nullcontext)():
        return _gradient_check(generator, obs, seed, taus, directions, eps)


def _gradient_check(generator: Any, obs: Any, seed: int, taus: tuple[float, ...], directions: int,
                    eps: tuple[float, ...]) -> GradientCheck:
    policy, device = generator.policy, generator.device
    shape = _sample_shape(generator)
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        ctx = generator.encode(obs)
    medians: list[GradientCheck] = []
    for tau in taus:
        tried: list[GradientCheck] = []  # per direction, the best agreement over the steps
        t = torch.full((1,), float(tau), device=device)
        a = torch.randn(shape, generator=rng).to(device)
        for _ in range(directions):
            u = torch.randn(shape, generator=rng).to(device)
            delta = torch.randn(shape, generator=rng).to(device)
            x = a.clone().requires_grad_(True)
            with torch.enable_grad():
                a1_hat = x + (1.0 - tau) * policy.velocity(x, ctx, t)
                grad = torch.autograd.grad((u * a1_hat).sum(), x, allow_unused=True)[0]
            auto = 0.0 if grad is None else float((grad * delta).sum())
            best = GradientCheck(math.inf, auto, math.nan)
            for step in eps:  # the closest agreement over the steps (module doc)
                with torch.no_grad():
                    hi, lo = a + step * delta, a - step * delta
                    hi = hi + (1.0 - tau) * policy.velocity(hi, ctx, t)
                    lo = lo + (1.0 - tau) * policy.velocity(lo, ctx, t)
                    fd = float((u * (hi - lo)).sum()) / (2.0 * step)
                # relative to the larger of the two, and at least to a tenth of what an identity Jacobian gives
                # (~sqrt(numel)): a sure policy's a1_hat hardly depends on a_tau, and rounding then dominates its
                # finite difference (the shipped margin policy: 0.0085 against 0.0081)
                rel = abs(auto - fd) / max(abs(auto), abs(fd), 0.1 * math.sqrt(u.numel()))
                if math.isfinite(rel) and rel < best.rel_error:  # (NaN: a NaN gradient or velocity, never best)
                    best = GradientCheck(rel, auto, fd)
            tried.append(best)
        medians.append(sorted(tried, key=lambda c: c.rel_error)[(len(tried) - 1) // 2])
    return max(medians, key=lambda c: c.rel_error)


def sample_spread(generator: Any, obs: Any, seed: int = 0, draws: int = 8) -> float:
    """How much plain samples at one observation vary with their noise, relative to the noise: the std over
    ``draws`` chunks of each normalised action, averaged over positions and dimensions (module doc). A trained
    policy is surer than the noise it starts from (the shipped ones 0.013-0.37); a flow run the wrong way round
    spreads its samples wider than the noise (> 1)."""
    policy = generator.policy
    rng = torch.Generator().manual_seed(seed)
    one = obs if isinstance(obs, Mapping) else torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1)
    chunks = torch.cat([generator.sample(one, None, 0, 0, generator=rng) for _ in range(draws)])  # (the live shape)
    off, m = int(generator.chunk_offset), int(policy.action_dim)
    norm = policy.normalize_actions(chunks)[..., off:, :m].double()
    return float(norm.std(dim=0).mean())


def spread_text(spread: float) -> str:
    """The warning for a sample spread above :data:`SPREAD_LIMIT` ('' below)."""
    if not spread > SPREAD_LIMIT:
        return ""
    return (f"plain samples at one observation vary {spread:.2f} times as much as the noise they start from (a trained "
            "flow policy is surer than its noise): is it trained with tau 1 = noise (LeRobot's convention), or "
            "velocity = noise - data? rtc_ros runs tau 0 = noise, 1 = data, v = data - noise; convert at the boundary "
            "(tau = 1 - t, v = -v: docs/policies.md). An untrained model shows this too")
