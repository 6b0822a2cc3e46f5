"""LeRobot tier (``make test-lerobot``, in .venv-lerobot): a tiny random SmolVLA and Diffusion Policy built offline."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may come from the hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

pytest.importorskip("lerobot", reason="lerobot is not installed (scripts/setup_lerobot_venv.sh)")


@pytest.fixture(scope="session")
def tiny_smolvla(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spec YAML pointing at a freshly written tiny random SmolVLA ``pretrained_model`` directory."""
    import torch
    from tiny_smolvla import write_tiny_smolvla

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("smolvla")
    write_tiny_smolvla(root, chunk=10, steps=5)
    spec = root / "tiny_smolvla.yaml"
    spec.write_text("name: tiny_smolvla\nmodel: lerobot_smolvla\npretrained_path: pretrained_model\n"
                    "task: pick up the cube\nn_steps: 5\n")
    return spec


@pytest.fixture(scope="session")
def tiny_diffusion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spec YAML pointing at a freshly written tiny random LeRobot Diffusion Policy (n_obs_steps 2,
    horizon 8, epsilon prediction, clip_sample: LeRobot's defaults but the sizes)."""
    import torch
    from tiny_diffusion import write_tiny_diffusion

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("diffusion")
    write_tiny_diffusion(root)
    spec = root / "tiny_diffusion.yaml"
    spec.write_text("name: tiny_diffusion\nmodel: lerobot_diffusion\npretrained_path: pretrained_model\nn_steps: 5\n"
                    "dt: 0.02\n")
    return spec
