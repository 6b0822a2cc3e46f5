"""Joint limits of the ViperX 300 6DOF and the protective stops of :class:`~rtc_ros.sim.bimanual.BimanualSim`.

The real arm's servos (Dynamixel XM540-W270 / XM430-W350) cannot follow a command faster than their
velocity limit or with more torque than they have; a controller that is asked to does not silently
do its best but faults (Dynamixel hardware error, Interbotix driver torque-off and reboot). The
simulator models this as a *protective stop* per arm:

* **velocity**: a commanded joint velocity ``|c_t - c_{t-1}| / dt`` above :data:`VELOCITY_LIMITS`;
* **torque** (the acceleration limit): the torque the commanded acceleration
  ``a = (v_t - v_{t-1}) / dt`` needs, ``tau = M(q)[j, arm] a + bias_j(q, qdot)`` (rigid-body inverse
  dynamics of the simulator's model: inertia, gravity, Coriolis), above the torque its servos can give
  at the commanded speed: the datasheet's speed-torque line from the stall torque :data:`STALL_TORQUE`
  (times the number of servos driving the joint) at rest to zero at the no-load speed
  :data:`NO_LOAD_SPEED` (when the torque drives the motion; braking may use the full stall torque).

On a stop the arm holds its measured position for ``recovery_s`` (commands to that arm are ignored),
the event is counted; afterwards the arm follows commands again, measured from the held position
(a command far from it trips the next stop). Sources and numbers: ``docs/sim_arms.md``.
Tensor shapes: per-arm vectors are (7,) = 6 arm joints + gripper, in :data:`~rtc_ros.sim.layout.JOINT_NAMES`
order per arm; full commands are (14,).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from rtc_ros.sim.layout import ARM_JOINTS, CONTROL_DT, FINGER_CLOSED, FINGER_OPEN, SIDES

if TYPE_CHECKING:
    from rtc_ros.sim.bimanual import BimanualSim

JOINTS_PER_ARM = 7
#: per-arm joint names (7,) in command order
ARM_JOINT_NAMES: tuple[str, ...] = (*ARM_JOINTS, "gripper")

#: rad/s for the 6 arm joints (Interbotix vx300s URDF ``*_limit_vel`` = pi, equal to the XM540-W270's
#: no-load speed 30 rev/min at 12 V); gripper in normalised opening per second (URDF
#: ``finger_limit_vel`` = 1 m/s of the finger slide over the 0.036 m stroke).
VELOCITY_LIMITS: np.ndarray = np.array([math.pi] * 6 + [1.0 / (FINGER_OPEN - FINGER_CLOSED)])
#: N m stall torque at 12 V per joint: XM540-W270 10.6 N m (shoulder and elbow have two), XM430-W350
#: 4.1 N m (wrist_rotate); the gripper has no torque check (NaN).
STALL_TORQUE: np.ndarray = np.array([10.6, 2 * 10.6, 2 * 10.6, 10.6, 10.6, 4.1, np.nan])
#: rad/s no-load speed at 12 V: XM540-W270 30 rev/min, XM430-W350 46 rev/min (gripper: unused)
NO_LOAD_SPEED: np.ndarray = np.array([30.0] * 5 + [46.0, 46.0]) * 2 * math.pi / 60
#: default hold after a stop (s): see docs/sim_arms.md
DEFAULT_RECOVERY_S = 1.0
REASONS = ("velocity", "torque")


@dataclass(frozen=True)
class ProtectiveStopConfig:
    """Limits and recovery of the protective stops.

    Attributes:
        enabled: False = the arms follow any command (the behaviour before protective stops existed).
        recovery_s: seconds an arm holds its position after a stop (commands ignored), >= 0.
        velocity_limits: (7,) per-arm joint velocity limits (rad/s; gripper: opening/s), > 0.
        torque_limits: (7,) per-arm joint torque limits (N m, NaN = unchecked), > 0.
    """

    enabled: bool = True
    recovery_s: float = DEFAULT_RECOVERY_S
    velocity_limits: tuple[float, ...] = tuple(float(x) for x in VELOCITY_LIMITS)
    torque_limits: tuple[float, ...] = tuple(float(x) for x in STALL_TORQUE)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.recovery_s) and self.recovery_s >= 0):
            raise ValueError(f"recovery_s must be finite and >= 0, got {self.recovery_s}")
        for name in ("velocity_limits", "torque_limits"):
            v = np.asarray(getattr(self, name), dtype=np.float64)
            if v.shape != (JOINTS_PER_ARM,) or np.any(v[np.isfinite(v)] <= 0) or np.any(np.isinf(v)):
                raise ValueError(f"{name} must be {JOINTS_PER_ARM} positive values (NaN = unchecked), got {v}")
        if any(math.isnan(x) for x in self.velocity_limits):
            raise ValueError("velocity_limits must not contain NaN")

    @classmethod
    def of(cls, value: "bool | ProtectiveStopConfig") -> "ProtectiveStopConfig":
        """``value`` itself, or on/off with the default limits; TypeError for anything else (the string
        ``"false"`` is truthy: it would turn the stops on)."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"protective_stops must be a bool or a ProtectiveStopConfig, got {value!r}")
        return cls(enabled=bool(value))


