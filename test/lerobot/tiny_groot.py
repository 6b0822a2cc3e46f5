"""Build a tiny random GR00T N1.5 policy offline (no hub): tiny Eagle assets (SigLIP + Qwen3 config, byte-level BPE
tokenizer, processor configs) in LeRobot's Eagle cache, a tiny ``GR00TN15`` base model, then a ``pretrained_model``
directory (config, safetensors, processors) as LeRobot saves it.

The Eagle backbone is *not* described by the saved policy: ``EagleBackbone`` always rebuilds it from
``HF_LEROBOT_HOME/lerobot/eagle2hg-processor-groot-n1p5/config.json`` and the processors read the tokenizer from
there too, so point ``HF_LEROBOT_HOME`` at a scratch directory *before importing lerobot* (it is read at import), or
the tiny files would land in (and poison) the user's real cache. The saved policy also still needs ``base_dir``
(its ``base_model_path``): ``GrootPolicy.from_pretrained`` rebuilds the GR00TN15 from it before loading the weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rtc_ros.policies.lerobot_groot import sdpa_without_flash_attn

STATE_DIM, ACTION_DIM, IMG = 6, 6, 32  # env sizes (as the other tiny policies); the camera frame
CAMERA = "front"
TILE, PATCH = 32, 8  # Eagle tile (processor resize) and SigLIP patch: (32 / 8) ** 2 = 16 image tokens per frame
MAX_STATE_DIM, MAX_ACTION_DIM, HORIZON = 64, 32, 16  # GR00T N1.5's padded sizes and action horizon
EAGLE_REPO = "lerobot/eagle2hg-processor-groot-n1p5"  # GrootConfig / EagleBackbone default tokenizer_assets_repo
MARKER = "_tiny_groot"  # in the tiny Eagle config.json, so a real cache is never overwritten
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>"]
CHAT_TEMPLATE = (  # Qwen-style; the Eagle processor replaces "<image-N>" by <img><IMG_CONTEXT>*16</img>
    "{% set image_count = namespace(value=0) %}{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content %}"
    "{% set image_count.value = image_count.value + 1 %}<image-{{ image_count.value }}>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def write_tiny_eagle(directory: Path) -> Path:
    """The ten files ``ensure_eagle_cache_ready`` would download (plus tokenizer.json), tiny; config.json alone
    decides the random Eagle backbone (SigLIP 1x32 wide, Qwen3 2x32 wide, 16 image tokens per frame)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    config_file = directory / "config.json"
    if config_file.exists() and not json.loads(config_file.read_text()).get(MARKER):
        raise FileExistsError(f"{directory} holds a real Eagle config; point HF_LEROBOT_HOME elsewhere")
    tok = Tokenizer(models.BPE())  # byte-level BPE like Qwen's: any text encodes, no unknown tokens
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["pick up the cube and place it in the box", "move the arm left right up down", "Perform the task.",
              "open close the gripper", "<image 1>", "['pick up the cube']", "user assistant system"]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIALS, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = Qwen2TokenizerFast(tokenizer_object=tok, unk_token=None, bos_token=None, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", additional_special_tokens=SPECIALS[1:])
    tokenizer.save_pretrained(directory)  # tokenizer.json, tokenizer_config.json, special_tokens_map.json
    tok.model.save(str(directory))  # vocab.json, merges.txt
    vocab = tokenizer.get_vocab()
    ids = {t: vocab[t] for t in SPECIALS}

    def dump(name: str, obj: dict) -> None:
        (directory / name).write_text(json.dumps(obj, indent=2) + "\n")

    dump("added_tokens.json", ids)
    dump("chat_template.json", {"chat_template": CHAT_TEMPLATE})
    auto = {"AutoProcessor": "processing_eagle2_5_vl.Eagle25VLProcessor"}
    dump("processor_config.json", {
        "processor_class": "Eagle25VLProcessor", "auto_map": auto, "image_token": "<IMG_CONTEXT>",
        "video_token": "<IMG_CONTEXT>", "tokens_per_tile": (TILE // PATCH) ** 2, "image_start_token": "<img>",
        "image_end_token": "</img>", "image_placeholder": "image", "video_placeholder": "video"})
    dump("preprocessor_config.json", {
        "image_processor_type": "Eagle25VLImageProcessorFast", "processor_class": "Eagle25VLProcessor",
        "auto_map": {"AutoImageProcessor": "image_processing_eagle2_5_vl_fast.Eagle25VLImageProcessorFast", **auto},
        "size": {"height": TILE, "width": TILE}, "crop_size": None, "do_resize": True, "resample": 3,
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5] * 3,
        "image_std": [0.5] * 3, "do_convert_rgb": True, "do_pad": True, "min_dynamic_tiles": 1,
        "max_dynamic_tiles": 1, "use_thumbnail": False, "pad_during_tiling": False})
    dump("generation_config.json", {"eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"]})
    dump("config.json", {
        MARKER: True, "model_type": "eagle_2_5_vl", "architectures": ["Eagle25VLForConditionalGeneration"],
        "auto_map": {"AutoConfig": "configuration_eagle2_5_vl.Eagle25VLConfig",
                     "AutoModel": "modeling_eagle2_5_vl.Eagle25VLForConditionalGeneration"},
        "_attn_implementation": "sdpa", "image_token_index": ids["<IMG_CONTEXT>"], "select_layer": -1,
        "downsample_ratio": 0.5, "use_pixel_shuffle": False, "mlp_connector_layers": 1, "force_image_size": TILE,
        "dynamic_image_size": True, "use_thumbnail": False, "min_dynamic_tiles": 1, "max_dynamic_tiles": 1,
        "template": "qwen3-chat", "use_backbone_lora": 0, "use_llm_lora": 0,
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                          "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": TILE, "patch_size": PATCH,
                          "num_channels": 3, "vision_use_head": False},
        "text_config": {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": len(vocab),
                        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                        "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 512,
                        "tie_word_embeddings": False, "eos_token_id": ids["<|im_end|>"],
                        "pad_token_id": ids["<|endoftext|>"]}})
    return directory


