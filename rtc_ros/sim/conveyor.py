"""Tasks of :class:`~rtc_ros.sim.bimanual.BimanualSim`: ``transfer_cube`` (quasi-static) and ``conveyor_cube``.

``conveyor_cube`` is the cube transfer with the cube on a conveyor: while the cube rests on the table
(centre below 23 mm) and no gripper part touches it, the table drives it along the world y axis at the belt speed
(the cube's planar velocity is set to ``(0, v_belt)`` before every 2 ms physics step, i.e. a belt
with enough friction to carry it). The belt speed is a random process (``ConveyorConfig``): by default
(``process="accel"``) its acceleration is drawn from ``U(-belt_accel, belt_accel)`` m/s^2 every
``U(change_min_s, change_max_s)`` s and its speed capped at ``speed_max``; with ``process="speed"`` a
target speed ``U(speed_min, speed_max)`` with a random sign is drawn instead and the belt ramps to it at
``belt_accel``. Once the cube is more than ``y_soft`` m from y = 0.5 the draw points back to the centre (an
outward one is replaced at once). The right arm must grasp the moving cube; where the cube will be when the
fingers close cannot be known from an observation much older than the last re-draw, so fresh
observations matter. Success and stages are the transfer task's (:func:`conveyor_stage`): the cube must end
up held by the left gripper alone.

Tasks are selected by name (:data:`TASK_NAMES`, :func:`make_task`); each has ``reset(sim, rng)``,
``physics(sim)`` (advances one 20 ms control tick) and ``stage(sim)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from rtc_ros.sim.layout import CONTROL_DT, CUBE_HALF_SIZE, N_SUBSTEPS, TaskStage
from rtc_ros.sim.task import compute_stage, cube_contacts

if TYPE_CHECKING:
    from rtc_ros.sim.bimanual import BimanualSim

TRANSFER_CUBE = "transfer_cube"
CONVEYOR_CUBE = "conveyor_cube"
TASK_NAMES: tuple[str, ...] = (TRANSFER_CUBE, CONVEYOR_CUBE)


class TransferCubeTask:
    """The original quasi-static cube transfer: plain physics, :func:`~rtc_ros.sim.task.compute_stage`."""

    name = TRANSFER_CUBE

    def reset(self, sim: "BimanualSim", rng: np.random.Generator) -> None:
        """Nothing beyond the simulator's cube placement."""

    def physics(self, sim: "BimanualSim") -> None:
        """One control tick: ``N_SUBSTEPS`` physics steps in one call."""
        mujoco.mj_step(sim.model, sim.data, nstep=N_SUBSTEPS)

    def stage(self, sim: "BimanualSim") -> TaskStage:
        """The transfer stage of the current state."""
        return compute_stage(sim)

    def info(self) -> dict[str, Any]:
        """JSON-able task state (for status messages)."""
        return {"task": self.name}


