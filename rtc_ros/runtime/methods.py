"""The one method table: how each execution method samples a chunk and how the executor runs it.

Used by the nodes, the params schema and the Figure 5 harness alike.

=============  ======================  =====================================================
method         how a chunk is sampled  how the executor runs it
=============  ======================  =====================================================
rtc            guided, exp soft mask   switch to the new chunk at the consumed-delay index
rtc_linear     guided, linear mask     switch
rtc_hard       guided, hard mask       switch (ablation)
rtc_trained    prefix-conditioned      switch (training-time RTC: the prefix is given, no VJP)
naive          plain                   switch (naive async: ignores the old chunk)
bid            BID selection           switch
sync           plain                   pause: execute s actions, wait, start new chunk at 0
te_sparse      plain, every s steps    temporal ensembling (average overlapping predictions)
te_dense       plain, as often as can  temporal ensembling
=============  ======================  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ExecMode = Literal["switch", "sync", "ensemble"]
Sampling = Literal["guided", "bid", "plain", "trained"]


@dataclass(frozen=True)
class MethodInfo:
    """One row of the table.

    Attributes:
        sampling: ``guided`` (RTC inpainting), ``bid`` (bidirectional decoding), ``trained``
            (training-time RTC: the first ``d`` actions given at flow time 1; needs a policy trained
            with prefix conditioning, spec field ``training.prefix_conditioning >= d``) or ``plain``.
        schedule: prefix-weight schedule of guided methods (and BID's backward loss): exp/linear/hard.
        exec_mode: ``switch``, ``sync`` or ``ensemble`` (see :mod:`rtc_ros.runtime.executor`).
        dense: infer as often as possible (trigger index 1) instead of after ``s_min`` actions.
    """

    sampling: Sampling
    schedule: str
    exec_mode: ExecMode
    dense: bool = False

    @property
    def uses_prefix(self) -> bool:
        """Whether sampling needs the executing chunk's remaining actions."""
        return self.sampling in ("guided", "bid", "trained")


METHOD_TABLE: dict[str, MethodInfo] = {
    "rtc": MethodInfo("guided", "exp", "switch"),
    "rtc_linear": MethodInfo("guided", "linear", "switch"),
    "rtc_hard": MethodInfo("guided", "hard", "switch"),
    "rtc_trained": MethodInfo("trained", "none", "switch"),
    "naive": MethodInfo("plain", "none", "switch"),
    "bid": MethodInfo("bid", "exp", "switch"),
    "sync": MethodInfo("plain", "none", "sync"),
    "te_sparse": MethodInfo("plain", "none", "ensemble"),
    "te_dense": MethodInfo("plain", "none", "ensemble", dense=True),
}
METHODS: tuple[str, ...] = tuple(METHOD_TABLE)
Method = Literal["rtc", "rtc_linear", "rtc_hard", "rtc_trained", "naive", "bid", "sync", "te_sparse", "te_dense"]


def check_method(method: str) -> str:
    """Return ``method`` or raise ValueError listing the known ones."""
    if method not in METHOD_TABLE:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    return method


def method_info(method: str) -> MethodInfo:
    return METHOD_TABLE[check_method(method)]


def executor_mode(method: str) -> ExecMode:
    """How the executor consumes chunks for ``method``."""
    return method_info(method).exec_mode
