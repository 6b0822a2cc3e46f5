"""policy_inference's cameras: subscriptions (raw ``sensor_msgs/Image`` or, with ``camera_transport:
compressed``, ``sensor_msgs/CompressedImage`` on ``<topic>/compressed`` as image_transport publishes it),
each camera's newest frames (:class:`rtc_ros.runtime.frame_history.FrameHistory`: ``t`` frames for a
frame-stack entry -- consecutive messages, or ``period_s`` apart by stamp -- cleared after a gap or an
executor reset), and the camera half of an observation's
checks (missing, stale, stamped long before the joint state). Compressed frames are decoded only when an
observation uses them. State is guarded by the node's data lock. A camera whose frames are another size than
its ``obs_spec`` entry is logged once per size when the first one is resized (:meth:`CameraInputs.on_resize`):
a warning where that stretches the image (the policy was trained on another aspect ratio). A camera feeding a
frame stack taken ``period_s`` apart that sends frames further apart than that (:class:`FrameRate`: the median of
its last frames' intervals over :data:`SLOW_CAMERA` x ``period_s``) is warned about once, until it is fast again:
its stack repeats frames or spans more time than in training.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable

import numpy as np
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from rtc_ros.policies.observation import aspect_change
from rtc_ros.runtime.compressed_image import CompressedFrame, pixels
from rtc_ros.runtime.contract import ExecutorReport
from rtc_ros.runtime.frame_history import FrameHistory
from rtc_ros.nodes import conversions as conv


#: a timed stack's camera whose median frame interval exceeds this many stack periods is warned about (it is said
#: fast again below 1.2)
SLOW_CAMERA = 1.5


class FrameRate:
    """A camera's median interval (s) between its last ``window`` + 1 frames, by header stamp (receipt time where the
    stamp is 0 or steps back); None until the window is full."""

    def __init__(self, window: int = 30) -> None:
        self._times: deque[float] = deque(maxlen=window + 1)

    def add(self, stamp_ns: int, recv_s: float) -> float | None:
        t = stamp_ns * 1e-9 if stamp_ns > 0 else recv_s
        if self._times and t <= self._times[-1] - 1.0:  # a clock that stepped back (or stamps vs receipts): anew
            self._times.clear()
        self._times.append(t)
        if len(self._times) < self._times.maxlen:
            return None
        return float(np.median(np.diff(np.asarray(self._times))))


class CameraInputs:
    """The cameras ``cams`` (obs_spec names) on ``topics``, ``frames[name]`` frames each (1: a single image);
    ``timeout()`` is the current ``obs_timeout``; ``stamp(header_stamp, what)`` gives a header's stamp in ns;
    ``reject(reason, text)`` counts and logs; ``period_s``: a stack's frames by stamp this far apart (a policy
    with a joint history: its control period), else consecutive messages."""

    def __init__(self, node: Any, cams: list[str], topics: list[str], frames: dict[str, int],
                 timeout: Callable[[], float], transport: str, lock: threading.Lock,
                 stamp: Callable[[Any, str], int], reject: Callable[[str, str], None],
                 period_s: float | None = None) -> None:
        self._lock, self._timeout, self._stamp, self._reject = lock, timeout, stamp, reject
        self.latest: dict[str, tuple[Any, float, int]] = {}  # name -> (frame, receipt monotonic s, stamp ns)
        self.history = FrameHistory({name: frames.get(name, 1) for name in cams}, timeout(), period_s)
        self.stacked = {name for name in cams if frames.get(name, 1) > 1}
        self._period_s = period_s
        self._rates = {name: FrameRate() for name in self.stacked} if period_s else {}
        self._slow: set[str] = set()  # cameras warned about as slower than the stack's period
        self.names = list(cams)
        self._log = node.get_logger()
        for name, topic in zip(cams, topics):
            if transport == "compressed":
                node.create_subscription(CompressedImage, f"{topic}/compressed", lambda m, n=name: self.store(
                    n, CompressedFrame(m.data, m.format), m.header.stamp), qos_profile_sensor_data)
            else:
                node.create_subscription(Image, topic, lambda m, n=name: self._on_image(n, m), qos_profile_sensor_data)

    def _on_image(self, name: str, msg: Image) -> None:
        try:
            img = conv.image_to_rgb(msg)
        except ValueError as exc:
            self._reject("image", f"camera '{name}': {exc}")
            return
        self.store(name, img, msg.header.stamp)

    def store(self, name: str, frame: np.ndarray | CompressedFrame, header_stamp: Any) -> None:
        now, stamp = time.monotonic(), self._stamp(header_stamp, f"camera '{name}'")
        with self._lock:
            self.history.timeout_s = float(self._timeout())  # a run-time set applies to the next gap
            kept = self.history.add(name, frame, now, stamp)
            if kept:
                self.latest[name] = (frame, now, stamp)
        if name in self._rates:
            self._check_rate(name, self._rates[name].add(stamp, now))
        if not kept and self.history.dropped_why == "out_of_order":
            self._reject("out_of_order", f"camera '{name}': a frame stamped before the newest one (dropped)")
        elif not kept:
            self._reject("before_reset", f"camera '{name}': a frame stamped before the executor's reset arrived "
                                         "late (dropped)")

    def _check_rate(self, name: str, interval: float | None) -> None:
        period = self._period_s
        if interval is None or period is None:
            return
        if interval > SLOW_CAMERA * period and name not in self._slow:
            self._slow.add(name)
            self._log.warn(f"camera '{name}' sends a frame every {interval * 1e3:.0f} ms (median), but the policy's "
                           f"frame stack takes its frames {period * 1e3:.0f} ms apart (its dt): the stack repeats "
                           f"frames or spans more time than in training, so the policy sees other motion than it "
                           f"learned from. Run the camera at >= {1.0 / period:.0f} fps (its driver's rate, or fewer "
                           "cameras on one USB bus)")
        elif interval < 1.2 * period and name in self._slow:
            self._slow.discard(name)
            self._log.info(f"camera '{name}' sends a frame every {interval * 1e3:.0f} ms again (the stack's "
                           f"period: {period * 1e3:.0f} ms)")

    def on_resize(self, name: str, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> None:
        """The observation builder's hook: camera ``name``'s frames of ``src_hw = (h, w)`` are resized to its
        entry's ``dst_hw`` (the first such frame). Stretched by more than 2 %: a warning."""
        text = (f"camera '{name}': its {src_hw[1]}x{src_hw[0]} frames are resized to the policy's "
                f"{dst_hw[1]}x{dst_hw[0]} (nearest pixel)")
        change = aspect_change(src_hw, dst_hw)
        if change > 0.02:
            self._log.warn(f"{text}, which stretches them: their aspect ratio differs from the policy's by "
                           f"{change:.0%}. If the policy was trained on frames of the policy's shape, give it such "
                           "frames (the camera driver's resolution, or a crop before rtc_ros)")
        else:
            self._log.info(text)

    def on_executor_report(self, rep: ExecutorReport) -> bool:
        """Call under the lock; True when an executor reset cleared every camera's frames."""
        return self.history.on_executor_report(rep)

    def snapshot(self) -> tuple[dict[str, tuple[Any, float, int]], dict[str, list[Any]]]:
        """Call under the lock, with the joint state it is paired with: (newest frame per camera, stacks)."""
        return dict(self.latest), self.history.stacks()  # newest first

    def frames(self, snapshot: tuple[dict[str, tuple[Any, float, int]], dict[str, list[Any]]], joints_stamp_ns: int,
               timeout_s: float, now: float) -> tuple[dict[str, Any], list[int]] | None:
        """``({name: (h, w, 3) pixels or, for a stacked entry, their list, newest first}, [stamps ns])`` from a
        :meth:`snapshot` for an observation whose joint state is stamped ``joints_stamp_ns``, or None (counted
        and logged) when a camera's frame is missing, received more than ``timeout_s`` before ``now``
        (monotonic s), stamped that long before the joint state, or does not decode."""
        latest, stacks = snapshot
        out, stamps = {}, []
        for name in self.names:
            if name not in latest:
                self._reject("missing", f"no image from camera '{name}' yet")
                return None
            _frame, recv, stamp = latest[name]
            if now - recv > timeout_s:
                self._reject("stale", f"camera '{name}' image is {now - recv:.3f}s old (obs_timeout {timeout_s}s)")
                return None
            lag = (joints_stamp_ns - stamp) * 1e-9
            if abs(lag) > timeout_s:  # received in time, but not taken with the joint state (clocks? a buffer?)
                self._reject("stale", f"camera '{name}' image is stamped {abs(lag):.3f}s "
                                      f"{'before' if lag > 0 else 'after'} the joint state (obs_timeout {timeout_s}s; "
                                      "do the camera and robot clocks agree?)")
                return None
            if not stacks[name]:
                self._reject("missing", f"no image from camera '{name}' since the executor was reset")
                return None
            try:  # a stack: fewer than t frames so far repeat the oldest (the policy lays it out)
                out[name] = [pixels(f) for f in stacks[name]] if name in self.stacked else pixels(stacks[name][0])
            except ValueError as exc:  # a compressed frame that does not decode
                self._reject("image", f"camera '{name}': {exc}")
                return None
            stamps.append(stamp)
        return out, stamps
