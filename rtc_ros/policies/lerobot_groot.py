"""LeRobot's GR00T N1.5 behind rtc_ros's runtime boundary (optional: needs ``lerobot`` with its GR00T extras).

A spec selects it and names a LeRobot ``pretrained_model`` directory (``config.json`` of type ``groot``,
``model.safetensors``, ``policy_preprocessor*.json`` / ``policy_postprocessor*`` with the dataset's min-max
statistics)::

    name: my_groot
    model: lerobot_groot
    pretrained_path: /path/to/pretrained_model     # relative to the YAML file, or absolute
    task: "pick up the cube"                       # the language instruction (fixed per spec)
    base_model_path: /path/to/GR00T-N1.5-3B        # optional: overrides config.json's (a hub id)
    n_steps: 4                                      # optional (default: the action head's num_inference_timesteps)
    joint_names: [...]                              # optional, length = the action feature's size

**Loading.** LeRobot builds the GR00T model from its *base* model (``base_model_path``, the hub's
``nvidia/GR00T-N1.5-3B`` by default: the architecture and the Eagle backbone's files) and then loads the
fine-tuned weights of ``pretrained_path`` over it; the Eagle processor's tokenizer files come from
``tokenizer_assets_repo``. Offline (``HF_HUB_OFFLINE=1``, as on a robot) both must already be in the Hugging
Face cache, or ``base_model_path`` a local directory.

**Sampling.** GR00T's action head is a flow matching DiT with rtc_ros's convention (``t = 0`` noise,
``t = 1`` data, Euler steps ``a += (1/n) v``): no conversion but the time, which its networks see as the
integer bucket ``int(t * num_timestep_buckets)`` (:func:`timestep_bucket`). ``encode`` runs LeRobot's
preprocessor (min-max normalisation, padding to ``max_state_dim``, Eagle's image and text processing), the
Eagle backbone, the action head's backbone projection and its state encoder once per chunk; ``velocity`` is
the head's per-step body (action encoder, position embedding, future tokens, DiT, action decoder) with
autograd on, so RTC's vector-Jacobian product is exact. The model samples ``max_action_dim`` dimensions
(:attr:`sample_dim`; the padded ones are zero in the guidance target, as in training); the chunk is the
head's ``action_horizon`` actions from the observation's step on (index 0 = the observation's step, as
LeRobot executes them). With ``use_bf16`` (LeRobot's default) both run under bfloat16 autocast as LeRobot's
``predict_action_chunk`` does.

Observations: ``{"state": (S,), <camera>: (H, W, 3) uint8}`` (cameras named after the config's
``observation.images.<camera>`` features), or the flat layout of :attr:`obs_spec`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from rtc_ros.policies.lerobot_adapter import ACTION_KEY, STATE_KEY, LeRobotPolicy

log = logging.getLogger(__name__)
#: the spec fields this adapter reads besides the common ones (rtc_ros.policies.spec.SPEC_FIELDS)
SPEC_FIELDS = ("pretrained_path", "task", "base_model_path")
#: the batch keys GR00T's model consumes at inference (LeRobot's ``predict_action_chunk``)
_MODEL_KEYS = ("state", "state_mask", "embodiment_id")
DEFAULT_STEPS = 4  # GR00T N1.5's num_inference_timesteps, where a config leaves it unset


def timestep_bucket(tau: torch.Tensor, buckets: int) -> torch.Tensor:
    """GR00T's discrete time ``int(tau * buckets)`` for rtc_ros's flow time ``tau`` (0 = noise, 1 = data).

    GR00T computes ``int(i / n * buckets)`` in double precision; a float32 ``tau = i / n`` can land a hair below
    an integer (``0.7 * 1000 = 699.99998``), so the product is nudged by 1e-4 before the floor: equal to GR00T's
    for every step of every ``n <= 1000`` with 1000 buckets (tested; 1e-3 was not, at n = 979). Returns a long
    tensor of ``tau``'s shape on its device, clamped to ``[0, buckets - 1]``; computed there (no host round trip
    per step, which a CUDA graph could not capture), on the CPU where the device has no float64 (MPS)."""
    on = tau.device if tau.device.type != "mps" else torch.device("cpu")
    t = torch.floor(tau.detach().to(on, torch.float64) * buckets + 1e-4).clamp(0, buckets - 1).long()
    return t.to(tau.device)


@contextlib.contextmanager
def sdpa_without_flash_attn() -> Iterator[bool]:
    """While active, SigLIP's attention falls back to PyTorch's SDPA when ``flash_attn`` is not installed; yields
    whether it does.

    LeRobot's vendored Eagle model forces ``flash_attention_2`` on its SigLIP vision tower
    (``Eagle25VLForConditionalGeneration.__init__``), which transformers refuses without the ``flash_attn``
    package (it needs CUDA to build). SDPA computes the same attention; the patch is undone on exit. It is the
    class's, so a SigLIP model another thread builds meanwhile would get SDPA too (rtc_ros loads policies before
    its threads start)."""
    from transformers.models.siglip.modeling_siglip import SiglipVisionModel
    from transformers.utils import is_flash_attn_2_available

    name = "_check_and_adjust_attn_implementation"
    if is_flash_attn_2_available() or not hasattr(SiglipVisionModel, name):
        yield False
        return
    own, original = name in SiglipVisionModel.__dict__, getattr(SiglipVisionModel, name)

    def check(self: Any, attn_implementation: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if attn_implementation == "flash_attention_2":
            attn_implementation = "sdpa"
        return original(self, attn_implementation, *args, **kwargs)

    setattr(SiglipVisionModel, name, check)
    try:
        yield True
    finally:
        if own:
            setattr(SiglipVisionModel, name, original)
        else:
            delattr(SiglipVisionModel, name)


@dataclass
class LeRobotGrootPolicy(LeRobotPolicy):
    """A loaded LeRobot GR00T N1.5: the interface of :class:`rtc_ros.policies.loaded.LoadedPolicy`."""

    @property
    def model(self) -> Any:
        """LeRobot's ``GR00TN15`` (backbone + action head)."""
        return self.policy._groot_model

    @property
    def head(self) -> Any:
        return self.model.action_head

    # ------------------------------------------------------------------------------ sizes
    @property
    def horizon(self) -> int:
        """H: the head's ``action_horizon`` (from the observation's step on)."""
        return int(self.head.config.action_horizon)

    @property
    def horizon_source(self) -> str:
        """Where H is set, for errors."""
        return "the action head's action_horizon in pretrained_path's config"

    @property
    def sample_dim(self) -> int:
        """The sampling / guidance space: the head's padded ``action_dim`` (``max_action_dim``)."""
        return int(self.head.config.action_dim)

    @property
    def n_steps(self) -> int:
        return int(self.spec.get("n_steps") or self.head.num_inference_timesteps or DEFAULT_STEPS)

    # ------------------------------------------------------------------------------ statistics
    def _step(self, pipeline: Any, kind: str) -> Any:
        return next((st for st in getattr(pipeline, "steps", []) if type(st).__name__ == kind), None)

    def _min_max(self, step: Any, key: str, size: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(min, max)`` ``(size,)`` of ``key`` in a GR00T processor step's statistics, aligned as LeRobot aligns
        them (cut, or padded with min 0 / max 1), or None where the step does not normalise (LeRobot then passes
        the values through)."""
        stats = getattr(step, "stats", None) or {}
        if step is None or not step.normalize_min_max or key not in stats:
            return None

        def aligned(name: str, default: float) -> torch.Tensor:
            v = torch.as_tensor(stats[key].get(name, torch.full((size,), default)), dtype=torch.float32).flatten().cpu()
            return torch.cat([v[:size], torch.full((max(0, size - v.numel()),), default)])

        return aligned("min", 0.0), aligned("max", 1.0)

    @cached_property
    def _action_min_max(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The action statistics LeRobot unnormalises the model's output with (the postprocessor's
        ``GrootActionUnpackUnnormalizeStep``): the guidance target is mapped with the same ones."""
        return self._min_max(self._step(self.postprocessor, "GrootActionUnpackUnnormalizeStep"), ACTION_KEY,
                             self.action_dim)

    def typical_observation(self) -> np.ndarray:
        """Flat raw observation: the middle of the state's min-max range (zeros without statistics), grey images."""
        out = np.full(self.obs_dim, 0.5, dtype=np.float32)
        s = self.obs_spec[0]["shape"][0]
        mm = self._min_max(self._step(self.preprocessor, "GrootPackInputsStep"), STATE_KEY, s)
        out[:s] = ((mm[0] + mm[1]) / 2).numpy() if mm is not None else 0.0
        return out

    # ------------------------------------------------------------------------------ the interface
    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=bool(self.config.use_bf16))

    def encode(self, obs: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Preprocess and encode once: ``(vl_embs (B, T_vl, D), state_features (B, 1, D), embodiment_id (B,))``."""
        with torch.no_grad():
            batch = self.preprocessor(self._batch(obs))
        with torch.no_grad(), self._autocast():
            inputs = {k: v for k, v in batch.items() if k in _MODEL_KEYS or k.startswith("eagle_")}
            backbone_inputs, action_inputs = self.model.prepare_input(inputs)
            features = self.head.process_backbone_output(self.model.backbone(backbone_inputs))
            emb = action_inputs.embodiment_id
            state = self.head.state_encoder(action_inputs.state, emb)
        return features.backbone_features, state, emb

    def velocity(self, a_tau: torch.Tensor, context: tuple[torch.Tensor, ...], tau: torch.Tensor) -> torch.Tensor:
        """The action head's velocity ``(B, H, sample_dim)`` at flow time ``tau`` ``(B,)`` (autograd as the caller
        has it): one denoising step of LeRobot's ``FlowmatchingActionHead.get_action``."""
        vl_embs, state, emb = context
        head, (b, h) = self.head, a_tau.shape[:2]
        t = timestep_bucket(tau.reshape(-1).expand(b), int(head.num_timestep_buckets)).to(a_tau.device)
        with self._autocast():
            x = head.action_encoder(a_tau, t, emb)
            if head.config.add_pos_embed:
                x = x + head.position_embedding(torch.arange(h, device=a_tau.device))[None]
            tokens = torch.cat((state, head.future_tokens.weight[None].expand(b, -1, -1), x), dim=1)
            out = head.model(hidden_states=tokens, encoder_hidden_states=vl_embs, timestep=t)
            v = head.action_decoder(out, emb)[:, -h:]
        return v.to(a_tau.dtype)

    def normalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        """Raw ``(..., M)`` -> GR00T's min-max ``[-1, 1]`` space padded to ``(..., sample_dim)`` (padding zero;
        a dimension with ``max == min`` maps to 0, as LeRobot's pack step does)."""
        a = torch.as_tensor(a, dtype=torch.float32).cpu()
        if a.shape[-1] != self.action_dim:
            raise ValueError(f"raw actions must have {self.action_dim} dimensions, got {tuple(a.shape)}")
        mm = self._action_min_max
        if mm is not None:
            span = mm[1] - mm[0]
            a = torch.where(span != 0, 2 * (a - mm[0]) / torch.where(span != 0, span, 1.0) - 1, 0.0)
        return torch.nn.functional.pad(a, (0, self.sample_dim - self.action_dim)).to(self.device)

    def unnormalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        """Padded ``(..., sample_dim)`` -> raw ``(..., M)`` (LeRobot's ``GrootActionUnpackUnnormalizeStep``)."""
        x = a[..., :self.action_dim].detach().float().cpu()
        mm = self._action_min_max
        if mm is not None:
            span = mm[1] - mm[0]
            x = torch.where(span != 0, (x + 1.0) * 0.5 * span + mm[0], mm[0])
        return x.to(a.device)


