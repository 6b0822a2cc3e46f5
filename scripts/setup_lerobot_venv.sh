#!/usr/bin/env bash
# Create .venv-lerobot: the optional LeRobot tier (SmolVLA, Diffusion Policy and GR00T adapters, rclpy, test/lerobot/). Idempotent: a
# stamp holds the hash of the pinned requirements and this script; nothing is reinstalled while it
# matches. Usage: scripts/setup_lerobot_venv.sh [PYTHON] [VENV]
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv-lerobot}
cd "$(dirname "$0")/.."
LEROBOT_VERSION=0.4.4
stamp="$venv/.installed"
hash=$(cat requirements-lerobot.txt constraints.txt scripts/setup_lerobot_venv.sh | sha256sum | cut -c1-16)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
  touch "$stamp"   # newer than its inputs again (make)
  echo "$venv is up to date"
  exit 0
fi
start=$(date +%s)
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
touch "$venv/COLCON_IGNORE"   # colcon must not crawl the venv
log=$(mktemp)
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
ros_pins=$(mktemp)   # the ROS 2 packages' (and rosbags') dependencies as pinned for .venv (an unpinned ros-* pulls Kilted)
grep -E '^(ros-|catkin-pkg|empy|lark-parser|apsw|backports.zstd|lz4|ruamel.yaml)' constraints.txt > "$ros_pins"
if ! { "${pip[@]}" -r requirements-lerobot.txt -c "$ros_pins" && "${pip[@]}" --no-deps "lerobot==$LEROBOT_VERSION"; } >"$log" 2>&1; then
  grep -v "is ignored: it is neither a file nor a directory" "$log" >&2
  echo "pip install into $venv failed" >&2
  exit 1
fi
rm -f "$log" "$ros_pins"
"$venv/bin/python" -c "
import torch, torchvision, lerobot, rclpy
from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy
from lerobot.policies.groot.modeling_groot import GrootPolicy
print('$venv ready: torch', torch.__version__, 'torchvision', torchvision.__version__, 'lerobot', lerobot.__version__)"
echo "$hash" > "$stamp"
echo "set up in $(( $(date +%s) - start )) s, $(du -sh "$venv" | cut -f1)"
