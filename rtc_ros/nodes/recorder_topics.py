"""episode_recorder's view of the running episode's topics (the node is ``self``: these are its methods): the
messages DDS dropped, the required topics still silent, the topics whose publishers changed type -- written into the
episode's metadata at its close and shown in ``/diagnostics``."""

from __future__ import annotations

from typing import Any


def lost_in_episode(self: Any) -> dict[str, int]:
    """The messages DDS dropped during the running episode, per topic (sorted)."""
    start = self._lost_at_start
    return {t: n - start.get(t, 0) for t, n in sorted(self.discovery.lost.items()) if n > start.get(t, 0)}


def silent_topics(self: Any) -> list[str]:
    """The ``required_topics`` and ``camera_topics`` with no message in the running episode so far."""
    bag = self.session.bag
    return [] if bag is None else sorted(t for t in self._required if not bag.counts.get(t))


def note_lost(self: Any) -> None:
    """The messages DDS dropped during the running episode, per topic, into its metadata."""
    if self.session.recording and self.session.meta is not None:
        self.session.meta["messages_lost"] = self.lost_in_episode()


def note_missing_topics(self: Any) -> None:
    """Into the running episode's metadata: the ``required_topics`` and ``camera_topics`` with no message in it
    (``silent_topics``: a camera or driver off, a wrong name; event topics such as ``sim/protective_stops`` are not
    required, a review), and the topics whose publishers changed type (``dropped_topics``); logged."""
    if self.session.bag is None:
        return
    silent = self.silent_topics()
    if silent:
        self.session.meta["silent_topics"] = silent
        self.get_logger().warning(f"episode {self.session.meta.get('episode')}: no message on {silent} "
                                  "(required_topics, camera_topics): a camera or driver off, or a wrong name?")
    self.session.meta.setdefault("dropped_topics", {}).update(self.discovery.type_changed)
