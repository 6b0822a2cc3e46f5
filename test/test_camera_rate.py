"""policy_inference's cameras: a camera feeding a frame stack taken ``period_s`` apart (a policy with a joint
history, LeRobot's Diffusion Policy) that sends frames further apart than that is warned about once, and said fast
again when it is (rtc_ros.nodes.camera_inputs.FrameRate / CameraInputs)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("rclpy")

from rtc_ros.nodes.camera_inputs import CameraInputs, FrameRate  # noqa: E402


class _Node:
    """The two calls CameraInputs makes on its node: subscriptions (none delivered here) and a logger."""

    def __init__(self) -> None:
        self.logged: list[tuple[str, str]] = []

    def create_subscription(self, *args, **kwargs) -> None:
        return None

    def get_logger(self):
        node = self

        class Logger:
            def warn(self, text: str) -> None:
                node.logged.append(("warn", text))

            def info(self, text: str) -> None:
                node.logged.append(("info", text))

        return Logger()


def _cameras(node: _Node, period_s: float | None, frames: int = 2) -> CameraInputs:
    return CameraInputs(node, ["wrist"], ["wrist/image_raw"], {"wrist": frames}, lambda: 5.0, "raw",
                        threading.Lock(), lambda stamp, what: stamp, lambda reason, text: None, period_s)


def test_frame_rate_is_the_median_interval_once_the_window_is_full() -> None:
    rate = FrameRate(window=4)
    out = [rate.add(int(t * 1e9), 0.0) for t in (1.0, 1.1, 1.2, 1.5, 1.6)]  # one late frame
    assert out[:4] == [None] * 4 and out[4] == pytest.approx(0.1)
    assert rate.add(int(0.2e9), 0.0) is None  # the camera's clock stepped back: a new window


def test_a_camera_slower_than_the_stack_period_is_warned_once_then_said_fast_again() -> None:
    node, frame = _Node(), np.zeros((4, 4, 3), np.uint8)
    cams = _cameras(node, period_s=1 / 30)
    t = 10.0
    for _ in range(60):  # 15 fps against a 30 fps dataset
        t += 1 / 15
        cams.store("wrist", frame, int(t * 1e9))
    warns = [text for kind, text in node.logged if kind == "warn"]
    assert len(warns) == 1 and "every 67 ms" in warns[0] and "33 ms apart" in warns[0] and ">= 30 fps" in warns[0]
    for _ in range(40):
        t += 1 / 30
        cams.store("wrist", frame, int(t * 1e9))
    assert [k for k, _ in node.logged] == ["warn", "info"] and "again" in node.logged[-1][1]


def test_no_warning_at_the_period_or_without_a_timed_stack() -> None:
    frame = np.zeros((4, 4, 3), np.uint8)
    for period_s, frames, fps in ((1 / 30, 2, 30.0), (None, 2, 5.0), (1 / 30, 1, 5.0)):
        node = _Node()
        cams = _cameras(node, period_s, frames)
        for i in range(80):
            cams.store("wrist", frame, int((10.0 + i / fps) * 1e9))
        assert node.logged == [], (period_s, frames, fps, node.logged)
