"""Which per-arm command topic feeds which part of the action vector (training from bags).

Unnamed commands (``std_msgs/Float64MultiArray``, one topic per arm) are concatenated in topic order and
read by position, so that order must be the action order (``arms`` in the params file): each per-arm
controller topic (``<arm>_controller/...``) goes where the first action joint named after its arm is.
"""

from __future__ import annotations

import re


def arm_of_topic(topic: str) -> str | None:
    """``left`` for ``/robot1/left_controller/commands``: the arm a per-arm controller topic drives."""
    parts = [p for p in topic.strip("/").split("/") if p.endswith("_controller")]
    return parts[-1][: -len("_controller")] or None if len(parts) == 1 else None


def first_joint_of_arm(arm: str, names: list[str]) -> int | None:
    """Index of the first action joint named after ``arm`` as a whole word (``left`` in ``left_waist`` or
    ``vx300s_left/j0``; ``left_arm`` in ``left_arm_waist``); else after a part of the arm's name, longest
    first (``left_arm`` -> ``left`` in ``left_waist``; ``vx300s_left`` -> ``left``). None when no joint is."""
    words = arm.split("_")
    parts = ["_".join(words[i:i + size]) for size in range(len(words), 0, -1) for i in range(len(words) - size + 1)]
    for part in parts:
        pattern = re.compile(rf"(^|[_/\-]){re.escape(part)}([_/\-]|$)")
        hits = [i for i, n in enumerate(names) if pattern.search(n)]
        if hits:
            return hits[0]
    return None


def arm_order(topics: list[str], names: list[str]) -> list[str] | None:
    """``topics`` in action order (one per arm, each placed at :func:`first_joint_of_arm`), or None when
    that cannot be told (a topic with no arm word, two topics at the same joint). One topic: itself."""
    if len(topics) < 2:
        return list(topics)
    first: dict[str, int] = {}
    for t in topics:
        arm = arm_of_topic(t)
        i = None if arm is None else first_joint_of_arm(arm, names)
        if i is not None:
            first[t] = i
    if len(first) == len(topics) and len(set(first.values())) == len(topics):
        return sorted(topics, key=first.__getitem__)
    return None
