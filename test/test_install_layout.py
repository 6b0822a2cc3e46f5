"""The colcon-built package has the ament_python layout ROS 2 tools expect."""

import os
from pathlib import Path

import pytest

import rtc_ros

INSTALL = os.environ.get("RTC_ROS_INSTALL")
pytestmark = pytest.mark.skipif(not INSTALL, reason="run through `make test` (tests the colcon-built package)")


def test_tests_import_the_built_package():
    assert Path(rtc_ros.__file__).resolve().is_relative_to(Path(INSTALL).resolve())


def test_share_and_index_layout():
    root = Path(INSTALL)
    assert (root / "share/ament_index/resource_index/packages/rtc_ros").is_file()
    assert (root / "share/rtc_ros/package.xml").is_file()
    repo = Path(__file__).resolve().parents[1]
    for sub, pattern in (("launch", "*.py"), ("config", "*.yaml")):
        expected = sorted(p.name for p in (repo / sub).glob(pattern))
        installed = sorted(p.name for p in (root / "share/rtc_ros" / sub).glob(pattern))
        assert installed == expected


def test_console_scripts_in_lib_rtc_ros():
    lib = Path(INSTALL) / "lib/rtc_ros"
    scripts = {p.name for p in lib.iterdir()} if lib.is_dir() else set()
    assert {"rtc_toy_demo", "rtc_latency_benchmark"} <= scripts
