"""EpisodeDriver (sim_episodes, the experiment driver) stops waiting as soon as ROS is shut down.

Ctrl-C on ``ros2 launch`` sends SIGINT; rclpy's handler shuts the context down, and a driver waiting for
the reset hold to end then waited out its whole timeout and exited with an error (seen once in CI: the
launch test's ``sim_episodes: not clean``)."""

from __future__ import annotations

import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy")

from rtc_ros.experiments.runner import EpisodeDriver  # noqa: E402


def test_wait_ends_with_keyboard_interrupt_when_ros_shuts_down() -> None:
    rclpy.init()
    driver = EpisodeDriver(record=False, node_name="shutdown_test_driver", executor_node="no_such_executor")
    try:
        threading.Timer(0.3, rclpy.try_shutdown).start()  # what SIGINT does
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt, match="sim/status"):
            driver.wait_for(lambda s: bool(s.status), 30.0, "sim/status")
        assert time.monotonic() - t0 < 3.0
        with pytest.raises(KeyboardInterrupt, match="resync"):
            driver._call(driver._resync_cli, "re-sync", timeout=30.0)
    finally:
        driver.close()
        rclpy.try_shutdown()
