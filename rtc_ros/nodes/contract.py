"""The chunk contract between policy_inference, chunk_executor and anyone else (ROS-free part).

Chunks travel as standard messages only, so the package builds on any ROS 2 install:

``rtc/chunk`` -- ``trajectory_msgs/JointTrajectory`` (reliable, keep-last 10)
    header.stamp           stamp of the observation (joint state) the chunk was conditioned on
    header.frame_id        ``"rtc seq=<int> t_obs=<int> d=<int> s=<int> method=<name>"``
    joint_names            the M action dimensions (all arms)
    points[i].positions    action i (M values), raw joint units
    points[i].time_from_start  ``i * dt``: action i is meant to run at ``stamp + i * dt``, i.e. at
                           controller step ``t_obs + i``
    The first ``d`` points are the frozen prefix (copied from the executing chunk by guidance).

``rtc/executor_state`` -- ``sensor_msgs/JointState`` published by the executor every tick
    header.stamp           time of the tick
    header.frame_id        ``"rtc step=<int> seq=<int> takeover=<int> consumed=<int> hold=<0|1>"``:
                           the step just commanded, the seq of the chunk it came from, the step at
                           which that chunk took over and the delay it consumed, whether it held
    name, position         the commanded joint positions of that step

Steps are the executor's controller ticks. ``t_obs`` is the next step the executor will command
after the observation was taken (so chunk index 0 = step ``t_obs``).
"""

from __future__ import annotations

from dataclasses import dataclass

CHUNK_TOPIC = "rtc/chunk"
EXECUTOR_STATE_TOPIC = "rtc/executor_state"
_PREFIX = "rtc"


def _encode(fields: dict[str, object]) -> str:
    return " ".join([_PREFIX, *(f"{k}={v}" for k, v in fields.items())])


def _decode(text: str, required: tuple[str, ...]) -> dict[str, str]:
    parts = text.split()
    if not parts or parts[0] != _PREFIX:
        raise ValueError(f"not an rtc metadata string: {text!r}")
    out: dict[str, str] = {}
    for p in parts[1:]:
        k, sep, v = p.partition("=")
        if not sep:
            raise ValueError(f"malformed field {p!r} in {text!r}")
        out[k] = v
    missing = [k for k in required if k not in out]
    if missing:
        raise ValueError(f"missing fields {missing} in {text!r}")
    return out


@dataclass(frozen=True)
class ChunkMeta:
    """Metadata carried in a chunk's ``header.frame_id``."""

    seq: int
    t_obs: int
    d: int
    s: int
    method: str

    def encode(self) -> str:
        return _encode({"seq": self.seq, "t_obs": self.t_obs, "d": self.d, "s": self.s, "method": self.method})

    @classmethod
    def decode(cls, text: str) -> "ChunkMeta":
        f = _decode(text, ("seq", "t_obs", "d", "s", "method"))
        try:
            meta = cls(int(f["seq"]), int(f["t_obs"]), int(f["d"]), int(f["s"]), f["method"])
        except ValueError as exc:
            raise ValueError(f"bad integer in chunk metadata {text!r}: {exc}") from exc
        if meta.d < 0 or meta.s < 0 or meta.t_obs < 0:
            raise ValueError(f"negative d/s/t_obs in chunk metadata {text!r}")
        return meta


@dataclass(frozen=True)
class ExecutorState:
    """Metadata carried in an executor-state message's ``header.frame_id``."""

    step: int
    seq: int
    takeover: int
    consumed: int
    hold: bool

    def encode(self) -> str:
        return _encode({"step": self.step, "seq": self.seq, "takeover": self.takeover,
                        "consumed": self.consumed, "hold": int(self.hold)})

    @classmethod
    def decode(cls, text: str) -> "ExecutorState":
        f = _decode(text, ("step", "seq", "takeover", "consumed", "hold"))
        try:
            return cls(int(f["step"]), int(f["seq"]), int(f["takeover"]), int(f["consumed"]), f["hold"] == "1")
        except ValueError as exc:
            raise ValueError(f"bad integer in executor state {text!r}: {exc}") from exc
