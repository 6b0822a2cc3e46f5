"""policy_inference's view of the link to chunk_executor: do its reports (``rtc/executor_state``) come?

Without them nothing is planned (Algorithm 1 starts from the executor's step and chunk), so a wrong
namespace or ROS domain, an executor that stopped, or a network between the machines that dropped
would leave the policy node quiet and its diagnostics green. :meth:`ExecutorLink.silence` says why.
"""

from __future__ import annotations

from collections.abc import Callable

#: no report at all this long after the start: say so
FIRST_REPORT_S = 2.0
#: the newest report older than this: say so (the executor reports every tick, 20 ms at 50 Hz)
REPORT_GAP_S = 1.0


class ExecutorLink:
    """``topic``: the resolved report topic; ``count_publishers``: the graph's count of its publishers;
    ``started``: the node's start (monotonic s)."""

    def __init__(self, topic: str, count_publishers: Callable[[str], int], started: float) -> None:
        self.topic, self._count, self.started = topic, count_publishers, float(started)

    def silence(self, received: float, now: float) -> str | None:
        """Why the reports do not come, or None. ``received``: the newest report's receipt (monotonic s, 0 =
        none yet); ``now``: monotonic s."""
        if received == 0.0 and now - self.started > FIRST_REPORT_S:
            n = self._count(self.topic)
            why = ("nobody publishes it: is chunk_executor running, in this namespace and ROS domain?" if n == 0
                   else f"although {n} node(s) publish it: chunk_executor reports once it has a hold position (joint "
                        "states with every joint, within its limits: see its log), or QoS / a network drops them"
                   if n == 1 else f"{n} nodes publish it: several executors, each commanding nothing while another "
                                  "publishes (stop all but one)")
            return f"no {self.topic} received in {now - self.started:.0f} s {why}"
        if received > 0.0 and now - received > REPORT_GAP_S:
            return (f"the newest {self.topic} is {now - received:.1f} s old (the executor stopped, waits for joint "
                    "states after a re-sync, is muted by another publisher on its outputs, or the network to it failed?)")
        return None
