"""LeRobot flow VLAs (SmolVLA) behind rtc_ros's runtime boundary (optional: needs ``lerobot``).

A spec selects it and names a LeRobot ``pretrained_model`` directory (``config.json``,
``model.safetensors``, ``policy_preprocessor*.json`` / ``policy_postprocessor*`` with the dataset
statistics)::

    name: my_smolvla
    model: lerobot_smolvla
    pretrained_path: /path/to/pretrained_model     # relative to the YAML file, or absolute
    task: "pick up the cube"                       # the language instruction (fixed per spec)
    vlm_model_name: /path/to/SmolVLM2-500M-Video-Instruct   # optional: overrides config.json's (hub id)
    n_steps: 10                                     # optional (default: config.num_steps)
    joint_names: [...]                              # optional, length = the action feature's size

Conversions at the boundary (LeRobot's flow time runs 1 = noise -> 0 = data, ``x += (-1/n) v``):
``tau = 1 - t`` and ``v_rtc = -v_lerobot``. The sampling space is LeRobot's padded action space
(``max_action_dim``, :attr:`LeRobotFlowPolicy.sample_dim`): the generator samples and guides all
``max_action_dim`` dimensions (the padded dimensions of the guidance target are zero, as in training),
``normalize_actions`` pads and ``unnormalize_actions`` drops them, so raw chunks have the ``M`` real
joints. ``encode`` runs LeRobot's preprocessor (normalisation, tokenisation) and the VLM prefix once
and returns its KV cache; ``velocity`` is ``VLAFlowMatching.denoise_step`` called with autograd on,
so RTC's vector-Jacobian product is exact (LeRobot's own RTC processor drops the Jacobian).

Observations: a mapping ``{"state": (S,), <camera>: (H, W, 3) uint8}`` (cameras named after the
config's ``observation.images.<camera>`` features), or the flat layout of :attr:`obs_spec` (state,
then each camera ``(3, H, W)`` in [0, 1]).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from rtc_ros.policies.observation import ObservationBuilder
from rtc_ros.policies.spec_fields import spec_path

STATE_KEY, IMAGE_PREFIX, ACTION_KEY = "observation.state", "observation.images.", "action"
#: the spec fields this adapter reads besides the common ones (rtc_ros.policies.spec.SPEC_FIELDS)
SPEC_FIELDS = ("pretrained_path", "task", "vlm_model_name")


def _import_lerobot() -> Any:
    try:
        from lerobot.policies.smolvla import modeling_smolvla
    except ImportError as exc:
        raise ValueError(f"model: cannot import lerobot ({exc}); install it (scripts/setup_lerobot_venv.sh, "
                         "docs/policies.md 'LeRobot flow VLAs')") from exc
    return modeling_smolvla


@dataclass
class LeRobotPolicy:
    """What the LeRobot adapters share: the loaded policy, its processors and the spec; the action size,
    cameras, the observation layout (``obs_spec``: the state ``[S]`` and each camera ``[3, H, W]``, as the VLAs
    take them; the Diffusion Policy's histories override it), the raw batch and action statistics."""

    policy: Any  # the lerobot policy (eval, on device, no parameter grads)
    preprocessor: Any
    postprocessor: Any
    spec: dict[str, Any]
    path: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def config(self) -> Any:
        return self.policy.config

    @property
    def action_dim(self) -> int:
        """M: the real action (joint) dimension; raw chunks are ``(H, M)``."""
        return int(self.config.output_features[ACTION_KEY].shape[0])

    @property
    def joint_names(self) -> list[str] | None:
        return self.spec.get("joint_names")

    @cached_property
    def cameras(self) -> list[str]:
        return [k[len(IMAGE_PREFIX):] for k in self.config.input_features if k.startswith(IMAGE_PREFIX)]

    @property
    def task(self) -> str:
        return str(self.spec.get("task", ""))

    @cached_property
    def obs_spec(self) -> list[dict[str, Any]]:
        feats = self.config.input_features
        out = [{"name": "state", "shape": [int(feats[STATE_KEY].shape[0])]}]
        return out + [{"name": c, "shape": [int(x) for x in feats[IMAGE_PREFIX + c].shape]} for c in self.cameras]

    def typical_observation(self) -> np.ndarray:
        """Flat raw observation: the state's dataset mean (zeros without statistics), grey images."""
        out = np.full(self.obs_dim, 0.5, dtype=np.float32)
        stats = getattr(self._unnormalizer, "stats", None) or {}
        mean = stats.get(STATE_KEY, {}).get("mean")
        s = self.obs_spec[0]["shape"][0]
        out[:s] = np.asarray(mean, dtype=np.float32).reshape(-1) if mean is not None else 0.0
        return out

    def _batch(self, obs: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor) -> dict[str, Any]:
        """LeRobot's raw batch: ``observation.state`` ``(B, S)``, each camera ``(B, 3, H, W)`` in [0, 1], the task."""
        if isinstance(obs, Mapping):
            images = {k: np.asarray(v) for k, v in obs.items() if k != "state"}
            x = torch.from_numpy(self.observation_builder.build(np.asarray(obs["state"]), images))[None]
        else:
            x = torch.as_tensor(obs, dtype=torch.float32)
            x = x[None] if x.ndim == 1 else x
            if x.ndim != 2 or x.shape[1] != self.obs_dim:
                raise ValueError(f"flat observations must be (B, {self.obs_dim}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("observation contains NaN or Inf")
        batch: dict[str, Any] = {"task": [self.task] * x.shape[0]}
        for e in self.observation_builder.entries:
            part = x[:, e.offset:e.offset + e.size].reshape(x.shape[0], *e.shape)
            batch[STATE_KEY if e.kind == "joints" else IMAGE_PREFIX + e.name] = part
        return batch

    @cached_property
    def observation_builder(self) -> ObservationBuilder:
        return ObservationBuilder(self.obs_spec, int(self.obs_spec[0]["shape"][-1]))

    @property
    def obs_dim(self) -> int:
        return self.observation_builder.obs_dim

    @property
    def joint_entry(self) -> str:
        return "state"

    @cached_property
    def _unnormalizer(self) -> Any:
        return unnormalizer_step(self.postprocessor)

    def _action_transform(self, a: torch.Tensor, inverse: bool) -> torch.Tensor:
        step = self._unnormalizer
        return a if step is None else step._normalize_action(a, inverse=inverse)


@dataclass
class LeRobotFlowPolicy(LeRobotPolicy):
    """A loaded LeRobot SmolVLA: the same interface as :class:`rtc_ros.policies.loaded.LoadedPolicy`."""

    # ------------------------------------------------------------------------------ sizes
    @property
    def horizon(self) -> int:
        return int(self.config.chunk_size)

    @property
    def horizon_source(self) -> str:
        """Where H is set, for errors (``n_action_steps`` does not set it: ``s_min`` does its job here)."""
        return "chunk_size in pretrained_path's config.json"

    @property
    def sample_dim(self) -> int:
        """The sampling / guidance space: LeRobot's padded ``max_action_dim``."""
        return int(self.config.max_action_dim)

    @property
    def n_steps(self) -> int:
        return int(self.spec.get("n_steps", self.config.num_steps))

    def encode(self, obs: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor) -> Any:
        """Preprocess (LeRobot's processors) and run the VLM prefix once: ``(prefix_pad_masks, kv_cache)``."""
        from lerobot.policies.smolvla.modeling_smolvla import OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS
        from lerobot.policies.smolvla.modeling_smolvla import make_att_2d_masks

        pol, model = self.policy, self.policy.model
        with torch.no_grad():
            batch = pol._prepare_batch(self.preprocessor(self._batch(obs)))
            images, img_masks = pol.prepare_images(batch)
            state = pol.prepare_state(batch)
            embs, pad_masks, att_masks = model.embed_prefix(images, img_masks, batch[OBS_LANGUAGE_TOKENS],
                                                            batch[OBS_LANGUAGE_ATTENTION_MASK], state=state)
            _, kv = model.vlm_with_expert.forward(
                attention_mask=make_att_2d_masks(pad_masks, att_masks), position_ids=torch.cumsum(pad_masks, dim=1) - 1,
                past_key_values=None, inputs_embeds=[embs, None], use_cache=self.config.use_cache, fill_kv_cache=True)
        return pad_masks, kv

    def velocity(self, a_tau: torch.Tensor, context: Any, tau: torch.Tensor) -> torch.Tensor:
        """``-denoise_step(x_t = a_tau, t = 1 - tau)`` in the padded action space (autograd as the caller has it)."""
        pad_masks, kv = context
        t = (1.0 - tau).to(torch.float32).expand(a_tau.shape[0])
        return -self.policy.model.denoise_step(prefix_pad_masks=pad_masks, past_key_values=kv, x_t=a_tau, timestep=t)

    def normalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        """Raw ``(..., M)`` -> LeRobot's normalised, padded ``(..., max_action_dim)`` (padding zero)."""
        a = torch.as_tensor(a, dtype=torch.float32)
        if a.shape[-1] != self.action_dim:
            raise ValueError(f"raw actions must have {self.action_dim} dimensions, got {tuple(a.shape)}")
        x = self._action_transform(a.cpu(), inverse=False).to(self.device, torch.float32)
        return torch.nn.functional.pad(x, (0, self.sample_dim - self.action_dim))

    def unnormalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        """Padded normalised ``(..., max_action_dim)`` -> raw ``(..., M)``."""
        return self._action_transform(a[..., :self.action_dim].detach().cpu(), inverse=True).to(a.device)


def unnormalizer_step(postprocessor: Any) -> Any:
    """The postprocessor's ``UnnormalizerProcessorStep`` (the action statistics), or None."""
    from lerobot.processor.normalize_processor import UnnormalizerProcessorStep

    steps = [s for s in getattr(postprocessor, "steps", []) if isinstance(s, UnnormalizerProcessorStep)]
    return steps[0] if steps else None


#: the spec's ``model:`` per LeRobot policy type (the other adapter is named when the type does not match)
MODEL_OF_TYPE = {"smolvla": "lerobot_smolvla", "diffusion": "lerobot_diffusion", "groot": "lerobot_groot"}


def pretrained_config(path: Path, spec: dict[str, Any], kind: str) -> tuple[Path, Any]:
    """``(directory, LeRobot config)`` of ``spec['pretrained_path']`` (relative to the spec ``path``), which
    must hold a policy of type ``kind``. Raises ValueError ``"pretrained_path: why"``."""
    from lerobot.configs.policies import PreTrainedConfig

    raw = spec.get("pretrained_path")
    if not isinstance(raw, str) or not raw:
        raise ValueError("pretrained_path: missing (a LeRobot pretrained_model directory)")
    src = spec_path(path, raw, "pretrained_path")
    if not (src / "config.json").is_file():
        raise ValueError(f"pretrained_path: no LeRobot config.json in {src}")
    cfg = PreTrainedConfig.from_pretrained(src)
    got = getattr(cfg, "type", "?")
    if got != kind:
        other = f" (model: {MODEL_OF_TYPE[got]} loads it)" if got in MODEL_OF_TYPE else ""
        raise ValueError(f"pretrained_path: {src} holds a {got!r} policy, not {kind!r}{other}")
    return src, cfg


def adapted(kind: type, policy: Any, cfg: Any, src: Path, spec: dict[str, Any], path: Path, device: torch.device,
            overrides: dict[str, Any] | None = None) -> Any:
    """The loaded LeRobot ``policy`` in eval mode on ``device`` without parameter gradients, with the processors
    saved in ``src`` (``overrides`` for their steps), wrapped in the adapter class ``kind``; ``joint_names``
    checked against the action size (ValueError ``"joint_names: ..."``)."""
    try:
        from lerobot.policies.factory import make_pre_post_processors
    except ImportError as exc:  # the factory imports more of lerobot (datasets, envs) than a policy's modeling
        raise ValueError(f"model: cannot import lerobot's processors ({exc}); install it "
                         "(scripts/setup_lerobot_venv.sh, docs/policies.md)") from exc
    policy.to(device).eval()
    for p in policy.parameters():
        p.requires_grad_(False)
    try:
        pre, post = make_pre_post_processors(cfg, pretrained_path=str(src), preprocessor_overrides={
            "device_processor": {"device": str(device)}, **(overrides or {})})
    except Exception as exc:  # noqa: BLE001 -- lerobot's own errors (a hub message for a missing local file)
        raise ValueError(f"pretrained_path: cannot load the checkpoint's processors (normalisation statistics) from "
                         f"{src}: {type(exc).__name__}: {exc} -- a LeRobot >= 0.4 pretrained_model folder holds "
                         "policy_preprocessor.json, policy_postprocessor.json and the state files they name; an older "
                         "checkpoint: run LeRobot's migrate_policy_normalization.py") from exc
    out = kind(policy, pre, post, spec, path, device)
    names = out.joint_names
    if names is not None and len(names) != out.action_dim:
        raise ValueError(f"joint_names: {len(names)} names for the action feature's {out.action_dim} dimensions")
    check_training_dataset(src, spec)
    return out


def training_dataset(src: Path) -> dict[str, Any] | None:
    """``{root, fps, action_names}`` of the dataset the checkpoint in ``src`` was trained on, where this machine can
    read it (``train_config.json`` beside the checkpoint, as ``lerobot-train`` writes it, and that dataset's
    ``meta/info.json``), else None."""
    try:
        ds = json.loads((src / "train_config.json").read_text()).get("dataset") or {}
        root = ds.get("root")
        if not root:
            from lerobot.utils.constants import HF_LEROBOT_HOME

            root = Path(HF_LEROBOT_HOME) / str(ds["repo_id"])
        info = json.loads((Path(root) / "meta" / "info.json").read_text())
        action = (info.get("features") or {}).get("action") or {}
        return {"root": str(root), "fps": info.get("fps"), "action_names": action.get("names")}
    except (OSError, ValueError, KeyError, AttributeError, TypeError, ImportError):
        return None


def check_training_dataset(src: Path, spec: dict[str, Any]) -> None:
    """The spec's ``dt`` and ``joint_names`` against the training dataset's (:func:`training_dataset`): another rate,
    or the same joints in another order (a walkthrough's hand-written spec had the arms swapped, and ``rtc_bringup``'s
    advice to swap ``arms`` to match it mirrored them), is refused (ValueError ``"dt: ..."`` / ``"joint_names: ..."``).
    Other names than the dataset's (another robot's, renamed) are the spec's to give; nothing to compare then."""
    info = training_dataset(src)
    if info is None:
        return
    dt, fps = spec.get("dt"), info.get("fps")
    if isinstance(dt, (int, float)) and isinstance(fps, (int, float)) and fps > 0 \
            and not math.isclose(float(dt), 1.0 / fps, rel_tol=0.02):
        raise ValueError(f"dt: {dt} s, but the checkpoint was trained on {info['root']} at {fps} fps: give dt: "
                         f"{1.0 / fps:.6g} (and run it at that rate)")
    names, trained = spec.get("joint_names"), info.get("action_names")
    if isinstance(names, list) and isinstance(trained, list) and sorted(map(str, names)) == sorted(map(str, trained)) \
            and list(map(str, names)) != list(map(str, trained)):
        raise ValueError(f"joint_names: the checkpoint was trained on {info['root']} with its actions in the order "
                         f"{trained}, the spec lists them in another order: give them in that order")


def require_task(spec: dict[str, Any]) -> None:
    """A VLA's spec must give its language instruction (``task``): without it the model runs on an empty prompt,
    silently (ValueError ``"task: ..."``)."""
    if not str(spec.get("task") or "").strip():
        raise ValueError("task: a vision-language-action policy needs its instruction, the task string it was "
                         "trained with (e.g. task: fold the towel); without it the model would run on an empty prompt")


def load_lerobot_policy(path: Path, spec: dict[str, Any], device: torch.device) -> LeRobotFlowPolicy:
    """Load ``spec['pretrained_path']`` (a LeRobot SmolVLA ``pretrained_model`` directory).

    Raises:
        ValueError: lerobot missing, no such directory, not a SmolVLA, or an unsupported option;
            the caller prefixes the spec field.
    """
    modeling = _import_lerobot()
    src, cfg = pretrained_config(path, spec, "smolvla")
    require_task(spec)
    if cfg.adapt_to_pi_aloha:
        raise ValueError("pretrained_path: adapt_to_pi_aloha is not supported")
    if spec.get("vlm_model_name"):
        vlm = str(spec["vlm_model_name"])
        cfg.vlm_model_name = str((path.parent / vlm).resolve()) if (path.parent / vlm).exists() else vlm
    cfg.load_vlm_weights = False  # the checkpoint's safetensors hold the VLM weights
    cfg.device = device.type
    cfg.rtc_config = None  # rtc_ros guides; LeRobot's RTC processor stays off
    try:
        policy = modeling.SmolVLAPolicy.from_pretrained(src, config=cfg)
    except (OSError, ValueError) as exc:  # the VLM's config and tokenizer: a hub id offline, a path that is not there
        raise ValueError(f"vlm_model_name: loading the SmolVLA with its VLM {cfg.vlm_model_name!r} failed "
                         f"({type(exc).__name__}: {exc}); offline, give vlm_model_name as a local copy of the VLM "
                         "(its config and tokenizer files; relative to the spec or absolute)") from exc
    overrides = {"tokenizer_processor": {"tokenizer_name": cfg.vlm_model_name}} if spec.get("vlm_model_name") else {}
    return adapted(LeRobotFlowPolicy, policy, cfg, src, spec, path, device, overrides)
