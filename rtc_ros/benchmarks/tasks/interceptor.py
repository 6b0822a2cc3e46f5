"""Dock with one of two targets that fly apart (moving targets; force control; left or right target).

A puck (mass 1, drag ``B``) on a plane is pushed by ``F_MAX * a`` (two actions: x and y force). Two
targets start near the top centre and fly apart horizontally, one to the left and one to the right
(random speeds), bobbing up and down (random phases); a target is gone once it leaves
``|x| <= X_ARENA``. Success: stay within ``DOCK_R`` of a target, with a velocity within ``DOCK_V``
of its velocity, for ``HOLD_STEPS`` consecutive steps. Failure: both targets gone. The expert picks a
target at random (its mode), predicts where it will be when reached (privileged: the targets'
motion law), flies there and matches its velocity. Turning to the other target late does not work:
it is flying away and leaves the arena first.
"""

from __future__ import annotations

import torch

from rtc_ros.benchmarks.tasks.base import BatchedTask, Expert, TaskSpec, Tensor, random_sign, sel, uniform

F_MAX, B = 4.0, 1.0
X_ARENA, Y_TARGET, BOB_A, BOB_W = 5.0, 4.0, 0.5, 2.0
DOCK_R, DOCK_V, HOLD_STEPS = 0.3, 0.6, 8
SPEED = (1.0, 1.4)
SUBSTEPS = 2


class Interceptor(BatchedTask):
    spec = TaskSpec(
        name="interceptor", obs_dim=12, act_dim=2, max_steps=150, dt=0.04,
        kind="moving targets", modes="dock with the left or the right target",
    )

    def _reset_state(self, gen: torch.Generator) -> None:
        n = self.n
        self.p = torch.stack([uniform(gen, n, -0.3, 0.3), uniform(gen, n, 0.2, 0.6)], -1)
        self.v = torch.zeros(n, 2)
        self.x0 = torch.stack([-uniform(gen, n, 0.3, 0.8), uniform(gen, n, 0.3, 0.8)], -1)  # (n, 2)
        self.u = torch.stack([-uniform(gen, n, *SPEED), uniform(gen, n, *SPEED)], -1)
        self.phase = 6.283185 * torch.rand(n, 2, generator=gen)
        self.time = torch.zeros(n)
        self.hold = torch.zeros(n, 2, dtype=torch.long)

    def targets(self, dt: float | Tensor = 0.0) -> tuple[Tensor, Tensor]:
        """Target positions and velocities ``(n, 2 targets, 2)`` at ``time + dt`` (``dt``: float or ``(n,)``)."""
        t = (self.time + dt)[:, None]
        x = self.x0 + self.u * t
        y = Y_TARGET + BOB_A * torch.sin(BOB_W * t + self.phase)
        vy = BOB_A * BOB_W * torch.cos(BOB_W * t + self.phase)
        return torch.stack([x, y], -1), torch.stack([self.u.expand_as(vy), vy], -1)

    def _advance(self, action: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
        p, v = self.p, self.v
        h = self.spec.dt / SUBSTEPS
        for _ in range(SUBSTEPS):
            v = v + h * (F_MAX * action - B * v)
            p = p + h * v
        self.p, self.v = sel(active, p, self.p), sel(active, v, self.v)
        self.time = torch.where(active, self.time + self.spec.dt, self.time)
        pos, vel = self.targets()
        gone = pos[..., 0].abs() > X_ARENA
        near = ((pos - self.p[:, None]).norm(dim=-1) < DOCK_R) & ((vel - self.v[:, None]).norm(dim=-1) < DOCK_V)
        self.hold = torch.where(active[:, None], torch.where(near & ~gone, self.hold + 1, 0), self.hold)
        return (self.hold >= HOLD_STEPS).any(-1), gone.all(-1)

    def observe(self) -> Tensor:
        pos, vel = self.targets()
        return torch.cat([self.p, self.v, pos.flatten(1), vel.flatten(1)], -1).float()


class InterceptorExpert(Expert):
    """Fly to the chosen target's predicted position at a bounded speed, matching its velocity
    when close (time-to-go estimated by fixed-point iteration)."""

    V_NOM, K_V = 3.0, 10.0

    def reset(self, gen: torch.Generator) -> None:
        self.choice = (random_sign(gen, self.task.n) > 0).long()  # 0 = left target, 1 = right

    def switch_mode(self, mask: Tensor) -> None:
        """Other mode: the other target."""
        self.choice = torch.where(mask, 1 - self.choice, self.choice)

    def act(self) -> Tensor:
        t: Interceptor = self.task  # type: ignore[assignment]
        idx = self.choice[:, None, None].expand(-1, 1, 2)
        t_go = torch.zeros(t.n)
        for _ in range(4):
            pos, vel = t.targets(t_go)
            tgt = pos.gather(1, idx)[:, 0]
            t_go = (tgt - t.p).norm(dim=-1) / self.V_NOM
        pos, vel = t.targets()
        tvel = vel.gather(1, idx)[:, 0]
        rel = tgt - t.p
        dist = rel.norm(dim=-1, keepdim=True)
        v_des = tvel + rel / (dist + 1e-6) * (2.5 * dist).clamp(max=self.V_NOM)
        force = self.K_V * (v_des - t.v) + B * t.v
        return (force / F_MAX).clamp(-1.0, 1.0)
