"""Sampling settings of the Figure 5 harness, and the one chunk generator built from them.

The harness samples through :class:`rtc_ros.runtime.generator.ChunkGenerator`, the same generator
``policy_inference`` runs on the robot (one method table, one prefix builder, the same BID
settings); this module only holds the sweep-wide settings and builds a generator per method.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtc_ros.policies.spec import LoadedPolicy
from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig
from rtc_ros.runtime.methods import check_method

#: the paper's methods of the simulated benchmark (names of :mod:`rtc_ros.runtime.methods`;
#: ``te_sparse``: a chunk every ``s`` steps, averaged over the ones that have arrived, was called ``te``
#: before); the sweep's default
PAPER_METHODS: tuple[str, ...] = ("rtc", "rtc_linear", "rtc_hard", "naive", "bid", "te_sparse")
#: every method the harness runs: the paper's plus training-time RTC (``rtc_trained``, arXiv
#: 2512.05964), whose policies are trained by the same recipe plus prefix conditioning
BENCH_METHODS: tuple[str, ...] = PAPER_METHODS + ("rtc_trained",)


def check_bench_method(method: str) -> str:
    if method not in BENCH_METHODS:
        raise ValueError(f"unknown benchmark method {method!r}; expected one of {BENCH_METHODS}")
    return check_method(method)


@dataclass(frozen=True)
class SamplerConfig:
    """Sampling settings shared by all methods (paper values by default).

    Attributes:
        n_steps: Euler steps (5). beta: guidance clip (5). bid_samples: N (32). bid_k: K (3).
        compile_methods: methods whose velocity networks are wrapped in ``torch.compile``
        (``dynamic=True``; falls back to eager if compilation fails). Measured on this 2-core VM at
        batch 2048, one thread: a plain 5-step chunk 222 -> 93 ms, an RTC chunk (forward + VJP)
        317 -> 195 ms, BID about 5x; the one-off compile takes seconds per process.
    """

    n_steps: int = 5
    beta: float = 5.0
    bid_samples: int = 32
    bid_k: int = 3
    compile_methods: tuple[str, ...] = ()

    def generator(self, method: str, policy: LoadedPolicy, weak: LoadedPolicy | None) -> ChunkGenerator:
        """The chunk generator of ``method`` with these settings (``rtc_trained``: ``policy`` must be the
        task's prefix-conditioned policy, :func:`rtc_ros.benchmarks._policies.get_trained_rtc_policy`)."""
        check_bench_method(method)
        cfg = GeneratorConfig(method=method, beta=self.beta, n_steps=self.n_steps, bid_samples=self.bid_samples,
                              bid_k=self.bid_k, compile=method in self.compile_methods)
        return ChunkGenerator(policy, cfg, weak if method == "bid" else None)
