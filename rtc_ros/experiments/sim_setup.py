"""What every simulated-time episode shares: the tasks, the simulator, the validated node parameters,
the policy and camera (:class:`Setup`, :func:`load_setup`), and the modelled compute time per sampling
kind (:func:`measure_compute_ms`). The episode itself: :mod:`rtc_ros.experiments.sim_offline`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported (headless rendering)

import numpy as np  # noqa: E402

from rtc_ros.nodes.cores import generator_config  # noqa: E402
from rtc_ros.nodes.policy_fit import fit_policy  # noqa: E402
from rtc_ros.nodes.policy_setup import warmup_sample  # noqa: E402
from rtc_ros.nodes.params import (  # noqa: E402
    ROLE_EXECUTOR, ROLE_INFERENCE, ROLE_SIM, NodeParams, load_params_file, validate,
)
from rtc_ros.runtime.methods import method_info  # noqa: E402
from rtc_ros.sim.bimanual import BimanualSim  # noqa: E402
from rtc_ros.sim.camera import CameraConfig  # noqa: E402
from rtc_ros.sim.limits import ProtectiveStopConfig  # noqa: E402

log = logging.getLogger(__name__)

DEFAULT_TASK = "transfer_cube"


def available_tasks() -> tuple[str, ...]:
    """The simulator's tasks (:data:`rtc_ros.sim.TASK_NAMES`)."""
    from rtc_ros.sim import TASK_NAMES

    return tuple(TASK_NAMES)


def make_sim(task: str, max_episode_steps: int, stops: ProtectiveStopConfig | None = None) -> BimanualSim:
    """A simulator for ``task`` with the ViperX protective stops (:mod:`rtc_ros.sim.limits`) as ``stops``
    says (None: on, 1 s recovery; the experiment passes the params file's, :attr:`Setup.stop_config`, as
    the sim node builds its own from them)."""
    if task not in available_tasks():
        raise ValueError(f"--tasks: unknown task {task!r}; expected one of {available_tasks()}")
    return BimanualSim(max_episode_steps=max_episode_steps, task=task,
                       protective_stops=True if stops is None else stops)


def stop_recovery_values(on: bool) -> dict[str, Any]:
    """chunk_executor values switching the stop recovery (re-sync around stops + the 0.2 s start-up ramp of
    ``config/sim_bimanual.yaml``) on, or off (the protocol before 2026-12-02 evening: neither)."""
    return {"robot_stopped_topic": "robot_stopped", "startup_ramp_s": 0.2} if on else \
        {"robot_stopped_topic": "", "startup_ramp_s": 0.0}


def trace_path(out: Path, task: str, method: str, latency_ms: float) -> Path:
    """Where the experiment keeps a cell's first-seed trace (``out/traces/<task>_<method>_<ms>ms.npz``)."""
    return out / "traces" / f"{task}_{method}_{int(round(latency_ms))}ms.npz"


@dataclass
class Setup:
    """What all episodes share: validated node parameters, the policy, the camera settings.

    Built by :func:`load_setup`; ``values`` are the params file's values per role (method and
    injected latency are set per episode).
    """

    values: dict[str, dict[str, Any]]
    sim_params: NodeParams
    policy: Any
    weak_policy: Any
    camera: CameraConfig
    camera_name: str
    joint_entry: str
    dt: float
    _params: dict[tuple[str, str, float], NodeParams] = field(default_factory=dict)

    def params(self, role: str, method: str, extra_latency_ms: float = 0.0) -> NodeParams:
        """Validated parameters of ``role`` for ``method`` (and, for inference, ``extra_latency_ms``)."""
        key = (role, method, float(extra_latency_ms))
        if key not in self._params:
            v = dict(self.values[role], method=method)
            if role == ROLE_INFERENCE:
                v["extra_latency_ms"] = float(extra_latency_ms)
            self._params[key] = validate(v, role)
        return self._params[key]

    @property
    def stop_config(self) -> ProtectiveStopConfig:
        """The sim node's protective stops from the params file (``protective_stops``, ``..._recovery_s``)."""
        p = self.sim_params
        return ProtectiveStopConfig(enabled=bool(p.protective_stops), recovery_s=float(p.protective_stop_recovery_s))

    @property
    def cam_every(self) -> int:
        """Ticks between camera frames (the sim node's ``camera_rate_hz``)."""
        return max(1, int(round(1.0 / (float(self.sim_params.camera_rate_hz) * self.dt))))

    def camera_phase(self, seed: int) -> int:
        """Camera phase of episode ``seed``: frames follow the steps ``n`` with ``n % cam_every == phase``
        (``seed % cam_every``: consecutive seeds cycle through every phase; the same for every method)."""
        return int(seed) % self.cam_every


