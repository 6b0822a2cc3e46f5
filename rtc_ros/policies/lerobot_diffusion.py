"""LeRobot's Diffusion Policy behind rtc_ros's runtime boundary (optional: needs ``lerobot``).

A spec selects it and names a LeRobot ``pretrained_model`` directory (``config.json`` of type
``diffusion``, ``model.safetensors``, ``policy_preprocessor*.json`` / ``policy_postprocessor*`` with the
dataset statistics)::

    name: my_diffusion_policy
    model: lerobot_diffusion
    pretrained_path: /path/to/pretrained_model     # relative to the YAML file, or absolute
    n_steps: 10                                     # optional: the check's steps (default: num_inference_steps, else 10)
    dt: 0.02                                        # the dataset's 1 / fps (required with n_obs_steps > 1)
    joint_names: [...]                              # optional, length = the action feature's size

**Sampling.** RTC guides a flow; the diffusion network (``DiffusionConditionalUnet1d``, epsilon or
sample prediction) is converted at inference time by :class:`rtc_ros.policies.diffusion.DiffusionFlowPolicy`
(no retraining): an Euler step of ``1 / n`` is exactly a DDIM (eta = 0) step between the diffusion levels
whose flow time is ``i / n``, queried at continuous timesteps (the U-Net embeds ``t`` sinusoidally); pure
noise is queried at DDIM's first timestep ``T - T / n_steps``; ``clip_sample`` clamps the data estimate
as LeRobot's scheduler does. ``policy_inference`` samples with its own ``n_steps`` parameter (it notes at
start when that differs from the spec's, or from the checkpoint's ``num_inference_steps``). ``encode`` runs LeRobot's preprocessor (normalisation)
and the observation encoder (ResNet features, state) once per chunk; ``velocity`` calls the U-Net with
autograd on, so RTC's vector-Jacobian product is exact.

**Time.** LeRobot's Diffusion Policy sees ``n_obs_steps`` observations, one control period apart, and
predicts ``horizon`` actions from its *oldest* observation's step on (its ``select_action`` executes them
from index ``n_obs_steps - 1``). rtc_ros's chunk index 0 is the observation's (newest) step, so the chunk
is ``H = horizon - (n_obs_steps - 1)`` actions and :attr:`chunk_offset` = ``n_obs_steps - 1`` leading
positions are sampled unguided and dropped (:mod:`rtc_ros.runtime.generator`).

**Observations** (:attr:`obs_spec`): ``state`` is the joint history ``[n_obs_steps, S]`` newest first
(``[S]`` for one step; ``policy_inference`` keeps it ``dt`` apart, :mod:`rtc_ros.runtime.joint_history`),
each camera ``observation.images.<camera>`` a frame stack ``[n_obs_steps, H, W, 3]`` (``[3, H, W]`` for one
step), its frames ``dt`` apart by stamp too (``policy_inference`` with a joint history: a camera faster than
the dataset's fps is fine, a slower one repeats frames). An ``observation.environment_state`` input is
refused (a robot has no such topic).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from rtc_ros.policies.diffusion import DiffusionFlowPolicy
from rtc_ros.policies.lerobot_adapter import IMAGE_PREFIX, STATE_KEY, LeRobotPolicy

#: the spec fields this adapter reads besides the common ones (rtc_ros.policies.spec.SPEC_FIELDS)
SPEC_FIELDS = ("pretrained_path",)
DEFAULT_STEPS = 10  # DDIM steps when the config leaves num_inference_steps unset (LeRobot then runs 100 DDPM)


class _UNet(nn.Module):
    """LeRobot's U-Net as ``net(x_t (B, T, M), global_cond (B, C), t (B,) float)``."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x_t: torch.Tensor, context: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.unet(x_t, t.to(x_t.dtype), global_cond=context)