def load_lerobot_groot(path: Path, spec: dict[str, Any], device: torch.device) -> LeRobotGrootPolicy:
    """Load ``spec['pretrained_path']`` (a LeRobot GR00T ``pretrained_model`` directory).

    Raises:
        ValueError: ``"field: why"`` -- lerobot or its GR00T dependencies missing, no such directory, not a
            fine-tuned GR00T policy, more than one observation step, a base model that is not there or does not
            fit; the caller prefixes the spec path.
    """
    from rtc_ros.policies.lerobot_adapter import adapted, pretrained_config, require_task

    try:
        import tree  # noqa: F401 (dm-tree: without it LeRobot's GR00T loads, then fails at its first inference)
        from huggingface_hub.errors import HFValidationError
        from lerobot.policies.groot.modeling_groot import GrootPolicy
        from lerobot.utils.constants import HF_LEROBOT_HOME
    except ImportError as exc:
        raise ValueError(f"model: cannot import lerobot's GR00T ({exc}); install it (scripts/setup_lerobot_venv.sh, "
                         "docs/policies.md 'LeRobot GR00T N1.5')") from exc
    src, cfg = pretrained_config(path, spec, "groot")
    require_task(spec)
    if not (src / "model.safetensors").is_file():  # LeRobot would take the directory for a base model
        raise ValueError(f"pretrained_path: no model.safetensors in {src} (a fine-tuned pretrained_model directory)")
    if int(cfg.n_obs_steps) != 1:
        raise ValueError(f"pretrained_path: n_obs_steps {cfg.n_obs_steps}: only one observation step is supported")
    if spec.get("base_model_path"):
        base = str(spec["base_model_path"])
        cfg.base_model_path = str((path.parent / base).resolve()) if (path.parent / base).exists() else base
    if Path(cfg.base_model_path).is_absolute() and not (Path(cfg.base_model_path) / "config.json").is_file():
        raise ValueError(f"base_model_path: no GR00T config.json in {cfg.base_model_path}")
    cfg.device = device.type
    try:
        with sdpa_without_flash_attn() as sdpa:
            policy = GrootPolicy.from_pretrained(src, config=cfg)
    except (OSError, HFValidationError) as exc:  # the base model or the Eagle files not in the caches, offline
        raise ValueError(f"base_model_path: cannot build GR00T from {cfg.base_model_path!r} ({exc}); offline, the "
                         "base model must be in the Hugging Face cache (or base_model_path a local directory) and the "
                         f"Eagle processor's files ({cfg.tokenizer_assets_repo}) under {HF_LEROBOT_HOME}") from exc
    except RuntimeError as exc:  # the fine-tuned state dict does not fit the model built from the base
        raise ValueError(f"pretrained_path: its weights do not fit the GR00T built from base_model_path "
                         f"{cfg.base_model_path!r}: {exc}") from exc
    except ValueError as exc:  # LeRobot's own checks (features against max_state_dim / max_action_dim, ...)
        raise ValueError(f"pretrained_path: {exc}") from exc
    if sdpa:
        log.warning("flash_attn is not installed: GR00T's Eagle vision tower uses PyTorch's SDPA attention instead")
    return adapted(LeRobotGrootPolicy, policy, cfg, src, spec, path, device)
