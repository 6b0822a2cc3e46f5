"""LeRobot tier (``make test-lerobot``, in .venv-lerobot): a tiny random SmolVLA, Diffusion Policy and GR00T built
offline."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may come from the hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# GR00T's Eagle backbone is built from LeRobot's cache (HF_LEROBOT_HOME, read when lerobot is imported) and
# trust_remote_code copies modules under HF_HOME: both in a scratch directory, never the user's caches
_SCRATCH = tempfile.mkdtemp(prefix="rtc_ros_lerobot_")
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ["HF_LEROBOT_HOME"] = os.path.join(_SCRATCH, "lerobot")
os.environ["HF_HOME"] = os.path.join(_SCRATCH, "hf")
sys.path.insert(0, str(Path(__file__).resolve().parent))

pytest.importorskip("lerobot", reason="lerobot is not installed (scripts/setup_lerobot_venv.sh)")


def _tiny(factory: pytest.TempPathFactory, name: str, write: str, spec: str) -> Path:
    """Write the tiny model with ``<module>.<function>`` ``write`` (from this folder) into a fresh directory and
    a spec YAML ``spec`` beside it; returns the spec's path."""
    import importlib

    import torch

    torch.set_num_threads(1)
    module, function = write.split(".")
    root = factory.mktemp(name)
    getattr(importlib.import_module(module), function)(root)
    path = root / f"tiny_{name}.yaml"
    path.write_text(spec)
    return path


@pytest.fixture(scope="session")
def tiny_smolvla(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spec YAML pointing at a freshly written tiny random SmolVLA ``pretrained_model`` directory."""
    return _tiny(tmp_path_factory, "smolvla", "tiny_smolvla.write_tiny_smolvla",
                 "name: tiny_smolvla\nmodel: lerobot_smolvla\npretrained_path: pretrained_model\n"
                 "task: pick up the cube\nn_steps: 5\n")


@pytest.fixture(scope="session")
def tiny_diffusion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spec YAML pointing at a freshly written tiny random LeRobot Diffusion Policy (n_obs_steps 2,
    horizon 8, epsilon prediction, clip_sample: LeRobot's defaults but the sizes)."""
    return _tiny(tmp_path_factory, "diffusion", "tiny_diffusion.write_tiny_diffusion",
                 "name: tiny_diffusion\nmodel: lerobot_diffusion\npretrained_path: pretrained_model\nn_steps: 5\n"
                 "dt: 0.02\n")


@pytest.fixture(scope="session")
def tiny_groot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spec YAML pointing at a freshly written tiny random LeRobot GR00T N1.5 (its base model beside it, the
    Eagle assets in the scratch HF_LEROBOT_HOME; 16 actions of 6 joints padded to 32, 4 flow steps)."""
    return _tiny(tmp_path_factory, "groot", "tiny_groot.write_tiny_groot",
                 "name: tiny_groot\nmodel: lerobot_groot\npretrained_path: pretrained_model\ntask: pick up the cube\n")
