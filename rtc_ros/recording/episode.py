"""Read recorded bags back into arrays: one :class:`Episode` per recorded episode.

Works on the recorder's per-episode bags (metadata from the sidecar) and on any rosbag2 bag
(``ros2 bag record`` with MCAP or sqlite3 storage): a bag without a sidecar that contains
``rtc/episode`` control messages (``{"cmd": "start", ...}`` / ``{"cmd": "stop", ...}``) is split
into one episode per start/stop pair; otherwise the whole bag is one episode with unknown metadata.

Topics are matched by name suffix, so ``/rtc/chunk`` and ``/robot1/rtc/chunk`` both count as the
chunk topic; a missing topic leaves the corresponding field ``None`` (a real robot's bag may hold
only commands and joint states).

Times: ``t`` arrays are the recording (receive) times in seconds since the episode start.

The array types (:class:`Episode`, :class:`Series`, :class:`TopicRoles`, ...) and the resampling
helpers live in :mod:`rtc_ros.recording.episode_types`; they are re-exported here, so
``from rtc_ros.recording.episode import Episode, Series, load_episodes`` keeps working.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rtc_ros.runtime.contract import ChunkMeta, ExecutorReport
from rtc_ros.runtime.compressed_image import decode_compressed
from rtc_ros.recording.bag import read_sidecar
from rtc_ros.recording.control_spans import spans_from_control
from rtc_ros.recording.episode_types import (
    ChunkRecord,
    Episode,
    ExecutorTrace,
    Series,
    TopicRoles,
    combine_series,
    grid_series,
    latest_index,
    topic_matches,
)

__all__ = [
    "IMAGE_TYPES", "ChunkRecord", "Episode", "ExecutorTrace", "Series", "TopicRoles", "combine_series",
    "find_bags", "grid_series", "iter_episodes", "latest_index", "load_episodes", "topic_matches",
]

log = logging.getLogger(__name__)

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


def find_bags(root: str | Path) -> list[Path]:
    """Bag directories (containing ``metadata.yaml``) under ``root`` (or ``root`` itself), sorted; hidden
    folders (a repair's ``.recover/`` left by an interrupted recovery) are skipped."""
    root = Path(root)
    if (root / "metadata.yaml").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("metadata.yaml")
                  if not any(part.startswith(".") for part in p.parent.relative_to(root).parts))


def _stamp_s(header: Any) -> float:
    return float(header.stamp.sec) + float(header.stamp.nanosec) * 1e-9


def _command_vector(msg: Any, msgtype: str) -> tuple[np.ndarray, list[str]] | None:
    if msgtype == "sensor_msgs/msg/JointState":
        return np.asarray(msg.position, dtype=np.float64), list(msg.name)
    if msgtype.endswith("MultiArray"):
        return np.asarray(msg.data, dtype=np.float64), []
    if msgtype == "trajectory_msgs/msg/JointTrajectory" and len(msg.points):
        return np.asarray(msg.points[0].positions, dtype=np.float64), list(msg.joint_names)
    return None


def _image_array(msg: Any, msgtype: str) -> np.ndarray | None:
    """Decode an Image (``rgb8``/``bgr8``/``mono8``/``rgba8``/``bgra8``) to ``(h, w, c) uint8``."""
    if msgtype == "sensor_msgs/msg/CompressedImage":
        try:
            return decode_compressed(bytes(msg.data), str(msg.format))
        except ValueError as exc:
            log.warning("%s", exc)
            return None
    enc = str(msg.encoding).lower()
    chans = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4, "8uc1": 1, "8uc3": 3}.get(enc)
    if chans is None:
        log.warning("unsupported image encoding %s", enc)
        return None
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    buf = np.frombuffer(bytes(msg.data), dtype=np.uint8)[: h * step].reshape(h, step)[:, : w * chans]
    img = buf.reshape(h, w, chans)
    if enc.startswith("bgr"):
        img = img[..., [2, 1, 0] + ([3] if chans == 4 else [])]
    return img


class _Acc:
    """Accumulates decoded messages of one episode."""

    def __init__(self) -> None:
        self.ex: list[tuple[float, float, ExecutorReport | None, np.ndarray, list[str]]] = []
        self.cmd: dict[str, list[tuple[float, np.ndarray, list[str]]]] = {}
        self.js: list[tuple[float, float, np.ndarray, np.ndarray, list[str], str]] = []
        self.chunks: list[tuple[float, float, ChunkMeta | None, np.ndarray, list[str]]] = []
        self.progress: list[tuple[float, float]] = []
        self.sim_status: dict[str, Any] | None = None
        self.images: dict[str, tuple[list[float], list[np.ndarray]]] = {}
        self.counts: dict[str, int] = {}


