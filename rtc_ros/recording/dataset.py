"""Demonstration bags -> a flow-policy training set ``obs (N, O)``, ``actions (N, H, M)`` (ROS-free).

For every episode the commanded joint positions are put on the controller grid (period ``dt``):

* from ``rtc/executor_state`` when recorded (its step indices are the grid), else
* from the command topic(s) (teleoperation, ``joint_commands`` or the per-arm
  ``<arm>_controller/commands``), resampled at ``dt`` by holding the latest command.

At each grid step ``k`` the observation is built exactly as ``policy_inference`` builds it
(:class:`rtc_ros.policies.observation.ObservationBuilder`): the latest measured joint state received
up to half a tick after step ``k``'s time (reordered to the action joint names) and likewise the
latest frame of every camera.
The target chunk is ``A[k : k + H]`` -- index 0 is the action of the step at which the observation
was taken (the package-wide convention) -- padded past the episode's end by holding the last
command (the arm stays where the demonstration ended).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from rtc_ros.policies.observation import ObservationBuilder
from rtc_ros.recording.episode import Episode, Series, combine_series, latest_index, topic_matches

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """The bags cannot produce the requested training set (names, topics, sizes); says why."""


@dataclass
class DemoDataset:
    """A training set. ``obs (N, O)`` float32, ``actions (N, H, M)`` float32, ``episode (N,)`` int.

    ``sources``: per episode, which topics fed actions / observations (for the spec's provenance).
    """

    obs: np.ndarray
    actions: np.ndarray
    episode: np.ndarray
    joint_names: list[str]
    obs_spec: list[dict[str, Any]]
    dt: float
    episodes: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.obs.shape[0])


def reorder(series: Series, names: list[str], what: str) -> np.ndarray:
    """``series.q`` columns in ``names`` order. Raises :class:`DatasetError` naming missing joints."""
    if list(series.names) == list(names):
        return series.q
    index = {n: i for i, n in enumerate(series.names)}
    missing = [n for n in names if n not in index]
    if missing:
        if len(series.names) == len(names) and not any(n in index for n in names):
            # unnamed values (Float64MultiArray per arm): trust the topic order
            return series.q
        raise DatasetError(f"{what} lacks joints {missing} (has {series.names})")
    return series.q[:, [index[n] for n in names]]


def action_grid(
    ep: Episode, names: list[str], dt: float, command_topics: list[str] | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(t (T,), A (T, M), source)``: commanded positions on the controller grid of one episode."""
    if not command_topics and ep.executor is not None and len(ep.executor) > 1 and (ep.executor.step >= 0).all():
        ex = ep.executor
        q = reorder(ex, names, f"{ep.name}: rtc/executor_state")
        steps = ex.step - ex.step[0]
        grid = np.arange(int(steps[-1]) + 1)
        idx = latest_index(steps, grid)  # a lost tick repeats the previous command
        t = ex.t[0] + grid * dt
        return t, q[idx], "rtc/executor_state"
    if command_topics:
        per = {}
        for want in command_topics:
            hits = [t for t in ep.command_topics if topic_matches(t, want)]
            if not hits:
                raise DatasetError(f"{ep.name}: no command topic '{want}' (have {sorted(ep.command_topics)})")
            per[hits[0]] = ep.command_topics[hits[0]]
        series = combine_series(per, list(per))
    else:
        series = ep.commands
    if series is None or len(series) < 2:
        raise DatasetError(f"{ep.name}: no commands recorded (no rtc/executor_state and no command topic)")
    q = reorder(series, names, f"{ep.name}: commands")
    n = int(round((series.t[-1] - series.t[0]) / dt)) + 1
    t = series.t[0] + np.arange(n) * dt
    # the command of tick k: the latest one received up to half a tick after the tick's time
    return t, q[latest_index(series.t, t + 0.5 * dt)], ",".join(command_topics or sorted(ep.command_topics))


def episode_samples(
    ep: Episode,
    builder: ObservationBuilder,
    names: list[str],
    horizon: int,
    dt: float,
    cameras: dict[str, str],
    command_topics: list[str] | None = None,
    stride: int = 1,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(obs (n, O), actions (n, H, M), provenance)`` of one episode (see module docstring).

    Args:
        cameras: obs_spec camera name -> recorded image topic (matched by suffix).
    """
    t, A, src = action_grid(ep, names, dt, command_topics)
    if ep.joint_states is None or not len(ep.joint_states):
        raise DatasetError(f"{ep.name}: no joint states recorded")
    js = ep.joint_states
    q_meas = reorder(js, names, f"{ep.name}: joint_states")
    # observation of tick k: the latest sample received up to half a tick after the tick's time
    j_idx = latest_index(js.t, t + 0.5 * dt)
    frames: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}
    for cam, topic in cameras.items():
        hits = [k for k in ep.images if topic_matches(k, topic)]
        if not hits:
            raise DatasetError(f"{ep.name}: camera '{cam}' topic '{topic}' not recorded (have {sorted(ep.images)})")
        frames[cam] = ep.images[hits[0]]
    i_idx = {cam: latest_index(ts, t + 0.5 * dt) for cam, (ts, _) in frames.items()}
    valid = j_idx >= 0
    for idx in i_idx.values():
        valid &= idx >= 0
    ks = np.nonzero(valid)[0][::max(1, stride)]
    T = A.shape[0]
    obs = np.empty((len(ks), builder.obs_dim), dtype=np.float32)
    acts = np.empty((len(ks), horizon, A.shape[1]), dtype=np.float32)
    for n, k in enumerate(ks):
        imgs = {cam: frames[cam][1][i_idx[cam][k]] for cam in frames}
        obs[n] = builder.build(q_meas[j_idx[k]], imgs)
        rows = np.minimum(np.arange(k, k + horizon), T - 1)  # hold the last command past the end
        acts[n] = A[rows]
    prov = {"episode": ep.name, "bag": str(ep.path), "actions_from": src, "steps": int(T), "samples": int(len(ks)),
            "skipped_steps_without_obs": int((~valid).sum())}
    return obs, acts, prov


def build_dataset(
    episodes: Iterable[Episode],
    obs_spec: list[dict[str, Any]],
    joint_names: list[str],
    horizon: int,
    dt: float,
    cameras: dict[str, str] | None = None,
    command_topics: list[str] | None = None,
    stride: int = 1,
    only_success: bool = False,
) -> DemoDataset:
    """Concatenate :func:`episode_samples` over ``episodes``.

    Raises:
        DatasetError: no usable episode, or a camera of ``obs_spec`` without a topic.
    """
    builder = ObservationBuilder(obs_spec, len(joint_names))
    cameras = dict(cameras or {})
    missing = [c for c in builder.camera_names if c not in cameras]
    if missing:
        raise DatasetError(f"obs_spec cameras {missing} have no image topic (give --camera NAME=TOPIC)")
    cameras = {c: cameras[c] for c in builder.camera_names}
    obs_l, act_l, ep_l, names_l, prov_l = [], [], [], [], []
    for ep in episodes:
        if only_success and ep.meta.get("success") is False:
            log.info("skipping %s (success=false)", ep.name)
            continue
        if ep.meta.get("status") in ("failed",):
            log.warning("skipping %s (status %s)", ep.name, ep.meta.get("status"))
            continue
        o, a, prov = episode_samples(ep, builder, joint_names, horizon, dt, cameras, command_topics, stride)
        if not len(o):
            log.warning("%s: no samples (observations never available)", ep.name)
            continue
        ep_l.append(np.full(len(o), len(names_l)))
        obs_l.append(o)
        act_l.append(a)
        names_l.append(ep.name)
        prov_l.append(prov)
    if not obs_l:
        raise DatasetError("no usable demonstration episode")
    return DemoDataset(obs=np.concatenate(obs_l), actions=np.concatenate(act_l), episode=np.concatenate(ep_l),
                       joint_names=list(joint_names), obs_spec=obs_spec, dt=dt, episodes=names_l, sources=prov_l)
