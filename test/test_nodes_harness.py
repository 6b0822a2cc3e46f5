"""Test-side fake robot and recorder for the node integration tests (helpers only, no tests here).

Publishes ``joint_states`` (echoing the executor's last command, like a perfect position
controller) and optionally a camera; records executor states, chunks, commands and diagnostics.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from rtc_ros.nodes import conversions as conv
from rtc_ros.runtime.contract import ChunkMeta, ExecutorReport

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
JOINTS = [f"{arm}_{j}" for arm in ("left", "right") for j in
          ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")]


def write_params(path: Path, executor: dict | None = None, inference: dict | None = None, **shared) -> Path:
    """A params file for both nodes: test-friendly limits (wide) and max_step (large) by default."""
    base = {"method": "rtc", "horizon": 50, "s_min": 25, "rate_hz": 50.0, "arms": ["left", "right"],
            "left": {"max_step": [100.0], "lower_limits": [-100.0], "upper_limits": [100.0]},
            "right": {"max_step": [100.0], "lower_limits": [-100.0], "upper_limits": [100.0]},
            "diagnostics_period": 0.5}
    base.update(shared)
    data = {"/**": {"ros__parameters": base},
            "/**/chunk_executor": {"ros__parameters": {"hold_log_period": 0.2, **(executor or {})}},
            "/**/policy_inference": {"ros__parameters": {"device": "cpu", "warmup_iterations": 2,
                                                     "torch_threads": 1, **(inference or {})}}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class StateRec:
    t: float  # received (harness monotonic clock, s)
    st: ExecutorReport
    position: np.ndarray
    stamp: float = 0.0  # the executor's stamp of the tick (s): its rate, free of delivery jitter


@dataclass
class Harness:
    """Fake robot + recorder; use as a context manager."""

    publish_joint_states: bool = True
    follow_commands: bool = True  # False: the fake robot ignores commands (something else moves it: set q)
    camera: tuple[int, int] | None = None
    #: the camera as image_transport's compressed topic (cam/image_raw/compressed): "png" frames, or "garbage"
    compressed: str = ""
    command_topics: tuple[str, str] = ("left_controller/commands", "right_controller/commands")
    states: list[StateRec] = field(default_factory=list)
    chunks: dict[int, tuple[np.ndarray, ChunkMeta]] = field(default_factory=dict)
    commands: dict[str, list[np.ndarray]] = field(default_factory=dict)
    diagnostics: dict[str, dict[str, str]] = field(default_factory=dict)
    diag_messages: dict[str, str] = field(default_factory=dict)

    def __enter__(self) -> "Harness":
        self.ctx = Context()
        rclpy.init(context=self.ctx)
        self.node = Node("test_harness", context=self.ctx)
        self.lock = threading.RLock()
        self.q = np.zeros(len(JOINTS))
        self.js_pub = self.node.create_publisher(JointState, "joint_states", 10)
        self.chunk_pub = None  # created by the first publish_chunk (a policy_inference beside it stops planning)
        self.cam_pub = self.node.create_publisher(Image, "cam/image_raw", 10) if self.camera and not self.compressed else None
        self.cz_pub = self.node.create_publisher(CompressedImage, "cam/image_raw/compressed", 10) if (
            self.camera and self.compressed) else None
        self.node.create_subscription(JointState, "rtc/executor_state", self._on_state, RELIABLE)
        self.node.create_subscription(JointTrajectory, "rtc/chunk", self._on_chunk, RELIABLE)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        for i, topic in enumerate(self.command_topics):
            self.commands[topic] = []
            self.node.create_subscription(Float64MultiArray, topic, lambda m, t=topic, k=i: self._on_cmd(t, k, m),
                                          RELIABLE)
        self.node.create_timer(0.02, self._publish_inputs)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.thread.join(timeout=2.0)  # (before the node goes: a spin still inside spin_once raised InvalidHandle)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)

    # --- callbacks
    def _publish_inputs(self) -> None:
        stamp = self.node.get_clock().now().to_msg()
        if self.publish_joint_states:
            with self.lock:
                q = self.q.copy()
            self.js_pub.publish(conv.joint_state_msg(JOINTS, q, stamp))
        if self.cam_pub is not None:
            img = np.full((*self.camera, 3), 128, dtype=np.uint8)
            self.cam_pub.publish(conv.rgb_to_image(img, stamp))
        if self.cz_pub is not None:
            msg = CompressedImage(format="rgb8; png compressed bgr8", data=self._png() if self.compressed == "png"
                                  else b"\x89PNG not really")
            msg.header.stamp = stamp
            self.cz_pub.publish(msg)

    def _png(self) -> bytes:
        import io

        from PIL import Image as PILImage

        buf = io.BytesIO()
        PILImage.fromarray(np.full((*self.camera, 3), 128, dtype=np.uint8)).save(buf, format="PNG")
        return buf.getvalue()

    def _on_state(self, msg: JointState) -> None:
        rec = StateRec(time.monotonic(), ExecutorReport.decode(msg.header.frame_id), np.array(msg.position),
                       msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
        with self.lock:
            self.states.append(rec)

    def _on_chunk(self, msg: JointTrajectory) -> None:
        try:
            chunk, meta, _ = conv.msg_to_chunk(msg, JOINTS, len(msg.points), 0.02)
        except Exception:  # noqa: BLE001 -- the test publishes invalid chunks on purpose
            return
        with self.lock:
            self.chunks[meta.seq] = (chunk, meta)

    def _on_cmd(self, topic: str, arm: int, msg: Float64MultiArray) -> None:
        values = np.array(msg.data)
        with self.lock:
            self.commands[topic].append(values)
            if len(values) == 7 and self.follow_commands:
                self.q[7 * arm:7 * arm + 7] = values  # a perfect position controller

    def _on_diag(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for st in msg.status:
                self.diagnostics[st.name] = {kv.key: kv.value for kv in st.values}
                self.diag_messages[st.name] = st.message

    # --- helpers
    def wait_for(self, predicate, timeout: float, poll: float = 0.05) -> bool:
        """Poll ``predicate(self)`` under the lock until true or ``timeout``; an IndexError (``s.states[-1]``
        before the first report) counts as not yet."""
        def holds() -> bool:
            with self.lock:
                try:
                    return bool(predicate(self))
                except IndexError:
                    return False

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if holds():
                return True
            time.sleep(poll)
        return holds()

    def snapshot_states(self) -> list[StateRec]:
        with self.lock:
            return list(self.states)

    def last_step(self) -> int:
        with self.lock:
            return self.states[-1].st.step if self.states else -1

    def publish_chunk(self, chunk: np.ndarray, meta: ChunkMeta, names: list[str] | None = None,
                      dt: float = 0.02, stamp=None) -> None:
        stamp = stamp if stamp is not None else self.node.get_clock().now().to_msg()
        self.chunk_publisher().publish(conv.chunk_to_msg(chunk, names or JOINTS, meta, stamp, dt))

    def chunk_publisher(self):
        """The harness's rtc/chunk publisher, created on first use once another node subscribes (a chunk
        published before the executor discovered it would be lost); a policy_inference beside it stops planning."""
        if self.chunk_pub is None:
            self.chunk_pub = self.node.create_publisher(JointTrajectory, "rtc/chunk", 10)
            end = time.monotonic() + 10.0
            while self.chunk_pub.get_subscription_count() < 2:  # the harness's own subscription and another's
                if time.monotonic() > end:
                    raise AssertionError("no node subscribes to rtc/chunk besides the harness after 10 s")
                time.sleep(0.02)
        return self.chunk_pub

    def drop_chunk_publisher(self) -> None:
        """Destroy the chunk publisher (a policy_inference beside the harness plans again)."""
        if self.chunk_pub is not None:
            self.node.destroy_publisher(self.chunk_pub)
            self.chunk_pub = None

    def diag_message(self, node: str) -> str:
        """The newest diagnostics message of the status whose name contains ``node`` ('' if none yet)."""
        with self.lock:
            return next((m for name, m in self.diag_messages.items() if node in name), "")

    def diag(self, node: str) -> dict[str, str]:
        with self.lock:
            for name, vals in self.diagnostics.items():
                if node in name:
                    return dict(vals)
        return {}
