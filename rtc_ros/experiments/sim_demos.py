"""Demonstrations for the sim policies: the scripted expert's episodes as bags, and the dataset from them.

1. **Demonstrations as bags** (:func:`generate_demos`). The scripted expert
   (:class:`rtc_ros.sim.expert.ScriptedExpert`, >= 90 % success) runs offline (faster than real time)
   in :class:`~rtc_ros.sim.bimanual.BimanualSim`; every episode is written as one rosbag2/MCAP bag in
   the live topic layout of the ``bimanual_sim`` node -- ``joint_states`` (50 Hz),
   ``cam_high/image_raw`` (32x32 rgb8 ``workspace`` camera, 10 Hz), ``rtc/progress``, and the expert's
   commands on ``left_controller/commands`` / ``right_controller/commands`` (``Float64MultiArray``, the
   executor's default output) -- with the recorder's sidecar (success, score). At step k the joint
   state and image are stamped ``t_k`` and the command computed from them (the one executed at step k)
   ``t_k + 2 us``. Messages are serialized by :mod:`rtc_ros.recording.cdr`. To cover recovery states, a
   fraction of the episodes execute the expert's targets plus smooth (Ornstein-Uhlenbeck) noise while
   the recorded label stays the clean target (DART-style); only successful episodes are used.
2. **Dataset from the bags** (:func:`load_demo_dataset`): the package's one bags-to-dataset pipeline,
   :mod:`rtc_ros.recording.dataset` (also behind ``python -m rtc_ros.recording.from_bags``). The
   observation of step k is ``[joint positions (14), newest image (32x32x3 / 255)]`` (:func:`obs_spec_for`)
   built with the inference node's :class:`~rtc_ros.policies.observation.ObservationBuilder`; the label
   is the H = 50 commands from step k on (index 0 = the command executed at the observation's step,
   computed from that observation; the last command is held past the end of the episode).

Training on them: :mod:`rtc_ros.experiments.train_sim_policy`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from rtc_ros.sim.camera import CameraConfig, CameraRenderer  # noqa: E402

if TYPE_CHECKING:
    from rtc_ros.recording.demo_dataset import DemoDataset

log = logging.getLogger("rtc_ros.experiments.sim_demos")

HORIZON = 50
JOINT_ENTRY = "joint_positions"
CAMERA_NAME = "cam_high"
CAMERA_TOPIC = "cam_high/image_raw"
JOINT_STATES_TOPIC = "joint_states"
PROGRESS_TOPIC = "rtc/progress"
COMMAND_TOPICS = ("left_controller/commands", "right_controller/commands")


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
        task: the sim task (``transfer_cube`` | ``conveyor_cube``); its own scripted expert.
            Demonstrations run with the simulated arms' protective stops off: the DART-style noise on
            the executed targets is a data-collection device (its labels stay the clean expert
            commands), and its tick-to-tick jumps would trip the stops (docs/sim_arms.md).
        expert_schedule: the transfer expert's waypoint timing, a name in
            :data:`rtc_ros.sim.expert_schedule.SCHEDULES` (``""``: the task expert's default; the
            conveyor expert runs only ``original``).
    """

    episodes: int = 150
    seed0: int = 0
    noise_fraction: float = 0.5
    noise_std: float = 0.03
    noise_tau_s: float = 0.3
    image_every: int = 5
    tail_steps: int = 10
    task: str = "transfer_cube"
    expert_schedule: str = ""

    def __post_init__(self) -> None:
        from rtc_ros.sim.expert_schedule import schedule_name

        schedule_name(self.task, self.expert_schedule)  # ValueError naming expert_schedule


def generate_demos(out_dir: str | Path, cfg: DemoConfig, camera: CameraConfig | None = None) -> dict[str, Any]:
    """Roll out the scripted expert and write one bag per episode into ``out_dir``.

    Returns:
        ``{"episodes", "successes", "bags": [paths of successful episodes], "seconds"}``.
    """
    from rtc_ros.recording import cdr
    from rtc_ros.recording.bag import BagWriter
    from rtc_ros.sim import CONTROL_DT, JOINT_NAMES, BimanualSim
    from rtc_ros.sim.conveyor_expert import make_expert
    from rtc_ros.sim.expert_schedule import SCHEDULES, schedule_name

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    camera = camera or CameraConfig()
    sim = BimanualSim(max_episode_steps=10_000, task=cfg.task, protective_stops=False)
    renderer = CameraRenderer(sim.model, camera)
    schedule = schedule_name(cfg.task, cfg.expert_schedule)
    expert = make_expert(sim, SCHEDULES[schedule])
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
                        cdr.joint_state_cdr(stamp_ns, names, obs.joint_positions, obs.joint_velocities))
                w.write(PROGRESS_TOPIC, stamp_ns, cdr.int32_cdr(sim.progress))
                if t % cfg.image_every == 0:
                    w.write(CAMERA_TOPIC, stamp_ns, cdr.image_cdr(stamp_ns, renderer.render(sim.data), CAMERA_NAME))
                a = expert.act(obs)  # the command executed at step t
                for i, topic in enumerate(COMMAND_TOPICS):
                    w.write(topic, stamp_ns + 2000 + i, cdr.float64_array_cdr(a[7 * i:7 * i + 7]))
                if noisy:
                    noise = alpha * noise + sigma * rng.standard_normal(14) * arm_mask
                obs = sim.step(a + noise if noisy else a).obs
            ok = bool(sim.success)
            successes += ok
            w.close({"task": cfg.task, "source": "scripted_expert", "seed": seed, "noisy": noisy,
                     "expert_schedule": schedule,
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
def load_demo_dataset(bags: list[str | Path], camera: CameraConfig | None = None, horizon: int = HORIZON,
                      frames: int = 1) -> DemoDataset:
    """The training set of successful demonstration bags (the layout written by :func:`generate_demos`
    or a live recording of the same topics), via :func:`rtc_ros.recording.dataset.dataset_from_bags`.

    Raises:
        rtc_ros.recording.dataset.DatasetError: a bag lacks a topic, or no successful episode.
    """
    from rtc_ros.recording.dataset import dataset_from_bags
    from rtc_ros.sim import CONTROL_DT, JOINT_NAMES

    return dataset_from_bags(bags, obs_spec_for(camera or CameraConfig(), frames), list(JOINT_NAMES), horizon, CONTROL_DT,
                             cameras={CAMERA_NAME: CAMERA_TOPIC}, command_topics=list(COMMAND_TOPICS),
                             only_success=True, joint_states_topic=JOINT_STATES_TOPIC)


def obs_spec_for(camera: CameraConfig, frames: int = 1) -> list[dict[str, Any]]:
    """The policy spec's ``obs_spec``: joints then the camera image (HWC), or its newest ``frames`` frames."""
    shape = [camera.height, camera.width, 3]
    return [{"name": JOINT_ENTRY, "shape": [14]}, {"name": CAMERA_NAME, "shape": [frames, *shape] if frames > 1 else shape}]
