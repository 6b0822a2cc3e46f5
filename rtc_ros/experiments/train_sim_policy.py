"""Train the shipped bimanual sim policies: scripted-expert demos -> rosbag2 bags -> flow policy.

Pipeline (CPU only, one command; see ``docs/sim_experiment.md``)::

    python -m rtc_ros.experiments.train_sim_policy --out policies --bags /tmp/rtc_sim_demos

1. **Demonstrations as bags** and 2. **the dataset from them**: :mod:`rtc_ros.experiments.sim_demos`
   (the scripted expert's episodes in the live topic layout, DART-style noise, only successful
   episodes; the package's one bags-to-dataset pipeline).
3. **Flow matching** (:func:`rtc_ros.policies.train.fit_flow`, tau 0 = noise, 1 = data) on
   ``bimanual_h50`` shrunk (CPU: a guided RTC chunk takes ~30-70 ms on one core). Normalisation
   (:meth:`~rtc_ros.recording.demo_dataset.DemoDataset.fit_normalizer`): per joint (std floored at
   0.05 rad), per image channel (never per pixel: a per-pixel std would blow up pixels that never
   changed in training); stored in ``<name>.norm.safetensors``.

``--model bimanual_cnn`` trains :mod:`rtc_ros.policies.cnn_mixer` instead (CNN image encoder +
joint MLP, encoded once per chunk; clean-chunk prediction on a cubic-spline basis), with
``--ema 0.999`` the EMA of the weights is saved; batches come from
:func:`rtc_ros.experiments.sim_sampler.tensor_batch_sampler` (the same layout, vectorised). The
shipped ``policies/bimanual_cnn_h50.yaml`` records its exact command in ``training.command``.
``--prefix-conditioning D`` trains for training-time RTC (method ``rtc_trained``).

Observation choice: joint state + a small top-down camera image (the cube position is only visible
in the image). No privileged object pose is used, because the inference node consumes exactly
``joint_states`` + camera topics.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rtc_ros.experiments.sim_demos import (CAMERA_NAME, CAMERA_TOPIC, HORIZON, DemoConfig, generate_demos,
                                           load_demo_dataset)
from rtc_ros.sim.camera import CameraConfig
from rtc_ros.sim.expert_schedule import SCHEDULES, schedule_name

if TYPE_CHECKING:
    from rtc_ros.recording.demo_dataset import DemoDataset

log = logging.getLogger("rtc_ros.experiments.train_sim_policy")

DEFAULT_NAME = "bimanual_sim_h50"


# ============================================================================ 3. training
@dataclass
class SimTrainConfig:
    """Training settings (CPU). ``model``: ``mlp_mixer`` (flat observation into the mixer) or
    ``bimanual_cnn`` (:mod:`rtc_ros.policies.cnn_mixer`: CNN image encoder + joint MLP, encoded once
    per chunk; ``feature_dim``, ``cnn_channels``, ``prediction``, ``smooth_basis`` apply to it). ``ema_decay`` > 0
    ships the EMA of the weights; ``shift_px`` > 0 randomly shifts training images
    (:mod:`rtc_ros.experiments.sim_sampler`); ``min_lr_ratio``: where the cosine decay ends;
    ``bound_joints``: joints whose clean prediction is squashed into their limits of the sim params
    file (``CNNMixerConfig.bounded_dims``; e.g. the grippers, so their commands need no clipping);
    ``prefix_conditioning = D > 0``: training-time RTC (method ``rtc_trained``; prefixes ``d ~ U{0..D}``,
    :mod:`rtc_ros.policies.train`), recorded in the spec's ``training.prefix_conditioning``."""

    steps: int = 6000
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    width: int = 128
    depth: int = 4
    token_hidden: int = 64
    channel_hidden: int = 256
    time_dim: int = 64
    joint_noise_std: float = 0.005  # rad, added to observed joints in training (robustness)
    seed: int = 0
    threads: int = 0  # torch threads (0 = torch default)
    max_minutes: float = 25.0  # stop early (cosine schedule is rescaled) if training would exceed this
    model: str = "mlp_mixer"
    feature_dim: int = 128
    cnn_channels: int = 32
    prediction: str = "x"
    smooth_basis: int = 20
    ema_decay: float = 0.0
    shift_px: int = 0
    min_lr_ratio: float = 0.0
    bound_joints: tuple[str, ...] = ()  # bimanual_cnn, prediction x: clean prediction inside the params file's limits
    prefix_conditioning: int = 0  # training-time RTC: largest prefix length D; 0 = off

    def __post_init__(self) -> None:
        if self.bound_joints and (self.model != "bimanual_cnn" or self.prediction != "x"):
            raise ValueError("SimTrainConfig.bound_joints needs model 'bimanual_cnn' with prediction 'x'")
        if self.model not in MODELS:
            raise ValueError(f"SimTrainConfig.model must be one of {list(MODELS)}, got {self.model!r}")


