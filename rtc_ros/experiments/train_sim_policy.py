"""Train the shipped bimanual sim policy: scripted-expert demos -> rosbag2 bags -> flow policy.

Pipeline (CPU only, one command; see ``docs/sim_experiment.md``)::

    python -m rtc_ros.experiments.train_sim_policy --out policies --bags /tmp/rtc_sim_demos

1. **Demonstrations as bags.** The scripted expert (:class:`rtc_ros.sim.expert.ScriptedExpert`,
   >= 90 % success) runs offline (faster than real time) in :class:`~rtc_ros.sim.bimanual.BimanualSim`;
   every episode is written as one rosbag2/MCAP bag in the live topic layout of the ``bimanual_sim``
   node -- ``joint_states`` (50 Hz), ``cam_high/image_raw`` (32x32 rgb8 ``workspace`` camera, 10 Hz),
   ``rtc/progress``, and the expert's commands on ``left_controller/commands`` /
   ``right_controller/commands`` (``Float64MultiArray``, the executor's default output) -- with the
   recorder's sidecar (success, score). Messages are CDR-serialized with the ``rosbags`` Jazzy types, so
   what ``rosbags`` (and ``ros2 bag``) read back. To cover recovery states, a fraction of the
   episodes execute the expert's targets plus smooth (Ornstein-Uhlenbeck) noise while the recorded
   label stays the clean target (DART-style); only successful episodes are used.
2. **Dataset from the bags** (:func:`load_demo_bags`): for every ``joint_states`` message at time t
   the observation is ``[joint positions (14), newest image at or before t (32x32x3 / 255)]`` built
   with the inference node's own :class:`~rtc_ros.policies.observation.ObservationBuilder`, and the
   label is the next H = 50 commands after t (index 0 = the command computed from that observation;
   the last command is held past the end of the episode).
3. **Flow matching** (:func:`rtc_ros.policies.train.flow_matching_loss`, tau 0 = noise, 1 = data) on
   ``bimanual_h50`` shrunk to width 128 (CPU: a guided RTC chunk takes ~30-70 ms on one core).
   Normalisation: per joint mean/std (std floored), one shared mean/std for all pixels (per-pixel std
   would blow up pixels that never changed in training).

Observation choice: joint state + a small top-down camera image (the cube position is only visible
in the image). No privileged object pose is used, because the inference node consumes exactly
``joint_states`` + camera topics.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from rtc_ros.sim.camera import CameraConfig, CameraRenderer  # noqa: E402

log = logging.getLogger("rtc_ros.experiments.train_sim_policy")

HORIZON = 50
JOINT_ENTRY = "joint_positions"
CAMERA_NAME = "cam_high"
CAMERA_TOPIC = "cam_high/image_raw"
JOINT_STATES_TOPIC = "joint_states"
PROGRESS_TOPIC = "rtc/progress"
COMMAND_TOPICS = ("left_controller/commands", "right_controller/commands")
DEFAULT_NAME = "bimanual_sim_h50"


# ============================================================================ 1. demos as bags
@dataclass
class DemoConfig:
    """Demonstration generation settings.

    Attributes:
        episodes: number of episodes to roll out (seeds ``seed0 .. seed0 + episodes - 1``).
        seed0: first cube seed (the evaluation uses seeds from 10000 on, so they do not overlap).
        noise_fraction: fraction of episodes executed with OU noise on the targets.
        noise_std: stationary std of that noise on the arm joints (rad); grippers get none.
        noise_tau_s: noise correlation time (s).
        image_every: render the camera every this many 20 ms ticks (5 = 10 Hz, as the sim node).
        tail_steps: ticks recorded after the expert's plan ends (holding the last target).
    """

    episodes: int = 150
    seed0: int = 0
    noise_fraction: float = 0.5
    noise_std: float = 0.03
    noise_tau_s: float = 0.3
    image_every: int = 5
    tail_steps: int = 10


class _Cdr:
    """CDR serialisation of the few message types the demos use, via the ``rosbags`` Jazzy type store.

    (Not ``rclpy.serialization.serialize_message``: in the pip rclpy wheels it appends uninitialised
    bytes after the message, which ``rosbags`` then refuses to read: "CDR message size mismatch".)
    """

    def __init__(self) -> None:
        from rtc_ros.recording.bag import default_typestore

        self.store = default_typestore()
        t = self.store.types
        self.Time, self.Header = t["builtin_interfaces/msg/Time"], t["std_msgs/msg/Header"]
        self.JointState, self.Image = t["sensor_msgs/msg/JointState"], t["sensor_msgs/msg/Image"]
        self.Int32, self.F64 = t["std_msgs/msg/Int32"], t["std_msgs/msg/Float64MultiArray"]
        self.Layout = t["std_msgs/msg/MultiArrayLayout"]

    def header(self, stamp_ns: int, frame_id: str = "") -> Any:
        sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
        return self.Header(stamp=self.Time(sec=sec, nanosec=nsec), frame_id=frame_id)

    def joint_state(self, stamp_ns: int, names: list[str], q: np.ndarray, v: np.ndarray) -> bytes:
        m = self.JointState(header=self.header(stamp_ns), name=list(names), position=np.asarray(q, np.float64),
                            velocity=np.asarray(v, np.float64), effort=np.zeros(0, np.float64))
        return bytes(self.store.serialize_cdr(m, m.__msgtype__))

    def image(self, stamp_ns: int, frame_id: str, px: np.ndarray) -> bytes:
        h, w = int(px.shape[0]), int(px.shape[1])
        m = self.Image(header=self.header(stamp_ns, frame_id), height=h, width=w, encoding="rgb8", is_bigendian=0,
                       step=w * 3, data=np.ascontiguousarray(px, np.uint8).reshape(-1))
        return bytes(self.store.serialize_cdr(m, m.__msgtype__))

    def int32(self, value: int) -> bytes:
        m = self.Int32(data=int(value))
        return bytes(self.store.serialize_cdr(m, m.__msgtype__))

    def float64_array(self, values: np.ndarray) -> bytes:
        m = self.F64(layout=self.Layout(dim=[], data_offset=0), data=np.asarray(values, np.float64))
        return bytes(self.store.serialize_cdr(m, m.__msgtype__))


def generate_demos(out_dir: str | Path, cfg: DemoConfig, camera: CameraConfig | None = None) -> dict[str, Any]:
    """Roll out the scripted expert and write one bag per episode into ``out_dir``.

    Returns:
        ``{"episodes", "successes", "bags": [paths of successful episodes], "seconds"}``.
    """
    from rtc_ros.recording.bag import BagWriter
    from rtc_ros.sim import CONTROL_DT, JOINT_NAMES, BimanualSim, ScriptedExpert

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    camera = camera or CameraConfig()
    cdr = _Cdr()
    sim = BimanualSim(max_episode_steps=10_000)
    renderer = CameraRenderer(sim.model, camera)
    expert = ScriptedExpert(sim)
    rng = np.random.default_rng(cfg.seed0 + 7919)
    t_start = time.perf_counter()
    bags: list[str] = []
    successes = 0
    names = list(JOINT_NAMES)
    base_ns = 1_700_000_000 * 1_000_000_000
    dt_ns = int(CONTROL_DT * 1e9)
    alpha = math.exp(-CONTROL_DT / cfg.noise_tau_s)
    arm_mask = np.ones(14)
    arm_mask[[6, 13]] = 0.0
    try:
        for k in range(cfg.episodes):
            seed = cfg.seed0 + k
            noisy = rng.random() < cfg.noise_fraction
            obs = sim.reset(seed)
            expert.reset(obs)
            steps = expert.horizon + cfg.tail_steps
            bag_dir = out / f"demo_{seed:05d}"
            if bag_dir.exists():
                import shutil

                shutil.rmtree(bag_dir)
            w = BagWriter(bag_dir)
            w.open()
            w.add_topic(JOINT_STATES_TOPIC, "sensor_msgs/msg/JointState")
            w.add_topic(CAMERA_TOPIC, "sensor_msgs/msg/Image")
            w.add_topic(PROGRESS_TOPIC, "std_msgs/msg/Int32")
            for topic in COMMAND_TOPICS:
                w.add_topic(topic, "std_msgs/msg/Float64MultiArray")
            t0 = base_ns + k * 60 * 1_000_000_000
            noise = np.zeros(14)
            sigma = cfg.noise_std * math.sqrt(1 - alpha * alpha)
            for t in range(steps):
                stamp_ns = t0 + t * dt_ns
                w.write(JOINT_STATES_TOPIC, stamp_ns,
                        cdr.joint_state(stamp_ns, names, obs.joint_positions, obs.joint_velocities))
                w.write(PROGRESS_TOPIC, stamp_ns, cdr.int32(sim.progress))
                if t % cfg.image_every == 0:
                    w.write(CAMERA_TOPIC, stamp_ns, cdr.image(stamp_ns, CAMERA_NAME, renderer.render(sim.data)))
                a = expert.act(obs)
                for i, topic in enumerate(COMMAND_TOPICS):
                    w.write(topic, stamp_ns + 2000 + i, cdr.float64_array(a[7 * i:7 * i + 7]))
                if noisy:
                    noise = alpha * noise + sigma * rng.standard_normal(14) * arm_mask
                obs = sim.step(a + noise if noisy else a).obs
            ok = bool(sim.success)
            successes += ok
            w.close({"task": "transfer_cube", "source": "scripted_expert", "seed": seed, "noisy": noisy,
                     "success": ok, "score": int(sim.progress), "method": "expert", "duration_s": steps * CONTROL_DT})
            if ok:
                bags.append(str(bag_dir))
            if (k + 1) % 10 == 0:
                log.info("demos: %d/%d episodes, %d successful (%.0f s)", k + 1, cfg.episodes, successes,
                         time.perf_counter() - t_start)
    finally:
        renderer.close()
        sim.close()
    return {"episodes": cfg.episodes, "successes": successes, "bags": bags,
            "seconds": time.perf_counter() - t_start}


# ============================================================================ 2. dataset from bags
@dataclass
class DemoDataset:
    """Training arrays from demonstration bags.

    Attributes:
        joints: ``(N, 14)`` float32 measured joint positions (one row per ``joint_states`` message).
        image_index: ``(N,)`` int index into ``images`` of the newest frame at or before that row.
        images: ``(K, h, w, 3)`` uint8 camera frames.
        actions: ``(N, H, 14)`` float32 action chunks (the next H commands).
        episode: ``(N,)`` int episode number of each row.
    """

    joints: np.ndarray
    image_index: np.ndarray
    images: np.ndarray
    actions: np.ndarray
    episode: np.ndarray

    def __len__(self) -> int:
        return int(self.joints.shape[0])


def load_demo_bags(bags: list[str | Path], horizon: int = HORIZON, joint_names: list[str] | None = None,
                   camera_topic: str = CAMERA_TOPIC, command_topics: tuple[str, ...] = COMMAND_TOPICS) -> DemoDataset:
    """Read demonstration bags (the layout written by :func:`generate_demos` or a live recording of the
    same topics) into a :class:`DemoDataset`. Bags whose sidecar says ``success: false`` are skipped.

    Raises:
        ValueError: a bag lacks one of the topics.
    """
    from rosbags.highlevel import AnyReader

    from rtc_ros.recording.bag import default_typestore, read_sidecar
    from rtc_ros.sim import JOINT_NAMES

    names = list(joint_names or JOINT_NAMES)
    store = default_typestore()
    J, II, A, E = [], [], [], []
    images: list[np.ndarray] = []
    for e, bag in enumerate(bags):
        meta = read_sidecar(bag) or {}
        if meta.get("success") is False:
            continue
        js_t, js_q, img_t, img_px = [], [], [], []
        cmd: dict[str, tuple[list[int], list[np.ndarray]]] = {t: ([], []) for t in command_topics}
        with AnyReader([Path(bag)], default_typestore=store) as reader:
            conns = [c for c in reader.connections
                     if c.topic in (JOINT_STATES_TOPIC, camera_topic, *command_topics)]
            have = {c.topic for c in conns}
            missing = {JOINT_STATES_TOPIC, camera_topic, *command_topics} - have
            if missing:
                raise ValueError(f"bag {bag} lacks topics {sorted(missing)}")
            for conn, ts, raw in reader.messages(connections=conns):
                msg = reader.deserialize(raw, conn.msgtype)
                if conn.topic == JOINT_STATES_TOPIC:
                    idx = {n: i for i, n in enumerate(msg.name)}
                    js_t.append(ts)
                    js_q.append(np.asarray(msg.position, dtype=np.float64)[[idx[n] for n in names]])
                elif conn.topic == camera_topic:
                    img_t.append(ts)
                    img_px.append(np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3))
                else:
                    cmd[conn.topic][0].append(ts)
                    cmd[conn.topic][1].append(np.asarray(msg.data, dtype=np.float64))
        lens = {len(v[0]) for v in cmd.values()}
        if len(lens) != 1 or not js_t or not img_t:
            raise ValueError(f"bag {bag}: command topics of unequal length or empty topics")
        cmd_t = np.asarray(cmd[command_topics[0]][0])
        actions = np.concatenate([np.stack(cmd[t][1]) for t in command_topics], axis=1)  # (C, 14)
        js_t_arr, img_t_arr = np.asarray(js_t), np.asarray(img_t)
        first = np.searchsorted(cmd_t, js_t_arr, side="right")  # first command after each observation
        img_idx = np.searchsorted(img_t_arr, js_t_arr, side="right") - 1
        keep = (first < len(cmd_t)) & (img_idx >= 0)
        offs = first[:, None] + np.arange(horizon)[None, :]
        chunks = actions[np.minimum(offs, len(cmd_t) - 1)]
        J.append(np.asarray(js_q, np.float32)[keep])
        II.append(img_idx[keep] + len(images))
        A.append(chunks[keep].astype(np.float32))
        E.append(np.full(int(keep.sum()), e))
        images.extend(img_px)
    if not J:
        raise ValueError("no successful demonstration in the given bags")
    return DemoDataset(np.concatenate(J), np.concatenate(II), np.stack(images), np.concatenate(A), np.concatenate(E))


# ============================================================================ 3. training
@dataclass
class SimTrainConfig:
    """Training settings (CPU)."""

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


def obs_spec_for(camera: CameraConfig) -> list[dict[str, Any]]:
    """The policy spec's ``obs_spec``: joints then the camera image (HWC)."""
    return [{"name": JOINT_ENTRY, "shape": [14]}, {"name": CAMERA_NAME, "shape": [camera.height, camera.width, 3]}]


