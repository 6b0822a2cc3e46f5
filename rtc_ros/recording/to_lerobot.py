"""Recorded episodes -> a LeRobot dataset, to fine-tune a VLA (SmolVLA, pi0, GR00T, ...) with LeRobot on your own
robot's demonstrations.

``python -m rtc_ros.recording.to_lerobot BAG_DIR [BAG_DIR ...] --out DIR [--task TEXT] [options]``, run where
LeRobot is installed (``.venv-lerobot``: docs/recording.md). The dataset is written by LeRobot's own
``LeRobotDataset.create / add_frame / save_episode / finalize`` (its current format, v3), so ``lerobot-train
--dataset.repo_id=REPO_ID --dataset.root=DIR`` reads it.

The frames come from the package's one bags-to-dataset pairing (:func:`rtc_ros.recording.dataset.episode_samples`,
as ``from_bags``): each episode on its controller grid (``dt``), frame ``k``'s observation = the joint state and each
camera's frame belonging to step ``k``, its action = the command executed at step ``k`` (``rtc/executor_state``, else
the command topics). LeRobot's convention is the same (``action`` of frame ``k`` is what was commanded at ``k``).

Features (names in action order; joints in the robot's units as recorded, radians for a ROS arm):

* ``observation.state`` ``(M,)`` float32, ``action`` ``(M,)`` float32, both named by the joints;
* ``observation.images.<camera>`` ``(h, w, 3)`` at the recorded size (RGB; a mono camera repeated into three
  channels, an alpha channel dropped), a video (LeRobot's default) or PNG images (``--images``).

Left out as ``from_bags`` leaves them out (:func:`rtc_ros.recording.dataset.keep_episode`: failed, cut short
unless ``--include-status``, with ``--only-success`` the ones without a success verdict). An episode with a pause
(two grid steps more than 1.5 ``dt`` apart: paused, disabled, re-synced, stalled) is split there into separate
LeRobot episodes: LeRobot samples action chunks from consecutive frames, and one across a pause would pair an
observation with actions chosen after it. Each episode's task: ``--task``, else the recorded ``task`` (the recorder's
start meta); without ``--task`` a recorder episode without one is refused before anything is written (a bag without
a sidecar, at its turn). The bags are read one at a time (memory: one episode's frames). Interrupted (SIGINT,
SIGTERM) or stopped by an error, the episodes written so far are finalised: a readable dataset. The last stdout
line is a JSON summary.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rtc_ros.recording.dataset import (DatasetError, action_grid, bag_paths, empty_reason, episode_samples,
                                       keep_episode, left_out_reason, recorded_joint_names)
from rtc_ros.recording.episode import Episode, TopicRoles, load_episodes
from rtc_ros.recording.from_bags import add_episode_arguments, recorded_cameras, run_cli
from rtc_ros.recording.params_file import joint_names_from_params, training_params
from rtc_ros.recording.sidecar import read_sidecar

log = logging.getLogger(__name__)

#: grid steps farther apart than this many ``dt`` end a LeRobot episode (as from_bags' pause rule)
PAUSE_GAP = 1.5


@dataclass(frozen=True)
class Part:
    """One LeRobot episode: ``n`` consecutive controller steps of one recorded episode."""

    source: str  # the recorded episode's name (and the part's index when split at pauses)
    task: str
    state: np.ndarray  # (n, M) float32
    action: np.ndarray  # (n, M) float32
    images: dict[str, list[np.ndarray]]  # camera -> n frames (h, w, 3) uint8


def rgb(img: np.ndarray) -> np.ndarray:
    """``(h, w, c)`` uint8 -> ``(h, w, 3)``: mono repeated, alpha dropped."""
    img = np.asarray(img, dtype=np.uint8)
    if img.ndim == 2:
        img = img[..., None]
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else np.ascontiguousarray(img[..., :3])


def episode_parts(ep: Episode, names: list[str], dt: float, cameras: dict[str, str],
                  command_topics: list[str] | None, task: str | None) -> list[Part]:
    """``ep`` as LeRobot episodes (split at pauses; module docstring). Raises DatasetError naming the episode."""
    task = str(task or ep.meta.get("task") or "")  # (--task wins: the simulator records 'transfer_cube')
    if not task:
        raise DatasetError(f"{ep.name}: no task recorded (the recorder's start meta 'task') and no --task given: "
                           "LeRobot needs one per episode")
    q, cams, a, ks, _ = episode_samples(ep, names, 1, dt, cameras, command_topics)
    t = action_grid(ep, names, dt, command_topics)[0][ks]
    cuts = np.flatnonzero(np.diff(t) > PAUSE_GAP * dt) + 1
    parts = []
    for i, rows in enumerate(np.split(np.arange(len(ks)), cuts)):
        if len(rows):
            parts.append(Part(f"{ep.name}" + (f" part {i}" if len(cuts) else ""), task, q[rows], a[rows, 0],
                              {c: [rgb(frames[j]) for j in idx[rows]] for c, (frames, idx) in cams.items()}))
    return parts


def features(names: list[str], image_shapes: dict[str, tuple[int, int, int]], videos: bool) -> dict[str, Any]:
    """LeRobot's feature dict (its own recording's layout)."""
    vec = {"dtype": "float32", "shape": (len(names),), "names": list(names)}
    out: dict[str, Any] = {"observation.state": dict(vec), "action": dict(vec)}
    for cam, shape in image_shapes.items():
        out[f"observation.images.{cam}"] = {"dtype": "video" if videos else "image", "shape": shape,
                                            "names": ["height", "width", "channels"]}
    return out


def integer_fps(dt: float) -> int:
    """LeRobot datasets have an integer frame rate: ``1 / dt`` within 0.1 % of one (DatasetError otherwise)."""
    fps = round(1.0 / dt)
    if fps < 1 or abs(1.0 / dt - fps) > 1e-3 * fps:
        raise DatasetError(f"--dt {dt:g} s ({1.0 / dt:g} Hz): a LeRobot dataset needs an integer frame rate")
    return fps


def _episodes(paths: list[Path], cameras: dict[str, str], joint_states_topic: str) -> Iterator[Episode]:
    """Every episode of ``paths``, one bag in memory at a time."""
    roles = TopicRoles(joint_states=joint_states_topic, images=tuple(cameras.values()) or None)
    for b in paths:
        yield from load_episodes(b, roles, with_images=bool(cameras))


def _untasked(paths: list[Path], only_success: bool, include_status: list[str]) -> list[str]:
    """Recorder bags to be exported whose sidecar has no ``task`` (checked before writing; bags without a sidecar,
    ``ros2 bag record``'s, at their turn), judged by :func:`left_out_reason` on the sidecar (a simulator's verdict,
    read from the bag, is not known yet: such an episode is checked at its turn)."""
    return [p.name for p in paths if (meta := read_sidecar(p)) is not None and not meta.get("task")
            and left_out_reason(Episode(p.name, p, meta, 0, 0), only_success, include_status) is None]


def export(args: argparse.Namespace) -> dict[str, Any]:
    """The module docstring's conversion; returns the JSON summary. Raises DatasetError (naming the episode or
    option); the episodes written before an error stay readable (the dataset is finalised either way)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset  # (only here: LeRobot's venv)
    from lerobot.datasets.video_utils import resolve_vcodec

    vcodec = None if args.images else resolve_vcodec(args.vcodec)  # ('auto': a hardware encoder, else libsvtav1)

    if args.params and not Path(args.params).is_file():
        raise DatasetError(f"--params {args.params}: no such file")
    params = training_params(args.params)
    cameras = recorded_cameras(args.camera, params)
    dt = float(args.dt or (1.0 / float(params["rate_hz"]) if params.get("rate_hz") else 0.02))
    fps = integer_fps(dt)
    paths = bag_paths(args.bag_dirs)
    if not args.task and (missing := _untasked(paths, args.only_success, args.include_status)):
        raise DatasetError(f"no task recorded in {missing[:5]}{' ...' if len(missing) > 5 else ''} and no --task "
                           "given: LeRobot needs an instruction per episode")
    if args.out.exists():
        raise DatasetError(f"--out {args.out} exists: give a new directory (nothing was written)")
    names = joint_names_from_params(params)
    ds, written, frames, skipped, parts_of, said_state_only = None, [], 0, {}, {}, False
    try:
        for ep in _episodes(paths, cameras, args.joint_states_topic):
            if STOP:
                raise KeyboardInterrupt
            if not keep_episode(ep, args.only_success, args.include_status):
                skipped[ep.name] = left_out_reason(ep, args.only_success, args.include_status)
                continue
            if why := empty_reason(ep):
                log.warning("skipping %s (%s)", ep.name, why)
                skipped[ep.name] = why
                continue
            names = names or recorded_joint_names([ep])
            images = sorted(t for t in ep.counts if "image" in t)
            if images and not cameras and not said_state_only:  # (said once: state-only is a choice)
                said_state_only = True
                log.warning("%s recorded %s, and no camera is exported: give --params (its camera_topics) or "
                            "--camera NAME=TOPIC for a policy that sees them", ep.name, images)
            if not names:
                raise DatasetError(f"{ep.name}: cannot tell the joint names: give --params (arms/joint_names)")
            parts = episode_parts(ep, list(names), dt, cameras, args.command_topic, args.task)
            for part in parts:
                shapes = {c: tuple(f[0].shape) for c, f in part.images.items()}
                if ds is None:
                    _check_codec(shapes, vcodec)
                    feats = features(list(names), shapes, videos=not args.images)
                    ds = LeRobotDataset.create(args.repo_id or f"local/{args.out.name}", fps, feats, root=args.out,
                                               robot_type=args.robot_type, use_videos=not args.images,
                                               vcodec=vcodec or "libsvtav1")
                _check_shapes(ds.features, shapes, part.source)
                for i in range(len(part.state)):
                    ds.add_frame({"observation.state": part.state[i], "action": part.action[i], "task": part.task,
                                  **{f"observation.images.{c}": f[i] for c, f in part.images.items()}})
                ds.save_episode()
                written.append(part.source)
                frames += len(part.state)
                if STOP:  # (Ctrl-C / SIGTERM: after the episode being written, never inside LeRobot's writer)
                    raise KeyboardInterrupt
            parts_of[ep.name] = len(parts)
    finally:
        if ds is not None:
            ds.finalize()
    if ds is None:
        raise DatasetError("no usable demonstration episode" + (f" ({len(skipped)} left out)" if skipped else ""))
    return {"out": str(args.out), "repo_id": ds.repo_id, "fps": fps, "episodes": len(written), "frames": frames,
            "recorded_episodes": len(parts_of), "split_at_pauses": sorted(n for n, k in parts_of.items() if k > 1),
            "left_out": skipped, "joint_names": list(names), "cameras": cameras}  # left_out: {episode: why}


