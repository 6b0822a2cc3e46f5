"""Evaluation report over recorded episode bags (ROS-free; reads bags with ``rosbags``).

``python -m rtc_ros.report BAG_DIR --out DIR`` -- see :mod:`rtc_ros.report.cli`.
"""

from rtc_ros.report.cli import build_report, main

__all__ = ["build_report", "main"]
