"""Merge per-arm joint states into the one ``joint_states`` message the nodes read (ROS-free rule).

``chunk_executor`` and ``policy_inference`` read every joint of every arm from one topic. Many arm
drivers publish one topic per arm (ALOHA's Interbotix ``xs_sdk``: ``puppet_left/joint_states``,
``puppet_right/joint_states``, each with unprefixed names ``waist``, ..., ``gripper``). A merge that
fills a joint it has not heard from with a default (``joint_state_publisher`` fills 0.0) tells the
executor the arm stands at zero: its hold and its step-limit base would be wrong. This rule never does:

* every *required* joint (the ``joint_names`` of every arm, in that order) must have been heard in
  the **latest** message of some source; a source's message replaces everything that source said
  before (a joint it stops publishing is missing again);
* every source that provides a required joint must be **fresh**: its latest message was received at
  most ``max_age_s`` ago (by the receiver's clock), and its stamp advanced within ``max_age_s`` of
  receipts (a driver repeating a stuck sample under a frozen stamp is stale too). A message stamped before
  its source's previous one is rejected while that one is fresh (a second publisher on the topic, e.g. a
  leftover simulator or a bag played beside the driver, whose positions would alternate with the driver's).
  Otherwise nothing is published, and the reason
  names the missing joints or the stale sources; readers then see no new joint state (``policy_inference``
  stops planning once its newest joint state was received ``obs_timeout`` ago; the executor holds at the end
  of its chunk). The last published message can carry values up to ``max_age_s`` old: its stamp says so;
* a required joint in the latest messages of two sources stops the output (naming the joint and both
  sources) until one of them no longer lists it: the merge never chooses between two claims. Per-source
  name prefixes (``left_`` + ``waist``) tell apart drivers that use the same names; per-source
  exclusions drop a joint that a second driver also publishes (an arm driver listing a gripper that a
  gripper node publishes);
* a message whose ``position`` does not match ``name``, or has a non-finite position of a required
  joint, is rejected whole (its source keeps its previous message, which then ages out).

The merged message has the required joints only, in order; ``velocity`` / ``effort`` only when every
contributing message carries finite values for its required joints, else empty (``JointState`` allows
empty arrays). Its stamp is the **oldest** of the contributing messages' stamps (the caller gives an
unstamped message its receipt time): readers take it as the observation's time, and the oldest is the
time at which every value was already measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Collection, Mapping, Sequence


class MergeRejected(ValueError):
    """A source's message was not used; the message says why (field or joint named)."""


@dataclass(frozen=True)
class Merged:
    """One merged joint state: ``names`` (the required joints, in order), ``position`` per name,
    ``velocity`` / ``effort`` per name or empty, ``stamp_ns`` (the oldest contributing stamp)."""

    names: tuple[str, ...]
    position: tuple[float, ...]
    velocity: tuple[float, ...]
    effort: tuple[float, ...]
    stamp_ns: int


@dataclass
class _Latest:
    """A source's latest accepted message, reduced to its required joints (name -> value)."""

    position: dict[str, float]
    velocity: dict[str, float] | None
    effort: dict[str, float] | None
    stamp_ns: int
    recv_s: float
    unused: tuple[str, ...]  # its other joints (prefixed), for the diagnosis of a wrong prefix
    advanced_s: float = -math.inf  # receipt time at which its stamp last advanced