@dataclass(frozen=True)
class ConveyorConfig:
    """Belt parameters of ``conveyor_cube`` (m, s, m/s^2; ``process``: ``accel`` or ``speed``); see the
    module docstring. The defaults were chosen with the scripted expert alone (``docs/sim_arms.md``)."""

    speed_min: float = 0.0
    speed_max: float = 0.15
    change_min_s: float = 0.15
    change_max_s: float = 0.3
    belt_accel: float = 0.8
    y_soft: float = 0.05
    process: str = "accel"

    def __post_init__(self) -> None:
        if self.process not in ("speed", "accel"):
            raise ValueError(f"process must be 'speed' or 'accel', got {self.process!r}")
        for name in ("speed_min", "speed_max", "change_min_s", "change_max_s", "belt_accel", "y_soft"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {v}")
        if self.speed_min > self.speed_max:
            raise ValueError(f"speed_min {self.speed_min} > speed_max {self.speed_max}")
        if self.change_min_s > self.change_max_s or self.change_min_s <= 0:
            raise ValueError(f"change_min_s must be in (0, change_max_s], got {self.change_min_s}")
        if self.belt_accel <= 0:
            raise ValueError(f"belt_accel must be > 0, got {self.belt_accel}")


class ConveyorCubeTask:
    """The cube transfer with the cube on a belt of randomly changing speed (module docstring).

    ``frozen = True`` (planning copies) replaces the random belt by a prediction an observer of the
    cube's recent positions can make: ``prediction = "acceleration"`` keeps the belt's current acceleration
    (capped at the top speed ``speed_max``), ``"velocity"`` its current speed.
    """

    name = CONVEYOR_CUBE

    def __init__(self, config: ConveyorConfig | None = None) -> None:
        self.config = config or ConveyorConfig()
        self.frozen = False
        self.accel_cmd = 0.0
        self.prediction = "acceleration"
        self.accel = 0.0
        self.v_belt = 0.0
        self.v_target = 0.0
        self.next_change = 0
        self.driven = False
        self.changes = 0
        self._rng = np.random.default_rng()

    def reset(self, sim: "BimanualSim", rng: np.random.Generator) -> None:
        """Start the belt at a random speed (seeded from the simulator's stream after the cube placement)."""
        self._rng = np.random.default_rng(int(rng.integers(2**63 - 1)))
        self.frozen = False
        self.changes = 0
        self._draw(sim)
        self.v_belt = self.v_target
        self.accel = 0.0
        self.driven = True

    def _draw(self, sim: "BimanualSim") -> None:
        c = self.config
        y = float(sim.data.xpos[sim._cube_body][1])  # noqa: SLF001
        if c.process == "accel":  # a new acceleration U(-a, a) (inward beyond y_soft): v_target = its sign's end
            acc = self._rng.uniform(-c.belt_accel, c.belt_accel)
            if abs(y - 0.5) > c.y_soft:
                acc = abs(acc) * (-1.0 if y > 0.5 else 1.0)
            self.accel_cmd = float(acc)
            self.v_target = float(np.sign(acc) * c.speed_max)
        else:
            speed = self._rng.uniform(c.speed_min, c.speed_max)
            sign = (-1.0 if y > 0.5 else 1.0) if abs(y - 0.5) > c.y_soft else self._rng.choice((-1.0, 1.0))
            self.v_target = float(sign * speed)
        self.next_change = sim.step_count + max(1, int(round(self._rng.uniform(c.change_min_s, c.change_max_s)
                                                              / CONTROL_DT)))
        self.changes += 1

    def physics(self, sim: "BimanualSim") -> None:
        """Update the belt speed, then ``N_SUBSTEPS`` physics steps driving the cube while it rests on the belt."""
        if not self.frozen:
            y = float(sim.data.xpos[sim._cube_body][1]) - 0.5  # noqa: SLF001
            outward = abs(y) > self.config.y_soft and self.v_target * y > 0
            if sim.step_count >= self.next_change or (outward and self.driven):
                self._draw(sim)
            rate = abs(self.accel_cmd) if self.config.process == "accel" else self.config.belt_accel
            dv = float(np.clip(self.v_target - self.v_belt, -rate * CONTROL_DT, rate * CONTROL_DT))
            self.v_belt += dv
            self.accel = dv / CONTROL_DT
        elif self.prediction == "acceleration":
            top = self.config.speed_max
            self.v_belt = float(np.clip(self.v_belt + self.accel * CONTROL_DT, -top, top))
        touching = cube_contacts(sim)
        grippers = sim._gripper_geoms["left"] | sim._gripper_geoms["right"]  # noqa: SLF001
        # on the belt: resting at table height (the cube-table contact flickers at rest, so height decides)
        on_table = float(sim.data.xpos[sim._cube_body][2]) < CUBE_HALF_SIZE + 0.003  # noqa: SLF001
        self.driven = on_table and not (touching & grippers)
        qv = sim._cube_vadr  # noqa: SLF001 -- the free joint's first dof (vx)
        for _ in range(N_SUBSTEPS):
            if self.driven:
                sim.data.qvel[qv] = 0.0
                sim.data.qvel[qv + 1] = self.v_belt
            mujoco.mj_step(sim.model, sim.data)

    def stage(self, sim: "BimanualSim") -> TaskStage:
        """:func:`conveyor_stage`."""
        return conveyor_stage(sim)

    def info(self) -> dict[str, Any]:
        """JSON-able belt state."""
        return {"task": self.name, "belt_speed": round(self.v_belt, 4), "belt_changes": self.changes,
                "cube_driven": bool(self.driven)}


def conveyor_stage(sim: "BimanualSim") -> TaskStage:
    """Stage of ``conveyor_cube``: the transfer chain evaluated on the moving cube (reach = within 3 cm
    of the cube where it is now, grasp, lift, handover, transferred)."""
    return compute_stage(sim)


def make_task(name: str) -> TransferCubeTask | ConveyorCubeTask:
    """The task object for ``name`` (one of :data:`TASK_NAMES`).

    Raises:
        ValueError: unknown task (the message names ``task``).
    """
    if name == TRANSFER_CUBE:
        return TransferCubeTask()
    if name == CONVEYOR_CUBE:
        return ConveyorCubeTask()
    raise ValueError(f"task must be one of {TASK_NAMES}, got {name!r}")
