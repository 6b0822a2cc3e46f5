"""Catch one of two falling balls with a paddle (catching; force control; left ball or right ball).

A paddle (mass 1, viscous friction ``B``) slides on the line ``y = 0`` under force
``F_MAX * a``; walls at ``|x| = X_WALL`` stop it. Two balls fall from ``y = Y0`` under gravity
``G`` at the same time, one drifting to land left of centre, one right; each also feels a
small unobserved constant horizontal wind, so the landing point must be re-estimated in flight.
Success: a ball reaches ``y = 0`` within ``CATCH_HALF`` of the paddle centre while the paddle moves
slower than ``V_CATCH`` (a soft catch). The expert picks one ball at random (its mode) and tracks
the predicted landing point with a minimum-effort rest-to-rest law. The episode ends when a ball is
caught or both have fallen.
"""

from __future__ import annotations

import torch

from rtc_ros.benchmarks.tasks.base import BatchedTask, Expert, TaskSpec, Tensor, random_sign, sel, uniform

G, Y0, F_MAX, B_FRICTION, X_WALL = 0.8, 6.0, 3.0, 0.3, 4.5
CATCH_HALF, V_CATCH, WIND = 0.3, 1.0, 0.1
SUBSTEPS = 2


class Catcher(BatchedTask):
    spec = TaskSpec(
        name="catcher", obs_dim=10, act_dim=1, max_steps=120, dt=0.04,
        kind="catching", modes="catch the left ball or the right ball",
    )

    def _reset_state(self, gen: torch.Generator) -> None:
        n = self.n
        self.px = uniform(gen, n, -0.5, 0.5)
        self.pv = uniform(gen, n, -0.2, 0.2)
        vy0 = uniform(gen, n, -0.3, 0.3)
        t_land = (vy0 + torch.sqrt(vy0**2 + 2 * G * Y0)) / G
        land = torch.stack([-uniform(gen, n, 1.5, 3.5), uniform(gen, n, 1.5, 3.5)], -1)  # (n, 2)
        self.bx = torch.stack([uniform(gen, n, -1.5, 0.0), uniform(gen, n, 0.0, 1.5)], -1)
        self.bvx = (land - self.bx) / t_land[:, None]
        self.by = torch.full((n, 2), Y0)
        self.bvy = vy0[:, None].expand(n, 2).clone()
        self.wind = WIND * (2 * torch.rand(n, 2, generator=gen) - 1)
        self.fallen = torch.zeros(n, 2, dtype=torch.bool)

    def _advance(self, action: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
        force = F_MAX * action[:, 0]
        px, pv, bx, by, bvx, bvy = self.px, self.pv, self.bx, self.by, self.bvx, self.bvy
        h = self.spec.dt / SUBSTEPS
        caught = torch.zeros_like(self.fallen)
        crossed = torch.zeros_like(self.fallen)
        for _ in range(SUBSTEPS):
            pv = pv + h * (force - B_FRICTION * pv)
            px = px + h * pv
            at_wall = px.abs() > X_WALL
            px = px.clamp(-X_WALL, X_WALL)
            pv = torch.where(at_wall, torch.zeros_like(pv), pv)
            bvx, bvy = bvx + h * self.wind, bvy - h * G
            bx, by = bx + h * bvx, by + h * bvy
            cross = (by <= 0.0) & ~self.fallen & ~crossed
            near = ((bx - px[:, None]).abs() < CATCH_HALF) & (pv.abs()[:, None] < V_CATCH)
            caught = caught | (cross & near)
            crossed = crossed | cross
        self.px, self.pv = sel(active, px, self.px), sel(active, pv, self.pv)
        self.bx, self.by = sel(active, bx, self.bx), sel(active, by, self.by)
        self.bvx, self.bvy = sel(active, bvx, self.bvx), sel(active, bvy, self.bvy)
        self.fallen = self.fallen | (crossed & active[:, None])
        return caught.any(-1), self.fallen.all(-1)

    def observe(self) -> Tensor:
        return torch.cat(
            [self.px[:, None], self.pv[:, None], self.bx, self.by, self.bvx, self.bvy], -1
        ).float()


class CatcherExpert(Expert):
    """Track the chosen ball's predicted landing point (constant-velocity prediction, replanned)."""

    def reset(self, gen: torch.Generator) -> None:
        self.choice = (random_sign(gen, self.task.n) > 0).long()  # 0 = left ball, 1 = right ball

    def act(self) -> Tensor:
        t: Catcher = self.task  # type: ignore[assignment]
        idx = self.choice[:, None]
        bx, by = t.bx.gather(1, idx)[:, 0], t.by.gather(1, idx)[:, 0]
        bvx, bvy = t.bvx.gather(1, idx)[:, 0], t.bvy.gather(1, idx)[:, 0]
        t_go = ((bvy + torch.sqrt((bvy**2 + 2 * G * by.clamp(min=0.0)))) / G).clamp(min=0.25)
        target = bx + bvx * t_go
        # minimum-effort double integrator reaching target at rest after t_go
        acc = 6.0 * (target - t.px) / t_go**2 - 4.0 * t.pv / t_go
        force = acc + B_FRICTION * t.pv
        return (force / F_MAX).clamp(-1.0, 1.0)[:, None]
