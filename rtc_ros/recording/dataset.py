"""Demonstration bags -> a flow-policy training set: the one bags-to-dataset pipeline (ROS-free).

Used by ``python -m rtc_ros.recording.from_bags`` and by the sim policy trainer
(:mod:`rtc_ros.experiments.sim_demos`); both go through :func:`dataset_from_bags`.

**Index-0 convention** (the package-wide one: chunk index 0 = the observation's step).
Each episode is put on its controller grid, step ``k`` at time ``t_k = t_0 + k dt`` (times are the
recording times). A message *belongs to step k* when ``k`` is the step nearest its time: the
latest message received at or before ``t_k + dt/2``; a joint state, with stamped executor ticks and joint states,
as ``policy_inference`` places it (:func:`tick_stamps`). A step whose joint state or frame was received more than
``max_input_age`` (0.5 s, ``obs_timeout``) before it is no sample (``skipped_stale_input``).

* ``A[k]``, the action of step k = the command executed at step k: from ``rtc/executor_state`` when
  recorded (from its first commanded step: an executor started paused reports step -1 until then; its step
  indices are the grid, ``t_0`` its first tick, and after a pause, where the step number
  stands still, the first ticks after it: :func:`executor_step_times`; a lost tick repeats the previous
  command; a step number going back, an executor restarted mid-episode, is refused), else from the command
  topic(s) (teleoperation, ``joint_commands`` or the per-arm ``<arm>_controller/commands``; ``t_0`` = the
  first command of the first topic moved to the phase of all its messages,
  :func:`rtc_ros.recording.episode_types.grid_phase`), each topic resampled on the grid on its own and the topics
  concatenated in arm order.
* The observation of step k: the joint state and the frame of every camera belonging to step k
  (the latest received at or before ``t_k + dt/2``), reordered to the action joint names and built
  exactly as ``policy_inference`` builds it (:class:`rtc_ros.policies.observation.ObservationBuilder`).
  A frame-stack entry (``[t, h, w, c]``) gets that frame and the ``t - 1`` frames recorded before it on
  the same topic, newest first; at the episode's start its first frame is repeated (as the node does
  before it has ``t`` frames). A joint-history entry (``[t, M]``) gets the joint positions of steps
  ``k, k - 1, ...`` of the episode (its first repeated), as ``policy_inference`` keeps them ``dt`` apart,
  and then the frame stacks too hold the frames of steps ``k, k - 1, ...`` (the node times them alike).
* The target chunk of that sample is ``A[k : k + H]``: **action 0 is the command executed at the
  observation's step**. Past the episode's end the last command is held (the arm stays where the
  demonstration ended). Steps before every observation source has spoken are skipped, and so are the
  samples whose chunk would span a pause (two grid steps more than 1.5 ``dt`` apart: its later actions were
  chosen after the pause; counted as ``skipped_across_pause``; kept before 2026-12-07).

The dataset is kept compact (joint rows, uint8 frames and per-row frame indices); observations are
built per batch (:meth:`rtc_ros.recording.demo_dataset.DemoDataset.batch_sampler`), so a camera dataset need not fit as float32.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from rtc_ros.policies.observation import ObservationBuilder
from rtc_ros.recording.demo_dataset import DatasetError, DemoDataset
from rtc_ros.recording.episode import (Episode, Series, TopicRoles, find_bags, grid_series,
                                      latest_index, load_episodes, topic_matches)
from rtc_ros.recording.command_order import arm_order
from rtc_ros.recording.executor_trace import (check_tick_period, commanding, executor_step_times,  # noqa: F401
                                             across_pause, check_grid_drift, tick_stamps, ANCHOR_TICKS,
                                             PERIOD_TOLERANCE)
from rtc_ros.recording.recover import find_unfinished_under

log = logging.getLogger(__name__)

#: episode statuses left out of a training set unless asked for: closed before the operator's ``stop``
CUT_SHORT = ("aborted", "interrupted", "recovered", "stopped_low_disk")


def reorder(series: Series, names: list[str], what: str) -> np.ndarray:
    """``series.q`` columns in ``names`` order. Raises :class:`DatasetError` naming missing joints."""
    if list(series.names) == list(names):
        return series.q
    index = {n: i for i, n in enumerate(series.names)}
    missing = [n for n in names if n not in index]
    if missing:
        unnamed = all(n.endswith("]") and "[" in n for n in series.names)  # combine_series' '<topic>[i]'
        if len(series.names) == len(names) and unnamed:
            # unnamed values (Float64MultiArray per arm): trust the topic order. Named joints that do not
            # match (another robot, a renamed arm) are refused below: read by position they would train
            # on joints in the wrong order
            return series.q
        raise DatasetError(f"{what} lacks joints {missing} (has {series.names})")
    return series.q[:, [index[n] for n in names]]


def _arm_ordered(ep: Episode, names: list[str]) -> list[str]:
    """The episode's command topics in action order: each per-arm topic (``<arm>_controller/...``) at the
    first action joint whose name holds ``<arm>`` as a token (``left_waist``, ``vx300s_left/j0``).
    Unnamed values (``Float64MultiArray``) are concatenated in this order and read by position, so an
    order that cannot be told is refused rather than guessed (``sorted`` put ``left`` before ``right``
    whatever the action order: with ``arms: [right, left]`` every label had the other arm's command)."""
    topics = sorted(ep.command_topics)
    ordered = arm_order(topics, names)
    if ordered is not None:
        return ordered
    if any(len(ep.command_topics[t].names) != ep.command_topics[t].q.shape[1] for t in topics):
        raise DatasetError(f"{ep.name}: cannot tell which arm each unnamed command topic drives ({topics}, action "
                           f"joints {names[:3]}...): give the command topics in action order (--command-topic)")
    return topics  # every topic names its joints: the columns are reordered by name


def _command_topics(ep: Episode, command_topics: list[str] | None, names: list[str]) -> list[str]:
    if not command_topics:
        return _arm_ordered(ep, names)
    out = []
    for want in command_topics:
        hits = [t for t in ep.command_topics if topic_matches(t, want)]
        if not hits:
            raise DatasetError(f"{ep.name}: no command topic '{want}' (have {sorted(ep.command_topics)})")
        out.append(hits[0])
    return out


def action_grid(
    ep: Episode, names: list[str], dt: float, command_topics: list[str] | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(t (T,), A (T, M), source)``: the command executed at each grid step of one episode (DatasetError for
    a dry run's episode: its commands never reached the robot)."""
    if ep.executor is not None and len(ep.executor.dry) and ep.executor.dry.any():
        raise DatasetError(f"{ep.name}: recorded in a dry run (rtc/executor_state says dry=1): its commands never "
                           "reached the robot, so they are not the actions its observations show")
    try:
        ex = commanding(ep.executor) if not command_topics and ep.executor is not None else None
    except DatasetError as exc:
        raise DatasetError(f"{ep.name}: {exc}") from None
    if ex is None and not command_topics and ep.executor is not None and len(ep.executor):
        log.warning("%s: rtc/executor_state has no run of commanded steps (step -1 throughout, or -1 after a "
                    "command): the actions come from the command topics, where a pause is not seen", ep.name)
    if ex is not None:
        check_tick_period(ex, dt, ep.name)
        check_grid_drift(ex.t, ex.step - ex.step[0], dt, ep.name, ex.stamp)
        q = reorder(ex, names, f"{ep.name}: rtc/executor_state")
        steps = ex.step - ex.step[0]
        back = np.flatnonzero(np.diff(steps) < 0)
        if back.size:
            i = int(back[0]) + 1
            raise DatasetError(f"{ep.name}: rtc/executor_state's step went back from {int(ex.step[i - 1])} to "
                               f"{int(ex.step[i])} ({ex.t[i]:.2f} s into the recording): the executor restarted during "
                               "the episode; leave it out, or record the two parts as two episodes")
        grid = np.arange(int(steps[-1]) + 1)
        first = np.searchsorted(steps, steps[latest_index(steps, grid)], side="left")  # (a lost tick: the one before)
        return executor_step_times(ex.t, steps, grid, dt, ex.stamp), q[first], "rtc/executor_state"
    topics = _command_topics(ep, command_topics, names)
    series = [ep.command_topics[t] for t in topics]
    if not series or len(series[0]) < 2:
        raise DatasetError(f"{ep.name}: no commands recorded (no rtc/executor_state and no command topic)")
    for t, sr in zip(topics, series):  # commands come at the controller rate: another rate is another setup
        period = float(np.median(np.diff(sr.t))) if len(sr) > 2 else dt
        if abs(period - dt) > PERIOD_TOLERANCE * dt:  # (as the executor's; 0.75-1.34 dt took 40 Hz for 50: an audit)
            raise DatasetError(f"{ep.name}: commands on {t} every {period * 1e3:.1f} ms, the controller period "
                               f"(--dt / rate_hz) is {dt * 1e3:.1f} ms: recorded at another rate (give --dt)")
    # each topic on the grid on its own; rows before every topic has spoken are dropped
    grid = grid_series({t: ep.command_topics[t] for t in topics}, topics, dt)
    if grid is None:
        raise DatasetError(f"{ep.name}: the command topics {topics} never overlap")
    return grid.t, reorder(grid, names, f"{ep.name}: commands"), ",".join(topics)


#: s: a step whose joint state or camera frame was received longer before it is no sample (policy_inference's
#: default ``obs_timeout``: it refuses such inputs)
MAX_INPUT_AGE_S = 0.5


def episode_samples(
    ep: Episode,
    names: list[str],
    horizon: int,
    dt: float,
    cameras: dict[str, str],
    command_topics: list[str] | None = None,
    stride: int = 1,
    max_input_age: float = MAX_INPUT_AGE_S,
) -> tuple[np.ndarray, dict[str, tuple[list[np.ndarray], np.ndarray]], np.ndarray, np.ndarray, dict[str, Any]]:
    """One episode's samples (see the module docstring).

    Args:
        cameras: obs_spec camera name -> recorded image topic (matched by suffix).
        max_input_age: a step whose joint state or frame was received longer ago (s) is no sample.

    Returns:
        ``(joints (n, M), {camera: (frames, frame index (n,))}, actions (n, H, M), steps (n,), provenance)``.
    """
    t, A, src = action_grid(ep, names, dt, command_topics)
    if ep.joint_states is None or not len(ep.joint_states):
        other = sorted(t for t in ep.counts if "joint_states" in t)  # (a driver publishing another type there)
        raise DatasetError(f"{ep.name}: no joint states recorded" + (
            f" ({other} recorded, but not as sensor_msgs/msg/JointState: see the sidecar's dropped_topics)"
            if other else ""))
    q_meas = reorder(ep.joint_states, names, f"{ep.name}: joint_states")
    ticks = tick_stamps(ep, len(t), dt) if src == "rtc/executor_state" else None
    if ticks is not None:  # policy_inference's rule: a state stamped at or after tick k is step k + 1's
        j_idx = np.searchsorted(ep.joint_states.stamp, ticks, side="left") - 1
    else:  # the joint state belonging to step k: the nearest step
        j_idx = latest_index(ep.joint_states.t, t + 0.5 * dt)
    valid = j_idx >= 0
    stale = valid & (t - ep.joint_states.t[np.maximum(j_idx, 0)] > max_input_age)
    cams: dict[str, tuple[list[np.ndarray], np.ndarray]] = {}
    for cam, topic in cameras.items():
        hits = [k for k in ep.images if topic_matches(k, topic)]
        if not hits:
            recorded = sorted(t for t in ep.counts if "image" in t or "cam" in t)  # what the bag has, as a hint
            where = (f"the bag's image-like topics: {recorded}" if recorded else
                     f"the bag has no image topic; its topics: {sorted(ep.counts)}")
            raise DatasetError(f"{ep.name}: camera '{cam}' topic '{topic}' not recorded ({where}; --camera NAME=TOPIC; "
                               "a camera off during the episode is in the sidecar's silent_topics)")
        ts, frames = ep.images[hits[0]]
        cams[cam] = (frames, latest_index(ts, t + 0.5 * dt))  # the frame belonging to step k
        valid &= cams[cam][1] >= 0
        stale |= valid & (t - ts[np.maximum(cams[cam][1], 0)] > max_input_age)
    if stale.any():  # (an audit: a camera dead for 4.9 s, or a 2 s gap in the joint states, was paired on silently)
        log.warning("%s: %d steps left out whose joint state or camera frame was received more than %.2f s before "
                    "them (a silent driver or camera: policy_inference refuses such inputs)", ep.name, int(stale.sum()),
                    max_input_age)
    ks = np.nonzero(valid & ~stale)[0][::max(1, stride)]
    across = across_pause(t, ks, horizon, dt)
    ks = ks[~across]
    rows = np.minimum(ks[:, None] + np.arange(horizon)[None, :], A.shape[0] - 1)  # hold the last command
    prov = {"episode": ep.name, "bag": str(ep.path), "actions_from": src, "steps": int(A.shape[0]),
            "samples": int(len(ks)), "skipped_steps_without_obs": int((~valid).sum()),
            "skipped_stale_input": int(stale.sum()), "skipped_across_pause": int(across.sum()),
            "observation_step_rule": "stamps" if ticks is not None else "nearest"}
    return (q_meas[j_idx[ks]].astype(np.float32), {c: (f, i[ks]) for c, (f, i) in cams.items()},
            A[rows].astype(np.float32), ks, prov)


def left_out_reason(ep: Episode, only_success: bool = False, include_status: Iterable[str] = ()) -> str | None:
    """Why ``ep`` is no demonstration data, else None: a ``failed`` episode (a write error); one cut short
    (:data:`CUT_SHORT`: aborted by the operator, interrupted, repaired after a crash -- unless the operator had
    stopped it and the recorder died within the stop grace --, stopped for low disk) unless its status is in
    ``include_status``; with ``only_success``, one without a success verdict (``success`` true, or the simulator's;
    before 2026-12-06 only an explicit failure was left out, so an abort, which has no verdict, was kept)."""
    status = ep.meta.get("status")
    if status == "failed":
        return f"status {status}"
    stopped = status == "recovered" and (ep.meta.get("recovery") or {}).get("stop_status") == "completed"
    if status in CUT_SHORT and status not in include_status and not stopped:  # (stopped: killed in its grace)
        return f"status {status}: cut short; include it with --include-status {status}"
    if only_success and ep.success is not True:  # the report's verdict (a 0 is a failure too)
        return "not a success" if ep.success is False else "no success verdict"
    return None


def empty_reason(ep: Episode) -> str | None:
    """Why ``ep`` holds nothing to learn from: neither joint states nor commands recorded in it (started and stopped
    at once, the driver and the executor not yet up); None otherwise. Such an episode is left out with this reason
    (before 2026-12-07 it stopped a whole build or export); one with commands but no joint states, or the reverse,
    is a wrong topic and still an error."""
    if (ep.joint_states is None or not len(ep.joint_states)) and ep.executor is None and not ep.command_topics and \
            not any(n and any(k in t for k in _DATA_TOPICS) for t, n in ep.counts.items()):  # (one of another type,
        # or under another namespace, is a wrong topic: an error, not a quiet skip -- a review)
        return (f"empty: no joint states and no commands recorded ({sum(ep.counts.values())} messages in "
                f"{ep.duration_s:.1f} s)")
    return None


#: topic name parts of an episode's data: an episode with a message on such a topic is not empty (:func:`empty_reason`)
_DATA_TOPICS = ("joint_state", "command", "executor_state", "image", "chunk")


def keep_episode(ep: Episode, only_success: bool = False, include_status: Iterable[str] = ()) -> bool:
    """Whether ``ep`` is demonstration data (:func:`left_out_reason`); each one left out is logged."""
    why = left_out_reason(ep, only_success, include_status)
    if why is not None:
        (log.warning if why.startswith("status") else log.info)("skipping %s (%s)", ep.name, why)
    return why is None


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
    include_status: Iterable[str] = (),
    max_input_age: float = MAX_INPUT_AGE_S,
) -> DemoDataset:
    """Concatenate :func:`episode_samples` over the episodes :func:`keep_episode` keeps (``max_input_age``: the
    params file's ``obs_timeout`` where it sets one).

    Raises:
        DatasetError: no usable episode, or a camera of ``obs_spec`` without a topic.
    """
    episodes = list(episodes)
    try:
        builder = ObservationBuilder(obs_spec, len(joint_names))
    except ValueError as exc:
        raise DatasetError(f"obs_spec: {exc}") from exc
    cameras = dict(cameras or {})
    missing = [c for c in builder.camera_names if c not in cameras]
    if missing:
        raise DatasetError(f"obs_spec cameras {missing} have no image topic (give --camera NAME=TOPIC)")
    cameras = {c: cameras[c] for c in builder.camera_names}
    if stride > 1 and (builder.joint_history > 1 or any(n > 1 for n in builder.camera_frames.values())):
        raise DatasetError(f"stride {stride}: the obs_spec has a joint history or a frame stack, whose older rows are "
                           "the steps before each sample's, which a stride leaves out (give stride 1)")
    J, A, E, S, names_l, prov_l = [], [], [], [], [], []
    frames: dict[str, list[np.ndarray]] = {c: [] for c in cameras}
    index: dict[str, list[np.ndarray]] = {c: [] for c in cameras}
    prev: dict[str, list[np.ndarray]] = {c: [] for c in cameras}
    empty = []
    for ep in episodes:
        if not keep_episode(ep, only_success, include_status):
            continue
        if why := empty_reason(ep):
            log.warning("skipping %s (%s)", ep.name, why)
            empty.append(ep.name)
            continue
        q, cams, a, ks, prov = episode_samples(ep, joint_names, horizon, dt, cameras, command_topics, stride,
                                               max_input_age)
        if not len(q):
            log.warning("%s: no samples (observations never available)", ep.name)
            continue
        for c, (f, i) in cams.items():
            index[c].append(i + len(frames[c]))
            prev[c].append(len(frames[c]) + np.maximum(np.arange(len(f)) - 1, 0))
            frames[c].extend(f)
        J.append(q)
        A.append(a)
        S.append(ks)
        E.append(np.full(len(q), len(names_l)))
        names_l.append(ep.name)
        prov_l.append(prov)
    if not J:
        skipped = [ep.name for ep in episodes if only_success and ep.success is False]
        raise DatasetError("no usable demonstration episode" + (
            f" (only_success / --only-success left out all {len(skipped)} episodes: none is marked a success)"
            if skipped and len(skipped) == len(episodes) else f" ({len(empty)} empty)" if empty else ""))
    return DemoDataset(joints=np.concatenate(J), frames=frames,
                       frame_index={c: np.concatenate(i) for c, i in index.items()}, actions=np.concatenate(A),
                       episode=np.concatenate(E), step=np.concatenate(S), joint_names=list(joint_names),
                       obs_spec=obs_spec, dt=dt, episodes=names_l, sources=prov_l,
                       frame_prev={c: np.concatenate(p).astype(np.int64) for c, p in prev.items()})


def bag_paths(bags: Iterable[str | Path]) -> list[Path]:
    """The episode bags under ``bags`` (bag directories, or directories searched for bags); unfinished ones (a
    recorder killed mid-episode) left out with a warning. Raises DatasetError: no bag found."""
    bags = list(bags)
    paths = [b for d in bags for b in find_bags(d)]
    unfinished = [u for d in bags if Path(d).is_dir() for u in find_unfinished_under(d)]
    if unfinished:  # not readable until repaired (the report lists them too)
        log.warning("%d unfinished bags left out (repair them with 'python -m rtc_ros.recording.recover "
                    "DIR'): %s", len(unfinished), ", ".join(str(u) for u in unfinished))
    if not paths:
        raise DatasetError(f"no bags under {[str(d) for d in bags]}")
    return paths


def load_bag_episodes(bags: Iterable[str | Path], cameras: dict[str, str] | None = None,
                      joint_states_topic: str = "joint_states") -> list[Episode]:
    """Every episode of ``bags`` (bag directories, or directories searched for bags), with the
    frames of the ``cameras`` topics decoded.

    Raises:
        DatasetError: no bag found.
    """
    cameras = dict(cameras or {})
    paths = bag_paths(bags)
    roles = TopicRoles(joint_states=joint_states_topic, images=tuple(cameras.values()) or None)
    episodes = [ep for b in paths for ep in load_episodes(b, roles, with_images=bool(cameras))]
    log.info("read %d episodes from %d bags", len(episodes), len(paths))
    return episodes


def dataset_from_bags(
    bags: Iterable[str | Path],
    obs_spec: list[dict[str, Any]],
    joint_names: list[str] | None,
    horizon: int,
    dt: float,
    cameras: dict[str, str] | None = None,
    command_topics: list[str] | None = None,
    stride: int = 1,
    only_success: bool = False,
    joint_states_topic: str = "joint_states",
    include_status: Iterable[str] = (),
) -> DemoDataset:
    """:func:`load_bag_episodes` then :func:`build_dataset`. ``joint_names`` ``None``: the names
    recorded with the commands (:func:`recorded_joint_names`).

    Raises:
        DatasetError: no bags, unknown joint names, or see :func:`build_dataset`.
    """
    episodes = load_bag_episodes(bags, cameras, joint_states_topic)
    names = joint_names or recorded_joint_names(episodes)
    if not names:
        raise DatasetError("cannot tell the action joint names: the commands carry none (give them explicitly)")
    return build_dataset(episodes, obs_spec, names, horizon, dt, cameras, command_topics, stride, only_success,
                         include_status)


def recorded_joint_names(episodes: Iterable[Episode]) -> list[str] | None:
    """The joint names recorded with the commands (executor state, else a named command topic)."""
    for ep in episodes:
        series = ep.command_series()
        if series is not None and series.names and not any("[" in n for n in series.names):
            return list(series.names)
    return None
