"""The arrays one recorded episode is read into: :class:`Episode`, :class:`Series` and helpers.

ROS-free and bag-free (the bag reader is :mod:`rtc_ros.recording.episode`, which re-exports these
names). Times: ``t`` arrays are the recording (receive) times in seconds since the episode start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtc_ros.runtime.contract import ChunkMeta


@dataclass
class TopicRoles:
    """Which topic plays which role (matched as ``topic == name`` or ``topic.endswith('/' + name)``).

    Attributes:
        chunk: ``trajectory_msgs/JointTrajectory`` chunks with :class:`ChunkMeta` in frame_id.
        executor_state: ``sensor_msgs/JointState`` per executor tick with :class:`ExecutorReport`.
        joint_states: measured joint state (``sensor_msgs/JointState``).
        commands: commanded joint positions sent to the arm (``JointState``,
            ``std_msgs/Float64MultiArray`` or ``JointTrajectory`` with one point); candidates tried
            in order.
        progress: task progress (``std_msgs/Int32``/``Float32``/``Float64``: the running score).
        episode: episode control (``std_msgs/String`` JSON).
        images: camera topics to decode (None: every Image/CompressedImage topic, only when asked).
    """

    chunk: str = "rtc/chunk"
    executor_state: str = "rtc/executor_state"
    joint_states: str = "joint_states"
    commands: tuple[str, ...] = ("joint_commands", "rtc/command", "commands")
    progress: str = "rtc/progress"
    episode: str = "rtc/episode"
    sim_status: str = "sim/status"
    images: tuple[str, ...] | None = None


def topic_matches(topic: str, name: str) -> bool:
    """True if ``topic`` (fully qualified) is ``name`` or ends with ``/name``."""
    name = name.strip()
    if name.startswith("/"):
        return topic == name
    return topic == name or topic.endswith("/" + name)


@dataclass
class Series:
    """A joint-space time series. ``t (T,)`` s since episode start; ``q (T, M)``; names ``M``."""

    t: np.ndarray
    q: np.ndarray
    names: list[str]
    v: np.ndarray | None = None
    stamp: np.ndarray | None = None  # header stamps, s since episode start
    #: ``(T,)`` bool, a resampled series (:func:`grid_series`): the row holds the next message of every topic (False:
    #: a message lost or late, the row repeats the one before)
    fresh: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.t.shape[0])


@dataclass
class ExecutorTrace(Series):
    """Executor ticks: ``step, seq, takeover, consumed (T,) int``; ``hold, dry, paused (T,) bool`` (``dry``: a dry
    run's tick, its command never sent; ``paused``: execution paused -- an operator, a re-sync, a protective stop)."""

    step: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    seq: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    takeover: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    consumed: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    hold: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    dry: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    paused: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


@dataclass
class ChunkRecord:
    """One received chunk: receive time ``t``, header ``stamp`` (s), metadata, ``actions (H, M)``."""

    t: float
    stamp: float
    meta: ChunkMeta | None
    actions: np.ndarray
    names: list[str]


@dataclass
class Episode:
    """Everything the report and training need from one episode.

    Attributes:
        name: episode name (bag name, or ``bag#k`` for the k-th episode inside a long bag).
        path: bag directory.
        meta: sidecar metadata (possibly empty).
        start_ns, end_ns: episode bounds in ns since epoch (recording clock).
        counts: messages per topic inside the episode.
    """

    name: str
    path: Path
    meta: dict[str, Any]
    start_ns: int
    end_ns: int
    counts: dict[str, int] = field(default_factory=dict)
    executor: ExecutorTrace | None = None
    commands: Series | None = None
    joint_states: Series | None = None
    chunks: list[ChunkRecord] = field(default_factory=list)
    progress: tuple[np.ndarray, np.ndarray] | None = None  # (t (K,), value (K,))
    images: dict[str, tuple[np.ndarray, list[np.ndarray]]] = field(default_factory=dict)
    command_topics: dict[str, Series] = field(default_factory=dict)  # per command topic, uncombined
    sim_status: dict[str, Any] | None = None  # last ``sim/status`` JSON (simulated episodes)

    @property
    def duration_s(self) -> float:
        d = self.meta.get("duration_s")
        if isinstance(d, (int, float)) and d > 0:
            return float(d)
        return max(0.0, (self.end_ns - self.start_ns) * 1e-9)

    @property
    def success(self) -> bool | None:
        """The operator's verdict (``success``: a boolean, or a number, nonzero = success), else the
        simulator's last ``sim/status`` verdict, else None (unknown). The report and the dataset's
        ``only_success`` both use this."""
        v = self.meta.get("success")
        if isinstance(v, bool):
            return v
        if isinstance(v, (int, float)) and v == v:  # (not NaN)
            return bool(v)
        if self.sim_status is not None and isinstance(self.sim_status.get("success"), bool):
            return bool(self.sim_status["success"])
        return None

    @property
    def method(self) -> str:
        """Method from the metadata, else from the chunks' metadata, else ``"unknown"``."""
        m = self.meta.get("method")
        if m:
            return str(m)
        for c in self.chunks:
            if c.meta is not None:
                return c.meta.method
        return "unknown"

    @property
    def extra_latency_ms(self) -> float:
        """Injected latency (ms) from the metadata, 0 when unknown.

        Bags recorded before the rename carry it as ``injected_latency_ms`` (or ``latency_ms``);
        those legacy keys are still read so old bags load.
        """
        for key in ("extra_latency_ms", "injected_latency_ms", "latency_ms"):
            v = self.meta.get(key)
            if isinstance(v, (int, float)):
                return float(v)
        return 0.0

    @property
    def latency_known(self) -> bool:
        """False when the metadata names no injected latency (:attr:`extra_latency_ms` then reads 0)."""
        return any(isinstance(self.meta.get(k), (int, float))
                   for k in ("extra_latency_ms", "injected_latency_ms", "latency_ms"))

    def command_series(self) -> Series | None:
        """The commanded trajectory: executor ticks if recorded, else the command topic."""
        return self.executor if self.executor is not None and len(self.executor) else self.commands


def latest_index(t_src: np.ndarray, t_query: np.ndarray) -> np.ndarray:
    """Index of the latest ``t_src`` at or before each ``t_query`` (-1 where none); ``t_src`` sorted."""
    return np.searchsorted(t_src, t_query, side="right") - 1


def column_names(topic: str, s: Series) -> list[str]:
    """The joint names of ``s``; unnamed values (a ``Float64MultiArray``) are ``<topic>[i]``."""
    return list(s.names) if len(s.names) == s.q.shape[1] else [f"{topic}[{i}]" for i in range(s.q.shape[1])]


def grid_phase(t: np.ndarray, dt: float) -> float:
    """Where the ticks of messages received at times ``t`` (s, one per tick of period ``dt``) fall, relative to the
    first: the circular mean of every message's offset from the first one's phase, in ``[-dt/2, dt/2]``; 0 when the
    phases cannot be told from uniform (messages at another period than dt drifting round the tick several times, a
    jitter beyond about a third of dt: a review; no phase then is better than the first message's). A first
    message received late (a data-collection walkthrough: commands queued while the recorder opened the episode's bag
    arrived together 110 ms late, half a tick off, and a grid anchored on it paired 8 % of the observations with the
    previous tick's command) moves it by its share of the messages only."""
    if len(t) < 3:
        return 0.0
    angle = 2.0 * np.pi * (np.asarray(t, dtype=np.float64) - t[0]) / dt
    mean = np.exp(1j * angle).mean()
    if len(angle) * abs(mean) ** 2 < 3.0:  # (Rayleigh's test: the phases cannot be told from uniform, p > 0.05)
        return 0.0
    return float(np.angle(mean) * dt / (2.0 * np.pi))


def grid_series(per_topic: dict[str, Series], order: list[str], dt: float) -> Series | None:
    """Several command topics (e.g. one per arm) on the controller grid, concatenated in ``order``.

    Grid step ``k`` is at ``t_k = t_0 + k dt``, ``t_0`` the first message of the first topic in
    ``order`` moved to the phase of all its messages (:func:`grid_phase`), up to its last message. A message *belongs to step k* when ``k`` is the step nearest
    its time: each topic is resampled on its own, taking its latest message at or before
    ``t_k + dt/2``, so the per-arm commands of one controller tick stay together even when one
    arm's message is stamped a little later. Rows before every topic has spoken are dropped. This
    is the one resampling rule, used by :attr:`Episode.commands` and by the dataset pipeline
    (:func:`rtc_ros.recording.dataset.action_grid`).

    Returns:
        The combined series, or None when no topic of ``order`` is present or they never overlap.
    """
    order = [t for t in order if t in per_topic]
    if not order or not len(per_topic[order[0]]):
        return None
    base = per_topic[order[0]]
    if dt > 0:
        t0 = base.t[0] + grid_phase(base.t, dt)
        t = t0 + np.arange(int(round((base.t[-1] - t0) / dt)) + 1) * dt
    else:  # a single message: no period to speak of
        t = base.t
    idx = [latest_index(per_topic[topic].t, t + 0.5 * dt) for topic in order]
    ok = np.all(np.stack(idx) >= 0, axis=0)
    if not ok.any():
        return None
    first = int(np.argmax(ok))  # once a topic has spoken it stays >= 0: ``ok`` is False.., then True..
    q = np.concatenate([per_topic[topic].q[i[first:]] for topic, i in zip(order, idx)], axis=1)
    names = [n for topic in order for n in column_names(topic, per_topic[topic])]
    fresh = np.r_[True, np.all(np.stack([np.diff(i[first:]) == 1 for i in idx]), axis=0)]
    return Series(t=t[first:], q=q, names=names, fresh=fresh)


def combine_series(per_topic: dict[str, Series], order: list[str], dt: float | None = None) -> Series | None:
    """Concatenate the joint vectors of several command topics (e.g. one per arm) in ``order``.

    One topic: its messages as recorded. Several: put on the controller grid with
    :func:`grid_series` (period ``dt``; None = estimated from the first topic's message times),
    so row ``k`` holds every topic's command of the same tick. Unnamed values (a
    ``Float64MultiArray``) are named ``<topic>[i]``.
    """
    order = [t for t in order if t in per_topic]
    if not order:
        return None
    if len(order) == 1:
        s = per_topic[order[0]]
        return Series(t=s.t, q=s.q, names=column_names(order[0], s))
    base = per_topic[order[0]]
    if (dt is None or dt <= 0) and len(base) > 1:
        # steps spanned: one per message interval, more when the median interval says messages
        # were lost; the span over the steps does not drift along a long, jittered episode
        span = float(base.t[-1] - base.t[0])
        median = float(np.median(np.diff(base.t)))
        steps = max(len(base) - 1, int(round(span / median)) if median > 0 else 0)
        dt = span / steps if span > 0 else 0.0
    return grid_series(per_topic, order, dt if dt is not None and dt > 0 else 0.0)
