"""Run through gaps in walls at a fixed forward speed (mode choice around obstacles; lateral force
control; always the left gaps or always the right gaps).

A body moves forward (``y``) at the fixed speed ``V_FWD`` and is pushed sideways (``x``) by
``F_MAX * a`` against drag ``B``. ``N_WALLS`` walls lie across the track every ``SPACING`` m, each with a
left gap near ``x = -GAP_X`` and a right gap near ``x = +GAP_X`` (random offsets); passing a wall
outside a gap (``|x - gap| >= GAP_HALF``) or leaving the track (``|x| > X_TRACK``) fails, reaching
``y >= Y_GOAL`` succeeds. The observation holds the next two walls (distance and both gaps). The
expert picks a side at random (its mode) and steers to that side's gap of each next wall with a
minimum-effort law that arrives when the wall does. It cannot wait: a switch to the other side
shortly before a wall does not reach the other gap in time.
"""

from __future__ import annotations

import torch

from rtc_ros.benchmarks.tasks.base import BatchedTask, Expert, TaskSpec, Tensor, random_sign, sel, uniform

V_FWD, F_MAX, B = 2.0, 4.0, 1.0
N_WALLS, SPACING, Y_FIRST, GAP_X, GAP_HALF, GAP_JITTER, X_TRACK = 4, 2.5, 4.0, 1.5, 0.35, 0.6, 3.5
Y_GOAL = Y_FIRST + (N_WALLS - 1) * SPACING + 1.0
SUBSTEPS = 2


class Runner(BatchedTask):
    spec = TaskSpec(
        name="runner", obs_dim=9, act_dim=1, max_steps=170, dt=0.04,
        kind="obstacles", modes="pass every wall through its left gap or through its right gap",
    )

    def _reset_state(self, gen: torch.Generator) -> None:
        n = self.n
        self.x = uniform(gen, n, -0.3, 0.3)
        self.xd = uniform(gen, n, -0.2, 0.2)
        self.y = torch.zeros(n)
        jitter = GAP_JITTER * (2 * torch.rand(n, N_WALLS, 2, generator=gen) - 1)
        self.gaps = torch.tensor([-GAP_X, GAP_X]) + jitter  # (n, walls, 2): left, right gap centres
        self.wall_y = Y_FIRST + SPACING * torch.arange(N_WALLS, dtype=torch.float32)

    def next_walls(self) -> tuple[Tensor, Tensor]:
        """The next two walls' ``y (n, 2)`` and gaps ``(n, 2, 2)``; past the last wall, the goal line
        with both gaps at 0."""
        k = (self.y[:, None] >= self.wall_y).sum(-1)  # index of the next wall
        ys, gaps = [], []
        for j in range(2):
            idx = (k + j).clamp(max=N_WALLS)
            pad = torch.cat([self.gaps, torch.zeros(self.n, 1, 2)], 1)
            wy = torch.cat([self.wall_y, torch.tensor([Y_GOAL])])[idx]
            ys.append(wy)
            gaps.append(pad.gather(1, idx[:, None, None].expand(-1, 1, 2))[:, 0])
        return torch.stack(ys, -1), torch.stack(gaps, 1)

    def _advance(self, action: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
        x, xd, y = self.x, self.xd, self.y
        h = self.spec.dt / SUBSTEPS
        crash = torch.zeros(self.n, dtype=torch.bool)
        for _ in range(SUBSTEPS):
            xd = xd + h * (F_MAX * action[:, 0] - B * xd)
            x, y_new = x + h * xd, y + h * V_FWD
            crossed = (y[:, None] < self.wall_y) & (y_new[:, None] >= self.wall_y)  # (n, walls)
            in_gap = ((x[:, None, None] - self.gaps).abs() < GAP_HALF).any(-1)
            crash = crash | (crossed & ~in_gap).any(-1)
            y = y_new
        self.x, self.xd, self.y = sel(active, x, self.x), sel(active, xd, self.xd), sel(active, y, self.y)
        return self.y >= Y_GOAL, crash | (self.x.abs() > X_TRACK)

    def observe(self) -> Tensor:
        wy, gaps = self.next_walls()
        return torch.cat([torch.stack([self.x, self.xd, self.y], -1), wy - self.y[:, None], gaps.flatten(1)], -1).float()


class RunnerExpert(Expert):
    """Minimum-effort lateral move to the chosen side's gap of the next wall, arriving at the wall."""

    def reset(self, gen: torch.Generator) -> None:
        self.side = (random_sign(gen, self.task.n) > 0).long()  # 0 = left gaps, 1 = right gaps

    def switch_mode(self, mask: Tensor) -> None:
        """Other mode: the other side's gaps."""
        self.side = torch.where(mask, 1 - self.side, self.side)

    def act(self) -> Tensor:
        t: Runner = self.task  # type: ignore[assignment]
        wy, gaps = t.next_walls()
        target = gaps[:, 0].gather(1, self.side[:, None])[:, 0]
        t_go = ((wy[:, 0] - t.y) / V_FWD).clamp(min=0.3)
        acc = 6.0 * (target - t.x) / t_go**2 - 4.0 * t.xd / t_go
        return ((acc + B * t.xd) / F_MAX).clamp(-1.0, 1.0)[:, None]
