"""The policy side's start-up, ROS-free: load the spec, check it against the parameters, build the chunk
generator and sample it once plainly and once guided. One function for ``policy_inference`` and
``rtc_bringup --check``, so that the check answers "will it start?" with the node's own errors.

Every failure raises :class:`~rtc_ros.nodes.params.ParameterError` naming the parameter: ``policy_spec``
(the spec does not load, or the policy fails its first samples: an ``encode`` that needs another
observation, wrong shapes, a velocity without autograd or with a gradient unmistakably not its true one -- for
a method with exact guidance, :func:`~rtc_ros.runtime.velocity_checks.gradient_check`; a smaller disagreement is
a note --, NaN), the parameters :func:`fit_policy` names
(``horizon``, ``arms``, ``<arm>.joint_names``, ``rate_hz``, ``camera_topics``), ``weak_policy_spec``,
or ``method`` (``rtc_trained`` on a policy not trained with prefix conditioning).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rtc_ros.nodes.cores import generator_config
from rtc_ros.nodes.params import ParameterError
from rtc_ros.nodes.params.paths import expand_path
from rtc_ros.nodes.policy_fit import PolicyFit, fit_policy
from rtc_ros.runtime.velocity_checks import gradient_check, sample_spread, spread_text

if TYPE_CHECKING:
    from rtc_ros.nodes.params import NodeParams
    from rtc_ros.policies.loaded import LoadedPolicy
    from rtc_ros.runtime.generator import ChunkGenerator


@dataclass(frozen=True)
class PreparedPolicy:
    """A loaded policy that fits the parameters, its generator, and what :func:`fit_policy` found."""

    policy: LoadedPolicy
    fit: PolicyFit
    generator: ChunkGenerator
    notes: tuple[str, ...] = ()  # warnings for the start-up log: the fit's, and a sample spread above 1


def warmup_sample(generator: ChunkGenerator, p: NodeParams, obs: Mapping[str, np.ndarray] | np.ndarray,
                  prev: np.ndarray | None) -> np.ndarray:
    """One chunk at ``obs`` (guided toward ``prev`` where the method uses a prefix, with a small ``d`` within
    an ``rtc_trained`` policy's trained prefixes); returns what the robot would execute next: the guidance
    target of the following one."""
    s = min(p.s_min, p.horizon)
    for d in warmup_delays(generator, p.horizon):
        chunk = generator.generate(obs, prev, d=d, s=s)
    return chunk[min(p.s_min, p.horizon - 1):]


def warmup_delays(generator: ChunkGenerator, horizon: int) -> list[int]:
    """The delays ``d`` one warm-up pass samples with: a small one; with CUDA graphs of an ``rtc_trained`` policy,
    whose prefix-conditioned loop is captured per ``d``, every ``d`` it was trained for (capturing one live, the first
    time a delay occurs, would cost a latency spike: a stale chunk, a larger ``d``, another capture)."""
    d = min(2, horizon - 1, generator.max_prefix or 2)
    if generator.graphs is not None and generator.max_prefix is not None:
        return list(range(1, min(generator.max_prefix, horizon - 1) + 1))
    return [d]


def prepare_policy(p: NodeParams) -> PreparedPolicy:
    """Load ``p.policy_spec`` on ``p.device``, fit it to ``p``, build its generator and sample it once plainly
    and once guided at its typical observation. Raises ParameterError (module doc)."""
    from rtc_ros.policies.spec import load_policy
    from rtc_ros.policies.units import same_units
    from rtc_ros.runtime.generator import ChunkGenerator

    def load(name: str, path: str) -> LoadedPolicy:
        try:
            return load_policy(expand_path(path), device=p.device)
        except ValueError as exc:
            raise ParameterError(name, path, str(exc)) from exc

    policy = load("policy_spec", p.policy_spec)
    fit = fit_policy(policy, p)  # horizon, joints, rate, obs_spec and cameras against the params
    weak = load("weak_policy_spec", p.weak_policy_spec) if p.weak_policy_spec else None
    if weak is not None and not same_units(policy, weak):  # its velocity runs in the policy's normalised space
        raise ParameterError("weak_policy_spec", p.weak_policy_spec, "BID's weak policy must see the robot in the "
                             "same units as policy_spec: give both specs the same robot_units map")
    try:  # rtc_trained refuses a policy not trained with prefix conditioning
        generator = ChunkGenerator(policy, generator_config(p), weak)
    except ValueError as exc:
        raise ParameterError("method", p.method, str(exc)) from exc
    try:
        obs = policy.typical_observation()
        warmup_sample(generator, p, obs, warmup_sample(generator, p, obs, None))
        exact = generator.info.sampling == "guided" and generator.config.jacobian == "exact"
        gradient = gradient_check(generator, obs) if exact else None
        spread = sample_spread(generator, obs, draws=4)  # (a start-up cost: 4 plain chunks)
    except Exception as exc:  # noqa: BLE001 -- encode, shapes, autograd, NaN: whatever the policy raises
        raise ParameterError("policy_spec", p.policy_spec, f"the policy fails its first samples (plain, then "
                             f"guided) at its typical observation: {type(exc).__name__}: {exc}") from exc
    if gradient is not None and gradient.refused:  # guidance would silently do too little: refused
        raise ParameterError("policy_spec", p.policy_spec, gradient.text())
    notes = (*fit.notes, *([spread_text(spread)] if spread_text(spread) else []),
             *([f"{gradient.text()} (or rounding: a reduced-precision model can come close to the limit; "
                "python -m rtc_ros.runtime.check says more)"] if gradient is not None and not gradient.ok else []))
    return PreparedPolicy(policy, fit, generator, notes)
