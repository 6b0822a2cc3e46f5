"""What the robot executes from an observation's step on, as the inference side knows it (ROS-free): the
guidance target ``prev_remaining`` of :class:`~rtc_ros.runtime.inference_loop.InferenceLoopCore`.

The executed steps come from the executor's reports (the commands it sent), then the executing chunk's remaining
actions **as the executor will command them**, then -- once that chunk runs out -- the executor's **hold**.

* Following the chunk, the executor clips each action to the joint limits and its step to ``max_step``
  (:func:`~rtc_ros.runtime.executor_types.clamp_command`), or with an acceleration limit (``max_accel``) shapes it
  (:class:`~rtc_ros.runtime.shaping.AccelLimiter`). A chunk within those limits passes unchanged; one that is
  faster, or an executor still closing a splice's gap, leaves the commands behind the chunk, and the target is
  where the commands will be: the executor's own clamp and limiter replayed from its last two reported commands
  (:meth:`HoldModel.follow`), exactly as it will run them unless another chunk takes over first. Under
  ``max_accel`` the replay needs the executor's step: with the report before the last missing, the chunk's actions
  are taken as they are (as before 2026-12-06). Not modelled: a start-up chunk's ramp (``startup_ramp_s``, an
  executor parameter) while it runs.
* The hold repeats the last command, or with ``max_accel`` brakes from the last per-tick step to a stop,
  ``u_t = u_{t-1} - sign(u_{t-1}) min(|u_{t-1}|, A)``, each command clipped to the joint limits as the executor
  clips it (``max_step`` never binds: the steps only shrink). The hold's step is the reported one (the last two
  reported commands) once the robot holds, else the last step of the replayed commands.

The model uses the inference node's ``<arm>.max_accel``, ``lower_limits``, ``upper_limits`` and ``max_step``
(:func:`rtc_ros.nodes.cores.inference_loop`; a value neither node was given is the same default in both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtc_ros.runtime.executor_types import clamp_command
from rtc_ros.runtime.shaping import AccelLimiter


@dataclass(frozen=True, eq=False)
class HoldModel:
    """The executor's command shaping as the inference side models it (module docstring). ``accel``: ``(M,)``
    rad/tick^2 (``inf``: the joint stops at once) or None (every joint stops at once: the last command is
    repeated); ``lower`` / ``upper``: ``(M,)`` joint limits or None; ``max_step``: ``(M,)`` rad/tick or None (None
    or ``inf``: not limited)."""

    accel: np.ndarray | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    max_step: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.accel is not None and (np.isnan(self.accel).any() or (np.asarray(self.accel) <= 0).any()):
            raise ValueError(f"accel must be > 0 (inf = off) for every joint, got {np.asarray(self.accel).tolist()}")

    def describe(self) -> str:
        """One line for a start-up log: which of the executor's limits the target follows."""
        parts = [name for name, a in (("max_step", self.max_step), ("joint limits", self.lower)) if a is not None]
        hold = (f"braking at max_accel on {int(np.isfinite(self.accel).sum())} joints" if self.accel is not None
                else "the last command (max_accel off here)")
        return (f"guidance target: the executor's commands (its {' and '.join(parts) or 'clamp: unknown'} replayed), "
                f"then its hold: {hold}")

    def clip(self, x: np.ndarray) -> np.ndarray:
        """``x`` inside the joint limits where they are given and an acceleration limit is (else as it is)."""
        return x if self.accel is None or self.lower is None or self.upper is None else np.clip(x, self.lower, self.upper)

    def follow(self, command: np.ndarray, step: np.ndarray, last_target: np.ndarray,
               targets: np.ndarray) -> np.ndarray:
        """``(L, M)``: the executor's commands toward ``targets`` ``(L, M)`` (the executing chunk's next actions)
        after it commanded ``command`` ``(M,)``, a per-tick ``step`` ``(M,)``, toward ``last_target`` ``(M,)`` (the
        chunk's action there): its clamp, or its acceleration limit, replayed with the executor's own code. Equal to
        ``targets`` when the executor is on the chunk and the chunk is within the limits."""
        x = np.asarray(command, dtype=np.float64)
        m = x.size
        lower = np.full(m, -np.inf) if self.lower is None else np.asarray(self.lower, dtype=np.float64)
        upper = np.full(m, np.inf) if self.upper is None else np.asarray(self.upper, dtype=np.float64)
        max_step = np.full(m, np.inf) if self.max_step is None else np.asarray(self.max_step, dtype=np.float64)
        lim = AccelLimiter(np.full(m, np.inf) if self.accel is None else self.accel)
        lim.resume(step, np.clip(np.asarray(last_target, dtype=np.float64), lower, upper))
        rows = []
        for r in np.asarray(targets, dtype=np.float64):
            plain = clamp_command(r, x, lower, upper, max_step)
            x = lim.step(x, r, plain, lower, upper, max_step) if lim.active else plain
            rows.append(x)
        return np.asarray(rows, dtype=np.float64).reshape(-1, m)

    def held(self, command: np.ndarray, before: np.ndarray | None, max_len: int) -> list[np.ndarray]:
        """The commands after the reported ``command`` (which followed ``before``) of a robot already holding: its
        braking, or ``command`` repeated once it stands (at least one row)."""
        return self.braking(command, before, max_len) or [command]

    def braking(self, last: np.ndarray, before: np.ndarray | None, max_len: int) -> list[np.ndarray]:
        """The commands after ``last`` ``(M,)`` (which followed ``before``) of a hold: ``L <= max_len`` rows until
        every joint stands, none when nothing moves, without an acceleration limit, or ``before`` unknown."""
        if self.accel is None or before is None:
            return []
        return list(braking_tail(last, np.asarray(last) - np.asarray(before), self.accel, max_len, self.lower,
                                 self.upper))


