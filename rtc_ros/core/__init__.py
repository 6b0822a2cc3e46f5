"""ROS-free core of Real-Time Chunking (RTC). numpy/torch only; imports nothing above it (torch only where used).

Conventions (stated once here and used everywhere in rtc_ros):

* Flow time ``tau`` runs from 0 (pure noise) to 1 (data). Sampling integrates
  ``A^{tau + 1/n} = A^tau + (1/n) v(A^tau, o, tau)`` with ``n`` Euler steps, tau in {0, 1/n, ...}.
  The training target is ``v = action - noise`` at ``x_tau = (1 - tau) noise + tau action``.
* A chunk has shape ``(H, M)``: ``H`` = prediction horizon, ``M`` = action dimension. Batched
  chunks are ``(B, H, M)``.
* Chunk index 0 is the action for the controller step at which the chunk's observation was taken
  (``a_{t|t}``).
* ``d`` = inference delay in controller steps: indices ``0 .. d-1`` of a new chunk run from the
  *previous* chunk before the new one can arrive, so they are frozen (prefix weight 1).
* ``s`` = execution horizon: the number of actions of a chunk executed before the next one takes over.
  The soft mask ends at ``H - s`` (the previous chunk has nothing beyond it).
* Simulated-delay protocol: ``d <= s <= H - d``. On the robot (Algorithm 1): ``s = max(d, s_min)``.
* Prefix padding beyond the previous chunk holds its last real action (never zeros in normalised
  space, which decode to the dataset mean).

Reading order (Algorithm 1 of the paper): masks -> prefix -> guidance -> sampling (the maths of GUIDEDINFERENCE)
-> delay (the queue ``Q`` of delays); baselines in bid and ensemble. The algorithm's three parts as the robot runs
them are in :mod:`rtc_ros.runtime`: GUIDEDINFERENCE ``generator.ChunkGenerator``, INFERENCELOOP
``inference_loop.InferenceLoopCore``, GETACTION ``executor.ExecutorCore`` (docs/architecture.md).
"""

from importlib import import_module
from typing import Any

#: the package's public names and their modules, imported on first use (PEP 562): the robot side (the executor,
#: delay bookkeeping, stats) imports ``rtc_ros.core.*`` without torch
_EXPORTS = {"prefix_weights": "masks", "build_prefix": "prefix", "guidance_weight": "guidance",
            "guided_velocity": "guidance", "sample_plain": "sampling", "sample_guided": "sampling",
            "sample_prefix_conditioned": "sampling"}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rtc_ros.core' has no attribute {name!r}")
    return getattr(import_module(f"rtc_ros.core.{_EXPORTS[name]}"), name)
