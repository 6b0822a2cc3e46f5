"""Build a tiny random SmolVLA offline (no hub): a tiny local SmolVLM config + processor, then a
``pretrained_model`` directory (config, safetensors, processor statistics) as LeRobot saves it."""

from __future__ import annotations

from pathlib import Path

import torch

STATE_DIM, ACTION_DIM, IMG = 6, 6, 32
CAMERA = "front"


def write_tiny_vlm(directory: Path) -> Path:
    """A SmolVLM config and processor small enough for CPU tests (random weights; nothing downloaded)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (PreTrainedTokenizerFast, SmolVLMConfig, SmolVLMImageProcessor, SmolVLMProcessor)
    from transformers.models.smolvlm.video_processing_smolvlm import SmolVLMVideoProcessor

    directory.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "<unk>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>",
                "<global-img>", "<row_1_col_1>"]
    words = "pick up the cube place it in box move arm left right open close gripper an and to of".split()
    vocab = {t: i for i, t in enumerate(specials + words + list("abcdefghijklmnopqrstuvwxyz.,!?\n"))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<|im_start|>",
        eos_token="<end_of_utterance>", padding_side="right",
        extra_special_tokens={"fake_image_token": "<fake_token_around_image>", "image_token": "<image>",
                              "global_image_token": "<global-img>", "end_of_utterance_token": "<end_of_utterance>"})
    image_processor = SmolVLMImageProcessor(do_resize=False, do_image_splitting=False, max_image_size={"longest_edge": IMG},
                                            size={"longest_edge": IMG})
    processor = SmolVLMProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=SmolVLMVideoProcessor(), image_seq_len=4)
    processor.save_pretrained(directory)
    config = SmolVLMConfig(
        image_token_id=vocab["<image>"], scale_factor=2, vocab_size=len(vocab),
        text_config={"model_type": "llama", "vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
                     "max_position_embeddings": 512, "pad_token_id": 0},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": IMG, "patch_size": 8})
    config.save_pretrained(directory)
    return directory


def smolvla_config(vlm_dir: Path, chunk: int = 10, steps: int = 5):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig

    return SmolVLAConfig(
        vlm_model_name=str(vlm_dir), load_vlm_weights=False, device="cpu", chunk_size=chunk, n_action_steps=chunk,
        num_steps=steps, resize_imgs_with_padding=(IMG, IMG), tokenizer_max_length=8, num_vlm_layers=2,
        num_expert_layers=-1, self_attn_every_n_layers=2, expert_width_multiplier=0.5, max_state_dim=32,
        max_action_dim=32, input_features={
            "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(STATE_DIM,)),
            f"observation.images.{CAMERA}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, IMG, IMG))},
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(ACTION_DIM,))})


def write_tiny_smolvla(directory: Path, chunk: int = 10, steps: int = 5, seed: int = 0) -> Path:
    """``directory/vlm`` (tiny VLM) and ``directory/pretrained_model`` (random SmolVLA + processors)."""
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy
    from lerobot.policies.smolvla.processor_smolvla import make_smolvla_pre_post_processors

    vlm = write_tiny_vlm(directory / "vlm")
    cfg = smolvla_config(vlm, chunk, steps)
    torch.manual_seed(seed)
    policy = SmolVLAPolicy(cfg)
    g = torch.Generator().manual_seed(seed + 1)
    stats = {
        "observation.state": {"mean": torch.randn(STATE_DIM, generator=g), "std": 0.5 + torch.rand(STATE_DIM, generator=g)},
        "action": {"mean": torch.randn(ACTION_DIM, generator=g), "std": 0.5 + torch.rand(ACTION_DIM, generator=g)},
        f"observation.images.{CAMERA}": {"mean": torch.full((3, 1, 1), 0.5), "std": torch.full((3, 1, 1), 0.25)},
    }
    pre, post = make_smolvla_pre_post_processors(cfg, dataset_stats=stats)
    out = directory / "pretrained_model"
    policy.save_pretrained(out)
    pre.save_pretrained(out)
    post.save_pretrained(out)
    return out