def gr00t_config(eagle_hidden: int = 32, llm_layers: int = 2, steps: int = 4):
    """A GR00TN15Config shaped like nvidia/GR00T-N1.5-3B's (project_to_dim None, interleaved DiT), but tiny."""
    from lerobot.policies.groot.groot_n1 import GR00TN15Config

    width = 32  # DiT / action-embedding width = heads * head_dim
    return GR00TN15Config(
        backbone_cfg={"select_layer": llm_layers, "project_to_dim": None, "tune_llm": False, "tune_visual": False,
                      "reproject_vision": False, "use_flash_attention": False, "load_bf16": False},
        action_head_cfg={
            "action_dim": MAX_ACTION_DIM, "action_horizon": HORIZON, "max_state_dim": MAX_STATE_DIM,
            "max_action_dim": MAX_ACTION_DIM, "add_pos_embed": True, "backbone_embedding_dim": eagle_hidden,
            "input_embedding_dim": width, "hidden_size": width, "max_seq_len": 64, "num_target_vision_tokens": 4,
            "max_num_embodiments": 32, "num_inference_timesteps": steps, "num_timestep_buckets": 1000,
            "noise_beta_alpha": 1.5, "noise_beta_beta": 1.0, "noise_s": 0.999, "use_vlln": True,
            "model_dtype": "float32", "tune_projector": True, "tune_diffusion_model": True,
            "diffusion_model_cfg": {"num_attention_heads": 2, "attention_head_dim": width // 2, "output_dim": width,
                                    "num_layers": 2, "dropout": 0.0, "final_dropout": True, "norm_type": "ada_norm",
                                    "interleave_self_attention": True, "positional_embeddings": None,
                                    "cross_attention_dim": eagle_hidden},
            "vl_self_attention_cfg": {"num_attention_heads": 2, "attention_head_dim": eagle_hidden // 2,
                                      "num_layers": 1, "dropout": 0.0, "final_dropout": True,
                                      "positional_embeddings": None}},
        action_horizon=HORIZON, action_dim=MAX_ACTION_DIM, compute_dtype="float32", hidden_size=eagle_hidden)