def make_normalizer(ds: DemoDataset) -> Any:
    """Per-joint obs/action normalisation (std floored) and one shared mean/std for all pixels."""
    from rtc_ros.policies.base import Normalizer

    q_mean, q_std = ds.joints.mean(0), np.maximum(ds.joints.std(0), 0.05)
    px = ds.images.astype(np.float32) / 255.0
    p_mean, p_std = float(px.mean()), float(max(px.std(), 1e-3))
    n_px = int(np.prod(ds.images.shape[1:]))
    a = ds.actions.reshape(-1, ds.actions.shape[-1])
    return Normalizer(np.concatenate([q_mean, np.full(n_px, p_mean)]), np.concatenate([q_std, np.full(n_px, p_std)]),
                      a.mean(0), np.maximum(a.std(0), 1e-3))


def train_policy(ds: DemoDataset, out_dir: str | Path, camera: CameraConfig, cfg: SimTrainConfig,
                 name: str = DEFAULT_NAME, extra: dict[str, Any] | None = None) -> tuple[Path, dict[str, Any]]:
    """Train ``bimanual_h50`` (width from ``cfg``) on ``ds`` and save ``<name>.yaml/.safetensors``.

    Returns:
        (spec path, training info: steps, seconds, final loss).
    """
    import torch

    from rtc_ros.policies.mixer import MLPMixerPolicy, bimanual_h50
    from rtc_ros.policies.observation import ObservationBuilder
    from rtc_ros.policies.spec import save_policy
    from rtc_ros.policies.train import TrainConfig, fit_flow
    from rtc_ros.sim import JOINT_NAMES

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    obs_spec = obs_spec_for(camera)
    builder = ObservationBuilder(obs_spec, 14)
    norm = make_normalizer(ds)
    mcfg = bimanual_h50(builder.obs_dim, width=cfg.width, depth=cfg.depth, token_hidden=cfg.token_hidden,
                        channel_hidden=cfg.channel_hidden, time_dim=cfg.time_dim)
    model = MLPMixerPolicy(mcfg)
    # normalised tensors; images are normalised per batch (uint8 stays compact in memory)
    q = torch.from_numpy((ds.joints - norm.obs_mean[:14]) / norm.obs_std[:14])
    q_noise = torch.from_numpy(cfg.joint_noise_std / norm.obs_std[:14]).float()
    imgs = torch.from_numpy(ds.images.reshape(ds.images.shape[0], -1))
    p_mean, p_std = float(norm.obs_mean[14]), float(norm.obs_std[14])
    img_idx = torch.from_numpy(ds.image_index.astype(np.int64))
    acts = torch.from_numpy(norm.norm_actions(ds.actions))

    def sample(batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(ds), (batch,), generator=gen)
        qb = q[idx] + torch.randn((batch, 14), generator=gen) * q_noise  # joint-noise augmentation
        pb = (imgs[img_idx[idx]].float() / 255.0 - p_mean) / p_std
        return torch.cat([qb, pb], dim=1), acts[idx]

    t0 = time.perf_counter()
    losses, _ = fit_flow(model, sample, TrainConfig(
        steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps, seed=cfg.seed, max_minutes=cfg.max_minutes))
    total = len(losses)
    seconds = time.perf_counter() - t0
    info = {"steps": total, "train_seconds": round(seconds, 1), "final_loss": float(np.mean(losses[-200:])),
            "samples": len(ds), "episodes": int(len(np.unique(ds.episode))), "train_config": asdict(cfg)}
    spec_extra = {"dt": 0.02, "joint_names": list(JOINT_NAMES),
                  "camera": {"topic": CAMERA_TOPIC, **asdict(camera)},
                  "training": info, **(extra or {})}
    path = save_policy(out_dir, name, model, norm, obs_spec=obs_spec, extra=spec_extra)
    return path, info


