"""The execution methods compared in the paper, and what each means for sampler and executor.

=============  ======================  =====================================================
method         how a chunk is sampled  how the executor runs it
=============  ======================  =====================================================
rtc            guided, exp soft mask   switch to the new chunk at the consumed-delay index
rtc_linear     guided, linear mask     switch
rtc_hard       guided, hard mask       switch (ablation)
naive          plain                   switch (naive async: ignores the old chunk)
bid            BID selection           switch
sync           plain                   pause: execute s actions, wait, start new chunk at 0
te_sparse      plain, every s steps    temporal ensembling (average overlapping predictions)
te_dense       plain, as often as can  temporal ensembling
=============  ======================  =====================================================
"""

from __future__ import annotations

from typing import Literal

Method = Literal["rtc", "rtc_linear", "rtc_hard", "naive", "bid", "sync", "te_sparse", "te_dense"]
METHODS: tuple[str, ...] = ("rtc", "rtc_linear", "rtc_hard", "naive", "bid", "sync", "te_sparse", "te_dense")

#: prefix-weight schedule of each guided method
GUIDED_SCHEDULE: dict[str, str] = {"rtc": "exp", "rtc_linear": "linear", "rtc_hard": "hard"}


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    return method


def executor_mode(method: str) -> Literal["switch", "sync", "ensemble"]:
    """How the executor consumes chunks for ``method``."""
    check_method(method)
    if method == "sync":
        return "sync"
    if method.startswith("te_"):
        return "ensemble"
    return "switch"
