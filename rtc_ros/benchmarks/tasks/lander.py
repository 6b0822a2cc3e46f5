"""2-D lander around an obstacle (landing; thrust control; land left or right).

A rigid body (mass 1, inertia ``I``) with two thrusters at lateral offsets ``-R_ARM`` (left,
action 0) and ``+R_ARM`` (right, action 1), each giving thrust ``T_MAX (a + 1) / 2`` along the
body's up axis; gravity ``G``. It starts high above a round rock (centre ``ROCK``, radius
``ROCK_R``) that sits between two landing pads at ``x = -PAD_X`` and ``x = +PAD_X``. The expert
picks a pad at random (its mode), flies around the rock on that side and lands with a cascaded
velocity / attitude controller. Success: touchdown (``y <= 0``) on a pad with ``|vy| < 1.2``,
``|vx| < 0.8``, ``|phi| < 0.3``. Failure: touchdown elsewhere or too hard, hitting the rock,
leaving the arena. Control at 40 Hz with ``I = 0.4``: the first version (20 Hz, ``I = 0.15``)
failed the suite's lag-tolerance rule (:mod:`rtc_ros.benchmarks.tasks.lag`).
"""

from __future__ import annotations

import torch

from rtc_ros.benchmarks.tasks.base import BatchedTask, Expert, TaskSpec, Tensor, random_sign, sel, uniform

G, MASS, INERTIA, R_ARM, T_MAX = 9.81, 1.0, 0.4, 0.5, 10.0
ROCK, ROCK_R, BODY_R = (0.0, 3.5), 1.5, 0.3
PAD_X, PAD_HALF = 4.0, 1.0
SUBSTEPS = 2


class Lander(BatchedTask):
    spec = TaskSpec(
        name="lander", obs_dim=7, act_dim=2, max_steps=300, dt=0.025,
        kind="landing", modes="pass the rock on the left or the right, land on that side's pad",
    )

    def _reset_state(self, gen: torch.Generator) -> None:
        n = self.n
        self.x = uniform(gen, n, -0.8, 0.8)
        self.y = uniform(gen, n, 7.0, 8.0)
        self.vx = uniform(gen, n, -0.3, 0.3)
        self.vy = uniform(gen, n, -0.5, 0.0)
        self.phi = uniform(gen, n, -0.1, 0.1)
        self.omega = uniform(gen, n, -0.1, 0.1)

    def _advance(self, action: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
        thrust = T_MAX * (action + 1.0) / 2.0  # (n, 2): left, right
        total = thrust.sum(-1)
        torque = R_ARM * (thrust[:, 1] - thrust[:, 0])
        x, y, vx, vy, phi, om = self.x, self.y, self.vx, self.vy, self.phi, self.omega
        h = self.spec.dt / SUBSTEPS
        for _ in range(SUBSTEPS):
            ax = -torch.sin(phi) * total / MASS
            ay = torch.cos(phi) * total / MASS - G
            vx, vy = vx + h * ax, vy + h * ay
            om = om + h * (torque / INERTIA - 0.5 * om)
            x, y, phi = x + h * vx, y + h * vy, phi + h * om
        for name, new in (("x", x), ("y", y), ("vx", vx), ("vy", vy), ("phi", phi), ("omega", om)):
            setattr(self, name, sel(active, new, getattr(self, name)))
        down = self.y <= 0.0
        on_pad = (self.x.abs() - PAD_X).abs() < PAD_HALF
        soft = (self.vy.abs() < 1.2) & (self.vx.abs() < 0.8) & (self.phi.abs() < 0.3)
        hit_rock = torch.hypot(self.x - ROCK[0], self.y - ROCK[1]) < ROCK_R + BODY_R
        out = (self.x.abs() > 8.0) | (self.y > 12.0)
        good = down & on_pad & soft
        return good, (down & ~good) | hit_rock | out

    def observe(self) -> Tensor:
        return torch.stack(
            [self.x, self.y, self.vx, self.vy, torch.sin(self.phi), torch.cos(self.phi), self.omega], -1
        ).float()


class LanderExpert(Expert):
    """Velocity-field guidance around the rock to the chosen pad, then attitude control."""

    def reset(self, gen: torch.Generator) -> None:
        self.side = random_sign(gen, self.task.n)

    def act(self) -> Tensor:
        t: Lander = self.task  # type: ignore[assignment]
        x, y, vx, vy, phi, om = t.x, t.y, t.vx, t.vy, t.phi, t.omega
        target_x = self.side * PAD_X
        vx_des = (1.2 * (target_x - x)).clamp(-2.5, 2.5)
        beside = (x - ROCK[0]).abs() > ROCK_R + 0.9
        # above the rock: hold altitude over its top; beside it: descend, slowing near the ground
        y_safe = ROCK[1] + ROCK_R + 1.0
        vy_hold = (1.5 * (y_safe - y)).clamp(-1.5, 1.5)
        vy_land = -(0.5 + 0.6 * y).clamp(max=2.5)
        vy_des = torch.where(beside | (y > y_safe + 1.5), vy_land, vy_hold)
        vy_des = torch.where(~beside, torch.maximum(vy_des, vy_hold), vy_des)
        ax = (2.5 * (vx_des - vx)).clamp(-5.0, 5.0)
        ay = (3.0 * (vy_des - vy)).clamp(-6.0, 8.0) + G
        ay = ay.clamp(min=2.0)
        phi_des = torch.atan2(-ax, ay).clamp(-0.5, 0.5)
        phi_des = torch.where(y < 0.8, torch.zeros_like(phi_des), phi_des)  # level for touchdown
        total = MASS * ay / torch.cos(phi).clamp(min=0.5)
        torque = INERTIA * (40.0 * (phi_des - phi) - 10.0 * om)
        diff = torque / R_ARM
        left, right = (total - diff) / 2.0, (total + diff) / 2.0
        act = torch.stack([left, right], -1) / T_MAX * 2.0 - 1.0
        return act.clamp(-1.0, 1.0)
