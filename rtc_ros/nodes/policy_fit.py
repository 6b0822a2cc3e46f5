"""Does a loaded policy fit the robot's parameters? One check for ``policy_inference`` and the
simulated-time experiment (ROS-free: no rclpy here).

The policy spec says what the policy was trained on; the params file says what the robot is. They
must agree on the chunk length ``H``, the joints (count, and names and order where the spec lists
``joint_names``), the controller period (the spec's optional ``dt`` against ``rate_hz``: a chunk holds
one action per ``dt``, so a 10 Hz policy run at 50 Hz would move five times too fast) and the
observation (every ``obs_spec`` entry must be something the robot provides: joint positions or a
camera, one topic per camera). A mismatch raises :class:`~rtc_ros.nodes.params.ParameterError` naming
the parameter. Differences that are allowed but worth a line in the log (the node's ``n_steps``
against the spec's, a spec's ``robot_units`` map, ``device: auto`` on the CPU with a CUDA build of torch) come back
as ``notes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rtc_ros.nodes.params import ParameterError

if TYPE_CHECKING:
    from rtc_ros.nodes.params import NodeParams
    from rtc_ros.policies.loaded import LoadedPolicy
    from rtc_ros.policies.observation import ObservationBuilder


@dataclass(frozen=True)
class PolicyFit:
    """What the robot must provide for the policy: the observation layout, its joint entry, the cameras
    (in ``camera_topics`` order), and notes for the log."""

    builder: ObservationBuilder
    joint_entry: str | None
    cameras: list[str]
    notes: list[str] = field(default_factory=list)


def _joint_names_error(theirs: list[str], p: NodeParams, spec: str) -> ParameterError:
    """The parameter to fix when the spec's joint_names differ from the configured ones: ``arms`` when the arms'
    blocks are only in another order, else the ``<arm>.joint_names`` holding the first difference."""
    ours = list(p.joint_names)
    blocks, start = [], 0
    for arm in p.arms:
        blocks.append((arm.name, ours[start:start + len(arm.joint_names)]))
        start += len(arm.joint_names)
    order, rest = [], list(theirs)
    for _ in blocks:  # the policy's joints as whole arms, in its order?
        hit = next((name for name, joints in blocks if joints and rest[:len(joints)] == joints and name not in order),
                   None)
        if hit is None:
            break
        order.append(hit)
        rest = rest[len(dict(blocks)[hit]):]
    if len(order) == len(blocks) and not rest:
        return ParameterError("arms", [a.name for a in p.arms], f"the policy {spec} has the same joints with the arms "
                              f"in the order {order}: set arms to {order} -- if the spec's joint_names are the order "
                              "the policy was trained in (a LeRobot dataset's meta/info.json features.action.names; a "
                              "walkthrough's hand-written spec had them swapped, and following this mirrored the arms)")
    i = next(k for k, (a, b) in enumerate(zip(ours, theirs)) if a != b)
    arm, j = next((name, i - sum(len(js) for _n, js in blocks[:b])) for b, (name, js) in enumerate(blocks)
                  if i < sum(len(x) for _n, x in blocks[:b + 1]))
    return ParameterError(f"{arm}.joint_names", dict(blocks)[arm],
                          f"joint {j} of arm {arm} (action {i}) is {ours[i]!r}, the policy {spec} has {theirs[i]!r} "
                          f"there; its joint_names are {theirs} (the same joints in the same order; if they are "
                          "your joints under other names, in this order and units, give a copy of the spec your "
                          "names: docs/policies.md, 'Another robot's joint names')")


#: how far the spec's dt may be from 1 / rate_hz (relative): a rounded dt (0.033 for 30 Hz, 1 %) fits; another
#: rate does not (the check exists for 10 Hz policies run at 50 Hz: five times too fast)
RATE_TOLERANCE = 0.02


def fit_policy(policy: LoadedPolicy, p: NodeParams, cameras_required: bool = True) -> PolicyFit:
    """Check ``policy`` against the inference role's parameters ``p``.

    ``cameras_required``: also check ``camera_topics`` (one topic per camera; the simulated-time
    experiment renders its camera itself and passes False).

    Raises:
        ParameterError: naming the parameter that does not fit (``horizon``, ``arms``,
            ``<arm>.joint_names``, ``rate_hz``, ``policy_spec`` for its ``obs_spec``, ``camera_topics``).
    """
    spec = str(policy.path) if policy.path is not None else "the policy"
    names = p.joint_names
    if policy.horizon != p.horizon:
        source = getattr(policy, "horizon_source", None)
        raise ParameterError("horizon", p.horizon, f"the policy {spec} has H = {policy.horizon}"
                             + (f" ({source})" if source else "") + f": set horizon: {policy.horizon} for both nodes")
    if policy.action_dim != len(names):
        raise ParameterError("arms", [a.name for a in p.arms],
                             f"{len(names)} joints configured, the policy {spec} has {policy.action_dim} actions")
    if policy.joint_names and list(policy.joint_names) != list(names):
        raise _joint_names_error(list(policy.joint_names), p, spec)
    dt = policy.spec.get("dt")
    if dt is not None and not math.isclose(float(dt), p.dt, rel_tol=RATE_TOLERANCE):
        near = math.isclose(float(dt), p.dt, rel_tol=0.1)  # (a rounded dt, 0.033 for 30 Hz: not another rate)
        raise ParameterError("rate_hz", p.rate_hz, f"the policy {spec} was trained for dt = {float(dt):g} s "
                             f"({1.0 / float(dt):g} Hz): one action per {float(dt):g} s; set rate_hz: "
                             f"{1.0 / float(dt):g}" + (
                                 f" (if {p.rate_hz:g} Hz is that rate and the spec's dt is rounded: give the spec dt: "
                                 f"{1.0 / p.rate_hz:.6g})" if near else
                                 " (the executor commands one action per tick: it does not interpolate between them; "
                                 "a controller needing a faster stream: output_type joint_trajectory, which "
                                 "interpolates over one period)" if float(dt) > p.dt else ""))
    try:
        builder = policy.observation_builder
        joint_entry = policy.joint_entry
    except ValueError as exc:
        raise ParameterError("policy_spec", p.policy_spec, f"obs_spec: {exc}") from exc
    if builder.joint_history > 1 and dt is None:  # its rows are dt apart: the dataset's, not whatever rate_hz is
        raise ParameterError("policy_spec", p.policy_spec, f"obs_spec entry '{joint_entry}' is a joint history of "
                             f"{builder.joint_history} control steps: give the spec the dt it was recorded at")
    if joint_entry is not None and builder.num_joints != len(names):
        raise ParameterError("policy_spec", p.policy_spec, f"obs_spec entry '{joint_entry}' has "
                             f"{builder.num_joints} joints, {len(names)} are configured")
    cams = list(p.camera_names) or builder.camera_names
    if sorted(cams) != sorted(builder.camera_names) or (cameras_required and len(p.camera_topics) != len(cams)):
        if not builder.camera_names:
            raise ParameterError("camera_topics", list(p.camera_topics), f"the policy {spec} uses no camera: set "
                                 "camera_topics and camera_names to [] (a joint-only observation)")
        if sorted(cams) != sorted(builder.camera_names):  # the names are what is wrong, not the topics
            raise ParameterError("camera_names", list(p.camera_names), f"the policy {spec} names its cameras "
                                 f"{builder.camera_names} (obs_spec); give camera_names those names, in the order of "
                                 "camera_topics")
        raise ParameterError("camera_topics", list(p.camera_topics),
                             f"the policy needs cameras {builder.camera_names}; give one topic each (camera_names {cams})")
    notes = []
    if not p.camera_names and len(cams) > 1:  # (by order: an audit's two topics in the other order crossed them)
        crossed = [(c, t) for c, t in zip(cams, p.camera_topics)
                   if c not in t and any(c in u for u in p.camera_topics)]
        if crossed:
            raise ParameterError("camera_names", [], f"empty, so camera_topics {list(p.camera_topics)} are taken in "
                                 f"the order of the policy's cameras {cams} (obs_spec), and '{crossed[0][0]}' would "
                                 f"read {crossed[0][1]}; give camera_names in the order of camera_topics")
        notes.append(f"camera_names is empty: the policy's cameras {cams} read camera_topics "
                     f"{list(p.camera_topics)} in that order (give camera_names to say which is which)")
    if not policy.joint_names:  # optional in the spec, so only a warning; a reordered policy would run
        notes.append(f"the policy {spec} lists no joint_names: the order of the joints is not checked against "
                     f"{[a.name + '.joint_names' for a in p.arms]} (add joint_names to the spec)")
    if dt is None:
        notes.append(f"the policy {spec} gives no dt: the control rate it was trained for is not checked against "
                     f"rate_hz = {p.rate_hz:g} (add dt to the spec)")
    own = policy.spec["n_steps"] if "n_steps" in policy.spec else getattr(policy, "n_steps", None)
    if own is not None and int(own) != int(p.n_steps):  # (an adapter's default: e.g. a checkpoint's config)
        said = "the policy spec says" if "n_steps" in policy.spec else "the policy's own default is"
        notes.append(f"n_steps: sampling with {p.n_steps} denoising steps (parameter n_steps); {said} {own} "
                     "(what `check` uses)")
    if (units := getattr(policy, "units", None)) is not None and units.converted:  # spec robot_units
        notes.append(f"robot_units: the policy's joint values are converted to and from the robot's (limits, "
                     f"joint_states, chunks: robot units): {units.describe()}")
    if p.device == "auto" and getattr(getattr(policy, "device", None), "type", None) == "cpu" and _cuda_built():
        notes.append("device auto: this torch is built for CUDA but sees no usable GPU (torch.cuda.is_available() is "
                     "False: the driver, CUDA_VISIBLE_DEVICES?), so the policy runs on the CPU, many times slower; set "
                     "device: cpu if that is what you want, or cuda to refuse to start without a GPU")
    return PolicyFit(builder, joint_entry, cams, notes)


def _cuda_built() -> bool:
    """Whether the installed torch is a CUDA build (imported here: the policy is loaded, so torch is)."""
    import torch

    return torch.version.cuda is not None
