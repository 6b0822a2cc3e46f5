"""Two-mass crawler (locomotion-like rhythm; force control; crawl left or right).

Two feet of mass 1 on a line (``x1`` left, ``x2`` right) joined by a linear actuator of force
``U_MAX * a0`` (positive pushes them apart), a damper and stiff end stops at extension
``|e| = E_STOP`` (``e = x2 - x1 - L0``). Action ``a1`` shifts weight between the feet: normal
forces ``m g (1 - W_SHIFT a1)`` (left) and ``m g (1 + W_SHIFT a1)`` (right); each foot feels
Coulomb friction ``MU N`` (implicit, so a lightly pressed foot slides and a loaded one sticks).
Moving needs a rhythm: extend with one foot anchored, contract with the other. Success: the
centre reaches ``|c| >= GOAL`` (either end of the track) within the time limit. The expert picks a
direction at random (its mode) and runs a hysteresis gait.
"""

from __future__ import annotations

import torch

from rtc_ros.benchmarks.tasks.base import BatchedTask, Expert, TaskSpec, Tensor, random_sign, sel, uniform

G, MASS, MU, U_MAX, W_SHIFT, DAMP, L0 = 9.81, 1.0, 0.6, 8.0, 0.8, 1.0, 1.0
E_STOP, K_STOP = 0.6, 400.0
GOAL = 6.0
SUBSTEPS = 5


def _coulomb(v: Tensor, force: Tensor, normal: Tensor, h: float) -> Tensor:
    """Velocity after one implicit step with Coulomb friction ``MU * normal``; all ``(n,)``."""
    v_free = v + h * force / MASS
    slip = MU * normal * h / MASS
    return torch.where(v_free.abs() <= slip, torch.zeros_like(v_free), v_free - torch.sign(v_free) * slip)


class Crawler(BatchedTask):
    spec = TaskSpec(
        name="crawler", obs_dim=4, act_dim=2, max_steps=160, dt=0.05,
        kind="locomotion", modes="crawl to the left end or to the right end",
    )

    def _reset_state(self, gen: torch.Generator) -> None:
        n = self.n
        c = uniform(gen, n, -0.2, 0.2)
        e = uniform(gen, n, -0.2, 0.2)
        self.x1 = c - (L0 + e) / 2
        self.x2 = c + (L0 + e) / 2
        self.v1 = torch.zeros(n)
        self.v2 = torch.zeros(n)

    def _advance(self, action: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
        u = U_MAX * action[:, 0]
        n1 = MASS * G * (1 - W_SHIFT * action[:, 1])
        n2 = MASS * G * (1 + W_SHIFT * action[:, 1])
        x1, x2, v1, v2 = self.x1, self.x2, self.v1, self.v2
        h = self.spec.dt / SUBSTEPS
        for _ in range(SUBSTEPS):
            e = x2 - x1 - L0
            stop = -K_STOP * (e - e.clamp(-E_STOP, E_STOP))
            f = u + stop - DAMP * (v2 - v1)  # acts +f on x2, -f on x1
            v1 = _coulomb(v1, -f, n1, h)
            v2 = _coulomb(v2, f, n2, h)
            x1, x2 = x1 + h * v1, x2 + h * v2
        self.x1, self.x2 = sel(active, x1, self.x1), sel(active, x2, self.x2)
        self.v1, self.v2 = sel(active, v1, self.v1), sel(active, v2, self.v2)
        centre = (self.x1 + self.x2) / 2
        return centre.abs() >= GOAL, torch.zeros_like(active)

    def observe(self) -> Tensor:
        centre = (self.x1 + self.x2) / 2
        return torch.stack([centre, self.x2 - self.x1 - L0, self.v1, self.v2], -1).float()


class CrawlerExpert(Expert):
    """Hysteresis gait: extend until ``e > E_HI``, contract until ``e < E_LO``; feet loaded so
    that the trailing foot anchors the extension and the leading foot anchors the contraction."""

    E_HI, E_LO = 0.4, -0.4

    def reset(self, gen: torch.Generator) -> None:
        n = self.task.n
        self.direction = random_sign(gen, n)
        self.extending = torch.rand(n, generator=gen) < 0.5

    def act(self) -> Tensor:
        t: Crawler = self.task  # type: ignore[assignment]
        e = t.x2 - t.x1 - L0
        self.extending = torch.where(e > self.E_HI, False, torch.where(e < self.E_LO, True, self.extending))
        phase = torch.where(self.extending, 1.0, -1.0)
        return torch.stack([phase, -self.direction * phase], -1)
