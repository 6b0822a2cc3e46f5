"""Reading ROS 2 params files without ROS: the ROS-free reader lives in
:mod:`rtc_ros.recording.params_file` (training from bags uses it too); re-exported here."""

from __future__ import annotations

from rtc_ros.recording.params_file import key_matches, load_params_file

__all__ = ["key_matches", "load_params_file"]