#: the models this trainer builds (registered names, :mod:`rtc_ros.policies.plugins`)
MODELS = ("mlp_mixer", "bimanual_cnn")


def normalized_bounds(joints: tuple[str, ...], norm: Any, joint_names: list[str]) -> dict[str, list]:
    """``CNNMixerConfig`` bound fields for ``joints``: their limits in the sim params file
    (:data:`rtc_ros.experiments.runner.DEFAULT_CONFIG`) in the normaliser's action units.

    Raises:
        ValueError: a joint is not one of ``joint_names``.
    """
    if not joints:
        return {}
    from rtc_ros.experiments.runner import DEFAULT_CONFIG, arm_limits

    lower, upper, _ = arm_limits(DEFAULT_CONFIG, joint_names)
    dims = []
    for j in joints:
        if j not in joint_names:
            raise ValueError(f"bound_joints: {j!r} is not one of {joint_names}")
        dims.append(joint_names.index(j))
    mean, std = np.asarray(norm.action_mean, dtype=np.float64), np.asarray(norm.action_std, dtype=np.float64)
    return {"bounded_dims": dims, "bounded_low": [float((lower[d] - mean[d]) / std[d]) for d in dims],
            "bounded_high": [float((upper[d] - mean[d]) / std[d]) for d in dims]}


