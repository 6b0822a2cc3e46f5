"""Per-task base policies for the delay benchmark: expert demonstrations -> MLP-Mixer flow policy.

For each task: roll out the scripted expert with evaluation noise on (so the data covers the
states the closed loop visits), cut the expert's clean commands into chunks of ``H`` (padding past
the episode end by holding the last action), train the paper's MLP-Mixer with conditional flow
matching (:func:`rtc_ros.policies.train.train_flow_policy`) and keep an early checkpoint as BID's weak
policy. Both are written as safetensors + YAML spec (:func:`rtc_ros.policies.spec.save_policy`), so
they load like any other base policy; they are cached in a directory named by
:meth:`PolicyRecipe.key` (the recipe plus the source of the task, its expert, the model and its
training), so they are reused until any of those changes.

Training-time RTC (method ``rtc_trained``) needs its own policy: the same demonstrations, model and
training settings plus prefix conditioning up to the sweep's largest delay
(:func:`get_trained_rtc_policy`; ``TrainConfig.prefix_conditioning``), cached next to the base policy
as ``<task>_prefix<D>.yaml``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterable

import numpy as np
import torch

from rtc_ros.benchmarks.tasks import EVAL_NOISE_STD, TASKS, check_task, run_expert
from rtc_ros.benchmarks.tasks.base import BatchedTask
from rtc_ros.policies import base as policy_base
from rtc_ros.policies import mixer as policy_mixer
from rtc_ros.policies import train as policy_train
from rtc_ros.policies.mixer import MixerConfig, MLPMixerPolicy
from rtc_ros.policies.spec import LoadedPolicy, load_policy, save_policy
from rtc_ros.policies.train import TrainConfig, train_flow_policy, training_spec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyRecipe:
    """How a benchmark policy is made (hashed into the cache key).

    Attributes:
        horizon: H. width, depth, token_hidden, channel_hidden, time_dim: MLP-Mixer sizes (shrunk
        from the paper's for a 2-core CPU). demo_envs: expert episodes. train_steps, batch_size, lr:
        optimiser. weak_fraction: BID's weak policy is the checkpoint at this fraction of training
        (the paper: epoch 8 of 32 = 0.25). seed: data and training seed.
    """

    horizon: int = 8
    width: int = 32
    depth: int = 2
    token_hidden: int = 16
    channel_hidden: int = 64
    time_dim: int = 16
    demo_envs: int = 1024
    train_steps: int = 4000
    batch_size: int = 256
    lr: float = 2e-3
    weak_fraction: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("horizon", "width", "depth", "token_hidden", "channel_hidden", "time_dim", "demo_envs",
                     "train_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"PolicyRecipe.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.weak_fraction < 1.0:
            raise ValueError(f"PolicyRecipe.weak_fraction must be in (0, 1), got {self.weak_fraction}")
        if not self.lr > 0:
            raise ValueError(f"PolicyRecipe.lr must be > 0, got {self.lr}")

    def key(self, task: str) -> str:
        """Cache key: the recipe, the task name, the source of the task and its expert, and the source of
        the model and its training (:func:`training_fingerprint`), so a changed task, expert, model or
        training loop never reuses policies made by the old code."""
        blob = json.dumps({"task": task, **asdict(self), "task_source": task_fingerprint(task),
                           "training_source": training_fingerprint()}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _read_source(path: str) -> bytes:
    """The bytes of one source file (the unit the fingerprints hash)."""
    return Path(path).read_bytes()


def _fingerprint(files: Iterable[str | None]) -> str:
    """SHA-1 (12 hex digits) of the given source files, in sorted order."""
    digest = hashlib.sha1()
    for f in sorted(set(files) - {None}):
        digest.update(_read_source(f))
    return digest.hexdigest()[:12]


def task_fingerprint(task: str) -> str:
    """SHA-1 of the source files defining ``task``, its expert and the shared task base."""
    task_cls, expert_cls = TASKS[check_task(task)]
    return _fingerprint(inspect.getsourcefile(c) for c in (task_cls, expert_cls, BatchedTask))


def training_modules() -> tuple[ModuleType, ...]:
    """The modules whose code decides what a cached policy is: the MLP-Mixer (:mod:`rtc_ros.policies.mixer`),
    the flow-policy base and normaliser (:mod:`rtc_ros.policies.base`), the flow-matching training loop
    with prefix conditioning (:mod:`rtc_ros.policies.train`) and this module (demonstrations, model and
    training settings from the recipe)."""
    return (policy_base, policy_mixer, policy_train, sys.modules[__name__])


def training_fingerprint() -> str:
    """SHA-1 of the source files of :func:`training_modules`."""
    return _fingerprint(inspect.getsourcefile(m) for m in training_modules())


QUICK_RECIPE = PolicyRecipe(demo_envs=256, train_steps=400)


def demo_chunks(task: str, n_envs: int, seed: int, horizon: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Expert demonstrations as ``obs (N, O)`` and action chunks ``(N, H, M)``.

    Every (step, env) pair where the env was still running gives one sample; the chunk holds the
    expert's next ``H`` commands, with steps past the episode end holding its last command.
    Also returns the expert's solve rate on these episodes.
    """
    env, data = run_expert(task, n_envs, seed, EVAL_NOISE_STD, record=True)
    assert data is not None
    obs, act, alive = data["obs"], data["actions"], data["alive"]  # (T,n,O), (T,n,M), (T,n)
    steps = obs.shape[0]
    length = env.length  # (n,) number of steps each env ran
    t_idx = torch.arange(steps)[:, None, None] + torch.arange(horizon)[None, None, :]  # (T,1,H)
    t_idx = torch.minimum(t_idx, (length - 1).clamp(min=0)[None, :, None])  # (T,n,H)
    env_idx = torch.arange(env.n)[None, :, None].expand_as(t_idx)
    chunks = act[t_idx, env_idx]  # (T,n,H,M)
    mask = alive
    return obs[mask].numpy(), chunks[mask].numpy(), float(env.success.float().mean())


def _mixer_config(recipe: PolicyRecipe, task: str) -> MixerConfig:
    spec = TASKS[task][0].spec
    return MixerConfig(horizon=recipe.horizon, action_dim=spec.act_dim, obs_dim=spec.obs_dim, width=recipe.width,
                       depth=recipe.depth, token_hidden=recipe.token_hidden, channel_hidden=recipe.channel_hidden,
                       time_dim=recipe.time_dim)


def _train_config(recipe: PolicyRecipe, progress: bool, checkpoint_steps: tuple[int, ...] = (),
                  prefix_conditioning: int = 0) -> TrainConfig:
    return TrainConfig(steps=recipe.train_steps, batch_size=recipe.batch_size, lr=recipe.lr, seed=recipe.seed,
                       warmup_steps=min(100, recipe.train_steps // 10), checkpoint_steps=checkpoint_steps,
                       progress=progress, prefix_conditioning=prefix_conditioning)


def _demos_and_model(task: str, recipe: PolicyRecipe) -> tuple[np.ndarray, np.ndarray, float, float, MLPMixerPolicy]:
    """The recipe's demonstrations ``(obs, chunks, expert solve rate, seconds)`` and its untrained model
    (seeded): shared by the base and the prefix-conditioned policies, so they differ only in training."""
    check_task(task)
    t0 = time.perf_counter()
    obs, chunks, expert_rate = demo_chunks(task, recipe.demo_envs, 10_000 + recipe.seed, recipe.horizon)
    t_demo = time.perf_counter() - t0
    torch.manual_seed(recipe.seed)
    return obs, chunks, expert_rate, t_demo, MLPMixerPolicy(_mixer_config(recipe, task))


def train_task_policy(task: str, out_dir: Path, recipe: PolicyRecipe, progress: bool = True) -> tuple[Path, Path]:
    """Generate demos, train, save strong and weak policies; returns their spec paths."""
    t0 = time.perf_counter()
    obs, chunks, expert_rate, t_demo, model = _demos_and_model(task, recipe)
    weak_step = max(1, int(round(recipe.weak_fraction * recipe.train_steps)))
    cfg = _train_config(recipe, progress, (weak_step,))
    result = train_flow_policy(model, obs, chunks, cfg)
    t_train = time.perf_counter() - t0 - t_demo
    spec = TASKS[task][0].spec
    key = recipe.key(task)
    extra = {"dt": spec.dt, "benchmark_task": task, "recipe": asdict(recipe), "recipe_key": key,
             "expert_solve_rate_demos": expert_rate, "n_samples": int(obs.shape[0]),
             "final_loss": float(np.mean(result.losses[-100:])), "demo_s": round(t_demo, 1),
             "train_s": round(t_train, 1)}
    obs_spec = [{"name": f"{task}_state", "shape": [spec.obs_dim]}]
    strong = save_policy(out_dir, task, model, result.normalizer, obs_spec=obs_spec, extra=extra)
    weak_model = MLPMixerPolicy(_mixer_config(recipe, task))
    weak_model.load_state_dict(result.checkpoints[weak_step])
    weak = save_policy(out_dir, f"{task}_weak", weak_model, result.normalizer, obs_spec=obs_spec,
                       extra={**extra, "weak_checkpoint_step": weak_step})
    log.info("%s: %d samples, demos %.1fs, training %.1fs, loss %.4f", task, obs.shape[0], t_demo, t_train,
             extra["final_loss"])
    return strong, weak


def get_task_policies(task: str, cache_dir: Path, recipe: PolicyRecipe, progress: bool = True,
                      retrain: bool = False) -> tuple[LoadedPolicy, LoadedPolicy, bool]:
    """Load the cached (strong, weak) policies for ``task`` or train them; third item: trained now."""
    directory = Path(cache_dir) / recipe.key(task)
    strong_path, weak_path = directory / f"{task}.yaml", directory / f"{task}_weak.yaml"
    trained = False
    if retrain or not (strong_path.is_file() and weak_path.is_file()):
        train_task_policy(task, directory, recipe, progress)
        trained = True
    return load_policy(strong_path), load_policy(weak_path), trained


def trained_rtc_name(task: str, max_prefix: int) -> str:
    """Spec name of the task's training-time RTC policy (prefixes ``d <= max_prefix``)."""
    return f"{task}_prefix{int(max_prefix)}"


def train_trained_rtc_policy(task: str, out_dir: Path, recipe: PolicyRecipe, max_prefix: int,
                             progress: bool = True) -> Path:
    """The base recipe (same demonstrations, model, optimiser, steps, seed) plus prefix conditioning
    ``d ~ U{0..max_prefix}``; saved as :func:`trained_rtc_name` with ``training.prefix_conditioning``."""
    t0 = time.perf_counter()
    obs, chunks, expert_rate, t_demo, model = _demos_and_model(task, recipe)
    cfg = _train_config(recipe, progress, prefix_conditioning=max_prefix)
    result = train_flow_policy(model, obs, chunks, cfg)
    spec = TASKS[task][0].spec
    extra = {"dt": spec.dt, "benchmark_task": task, "recipe": asdict(recipe), "recipe_key": recipe.key(task),
             **training_spec(cfg), "expert_solve_rate_demos": expert_rate, "n_samples": int(obs.shape[0]),
             "final_loss": float(np.mean(result.losses[-100:])), "demo_s": round(t_demo, 1),
             "train_s": round(time.perf_counter() - t0 - t_demo, 1)}
    obs_spec = [{"name": f"{task}_state", "shape": [spec.obs_dim]}]
    return save_policy(out_dir, trained_rtc_name(task, max_prefix), model, result.normalizer, obs_spec=obs_spec,
                       extra=extra)


def get_trained_rtc_policy(task: str, cache_dir: Path, recipe: PolicyRecipe, max_prefix: int,
                           progress: bool = True, retrain: bool = False) -> tuple[LoadedPolicy, bool]:
    """Load the cached training-time RTC policy for ``task`` or train it; second item: trained now."""
    path = Path(cache_dir) / recipe.key(task) / f"{trained_rtc_name(task, max_prefix)}.yaml"
    trained = retrain or not path.is_file()
    if trained:
        train_trained_rtc_policy(task, path.parent, recipe, max_prefix, progress)
    return load_policy(path), trained
