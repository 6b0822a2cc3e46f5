#!/usr/bin/env bash
# System packages for headless MuJoCo rendering (rtc_ros.sim): EGL with Mesa's software
# rasteriser (llvmpipe).  Idempotent: installs only what is missing (Debian/Ubuntu).
set -euo pipefail

PKGS=(libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libglvnd0 libgbm1)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_system_deps: all present (${PKGS[*]})"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install_system_deps: need root to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "install_system_deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
