"""Orchestration shared by the sim experiment and the demo: node processes + an episode driver.

Everything runs as plain ``python -m <module> --ros-args ...`` processes (no ``ros2``/``launch``
needed), on an isolated DDS domain (random ``ROS_DOMAIN_ID`` unless set, localhost discovery only).

:class:`EpisodeDriver` is a small rclpy node in the calling process. One episode::

    sim/reset {"seed": s, "hold_s": h}  ->  wait sim/status episode k (the arms were moved home)
    chunk_executor/resync                (drop the old episode's chunks, hold the new measured pose, paused)
    wait sim/status state 'running'      (the reset hold is over: the sim follows commands again)
    chunk_executor/resume                (the next chunk is a start-up chunk, planned from the new state)
    rtc/episode {"cmd": "start", "meta": {...}}          (episode_recorder opens a bag)
    wait sim/status state 'done' (success latched or max_episode_steps) or the wall-clock timeout
    rtc/episode {"cmd": "stop", "success": ..., "score": progress}   (the bag is closed)
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


@dataclass
class EpisodeResult:
    """Outcome of one driven episode (the driver's own bookkeeping; the bags hold the rest).

    Attributes: method, extra_latency_ms (injected latency), seed, success, progress (0..5), sim_steps (20 ms ticks run),
    success_step (tick of success or -1), wall_s (start to done), timed_out (driver wall timeout),
    protective_stops (in the episode, from the simulator's status; -1 when it does not report them).
    """

    method: str
    extra_latency_ms: float
    seed: int
    success: bool
    progress: int
    sim_steps: int
    success_step: int
    wall_s: float
    timed_out: bool = False
    protective_stops: int = -1


@dataclass
class _Seen:
    status: dict[str, Any] = field(default_factory=dict)
    recorder: dict[str, Any] = field(default_factory=dict)
    chunks: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)


class EpisodeDriver:
    """rclpy node driving episodes of ``bimanual_sim`` + ``episode_recorder`` (see module docstring).

    Spins in a background thread; call :meth:`close` at the end.
    """

    def __init__(self, record: bool = True, node_name: str = "rtc_experiment_driver",
                 executor_node: str | None = "chunk_executor") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String
        from std_srvs.srv import Trigger
        from trajectory_msgs.msg import JointTrajectory

        self._rclpy = rclpy
        if not rclpy.ok():
            rclpy.init()
        self.node = rclpy.create_node(node_name)
        rel = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.record = record
        self.seen = _Seen()
        self._String = String
        self._reset_pub = self.node.create_publisher(String, "sim/reset", rel)
        self._episode_pub = self.node.create_publisher(String, "rtc/episode", rel)
        self.node.create_subscription(String, "sim/status", self._on_status, rel)
        self.node.create_subscription(String, "rtc/episode_status", self._on_recorder, latched)
        self.node.create_subscription(JointTrajectory, "rtc/chunk", self._on_chunk, rel)
        self._Trigger = Trigger
        self._resync_cli = self._resume_cli = None
        self.use_executor(executor_node)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:  # noqa: BLE001 -- shutdown races
            pass

    def _update(self, key: str, value: Any) -> None:
        with self.seen.cond:
            setattr(self.seen, key, value)
            self.seen.cond.notify_all()

    def _on_status(self, msg: Any) -> None:
        try:
            self._update("status", json.loads(msg.data))
        except ValueError:
            pass

    def _on_recorder(self, msg: Any) -> None:
        try:
            self._update("recorder", json.loads(msg.data))
        except ValueError:
            pass

    def _on_chunk(self, _msg: Any) -> None:
        self._update("chunks", self.seen.chunks + 1)

    def _check_running(self, what: str) -> None:
        """Raise ``KeyboardInterrupt`` once ROS was shut down (SIGINT: rclpy's handler shuts the context
        down, and nothing this driver waits for can arrive any more)."""
        if not self._rclpy.ok():
            raise KeyboardInterrupt(f"ROS shut down while waiting for {what}")

    def wait_for(self, pred: Any, timeout: float, what: str) -> None:
        """Block until ``pred(seen)``; ``TimeoutError`` naming ``what`` after ``timeout``, ``KeyboardInterrupt``
        as soon as ROS is shut down (Ctrl-C)."""
        end = time.monotonic() + timeout
        with self.seen.cond:
            while not pred(self.seen):
                self._check_running(what)
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
                self.seen.cond.wait(min(left, 0.5))

    def wait_ready(self, timeout: float = 120.0, chunks: int = 2) -> None:
        """Wait for the simulator status, the recorder (when recording) and ``chunks`` new chunks."""
        self.wait_for(lambda s: bool(s.status), timeout, "sim/status from bimanual_sim")
        if self.record:
            self.wait_for(lambda s: s.recorder.get("state") == "idle", timeout, "episode_recorder to be idle")
        c0 = self.seen.chunks
        self.wait_for(lambda s: s.chunks >= c0 + chunks, timeout, "chunks from policy_inference on rtc/chunk")

    def use_executor(self, executor_node: str | None) -> None:
        """Re-sync the executor ``executor_node`` (its node name, relative to this node's namespace)
        around every reset through its ``~/resync`` and ``~/resume`` services; None or "": do not."""
        for cli in (self._resync_cli, self._resume_cli):
            if cli is not None:
                self.node.destroy_client(cli)
        self._resync_cli = self._resume_cli = None
        if executor_node:
            self._resync_cli = self.node.create_client(self._Trigger, f"{executor_node}/resync")
            self._resume_cli = self.node.create_client(self._Trigger, f"{executor_node}/resume")

    def _call(self, client: Any, what: str, timeout: float = 10.0) -> None:
        """Call a ``std_srvs/Trigger`` service; ``TimeoutError`` if it does not answer, ``RuntimeError`` if
        it answers ``success: false`` (both name the service)."""
        self._check_running(f"the service {client.srv_name}")
        try:
            ready = client.wait_for_service(timeout_sec=timeout)
        except Exception:  # noqa: BLE001 -- rclpy raises once the context is shut down meanwhile
            self._check_running(f"the service {client.srv_name}")
            raise
        if not ready:
            self._check_running(f"the service {client.srv_name}")
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for the service {client.srv_name}")
        done = threading.Event()
        fut = client.call_async(self._Trigger.Request())
        fut.add_done_callback(lambda _f: done.set())
        end = time.monotonic() + timeout
        while not done.wait(min(0.5, max(0.0, end - time.monotonic()))):
            self._check_running(f"{client.srv_name} ({what})")
            if time.monotonic() >= end:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {client.srv_name} ({what})")
        res = fut.result()
        if res is None or not res.success:
            raise RuntimeError(f"{client.srv_name} ({what}) failed: {getattr(res, 'message', 'no response')}")

    def _send(self, pub: Any, payload: dict[str, Any]) -> None:
        pub.publish(self._String(data=json.dumps(payload)))

    def run_episode(self, seed: int, method: str, extra_latency_ms: float, hold_s: float = 1.5,
                    timeout_s: float = 40.0, meta: dict[str, Any] | None = None) -> EpisodeResult:
        """Reset the sim (seeded cube), record one episode until success/truncation, return the result."""
        ep0 = int(self.seen.status.get("episode", -1))
        self._send(self._reset_pub, {"seed": seed, "hold_s": hold_s})
        self.wait_for(lambda s: s.status.get("episode", -1) > ep0, 10.0, "the simulator reset")
        if self._resync_cli is not None:  # the arms were teleported: the executor must start over from them
            self._call(self._resync_cli, "re-sync after the reset")
        self.wait_for(lambda s: s.status.get("state") == "running", hold_s + 10.0, "the reset hold to end")
        if self._resume_cli is not None:
            self._call(self._resume_cli, "resume after the reset")
        t0 = time.monotonic()
        if self.record:
            self._send(self._episode_pub, {"cmd": "start", "meta": {
                "task": "transfer_cube", "seed": seed, "method": method, "extra_latency_ms": extra_latency_ms,
                "source": "rtc_ros.experiments", **(meta or {})}})
        timed_out = False
        try:
            self.wait_for(lambda s: s.status.get("state") == "done", timeout_s, "the episode to finish")
        except TimeoutError:
            timed_out = True
        st = dict(self.seen.status)
        wall = time.monotonic() - t0
        success = bool(st.get("success"))
        if self.record:
            self._send(self._episode_pub, {"cmd": "stop", "success": success, "score": int(st.get("progress", 0)),
                                           "notes": f"seed {seed}, {st.get('step')} sim steps"})
            try:
                self.wait_for(lambda s: s.recorder.get("state") == "recording", 0.01, "")
            except TimeoutError:
                pass
            self.wait_for(lambda s: s.recorder.get("state") in ("idle", "error"), 30.0, "the recorder to close the bag")
        return EpisodeResult(method, extra_latency_ms, seed, success, int(st.get("progress", 0)), int(st.get("step", 0)),
                             int(st.get("success_step", -1)), round(wall, 3), timed_out,
                             int(st.get("protective_stops", -1)))

    def close(self) -> None:
        try:
            self._executor.shutdown()
            self._thread.join(5.0)  # a spin thread alive at interpreter exit aborts the process (SIGABRT)
            self.node.destroy_node()
        finally:
            self._rclpy.try_shutdown()
