"""Vectorised training batches of the bimanual demo set (joints + one camera), with augmentation.

:meth:`rtc_ros.recording.demo_dataset.DemoDataset.batch_sampler` builds each observation row by row with
the inference node's :class:`~rtc_ros.policies.observation.ObservationBuilder` (the reference
layout). For the sim policy (joint entry, then one HWC camera image -- or a frame stack ``[t, h, w,
3]`` of that camera, newest first -- of the stored frame size, so no resize) this module builds the same normalised flat batch ``(B, O)`` with tensor indexing (a test
checks both give the same batch), and adds the augmentations:

* ``joint_noise_std`` (rad): Gaussian noise on the observed joints (as ``batch_sampler``);
* ``shift_px``: random image shifts (pad by replicating the border, random crop back; DrQ /
  Diffusion Policy's crop augmentation), one shift per sample; 0 = off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from rtc_ros.policies.base import Normalizer

if TYPE_CHECKING:
    from rtc_ros.recording.demo_dataset import DemoDataset
    from rtc_ros.policies.train import BatchSampler


def image_layout_of(ds: DemoDataset) -> tuple[str, int, tuple[int, int, int]]:
    """``(camera, joint_dim, (h, w, c))`` of a joints-then-one-HWC-image (or frame stack) obs_spec; the
    stack's frame count is ``ds.builder.camera_frames[camera]``.

    Raises:
        ValueError: any other layout (use ``DemoDataset.batch_sampler``), naming what differs.
    """
    entries = ds.builder.entries
    if len(entries) != 2 or entries[0].kind != "joints" or entries[1].kind != "image":
        raise ValueError(f"obs_spec must be [joints, one image], got {[(e.name, e.kind) for e in entries]}")
    img = entries[1]
    if img.chw or img.channels != 3:
        raise ValueError(f"obs_spec image entry '{img.name}' must be HWC with 3 channels, got {list(img.shape)}")
    frames = ds.frames[img.name]
    if frames and tuple(frames[0].shape) != (img.hw[0], img.hw[1], 3):
        raise ValueError(f"camera '{img.name}' frames are {frames[0].shape}, obs_spec says {list(img.shape)} "
                         "(no resize here)")
    return img.name, entries[0].size, (img.hw[0], img.hw[1], 3)


def random_shift(images: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """``images (B, h, w, c)`` each shifted by an integer offset in ``[-pad, pad]^2`` (edge-replicated)."""
    if pad <= 0:
        return images
    b, h, w, _ = images.shape
    padded = torch.nn.functional.pad(images.permute(0, 3, 1, 2), (pad, pad, pad, pad), mode="replicate")
    padded = padded.permute(0, 2, 3, 1)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None])[:, :, None]
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, :]
    return padded[torch.arange(b)[:, None, None], rows, cols]


def tensor_batch_sampler(ds: DemoDataset, normalizer: Normalizer, joint_noise_std: float = 0.0,
                         shift_px: int = 0) -> BatchSampler:
    """A :data:`rtc_ros.policies.train.BatchSampler` over ``ds``: uniform rows, normalised
    ``(obs (B, O), actions (B, H, M))``; see the module docstring.

    Raises:
        ValueError: a layout other than joints + one HWC image; a negative ``shift_px`` /
            ``joint_noise_std``.
    """
    if shift_px < 0:
        raise ValueError(f"shift_px must be >= 0, got {shift_px}")
    if joint_noise_std < 0:
        raise ValueError(f"joint_noise_std must be >= 0, got {joint_noise_std}")
    camera, n_joints, (h, w, c) = image_layout_of(ds)
    t = ds.builder.camera_frames[camera]
    frames = torch.from_numpy(np.stack(ds.frames[camera]).astype(np.uint8))  # (F, h, w, 3)
    stack = torch.from_numpy(ds.frame_stack(camera, np.arange(len(ds)), t))  # (N, t): newest first
    joints = torch.from_numpy(np.asarray(ds.joints, dtype=np.float32))
    acts = torch.from_numpy(normalizer.norm_actions(ds.actions))
    mean = torch.from_numpy(normalizer.obs_mean)
    std = torch.from_numpy(normalizer.obs_std)
    j_mean, j_std = mean[:n_joints], std[:n_joints]
    i_mean, i_std = mean[n_joints:].reshape(t, h, w, c), std[n_joints:].reshape(t, h, w, c)
    n = len(ds)

    def sample(batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, n, (batch,), generator=gen)
        q = joints[idx]
        if joint_noise_std > 0:
            q = q + joint_noise_std * torch.randn(q.shape, generator=gen)
        img = frames[stack[idx]].to(torch.float32) * (1.0 / 255.0)  # (B, t, h, w, c)
        # one shift per sample, the same for all its frames (the camera moved, not the scene)
        img = random_shift(img.permute(0, 2, 3, 1, 4).reshape(batch, h, w, t * c), shift_px, gen)
        img = (img.reshape(batch, h, w, t, c).permute(0, 3, 1, 2, 4) - i_mean) / i_std
        obs = torch.cat([(q - j_mean) / j_std, img.reshape(batch, -1)], dim=1)
        return obs, acts[idx]

    return sample