def _same_names(what: str, rows: list[tuple], cols: tuple[int, ...], names: int) -> list[tuple]:
    """``rows`` (each with per-joint values at the indices ``cols`` and joint names at ``names``) as most rows (ties:
    the newest) name them -- rows without names are read by position, as before --:
    a row naming the same joints in another order is reordered, one naming other joints (a second publisher on the
    topic: the other arm's driver) left out with a warning; rows were labelled with the newest row's names whatever
    they named, so two arms' drivers on one topic alternated in the same columns (before 2026-12-06)."""
    counts: dict[tuple[str, ...], int] = {}
    for r in rows:
        if len(r[names]):
            counts[tuple(r[names])] = counts.get(tuple(r[names]), 0) + 1
    if len(counts) <= 1:
        return rows
    newest = {key: i for i, key in enumerate(tuple(r[names]) for r in rows)}
    ref = list(max(counts, key=lambda key: (counts[key], newest[key])))
    out, other = [], 0
    for r in rows:
        if not len(r[names]) or list(r[names]) == ref:
            out.append(r)
        elif sorted(r[names]) == sorted(ref) and len(set(ref)) == len(ref):
            idx = {n: i for i, n in enumerate(r[names])}
            order = [idx[n] for n in ref]
            out.append(tuple(list(ref) if i == names else np.asarray(v)[order] if i in cols and len(v) == len(ref)
                             else v for i, v in enumerate(r)))
        else:
            other += 1
    if other:
        log.warning("%s: %d of %d messages name other joints than most (%s...; two publishers on one topic?): left "
                    "out", what, other, len(rows), ref[:3])
    return out


def _series_from(rows: list[tuple[float, np.ndarray, list[str]]]) -> Series | None:
    if not rows:
        return None
    m = max(len(r[1]) for r in rows)
    rows = _same_names("commands", [r for r in rows if len(r[1]) == m], (1,), 2)
    return Series(t=np.array([r[0] for r in rows]), q=np.stack([r[1] for r in rows]), names=rows[-1][2])


def _build(name: str, path: Path, meta: dict[str, Any], start_ns: int, end_ns: int, acc: _Acc) -> Episode:
    ep = Episode(name=name, path=path, meta=meta, start_ns=start_ns, end_ns=end_ns, counts=dict(acc.counts))
    if acc.ex:
        m = max(len(r[3]) for r in acc.ex)
        rows = [r for r in acc.ex if len(r[3]) == m]
        states = [r[2] for r in rows]
        known = [s is not None for s in states]
        ep.executor = ExecutorTrace(
            t=np.array([r[0] for r in rows]), stamp=np.array([r[1] for r in rows]),
            q=np.stack([r[3] for r in rows]) if m else np.zeros((len(rows), 0)), names=rows[-1][4],
            step=np.array([s.step if s else -1 for s in states], dtype=np.int64),
            seq=np.array([s.seq if s else -1 for s in states], dtype=np.int64),
            takeover=np.array([s.takeover if s else -1 for s in states], dtype=np.int64),
            consumed=np.array([s.consumed if s else -1 for s in states], dtype=np.int64),
            hold=np.array([bool(s.hold) if s else False for s in states], dtype=bool),
            dry=np.array([bool(s.dry) if s else False for s in states], dtype=bool),
            paused=np.array([bool(s.paused) if s else False for s in states], dtype=bool),
        )
        if not all(known):
            log.warning("%s: %d executor-state messages without rtc metadata", name, known.count(False))
    per_topic = {t: s for t, rows in acc.cmd.items() if (s := _series_from(rows)) is not None}
    ep.command_topics = per_topic
    dt = meta.get("dt")  # the controller period, when the sidecar knows it
    ep.commands = combine_series(per_topic, sorted(per_topic), float(dt) if isinstance(dt, (int, float)) else None)
    if acc.js:
        rows = _one_joint_state_topic(name, acc.js)
        m = max(len(r[2]) for r in rows)
        rows = _same_names(f"{name}: joint states", [r for r in rows if len(r[2]) == m], (2, 3), 4)
        v = [r[3] for r in rows]
        ep.joint_states = Series(
            t=np.array([r[0] for r in rows]), stamp=np.array([r[1] for r in rows]),
            q=np.stack([r[2] for r in rows]), names=rows[-1][4],
            v=np.stack(v) if all(len(x) == m for x in v) else None,
        )
    ep.chunks = [ChunkRecord(t=r[0], stamp=r[1], meta=r[2], actions=r[3], names=r[4]) for r in acc.chunks]
    ep.sim_status = acc.sim_status
    if acc.progress:
        ep.progress = (np.array([p[0] for p in acc.progress]), np.array([p[1] for p in acc.progress]))
    for topic, (ts, frames) in acc.images.items():
        ep.images[topic] = (np.array(ts), frames)
    return ep


