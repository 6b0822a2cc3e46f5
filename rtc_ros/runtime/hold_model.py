"""What the robot executes from an observation's step on, as the inference side knows it (ROS-free): the
guidance target ``prev_remaining`` of :class:`~rtc_ros.runtime.inference_loop.InferenceLoopCore`.

The executed steps come from the executor's reports (the commands it sent), then the executing chunk's remaining
actions, then -- once that chunk runs out -- the executor's **hold**: the last command repeated, or with an
acceleration limit (``max_accel``) a braking from the last per-tick step to a stop,
``u_t = u_{t-1} - sign(u_{t-1}) min(|u_{t-1}|, A)``, each command clipped to the joint limits as the executor
clips it (:class:`~rtc_ros.runtime.shaping.AccelLimiter`; ``max_step`` never binds: the steps only shrink). The
hold's step is the reported one (the last two reported commands) once the robot holds, else the chunk's own last
step (the executor following the chunk, as it does unless a limit clamps it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class HoldModel:
    """The executor's hold. ``accel``: ``(M,)`` rad/tick^2 (``inf``: the joint stops at once) or None (every joint
    stops at once: the last command is repeated); ``lower`` / ``upper``: ``(M,)`` joint limits or None."""

    accel: np.ndarray | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.accel is not None and (np.isnan(self.accel).any() or (np.asarray(self.accel) <= 0).any()):
            raise ValueError(f"accel must be > 0 (inf = off) for every joint, got {np.asarray(self.accel).tolist()}")

    def clip(self, x: np.ndarray) -> np.ndarray:
        """``x`` inside the joint limits where they are given and an acceleration limit is (else as it is)."""
        return x if self.accel is None or self.lower is None or self.upper is None else np.clip(x, self.lower, self.upper)

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
    rows.extend(chunk[start:H])
    before = commanded.get(t_next - 2)
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
    if start < H:  # where it will run out, the hold brakes on from the chunk's last step
        filled.extend(hold.braking(chunk[-1], chunk[-2] if H > 1 else command, H))
    return np.asarray(filled, dtype=np.float64)