def groot_config(base_dir: Path, chunk: int = HORIZON):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.groot.configuration_groot import GrootConfig

    return GrootConfig(
        base_model_path=str(base_dir), device="cpu", use_bf16=False, chunk_size=chunk, n_action_steps=chunk,
        max_state_dim=MAX_STATE_DIM, max_action_dim=MAX_ACTION_DIM, tune_visual=False, tune_llm=False,
        input_features={
            "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(STATE_DIM,)),
            f"observation.images.{CAMERA}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, IMG, IMG))},
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(ACTION_DIM,))})


def dataset_stats(seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    stats = {}
    for key, dim in (("observation.state", STATE_DIM), ("action", ACTION_DIM)):
        lo = -1 - torch.rand(dim, generator=g)
        hi = 1 + torch.rand(dim, generator=g)
        if key == "action":  # a joint that never moved in the data (max == min): LeRobot maps it to 0 and back
            hi[0] = lo[0]
        stats[key] = {"min": lo, "max": hi, "mean": (lo + hi) / 2, "std": (hi - lo) / 4}
    return stats


def write_tiny_groot(directory: Path, steps: int = 4, seed: int = 0) -> Path:
    """Tiny Eagle assets in ``HF_LEROBOT_HOME/lerobot/eagle2hg-processor-groot-n1p5``, ``directory/base_model`` (a
    random GR00TN15, the policy's ``base_model_path``) and ``directory/pretrained_model`` (random GrootPolicy +
    processors). Returns the ``pretrained_model`` path."""
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.groot.groot_n1 import GR00TN15
    from lerobot.policies.groot.modeling_groot import GrootPolicy
    from lerobot.utils.constants import HF_LEROBOT_HOME

    write_tiny_eagle(HF_LEROBOT_HOME / EAGLE_REPO)
    base_dir = (directory / "base_model").resolve()  # relative "a/b" would be taken for a hub repo id
    torch.manual_seed(seed)
    with sdpa_without_flash_attn():
        GR00TN15(gr00t_config(steps=steps), local_model_path=str(base_dir)).save_pretrained(base_dir)
        cfg = groot_config(base_dir)
        policy = GrootPolicy(cfg)
    with torch.no_grad():  # the per-embodiment layers start at 0.02 randn (the actions would barely matter to a
        for m in policy._groot_model.action_head.modules():  # random head): std 1 / sqrt(fan_in), as trained ones
            if type(m).__name__ == "CategorySpecificLinear":
                m.W.normal_(0.0, m.W.shape[1] ** -0.5)
    pre, post = make_pre_post_processors(cfg, dataset_stats=dataset_stats())
    out = directory / "pretrained_model"
    policy.save_pretrained(out)
    pre.save_pretrained(out)
    post.save_pretrained(out)
    return out


def load_tiny_groot(pretrained: Path):
    """GrootPolicy and its processors back from ``pretrained`` (as lerobot's record/eval scripts load them)."""
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.groot.modeling_groot import GrootPolicy

    with sdpa_without_flash_attn():
        policy = GrootPolicy.from_pretrained(pretrained)
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(pretrained))
    return policy, pre, post


def dummy_batch(seed: int = 2, uint8: bool = False) -> dict:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(3, IMG, IMG, generator=g)
    return {"observation.state": torch.randn(1, STATE_DIM, generator=g),
            f"observation.images.{CAMERA}": (image * 255).to(torch.uint8)[None] if uint8 else image[None],
            "task": ["pick up the cube"]}


if __name__ == "__main__":  # write one for the check command (docs/policies.md, "LeRobot GR00T N1.5")
    import os
    import sys

    if len(sys.argv) != 2 or not os.environ.get("HF_LEROBOT_HOME") or os.environ.get("HF_HUB_OFFLINE") != "1":
        sys.exit("usage: HF_LEROBOT_HOME=<scratch dir> HF_HUB_OFFLINE=1 python test/lerobot/tiny_groot.py DIR "
                 "(the tiny Eagle files go under HF_LEROBOT_HOME: never point it at your real cache)")
    out = Path(sys.argv[1]).resolve()
    write_tiny_groot(out)
    spec = out / "tiny_groot.yaml"
    spec.write_text("name: tiny_groot\nmodel: lerobot_groot\npretrained_path: pretrained_model\ntask: pick up the cube\n")
    print(spec)
