"""The package must run on Python 3.10-3.12 (ROS 2 Humble and Jazzy): byte-compile it with each.

Only the syntax level can be checked here (torch wheels exist only for this venv's Python), but
that is where version breaks usually come from (new syntax, typing forms).
"""

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import rtc_ros

PKG = Path(rtc_ros.__file__).resolve().parent


@pytest.mark.parametrize("version", ["3.10", "3.12"])
def test_compiles_with(version, tmp_path):
    candidates = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")))
    candidates += [c for c in [shutil.which(f"python{version}")] if c]
    exe = next((c for c in candidates if subprocess.run([c, "-c", "pass"], capture_output=True).returncode == 0), None)
    if exe is None:
        pytest.skip(f"no runnable python{version} on this machine")
    # Compile a copy so no foreign .pyc files land in the package.
    shutil.copytree(PKG, tmp_path / "rtc_ros", ignore=shutil.ignore_patterns("__pycache__"))
    res = subprocess.run([exe, "-m", "compileall", "-q", str(tmp_path / "rtc_ros")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