def train_policy(ds: DemoDataset, out_dir: str | Path, camera: CameraConfig, cfg: SimTrainConfig,
                 name: str = DEFAULT_NAME, extra: dict[str, Any] | None = None,
                 command: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Train ``cfg.model`` (``bimanual_h50`` trunk sizes from ``cfg``) on ``ds``; save ``<name>.yaml``, ``<name>.safetensors``
    and ``<name>.norm.safetensors`` (:func:`rtc_ros.policies.spec.save_policy`).

    Returns:
        (spec path, training info: steps, seconds, final loss).
    """
    import torch

    from rtc_ros.experiments.sim_sampler import image_layout_of, tensor_batch_sampler
    from rtc_ros.policies.cnn_mixer import BimanualCNNPolicy, CNNMixerConfig
    from rtc_ros.policies.mixer import MLPMixerPolicy, bimanual_h50
    from rtc_ros.policies.spec import save_policy
    from rtc_ros.policies.train import TrainConfig, fit_flow
    from rtc_ros.sim import JOINT_NAMES

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    norm = ds.fit_normalizer(vector_std_floor=0.05, image_std_floor=1e-3, action_std_floor=1e-3)
    mcfg = bimanual_h50(ds.builder.obs_dim, width=cfg.width, depth=cfg.depth, token_hidden=cfg.token_hidden,
                        channel_hidden=cfg.channel_hidden, time_dim=cfg.time_dim)
    if cfg.model == "bimanual_cnn":
        _, joint_dim, (h, w, c) = image_layout_of(ds)
        model = BimanualCNNPolicy(CNNMixerConfig(
            **asdict(mcfg), joint_dim=joint_dim, image_height=h, image_width=w, image_channels=c,
            image_frames=ds.builder.camera_frames[CAMERA_NAME],
            cnn_channels=cfg.cnn_channels, feature_dim=cfg.feature_dim, prediction=cfg.prediction,
            smooth_basis=cfg.smooth_basis if cfg.prediction == "x" else 0,
            **normalized_bounds(cfg.bound_joints, norm, list(JOINT_NAMES))))
    else:
        model = MLPMixerPolicy(mcfg)
    # joint-noise (and optional image-shift) augmentation
    sample = tensor_batch_sampler(ds, norm, joint_noise_std=cfg.joint_noise_std, shift_px=cfg.shift_px)
    t0 = time.perf_counter()
    losses, _ = fit_flow(model, sample, TrainConfig(
        steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps, seed=cfg.seed, max_minutes=cfg.max_minutes, ema_decay=cfg.ema_decay,
        min_lr_ratio=cfg.min_lr_ratio, prefix_conditioning=cfg.prefix_conditioning))
    total = len(losses)
    seconds = time.perf_counter() - t0
    info = {"steps": total, "train_seconds": round(seconds, 1), "final_loss": float(np.mean(losses[-200:])),
            "samples": len(ds), "episodes": int(len(np.unique(ds.episode))), "train_config": asdict(cfg),
            "prefix_conditioning": int(cfg.prefix_conditioning),
            **({"command": command} if command else {})}
    spec_extra = {"dt": 0.02, "joint_names": list(JOINT_NAMES),
                  "camera": {"topic": CAMERA_TOPIC, **asdict(camera)},
                  "training": info, **(extra or {})}
    path = save_policy(out_dir, name, model, norm, obs_spec=ds.obs_spec, extra=spec_extra, model_type=cfg.model)
    return path, info


# ============================================================================ CLI
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="policies", help="directory for <name>.yaml, .safetensors, .norm.safetensors")
    ap.add_argument("--name", default=DEFAULT_NAME)
    ap.add_argument("--overwrite", action="store_true", help="replace an existing <out>/<name> policy (refused otherwise)")
    ap.add_argument("--bags", default="/tmp/rtc_sim_demos", help="directory for the demonstration bags")
    ap.add_argument("--episodes", type=int, default=DemoConfig.episodes)
    ap.add_argument("--task", default=DemoConfig.task, choices=("transfer_cube", "conveyor_cube"),
                    help="sim task whose scripted expert makes the demonstrations")
    ap.add_argument("--steps", type=int, default=SimTrainConfig.steps)
    ap.add_argument("--batch-size", type=int, default=SimTrainConfig.batch_size)
    ap.add_argument("--width", type=int, default=SimTrainConfig.width)
    ap.add_argument("--depth", type=int, default=SimTrainConfig.depth)
    ap.add_argument("--token-hidden", type=int, default=SimTrainConfig.token_hidden)
    ap.add_argument("--max-minutes", type=float, default=SimTrainConfig.max_minutes)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--reuse-bags", action="store_true", help="train on the bags already in --bags")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", choices=MODELS, default=SimTrainConfig.model,
                    help="mlp_mixer: flat observation; bimanual_cnn: CNN image encoder, encoded once per chunk")
    ap.add_argument("--feature-dim", type=int, default=SimTrainConfig.feature_dim, help="bimanual_cnn feature size")
    ap.add_argument("--cnn-channels", type=int, default=SimTrainConfig.cnn_channels)
    ap.add_argument("--prediction", choices=("x", "v"), default=SimTrainConfig.prediction,
                    help="bimanual_cnn: the trunk predicts the clean chunk (x) or the velocity (v)")
    ap.add_argument("--smooth-basis", type=int, default=SimTrainConfig.smooth_basis,
                    help="bimanual_cnn with --prediction x: cubic B-splines spanning the clean chunk (0 = off)")
    ap.add_argument("--ema", type=float, default=SimTrainConfig.ema_decay, help="EMA decay of the weights (0 = off)")
    ap.add_argument("--shift-px", type=int, default=SimTrainConfig.shift_px, help="random image shift (pixels)")
    ap.add_argument("--frames", type=int, default=1, help="bimanual_cnn: camera frames the policy sees, newest "
                    "first (2: the newest and the one before it, so it sees motion)")
    ap.add_argument("--lr", type=float, default=SimTrainConfig.lr)
    ap.add_argument("--min-lr-ratio", type=float, default=SimTrainConfig.min_lr_ratio)
    ap.add_argument("--bound-joints", nargs="*", default=[], metavar="JOINT",
                    help="bimanual_cnn, prediction x: squash these joints' clean prediction into their limits "
                         "(e.g. left_gripper right_gripper)")
    ap.add_argument("--prefix-conditioning", type=int, default=0, metavar="D",
                    help="training-time RTC (method rtc_trained): clean prefixes of d ~ U{0..D} actions (0 = off)")
    ap.add_argument("--expert-schedule", choices=sorted(SCHEDULES), default="",
                    help="transfer expert's waypoint timing for the demos (default: margin, rtc_ros.sim.expert_schedule; "
                         "policies trained before 2026-12-05 used 'original'); the conveyor expert has only 'original'")
    args = ap.parse_args(argv)
    try:
        schedule_name(args.task, args.expert_schedule)
    except ValueError as exc:
        ap.error(f"--expert-schedule: {exc}")
    if args.frames < 1:
        ap.error(f"--frames must be >= 1, got {args.frames}")
    if not 0 <= args.prefix_conditioning < HORIZON:  # (refused in training only, after the demos -- an audit)
        ap.error(f"--prefix-conditioning must be in [0, {HORIZON - 1}] (the horizon is {HORIZON}), "
                 f"got {args.prefix_conditioning}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("rtc_ros.sim").setLevel(logging.WARNING)
    existing = [f"{args.name}{ext}" for ext in (".yaml", ".safetensors") if (Path(args.out) / f"{args.name}{ext}").exists()]
    if existing and not args.overwrite:  # e.g. the shipped policies/ files (--out defaults to policies)
        ap.error(f"--out {args.out} already holds {existing}; choose another --out or --name, or pass --overwrite")
    if args.reuse_bags and not any(Path(args.bags).glob("demo_*")):
        ap.error(f"--reuse-bags: no demo_* bags in --bags {args.bags}")
    camera = CameraConfig()
    t_all = time.perf_counter()
    if args.reuse_bags:
        from rtc_ros.recording.bag import read_sidecar

        sides = {str(p): read_sidecar(p) or {} for p in sorted(Path(args.bags).glob("demo_*"))}
        wanted = {"task": args.task, "expert_schedule": schedule_name(args.task, args.expert_schedule)}
        other = {b: {k: m.get(k) for k, v in wanted.items() if m.get(k, v) != v} for b, m in sides.items()}
        other = {b: o for b, o in other.items() if o}
        if other:  # (an audit: bags of another task trained silently, and the spec's command named this one)
            b, o = next(iter(other.items()))
            ap.error(f"--reuse-bags: {len(other)} bags in {args.bags} were recorded with {o} (e.g. {b}), not "
                     f"{wanted}: give their --task / --expert-schedule, or another --bags")
        bags = [b for b, m in sides.items() if m.get("success")]
        gen_info: dict[str, Any] = {"episodes": len(bags), "successes": len(bags), "seconds": 0.0}
    else:
        gen_info = generate_demos(args.bags, DemoConfig(episodes=args.episodes, seed0=args.seed * 100_000, task=args.task,
                                                     expert_schedule=args.expert_schedule), camera)
        bags = gen_info.pop("bags")
    log.info("demos: %d/%d successful in %.0f s -> %s", gen_info["successes"], gen_info["episodes"],
             gen_info["seconds"], args.bags)
    t_load = time.perf_counter()
    ds = load_demo_dataset(bags, camera, frames=args.frames)
    log.info("dataset: %d samples, %d images from %d bags (%.0f s)", len(ds), len(ds.frames[CAMERA_NAME]), len(bags),
             time.perf_counter() - t_load)
    cfg = SimTrainConfig(steps=args.steps, batch_size=args.batch_size, width=args.width, depth=args.depth,
                         token_hidden=args.token_hidden, channel_hidden=2 * args.width, max_minutes=args.max_minutes,
                         threads=args.threads, seed=args.seed, model=args.model, feature_dim=args.feature_dim,
                         cnn_channels=args.cnn_channels, prediction=args.prediction, ema_decay=args.ema, smooth_basis=args.smooth_basis,
                         shift_px=args.shift_px, lr=args.lr, min_lr_ratio=args.min_lr_ratio,
                         bound_joints=tuple(args.bound_joints), prefix_conditioning=args.prefix_conditioning)
    given = list(argv if argv is not None else sys.argv[1:])
    cmd = "python -m rtc_ros.experiments.train_sim_policy " + " ".join(given)
    # regenerate: the command for a fresh machine (--reuse-bags needs the bags this run had)
    regen = "python -m rtc_ros.experiments.train_sim_policy " + " ".join(a for a in given if a != "--reuse-bags")
    path, info = train_policy(ds, args.out, camera, cfg, args.name, command=cmd.strip(),
                              extra={"demos": {k: v for k, v in gen_info.items()}, "regenerate": regen.strip()})
    total = time.perf_counter() - t_all
    print(json.dumps({"spec": str(path), "total_seconds": round(total, 1), "demo_seconds": round(gen_info["seconds"], 1),
                      "demo_successes": gen_info["successes"], "demo_episodes": gen_info["episodes"], **info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
