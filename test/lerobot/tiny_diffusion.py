"""Build a tiny random LeRobot Diffusion Policy offline: a ``pretrained_model`` directory (config, safetensors,
processor statistics) as LeRobot saves it. ResNet-18 from torchvision without weights (nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import torch

STATE_DIM, ACTION_DIM = 6, 6
IMG = 32
CAMERA = "front"


def diffusion_config(n_obs_steps: int = 2, horizon: int = 8, steps: int | None = None, prediction: str = "epsilon",
                     clip: bool = True):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig

    return DiffusionConfig(
        device="cpu", n_obs_steps=n_obs_steps, horizon=horizon, n_action_steps=min(4, horizon - n_obs_steps + 1),
        down_dims=(16, 32), kernel_size=3, n_groups=8, diffusion_step_embed_dim=16, spatial_softmax_num_keypoints=8,
        num_inference_steps=steps, prediction_type=prediction, clip_sample=clip, input_features={
            "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(STATE_DIM,)),
            f"observation.images.{CAMERA}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, IMG, IMG))},
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(ACTION_DIM,))})


def write_tiny_diffusion(directory: Path, seed: int = 0, **config) -> Path:
    """``directory/pretrained_model``: a random Diffusion Policy and its processors with random statistics
    (min-max for the state and the actions, as LeRobot's defaults normalise them)."""
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    from lerobot.policies.diffusion.processor_diffusion import make_diffusion_pre_post_processors

    cfg = diffusion_config(**config)
    torch.manual_seed(seed)
    policy = DiffusionPolicy(cfg)
    g = torch.Generator().manual_seed(seed + 1)
    lo_s, lo_a = torch.randn(STATE_DIM, generator=g), torch.randn(ACTION_DIM, generator=g)
    stats = {
        "observation.state": {"min": lo_s, "max": lo_s + 0.5 + torch.rand(STATE_DIM, generator=g)},
        "action": {"min": lo_a, "max": lo_a + 0.5 + torch.rand(ACTION_DIM, generator=g)},
        f"observation.images.{CAMERA}": {"mean": torch.full((3, 1, 1), 0.5), "std": torch.full((3, 1, 1), 0.25)},
    }
    pre, post = make_diffusion_pre_post_processors(cfg, dataset_stats=stats)
    out = directory / "pretrained_model"
    policy.save_pretrained(out)
    pre.save_pretrained(out)
    post.save_pretrained(out)
    return out
