"""Orchestration shared by the sim experiment and the demo: node processes + an episode driver.

Everything runs as plain ``python -m <module> --ros-args ...`` processes (no ``ros2``/``launch``
needed), on an isolated DDS domain (random ``ROS_DOMAIN_ID`` unless set, localhost discovery only).

:class:`EpisodeDriver` (:mod:`rtc_ros.experiments.episode_driver`, re-exported here) drives the episodes.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtc_ros.experiments.episode_driver import RECORDER_START_S, EpisodeDriver, EpisodeResult  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    import numpy as np

REPO = Path(__file__).resolve().parents[2]


def package_file(relative: str) -> Path:
    """``config/...`` or ``policies/...``: from the source tree, else from the installed share directory
    (``share/rtc_ros/<relative>`` under ``sys.prefix`` or ``$AMENT_PREFIX_PATH``)."""
    cand = [REPO / relative] + [p / "share" / "rtc_ros" / relative for p in Path(__file__).resolve().parents]
    cand.append(Path(sys.prefix) / "share" / "rtc_ros" / relative)
    cand += [Path(p) / "share" / "rtc_ros" / relative for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    for c in cand:
        if c.is_file():
            return c
    return cand[0]


DEFAULT_CONFIG = package_file("config/sim_bimanual.yaml")
DEFAULT_POLICY = package_file("policies/bimanual_cnn_h50.yaml")
EVAL_SEED0 = 10_000  # demonstrations use seeds < 10000


def arm_limits(params_file: str | Path, joint_names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lower, upper, max_step)``, each ``(M,)`` in ``joint_names`` order, from a params file's
    shared (``/**``) section (``arms`` and per-arm ``joint_names`` / ``lower_limits`` /
    ``upper_limits`` / ``max_step``).

    Raises:
        ValueError: the file lacks an arm field or a joint, naming it.
    """
    import numpy as np
    import yaml

    doc = yaml.safe_load(Path(params_file).read_text())
    p = (doc.get("/**") or {}).get("ros__parameters") or {}
    table: dict[str, tuple[float, float, float]] = {}
    for arm in p.get("arms") or []:
        a = p.get(arm) or {}
        for fld in ("joint_names", "lower_limits", "upper_limits", "max_step"):
            if fld not in a:
                raise ValueError(f"{params_file}: {arm}.{fld} missing")
        names, step = a["joint_names"], a["max_step"]
        step = step * len(names) if len(step) == 1 else step
        for i, n in enumerate(names):
            table[n] = (float(a["lower_limits"][i]), float(a["upper_limits"][i]), float(step[i]))
    missing = [n for n in joint_names if n not in table]
    if missing:
        raise ValueError(f"{params_file}: no limits for joints {missing}")
    arr = np.array([table[n] for n in joint_names])
    return arr[:, 0], arr[:, 1], arr[:, 2]


def ros_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the node processes: isolated domain, localhost discovery, 1 BLAS thread.

    ``ROS_DOMAIN_ID`` is kept when already set, else drawn at random from 1..100 (and also set in
    this process so that the driver node joins the same domain)."""
    if "ROS_DOMAIN_ID" not in os.environ:
        os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 100))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"), "MKL_NUM_THREADS": "1",
                "PYTHONUNBUFFERED": "1", "RCUTILS_LOGGING_BUFFERED_STREAM": "0", "MUJOCO_GL": env.get("MUJOCO_GL", "egl")})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def ros_args_for(config: Path, params: dict[str, Any] | None = None) -> list[str]:
    """``--params-file config -p k:=v ...`` (the part after ``--ros-args``)."""
    args = ["--params-file", str(config)]
    for k, v in (params or {}).items():
        args += ["-p", f"{k}:={_ros_value(v)}"]
    return args


class NodeProcess:
    """One node as ``python -m module --ros-args <ros_args>``; stdout and stderr go to ``log_path``."""

    def __init__(self, module: str, ros_args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.module = module
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", module, "--ros-args", *ros_args], env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=str(REPO))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.output().splitlines()[-n:])

    def wait_for_output(self, text: str, timeout: float) -> bool:
        """True once ``text`` appears in the log (False after ``timeout`` s or when the process ended)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.output():
                return True
            if self.proc.poll() is not None:
                return text in self.output()
            time.sleep(0.1)
        return False

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT (clean shutdown: the recorder closes its bag), then SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


def write_params(config: Path, overrides: dict[str, dict[str, Any]], path: Path) -> Path:
    """Copy the params file ``config`` to ``path`` with ``overrides[section][name] = value`` applied.

    ``section`` is ``/**`` or a node name (a node name selects the file's ``/**/<name>`` section when it has
    one, the form that also applies under a namespace). Used instead of ``-p`` on the command line: a ``-p`` override
    is a wildcard rule and loses against a node-specific entry of the params file.
    """
    import yaml

    data = yaml.safe_load(Path(config).read_text()) or {}
    for section, values in overrides.items():
        if section not in data and f"/**/{section}" in data:
            section = f"/**/{section}"
        params = data.setdefault(section, {}).setdefault("ros__parameters", {})
        params.update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _ros_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_ros_value(x) for x in v) + "]"
    return str(v)

