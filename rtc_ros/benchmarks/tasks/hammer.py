"""Hammer throw: spin a ball up clockwise or counter-clockwise and let go toward a target (throwing;
torque control; spin direction).

Top view: an arm of length ``L`` (ball of mass ``MASS`` at its tip, viscous friction ``B``) turns about
the origin under torque ``TAU_MAX * a0``, too weak to reach throwing speed in less than a few turns.
The ball is let go the first time ``a1 < 0``; it then flies for ``T_FLIGHT`` s along the tip's velocity
(a fixed launch elevation) and the episode ends. Success: it lands within ``TARGET_R`` of a target
at a random bearing and a distance in ``DIST`` (observed). Every target can be hit spinning either
way (from different release angles). The expert picks a direction at random (its mode), spins up to
the speed whose throw reaches the target's distance, and lets go at the step whose landing point is
nearest the target. Switching direction means braking and spinning up again, which does not fit in
the time limit (about 1.5 times the expert's mean episode length, chosen with the expert alone).
"""

from __future__ import annotations

import math

import torch

from rtc_ros.benchmarks.tasks.base import BatchedTask, Expert, TaskSpec, Tensor, random_sign, sel, uniform, wrap_angle

MASS, L, B, TAU_MAX, T_FLIGHT = 1.0, 1.0, 0.1, 2.0, 0.8
INERTIA = MASS * L**2
DIST, TARGET_R = (4.0, 6.0), 0.4
SUBSTEPS = 2


def landing(q: Tensor, w: Tensor) -> Tensor:
    """Where a ball let go at angle ``q`` and angular velocity ``w`` lands: ``(n, 2)``."""
    pos = L * torch.stack([torch.cos(q), torch.sin(q)], -1)
    vel = L * w[:, None] * torch.stack([-torch.sin(q), torch.cos(q)], -1)
    return pos + T_FLIGHT * vel


class Hammer(BatchedTask):
    spec = TaskSpec(
        name="hammer", obs_dim=5, act_dim=2, max_steps=300, dt=0.02,
        kind="throwing", modes="spin up counter-clockwise or clockwise before letting go",
    )

    def _reset_state(self, gen: torch.Generator) -> None:
        n = self.n
        self.q = uniform(gen, n, -math.pi, math.pi)
        self.w = uniform(gen, n, -0.1, 0.1)
        bearing, dist = uniform(gen, n, -math.pi, math.pi), uniform(gen, n, *DIST)
        self.target = dist[:, None] * torch.stack([torch.cos(bearing), torch.sin(bearing)], -1)

    def _advance(self, action: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
        release = active & (action[:, 1] < 0.0)
        hit = release & ((landing(self.q, self.w) - self.target).norm(dim=-1) < TARGET_R)
        q, w = self.q, self.w
        h = self.spec.dt / SUBSTEPS
        for _ in range(SUBSTEPS):
            w = w + h * (TAU_MAX * action[:, 0] - B * w) / INERTIA
            q = q + h * w
        move = active & ~release
        self.q, self.w = sel(move, wrap_angle(q), self.q), sel(move, w, self.w)
        return hit, release & ~hit

    def observe(self) -> Tensor:
        return torch.cat([torch.stack([torch.cos(self.q), torch.sin(self.q), self.w], -1), self.target], -1).float()


class HammerExpert(Expert):
    """Spin up to the throwing speed in the chosen direction; let go at the best predicted step."""

    K_W = 2.0

    def reset(self, gen: torch.Generator) -> None:
        self.direction = random_sign(gen, self.task.n)  # +1 counter-clockwise, -1 clockwise

    def switch_mode(self, mask: Tensor) -> None:
        """Other mode: the other spin direction."""
        self.direction = torch.where(mask, -self.direction, self.direction)

    def act(self) -> Tensor:
        t: Hammer = self.task  # type: ignore[assignment]
        dist = t.target.norm(dim=-1)
        # |landing| = L sqrt(1 + (T_FLIGHT w)^2): the speed that reaches the target's distance
        w_throw = torch.sqrt(((dist / L) ** 2 - 1.0).clamp(min=0.0)) / T_FLIGHT
        tau = (self.K_W * (self.direction * w_throw - t.w)).clamp(-1.0, 1.0)
        err_now = (landing(t.q, t.w) - t.target).norm(dim=-1)
        err_next = (landing(t.q + t.w * t.spec.dt, t.w) - t.target).norm(dim=-1)
        right_way = t.w * self.direction > 0
        release = right_way & (err_now < TARGET_R) & (err_now <= err_next)
        return torch.stack([tau, torch.where(release, -1.0, 1.0)], -1)
