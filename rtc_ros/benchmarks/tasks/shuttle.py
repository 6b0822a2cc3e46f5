"""Cart-pole shuttle: carry a balanced pole to the left or the right dock in time (balancing; force
control; left dock or right dock).

A cart-pole like :mod:`rtc_ros.benchmarks.tasks.cartpole` (same masses and force limit, 50 Hz) with
a pole about three times as long (``L = 2``, so a 7-step-old plan can still balance it) starts
balanced near ``x = 0``; docks at ``x = -DOCK`` and ``x = +DOCK``. Success: within ``DOCK_HALF``
of a dock, slower than 0.4 m/s, pole within 0.2 rad of upright, for ``HOLD_STEPS`` consecutive
steps. Failure: the pole falls (``|th| > 0.8``) or the cart leaves ``|x| <= X_LIMIT``. The expert
(LQR on the upright linearisation, position error to its dock clipped to ``X_CLIP``) picks a dock
at random (its mode). The time limit (300 steps) is about twice the expert's own mean episode
length (147 steps), chosen with the expert alone: turning back to the other dock late does not fit.
"""

from __future__ import annotations

import numpy as np
import torch

from rtc_ros.benchmarks.tasks.base import BatchedTask, Expert, TaskSpec, Tensor, random_sign, sel, uniform, wrap_angle

M_CART, M_POLE, L, G, B_CART, F_MAX = 1.0, 0.3, 2.0, 9.81, 0.1, 20.0
SUBSTEPS = 2
DOCK, DOCK_HALF, X_LIMIT, HOLD_STEPS = 1.6, 0.2, 2.4, 15


def _accelerations(xd: Tensor, th: Tensor, thd: Tensor, force: Tensor) -> tuple[Tensor, Tensor]:
    """Cart and pole accelerations ``(xdd, thdd)`` for ``force``; all ``(n,)``."""
    s, c = torch.sin(th), torch.cos(th)
    xdd = (force - B_CART * xd - M_POLE * G * s * c + M_POLE * L * s * thd**2) / (M_CART + M_POLE * s**2)
    return xdd, (G * s - c * xdd) / L


def force_for_accel(xd: Tensor, th: Tensor, thd: Tensor, xdd: Tensor) -> Tensor:
    """The force giving cart acceleration ``xdd`` (partial feedback linearisation)."""
    s, c = torch.sin(th), torch.cos(th)
    return (M_CART + M_POLE * s**2) * xdd + B_CART * xd + M_POLE * G * s * c - M_POLE * L * s * thd**2


class Shuttle(BatchedTask):
    spec = TaskSpec(
        name="shuttle", obs_dim=5, act_dim=1, max_steps=300, dt=0.02,
        kind="balancing", modes="carry the balanced pole to the left or the right dock",
    )

    def _reset_state(self, gen: torch.Generator) -> None:
        n = self.n
        self.x = uniform(gen, n, -0.15, 0.15)
        self.xd = uniform(gen, n, -0.1, 0.1)
        self.th = uniform(gen, n, -0.08, 0.08)
        self.thd = uniform(gen, n, -0.1, 0.1)
        self.hold = torch.zeros(n, dtype=torch.long)

    def _advance(self, action: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
        force = F_MAX * action[:, 0]
        x, xd, th, thd = self.x, self.xd, self.th, self.thd
        h = self.spec.dt / SUBSTEPS
        for _ in range(SUBSTEPS):  # semi-implicit Euler, as the swing-up task
            xdd, thdd = _accelerations(xd, th, thd, force)
            xd, thd = xd + h * xdd, thd + h * thdd
            x, th = x + h * xd, th + h * thd
        th = wrap_angle(th)
        self.x, self.xd = sel(active, x, self.x), sel(active, xd, self.xd)
        self.th, self.thd = sel(active, th, self.th), sel(active, thd, self.thd)
        docked = ((self.x.abs() - DOCK).abs() < DOCK_HALF) & (self.xd.abs() < 0.4) & (self.th.abs() < 0.2)
        self.hold = torch.where(active, torch.where(docked, self.hold + 1, 0), self.hold)
        return self.hold >= HOLD_STEPS, (self.th.abs() > 0.8) | (self.x.abs() > X_LIMIT)

    def observe(self) -> Tensor:
        return torch.stack([self.x, self.xd, torch.cos(self.th), torch.sin(self.th), self.thd], -1).float()


def lqr_gain(dt: float, q: tuple[float, ...], r: float) -> np.ndarray:
    """Discrete LQR gain ``(4,)`` for the upright cart-pole with cart acceleration as input."""
    a = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, G / L, 0]], dtype=np.float64)
    b = np.array([[0], [1], [0], [-1 / L]], dtype=np.float64)
    ad, bd, qm, rm = np.eye(4) + dt * a, dt * b, np.diag(q), np.array([[r]])
    p = qm.copy()
    for _ in range(5000):
        k = np.linalg.solve(rm + bd.T @ p @ bd, bd.T @ p @ ad)
        p = qm + ad.T @ p @ (ad - bd @ k)
    return k[0]


class ShuttleExpert(Expert):
    """LQR toward the chosen dock, position error clipped (bounded travel speed)."""

    X_CLIP = 1.6
    Q, R = (2.0, 0.5, 20.0, 1.0), 0.05
    A_MAX = 12.0

    def __init__(self, task: Shuttle) -> None:
        super().__init__(task)
        self.k = torch.as_tensor(lqr_gain(task.spec.dt / SUBSTEPS, self.Q, self.R), dtype=torch.float32)

    def reset(self, gen: torch.Generator) -> None:
        self.side = random_sign(gen, self.task.n)

    def switch_mode(self, mask: Tensor) -> None:
        """Other mode: the other dock."""
        self.side = torch.where(mask, -self.side, self.side)

    def act(self) -> Tensor:
        t: Shuttle = self.task  # type: ignore[assignment]
        err = (t.x - self.side * DOCK).clamp(-self.X_CLIP, self.X_CLIP)
        state = torch.stack([err, t.xd, t.th, t.thd], -1)
        acc = (-(state @ self.k)).clamp(-self.A_MAX, self.A_MAX)
        return (force_for_accel(t.xd, t.th, t.thd, acc) / F_MAX).clamp(-1.0, 1.0)[:, None]


