#!/usr/bin/env bash
# Create the project venv and install pinned dependencies (PyPI only; no ROS install needed).
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
cd "$(dirname "$0")/.."
if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
touch "$venv/COLCON_IGNORE"   # colcon must not crawl the venv
if [[ -x scripts/install_system_deps.sh ]]; then
  bash scripts/install_system_deps.sh
fi
reqs=(-r requirements.txt)
[[ -s requirements-sim.txt ]] && reqs+=(-r requirements-sim.txt)
log=$(mktemp)
if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q "${reqs[@]}" -c constraints.txt >"$log" 2>&1; then
  grep -v "is ignored: it is neither a file nor a directory" "$log" >&2
  echo "pip install failed" >&2
  exit 1
fi
rm -f "$log"
"$venv/bin/python" -c "import torch, rclpy, rosbags, safetensors; print('venv ready: torch', torch.__version__)"
