"""CDR bytes of the message types the package writes into bags itself (ROS-free, via ``rosbags``).

One serializer for every bag the package writes without ROS (synthetic test episodes, the sim
policy's demonstration bags): the ``rosbags`` ROS 2 Jazzy type store, byte-identical to the wire.
(Not ``rclpy.serialization.serialize_message``: in the pip rclpy wheels it appends uninitialised
bytes after the message, which ``rosbags`` then refuses to read: "CDR message size mismatch".)

Stamps are integer nanoseconds; arrays are converted to the message's float64 / uint8 types.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rtc_ros.recording.bag import default_typestore

JS = "sensor_msgs/msg/JointState"
JT = "trajectory_msgs/msg/JointTrajectory"
I32 = "std_msgs/msg/Int32"
STR = "std_msgs/msg/String"
IMG = "sensor_msgs/msg/Image"
F64A = "std_msgs/msg/Float64MultiArray"


def time_msg(ns: int) -> Any:
    """``builtin_interfaces/Time`` of ``ns`` nanoseconds."""
    T = default_typestore().types["builtin_interfaces/msg/Time"]
    sec, nsec = divmod(int(ns), 10**9)
    return T(sec=sec, nanosec=nsec)


def header(ns: int, frame_id: str = "") -> Any:
    """``std_msgs/Header`` stamped ``ns``."""
    H = default_typestore().types["std_msgs/msg/Header"]
    return H(stamp=time_msg(ns), frame_id=frame_id)


def joint_state_cdr(ns: int, names: list[str], q: np.ndarray, v: np.ndarray | None = None, frame_id: str = "") -> bytes:
    """``sensor_msgs/JointState``: positions ``q (M,)``, velocities ``v (M,)`` or none, no effort."""
    ts = default_typestore()
    msg = ts.types[JS](
        header=header(ns, frame_id), name=list(names), position=np.asarray(q, dtype=np.float64),
        velocity=np.asarray(v if v is not None else [], dtype=np.float64), effort=np.zeros(0, dtype=np.float64),
    )
    return bytes(ts.serialize_cdr(msg, JS))


def chunk_cdr(ns: int, names: list[str], actions: np.ndarray, dt: float, frame_id: str) -> bytes:
    """A chunk as ``trajectory_msgs/JointTrajectory``: ``actions (H, M)``, point i at ``i * dt``;
    ``frame_id`` carries the chunk metadata (the contract's encoding)."""
    ts = default_typestore()
    P = ts.types["trajectory_msgs/msg/JointTrajectoryPoint"]
    D = ts.types["builtin_interfaces/msg/Duration"]
    empty = np.zeros(0, dtype=np.float64)
    pts = [P(positions=np.asarray(a, dtype=np.float64), velocities=empty, accelerations=empty, effort=empty,
             time_from_start=D(sec=int(i * dt), nanosec=int(round((i * dt % 1) * 1e9)))) for i, a in enumerate(actions)]
    msg = ts.types[JT](header=header(ns, frame_id), joint_names=list(names), points=pts)
    return bytes(ts.serialize_cdr(msg, JT))


def int32_cdr(value: int) -> bytes:
    """``std_msgs/Int32``."""
    ts = default_typestore()
    return bytes(ts.serialize_cdr(ts.types[I32](data=int(value)), I32))


def string_cdr(text: str) -> bytes:
    """``std_msgs/String``."""
    ts = default_typestore()
    return bytes(ts.serialize_cdr(ts.types[STR](data=text), STR))


def string_from_cdr(data: bytes) -> str:
    """The text of a serialized ``std_msgs/String`` (raises on malformed bytes)."""
    return str(default_typestore().deserialize_cdr(bytes(data), STR).data)


def image_cdr(ns: int, img: np.ndarray, frame_id: str = "camera") -> bytes:
    """An ``rgb8`` ``sensor_msgs/Image`` from ``img (h, w, 3) uint8``."""
    ts = default_typestore()
    h, w = img.shape[:2]
    msg = ts.types[IMG](header=header(ns, frame_id), height=h, width=w, encoding="rgb8", is_bigendian=0,
                        step=w * 3, data=np.ascontiguousarray(img, dtype=np.uint8).reshape(-1))
    return bytes(ts.serialize_cdr(msg, IMG))


def float64_array_cdr(values: np.ndarray) -> bytes:
    """``std_msgs/Float64MultiArray`` with an empty layout (the executor's default command output)."""
    ts = default_typestore()
    L = ts.types["std_msgs/msg/MultiArrayLayout"]
    msg = ts.types[F64A](layout=L(dim=[], data_offset=0), data=np.asarray(values, dtype=np.float64))
    return bytes(ts.serialize_cdr(msg, F64A))