@dataclass
class JointStateMerge:
    """The merge rule for ``sources`` (topic names; ``prefixes`` per source, or empty for none;
    ``exclude``: per source, prefixed joint names to ignore in its messages).

    Call :meth:`update` per received message and :meth:`merged` to get the message to publish (or a
    :class:`NotReady` reason). ``max_age_s`` may be changed at run time.
    """

    sources: Sequence[str]
    required: Sequence[str]
    max_age_s: float
    prefixes: Sequence[str] = ()
    exclude: Mapping[str, Collection[str]] = field(default_factory=dict)
    latest: dict[str, _Latest] = field(default_factory=dict)
    #: per source, why its last message was rejected (cleared by its next accepted one)
    rejecting: dict[str, str] = field(default_factory=dict)
    rejected: int = 0

    def __post_init__(self) -> None:
        if not self.sources or len(set(self.sources)) != len(self.sources):
            raise ValueError(f"sources must be distinct topic names, got {list(self.sources)}")
        if self.prefixes and len(self.prefixes) != len(self.sources):
            raise ValueError(f"prefixes: {len(self.prefixes)} given for {len(self.sources)} sources")
        if not self.required or len(set(self.required)) != len(self.required):
            raise ValueError(f"required joints must be distinct names, got {list(self.required)}")
        if not (self.max_age_s > 0 and math.isfinite(self.max_age_s)):
            raise ValueError(f"max_age_s must be finite and > 0, got {self.max_age_s}")
        unknown = set(self.exclude) - set(self.sources)
        if unknown:
            raise ValueError(f"exclude names sources that are not sources: {sorted(unknown)}")
        self._prefix = dict(zip(self.sources, self.prefixes or [""] * len(self.sources)))
        self._used = {src: set(self.required) - set(self.exclude.get(src, ())) for src in self.sources}

    # ----------------------------------------------------------------------------- input
    def update(self, source: str, names: Sequence[str], position: Sequence[float], velocity: Sequence[float],
               effort: Sequence[float], stamp_ns: int, recv_s: float) -> None:
        """Take ``source``'s message (``JointState`` fields; ``stamp_ns`` its header stamp, ``recv_s`` its
        receipt on the merge's clock, e.g. ``time.monotonic()``). Raises :class:`MergeRejected` naming the
        field or joint; the source's previous message is then kept (and ages out)."""
        try:
            self._update(source, names, position, velocity, effort, stamp_ns, recv_s)
        except MergeRejected as exc:
            self.rejected += 1
            if source in self._prefix:
                self.rejecting[source] = str(exc)
            raise
        self.rejecting.pop(source, None)

    def _update(self, source: str, names: Sequence[str], position: Sequence[float], velocity: Sequence[float],
                effort: Sequence[float], stamp_ns: int, recv_s: float) -> None:
        if source not in self._prefix:
            raise MergeRejected(f"{source}: not one of the sources {list(self.sources)}")
        n = len(names)
        if len(position) != n:
            raise MergeRejected(f"{source}: 'position' has {len(position)} values for {n} names")
        for label, arr in (("velocity", velocity), ("effort", effort)):
            if len(arr) not in (0, n):
                raise MergeRejected(f"{source}: '{label}' has {len(arr)} values for {n} names (must be 0 or {n})")
        full = [self._prefix[source] + str(nm) for nm in names]
        if len(set(full)) != n:
            raise MergeRejected(f"{source}: 'name' lists a joint twice: {sorted(full)}")
        prev = self.latest.get(source)
        if prev is not None and stamp_ns < prev.stamp_ns and recv_s - prev.recv_s <= self.max_age_s:
            raise MergeRejected(f"{source}: header.stamp {stamp_ns * 1e-9:.3f} s is before its previous message's "
                                f"({prev.stamp_ns * 1e-9:.3f} s): a second publisher on this topic (a leftover "
                                "driver or simulator, a bag played)? its values would alternate with the other's")
        used = self._used[source]
        mine = [i for i, nm in enumerate(full) if nm in used]
        for i in mine:
            if not math.isfinite(position[i]):
                raise MergeRejected(f"{source}: position of {full[i]!r} is {position[i]} (must be finite)")

        def pick(arr: Sequence[float]) -> dict[str, float] | None:
            if len(arr) != n or not all(math.isfinite(arr[i]) for i in mine):
                return None
            return {full[i]: float(arr[i]) for i in mine}

        advanced = float(recv_s) if prev is None or stamp_ns != prev.stamp_ns else prev.advanced_s
        self.latest[source] = _Latest({full[i]: float(position[i]) for i in mine}, pick(velocity), pick(effort),
                                      int(stamp_ns), float(recv_s),
                                      tuple(nm for nm in full if nm not in self._used[source]), advanced)

    # ---------------------------------------------------------------------------- output
    def merged(self, now_s: float) -> "Merged | NotReady":
        """The merged joint state at ``now_s`` (the clock of ``recv_s``), or why there is none."""
        contributing = {s: m for s, m in self.latest.items() if m.position}
        claims: dict[str, list[str]] = {}
        for src, m in contributing.items():
            for nm in m.position:
                claims.setdefault(nm, []).append(src)
        conflicts = tuple((nm, tuple(srcs)) for nm, srcs in claims.items() if len(srcs) > 1)
        stale = tuple(sorted(s for s, m in contributing.items()
                             if now_s - min(m.recv_s, m.advanced_s) > self.max_age_s))
        missing = tuple(nm for nm in self.required if nm not in claims)
        if stale or missing or conflicts:
            return NotReady(missing=missing, stale=stale, conflicts=conflicts,
                            silent=tuple(s for s in self.sources if s not in self.latest and s not in self.rejecting),
                            rejecting=tuple(self.rejecting.items()),
                            unused=tuple(nm for m in self.latest.values() if not m.position for nm in m.unused))
        have = {nm: contributing[srcs[0]] for nm, srcs in claims.items()}
        used = list({id(m): m for m in have.values()}.values())

        def column(kind: str) -> tuple[float, ...]:
            if any(getattr(m, kind) is None for m in used):
                return ()
            return tuple(getattr(have[nm], kind)[nm] for nm in self.required)

        pos = tuple(have[nm].position[nm] for nm in self.required)
        return Merged(tuple(self.required), pos, column("velocity"), column("effort"), min(m.stamp_ns for m in used))

    def ages(self, now_s: float) -> dict[str, float]:
        """Seconds since each source's latest accepted message (``inf`` if none yet)."""
        return {s: (now_s - self.latest[s].recv_s) if s in self.latest else math.inf for s in self.sources}


