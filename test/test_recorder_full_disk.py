"""A really full disk (an 8 MB tmpfs in a private mount namespace) under the recorder's episode session: the episode's
reserve (``.reserve``, released before the bag is closed or failed) leaves room for the close and the sidecar.

Found by a data-collection walkthrough (2026-12-07): on ENOSPC the sidecar's rewrite failed too, silently, so it kept
saying ``recording`` with the live recorder's pid (``recover`` skipped it while the recorder ran, a 0-byte
``.json.tmp`` was left beside it), and a full disk at the stop lost the operator's verdict. Skipped where no mount
namespace can be made (``unshare -rm``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = r"""
import json, os, sys
from pathlib import Path
import numpy as np
from rtc_ros.recording.bag import RecordingError
from rtc_ros.recording.session import EpisodeSession, RESERVE_BYTES
from rtc_ros.recording.synthetic import joint_state_cdr, image_cdr

root = Path(sys.argv[1])
JS = "sensor_msgs/msg/JointState"


def fill(path):
    # the rest of the disk: a file grown until ENOSPC
    with open(path, "ab") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            pass


s = EpisodeSession(root / "bags", flush_period=0.0)
# 1. a write fails on the full disk: the episode fails, its sidecar says so and lets the writer go
bag = s.start({"method": "rtc"}, 1, 0)
assert (bag.path / ".reserve").stat().st_size == RESERVE_BYTES
bag.add_topic("/cam/image_raw", "sensor_msgs/msg/Image")
s.write_sidecar()
img = image_cdr(1, np.zeros((120, 160, 3), np.uint8))
try:
    for k in range(10_000):
        bag.write("/cam/image_raw", 10 + k, img)
        s.flush()
    sys.exit("the disk never filled")
except RecordingError as exc:
    error = str(exc)
fill(root / "filler1")
s.fail(error, 2)
side = json.loads((bag.path / f"{bag.path.name}.json").read_text())
print("FAIL", side["status"], side["writer"], sorted(p.name for p in bag.path.iterdir()), s.errors)

# 2. a full disk at the stop: the verdict and the messages flushed before are kept, the bag closes readable
os.remove(root / "filler1")
import shutil
shutil.rmtree(bag.path)
bag = s.start({"method": "rtc"}, 3, 0)
assert (bag.path / ".reserve").stat().st_size == RESERVE_BYTES
bag.add_topic("/joint_states", JS)
s.write_sidecar()
for k in range(200):
    bag.write("/joint_states", 10 + k, joint_state_cdr(10 + k, ["a", "b"], np.array([k, -k], float)))
s.flush()
fill(root / "filler2")
meta = s.finish("completed", {"success": True}, 4)
side = json.loads((bag.path / f"{bag.path.name}.json").read_text())
print("CLOSE", side["status"], side.get("success"), meta["message_count"], sorted(p.name for p in bag.path.iterdir()),
      s.errors)
from rosbags.highlevel import AnyReader
with AnyReader([bag.path]) as r:
    print("READ", sum(1 for _ in r.messages()))

# 3. a full disk at the stop with messages still in memory, just under the writer's 1 MiB chunk (with a 1 MiB
# reserve the close failed and the sidecar kept saying 'recording': a review): the reserve holds them too
os.remove(root / "filler2")
shutil.rmtree(bag.path)
bag = s.start({"method": "rtc"}, 5, 0)
bag.add_topic("/cam/image_raw", "sensor_msgs/msg/Image")
s.meta["params"]["policy_inference"] = {f"param_{i}": 0.5 * i for i in range(800)}  # a real snapshot's size (15 kB)
s.write_sidecar()
for k in range(18):  # 18 x 57.6 kB frames: under the writer's chunk size (2**20 bytes), nothing on disk yet
    bag.write("/cam/image_raw", 10 + k, img)
fill(root / "filler3")
meta = s.finish("completed", {"success": True}, 6)
side = json.loads((bag.path / f"{bag.path.name}.json").read_text())
print("UNFLUSHED", side["status"], side.get("success"), meta["message_count"],
      sorted(p.name for p in bag.path.iterdir()))
with AnyReader([bag.path]) as r:
    print("READ3", sum(1 for _ in r.messages()))
"""


def _run_on_a_small_disk(tmp_path: Path) -> str:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare: cannot mount a small file system without privileges")
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {tmp_path}"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private mount namespace: {probe.stderr.strip()}")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    cmd = f"mount -t tmpfs -o size=8m tmpfs {disk} && exec {sys.executable} {script} {disk}"
    out = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_a_full_disk_still_gets_the_sidecar_and_the_close(tmp_path: Path) -> None:
    lines = {line.split(" ", 1)[0]: line for line in _run_on_a_small_disk(tmp_path).splitlines()}
    fail = lines["FAIL"]
    # the failed episode's sidecar: 'failed', the writer let go (recover repairs it while the recorder runs);
    # no .json.tmp and no reserve left behind
    assert fail.startswith("FAIL failed None ['episode_0000.json', 'episode_0000.mcap'] []"), fail
    close = lines["CLOSE"]
    assert close.startswith("CLOSE completed True 200 ['episode_0001.json', 'episode_0001.mcap', 'metadata.yaml'] []"), \
        close
    assert lines["READ"] == "READ 200"
    assert lines["UNFLUSHED"] == "UNFLUSHED completed True 18 ['episode_0002.json', 'episode_0002.mcap', 'metadata.yaml']"
    assert lines["READ3"] == "READ3 18"
