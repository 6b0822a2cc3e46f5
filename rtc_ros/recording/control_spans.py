"""Episode spans of a session bag (``ros2 bag record`` of a whole session, ROS-free): the recorded ``rtc/episode``
JSON commands (start / stop / abort / score) cut it into episodes, as the recorder would have."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def spans_from_control(reader: Any, conns: list[Any], bag_dir: Path) -> list[tuple[str, int, int, dict[str, Any]]]:
    """Episode spans from recorded ``rtc/episode`` JSON commands (for ``ros2 bag record`` bags)."""
    if not conns:
        return []
    spans: list[tuple[str, int, int, dict[str, Any]]] = []
    cur: tuple[int, dict[str, Any]] | None = None
    for conn, ts, raw in reader.messages(connections=conns):
        try:
            cmd = json.loads(reader.deserialize(raw, conn.msgtype).data)
        except (json.JSONDecodeError, AttributeError):
            continue
        if not isinstance(cmd, dict):
            continue
        kind = cmd.get("cmd")
        if kind == "start":
            if cur is not None:  # a start without stop closes the previous episode
                spans.append((f"{bag_dir.name}#{len(spans)}", cur[0], ts, {**cur[1], "status": "unterminated"}))
            raw = cmd.get("meta") or {}  # (not an object: kept under 'meta' as the recorder does; it dropped the bag)
            cur = (ts, dict(raw) if isinstance(raw, dict) else {"meta": raw})
        elif kind in ("stop", "abort") and cur is not None:
            meta = {**cur[1], **{k: v for k, v in cmd.items() if k != "cmd"}}
            meta["status"] = "aborted" if kind == "abort" else "completed"
            meta["duration_s"] = (ts - cur[0]) * 1e-9
            spans.append((f"{bag_dir.name}#{len(spans)}", cur[0], ts, meta))
            cur = None
        elif kind == "score" and spans:
            n, s, e, meta = spans[-1]
            spans[-1] = (n, s, e, {**meta, **{k: v for k, v in cmd.items() if k != "cmd"}})
    if cur is not None:
        spans.append((f"{bag_dir.name}#{len(spans)}", cur[0], reader.end_time, {**cur[1], "status": "unterminated"}))
    return spans