def load_setup(config: Path, policy_spec: Path, torch_threads: int = 1) -> Setup:
    """Read ``config`` (the nodes' params file) for the executor, inference and sim roles, load the policy.

    Raises:
        rtc_ros.nodes.params.ParameterError / ValueError: invalid parameters or a policy that does
            not fit them (naming the field), as the nodes would refuse them.
    """
    import torch

    from rtc_ros.policies.spec import load_policy

    values = {role: load_params_file(config, node) for role, node in
              ((ROLE_EXECUTOR, "chunk_executor"), (ROLE_INFERENCE, "policy_inference"), (ROLE_SIM, "bimanual_sim"))}
    values[ROLE_INFERENCE]["policy_spec"] = str(policy_spec)
    pi = validate(values[ROLE_INFERENCE], ROLE_INFERENCE)
    pe = validate(values[ROLE_EXECUTOR], ROLE_EXECUTOR)
    ps = validate(values[ROLE_SIM], ROLE_SIM)
    if torch_threads > 0:
        torch.set_num_threads(int(torch_threads))
    policy = load_policy(str(policy_spec), device=pi.device)
    if abs(pe.dt - 0.02) > 1e-9:
        raise ValueError(f"rate_hz: the simulator runs at 50 Hz, the params file has {1 / pe.dt:g} Hz")
    fit = fit_policy(policy, pi, cameras_required=False)  # what policy_inference checks (it renders its camera)
    for note in fit.notes:
        log.warning(note)
    if fit.builder.joint_history > 1:  # (the episode hands the policy the current joint positions only)
        raise ValueError(f"policy_spec: {policy_spec}'s observation holds a joint history "
                         f"({fit.builder.joint_history} rows), which the simulated-time experiment does not keep")
    cams = fit.cameras
    if len(cams) != 1 or float(ps.camera_rate_hz) <= 0:
        raise ValueError(f"camera_names: the simulator has one camera, the policy needs {cams}")
    weak = load_policy(str(pi.weak_policy_spec), device=pi.device) if pi.weak_policy_spec else None
    lk = ps.camera_lookat
    camera = CameraConfig(ps.camera, ps.camera_width, ps.camera_height, (lk[0], lk[1], lk[2]), ps.camera_distance,
                          ps.camera_azimuth, ps.camera_elevation)
    return Setup(values, ps, policy, weak, camera, cams[0], policy.joint_entry or "joint_positions", pe.dt)


def measure_compute_ms(setup: Setup, methods: list[str], obs: dict[str, np.ndarray], calls: int = 20,
                       warmup: int = 3) -> dict[str, dict[str, float]]:
    """Median wall time (ms) of warm ``generate`` calls per sampling kind of ``methods``.

    The node's warm-up sample (:func:`~rtc_ros.nodes.policy_setup.warmup_sample`): ``prev`` = the previous
    chunk from ``s_min`` on, ``d = 2`` (less for a shorter trained prefix), ``s = s_min``.
    Returns ``{kind: {"median", "p10", "p90", "calls"}}``.
    """
    from rtc_ros.runtime.generator import ChunkGenerator

    out: dict[str, dict[str, float]] = {}
    for method in methods:
        kind = method_info(method).sampling
        if kind in out:
            continue
        p = setup.params(ROLE_INFERENCE, method)
        gen = ChunkGenerator(setup.policy, generator_config(p, seed=0), setup.weak_policy)
        prev = warmup_sample(gen, p, obs, None)
        times = []
        for i in range(warmup + calls):
            t0 = time.perf_counter()
            prev = warmup_sample(gen, p, obs, prev)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
        a = np.asarray(times)
        out[kind] = {"median": float(np.median(a)), "p10": float(np.percentile(a, 10)),
                     "p90": float(np.percentile(a, 90)), "calls": float(calls)}
    return out


def compute_ms_for(method: str, compute: dict[str, float]) -> float:
    """The modelled compute time of ``method``: its sampling kind's entry of ``compute``."""
    kind = method_info(method).sampling
    if kind not in compute:
        raise ValueError(f"compute_ms: no compute time for sampling kind {kind!r} (method {method!r})")
    return float(compute[kind])


def stop_count(sim: Any) -> int | None:
    """Protective stops since the simulator's last reset; None when its stops are disabled."""
    cfg = getattr(sim, "protective_stop_config", None)
    if cfg is None or not cfg.enabled:
        return None
    return len(sim.protective_stops)
