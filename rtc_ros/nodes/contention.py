"""Other publishers on chunk_executor's outputs: a second executor (a leftover process, a launch file
started on two machines) or another node (a teleop, rqt's trajectory GUI) commanding the same
controllers. Two command streams 10 ms apart make the controller jump between them by more than
either's ``max_step``, so the executor stops commanding while one exists (:class:`OutputGuard`).
policy_inference checks its chunk topic the same way (:class:`OutputContention`): a second policy node
would take turns driving the robot, so both plan nothing while both exist.

Read from the ROS graph (``get_publishers_info_by_topic``): cheap, once per check. A publisher of a
process killed without a clean shutdown (SIGKILL, a power cut) stays in the graph of the processes that
saw it until its DDS lease ends (20 s with Fast DDS); a process started afterwards does not see it.
"""

from __future__ import annotations

from typing import Any

#: seconds between two checks of the graph
CHECK_PERIOD_S = 0.5


class OutputContention:
    """The topics ``topics`` (fully qualified, as published by ``node``; one publisher per entry: two arms
    may share a topic) and who else publishes on them."""

    def __init__(self, node: Any, topics: list[str]) -> None:
        self.node, self.topics = node, list(topics)
        self.own = node.get_fully_qualified_name()

    def others(self) -> dict[str, list[str]]:
        """``{topic: [other publishers' node names]}`` for every topic with more than this node's publishers."""
        found: dict[str, list[str]] = {}
        for topic in dict.fromkeys(self.topics):
            mine = self.topics.count(topic)
            infos = self.node.get_publishers_info_by_topic(topic)
            if len(infos) <= mine:
                continue
            names = [node_fq_name(i.node_namespace, i.node_name) for i in infos]
            for _ in range(mine):  # this node's own publishers
                if self.own in names:
                    names.remove(self.own)
                else:
                    names.pop(0)  # ours not listed under its name (should not happen): count, do not name
            found[topic] = names
        return found


class OutputGuard:
    """The rule, for the chunk_executor node ``node`` (its core, stop recovery, ``_measure_again`` and logger):
    another publisher on an output, or a controller on one that would apply the commands to other joints
    (``controllers``: :meth:`rtc_ros.nodes.controller_check.ControllerCheck.wrong`) -> the core is muted
    (:meth:`ExecutorCore.set_muted`: re-synced, every tick silent, ``~/resume`` refused) while it is there. Gone
    again: the core is re-synced once more and unmuted; an executor that had never commanded (started beside
    another one) then resumes as after a start, one that had stays paused until ``~/resume``."""

    def __init__(self, node: Any, topics: list[str], controllers: Any = None) -> None:
        self.node, self._graph, self._controllers = node, OutputContention(node, topics), controllers
        self.contended: dict[str, list[str]] = {}  # another publisher: topic -> its nodes
        self.wrong: dict[str, str] = {}  # a controller of other joints: its node -> why
        self.ever_commanded = False  # set by the node when it publishes an arm command
        self._resume_after = False
        self._pauses = 0  # the core's operator_pauses when it was muted (one since: an operator's pause is kept)
        self._why = ""  # why it was muted (said while paused after it)

    @property
    def muted(self) -> bool:
        return bool(self.contended or self.wrong)

    def text(self) -> str:
        return "; ".join([contention_text(self.contended, self._graph.own)] * bool(self.contended)
                         + list(self.wrong.values()))

    def check(self) -> None:
        """Read the graph and apply the rule (call it every :data:`CHECK_PERIOD_S`)."""
        node, core, log = self.node, self.node.core, self.node.get_logger()
        was, had_others = self.muted, bool(self.contended)
        self.contended = self._graph.others()
        self.wrong = self._controllers.wrong() if self._controllers is not None else {}
        if self.muted and not was:
            self._resume_after = not self.ever_commanded and not core.paused
            self._pauses = core.stats.operator_pauses
            self._why = "another publisher on the outputs" if self.contended else "a controller of other joints"
            core.set_muted(True, why=self._why)
            node._measure_again()
            node._throttled("contended", 10.0)  # the next "still" line in 10 s
            log.error(f"{self.text()}: commanding nothing, chunks dropped; " + (
                "stop the other publisher (two command streams make the arm jump)" if self.contended else
                "fix the controller's joints or the arm's joint_names"))
        elif self.muted:
            if node._throttled("contended", 10.0):
                log.error(f"still {self.text()}: commanding nothing")
        elif was:
            stopped = node._recovery.stopped  # a protective stop: resume (if at all) when it ends
            unheard = not node._dry and bool(node._unheard_commands())  # (the wrong controller unloaded, none yet:
            # not into nothing, as ~/resume is refused then -- a review)
            paused_meanwhile = core.stats.operator_pauses != self._pauses  # (~/pause or ~/hold while muted: answered
            # "already paused ... until ~/resume", and an audit saw the unmute start the arm all the same)
            self._resume_after = self._resume_after and not unheard and not paused_meanwhile
            core.set_muted(False, resume=self._resume_after and not stopped, why=self._why)
            if self._resume_after and stopped:
                node._recovery.request(resume=True)
            node._measure_again()
            going = ("starting as after a start" if self._resume_after else
                     "paused until ~/resume (nobody subscribes a command topic yet)" if unheard else
                     "paused until ~/resume (an operator paused it meanwhile)" if paused_meanwhile else
                     "paused until ~/resume")
            log.warn(("no other publisher on the outputs any more" if had_others else
                      "the controllers on the outputs take the executor's joints now") + f": {going}")


def contention_text(others: dict[str, list[str]], own: str) -> str:
    """One line naming each topic and its other publishers."""
    parts = []
    for topic, names in others.items():
        who = ", ".join(sorted(set(names))) or "unknown"
        if own in names:
            who += " (this node's name: another process of it, or one killed less than a DDS lease ago)"
        parts.append(f"{topic} (also published by {who})")
    return "another publisher on " + "; ".join(parts)


def node_fq_name(namespace: str, name: str) -> str:
    """A graph endpoint's node as ``/ns/name`` (``?`` when the graph does not name it)."""
    return (namespace.rstrip("/") + "/" + name) if name else "?"


def check_producers(node: Any) -> None:
    """policy_inference's periodic check (every :data:`CHECK_PERIOD_S`): more than one publisher on its joint
    states (warned), another chunk producer (``node.other_producers``: nothing is planned, an error)."""
    n, node.joint_state_publishers = node.joint_state_publishers, node.count_publishers(node._joint_topic)
    if node.joint_state_publishers > 1 and (n <= 1 or node._throttled("joint_publishers", 30.0)):
        node.get_logger().warn(f"{node.joint_state_publishers} publishers on {node._joint_topic}: observations "
                               "alternate between them if both publish these joints (a joint_state_publisher? a "
                               "driver just restarted: the old one counts until DDS drops it, ~20 s)")
    others, was = node._producers.others(), bool(node.other_producers)
    node.other_producers = others
    if others and (not was or node._throttled("producers", 10.0)):
        node.get_logger().error(f"not planning: {contention_text(others, node._producers.own)} (two policies "
                                "would take turns driving the robot: stop one)")
    elif was and not others:
        node.get_logger().warn("no other publisher on the chunk topic any more: planning again")