# ============================================================================ CLI
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="policies", help="directory for <name>.yaml + <name>.safetensors")
    ap.add_argument("--name", default=DEFAULT_NAME)
    ap.add_argument("--bags", default="/tmp/rtc_sim_demos", help="directory for the demonstration bags")
    ap.add_argument("--episodes", type=int, default=DemoConfig.episodes)
    ap.add_argument("--steps", type=int, default=SimTrainConfig.steps)
    ap.add_argument("--batch-size", type=int, default=SimTrainConfig.batch_size)
    ap.add_argument("--width", type=int, default=SimTrainConfig.width)
    ap.add_argument("--depth", type=int, default=SimTrainConfig.depth)
    ap.add_argument("--token-hidden", type=int, default=SimTrainConfig.token_hidden)
    ap.add_argument("--max-minutes", type=float, default=SimTrainConfig.max_minutes)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--reuse-bags", action="store_true", help="train on the bags already in --bags")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("rtc_ros.sim").setLevel(logging.WARNING)
    camera = CameraConfig()
    t_all = time.perf_counter()
    if args.reuse_bags:
        from rtc_ros.recording.bag import read_sidecar

        bags = sorted(str(p) for p in Path(args.bags).glob("demo_*") if (read_sidecar(p) or {}).get("success"))
        gen_info: dict[str, Any] = {"episodes": len(bags), "successes": len(bags), "seconds": 0.0}
    else:
        gen_info = generate_demos(args.bags, DemoConfig(episodes=args.episodes, seed0=args.seed * 100_000), camera)
        bags = gen_info.pop("bags")
    log.info("demos: %d/%d successful in %.0f s -> %s", gen_info["successes"], gen_info["episodes"],
             gen_info["seconds"], args.bags)
    t_load = time.perf_counter()
    ds = load_demo_bags(bags)
    log.info("dataset: %d samples, %d images from %d bags (%.0f s)", len(ds), len(ds.images), len(bags),
             time.perf_counter() - t_load)
    cfg = SimTrainConfig(steps=args.steps, batch_size=args.batch_size, width=args.width, depth=args.depth,
                         token_hidden=args.token_hidden, channel_hidden=2 * args.width, max_minutes=args.max_minutes, threads=args.threads,
                         seed=args.seed)
    cmd = "python -m rtc_ros.experiments.train_sim_policy " + " ".join(argv if argv is not None else sys.argv[1:])
    path, info = train_policy(ds, args.out, camera, cfg, args.name,
                              extra={"demos": {k: v for k, v in gen_info.items()}, "regenerate": cmd.strip()})
    total = time.perf_counter() - t_all
    print(json.dumps({"spec": str(path), "total_seconds": round(total, 1), "demo_seconds": round(gen_info["seconds"], 1),
                      "demo_successes": gen_info["successes"], "demo_episodes": gen_info["episodes"], **info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