def _check_codec(shapes: dict[str, tuple[int, ...]], vcodec: str | None) -> None:
    """SVT-AV1 (LeRobot's default codec) kills the process (SIGFPE) on frames narrower than 32 px (measured with
    PyAV 15.1: widths 8-24 crash, 30 and up encode): refused before anything is written."""
    narrow = {c: s for c, s in shapes.items() if s[1] < 32}
    if vcodec == "libsvtav1" and narrow:
        raise DatasetError(f"cameras {sorted(narrow)} are narrower than 32 px, which the libsvtav1 encoder cannot "
                           "encode: give --vcodec h264, or --images (nothing was written)")


def _check_shapes(feats: dict[str, Any], shapes: dict[str, tuple[int, ...]], source: str) -> None:
    for cam, shape in shapes.items():
        want = tuple(feats[f"observation.images.{cam}"]["shape"])
        if shape != want:
            raise DatasetError(f"{source}: camera '{cam}' frames are {shape[1]}x{shape[0]}, the dataset's "
                               f"{want[1]}x{want[0]} (from the first episode): one size per camera in a LeRobot dataset")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m rtc_ros.recording.to_lerobot",
                                 description="Recorded episodes -> a LeRobot dataset (fine-tune a VLA on them).")
    ap.add_argument("bag_dirs", nargs="+", type=Path, help="directories of episode bags (searched recursively)")
    ap.add_argument("--out", required=True, type=Path, help="the dataset's root directory (must not exist)")
    ap.add_argument("--repo-id", default=None, help="LeRobot repo id (default local/<out's name>)")
    ap.add_argument("--task", default=None, help="the instruction of every episode, whatever was recorded (default: "
                                                 "each one's recorded task, the recorder's start meta)")
    ap.add_argument("--params", default=None, help="ROS params file of the nodes (joints, rate, cameras)")
    ap.add_argument("--dt", type=float, default=None, help="controller period in s (default 1/rate_hz or 0.02)")
    ap.add_argument("--camera", action="append", help="NAME=TOPIC: image topic of observation.images.NAME "
                                                      "(default: the params file's cameras)")
    add_episode_arguments(ap)
    ap.add_argument("--images", action="store_true", help="PNG images instead of videos (no video encoder needed)")
    ap.add_argument("--vcodec", default="libsvtav1", help="video codec (LeRobot's default libsvtav1; h264 is faster; "
                                                          "auto: a hardware encoder, else libsvtav1)")
    ap.add_argument("--robot-type", default=None, help="the dataset's robot_type (e.g. aloha)")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap


#: set by SIGINT / SIGTERM: the export stops after the episode being written, then finalises
STOP: list[bool] = []


def _interrupt(signum: int, frame: object) -> None:
    if not STOP:
        print("stopping after the episode being written (the dataset is then finalised)", file=sys.stderr)
    STOP.append(True)


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit 0 on success, 2 on a data problem or without LeRobot (message on stderr)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    STOP.clear()
    before = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}  # (the episodes
    try:  # written so far are finalised: readable)
        return run_cli(_export, args)
    except KeyboardInterrupt:
        print(f"interrupted: the episodes written to {args.out} so far are a readable dataset", file=sys.stderr)
        return 130
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _export(args: argparse.Namespace) -> dict[str, Any]:
    try:
        return export(args)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("lerobot"):
            raise
        raise DatasetError("LeRobot is not installed in this Python: run this with the LeRobot venv's python "
                           "(.venv-lerobot/bin/python, make setup-lerobot; docs/recording.md)") from None


if __name__ == "__main__":
    sys.exit(main())
