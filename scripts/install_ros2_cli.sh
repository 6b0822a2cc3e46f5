#!/usr/bin/env bash
# Install the ROS 2 CLI (`ros2 launch/run/topic/node/param/service`) into the project venv for the tests
# that drive it, from ../shared/ros2-jazzy (upstream Jazzy sources + install.sh) when that folder exists.
#
#   bash scripts/install_ros2_cli.sh [VENV] [SRC_DIR]      (make test runs it; about 1 min the first time)
#
# Skipped (exit 0, with a note) when
#   - a system ROS 2 provides `ros2` (AMENT_PREFIX_PATH set and `ros2` on PATH, outside VENV): the tests use it;
#   - SRC_DIR (default ../shared/ros2-jazzy) is absent: the CLI tests then skip, naming the reason;
#   - it is already installed: VENV/.ros2cli_installed holds the checksum of SRC_DIR's install.sh and
#     SOURCES.tsv and VENV/bin/ros2 exists.
# A failed install exits non-zero (make test stops): with the sources present the CLI tests must run.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
src=${2:-${RTC_ROS2_CLI_SRC:-../shared/ros2-jazzy}}
stamp="$venv/.ros2cli_installed"

system_ros2=$(command -v ros2 || true)
if [[ -n "${AMENT_PREFIX_PATH:-}" && -n "$system_ros2" && "$system_ros2" != "$(cd "$venv" && pwd)/bin/ros2" ]]; then
  echo "ros2 CLI: using the system's $system_ros2 (AMENT_PREFIX_PATH is set); nothing to install"
  exit 0
fi
if [[ ! -f "$src/install.sh" ]]; then
  echo "ros2 CLI: $src/install.sh not found; the tests that drive ros2 will skip"
  exit 0
fi
sum=$(cat "$src/install.sh" "$src/SOURCES.tsv" 2>/dev/null | sha256sum | cut -d' ' -f1)
if [[ -x "$venv/bin/ros2" && -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
  exit 0  # already installed from these sources
fi
echo "ros2 CLI: installing launch, launch_ros and ros2cli from $src into $venv (about 1 min)"
rm -f "$stamp"
# No RTC_ROS_DIR argument: `make build` builds the package; the project's pinned rclpy is already in the venv
# (install.sh's own pins are the same Jazzy versions).
bash "$src/install.sh" "$venv" "$src"
echo "$sum" > "$stamp"
