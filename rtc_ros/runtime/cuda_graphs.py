"""CUDA-graph capture of the fixed-shape sampling loops: plain, RTC guided (with the exact VJP) and
training-time RTC's prefix-conditioned sampling.

A chunk's sampling loop has a fixed shape for a fixed batch, ``d`` and context layout: ``n_steps``
velocity evaluations (guided: each with one reverse-mode pass). On a GPU at batch 1 its cost is
dominated by kernel launches, which a CUDA graph replays in one go. :class:`GraphedSampler`
captures one graph per shape key (``torch.cuda.CUDAGraph`` with static input and output buffers:
the context tensors, the noise, the prefix and the weights are copied in, the output is cloned
out) and replays it.

* The input checks (finite noise and prefix, shapes, ``d``) run eagerly before the copy, by the same
  functions the eager samplers use (:func:`rtc_ros.core.sampling.check_inputs`); the captured
  programs are the samplers' own unchecked loops (``euler_plain``, ``euler_guided``,
  ``euler_prefix``), so a replay computes what the eager path computes.
* Capture failing (a velocity with a host sync, an unsupported op, no CUDA), or a context holding
  something other than tensors, containers of them and plain scalars, is logged once and the
  sampler disables itself: every later call returns None and the caller samples eagerly.
* More than :data:`MAX_GRAPHS` shape keys (e.g. a benchmark batch shrinking as episodes end): the
  new keys run eagerly (logged once).
* BID is not captured (its candidate noise is drawn inside; it stays eager).

``capture=False`` is a dry run for CPU tests: the same static buffers and programs, run without a
graph. Status: written and tested on CPU only (dry run and the failure fallback); the CUDA path has
not run on a GPU yet (no GPU was lent to the task that wrote it, 2026-12-02).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import torch

from rtc_ros.core.context import map_tensors
from rtc_ros.core.guidance import JacobianMode, VelocityFn
from rtc_ros.core.masks import check_delay
from rtc_ros.core.sampling import check_inputs, euler_guided, euler_plain, euler_prefix

log = logging.getLogger(__name__)

#: most graphs one sampler keeps (one per shape key); later keys run eagerly
MAX_GRAPHS = 32
#: eager runs on a side stream before capture (lazy initialisation, cuBLAS workspaces, autograd)
WARMUP_RUNS = 3

Program = Callable[..., torch.Tensor]


def _tensors(context: Any) -> list[torch.Tensor]:
    """The tensors of a context, in a fixed order."""
    out: list[torch.Tensor] = []
    map_tensors(lambda t: out.append(t) or t, context)
    return out


def _signature(t: torch.Tensor) -> tuple[Any, ...]:
    return tuple(t.shape), t.dtype, str(t.device)


def _layout(context: Any) -> str | None:
    """A key for the context's structure, tensor shapes, dtypes and devices; None when it holds anything
    but tensors, containers of them and plain scalars (an object such as a KV-cache class may hold
    tensors a graph would bake in without copying them: not captured)."""
    if isinstance(context, torch.Tensor):
        return repr(_signature(context))
    if context is None or isinstance(context, (bool, int, float, str)):
        return repr(context)
    if isinstance(context, (tuple, list)):
        parts = [_layout(c) for c in context]
        return None if None in parts else f"{type(context).__name__}({','.join(parts)})"  # type: ignore[arg-type]
    if isinstance(context, dict):
        items = [(repr(k), _layout(v)) for k, v in context.items()]
        return None if any(v is None for _, v in items) else "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    return None


class _Graph:
    """One captured program with its static buffers (``capture=False``: the buffers only)."""

    def __init__(self, program: Program, context: Any, inputs: dict[str, torch.Tensor], capture: bool) -> None:
        self.program = program
        self.context = map_tensors(lambda t: t.detach().clone(), context)
        self.inputs = {k: v.detach().clone() for k, v in inputs.items()}
        self.graph: Any = None
        self.out: torch.Tensor | None = None
        # the inputs' device: streams, capture and replay on it (not on the current device, cuda:0,
        # which would leave a cuda:1 policy's kernels outside the graph)
        self.device = next(iter(self.inputs.values())).device
        if capture:
            with torch.cuda.device(self.device):
                stream = torch.cuda.Stream(device=self.device)
                stream.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(stream):
                    for _ in range(WARMUP_RUNS):
                        program(self.context, **self.inputs)
                torch.cuda.current_stream(self.device).wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                # default (global) capture mode, as PyTorch's documented whole-network capture with backward
                with torch.cuda.graph(graph):
                    self.out = program(self.context, **self.inputs)
            self.graph = graph

    def run(self, context: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        for dst, src in zip(_tensors(self.context), _tensors(context)):
            dst.copy_(src)
        for k, v in inputs.items():
            self.inputs[k].copy_(v)
        if self.graph is None:
            return self.program(self.context, **self.inputs).detach().clone()
        with torch.cuda.device(self.device):
            self.graph.replay()
        assert self.out is not None
        return self.out.detach().clone()


class GraphedSampler:
    """The three fixed-shape samplers of one velocity field, captured per shape key.

    Args:
        velocity: ``velocity(a_tau (B,H,M), context, tau (B,) or (B,H)) -> (B,H,M)`` (must not sync
            with the host, e.g. no ``.item()`` / ``.tolist()`` / data-dependent shapes, else capture
            fails and the sampler falls back to eager).
        n_steps: Euler steps. beta: guidance clip. jacobian: ``exact`` (RTC) or ``identity_approx``.
        capture: capture CUDA graphs (inputs on a CUDA device); False: dry run (static buffers, no
            graph; for tests on CPU).

    Each method returns the ``(B, H, M)`` chunk in the policy's action space, or None when the
    caller must sample eagerly (capture failed earlier or now, or too many shape keys).
    """

    def __init__(self, velocity: VelocityFn, n_steps: int, beta: float = 5.0, jacobian: JacobianMode = "exact",
                 capture: bool = True) -> None:
        self.velocity, self.n_steps, self.beta, self.jacobian = velocity, int(n_steps), float(beta), jacobian
        self.capture = capture
        self.graphs: dict[tuple[Any, ...], _Graph] = {}
        self.disabled_reason: str | None = None
        self._full_logged = False

    # ------------------------------------------------------------------------------ samplers
    def plain(self, context: Any, noise: torch.Tensor) -> torch.Tensor | None:
        """:func:`rtc_ros.core.sampling.sample_plain`, captured; ``noise (B, H, M)``."""
        check_inputs(noise, self.n_steps)
        n = self.n_steps

        def program(ctx: Any, noise: torch.Tensor) -> torch.Tensor:
            return euler_plain(self.velocity, ctx, noise, n)

        return self._run(("plain",), program, context, {"noise": noise})

    def guided(self, context: Any, noise: torch.Tensor, prefix: torch.Tensor,
               weights: torch.Tensor) -> torch.Tensor | None:
        """:func:`rtc_ros.core.sampling.sample_guided`, captured (the VJP included); ``noise`` and
        ``prefix (B, H, M)`` (or prefix ``(H, M)``), ``weights (H,)`` or ``(B, H)``."""
        check_inputs(noise, self.n_steps)
        if not torch.isfinite(prefix).all():
            raise ValueError("prefix contains NaN or Inf")
        n, beta, jac = self.n_steps, self.beta, self.jacobian

        def program(ctx: Any, noise: torch.Tensor, prefix: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
            return euler_guided(self.velocity, ctx, noise, prefix, weights, beta, n, jac)

        return self._run(("guided",), program, context, {"noise": noise, "prefix": prefix, "weights": weights})

    def trained(self, context: Any, noise: torch.Tensor, prefix: torch.Tensor, d: int) -> torch.Tensor | None:
        """:func:`rtc_ros.core.sampling.sample_prefix_conditioned`, captured per ``d``."""
        check_inputs(noise, self.n_steps)
        B, H, M = noise.shape
        y = prefix.to(dtype=noise.dtype, device=noise.device)
        y = y.expand(B, H, M) if y.ndim == 2 else y
        if y.shape != noise.shape:
            raise ValueError(f"prefix must be ({H}, {M}) or ({B}, {H}, {M}), got {tuple(prefix.shape)}")
        d = check_delay(d, 0, H)[0]
        if d == 0:
            return self.plain(context, noise)
        if not torch.isfinite(y[:, :d]).all():
            raise ValueError("prefix contains NaN or Inf")
        n = self.n_steps

        def program(ctx: Any, noise: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
            return euler_prefix(self.velocity, ctx, noise, prefix, d, n)

        return self._run(("trained", d), program, context, {"noise": noise, "prefix": y})

    # ------------------------------------------------------------------------------ capture
    def _run(self, kind: tuple[Any, ...], program: Program, context: Any,
             inputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if self.disabled_reason is not None:
            return None
        layout = _layout(context)
        if layout is None:
            self.disabled_reason = f"the policy's context holds a non-tensor object ({type(context).__name__})"
            log.warning("CUDA graphs not used: %s; sampling eagerly", self.disabled_reason)
            return None
        key = kind + (layout,) + tuple((k,) + _signature(v) for k, v in inputs.items())
        graph = self.graphs.get(key)
        if graph is None:
            if len(self.graphs) >= MAX_GRAPHS:
                if not self._full_logged:
                    log.warning("CUDA graphs: %d shapes captured already; new shapes (%s) run eagerly",
                                MAX_GRAPHS, kind[0])
                    self._full_logged = True
                return None
            try:
                graph = _Graph(program, context, inputs, self.capture)
            except Exception as exc:  # noqa: BLE001 -- any capture failure means: sample eagerly
                self.disabled_reason = f"{type(exc).__name__}: {exc}"
                log.warning("CUDA graph capture failed (%s); sampling eagerly from now on", self.disabled_reason)
                self.graphs.clear()
                return None
            self.graphs[key] = graph
        return graph.run(context, inputs)
