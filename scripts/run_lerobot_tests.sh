#!/usr/bin/env bash
# Run the LeRobot tier (test/lerobot/) in .venv-lerobot, importing rtc_ros from this checkout.
set -eo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# --confcutdir: test/conftest.py (ROS fixtures) belongs to the main venv's tier
exec .venv-lerobot/bin/pytest -c setup.cfg --rootdir . --confcutdir test/lerobot -q -rs "$@" test/lerobot
