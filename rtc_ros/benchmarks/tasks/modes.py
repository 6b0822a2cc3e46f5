"""Each expert's *other mode*, for the consistency design rule (:mod:`rtc_ros.benchmarks.tasks.rules`).

Every expert picks a mode per episode (:meth:`Expert.reset`). :func:`switch_mode` makes the selected
envs' experts switch to their other mode from now on. Experts written for the rule define
``switch_mode(mask)`` themselves; the first suite's experts (v1) get it here, so their source files,
and with them the cached policies keyed on those files, stay unchanged:

=================  =================================================================================
expert             other mode
=================  =================================================================================
cartpole_swingup   the other kick direction (only acts while the pole hangs at rest: a switch later
                   changes nothing, so this task cannot pass the rule)
lander             the other pad, i.e. pass the rock on the other side
catcher            the other ball
thrower            the other style (underhand <-> overhand), with that style's release energy
crawler            the other end of the track
=================  =================================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from rtc_ros.benchmarks.tasks.base import Expert, Tensor
from rtc_ros.benchmarks.tasks.thrower import INERTIA, MASS, G, L, landing_x


def _flip_sign(attr: str) -> Callable[[Expert, Tensor], None]:
    def flip(expert: Expert, mask: Tensor) -> None:
        value = getattr(expert, attr)
        setattr(expert, attr, torch.where(mask, -value, value))
    return flip


def _flip_catcher(expert: Expert, mask: Tensor) -> None:
    expert.choice = torch.where(mask, 1 - expert.choice, expert.choice)  # type: ignore[attr-defined]


def _flip_thrower(expert: Expert, mask: Tensor) -> None:
    t = expert.task
    style = torch.where(mask, -expert.style, expert.style)  # type: ignore[attr-defined]
    # the same release-energy computation as ThrowerExpert.reset, for the new style
    q_r = torch.where(style > 0, math.pi / 4, -3 * math.pi / 4)
    lo, hi = torch.full((t.n,), 0.1), torch.full((t.n,), 20.0)
    for _ in range(40):
        mid = (lo + hi) / 2
        too_far = landing_x(q_r, style * mid / L) > t.basket  # type: ignore[attr-defined]
        hi, lo = torch.where(too_far, mid, hi), torch.where(too_far, lo, mid)
    qd_r = expert.SPEED_MARGIN * (lo + hi) / 2 / L  # type: ignore[attr-defined]
    expert.style = style  # type: ignore[attr-defined]
    expert.energy_target = 0.5 * INERTIA * qd_r**2 - MASS * G * L * torch.cos(q_r)  # type: ignore[attr-defined]


#: expert class name -> switch function, for the v1 experts that do not define ``switch_mode``
_V1_SWITCH: dict[str, Callable[[Expert, Tensor], None]] = {
    "CartPoleExpert": _flip_sign("mode"),
    "LanderExpert": _flip_sign("side"),
    "CatcherExpert": _flip_catcher,
    "ThrowerExpert": _flip_thrower,
    "CrawlerExpert": _flip_sign("direction"),
}


def switch_mode(expert: Expert, mask: Tensor) -> None:
    """Switch the experts of the envs where ``mask (n,)`` is true to their other mode.

    Raises:
        ValueError: if ``mask`` is not ``(n,)`` bool, or the expert has no other mode defined.
    """
    if mask.shape != (expert.task.n,) or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a ({expert.task.n},) bool tensor, got {tuple(mask.shape)} {mask.dtype}")
    own = getattr(expert, "switch_mode", None)
    if own is not None:
        own(mask)
        return
    name = type(expert).__name__
    if name not in _V1_SWITCH:
        raise ValueError(f"expert {name} defines no switch_mode(mask) (its other mode)")
    _V1_SWITCH[name](expert, mask)


__all__ = ["switch_mode"]
