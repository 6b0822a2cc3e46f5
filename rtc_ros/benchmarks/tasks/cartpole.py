"""Cart-pole swing-up and balance (balancing; force control; swing up either way).

State: cart position ``x`` [m], velocity ``xd``, pole angle ``th`` (0 = upright, + = tilted right),
angular velocity ``thd``. The pole is a point mass ``m`` on a massless rod of length ``L``; the
cart (mass ``M``, viscous friction ``b``) is pushed by ``F = F_MAX * a``. The pole starts hanging
down almost at rest; the expert kicks left or right at random (its mode), pumps energy
(Astrom-Furuta energy shaping through partial feedback linearisation) and catches the pole with
LQR. Success: upright (``|th| < 0.25``, ``|thd| < 2``, ``|x| < 2``) for 50 consecutive steps (1 s).
Failure: the cart leaves ``|x| <= 2.5``. Control at 50 Hz (like the robot): at the first version's
20 Hz no controller can act on 4-7-step-old state here (see :mod:`rtc_ros.benchmarks.tasks.lag`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from rtc_ros.benchmarks.tasks.base import BatchedTask, Expert, TaskSpec, Tensor, random_sign, sel, uniform, wrap_angle

M_CART, M_POLE, L, G, B_CART, F_MAX = 1.0, 0.3, 0.7, 9.81, 0.1, 20.0
SUBSTEPS = 2
HOLD_STEPS = 50
X_LIMIT = 2.5


def _accelerations(xd: Tensor, th: Tensor, thd: Tensor, force: Tensor) -> tuple[Tensor, Tensor]:
    """Cart and pole accelerations ``(xdd, thdd)`` for ``force``; all ``(n,)``."""
    s, c = torch.sin(th), torch.cos(th)
    xdd = (force - B_CART * xd - M_POLE * G * s * c + M_POLE * L * s * thd**2) / (M_CART + M_POLE * s**2)
    thdd = (G * s - c * xdd) / L
    return xdd, thdd


def force_for_accel(xd: Tensor, th: Tensor, thd: Tensor, xdd: Tensor) -> Tensor:
    """Partial feedback linearisation: the force giving cart acceleration ``xdd``."""
    s, c = torch.sin(th), torch.cos(th)
    return (M_CART + M_POLE * s**2) * xdd + B_CART * xd + M_POLE * G * s * c - M_POLE * L * s * thd**2


class CartPoleSwingUp(BatchedTask):
    spec = TaskSpec(
        name="cartpole_swingup", obs_dim=5, act_dim=1, max_steps=300, dt=0.02,
        kind="balancing", modes="first swing to the left or to the right",
    )

    def _reset_state(self, gen: torch.Generator) -> None:
        n = self.n
        self.x = uniform(gen, n, -0.3, 0.3)
        self.xd = uniform(gen, n, -0.05, 0.05)
        self.th = math.pi + uniform(gen, n, -0.05, 0.05)
        self.thd = uniform(gen, n, -0.05, 0.05)
        self.hold = torch.zeros(n, dtype=torch.long)

    def _advance(self, action: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
        force = F_MAX * action[:, 0]
        x, xd, th, thd = self.x, self.xd, self.th, self.thd
        h = self.spec.dt / SUBSTEPS
        for _ in range(SUBSTEPS):  # semi-implicit Euler
            xdd, thdd = _accelerations(xd, th, thd, force)
            xd = xd + h * xdd
            thd = thd + h * thdd
            x = x + h * xd
            th = th + h * thd
        th = wrap_angle(th)
        self.x, self.xd = sel(active, x, self.x), sel(active, xd, self.xd)
        self.th, self.thd = sel(active, th, self.th), sel(active, thd, self.thd)
        upright = (self.th.abs() < 0.25) & (self.thd.abs() < 2.0) & (self.x.abs() < 2.0)
        self.hold = torch.where(active, torch.where(upright, self.hold + 1, 0), self.hold)
        return self.hold >= HOLD_STEPS, self.x.abs() > X_LIMIT

    def observe(self) -> Tensor:
        return torch.stack([self.x, self.xd, torch.cos(self.th), torch.sin(self.th), self.thd], -1).float()


def _lqr_gain(dt: float) -> np.ndarray:
    """Discrete LQR for the upright linearisation with cart acceleration as input: ``(4,)``."""
    a = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, G / L, 0]], dtype=np.float64)
    b = np.array([[0], [1], [0], [-1 / L]], dtype=np.float64)
    ad, bd = np.eye(4) + dt * a, dt * b
    q, r = np.diag([1.0, 0.5, 20.0, 1.0]), np.array([[0.05]])
    p = q.copy()
    for _ in range(5000):
        k = np.linalg.solve(r + bd.T @ p @ bd, bd.T @ p @ ad)
        p = q + ad.T @ p @ (ad - bd @ k)
    return k[0]


class CartPoleExpert(Expert):
    """Energy-shaping swing-up (direction = mode) + LQR catch."""

    A_MAX = 12.0  # cart acceleration limit overall [m/s^2]
    A_SWING = 5.0  # limit of the energy-pumping term
    K_ENERGY = 0.3
    K_CENTER = (1.0, 1.0)  # cart centring (position, velocity) during swing-up

    def __init__(self, task: CartPoleSwingUp) -> None:
        super().__init__(task)
        self.k = torch.as_tensor(_lqr_gain(task.spec.dt / SUBSTEPS), dtype=torch.float32)

    def reset(self, gen: torch.Generator) -> None:
        self.mode = random_sign(gen, self.task.n)

    def act(self) -> Tensor:
        t: CartPoleSwingUp = self.task  # type: ignore[assignment]
        x, xd, th, thd = t.x, t.xd, t.th, t.thd
        c = torch.cos(th)
        energy = 0.5 * thd**2 + (G / L) * (c - 1.0)
        # dE/dt = -thd cos(th) xdd / L: pumping along -thd cos(th) raises E toward 0 (upright).
        pump = (-self.K_ENERGY * (0.0 - energy) * thd * c).clamp(-self.A_SWING, self.A_SWING)
        swing = pump - self.K_CENTER[0] * x - self.K_CENTER[1] * xd
        kick = (thd.abs() < 0.6) & (c < -0.95)  # hanging almost at rest: the mode picks the way
        swing = torch.where(kick, self.mode * self.A_SWING, swing)
        state = torch.stack([x, xd, th, thd], -1)
        catch = -(state @ self.k)
        near_top = (c > math.cos(0.6)) & (thd.abs() < 4.0)
        acc = torch.where(near_top, catch, swing).clamp(-self.A_MAX, self.A_MAX)
        force = force_for_accel(xd, th, thd, acc)
        return (force / F_MAX).clamp(-1.0, 1.0)[:, None]