@dataclass(frozen=True)
class ProtectiveStopEvent:
    """One protective stop.

    Attributes:
        step: control tick (since reset) of the command that tripped it.
        time: simulated time (s) at that tick.
        arm: ``left`` or ``right``.
        joint: per-arm joint name (``waist`` ... ``gripper``), the first joint over its limit.
        reason: ``velocity`` or ``torque``.
        value: the commanded velocity (rad/s) or the required torque (N m), signed.
        limit: the limit it exceeded.
    """

    step: int
    time: float
    arm: str
    joint: str
    reason: str
    value: float
    limit: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (values rounded)."""
        d = asdict(self)
        d["time"] = round(self.time, 3)
        d["value"] = round(self.value, 3)
        d["limit"] = round(self.limit, 3)
        return d


@dataclass
class _ArmState:
    prev_cmd: np.ndarray  # (7,) last command the arm followed (or the held position)
    prev_vel: np.ndarray  # (7,) commanded velocity of that command
    hold: np.ndarray | None = None  # (7,) held position during a stop
    hold_until: int = -1  # first tick at which commands are followed again


@dataclass
class ProtectiveStopMonitor:
    """Per-arm protective-stop state machine of one simulator (see module docstring).

    Args:
        config: the limits.
    """

    config: ProtectiveStopConfig = field(default_factory=ProtectiveStopConfig)
    events: list[ProtectiveStopEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._v = np.asarray(self.config.velocity_limits, dtype=np.float64)
        self._tau = np.asarray(self.config.torque_limits, dtype=np.float64)
        self._hold_ticks = int(round(self.config.recovery_s / CONTROL_DT))
        self._arms: list[_ArmState] = []
        self._full_m: np.ndarray | None = None
        self.peak: dict[str, float] = {r: 0.0 for r in REASONS}

    def reset(self, q: np.ndarray) -> None:
        """Forget all stops; the arms start at rest at measured positions ``q`` (14,)."""
        q = np.asarray(q, dtype=np.float64)
        self.events = []
        self.peak = {r: 0.0 for r in REASONS}
        self._arms = [_ArmState(q[i * 7:(i + 1) * 7].copy(), np.zeros(JOINTS_PER_ARM)) for i in range(len(SIDES))]

    def active(self, step: int) -> dict[str, bool]:
        """Per arm: True while it holds after a stop (``step``: the tick about to be taken)."""
        return {side: a.hold is not None and step < a.hold_until for side, a in zip(SIDES, self._arms)}

    def held_joints(self, step: int) -> dict[int, float]:
        """The joints held by a stop at ``step`` (the tick about to be taken): ``{index in the (14,) command:
        held position}``, every joint of each stopped arm; empty when none is stopped."""
        out: dict[int, float] = {}
        for i, a in enumerate(self._arms):
            if a.hold is not None and step < a.hold_until:
                out.update({i * JOINTS_PER_ARM + j: float(q) for j, q in enumerate(a.hold)})
        return out

    def counts(self) -> dict[str, int]:
        """Number of stops per arm since the last reset."""
        return {side: sum(e.arm == side for e in self.events) for side in SIDES}

    def filter(self, sim: "BimanualSim", cmd: np.ndarray) -> np.ndarray:
        """The (14,) targets to apply at the tick ``sim.step_count`` for the clipped command ``cmd`` (14,).

        Trips, holds and releases stops; returns ``cmd`` unchanged while no arm is stopped.
        """
        out = np.array(cmd, dtype=np.float64)
        if not self.config.enabled:
            return out
        step = sim.step_count
        q = sim.joint_positions()
        inertia_fresh = False
        for i, (side, arm) in enumerate(zip(SIDES, self._arms)):
            sl = slice(i * 7, (i + 1) * 7)
            if arm.hold is not None:
                if step < arm.hold_until:
                    out[sl] = arm.hold
                    continue
                arm.prev_cmd, arm.prev_vel, arm.hold = arm.hold.copy(), np.zeros(JOINTS_PER_ARM), None
            c = out[sl]
            vel = (c - arm.prev_cmd) / CONTROL_DT
            event = self._velocity_event(step, sim.time, side, vel)
            if event is None:
                if not inertia_fresh:
                    self._refresh_inertia(sim)
                    inertia_fresh = True
                acc = (vel - arm.prev_vel) / CONTROL_DT
                tau = self._arm_torque(sim, i, acc)
                event = self._torque_event(step, sim.time, side, tau, vel)
            if event is not None:
                self.events.append(event)
                arm.hold = q[sl].copy()
                arm.hold_until = step + max(self._hold_ticks, 1)
                out[sl] = arm.hold
                continue
            arm.prev_cmd, arm.prev_vel = c.copy(), vel
        return out

    # ------------------------------------------------------------------ checks
    def _velocity_event(self, step: int, t: float, side: str, vel: np.ndarray) -> ProtectiveStopEvent | None:
        ratio = np.abs(vel) / self._v
        self.peak["velocity"] = max(self.peak["velocity"], float(ratio.max()))
        over = np.flatnonzero(ratio > 1.0)
        if not len(over):
            return None
        j = int(over[np.argmax(np.abs(vel[over]) / self._v[over])])
        return ProtectiveStopEvent(step, t, side, ARM_JOINT_NAMES[j], "velocity", float(vel[j]), float(self._v[j]))

    def _torque_event(self, step: int, t: float, side: str, tau: np.ndarray,
                      vel: np.ndarray) -> ProtectiveStopEvent | None:
        stall = self._tau[:6]
        checked = np.isfinite(stall)
        motoring = tau * vel[:6] > 0
        speed_share = np.clip(np.abs(vel[:6]) / NO_LOAD_SPEED[:6], 0.0, 1.0)
        lim = np.where(motoring, stall * (1.0 - speed_share), stall)
        ratio = np.where(checked, np.abs(tau) / np.maximum(np.where(checked, lim, 1.0), 1e-9), 0.0)
        self.peak["torque"] = max(self.peak["torque"], float(ratio.max()))
        over = np.flatnonzero(ratio > 1.0)
        if not len(over):
            return None
        j = int(over[np.argmax(ratio[over])])
        return ProtectiveStopEvent(step, t, side, ARM_JOINT_NAMES[j], "torque", float(tau[j]), float(lim[j]))

    def _refresh_inertia(self, sim: "BimanualSim") -> None:
        """Refresh the (nv, nv) joint-space inertia of the current state (once per tick)."""
        m = sim.model
        if self._full_m is None:
            self._full_m = np.zeros((m.nv, m.nv))
        mujoco.mj_fullM(m, self._full_m, sim.data.qM)

    def _arm_torque(self, sim: "BimanualSim", arm: int, acc: np.ndarray) -> np.ndarray:
        """(6,) torques the 6 joints of ``arm`` need for commanded accelerations ``acc`` (7,)."""
        vadr = sim._arm_vadr[arm * 6:(arm + 1) * 6]  # noqa: SLF001 -- the simulator's model indices
        assert self._full_m is not None
        return self._full_m[np.ix_(vadr, vadr)] @ acc[:6] + sim.data.qfrc_bias[vadr]


def equivalent_acceleration_limits(sim: "BimanualSim") -> np.ndarray:
    """(6,) acceleration (rad/s^2) each arm joint of the left arm may be commanded alone at the
    simulator's current state: (stall torque - |bias torque|) / M_jj (for the docs' table)."""
    m = sim.model
    full = np.zeros((m.nv, m.nv))
    mujoco.mj_forward(m, sim.data)
    mujoco.mj_fullM(m, full, sim.data.qM)
    vadr = sim._arm_vadr[:6]  # noqa: SLF001
    diag = np.diag(full)[vadr]
    return (STALL_TORQUE[:6] - np.abs(sim.data.qfrc_bias[vadr])) / diag


def executor_stop_notes(executor: dict, arms: list[str], control_dt: float) -> list[str]:
    """What in chunk_executor's parameters ``executor`` (flattened, as a params file gives them: ``rate_hz``,
    ``<arm>.max_step``, ``robot_stopped_topic``) makes the simulated arms' protective stops trip or loop: a
    ``max_step`` per tick faster than :data:`VELOCITY_LIMITS` (the seven joints, the gripper in openings/s; a command
    at the step limit trips a stop), no ``robot_stopped_topic`` (the executor commands on through a stop).
    ``executor`` empty (the params files give chunk_executor nothing): no note. An upgrade walkthrough's old
    ``sim_bimanual.yaml`` (max_step 0.1 rad at 50 Hz, no stop report) failed its episode with 13 stops and no word.
    An executor slower than the simulator's ``1 / control_dt`` still has its whole ``max_step`` taken in one tick (the
    simulator holds a command until the next: an audit, 25 Hz with 0.1 rad tripped a stop unnamed)."""
    notes = []
    rate = float(executor.get("rate_hz") or 1.0 / control_dt)
    per_s = max(rate, 1.0 / control_dt)
    for arm in arms:
        steps = executor.get(f"{arm}.max_step")
        if not steps:
            continue
        steps = list(steps) if isinstance(steps, (list, tuple)) else [steps] * len(VELOCITY_LIMITS)
        fast = [(i, float(x) * per_s) for i, x in enumerate(steps[:len(VELOCITY_LIMITS)])
                if float(x) * per_s > VELOCITY_LIMITS[i] + 1e-9]
        if fast:
            i, v = max(fast, key=lambda t: t[1])
            unit = "openings/s" if i == len(VELOCITY_LIMITS) - 1 else "rad/s"
            how = (f"max_step x rate_hz {rate:g}" if rate >= per_s else
                   f"max_step in one {control_dt * 1e3:g} ms simulator tick: rate_hz {rate:g} is slower than the "
                   f"simulator's {per_s:g} Hz, which holds a command until the next")
            notes.append(f"chunk_executor's {arm}.max_step lets joint {i} move {v:.2f} {unit} ({how}), above the "
                         f"simulated ViperX's {VELOCITY_LIMITS[i]:.2f} {unit}: a command at the step limit trips a "
                         "protective stop (config/sim_bimanual.yaml: 0.062 rad per tick at 50 Hz)")
    if executor and not executor.get("robot_stopped_topic"):
        notes.append("chunk_executor has no robot_stopped_topic: it commands on through a protective stop, which "
                     "starts another (config/sim_bimanual.yaml: robot_stopped)")
    return notes
