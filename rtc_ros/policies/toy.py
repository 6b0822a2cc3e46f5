"""A tiny bimodal task for tests and the interim demo.

Observation: the current 2-D position ``p``. Expert chunk (H = 8): ``a_i = p + m v (i + 1) u`` with
the mode ``m`` in {-1, +1} drawn 50/50 per chunk, ``v = 0.25`` and ``u = (1, 0.5)``, plus small
noise. Both modes are equally good, so a policy that re-draws its mode every chunk jerks back and
forth; RTC should keep the executing chunk's mode.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from rtc_ros.policies.mixer import MixerConfig, MLPMixerPolicy
from rtc_ros.policies.spec import save_policy
from rtc_ros.policies.train import TrainConfig, train_flow_policy, training_spec

HORIZON = 8
SPEED = 0.25
DIRECTION = np.array([1.0, 0.5])


def expert_chunk(p: np.ndarray, mode: np.ndarray, rng: np.random.Generator, noise: float = 0.005) -> np.ndarray:
    """``p (N, 2)``, ``mode (N,)`` in {-1, +1} -> chunks ``(N, H, 2)``."""
    steps = np.arange(1, HORIZON + 1)[None, :, None]
    a = p[:, None, :] + mode[:, None, None] * SPEED * steps * DIRECTION[None, None, :]
    return a + noise * rng.standard_normal(a.shape)


def make_dataset(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``obs (n, 2)``, ``actions (n, H, 2)``."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(-0.5, 0.5, size=(n, 2))
    mode = rng.choice([-1.0, 1.0], size=n)
    return p.astype(np.float32), expert_chunk(p, mode, rng).astype(np.float32)


def chunk_mode(chunk: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Mode (+1/-1) of chunks ``(N, H, 2)`` given their start positions ``(N, 2)``."""
    return np.sign((chunk[:, -1, 0] - p[:, 0]))


def toy_config(width: int = 64, depth: int = 2) -> MixerConfig:
    return MixerConfig(horizon=HORIZON, action_dim=2, obs_dim=2, width=width, depth=depth,
                       token_hidden=32, channel_hidden=128, time_dim=32)


def train_toy_diffusion_policy(out_dir: str | Path, steps: int = 1000, seed: int = 0,
                               prediction_type: str = "epsilon", batch_size: int = 128) -> Path:
    """Train a DDPM (epsilon loss, 100-step cosine schedule) toy policy, flow-converted at inference
    (:mod:`rtc_ros.policies.diffusion`); save it as a spec (``model:`` its plugin factory); return the path."""
    import torch

    from rtc_ros.policies.diffusion import (DIFFUSION_MIXER_MODEL, DiffusionMixerConfig, DiffusionMixerPolicy,
                                           train_diffusion_policy)

    torch.manual_seed(seed)
    obs, actions = make_dataset(20000, seed)
    cfg = DiffusionMixerConfig(**{**asdict(toy_config()), "prediction_type": prediction_type})
    model = DiffusionMixerPolicy(cfg)
    norm, losses = train_diffusion_policy(model, obs, actions, steps=steps, batch_size=batch_size, lr=2e-3,
                                          seed=seed)
    return save_policy(out_dir, "toy_bimodal_diffusion", model, norm, obs_spec=[{"name": "position", "shape": [2]}],
                       extra={"final_loss": float(np.mean(losses[-100:]))}, model_type=DIFFUSION_MIXER_MODEL)


def train_toy_policy(out_dir: str | Path, steps: int = 1500, seed: int = 0, progress: bool = False,
                     prefix_conditioning: int = 0, name: str = "toy_bimodal", width: int = 64, depth: int = 2,
                     n_samples: int = 20000) -> Path:
    """Train the toy flow policy and save it as safetensors + spec; return the spec path.
    ``prefix_conditioning = D > 0``: training-time RTC (prefixes ``d <= D``; method ``rtc_trained``)."""
    import torch

    torch.manual_seed(seed)
    obs, actions = make_dataset(n_samples, seed)
    model = MLPMixerPolicy(toy_config(width, depth))
    cfg = TrainConfig(steps=steps, batch_size=256, lr=2e-3, seed=seed, progress=progress,
                      prefix_conditioning=prefix_conditioning)
    result = train_flow_policy(model, obs, actions, cfg)
    return save_policy(out_dir, name, model, result.normalizer, obs_spec=[{"name": "position", "shape": [2]}],
                       extra={"final_loss": float(np.mean(result.losses[-100:])), **training_spec(cfg)})
