#!/usr/bin/env bash
# Run the test suite against the colcon-built package in install/ (make build first).
set -eo pipefail
cd "$(dirname "$0")/.."
site=$(ls -d install/rtc_ros/lib/python3*/site-packages)
export PYTHONPATH="$PWD/$site${PYTHONPATH:+:$PYTHONPATH}"
export RTC_ROS_INSTALL="$PWD/install/rtc_ros"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The pytest console script does not put the repository root on sys.path, so `rtc_ros` is imported
# from the built package.
exec .venv/bin/pytest -q -rs "$@"