def load_episodes(
    bag_dir: str | Path,
    roles: TopicRoles | None = None,
    with_images: bool = False,
) -> list[Episode]:
    """Decode one bag directory into its episodes (see module docstring).

    Args:
        bag_dir: a rosbag2 directory (``metadata.yaml`` + storage files).
        roles: topic names per role.
        with_images: also decode camera images (slow, memory hungry; training only).
    """
    from rosbags.highlevel import AnyReader

    from rtc_ros.recording.bag import default_typestore

    roles = roles or TopicRoles()
    bag_dir = Path(bag_dir)
    if not (bag_dir / "metadata.yaml").is_file() and any(bag_dir.glob("*.mcap")):  # (rosbags: "Expected metadata")
        raise FileNotFoundError(f"{bag_dir} has no metadata.yaml: its recorder was killed (or lost power) before "
                                f"closing it; repair it with: python -m rtc_ros.recording.recover {bag_dir}")
    sidecar = read_sidecar(bag_dir)
    with AnyReader([bag_dir], default_typestore=default_typestore()) as reader:
        conns = list(reader.connections)
        role_of: dict[int, str] = {}
        for c in conns:
            t, ty = c.topic, c.msgtype
            if topic_matches(t, roles.executor_state) and ty == "sensor_msgs/msg/JointState":
                role_of[c.id] = "executor"
            elif topic_matches(t, roles.chunk) and ty == "trajectory_msgs/msg/JointTrajectory":
                role_of[c.id] = "chunk"
            elif topic_matches(t, roles.joint_states) and ty == "sensor_msgs/msg/JointState":
                role_of[c.id] = "joint_states"
            elif topic_matches(t, roles.progress) and ty in (
                "std_msgs/msg/Int32", "std_msgs/msg/Float32", "std_msgs/msg/Float64", "std_msgs/msg/Int64"
            ):
                role_of[c.id] = "progress"
            elif topic_matches(t, roles.episode) and ty == "std_msgs/msg/String":
                role_of[c.id] = "episode"
            elif topic_matches(t, roles.sim_status) and ty == "std_msgs/msg/String":
                role_of[c.id] = "sim_status"
            elif ty in IMAGE_TYPES and with_images and (
                roles.images is None or any(topic_matches(t, n) for n in roles.images)
            ):
                role_of[c.id] = "image"
        _refuse_ambiguous(bag_dir, conns, role_of, roles)
        # commands: first candidate name that is present wins
        for name in roles.commands:
            hits = [c for c in conns if topic_matches(c.topic, name) and c.id not in role_of]
            if hits:
                for c in hits:
                    role_of[c.id] = "command"
                break
        # bounds: sidecar times, else episode control messages, else the whole bag
        bag_start, bag_end = reader.start_time, reader.end_time
        if sidecar is not None:
            s = int(sidecar.get("start_time_ns") or bag_start)
            e = int(sidecar.get("stop_time_ns") or bag_end)
            # a per-episode bag: every message belongs to the episode (also those that landed during
            # the recorder's stop grace period); times count from the episode start
            spans: list[tuple[str, int, int, dict[str, Any]]] = [(bag_dir.name, s, max(e, s, bag_end), sidecar)]
            lo_override = min(bag_start, s)
        else:
            spans = spans_from_control(reader, [c for c in conns if role_of.get(c.id) == "episode"], bag_dir)
            if not spans:
                spans = [(bag_dir.name, bag_start, bag_end, {})]
            lo_override = None
        accs = [_Acc() for _ in spans]
        lo = min(s[1] for s in spans) if lo_override is None else lo_override
        hi = max(s[2] for s in spans)
        for conn, ts, raw in reader.messages(connections=conns, start=lo, stop=hi + 1):
            k = 0 if lo_override is not None else next((i for i, s in enumerate(spans) if s[1] <= ts <= s[2]), None)
            if k is None:
                continue
            acc = accs[k]
            acc.counts[conn.topic] = acc.counts.get(conn.topic, 0) + 1
            role = role_of.get(conn.id)
            if role is None:
                continue
            t = (ts - spans[k][1]) * 1e-9
            try:
                msg = reader.deserialize(raw, conn.msgtype)
            except Exception as exc:  # noqa: BLE001 - a corrupt message must not kill the report
                log.warning("%s: cannot decode a %s message on %s: %s", bag_dir, conn.msgtype, conn.topic, exc)
                continue
            _accumulate(acc, role, conn.topic, conn.msgtype, msg, t, spans[k][1])
    return [_build(n, bag_dir, meta, s, e, acc) for (n, s, e, meta), acc in zip(spans, accs)]


