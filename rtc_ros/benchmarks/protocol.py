"""The authors' simulated-delay protocol, batched: which actions execute when.

Each cycle, at controller step ``t`` with observation ``o_t``:

1. a new chunk ``N`` is generated from ``o_t`` (index 0 = step ``t``), guided (RTC), selected (BID)
   or not (naive, TE) toward the previous chunk's remaining actions ``P`` (index 0 = step ``t``);
2. the environment executes ``P[0 .. d-1]`` (the inference delay: the new chunk is not ready yet)
   and then ``N[d .. s-1]``;
3. the next prefix is ``N[s:]``, padded to ``H`` by holding the last real action
   (:func:`rtc_ros.core.prefix.build_prefix` with ``consumed = s``).

Feasibility: ``d <= s <= H - d`` (the next cycle executes ``N[s .. s+d-1]``). The first prefix is a
plain chunk from ``o_0``. Temporal ensembling (``ensemble=True``) uses the same cycle but executes,
at each step, the average of all chunks that have *arrived* (``d`` steps after their observation)
and cover that step (:class:`rtc_ros.core.ensemble.TemporalEnsembler`).

Action noise (Gaussian, ``noise_std`` in [-1, 1] units) is added to every executed action before the
environment clips it; initial states, action noise and flow noise come from generators seeded by
``seed`` only, so all methods run with the same number of environments ``B`` see the same episodes and the
same action noise per environment and step (draws are ``(B, ...)`` blocks: runs with another ``B``, such as
BID's smaller ones, get other initial states and noise and are not paired with them). Environments
that are done stop costing model calls (the batch is compacted to the running ones).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from rtc_ros.core.ensemble import TemporalEnsembler
from rtc_ros.core.stats import wilson_interval  # re-exported (the one implementation)
from rtc_ros.core.prefix import build_prefix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DelayConfig:
    """One point of the sweep: chunk horizon ``H``, inference delay ``d``, execution horizon ``s``.

    Raises:
        ValueError: unless ``H >= 1``, ``d >= 0``, ``s >= 1`` and ``d <= s <= H - d``.
    """

    horizon: int
    d: int
    s: int

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.d < 0:
            raise ValueError(f"d (inference delay) must be >= 0, got {self.d}")
        if self.s < 1:
            raise ValueError(f"s (execution horizon) must be >= 1, got {self.s}")
        if not self.d <= self.s <= self.horizon - self.d:
            raise ValueError(
                f"need d <= s <= H - d, got d={self.d}, s={self.s}, H={self.horizon} "
                f"(s must cover the delay, and the next cycle executes s..s+d-1 of this chunk)"
            )


def executed_actions(prev: torch.Tensor, new: torch.Tensor, d: int, s: int) -> torch.Tensor:
    """Actions executed this cycle: ``prev[:, :d]`` then ``new[:, d:s]`` -> ``(B, s, M)``."""
    if prev.shape != new.shape or prev.ndim != 3:
        raise ValueError(f"prev and new must both be (B, H, M), got {tuple(prev.shape)} and {tuple(new.shape)}")
    return torch.cat([prev[:, :d], new[:, d:s]], dim=1)


class StepEnv(Protocol):
    """What the protocol needs from a batched environment (see ``tasks.base.BatchedTask``)."""

    n: int
    done: torch.Tensor
    success: torch.Tensor
    length: torch.Tensor

    def reset(self, gen: torch.Generator) -> torch.Tensor: ...
    def step(self, action: torch.Tensor) -> torch.Tensor: ...
    @property
    def all_done(self) -> bool: ...


#: ``source(obs (b,O), prev (b,H,M) with index 0 = now, noise (b,H,M)) -> new chunk (b,H,M)``
ChunkSource = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class RolloutResult:
    """Outcome of one batched rollout.

    Attributes:
        success: ``(B,)`` bool. length: ``(B,)`` steps each env ran. model_calls: cycles run.
        env_rows: sum over cycles of running envs (the batch the model saw). wall_s: seconds.
        executed: ``(T, B, M)`` noise-free executed actions when ``record`` (else None).
        prefixes: list of the ``prev`` tensors handed to the source each cycle when ``record``.
    """

    success: torch.Tensor
    length: torch.Tensor
    model_calls: int
    env_rows: int
    wall_s: float
    executed: torch.Tensor | None = None
    prefixes: list[torch.Tensor] = field(default_factory=list)

    @property
    def solve_rate(self) -> float:
        return float(self.success.float().mean())


def run_delayed(
    env: StepEnv,
    source: ChunkSource,
    initial: ChunkSource,
    cfg: DelayConfig,
    action_dim: int,
    seed: int,
    noise_std: float,
    ensemble: bool = False,
    record: bool = False,
    max_cycles: int | None = None,
) -> RolloutResult:
    """Roll out ``env`` (all envs at once) under the simulated-delay protocol.

    Args:
        env: batched environment; reset here with ``seed``.
        source: the method's chunk function (called every cycle on the running envs).
        initial: plain chunk function for the very first prefix (``prev`` argument is unused).
        cfg: ``(H, d, s)``.
        action_dim: ``M``.
        seed: seeds initial states, action noise and flow noise.
        noise_std: evaluation action-noise std (in [-1, 1] action units).
        ensemble: temporal ensembling instead of switching chunks.
        record: keep the executed actions and the prefixes (for tests).
        max_cycles: safety stop (default: enough for every env to time out).

    Returns:
        :class:`RolloutResult`.
    """
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    H, d, s = cfg.horizon, cfg.d, cfg.s
    B, M = env.n, action_dim
    t0 = time.perf_counter()
    obs = env.reset(torch.Generator().manual_seed(seed))
    act_gen = torch.Generator().manual_seed(seed + 1)
    flow_gen = torch.Generator().manual_seed(seed + 2)

    def flow_noise() -> torch.Tensor:
        return torch.randn((B, H, M), generator=flow_gen)

    prev = initial(obs, torch.zeros(B, H, M), flow_noise()).float()
    ens = TemporalEnsembler(H, max_chunks=H + 1) if ensemble else None  # + the initial chunk
    if ens is not None:
        ens.add(prev.numpy(), start_step=0)
    t = 0
    calls = rows = 0
    executed: list[torch.Tensor] = []
    prefixes: list[torch.Tensor] = []
    limit = max_cycles if max_cycles is not None else 100_000
    while not env.all_done and calls < limit:
        running = (~env.done).nonzero(as_tuple=True)[0]
        noise = flow_noise()
        new = prev.clone()
        if record:
            prefixes.append(prev.clone())
        new[running] = source(obs[running], prev[running], noise[running]).float()
        calls += 1
        rows += int(running.numel())
        cycle_start = t
        if ens is None:
            cycle_actions = executed_actions(prev, new, d, s)
        for j in range(s):
            if ens is not None:
                if j == d:  # the new chunk (observation at cycle_start) arrives at cycle_start + d
                    ens.add(new.numpy(), start_step=cycle_start)
                avg = ens.action(t)
                if avg is None:  # cannot happen when d <= s <= H - d
                    raise RuntimeError(f"no chunk covers step {t}")
                a = torch.from_numpy(avg).float()
            else:
                a = cycle_actions[:, j]
            if record:
                executed.append(a.clone())
            obs = env.step(a + noise_std * torch.randn((B, M), generator=act_gen))
            t += 1
            if env.all_done:
                break
        if ens is not None and s == d:
            ens.add(new.numpy(), start_step=cycle_start)  # arrives exactly at the next cycle's first step
        # next prefix: new[s:], re-indexed so index 0 = the next cycle's observation step; with
        # s = H (only possible at d = 0) nothing is left and its weights are all zero anyway
        prev = build_prefix(new, min(s, H - 1))
    return RolloutResult(
        success=env.success.clone(), length=env.length.clone(), model_calls=calls, env_rows=rows,
        wall_s=time.perf_counter() - t0, executed=torch.stack(executed) if record and executed else None,
        prefixes=prefixes,
    )


def pooled_wilson(rates: list[float], n: int) -> tuple[float, float]:
    """Wilson interval of the mean of several equal-size binomial rates (pooled counts)."""
    k = int(round(sum(r * n for r in rates)))
    return wilson_interval(k, n * len(rates))


__all__ = ["DelayConfig", "executed_actions", "run_delayed", "RolloutResult", "wilson_interval", "pooled_wilson",
           "ChunkSource", "StepEnv"]
