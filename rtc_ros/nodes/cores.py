"""The ROS-free runtime cores built from validated node parameters (no rclpy here).

``chunk_executor`` and ``policy_inference`` build their cores with these functions, and so does the
simulated-time experiment (:mod:`rtc_ros.experiments.sim_offline`), so a run without ROS drives
exactly the cores the robot runs, configured the same way from the same params file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rtc_ros.core.delay import latency_to_steps
from rtc_ros.runtime.executor import ExecutorConfig, ExecutorCore
from rtc_ros.runtime.hold_model import HoldModel
from rtc_ros.runtime.inference_loop import InferenceLoopCore
from rtc_ros.runtime.methods import executor_mode

if TYPE_CHECKING:
    from rtc_ros.nodes.params import NodeParams
    from rtc_ros.runtime.generator import GeneratorConfig


def executor_core(p: NodeParams) -> ExecutorCore:
    """GETACTION's core for the executor role's parameters ``p`` (limits and step limits of all arms)."""
    return ExecutorCore(ExecutorConfig(
        horizon=p.horizon, action_dim=len(p.joint_names), mode=executor_mode(p.method),
        lower=np.concatenate([a.lower for a in p.arms]), upper=np.concatenate([a.upper for a in p.arms]),
        max_step=np.concatenate([a.max_step for a in p.arms]), s=p.s_min,
        ensemble_decay=p.ensemble_decay, startup_ramp=int(round(p.startup_ramp_s / p.dt)),
        startup_silent=p.startup_command == "none", max_accel=max_accel_per_tick(p),
        hold_keeps=np.array([g for a in p.arms for g in a.grippers], dtype=bool),  # (<arm>.gripper_joints)
        joint_names=tuple(p.joint_names),
    ), max_chunk_age=float(p.max_chunk_age), max_limit_excess=float(p.max_limit_excess),
        max_start_gap=float(p.max_start_gap))


def max_accel_per_tick(p: NodeParams) -> np.ndarray:
    """The arms' ``max_accel`` (rad/s^2, 0 = off) as the executor's rad/tick^2 (``inf`` = off), all joints."""
    a = np.concatenate([np.asarray(arm.max_accel, dtype=np.float64) for arm in p.arms])
    return np.where(a > 0, a * p.dt ** 2, np.inf)


def inference_loop(p: NodeParams) -> InferenceLoopCore:
    """INFERENCELOOP's core for the inference role's parameters ``p``; its model of the executor's commands uses the
    arms' ``max_accel``, joint limits and ``max_step`` (where not given, the same defaults as the executor's)."""
    accel = max_accel_per_tick(p)
    hold = HoldModel(accel if np.isfinite(accel).any() else None,  # without max_accel the hold repeats the command
                     np.concatenate([a.lower for a in p.arms]), np.concatenate([a.upper for a in p.arms]),
                     np.concatenate([a.max_step for a in p.arms]))
    return InferenceLoopCore(p.horizon, p.s_min, p.delay_buffer_size, p.method, ack_timeout_steps=p.ack_timeout_steps,
                             hold=hold)


def generator_config(p: NodeParams, seed: int | None = None) -> GeneratorConfig:
    """GUIDEDINFERENCE's settings for the inference role's parameters ``p`` (``seed`` overrides ``p.seed``)."""
    from rtc_ros.runtime.generator import GeneratorConfig  # torch: only once it is needed

    return GeneratorConfig(method=p.method, beta=p.beta, n_steps=p.n_steps, bid_samples=p.bid_samples, bid_k=p.bid_k,
                           jacobian=p.jacobian, seed=p.seed if seed is None else int(seed),
                           cuda_graphs=bool(p.cuda_graphs))


def initial_delay(latency_ms: float, extra_latency_ms: float, dt: float) -> int:
    """``d_init`` in steps: the warm inference latency plus the injected delay (neither is in Q yet)."""
    return latency_to_steps((float(latency_ms) + float(extra_latency_ms)) / 1e3, dt)
