"""Shared fixtures: an isolated DDS domain per test, node subprocesses, a small 14-joint policy."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from rtc_ros.experiments.runner import NodeProcess

REPO = Path(__file__).resolve().parents[1]

# test/lerobot/ is its own tier (`make test-lerobot`, in .venv-lerobot): never collected here unless
# lerobot is importable in this interpreter.
import importlib.util  # noqa: E402

_lerobot = importlib.util.find_spec("lerobot")  # (test/ is on sys.path: test/lerobot is a namespace spec)
collect_ignore = [] if _lerobot is not None and _lerobot.origin is not None else ["lerobot"]


# Each test gets a DDS domain of its own (no two tests of a run share one), so a node that outlives
# its test, or one started by another test, can never talk to the next test's nodes.
_DOMAINS = random.SystemRandom().sample(range(1, 101), 100)


def fresh_domain() -> int:
    """A ROS_DOMAIN_ID no other test of this run has had (random once the 100 are used up)."""
    return _DOMAINS.pop() if _DOMAINS else random.SystemRandom().randint(1, 100)


@pytest.fixture
def ros_env() -> dict[str, str]:
    """Environment for ROS processes of this test: own random domain, localhost only, 1 thread.

    Also applied to this process (call before ``rclpy.init`` in a test)."""
    domain = fresh_domain()
    env = {
        "ROS_DOMAIN_ID": str(domain),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "RCUTILS_LOGGING_BUFFERED_STREAM": "0",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    full = dict(os.environ)
    full["PYTHONPATH"] = os.pathsep.join([str(REPO), full.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return full


@pytest.fixture
def start_node(ros_env, tmp_path):
    """``start_node(module, *ros_args) -> NodeProcess``; all are stopped (SIGINT) after the test."""
    procs: list[NodeProcess] = []

    def start(module: str, *ros_args: str, env: dict[str, str] | None = None) -> NodeProcess:
        p = NodeProcess(module, list(ros_args), env or ros_env, tmp_path / f"{module.rsplit('.', 1)[-1]}_{len(procs)}.log")
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


def make_small_policy(out_dir: Path, horizon: int = 50, joints: int = 14, image: tuple[int, int] | None = None,
                      width: int = 32, seed: int = 0, frames: int = 1, joint_rows: int = 1) -> Path:
    """A random-init (non-zero output) MLP-Mixer flow policy for plumbing tests; returns the spec path.

    Actions: ~0.1 rad around 0. obs_spec: joint positions, plus an ``(h, w, 3)`` image named ``cam``
    (``frames > 1``: a ``[frames, h, w, 3]`` stack of its newest frames); ``joint_rows > 1``: a joint history
    ``[joint_rows, joints]`` (newest first, ``dt`` apart).
    """
    import numpy as np
    import torch

    from rtc_ros.policies.base import Normalizer
    from rtc_ros.policies.mixer import MixerConfig, MLPMixerPolicy
    from rtc_ros.policies.spec import save_policy

    torch.manual_seed(seed)
    obs_spec = [{"name": "joint_positions", "shape": [joint_rows, joints] if joint_rows > 1 else [joints]}]
    obs_dim = joint_rows * joints
    if image is not None:
        shape = [image[0], image[1], 3]
        obs_spec.append({"name": "cam", "shape": [frames, *shape] if frames > 1 else shape})
        obs_dim += frames * image[0] * image[1] * 3
    cfg = MixerConfig(horizon=horizon, action_dim=joints, obs_dim=obs_dim, width=width, depth=1, token_hidden=32,
                      channel_hidden=64, time_dim=16)
    model = MLPMixerPolicy(cfg)
    with torch.no_grad():  # untrained Mixers output zero velocity; make it non-zero so chunks differ
        torch.nn.init.normal_(model.out.weight, std=0.3)
        for mod in model.modules():
            if mod.__class__.__name__ == "_AdaLN":
                torch.nn.init.normal_(mod.mod.weight, std=0.05)
    norm = Normalizer(np.zeros(obs_dim), np.ones(obs_dim), np.zeros(joints), np.full(joints, 0.1))
    return save_policy(out_dir, "small", model, norm, obs_spec=obs_spec, extra={"dt": 0.02})


@pytest.fixture(scope="session")
def small_policy(tmp_path_factory) -> Path:
    """Spec path of a 14-joint, H = 50 random-init policy (joint positions only)."""
    return make_small_policy(tmp_path_factory.mktemp("policy"))


@pytest.fixture(scope="session")
def small_policy_cam(tmp_path_factory) -> Path:
    """Like :func:`small_policy` plus one 32x32 RGB camera named ``cam``."""
    return make_small_policy(tmp_path_factory.mktemp("policy_cam"), image=(32, 32))