#: roles read as one series per episode, with the TopicRoles field that names their topic (joint states:
#: several topics are resolved by :func:`_one_joint_state_topic`)
_SINGLE_ROLES = {"executor": "executor_state", "chunk": "chunk", "progress": "progress", "episode": "episode",
                 "sim_status": "sim_status"}


def _one_joint_state_topic(episode: str, rows: list[tuple]) -> list[tuple]:
    """The rows of the joint-state topic with the most joints: a gripper driver's own ``*/joint_states``
    beside the arm's is left out (as before, by width). Two topics with as many joints (two robots in one
    bag) cannot be told apart: ValueError naming them (they were interleaved into one series)."""
    width: dict[str, int] = {}
    for r in rows:
        width[r[5]] = max(width.get(r[5], 0), len(r[2]))
    if len(width) == 1:
        return rows
    best = max(width.values())
    widest = sorted(t for t, w in width.items() if w == best)
    if len(widest) > 1:
        raise ValueError(f"{episode}: {len(widest)} joint-state topics with {best} joints each ({', '.join(widest)}): "
                         f"they would be read as one series; give the fully qualified topic (--joint-states-topic "
                         f"{widest[0]}) or record one robot per bag (one recorder per namespace)")
    log.info("%s: joint states from %s (%d joints); left out: %s", episode, widest[0], best,
             ", ".join(sorted(t for t in width if t != widest[0])))
    return [r for r in rows if r[5] == widest[0]]


def _refuse_ambiguous(bag_dir: Path, conns: list[Any], role_of: dict[int, str], roles: TopicRoles) -> None:
    """A role read as one series must come from one topic: two robots' ``*/rtc/chunk`` in one bag would be
    interleaved into one series. Topics declared but never written do not count."""
    for role, field in _SINGLE_ROLES.items():
        topics = sorted({c.topic for c in conns if role_of.get(c.id) == role and getattr(c, "msgcount", 1) > 0})
        if len(topics) > 1:
            raise ValueError(
                f"{bag_dir}: {len(topics)} topics match the {field} role '{getattr(roles, field)}' "
                f"({', '.join(topics)}): they would be read as one series; give the fully qualified topic "
                f"(TopicRoles({field}='{topics[0]}') in Python) or record "
                "one robot per bag (one recorder per namespace)")


def _accumulate(acc: _Acc, role: str, topic: str, msgtype: str, msg: Any, t: float, t0_ns: int) -> None:
    t0 = t0_ns * 1e-9
    if role == "executor":
        try:
            st: ExecutorReport | None = ExecutorReport.decode(msg.header.frame_id)
        except ValueError:
            st = None
        acc.ex.append((t, _stamp_s(msg.header) - t0, st, np.asarray(msg.position, dtype=np.float64), list(msg.name)))
    elif role == "chunk":
        try:
            cm: ChunkMeta | None = ChunkMeta.decode(msg.header.frame_id)
        except ValueError:
            cm = None
        pts = [np.asarray(p.positions, dtype=np.float64) for p in msg.points]
        if pts and all(len(p) == len(pts[0]) for p in pts):
            acc.chunks.append((t, _stamp_s(msg.header) - t0, cm, np.stack(pts), list(msg.joint_names)))
    elif role == "joint_states":
        acc.js.append((t, _stamp_s(msg.header) - t0, np.asarray(msg.position, dtype=np.float64),
                       np.asarray(msg.velocity, dtype=np.float64), list(msg.name), topic))
    elif role == "command":
        out = _command_vector(msg, msgtype)
        if out is not None:
            acc.cmd.setdefault(topic, []).append((t, out[0], out[1]))
    elif role == "progress":
        acc.progress.append((t, float(msg.data)))
    elif role == "sim_status":
        try:
            st = json.loads(msg.data)
            if isinstance(st, dict):
                acc.sim_status = st
        except json.JSONDecodeError:
            pass
    elif role == "image":
        img = _image_array(msg, msgtype)
        if img is not None:
            ts, frames = acc.images.setdefault(topic, ([], []))
            ts.append(t)
            frames.append(img)


def iter_episodes(root: str | Path, roles: TopicRoles | None = None, with_images: bool = False) -> Iterator[Episode]:
    """All episodes of all bags under ``root``; unreadable bags are logged and skipped."""
    for bag in find_bags(root):
        try:
            yield from load_episodes(bag, roles, with_images)
        except Exception as exc:  # noqa: BLE001 - one broken bag must not stop a 480-episode report
            log.error("skipping unreadable bag %s: %s", bag, exc)
