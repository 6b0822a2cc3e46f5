"""Repair episode bags whose recorder died (SIGKILL, crash, power loss): ``python -m rtc_ros.recording.recover``.

A bag whose writer never closed it has no MCAP summary/footer and no ``metadata.yaml``; neither
``mcap``'s reader nor ``rosbags`` opens it, and its sidecar still says ``recording``.
:func:`recover_bag` reads every intact chunk (:mod:`rtc_ros.recording.mcap_salvage`), writes them
into a new, complete bag beside the old one and swaps it in:

1. ``<bag>/.recover/<bag>/`` -- the new bag (``rosbags`` writer, same topics, QoS, message bytes and
   times, same compression), fsynced;
2. the original file is renamed ``<bag>.mcap.broken`` (never deleted), the new one takes its name;
3. ``metadata.yaml`` is written (atomically), then the sidecar: status ``recovered`` and a
   ``recovery`` entry (messages and bytes kept, first/last message time, why the read stopped, the
   status before recovery, the original file's name).

Every step can be interrupted and repeated: when ``<bag>.mcap.broken`` exists it is the source.

Which bags: an MCAP file and no valid ``metadata.yaml`` (missing, or empty/cut after a power loss), or a
sidecar still ``recording``, and -- with the writer recorded in the sidecar (host, boot, pid, process start) --
whose writer is gone (without a record: the file unchanged for :data:`STALE_S` s). A bag killed after its
close but before its sidecar was rewritten only gets its sidecar back from ``metadata.yaml`` (``restored``:
success and score kept).

Command line: ``python -m rtc_ros.recording.recover BAG_DIR [BAG_DIR ...]`` (a bag directory or a
folder of them); prints one line per bag; exit 0 when every unfinished bag was repaired (or nothing
needed repair), 1 when one could not be, 2 on a usage error. ``--dry-run`` only lists.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from rtc_ros.recording.bag import (
    EPISODE_META_KEY, json_safe, metadata_yaml_valid, read_metadata_yaml_meta, read_sidecar, sidecar_path, write_sidecar,
)
from rtc_ros.recording.mcap_salvage import ChannelRec, MessageRec, SalvageResult, SchemaRec, salvage
from rtc_ros.recording.metadata import RECORDER_FIELDS, fill_derived

#: a bag without a writer record counts as abandoned when its file is older than this (seconds)
STALE_S = 30.0
#: sidecar statuses of a bag that was never closed properly
UNFINISHED = ("recording", "failed")
TMP_DIR = ".recover"


@dataclass
class Recovery:
    """What :func:`recover_bag` did with one bag."""

    bag: Path
    action: str  # recovered | restored (only the sidecar was behind) | skipped | failed
    detail: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.action}: {self.bag}: {self.detail}"


# ----------------------------------------------------------------------------------- writer liveness
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_start(pid: int) -> str:
    """Start time of ``pid`` (clock ticks since boot, from ``/proc``); '' when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def writer_identity() -> dict[str, Any]:
    """Who writes a bag: host, boot id, pid and process start time (stored in the sidecar)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot_id": _boot_id(), "pid": pid, "proc_start": _proc_start(pid)}


def writer_alive(writer: Any, mcap: Path | None) -> bool:
    """Whether the process recorded in ``writer`` may still be writing the bag.

    Same host: alive iff the same boot, the pid exists and has the same start time (pid reuse and
    container restarts are told apart). Other host or no record: alive iff the file changed in the
    last :data:`STALE_S` seconds.
    """
    if isinstance(writer, dict) and writer.get("host") == socket.gethostname() and writer.get("pid"):
        if writer.get("boot_id") and _boot_id() and writer["boot_id"] != _boot_id():
            return False
        pid = int(writer["pid"])
        if pid == os.getpid() and writer.get("proc_start") == _proc_start(pid):
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, someone else's
        start = _proc_start(pid)
        return not (start and writer.get("proc_start") and start != writer["proc_start"])
    try:
        return mcap is not None and time.time() - mcap.stat().st_mtime < STALE_S
    except OSError:
        return False


# ----------------------------------------------------------------------------------- finding bags
def _mcap_of(bag: Path) -> Path:
    return bag / f"{bag.name}.mcap"


def _broken_of(bag: Path) -> Path:
    return bag / f"{bag.name}.mcap.broken"


def _renamed_mcap(bag: Path) -> Path | None:
    """The one ``*.mcap`` (or ``*.mcap.broken``) of a folder renamed after recording (``ep5_copy/episode_0005.mcap``):
    not the folder's own name, which the repair writes; None where the folder's own file exists or none / several."""
    if _mcap_of(bag).is_file() or _broken_of(bag).is_file() or not bag.is_dir():
        return None
    found = [p for p in bag.iterdir() if p.is_file() and (p.name.endswith(".mcap") or p.name.endswith(".mcap.broken"))]
    if len(found) != 1 or not (bag / f"{found[0].name.split('.mcap')[0]}.json").is_file():
        return None  # (a recorder's bag has its sidecar beside it: a rosbag2 folder, run1/run1_0.mcap, has none)
    return found[0]


def needs_recovery(bag: Path) -> bool:
    """An unfinished bag: an MCAP file and no valid ``metadata.yaml`` (whatever the sidecar says: a power
    loss can leave that file empty or missing after the sidecar said the bag was closed), or a sidecar
    still ``recording`` (interrupted between ``metadata.yaml`` and the sidecar). A folder renamed after recording
    counts too (:func:`recover_bag` then says how to name it)."""
    if _renamed_mcap(bag) is not None:
        return not metadata_yaml_valid(bag)
    if not (_mcap_of(bag).is_file() or _broken_of(bag).is_file()):
        return False
    if not metadata_yaml_valid(bag):
        return True
    side = read_sidecar(bag) if sidecar_path(bag).is_file() else None
    status = side.get("status") if isinstance(side, dict) else None
    return status == "recording"


def find_unfinished(root: str | Path) -> list[Path]:
    """Unfinished bag directories: ``root`` itself or its subdirectories (one level), sorted."""
    root = Path(root)
    if needs_recovery(root):
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and needs_recovery(p))


def find_unfinished_under(root: str | Path) -> list[Path]:
    """Unfinished bag directories anywhere under ``root`` (hidden folders such as ``.recover`` skipped)."""
    root = Path(root)
    dirs = {root, *(p.parent for p in root.rglob("*.mcap*"))}
    return sorted(d for d in dirs if not any(part.startswith(".") for part in d.relative_to(root).parts)
                  and needs_recovery(d))


# ----------------------------------------------------------------------------------- rewriting
def _rihs01(schema: SchemaRec) -> str:
    """The type hash of the schema's message definition (from the definition itself)."""
    from rosbags.typesys import Stores, get_typestore, get_types_from_msg

    try:
        store = get_typestore(Stores.EMPTY)
        store.register(get_types_from_msg(schema.data.decode(), schema.name))
        return store.hash_rihs01(schema.name)
    except Exception:  # noqa: BLE001 - fall back to the Jazzy store's hash for this name
        from rtc_ros.recording.bag import default_typestore

        try:
            return default_typestore().hash_rihs01(schema.name)
        except Exception:  # noqa: BLE001
            return "RIHS01_" + "0" * 64


