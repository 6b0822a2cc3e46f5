"""ROS message <-> numpy conversions for the chunk contract, commands, joint states and images.

Only standard messages (std_msgs, sensor_msgs, trajectory_msgs, builtin_interfaces). Decoding
functions validate and raise :class:`ChunkFormatError` / ``ValueError`` with the reason; nothing
here touches a node.
"""

from __future__ import annotations

import array
import math
from dataclasses import replace

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from rtc_ros.runtime.contract import ChunkMeta, ExecutorReport
from rtc_ros.runtime.executor import ChunkRejected, Tick


class ChunkFormatError(ChunkRejected):
    """A chunk message that does not follow the contract; ``reason`` as in :class:`ChunkRejected`."""


def _fail(seq: int, reason: str, message: str) -> ChunkFormatError:
    return ChunkFormatError(reason, message, seq)


# ------------------------------------------------------------------------------------------ time
def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def seconds_to_duration(s: float) -> Duration:
    ns = int(round(s * 1e9))
    return Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def duration_to_seconds(d: Duration) -> float:
    return d.sec + d.nanosec * 1e-9


# ---------------------------------------------------------------------------------------- chunks
def chunk_to_msg(chunk: np.ndarray, joint_names: list[str], meta: ChunkMeta, stamp: Time, dt: float) -> JointTrajectory:
    """Encode a chunk ``(H, M)`` per :mod:`rtc_ros.runtime.contract`."""
    chunk = np.asarray(chunk, dtype=np.float64)
    if chunk.ndim != 2 or chunk.shape[1] != len(joint_names):
        raise ValueError(f"chunk shape {chunk.shape} does not match {len(joint_names)} joint names")
    msg = JointTrajectory()
    msg.header.stamp = stamp
    msg.header.frame_id = meta.encode()
    msg.joint_names = list(joint_names)
    points = []
    for i, row in enumerate(chunk.tolist()):
        p = JointTrajectoryPoint()
        p.positions = array.array("d", row)
        p.time_from_start = seconds_to_duration(i * dt)
        points.append(p)
    msg.points = points
    return msg


def msg_to_chunk(msg: JointTrajectory, joint_names: list[str], horizon: int, dt: float,
                 order_cache: dict | None = None) -> tuple[np.ndarray, ChunkMeta, int]:
    """Decode and check a chunk message; returns ``(chunk (H, M) in joint_names order, meta, stamp_ns)``.

    Raises:
        ChunkFormatError: with reason ``metadata`` (frame_id), ``names`` (joint set differs), ``shape``
            (point count or positions length), ``timing`` (time_from_start not ``i * dt``), ``nonfinite``.
    """
    try:
        meta = ChunkMeta.decode(msg.header.frame_id)
    except ValueError as exc:
        raise ChunkFormatError("metadata", f"chunk metadata: {exc}") from None
    names = tuple(msg.joint_names)
    key = (names, tuple(joint_names))
    perm = order_cache.get(key) if order_cache is not None else None
    if perm is None:
        if len(names) != len(joint_names) or set(names) != set(joint_names):
            missing = sorted(set(joint_names) - set(names))
            extra = sorted(set(names) - set(joint_names))
            raise _fail(meta.seq, "names", f"chunk seq {meta.seq}: joint names differ (missing {missing}, "
                                            f"unexpected {extra}, count {len(names)} vs {len(joint_names)})")
        if len(set(names)) != len(names):
            raise _fail(meta.seq, "names", f"chunk seq {meta.seq}: duplicate joint names {list(names)}")
        index = {n: i for i, n in enumerate(names)}
        perm = np.array([index[n] for n in joint_names])
        if order_cache is not None:
            if len(order_cache) >= 16:  # bounded: a producer sending ever new orders must not grow it
                order_cache.clear()
            order_cache[key] = perm
    pts = msg.points
    if len(pts) != horizon:
        raise _fail(meta.seq, "shape", f"chunk seq {meta.seq}: {len(pts)} points, expected H={horizon}")
    m = len(joint_names)
    rows = []
    tol = max(1e-4, 0.01 * dt)
    for i, p in enumerate(pts):
        if len(p.positions) != m:
            raise _fail(meta.seq, "shape", f"chunk seq {meta.seq}: point {i} has {len(p.positions)} positions, "
                                            f"expected {m}")
        t = p.time_from_start
        if abs(t.sec + t.nanosec * 1e-9 - i * dt) > tol:
            raise _fail(meta.seq, "timing", f"chunk seq {meta.seq}: point {i} time_from_start "
                                             f"{duration_to_seconds(t):.4f}s != {i} * dt = {i * dt:.4f}s "
                                             "(producer runs at another rate)")
        rows.append(p.positions)
    chunk = np.asarray(rows, dtype=np.float64)[:, perm]
    if not np.isfinite(chunk).all():
        rows_, cols = np.nonzero(~np.isfinite(chunk))
        raise _fail(meta.seq, "nonfinite", f"chunk seq {meta.seq} contains NaN or Inf (first at point {rows_[0]}, "
                                           f"joint {list(joint_names)[cols[0]]})")
    return chunk, meta, stamp_to_ns(msg.header.stamp)


