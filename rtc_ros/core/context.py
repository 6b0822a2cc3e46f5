"""Observation contexts: what a policy's ``encode`` returns once per chunk and ``velocity`` takes per
step -- a tensor, or a tuple/list/dict of tensors (anything else is passed through unchanged), the
first dimension of every tensor being the batch."""

from __future__ import annotations

from typing import Any, Callable

import torch


def map_tensors(fn: Callable[[torch.Tensor], torch.Tensor], context: Any) -> Any:
    """Apply ``fn`` to every tensor of ``context`` (tensors, tuples, lists and dicts of them)."""
    if isinstance(context, torch.Tensor):
        return fn(context)
    if isinstance(context, tuple):
        return tuple(map_tensors(fn, c) for c in context)
    if isinstance(context, list):
        return [map_tensors(fn, c) for c in context]
    if isinstance(context, dict):
        return {k: map_tensors(fn, v) for k, v in context.items()}
    return context


def repeat_batch(context: Any, n: int) -> Any:
    """``(B, ...) -> (B * n, ...)`` for every tensor, each row repeated n times consecutively."""
    return map_tensors(lambda t: t.repeat_interleave(n, dim=0), context)
