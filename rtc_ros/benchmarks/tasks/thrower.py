"""Throw a ball into a basket with a torque-driven arm (throwing; torque control; underhand or
overhand).

A one-link arm (pivot at height ``PIVOT_Y``, length ``L``, point mass ``MASS`` at the tip that
includes the ball, viscous friction ``B``) is driven by torque ``TAU_MAX * a0``, too weak to lift it
straight up: the arm must pump energy over several swings. The ball is released the first time
``a1 < 0``; it then flies ballistically and the episode ends (its landing point is computed in
closed form). Success: it lands within ``BASKET_HALF`` of the basket at distance ``D`` (random per
episode, observed). The expert picks a style at random (its mode): *underhand* (release while
swinging counter-clockwise through the lower right quadrant) or *overhand* (winding up clockwise and
releasing in the upper left quadrant); it pumps energy toward the style's target and releases at
the step whose predicted landing point is nearest the basket.

Angles: ``q`` from the downward vertical, counter-clockwise positive; tip ``= (L sin q,
PIVOT_Y - L cos q)``, tip velocity ``= L qd (cos q, sin q)``.
"""

from __future__ import annotations

import math

import torch

from rtc_ros.benchmarks.tasks.base import BatchedTask, Expert, TaskSpec, Tensor, random_sign, sel, uniform, wrap_angle

G, MASS, L, B, TAU_MAX, PIVOT_Y = 9.81, 1.0, 1.0, 0.1, 3.0, 1.5
INERTIA = MASS * L**2
BASKET_HALF = 0.3
SUBSTEPS = 4


def landing_x(q: Tensor, qd: Tensor) -> Tensor:
    """Where a ball released from the tip at ``(q, qd)`` lands (``y = 0``); all ``(n,)``."""
    px, py = L * torch.sin(q), PIVOT_Y - L * torch.cos(q)
    vx, vy = L * qd * torch.cos(q), L * qd * torch.sin(q)
    t = (vy + torch.sqrt(vy**2 + 2 * G * py.clamp(min=0.0))) / G
    return px + vx * t


class Thrower(BatchedTask):
    spec = TaskSpec(
        name="thrower", obs_dim=4, act_dim=2, max_steps=200, dt=0.05,
        kind="throwing", modes="underhand (counter-clockwise) or overhand (clockwise) throw",
    )

    def _reset_state(self, gen: torch.Generator) -> None:
        n = self.n
        self.q = uniform(gen, n, -0.1, 0.1)
        self.qd = uniform(gen, n, -0.1, 0.1)
        self.basket = uniform(gen, n, 2.5, 4.5)
        self.land = torch.full((n,), float("nan"))

    def _advance(self, action: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
        release = active & (action[:, 1] < 0.0)
        land = landing_x(self.q, self.qd)
        self.land = torch.where(release, land, self.land)
        tau = TAU_MAX * action[:, 0]
        q, qd = self.q, self.qd
        h = self.spec.dt / SUBSTEPS
        for _ in range(SUBSTEPS):
            qd = qd + h * (tau - MASS * G * L * torch.sin(q) - B * qd) / INERTIA
            q = q + h * qd
        move = active & ~release
        self.q, self.qd = sel(move, wrap_angle(q), self.q), sel(move, qd, self.qd)
        hit = release & ((land - self.basket).abs() < BASKET_HALF)
        return hit, release & ~hit

    def observe(self) -> Tensor:
        return torch.stack([torch.cos(self.q), torch.sin(self.q), self.qd, self.basket], -1).float()


class ThrowerExpert(Expert):
    """Energy pumping toward the style's release energy; release at the best predicted step."""

    K_ENERGY = 0.5
    SPEED_MARGIN = 1.04

    def reset(self, gen: torch.Generator) -> None:
        t: Thrower = self.task  # type: ignore[assignment]
        self.style = random_sign(gen, t.n)  # +1 underhand (CCW), -1 overhand (CW)
        q_r = torch.where(self.style > 0, math.pi / 4, -3 * math.pi / 4)
        # bisection on the release speed that lands in the basket from the nominal angle
        lo, hi = torch.full((t.n,), 0.1), torch.full((t.n,), 20.0)
        for _ in range(40):
            mid = (lo + hi) / 2
            too_far = landing_x(q_r, self.style * mid / L) > t.basket
            hi, lo = torch.where(too_far, mid, hi), torch.where(too_far, lo, mid)
        qd_r = self.SPEED_MARGIN * (lo + hi) / 2 / L
        self.energy_target = 0.5 * INERTIA * qd_r**2 - MASS * G * L * torch.cos(q_r)

    def act(self) -> Tensor:
        t: Thrower = self.task  # type: ignore[assignment]
        q, qd = t.q, t.qd
        energy = 0.5 * INERTIA * qd**2 - MASS * G * L * torch.cos(q)
        # against the style's direction stay below the over-the-top energy, so the arm can only go
        # over the top (and start rotating) in the style's direction
        top = MASS * G * L
        against = qd * self.style < 0
        target = torch.where(against, torch.minimum(self.energy_target, torch.full_like(energy, 0.8 * top)),
                             self.energy_target)
        pump = (self.K_ENERGY * (target - energy)).clamp(-1.0, 1.0) * torch.sign(qd)
        kick = (qd.abs() < 0.3) & (torch.cos(q) > 0.95)
        tau = torch.where(kick, self.style, pump)
        # release window: the style's quadrant and direction, nearest step to the basket
        if_style = torch.where(self.style > 0, (q > 0) & (q < math.pi / 2) & (qd > 0),
                               (q < -math.pi / 2) & (qd < 0))
        err_now = landing_x(q, qd) - t.basket
        q_next = q + qd * t.spec.dt
        err_next = landing_x(q_next, qd) - t.basket
        release = if_style & (err_now.abs() < BASKET_HALF) & (err_now.abs() <= err_next.abs())
        grip = torch.where(release, -1.0, 1.0)
        return torch.stack([tau.clamp(-1.0, 1.0), grip], -1)