# ------------------------------------------------------------------------------------ commands
def float64_multi_array(values: np.ndarray, label: str = "") -> Float64MultiArray:
    msg = Float64MultiArray()
    if label:
        msg.layout.dim = [MultiArrayDimension(label=label, size=len(values), stride=len(values))]
    msg.data = array.array("d", np.asarray(values, dtype=np.float64).tolist())
    return msg


def joint_trajectory_point_msg(names: list[str], values: np.ndarray, stamp: Time, time_from_start: float) -> JointTrajectory:
    """Single-point trajectory (joint_trajectory_controller). Header stamp zero = start on receipt."""
    msg = JointTrajectory()
    msg.header.stamp = stamp
    msg.joint_names = list(names)
    p = JointTrajectoryPoint()
    p.positions = array.array("d", np.asarray(values, dtype=np.float64).tolist())
    p.time_from_start = seconds_to_duration(time_from_start)
    msg.points = [p]
    return msg


def joint_state_msg(names: list[str], values: np.ndarray, stamp: Time, frame_id: str = "") -> JointState:
    msg = JointState()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.name = list(names)
    msg.position = array.array("d", np.asarray(values, dtype=np.float64).tolist())
    return msg


def executor_state_msg(tick: Tick, names: list[str], stamp: Time, dry: bool = False) -> JointState:
    """``rtc/executor_state`` message for one tick (see :mod:`rtc_ros.runtime.contract`); ``dry``: a dry run's."""
    report = tick.report(with_command=False)
    return joint_state_msg(names, tick.command, stamp, (replace(report, dry=True) if dry else report).encode())


def parse_executor_state(msg: JointState, reader: "JointStateReader | None" = None) -> ExecutorReport:
    """Decode an ``rtc/executor_state`` message (stamp and commanded positions included).

    ``reader``: the receiver's joints; the commanded positions are then picked by name, in the receiver's
    order (ValueError naming missing joints), as the chunks are -- not taken in the message's order."""
    command: np.ndarray | None = np.asarray(msg.position, dtype=np.float64)
    if reader is not None and len(msg.position):
        command = reader.positions(msg)
    elif not len(msg.position):  # not carried (another executor's report): None, as ExecutorReport says -- an
        command = None  # audit: an empty array failed every guided plan with an unnamed numpy error
    return ExecutorReport.decode(msg.header.frame_id, stamp_to_ns(msg.header.stamp), command)


