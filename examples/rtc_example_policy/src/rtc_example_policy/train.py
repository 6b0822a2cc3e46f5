"""Train the example policy on rtc_ros's bimodal toy task and write its spec:
``python -m rtc_example_policy.train --out DIR [--steps N]`` (about a minute on 2 CPU cores)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rtc_example_policy.policy import ExampleConfig, ExampleFlowPolicy
from rtc_ros.policies.spec import save_policy
from rtc_ros.policies.toy import HORIZON, make_dataset
from rtc_ros.policies.train import TrainConfig, train_flow_policy


def train(out: str | Path, steps: int = 1500, seed: int = 0) -> Path:
    """Train and save; returns the spec path (its ``model:`` is this package's import path)."""
    torch.manual_seed(seed)
    obs, actions = make_dataset(20000, seed)
    model = ExampleFlowPolicy(ExampleConfig(horizon=HORIZON, action_dim=2, obs_dim=2))
    result = train_flow_policy(model, obs, actions, TrainConfig(steps=steps, batch_size=256, lr=2e-3, seed=seed))
    return save_policy(out, "example_toy", model, result.normalizer, obs_spec=[{"name": "position", "shape": [2]}],
                       model_type="rtc_example_policy.policy:make_policy",
                       extra={"dt": 0.02, "joint_names": ["toy_x", "toy_y"]})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    a = ap.parse_args(argv)
    print(train(a.out, a.steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
