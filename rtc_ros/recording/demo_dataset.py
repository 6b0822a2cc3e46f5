"""A flow-policy training set built from demonstrations: samples, their observations and batches (ROS-free).

:class:`DemoDataset` is what :func:`rtc_ros.recording.dataset.build_dataset` returns: compact joint rows,
uint8 frames with per-row frame indices, and target chunks (index 0 = the observation's step). Each
observation is built per batch, exactly as ``policy_inference`` builds it
(:class:`rtc_ros.policies.observation.ObservationBuilder`): a frame-stack entry gets the sample's frame and
the frames recorded before it on the same topic, newest first (the first repeated at an episode's start);
a joint-history entry ``[t, M]`` gets the joint positions of the sample's steps ``k, k - 1, ...`` in its
episode, and then the frame stacks hold those steps' frames too (the node times both ``dt`` apart).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from rtc_ros.policies.base import Normalizer
from rtc_ros.policies.observation import ObservationBuilder


class DatasetError(ValueError):
    """The bags cannot produce the requested training set (names, topics, sizes); says why."""


@dataclass
class DemoDataset:
    """A training set of N samples (see the module docstring for how rows are paired).

    Attributes:
        joints: ``(N, M)`` float32 measured joint positions of the observation, action joint order.
        frames: camera name -> its uint8 ``(h, w, 3)`` frames (all episodes).
        frame_index: camera name -> ``(N,)`` index into ``frames[camera]`` of each sample's frame.
        frame_prev: camera name -> ``(F,)`` index of the frame recorded before each frame on its topic
            in the same episode (itself for an episode's first frame); empty = none recorded.
        actions: ``(N, H, M)`` float32 target chunks (index 0 = the observation's step).
        episode: ``(N,)`` episode number. step: ``(N,)`` grid step k of the sample in its episode.
        joint_names: the M action joints. obs_spec: the observation layout. dt: controller period (s).
        episodes: episode names. sources: per episode, where actions came from and sample counts.
    """

    joints: np.ndarray
    frames: dict[str, list[np.ndarray]]
    frame_index: dict[str, np.ndarray]
    actions: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    joint_names: list[str]
    obs_spec: list[dict[str, Any]]
    dt: float
    episodes: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    frame_prev: dict[str, np.ndarray] = field(default_factory=dict)

    def frame_stack(self, camera: str, rows: np.ndarray, frames: int) -> np.ndarray:
        """``(n, frames)`` indices into ``frames[camera]`` of each row's newest ``frames`` frames, newest first."""
        idx = np.asarray(self.frame_index[camera])[np.asarray(rows)]
        prev = self.frame_prev.get(camera)
        cols = [idx]
        for _ in range(frames - 1):
            idx = idx if prev is None or not len(prev) else prev[idx]
            cols.append(idx)
        return np.stack(cols, axis=1)

    def step_rows(self, rows: np.ndarray, t: int) -> np.ndarray:
        """``(n, t)`` rows of each row's step and its ``t - 1`` steps before in the same episode, newest first;
        where the episode has no such step (its start) the older is repeated (a joint history's rows, and with
        one the frame stacks', ``dt`` apart as ``policy_inference`` keeps them)."""
        rows = np.asarray(rows)
        index = self.__dict__.get("_row_of")
        if index is None:
            index = self.__dict__["_row_of"] = {(int(e), int(k)): i for i, (e, k) in
                                                enumerate(zip(self.episode, self.step))}
        cols = [rows]
        for i in range(1, t):
            cols.append(np.array([index.get((int(self.episode[r]), int(self.step[r]) - i), c)
                                  for r, c in zip(rows, cols[-1])], dtype=np.intp))
        return np.stack(cols, axis=1)

    def __len__(self) -> int:
        return int(self.joints.shape[0])

    @property
    def builder(self) -> ObservationBuilder:
        b = self.__dict__.get("_builder")
        if b is None:
            b = self.__dict__["_builder"] = ObservationBuilder(self.obs_spec, len(self.joint_names))
        return b

    def observations(self, rows: np.ndarray | None = None, joints: np.ndarray | None = None) -> np.ndarray:
        """Raw flat observations ``(n, O)`` float32 of ``rows`` (default: all).

        ``joints`` ``(n, M)`` replaces the recorded joint positions of those rows (augmentation; a joint history's
        older rows move with them, so its velocity is the recorded one).
        """
        rows = np.arange(len(self)) if rows is None else np.asarray(rows)
        q = self.joints[rows] if joints is None else np.asarray(joints, dtype=np.float32)
        out = np.empty((len(rows), self.builder.obs_dim), dtype=np.float32)
        depth = self.builder.camera_frames
        if (t := self.builder.joint_history) > 1:  # (n, t, M) newest first; frame stacks by step like it
            q = self.joints[self.step_rows(rows, t)] + (q - self.joints[rows])[:, None, :]
            stacks = {c: np.asarray(self.frame_index[c])[self.step_rows(rows, depth.get(c, 1))] for c in self.frames}
        else:
            stacks = {c: self.frame_stack(c, rows, depth.get(c, 1)) for c in self.frames}
        for n in range(len(rows)):
            out[n] = self.builder.build(q[n], {c: [self.frames[c][i] for i in stacks[c][n]] for c in self.frames})
        return out

    def iter_observations(self, batch: int = 1024) -> Iterator[np.ndarray]:
        """All observations in batches of ``batch`` rows (for streaming statistics)."""
        for i in range(0, len(self), batch):
            yield self.observations(np.arange(i, min(i + batch, len(self))))

    def fit_normalizer(self, vector_std_floor: float = 1e-6, image_std_floor: float = 1e-6,
                       action_std_floor: float = 1e-6) -> Normalizer:
        """Per-entry statistics (per joint, per image channel) of this dataset's observations and actions."""
        from rtc_ros.policies.stats import fit_normalizer

        return fit_normalizer(self.iter_observations(), self.actions, self.obs_spec, vector_std_floor,
                              image_std_floor, action_std_floor)

    def batch_sampler(self, normalizer: Normalizer, joint_noise_std: float = 0.0) -> Any:
        """A :data:`rtc_ros.policies.train.BatchSampler`: uniform rows, normalised ``(obs, actions)``.

        ``joint_noise_std`` (rad): Gaussian noise added to the observed joint positions.
        """
        import torch

        acts = torch.from_numpy(normalizer.norm_actions(self.actions))
        M = len(self.joint_names)

        def sample(batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            idx = torch.randint(0, len(self), (batch,), generator=gen)
            rows = idx.numpy()
            q = self.joints[rows]
            if joint_noise_std > 0:
                q = q + joint_noise_std * torch.randn((batch, M), generator=gen).numpy()
            return torch.from_numpy(normalizer.norm_obs(self.observations(rows, q))), acts[idx]

        return sample