def braking_tail(last: np.ndarray, step: np.ndarray, accel: np.ndarray, max_len: int,
                 lower: np.ndarray | None = None, upper: np.ndarray | None = None) -> np.ndarray:
    """The commands after ``last`` ``(M,)`` of a hold that starts moving at the per-tick ``step`` ``(M,)`` and brakes
    at ``accel`` ``(M,)`` rad/tick^2 (``inf``: stops at once), as :class:`~rtc_ros.runtime.shaping.AccelLimiter`
    commands a hold: ``(L, M)``, ``L <= max_len``, until every joint stands (``(0, M)`` when none moves). With
    ``lower`` / ``upper`` a joint braking into its limit stops there (a command already beyond stays)."""
    a = np.asarray(accel, dtype=np.float64)
    x, u = np.array(last, dtype=np.float64), np.where(np.isfinite(a), np.asarray(step, dtype=np.float64), 0.0)
    rows: list[np.ndarray] = []
    while len(rows) < max_len:
        shaped = x + u - np.sign(u) * np.minimum(np.abs(u), a)
        cmd = shaped if lower is None or upper is None else np.clip(shaped, np.minimum(lower, x), np.maximum(upper, x))
        v = shaped - x
        u = np.clip(cmd - x, np.minimum(v, 0.0), np.maximum(v, 0.0))
        if not u.any():
            break
        x = cmd
        rows.append(x.copy())
    return np.asarray(rows, dtype=np.float64).reshape(-1, x.size)


def remaining_actions(chunk: np.ndarray, origin: int, t_obs: int, t_next: int, commanded: dict[int, np.ndarray],
                      command: np.ndarray | None, hold: HoldModel) -> np.ndarray:
    """``(L, M)``: what the robot executes from step ``t_obs`` on, as far as known.

    Args:
        chunk: ``(H, M)`` the executing chunk; its index 0 is at step ``origin``.
        t_obs: the observation's step (the target's row 0). t_next: the next step to be commanded.
        commanded: the commands the executor reported, by step (missing steps: the neighbouring known one).
        command: the last reported command (step ``t_next - 1``), or None.
        hold: the executor's hold after the chunk runs out (module docstring).
    """
    H = chunk.shape[0]
    rows: list[np.ndarray | None] = []
    for k in range(t_obs, t_next):  # already executed (the observation's age)
        cmd = commanded.get(k)
        if cmd is None and 0 <= k - origin < H:
            cmd = chunk[k - origin]
        rows.append(cmd)
    start = max(t_next - origin, 0)
    before = commanded.get(t_next - 2)
    # the executor on this chunk: its commands toward the rest (module docstring); under max_accel the replay needs
    # the executor's step, so without the report before the last the chunk is taken as it is
    ahead = chunk[start:H]
    replayed = 0 < start < H and command is not None and (before is not None or hold.accel is None)
    if replayed:
        ahead = hold.follow(command, command - before if before is not None else np.zeros_like(command),
                            chunk[start - 1], ahead)
    rows.extend(ahead)
    if start >= H and command is not None and before is not None:  # holding: brake on from the reported commands
        rows.extend(hold.held(command, before, H))
    elif start >= H:  # holding, the last two commands not both reported: the braking the chunk's end implies,
        path = [chunk[-1], *hold.braking(chunk[-1], chunk[-2] if H > 1 else None, start)]  # from step origin + H - 1
        j = start - H + 1  # t_next's index in path; continued from the last reported command where there is one
        offset = 0.0 if command is None else command - path[min(j - 1, len(path) - 1)]
        rows.extend([hold.clip(p + offset) for p in path[j:]] or [path[-1] + offset])  # at rest: where it is
    known = [r for r in rows if r is not None]
    filled, last = [], known[0]
    for r in rows:  # a missed report: hold the neighbouring known command
        last = r if r is not None else last
        filled.append(last)
    if start < H:  # where it will run out, the hold brakes on from the last step commanded
        prior = ahead[-2] if len(ahead) > 1 else command if replayed or H == 1 else chunk[-2]
        filled.extend(hold.braking(ahead[-1], prior, H))
    return np.asarray(filled, dtype=np.float64)
