"""Episode metadata of the recorder (ROS-free): control commands, start meta, derived fields.

The sidecar ``<bag>/<bag>.json`` (and ``metadata.yaml`` custom_data ``rtc_episode``) holds the
operator's ``meta``, the parameter snapshot of ``policy_inference`` and ``chunk_executor``, the
policy spec (YAML content + SHA-256 of spec, weights and normalisation statistics), success/score, times and counts.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rtc_ros.recording.paths import expand_path

#: parameters copied into the top-level ``rtc`` entry of the sidecar
RTC_KEYS = ("method", "horizon", "s_min", "rate_hz", "beta", "n_steps", "delay_buffer_size", "jacobian",
            "bid_samples", "bid_k", "extra_latency_ms", "warmup_iterations", "seed", "device",
            "ensemble_decay", "output_type", "loop_mode", "max_chunk_age")
COMMANDS = ("start", "stop", "abort", "score")


_SHA_CACHE: dict[tuple[str, int, int, int], str] = {}


def sha256_file(path: Path) -> str | None:
    """Hex SHA-256 of a file, None when unreadable. Remembered per (path, inode, size, mtime): the recorder
    describes the policy two or three times per episode, and a VLA's weights (GBs) took seconds each time
    on its only thread (messages queued meanwhile; at shutdown the bag's close could be cut off)."""
    try:
        st = os.stat(path)
        key = (str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
        if key in _SHA_CACHE:
            return _SHA_CACHE[key]
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    if len(_SHA_CACHE) >= 64:
        _SHA_CACHE.clear()
    _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def describe_policy_spec(path: str) -> dict[str, Any]:
    """``{path, sha256, spec (parsed YAML), weights_sha256, normalization_sha256}`` of a policy spec
    file (best effort).

    ``weights`` and ``normalization`` (the ``<name>.norm.safetensors`` statistics file) are paths
    relative to the spec; each is hashed when the spec names it as a string (None if unreadable).
    """
    import yaml

    p = Path(expand_path(path))  # (``${RTC_POLICY_SPEC}``: bimanual.launch.py's default, expanded as the node does)
    out: dict[str, Any] = {"path": str(p)}
    if not p.is_file():
        out["error"] = "not readable from the recorder's machine"
        return out
    out["sha256"] = sha256_file(p)
    try:
        spec = yaml.safe_load(p.read_text())
        out["spec"] = spec
        if isinstance(spec, dict) and spec.get("weights"):
            out["weights_sha256"] = sha256_file(p.parent / str(spec["weights"]))
        if isinstance(spec, dict) and isinstance(spec.get("normalization"), str) and spec["normalization"]:
            out["normalization_sha256"] = sha256_file(p.parent / spec["normalization"])
    except yaml.YAMLError as exc:
        out["error"] = f"invalid YAML: {exc}"
    return out


#: fields of the simulator's status copied into the sidecar's ``sim`` entry
SIM_KEYS = ("task", "episode", "seed", "success", "progress", "step", "protective_stops", "protective_stops_by_arm")


def sim_summary(status: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's ``sim`` entry from the simulator's last ``sim/status`` JSON (task, success,
    protective-stop counts; keys missing from the status are left out)."""
    return {k: status[k] for k in SIM_KEYS if k in status}


#: fields the recorder writes itself: an operator's stop/score/start meta may not set them (a stop with
#: ``status`` would replace the recorded status; ``params`` or ``stop_time_ns`` of the wrong type broke the close)
RECORDER_FIELDS = ("episode", "status", "recorder_version", "operator_meta", "start_time_ns", "start_wall", "host",
                   "free_mb_at_start", "params", "stop_time_ns", "close_time_ns", "duration_s", "topics",
                   "message_count", "writer", "error", "bag", "scored_after_stop", "sim", "recovery",
                   "dropped_topics", "messages_lost", "pending_stop", "silent_topics")


def _check_field_types(fields: dict[str, Any], where: str) -> None:
    """``success`` a boolean (or null), ``score`` and ``extra_latency_ms`` numbers, ``notes`` a string:
    a wrongly typed value would be misread by the report (``"200"`` grouped under 0 ms)."""
    if "success" in fields and fields["success"] is not None and not isinstance(fields["success"], bool):
        raise ValueError(f"'{where}success' must be true, false or null, got {fields['success']!r}")
    for key in ("score", "extra_latency_ms"):
        v = fields.get(key)
        if key in fields and v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ValueError(f"'{where}{key}' must be a number, got {v!r}")
    if "notes" in fields and not isinstance(fields["notes"], str):
        raise ValueError(f"'{where}notes' must be a string, got {fields['notes']!r}")


def non_finite(value: Any, path: str) -> tuple[str, float] | None:
    """The first NaN or infinite number in a parsed JSON value (its dotted path and value), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, v in items:
        if (found := non_finite(v, f"{path}.{key}" if path else str(key))) is not None:
            return found
    return None


def parse_command(text: str) -> dict[str, Any]:
    """An episode control message (JSON object with a string ``cmd``), its fields checked.

    ``stop`` / ``abort`` / ``score`` may carry ``success`` (bool), ``score`` (number), ``notes``
    (string) and other fields of the operator's, ``start`` a ``meta`` object; none may set a field the
    recorder writes (:data:`RECORDER_FIELDS`).

    Raises:
        ValueError: not JSON, not an object, no string ``cmd``, a recorder field, or a wrongly typed
            field (the message names it).
    """
    try:
        cmd = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(cmd, dict) or not isinstance(cmd.get("cmd"), str):
        raise ValueError("expected a JSON object with a string field 'cmd'")
    if (where := non_finite(cmd, "")) is not None:  # NaN / Infinity / 1e999: no JSON reader reads them back
        raise ValueError(f"'{where[0]}' must be a finite number, got {where[1]}")
    if cmd["cmd"] == "start":
        meta = cmd.get("meta")
        if isinstance(meta, dict):
            reserved = sorted(set(meta) & set(RECORDER_FIELDS))
            if reserved:
                raise ValueError(f"meta fields {reserved} are written by the recorder; a 'start' may not set them")
            _check_field_types(meta, "meta.")
        return cmd
    fields = {k: v for k, v in cmd.items() if k != "cmd"}
    reserved = sorted(set(fields) & set(RECORDER_FIELDS))
    if reserved:
        raise ValueError(f"fields {reserved} are written by the recorder; an operator's '{cmd['cmd']}' may not set them")
    _check_field_types(fields, "")
    return cmd


def refused_start(text: str) -> bool:
    """Whether ``text``, refused by :func:`parse_command`, was meant as a ``start`` (a JSON object whose ``cmd``
    is "start"): a later ``score`` must then not go to the episode before it."""
    try:
        cmd = json.loads(text)
    except ValueError:
        return False
    return isinstance(cmd, dict) and cmd.get("cmd") == "start"


def start_meta(meta: dict[str, Any], name: str, now_ns: int, free_bytes: int) -> dict[str, Any]:
    """The metadata of an episode that just started (``operator_meta`` keeps the given meta; its fields
    the recorder writes, :data:`RECORDER_FIELDS`, are not taken: a string ``stop_time_ns`` broke the close)."""
    return {
        **{k: v for k, v in meta.items() if k not in RECORDER_FIELDS},
        "episode": name,
        "status": "recording",
        "recorder_version": 1,
        "operator_meta": dict(meta),
        "start_time_ns": now_ns,
        "start_wall": datetime.now(timezone.utc).isoformat(),
        "host": socket.gethostname(),
        "free_mb_at_start": round(free_bytes / 1e6, 1),
        "params": {},
    }


def fill_derived(meta: dict[str, Any]) -> None:
    """Top-level ``method``, ``extra_latency_ms``, ``dt``, ``rtc`` (the RTC parameters) and
    ``policy_spec`` from the parameter snapshot; values the operator's start meta sets win.

    An operator meta with the legacy key ``injected_latency_ms`` (before the rename to
    ``extra_latency_ms``) also wins: its value is written under ``extra_latency_ms``.
    """
    op = meta.get("operator_meta") or {}
    params = meta.get("params") or {}
    inf = params.get("policy_inference") if isinstance(params.get("policy_inference"), dict) else {}
    exe = params.get("chunk_executor") if isinstance(params.get("chunk_executor"), dict) else {}
    src = {k: v for k, v in {**exe, **inf}.items() if not k.startswith("_")}

    def put(key: str, value: Any) -> None:
        if key not in op:
            meta[key] = value

    if isinstance(src.get("method"), str):
        put("method", src["method"])
    if "extra_latency_ms" not in op and isinstance(op.get("injected_latency_ms"), (int, float)):
        meta["extra_latency_ms"] = float(op["injected_latency_ms"])  # legacy operator key
    elif isinstance(src.get("extra_latency_ms"), (int, float)):
        put("extra_latency_ms", float(src["extra_latency_ms"]))
    if isinstance(src.get("rate_hz"), (int, float)) and src["rate_hz"] > 0:
        put("dt", 1.0 / float(src["rate_hz"]))
    if any(k in src for k in RTC_KEYS):
        put("rtc", {k: src[k] for k in RTC_KEYS if k in src})
    if isinstance(inf.get("policy_spec"), str) and inf["policy_spec"]:
        put("policy_spec", describe_policy_spec(inf["policy_spec"]))
    if isinstance(inf.get("weak_policy_spec"), str) and inf["weak_policy_spec"]:
        put("weak_policy_spec", describe_policy_spec(inf["weak_policy_spec"]))
