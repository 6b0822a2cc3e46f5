"""Policy spec: a YAML file that names the base policy, so swapping policies = swapping a file.

Format (paths relative to the YAML file)::

    name: toy_two_modes            # free text
    model: mlp_mixer               # key of MODEL_REGISTRY
    config: {horizon: 8, action_dim: 2, obs_dim: 1, width: 64, depth: 2, ...}
    weights: toy.safetensors       # safetensors only -- never pickle
    normalization: {obs_mean: [..O], obs_std: [..O], action_mean: [..M], action_std: [..M]}
    obs_spec: [{name: joint_positions, shape: [14]}]   # layout of the flat observation, in order
    n_steps: 5                     # default denoising steps (optional)
    dt: 0.02                       # controller period the policy was trained for (optional)
    joint_names: [...]             # action dimension names (optional, length M)

A wrong spec fails at load with :class:`PolicySpecError` naming the field.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file

from rtc_ros.policies.base import FlowPolicy, Normalizer
from rtc_ros.policies.mixer import MODEL_REGISTRY

log = logging.getLogger(__name__)


class PolicySpecError(ValueError):
    """An invalid policy spec; the message names the file and the field."""


@dataclass
class LoadedPolicy:
    """A base policy ready for sampling: model (eval mode, on ``device``) + normalisation."""

    model: FlowPolicy
    normalizer: Normalizer
    spec: dict[str, Any]
    path: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def horizon(self) -> int:
        return self.model.horizon

    @property
    def action_dim(self) -> int:
        return self.model.action_dim

    @property
    def obs_dim(self) -> int:
        return self.model.obs_dim

    @property
    def n_steps(self) -> int:
        return int(self.spec.get("n_steps", 5))

    @property
    def joint_names(self) -> list[str] | None:
        return self.spec.get("joint_names")


def resolve_device(device: str) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (cuda if available)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"invalid device {device!r}: {exc}") from exc


def _err(path: Path | str, fld: str, msg: str) -> PolicySpecError:
    return PolicySpecError(f"policy spec {path}: field '{fld}': {msg}")


def _obs_dim_of(obs_spec: list[dict[str, Any]], path: Path) -> int:
    total = 0
    for i, item in enumerate(obs_spec):
        if not isinstance(item, dict) or "name" not in item or "shape" not in item:
            raise _err(path, f"obs_spec[{i}]", "each entry needs 'name' and 'shape'")
        total += int(np.prod(item["shape"]))
    return total


def save_policy(
    directory: str | Path,
    name: str,
    model: FlowPolicy,
    normalizer: Normalizer,
    obs_spec: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    model_type: str = "mlp_mixer",
    weights_file: str | None = None,
) -> Path:
    """Write ``<name>.safetensors`` and ``<name>.yaml`` into ``directory``; return the YAML path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights_file = weights_file or f"{name}.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / weights_file))
    spec: dict[str, Any] = {
        "name": name,
        "model": model_type,
        "config": asdict(model.config),  # type: ignore[arg-type]
        "weights": weights_file,
        "normalization": normalizer.as_dict(),
        "obs_spec": obs_spec or [{"name": "obs", "shape": [model.obs_dim]}],
        "n_steps": 5,
    }
    spec.update(extra or {})
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def load_policy(path: str | Path, device: str = "cpu") -> LoadedPolicy:
    """Load and validate a policy spec; see the module docstring for the format.

    Raises:
        PolicySpecError: missing file, missing/unknown field, bad config, weights that do not match
            the config, normalisation of the wrong size, non-safetensors weights.
    """
    path = Path(path)
    if not path.is_file():
        raise PolicySpecError(f"policy spec file not found: {path}")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PolicySpecError(f"policy spec {path}: not valid YAML: {exc}") from exc
    if not isinstance(spec, dict):
        raise PolicySpecError(f"policy spec {path}: expected a mapping at top level")
    for fld in ("model", "config", "weights", "normalization"):
        if fld not in spec:
            raise _err(path, fld, "missing")
    if spec["model"] not in MODEL_REGISTRY:
        raise _err(path, "model", f"unknown model class {spec['model']!r}; known: {sorted(MODEL_REGISTRY)}")
    model_cls, config_cls = MODEL_REGISTRY[spec["model"]]
    if not isinstance(spec["config"], dict):
        raise _err(path, "config", "must be a mapping")
    try:
        config = config_cls(**spec["config"])
    except (TypeError, ValueError) as exc:
        raise _err(path, "config", str(exc)) from exc
    weights = (path.parent / str(spec["weights"])).resolve()
    if weights.suffix != ".safetensors":
        raise _err(path, "weights", f"only .safetensors weights are accepted (never pickle), got {weights.name}")
    if not weights.is_file():
        raise _err(path, "weights", f"file not found: {weights}")
    norm = spec["normalization"]
    if not isinstance(norm, dict):
        raise _err(path, "normalization", "must be a mapping")
    for key in ("obs_mean", "obs_std", "action_mean", "action_std"):
        if key not in norm:
            raise _err(path, f"normalization.{key}", "missing")
    try:
        normalizer = Normalizer(**{k: norm[k] for k in ("obs_mean", "obs_std", "action_mean", "action_std")})
    except (TypeError, ValueError) as exc:
        raise _err(path, "normalization", str(exc)) from exc
    if normalizer.obs_mean.shape[0] != config.obs_dim:
        raise _err(path, "normalization.obs_mean", f"length {normalizer.obs_mean.shape[0]} != config.obs_dim {config.obs_dim}")
    if normalizer.action_mean.shape[0] != config.action_dim:
        raise _err(
            path, "normalization.action_mean",
            f"length {normalizer.action_mean.shape[0]} != config.action_dim {config.action_dim}",
        )
    if "obs_spec" in spec:
        if not isinstance(spec["obs_spec"], list):
            raise _err(path, "obs_spec", "must be a list of {name, shape}")
        if (n := _obs_dim_of(spec["obs_spec"], path)) != config.obs_dim:
            raise _err(path, "obs_spec", f"sizes add up to {n}, config.obs_dim is {config.obs_dim}")
    names = spec.get("joint_names")
    if names is not None and len(names) != config.action_dim:
        raise _err(path, "joint_names", f"{len(names)} names for action_dim {config.action_dim}")
    model = model_cls(config)
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types
        raise _err(path, "weights", f"cannot read safetensors file {weights}: {exc}") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise _err(path, "weights", f"do not match config: {exc}") from exc
    dev = resolve_device(device)
    model.to(dev).eval()
    for p in model.parameters():
        p.requires_grad_(False)  # guidance differentiates w.r.t. the sample only
    log.info("loaded policy %s (%s, H=%d, M=%d, O=%d) on %s", spec.get("name", path.stem), spec["model"],
             config.horizon, config.action_dim, config.obs_dim, dev)
    return LoadedPolicy(model=model, normalizer=normalizer, spec=spec, path=path, device=dev)