@dataclass
class LeRobotDiffusionPolicy(LeRobotPolicy):
    """A loaded LeRobot Diffusion Policy: the interface of :class:`rtc_ros.policies.loaded.LoadedPolicy`
    (plus ``chunk_offset``)."""

    # ------------------------------------------------------------------------------ sizes
    @property
    def n_obs_steps(self) -> int:
        return int(self.config.n_obs_steps)

    @property
    def chunk_offset(self) -> int:
        """Positions sampled before the observation's step (``n_obs_steps - 1``), dropped from the chunk."""
        return self.n_obs_steps - 1

    @property
    def horizon(self) -> int:
        """H: the actions from the observation's step on (``horizon - (n_obs_steps - 1)``)."""
        return int(self.config.horizon) - self.chunk_offset

    @property
    def horizon_source(self) -> str:
        """Where H is set, for errors."""
        return (f"horizon {int(self.config.horizon)} - (n_obs_steps {self.n_obs_steps} - 1) in pretrained_path's "
                "config.json")

    @property
    def n_steps(self) -> int:
        return int(self.spec.get("n_steps") or self.config.num_inference_steps or DEFAULT_STEPS)

    @cached_property
    def obs_spec(self) -> list[dict[str, Any]]:
        n, feats = self.n_obs_steps, self.config.input_features
        s = int(feats[STATE_KEY].shape[0])
        out: list[dict[str, Any]] = [{"name": "state", "shape": [n, s] if n > 1 else [s]}]
        for c in self.cameras:
            ch, h, w = (int(x) for x in feats[IMAGE_PREFIX + c].shape)
            out.append({"name": c, "shape": [n, h, w, ch] if n > 1 else [ch, h, w]})
        return out

    @cached_property
    def flow(self) -> DiffusionFlowPolicy:
        """The U-Net converted to a flow (module docstring)."""
        cfg, sched = self.config, self.policy.diffusion.noise_scheduler
        T = int(sched.config.num_train_timesteps)
        return DiffusionFlowPolicy(
            _UNet(self.policy.diffusion.unet), sched.alphas_cumprod, int(cfg.horizon), self.action_dim, self.obs_dim,
            cfg.prediction_type, timesteps="continuous", clip_sample=float(cfg.clip_sample_range) if cfg.clip_sample
            else None, max_timestep=T - max(1, T // self.n_steps)).to(self.device)

    def unclamped(self) -> Any:
        """The flow without ``clip_sample`` while inside (:meth:`DiffusionFlowPolicy.unclamped`: gradient checks)."""
        return self.flow.unclamped()

    def typical_observation(self) -> np.ndarray:
        """Flat raw observation: the state's dataset mean (or the middle of its min-max range; zeros without
        statistics) in every row, grey images."""
        out = np.full(self.obs_dim, 0.5, dtype=np.float32)
        stats = (getattr(self._unnormalizer, "stats", None) or {}).get(STATE_KEY, {})
        stats = stats or self._input_stats().get(STATE_KEY, {})
        mean = stats.get("mean")
        if mean is None and stats.get("min") is not None and stats.get("max") is not None:
            mean = (np.asarray(stats["min"], dtype=np.float64) + np.asarray(stats["max"], dtype=np.float64)) / 2
        e = self.observation_builder.entries[0]
        row = np.asarray(mean, dtype=np.float32).reshape(-1) if mean is not None else np.zeros(e.shape[-1], np.float32)
        out[e.offset:e.offset + e.size] = np.tile(row, e.frames)
        return out

    def _input_stats(self) -> dict[str, Any]:
        for step in getattr(self.preprocessor, "steps", []):
            if hasattr(step, "stats") and step.stats:
                return {k: {n: (v.cpu().numpy() if isinstance(v, torch.Tensor) else v) for n, v in s.items()}
                        for k, s in step.stats.items()}
        return {}

    # ------------------------------------------------------------------------------ the interface
    def _flat(self, obs: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(obs, Mapping):
            if "state" not in obs:
                raise ValueError("observation lacks the joint entry 'state'")
            images = {k: v for k, v in obs.items() if k != "state"}
            return torch.from_numpy(self.observation_builder.build(np.asarray(obs["state"]), images))[None]
        x = torch.as_tensor(obs, dtype=torch.float32)
        x = x[None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != self.obs_dim:
            raise ValueError(f"flat observations must be (B, {self.obs_dim}), got {tuple(x.shape)}")
        return x

    def _batch(self, obs: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        """LeRobot's raw batch: ``observation.state`` ``(B, n_obs_steps, S)`` and each camera
        ``(B, n_obs_steps, 3, H, W)`` in [0, 1], oldest first (rtc_ros's rows are newest first)."""
        x = self._flat(obs)
        if not torch.isfinite(x).all():
            raise ValueError("observation contains NaN or Inf")
        b, n, batch = x.shape[0], self.n_obs_steps, {}
        for e in self.observation_builder.entries:
            part = x[:, e.offset:e.offset + e.size]
            if e.kind == "joints":
                batch[STATE_KEY] = part.reshape(b, n, -1).flip(1)
            elif n > 1:  # a frame stack [n, H, W, 3], newest first
                batch[IMAGE_PREFIX + e.name] = part.reshape(b, n, *e.shape[1:]).permute(0, 1, 4, 2, 3).flip(1)
            else:  # [3, H, W]
                batch[IMAGE_PREFIX + e.name] = part.reshape(b, 1, *e.shape)
        return batch

    def encode(self, obs: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Preprocess (LeRobot's normalisation) and encode once: the U-Net's ``global_cond`` ``(B, C)``."""
        from lerobot.utils.constants import OBS_IMAGES

        with torch.no_grad():
            batch = self.preprocessor(self._batch(obs))
            inputs = {STATE_KEY: batch[STATE_KEY].to(self.device, torch.float32),
                      OBS_IMAGES: torch.stack([batch[k].to(self.device, torch.float32)
                                               for k in self.config.image_features], dim=-4)}
            return self.policy.diffusion._prepare_global_conditioning(inputs)

    def velocity(self, a_tau: torch.Tensor, context: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """The converted flow velocity ``(B, horizon, M)`` (autograd as the caller has it)."""
        return self.flow.velocity(a_tau, context, tau)

    def normalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        """Raw ``(..., H, M)`` -> normalised ``(..., chunk_offset + H, M)`` (the leading positions zero)."""
        a = torch.as_tensor(a, dtype=torch.float32)
        if a.ndim < 2 or a.shape[-1] != self.action_dim:
            raise ValueError(f"raw actions must be (..., L, {self.action_dim}), got {tuple(a.shape)}")
        x = self._action_transform(a.cpu(), inverse=False).to(self.device, torch.float32)
        return torch.nn.functional.pad(x, (0, 0, self.chunk_offset, 0))

    def unnormalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        """Normalised ``(..., chunk_offset + H, M)`` -> raw ``(..., H, M)`` from the observation's step on."""
        return self._action_transform(a[..., self.chunk_offset:, :].detach().cpu(), inverse=True).to(a.device)


def load_lerobot_diffusion(path: Path, spec: dict[str, Any], device: torch.device) -> LeRobotDiffusionPolicy:
    """Load ``spec['pretrained_path']`` (a LeRobot Diffusion Policy ``pretrained_model`` directory).

    Raises:
        ValueError: ``"field: why"`` -- lerobot missing, no such directory, not a Diffusion Policy, an
            environment-state input; the caller prefixes the spec path.
    """
    from rtc_ros.policies.lerobot_adapter import adapted, pretrained_config

    try:
        from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    except ImportError as exc:
        raise ValueError(f"model: cannot import lerobot's Diffusion Policy ({exc}); install it "
                         "(scripts/setup_lerobot_venv.sh, docs/policies.md 'LeRobot Diffusion Policy')") from exc
    src, cfg = pretrained_config(path, spec, "diffusion")
    if cfg.env_state_feature is not None:
        raise ValueError("pretrained_path: the policy takes observation.environment_state, which a robot does not "
                         "publish; only joint state and cameras are supported")
    if not cfg.image_features:
        raise ValueError("pretrained_path: the policy has no camera input")
    cfg.pretrained_backbone_weights = None  # the checkpoint holds the backbone: nothing is downloaded
    cfg.compile_model = False  # rtc_ros compiles if asked (GeneratorConfig.compile)
    cfg.device = device.type
    out = adapted(LeRobotDiffusionPolicy, DiffusionPolicy.from_pretrained(src, config=cfg), cfg, src, spec, path, device)
    if out.horizon < 1:
        raise ValueError(f"pretrained_path: horizon {cfg.horizon} leaves no action from the newest of its "
                         f"{cfg.n_obs_steps} observations on")
    return out
