"""A small flow policy that lives outside rtc_ros.

The model follows rtc_ros's policy interface (``rtc_ros.policies.base.FlowPolicy``): ``encode(obs)``
runs once per chunk (here an MLP over the flat normalised observation), ``velocity(a_tau, context,
tau)`` once per denoising step (an MLP over the flattened chunk, the context and the flow time; tau:
0 = noise, 1 = data). ``make_policy(config)`` is the factory a spec's ``model:`` names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rtc_ros.policies.base import FlowPolicy


@dataclass(frozen=True)
class ExampleConfig:
    """Sizes: H (horizon), M (action_dim), O (obs_dim), hidden width."""

    horizon: int
    action_dim: int
    obs_dim: int
    hidden: int = 128

    def __post_init__(self) -> None:
        for name in ("horizon", "action_dim", "obs_dim", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


class ExampleFlowPolicy(FlowPolicy):
    """``encode: (B, O) -> (B, hidden)``; ``velocity: (B, H, M), (B, hidden), (B,) -> (B, H, M)``."""

    def __init__(self, config: ExampleConfig) -> None:
        super().__init__()
        self.config = config
        self.horizon, self.action_dim, self.obs_dim = config.horizon, config.action_dim, config.obs_dim
        hid = config.hidden
        self.obs_net = nn.Sequential(nn.Linear(config.obs_dim, hid), nn.GELU(), nn.Linear(hid, hid))
        self.net = nn.Sequential(nn.Linear(config.horizon * config.action_dim + hid + 1, hid), nn.GELU(),
                                 nn.Linear(hid, hid), nn.GELU(), nn.Linear(hid, config.horizon * config.action_dim))

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return self.obs_net(obs)

    def velocity(self, a_tau: torch.Tensor, context: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        x = torch.cat([a_tau.flatten(1), context, tau[:, None].to(a_tau.dtype)], dim=1)
        return self.net(x).view(-1, self.horizon, self.action_dim)


def make_policy(config: dict) -> ExampleFlowPolicy:
    """The plugin factory: ``config`` is the spec's ``config`` mapping."""
    return ExampleFlowPolicy(ExampleConfig(**config))