# -------------------------------------------------------------------------------- joint states
class JointStateReader:
    """Pick ``names`` out of JointState messages (any order, extra joints allowed), caching the index map."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        self._key: tuple[str, ...] | None = None
        self._idx: np.ndarray | None = None

    def positions(self, msg: JointState) -> np.ndarray:
        """``(len(names),)`` positions; raises ValueError naming missing joints or non-finite values."""
        key = tuple(msg.name)
        if key != self._key:
            index = {n: i for i, n in enumerate(key)}
            if len(index) != len(key):  # which of two positions would be the joint's?
                dup = sorted({n for n in key if key.count(n) > 1})
                raise ValueError(f"joint state names joints {dup} more than once")
            missing = [n for n in self.names if n not in index]
            if missing:
                raise ValueError(f"joint state lacks joints {missing}")
            self._key, self._idx = key, np.array([index[n] for n in self.names])
        pos = np.asarray(msg.position, dtype=np.float64)
        if pos.shape[0] != len(key):
            raise ValueError(f"joint state has {len(key)} names but {pos.shape[0]} positions")
        q = pos[self._idx]
        if not np.isfinite(q).all():
            bad = [n for n, x in zip(self.names, q) if not np.isfinite(x)]
            raise ValueError(f"joint state contains NaN or Inf: {bad}")
        return q


def held_joints(msg: JointState, names: list[str]) -> tuple[dict[int, float], list[str]]:
    """A protective-stop report (``name``: the joints a stop holds, ``position``: where; empty: none) as
    ``{index in names: held position}`` plus the reported names that are not in ``names`` (ignored).
    Raises ValueError naming the field when ``position`` does not match ``name`` or is not finite."""
    if len(msg.position) != len(msg.name):
        raise ValueError(f"stop report: {len(msg.name)} names but {len(msg.position)} positions "
                         "(position must give every held joint's position)")
    dup = sorted({n for n in msg.name if list(msg.name).count(n) > 1})
    if dup:  # (which of two positions holds the joint? an audit: the last one won)
        raise ValueError(f"stop report names joints {dup} more than once")
    index = {n: i for i, n in enumerate(names)}
    held, unknown = {}, []
    for n, q in zip(msg.name, msg.position):
        if not math.isfinite(q):
            raise ValueError(f"stop report: position of {n!r} is {q} (must be finite)")
        if n in index:
            held[index[n]] = float(q)
        else:
            unknown.append(n)
    return held, unknown


# -------------------------------------------------------------------------------------- images
_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8UC1": 1}


def image_to_rgb(msg: Image) -> np.ndarray:
    """``sensor_msgs/Image`` (rgb8, bgr8, rgba8, bgra8, mono8 / 8UC1) -> ``(h, w, 3)`` uint8 RGB (no copy when rgb8);
    ValueError naming an unsupported encoding (8UC3: no channel order)."""
    enc = msg.encoding
    if enc in ("8UC3", "8UC4"):  # (cv_bridge's cv2_to_imgmsg(frame) without an encoding: OpenCV's BGR pixels as
        # 8UC3, read as RGB before -- red and blue swapped in every observation, silently: an audit)
        raise ValueError(f"image encoding {enc!r} does not say the channel order (cv_bridge's default 'passthrough' "
                         "of an OpenCV BGR image gives it): publish with encoding 'bgr8' or 'rgb8'")
    if enc not in _CHANNELS:
        raise ValueError(f"unsupported image encoding {enc!r}; supported: {sorted(_CHANNELS)}")
    c = _CHANNELS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if h * w == 0 or step < w * c or buf.size < h * step:
        raise ValueError(f"image {w}x{h} {enc} with step {step} has {buf.size} bytes")
    img = buf[: h * step].reshape(h, step)[:, : w * c].reshape(h, w, c)
    if enc in ("bgr8", "bgra8"):
        img = img[:, :, 2::-1]
    elif c == 4:
        img = img[:, :, :3]
    elif c == 1:
        img = np.repeat(img, 3, axis=2)
    return img


def rgb_to_image(img: np.ndarray, stamp: Time, frame_id: str = "camera") -> Image:
    """``(h, w, 3)`` uint8 -> rgb8 ``sensor_msgs/Image`` (for tests, benchmarks and fake cameras)."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(img.shape[0]), int(img.shape[1])
    msg.encoding = "rgb8"
    msg.step = int(img.shape[1] * 3)
    msg.data = img.tobytes()
    return msg
