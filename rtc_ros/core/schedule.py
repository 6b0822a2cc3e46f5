"""Execution-horizon rules: s = max(d, s_min) on the robot; d <= s <= H - d in simulation."""

from __future__ import annotations


class InfeasibleDelay(ValueError):
    """The inference delay is too long for the chunk horizon (d > H - s)."""


def execution_horizon(d: int, s_min: int, horizon: int) -> int:
    """Algorithm 1's adaptive execution horizon ``s = max(d, s_min)``, checking ``d <= H - s``.

    Raises:
        ValueError: on a negative d, ``s_min < 1`` or ``s_min > H``.
        InfeasibleDelay: if the forecast delay leaves no room for a new chunk (``d > H - s``).
    """
    if d < 0:
        raise ValueError(f"d must be >= 0, got {d}")
    if not 1 <= s_min <= horizon:
        raise ValueError(f"s_min must be in [1, H={horizon}], got {s_min}")
    s = max(d, s_min)
    if d > horizon - s:
        raise InfeasibleDelay(
            f"inference delay d={d} exceeds H - s = {horizon} - {s} = {horizon - s}; "
            "use a longer horizon H, a smaller s_min, or a faster model"
        )
    return s


def check_sim_protocol(d: int, s: int, horizon: int) -> None:
    """Check the simulated-delay protocol's constraint ``d <= s <= H - d``."""
    if d < 0:
        raise ValueError(f"d must be >= 0, got {d}")
    if not d <= s <= horizon - d:
        raise ValueError(f"simulated protocol needs d <= s <= H - d; got d={d}, s={s}, H={horizon}")
