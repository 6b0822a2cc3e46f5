"""Ball on a beam: roll the ball into the left or the right cup and stop it there (balancing; torque
control; left cup or right cup).

A beam of half-length ``HALF`` pivots at its centre; torque ``TAU_MAX * a`` drives its angle ``al``
(inertia ``I_BEAM``, viscous friction ``B_BEAM``); a ball rolls on it with acceleration
``(5/7) G sin(al)`` (a rolling solid sphere) and falls off past ``|x| > HALF`` (failure). Success:
the ball rests in a cup (``|x -+ CUP| < CUP_HALF``, ``|xd| < 0.3``) for ``HOLD_STEPS`` steps. The
expert picks a cup at random (its mode) and runs a cascade: ball PD -> beam angle -> beam PD. The
time limit (130 steps) is about 1.75 times the expert's own mean episode length (74 steps), chosen
with the expert alone: rolling the ball back to the other cup late does not fit in it.
"""

from __future__ import annotations

import torch

from rtc_ros.benchmarks.tasks.base import BatchedTask, Expert, TaskSpec, Tensor, random_sign, sel, uniform

G, I_BEAM, B_BEAM, TAU_MAX = 9.81, 1.0, 1.0, 6.0
HALF, CUP, CUP_HALF, HOLD_STEPS = 2.0, 1.4, 0.25, 10
ROLL = 5.0 / 7.0
AL_MAX = 0.35
SUBSTEPS = 2


class Beam(BatchedTask):
    spec = TaskSpec(
        name="beam", obs_dim=4, act_dim=1, max_steps=130, dt=0.04,
        kind="balancing", modes="roll the ball into the left or the right cup",
    )

    def _reset_state(self, gen: torch.Generator) -> None:
        n = self.n
        self.x = uniform(gen, n, -0.2, 0.2)
        self.xd = uniform(gen, n, -0.1, 0.1)
        self.al = uniform(gen, n, -0.05, 0.05)
        self.ald = torch.zeros(n)
        self.hold = torch.zeros(n, dtype=torch.long)

    def _advance(self, action: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
        x, xd, al, ald = self.x, self.xd, self.al, self.ald
        h = self.spec.dt / SUBSTEPS
        for _ in range(SUBSTEPS):
            ald = ald + h * (TAU_MAX * action[:, 0] - B_BEAM * ald) / I_BEAM
            xd = xd + h * ROLL * G * torch.sin(al)
            al, x = al + h * ald, x + h * xd
        for name, new in (("x", x), ("xd", xd), ("al", al), ("ald", ald)):
            setattr(self, name, sel(active, new, getattr(self, name)))
        rest = ((self.x.abs() - CUP).abs() < CUP_HALF) & (self.xd.abs() < 0.3)
        self.hold = torch.where(active, torch.where(rest, self.hold + 1, 0), self.hold)
        return self.hold >= HOLD_STEPS, self.x.abs() > HALF

    def observe(self) -> Tensor:
        return torch.stack([self.x, self.xd, self.al, self.ald], -1).float()


class BeamExpert(Expert):
    """Cascade: ball PD toward the cup (position error clipped) -> beam angle -> beam PD."""

    K_X, K_XD, K_AL, K_ALD, X_CLIP = 1.2, 1.8, 15.0, 6.0, 1.0

    def reset(self, gen: torch.Generator) -> None:
        self.side = random_sign(gen, self.task.n)

    def switch_mode(self, mask: Tensor) -> None:
        """Other mode: the other cup."""
        self.side = torch.where(mask, -self.side, self.side)

    def act(self) -> Tensor:
        t: Beam = self.task  # type: ignore[assignment]
        err = (self.side * CUP - t.x).clamp(-self.X_CLIP, self.X_CLIP)
        acc = self.K_X * err - self.K_XD * t.xd
        al_des = torch.asin((acc / (ROLL * G)).clamp(-0.99, 0.99)).clamp(-AL_MAX, AL_MAX)
        tau = I_BEAM * (self.K_AL * (al_des - t.al) - self.K_ALD * t.ald) + B_BEAM * t.ald
        return (tau / TAU_MAX).clamp(-1.0, 1.0)[:, None]