def parse_exclusions(entries: Sequence[str], sources: Sequence[str]) -> dict[str, list[str]]:
    """``'TOPIC:JOINT'`` entries (JOINT with its source's prefix) -> ``{topic: [joint, ...]}`` for
    :class:`JointStateMerge`'s ``exclude``; ValueError naming the entry unless TOPIC is one of ``sources``."""
    out: dict[str, list[str]] = {}
    for item in entries:
        topic, sep, joint = item.rpartition(":")
        if not sep or topic not in sources or not joint.strip():
            raise ValueError(f"entry {item!r}: expected 'TOPIC:JOINT' with TOPIC one of {list(sources)}")
        out.setdefault(topic, []).append(joint)
    return out


def _some(names: Sequence[str], k: int = 6) -> list[str]:
    return list(names[:k]) + (["..."] if len(names) > k else [])


@dataclass(frozen=True)
class NotReady:
    """Why no merged joint state can be published: required joints claimed by two sources
    (``conflicts``: (joint, sources)), sources whose latest accepted message is older than ``max_age_s``
    (``stale``), required joints in no source's latest message (``missing``), sources never heard
    (``silent``) or whose last message was rejected (``rejecting``: (source, why)), and the joints of
    sources that gave none of the required ones (``unused``: a wrong prefix shows here)."""

    missing: tuple[str, ...]
    stale: tuple[str, ...]
    silent: tuple[str, ...]
    conflicts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rejecting: tuple[tuple[str, str], ...] = ()
    unused: tuple[str, ...] = ()

    def __str__(self) -> str:
        parts = []
        if self.conflicts:
            nm, srcs = self.conflicts[0]
            parts.append(f"{len(self.conflicts)} joint(s) published by two sources, e.g. {nm!r} by {list(srcs)} (each "
                         "joint must come from one source: source_prefixes or source_exclude)")
        if self.stale:
            parts.append(f"stale source(s) {list(self.stale)} (latest message, or its stamp, older than max_age_s)")
        if self.missing:
            parts.append(f"{len(self.missing)} joint(s) not heard: {_some(self.missing)}")
            if self.unused:
                parts.append(f"heard but not in joint_names: {_some(self.unused)}")
        parts.extend(f"last message rejected: {why}" for _, why in self.rejecting)
        if self.silent:
            parts.append(f"nothing received yet on {list(self.silent)}")
        return "; ".join(parts)
