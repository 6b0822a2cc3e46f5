"""The plan for one GUIDEDINFERENCE call (:class:`Plan`, made by
:meth:`rtc_ros.runtime.inference_loop.InferenceLoopCore.plan`), the operator's message when its forecast delay was
clamped, and the observations that cannot be planned from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ObservationTooOld(ValueError):
    """The observation cannot be planned from (older than the step history, or its chunk would have
    no action left when it arrives). The message says why."""


class ObservationBeforeReports(ObservationTooOld):
    """The observation was stamped before the first executor report this loop received (at start-up, or
    after the executor restarted): not stale, early; the next observation will do."""


@dataclass(frozen=True)
class Plan:
    """Everything GUIDEDINFERENCE needs for one chunk.

    Attributes:
        seq: sequence number to publish the chunk with.
        t_obs: executor step of the observation (chunk index 0).
        d: frozen leading actions (forecast delay, including the observation's age), ``<= H - s``.
        s: execution horizon for the soft mask (which ends at ``H - s``): the executing chunk's index
            at ``t_obs``; ``max(d, s_min)`` when that chunk has run out (the hold is the target);
            0 (mask end ``H``) for a guided chunk that takes over only after the executing one has run
            out (the robot holds: the target is known up to ``H``); ``s_min`` for sync; 0 for the first.
        prev_remaining: ``(L, M)`` raw actions the robot executes from step ``t_obs`` on (commanded
            history, then the executing chunk, then its hold), or None (first chunk, plain methods).
        d_raw: the forecast before clamping (``> d`` means the delay was infeasible).
        age: steps between the observation and planning (``t_next - t_obs``).
        base_seq: the chunk ``prev_remaining`` came from (the executing one when planned); -1 without a
            prefix. Published as :attr:`rtc_ros.runtime.contract.ChunkMeta.base`; see
            :meth:`InferenceLoopCore.superseded`.
        clamped_by: why ``d < d_raw``: ``"horizon"`` (no more than ``H - s`` actions can be frozen),
            ``"hold"`` (after the executing chunk runs out, at most ``H - s_min`` actions are frozen to the
            hold, so that at least ``s_min`` free ones follow the takeover),
            ``"length"`` (modes without a frozen prefix: ``d`` is bounded by the chunk length ``H``),
            ``"max_d"`` (the sampler's limit: ``rtc_trained``'s trained prefix length), or ``""``.
    """

    seq: int
    t_obs: int
    d: int
    s: int
    prev_remaining: np.ndarray | None
    d_raw: int
    age: int = 0
    clamped_by: str = ""
    base_seq: int = -1


def clamp_warning(plan: Plan, horizon: int, dt: float = 0.0, own_ms: float | None = None) -> str:
    """The operator's message for a plan whose forecast delay was clamped (``plan.clamped_by``); when most of
    the delay is the observation's age, or far more than the policy node's own time from observation to publication
    (``own_ms``, its slowest recent; ``dt`` the control period, s), it says so rather than blaming the model (a
    walkthrough's 1 s gap in the joint states, and a lossy network's retransmissions, were told "use a faster
    model")."""
    text = _clamp_text(plan, horizon)
    if plan.age * 2 > plan.d_raw:
        text += (f"; {plan.age} of the {plan.d_raw} steps are the observation's age (joint states or camera frames "
                 "arriving late, not the model)")
    elif own_ms is not None and dt > 0 and plan.d_raw * dt * 1e3 > 2.0 * own_ms + 2.0 * dt * 1e3:
        text += (f"; this node took at most {own_ms:.0f} ms from an observation to its chunk: most of the "
                 f"{plan.d_raw * dt * 1e3:.0f} ms is on the way to the executor (a network dropping packets: DDS "
                 "retransmits late; docs/ros_interface.md, 'The policy on another machine')")
    return text


def _clamp_text(plan: Plan, horizon: int) -> str:
    if plan.clamped_by == "max_d":
        return (f"forecast delay d={plan.d_raw} exceeds the policy's trained prefix length "
                f"(training.prefix_conditioning = {plan.d}); frozen prefix clamped to {plan.d}, so chunks may "
                f"take over after their prefix (retrain with a larger prefix_conditioning, use a faster model, "
                f"or method 'rtc')")
    if plan.clamped_by == "hold":
        return (f"forecast delay d={plan.d_raw}: the executing chunk runs out first and the robot holds; frozen "
                f"prefix clamped to H - s_min = {plan.d} (use a faster model, a longer H or a smaller s_min)")
    if plan.clamped_by == "length":
        return (f"forecast delay d={plan.d_raw} exceeds the chunk length H = {horizon}: chunks arrive with no "
                f"action left (d clamped to {plan.d}; use a faster model or a longer H)")
    return (f"forecast delay d={plan.d_raw} exceeds H - s = {horizon - plan.s}; frozen prefix clamped to "
            f"{plan.d} (use a longer H, smaller s_min or faster model)")