def _rewrite(source: Path, dest_bag: Path, finish: Callable[[SalvageResult, dict[str, dict[str, int]]], dict[str, Any]],
             ) -> dict[str, Any]:
    """Copy every intact message of ``source`` into a new bag at ``dest_bag``.

    ``finish(result, per_topic_stats)`` returns the episode metadata stored in ``metadata.yaml``;
    returns that metadata."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.rosbag2.enums import CompressionFormat, CompressionMode
    from rosbags.rosbag2.metadata import parse_qos

    res = SalvageResult()
    writer = Writer(dest_bag, version=9, storage_plugin=StoragePlugin.MCAP)
    records = salvage(source, res)
    first = next(records, None)  # the compression is known once the first chunk was read
    if res.compression == "zstd":
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    writer.open()
    conns: dict[int, Any] = {}
    stats: dict[str, dict[str, int]] = {}
    try:
        for rec in itertools.chain([first] if first is not None else [], records):
            if isinstance(rec, ChannelRec):
                schema = res.schemas.get(rec.schema_id)
                if schema is None or rec.id in conns:
                    continue
                qos = parse_qos(rec.metadata.get("offered_qos_profiles", ""))
                conns[rec.id] = writer.add_connection(rec.topic, schema.name, msgdef=schema.data.decode(),
                                                      rihs01=_rihs01(schema), offered_qos_profiles=qos,
                                                      serialization_format=rec.message_encoding or "cdr")
                stats[rec.topic] = {"count": 0, "bytes": 0, "first_ns": 0, "last_ns": 0}
            elif isinstance(rec, MessageRec) and rec.channel_id in conns:
                conn = conns[rec.channel_id]
                writer.write(conn, rec.log_time, rec.data)
                s = stats[conn.topic]
                s["count"] += 1
                s["bytes"] += len(rec.data)
                s["first_ns"] = s["first_ns"] or rec.log_time
                s["last_ns"] = rec.log_time
        meta = finish(res, stats)
        writer.set_custom_data(EPISODE_META_KEY, json.dumps(json_safe(meta), default=str))
        writer.close()
    except BaseException:
        if writer.storage is not None:
            writer.abort()
        raise
    return meta


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover_bag(bag: str | Path, force: bool = False) -> Recovery:
    """Repair one unfinished bag directory (see the module docstring); never deletes recorded data.

    Args:
        bag: the bag directory (``<bag>/<bag>.mcap`` and the sidecar).
        force: also when the recorded writer process seems to be alive.
    """
    bag = Path(bag)
    mcap, broken = _mcap_of(bag), _broken_of(bag)
    renamed = _renamed_mcap(bag)
    if renamed is not None:  # (the repair writes <folder>/<folder>.mcap and reads <folder>.json: nothing guessed)
        was = renamed.name.split(".mcap")[0]
        return Recovery(bag, "failed", f"the folder was renamed after recording: its recording is {renamed.name}, "
                                       f"recorded in a folder named {was}; rename the folder back to {was} (or "
                                       f"{renamed.name} and {was}.json to {bag.name}.mcap and {bag.name}.json), "
                                       "then recover it again (nothing was changed)")
    source = broken if broken.is_file() else mcap
    if not source.is_file():
        return Recovery(bag, "failed", f"no {mcap.name} to recover from")
    old = read_sidecar(bag) if sidecar_path(bag).is_file() else None
    if (final := _complete(bag)) is not None:  # killed after the close, before the sidecar's rewrite
        write_sidecar(bag, final)
        return Recovery(bag, "restored", f"the bag was complete; its sidecar restored from metadata.yaml "
                                         f"(status {final.get('status')})")
    meta: dict[str, Any] = dict(old) if isinstance(old, dict) else {"episode": bag.name}
    if busy := None if force else _busy(bag, meta.get("writer")):
        return Recovery(bag, "skipped", f"{busy} (use --force to repair anyway)")
    (bag / ".reserve").unlink(missing_ok=True)  # a dead recorder's reserve (rtc_ros.recording.session): room to repair
    tmp_root = bag / TMP_DIR
    shutil.rmtree(tmp_root, ignore_errors=True)  # our own half-written output of an interrupted attempt
    tmp_root.mkdir()
    dest = tmp_root / bag.name
    done: list[Any] = []

    def finish(res: SalvageResult, stats: dict[str, dict[str, int]]) -> dict[str, Any]:
        done.extend((res, stats))
        return _recovered_meta(meta, res, stats, broken.name)

    try:
        meta = _rewrite(source, dest, finish)
    except Exception as exc:  # noqa: BLE001 - reported; the original stays as it was
        shutil.rmtree(tmp_root, ignore_errors=True)
        return Recovery(bag, "failed", f"cannot rewrite {source.name}: {type(exc).__name__}: {exc}")
    res, stats = done
    try:
        _fsync(dest / f"{bag.name}.mcap")
        if source == mcap:
            os.replace(mcap, broken)
        os.replace(dest / f"{bag.name}.mcap", mcap)
        tmp_yaml = bag / "metadata.yaml.tmp"
        shutil.copyfile(dest / "metadata.yaml", tmp_yaml)
        _fsync(tmp_yaml)
        os.replace(tmp_yaml, bag / "metadata.yaml")
        write_sidecar(bag, meta)
        _fsync(bag)
    except OSError as exc:
        return Recovery(bag, "failed", f"cannot swap in the repaired bag: {exc}")
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    rec = meta["recovery"]
    last = ""
    if isinstance(meta.get("start_time_ns"), int) and rec["last_ns"]:
        last = f" (the last {(rec['last_ns'] - meta['start_time_ns']) * 1e-9:.2f} s after the episode start)"
    detail = (f"{rec['message_count']} messages kept{last}; {rec['bytes_dropped']} of {res.total_bytes} bytes "
              f"unreadable ({res.stopped}); original kept as {broken.name}")
    return Recovery(bag, "recovered", detail, rec)


def _recovered_meta(old: dict[str, Any], res: SalvageResult, stats: dict[str, dict[str, int]],
                    original: str) -> dict[str, Any]:
    """The sidecar of a repaired bag: status ``recovered``, a ``recovery`` entry, counts and times."""
    meta = dict(old)
    prev_status = meta.get("status")
    count = sum(s["count"] for s in stats.values())
    firsts = [s["first_ns"] for s in stats.values() if s["count"]]
    lasts = [s["last_ns"] for s in stats.values() if s["count"]]
    recovery = {
        "recovered_at": datetime.now(timezone.utc).isoformat(),
        "previous_status": prev_status,
        "message_count": count,
        "first_ns": min(firsts) if firsts else None,
        "last_ns": max(lasts) if lasts else None,
        "bytes_used": res.good_bytes,
        "bytes_total": res.total_bytes,
        "bytes_dropped": res.total_bytes - res.good_bytes,
        "read_stopped": res.stopped,
        "original": original,
    }
    stop = meta.pop("pending_stop", None)  # stopped, killed within the stop grace: the operator's verdict holds
    if prev_status == "recording" and isinstance(stop, dict):
        meta.update({k: v for k, v in stop.items() if k not in RECORDER_FIELDS})
        recovery["stop_status"] = stop.get("status")
    meta.update({"status": "recovered", "recovery": recovery, "topics": stats, "message_count": count})
    if prev_status == "recording" or "stop_time_ns" not in meta:
        if lasts:
            meta["stop_time_ns"] = max(lasts)
        if isinstance(meta.get("start_time_ns"), int) and isinstance(meta.get("stop_time_ns"), int):
            meta["duration_s"] = (meta["stop_time_ns"] - meta["start_time_ns"]) * 1e-9
    if isinstance(meta.get("params"), dict):
        fill_derived(meta)
    return meta


def recover_all(root: str | Path, force: bool = False) -> list[Recovery]:
    """:func:`recover_bag` for every unfinished bag in ``root`` (a bag or a folder of bags); a bag that cannot
    be repaired (unreadable sidecar, no permission) is reported ``failed``, the others are still repaired."""
    out = []
    for b in find_unfinished(root):
        try:
            out.append(recover_bag(b, force=force))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            out.append(Recovery(Path(b), "failed", f"{type(exc).__name__}: {exc}"))
    return out


def _complete(bag: Path) -> dict[str, Any] | None:
    """The final metadata (success, score) of a bag closed complete whose sidecar is behind, else None."""
    final = read_metadata_yaml_meta(bag) if metadata_yaml_valid(bag) and not _broken_of(bag).is_file() else None
    return final if final is not None and final.get("status") not in (*UNFINISHED, None) else None


def _busy(bag: Path, writer: Any) -> str | None:
    """Why a bag is left alone without ``--force`` (its writer may still be writing it), else None."""
    alive = not _broken_of(bag).is_file() and writer_alive(writer, _mcap_of(bag))
    return f"its writer {writer or '(unknown, file changed recently)'} may still be writing it" if alive else None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m rtc_ros.recording.recover``."""
    ap = argparse.ArgumentParser(prog="python -m rtc_ros.recording.recover", description=__doc__.split("\n\n")[0])
    ap.add_argument("bag_dir", type=Path, nargs="+", help="a bag directory or a folder of bag directories")
    ap.add_argument("--force", action="store_true", help="also repair bags whose writer seems alive")
    ap.add_argument("--dry-run", action="store_true", help="only list the bags that need repair")
    args = ap.parse_args(argv)
    failed = 0
    for root in args.bag_dir:
        if not root.exists():
            print(f"error: {root} does not exist", file=sys.stderr)
            return 2
        if not (bags := find_unfinished(root)):
            print(f"nothing to recover in {root}")
        for bag in bags:
            if args.dry_run:
                busy = None if args.force or _complete(bag) else _busy(bag, (read_sidecar(bag) or {}).get("writer"))
                print(f"would skip: {bag} ({busy}; --force repairs it anyway)" if busy else f"would recover: {bag}")
                continue
            r = recover_bag(bag, force=args.force)
            print(r.line(), flush=True)
            failed += r.action == "failed"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
