#!/usr/bin/env bash
# Exit 0 if the LeRobot tier can be set up here without downloading torch: .venv-lerobot is already
# set up, or the pinned torch wheel is in a local wheel store pip is configured with (a file://
# index or a find-links directory). Otherwise print why not and exit 1. Cheap: reads pip's config only.
cd "$(dirname "$0")/.."
venv=${1:-.venv-lerobot}
torch_pin=$(sed -n 's/^torch==\(.*\)$/\1/p' requirements-lerobot.txt)
if [[ -f "$venv/.installed" ]]; then
  exit 0
fi
python3 - "$torch_pin" <<'PY'
import glob, os, re, subprocess, sys
pin = sys.argv[1]
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
urls = re.findall(r"(?:index-url|find-links)='([^']*)'", out) + os.environ.get("PIP_FIND_LINKS", "").split()
urls += os.environ.get("PIP_EXTRA_INDEX_URL", "").split()
for entry in " ".join(urls).split():
    d = entry[len("file://"):] if entry.startswith("file://") else entry
    if not os.path.isdir(d):
        continue
    if glob.glob(os.path.join(d, f"torch-{pin}-*.whl")):
        sys.exit(0)
    index = os.path.join(d, "torch", "index.html")
    if os.path.isfile(index) and f"torch-{pin}-" in open(index, errors="replace").read():
        sys.exit(0)
print(f"no local wheel store with torch=={pin} (pip config: find-links / file:// indexes); "
      "run 'make test-lerobot' to set up .venv-lerobot from the network (~6 GB)")
sys.exit(1)
PY
