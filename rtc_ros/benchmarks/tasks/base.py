"""Batched simulated tasks for the simulated-delay benchmark (the paper's Figure 5).

Every task is a batch of ``n`` independent environments stepped together in torch (CPU is fine:
each step is a few dozen element-wise ops on ``(n,)`` tensors). Conventions shared by all tasks:

* Actions are ``(n, M)`` in ``[-1, 1]`` (force, torque or thrust commands -- never positions);
  :meth:`BatchedTask.step` clips them. Evaluation noise is added by the harness *before* the clip.
* Observations are ``(n, O)`` float32, Markov enough for a policy (the expert's mode is hidden).
* An episode ends (``done``) on success, on failure, or at ``spec.max_steps``; ``success`` is the
  binary outcome. Once ``done``, an environment is frozen: later actions change nothing.
* Randomness comes only from the ``torch.Generator`` passed to :meth:`reset` (initial states) and
  :meth:`Expert.reset` (mode choices), so equal seeds give equal episodes.

A harness needs nothing beyond ``reset / step / observe / done / success / spec``; an adapter
exposing the same attributes around a GPU-batched simulator (e.g. Kinetix) plugs in unchanged.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

Tensor = torch.Tensor


@dataclass(frozen=True)
class TaskSpec:
    """Static description of a task.

    Attributes:
        name: registry key.
        obs_dim: O. act_dim: M. max_steps: episode limit in control steps. dt: control period [s].
        kind: which of the paper's kinds of dynamics it covers (throwing, catching, ...).
        modes: short description of the expert's modes (what makes it multimodal).
    """

    name: str
    obs_dim: int
    act_dim: int
    max_steps: int
    dt: float
    kind: str
    modes: str

    def __post_init__(self) -> None:
        if self.obs_dim < 1 or self.act_dim < 1:
            raise ValueError(f"TaskSpec {self.name}: obs_dim and act_dim must be >= 1")
        if not 1 <= self.max_steps <= 10_000:
            raise ValueError(f"TaskSpec {self.name}: max_steps must be in [1, 10000], got {self.max_steps}")
        if not self.dt > 0:
            raise ValueError(f"TaskSpec {self.name}: dt must be > 0, got {self.dt}")


class BatchedTask(ABC):
    """A batch of ``n_envs`` environments of one task (see module docstring)."""

    spec: TaskSpec

    def __init__(self, n_envs: int) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        self.n = int(n_envs)
        self.t = 0
        self.done = torch.zeros(self.n, dtype=torch.bool)
        self.success = torch.zeros(self.n, dtype=torch.bool)
        self.length = torch.zeros(self.n, dtype=torch.long)

    # -- subclass hooks -------------------------------------------------------------------------
    @abstractmethod
    def _reset_state(self, gen: torch.Generator) -> None:
        """Sample initial states for all envs."""

    @abstractmethod
    def _advance(self, action: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
        """Advance active envs by one control step with clipped ``action (n, M)``.

        Returns ``(succeeded (n,), failed (n,))`` events of this step (only meaningful where
        ``active``); inactive envs must be left unchanged.
        """

    @abstractmethod
    def observe(self) -> Tensor:
        """Current observation ``(n, O)`` float32."""

    # -- public API -----------------------------------------------------------------------------
    def reset(self, gen: torch.Generator) -> Tensor:
        """Reset all envs from ``gen``; returns the first observation ``(n, O)``."""
        self.t = 0
        self.done = torch.zeros(self.n, dtype=torch.bool)
        self.success = torch.zeros(self.n, dtype=torch.bool)
        self.length = torch.zeros(self.n, dtype=torch.long)
        self._reset_state(gen)
        return self.observe()

    def step(self, action: Tensor) -> Tensor:
        """Apply ``action (n, M)`` (clipped to [-1, 1]) to the envs not yet done; returns obs."""
        if action.shape != (self.n, self.spec.act_dim):
            raise ValueError(f"{self.spec.name}: action must be ({self.n}, {self.spec.act_dim}), got {tuple(action.shape)}")
        action = torch.nan_to_num(action.to(torch.float32), nan=0.0).clamp(-1.0, 1.0)
        active = ~self.done
        succeeded, failed = self._advance(action, active)
        self.t += 1
        self.length = self.length + active.long()
        succeeded = succeeded & active
        self.success = self.success | succeeded
        timeout = torch.full_like(self.done, self.t >= self.spec.max_steps)
        self.done = self.done | (active & (succeeded | failed | timeout))
        return self.observe()

    @property
    def all_done(self) -> bool:
        return bool(self.done.all())


class Expert(ABC):
    """Scripted/analytic controller with per-env randomised modes (privileged access to state)."""

    def __init__(self, task: BatchedTask) -> None:
        self.task = task

    @abstractmethod
    def reset(self, gen: torch.Generator) -> None:
        """Sample each env's mode (call after ``task.reset``)."""

    @abstractmethod
    def act(self) -> Tensor:
        """Action ``(n, M)`` in [-1, 1] for the task's current state."""


def sel(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """``torch.where`` that broadcasts a ``(n,)`` mask over trailing dims."""
    while mask.ndim < new.ndim:
        mask = mask.unsqueeze(-1)
    return torch.where(mask, new, old)


def uniform(gen: torch.Generator, n: int, lo: float, hi: float) -> Tensor:
    """``(n,)`` samples from U(lo, hi)."""
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def random_sign(gen: torch.Generator, n: int) -> Tensor:
    """``(n,)`` of +-1 with equal probability."""
    return torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)


def wrap_angle(x: Tensor) -> Tensor:
    """Wrap to [-pi, pi)."""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi
