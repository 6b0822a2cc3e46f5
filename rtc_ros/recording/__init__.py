"""ROS-free recording helpers: episode bags (rosbag2 + MCAP via ``rosbags``), sidecar metadata,
reading episodes back into arrays, and turning demonstrations into a training set.

Layout of one recorded episode (a normal rosbag2 directory plus one JSON file)::

    <root>/episode_0003/
        metadata.yaml          rosbag2 metadata; custom_data["rtc_episode"] = the sidecar JSON
        episode_0003.mcap      the messages, CDR bytes exactly as they travelled
        episode_0003.json      sidecar: method, RTC parameters, injected latency, policy spec,
                               operator score / success, durations, per-topic counts
        episode_0003.mcap.broken   only after a repair: the unfinished original (recover.py)

A bag whose recorder was killed is repaired by ``python -m rtc_ros.recording.recover`` (or the next
recorder start); see :mod:`rtc_ros.recording.recover`.

Nothing here imports rclpy, so the report and training can run on any machine with the bags.
"""

from rtc_ros.recording.bag import (
    EPISODE_META_KEY,
    BagWriter,
    RecordingError,
    next_episode_name,
    preflight_output_dir,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)

__all__ = [
    "EPISODE_META_KEY",
    "BagWriter",
    "RecordingError",
    "next_episode_name",
    "preflight_output_dir",
    "read_sidecar",
    "sidecar_path",
    "write_sidecar",
]
