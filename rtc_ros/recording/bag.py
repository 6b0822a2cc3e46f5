"""Write one rosbag2 (MCAP storage) per episode from raw CDR bytes (the JSON sidecar beside it:
:mod:`rtc_ros.recording.sidecar`).

:class:`BagWriter` wraps :class:`rosbags.rosbag2.Writer` (storage ``mcap``, metadata version 9,
the format ``ros2 bag`` on Jazzy writes). The bytes handed to :meth:`BagWriter.write` go to disk
unchanged: give it what a raw subscription received and every reader sees exactly what travelled.

Durability: rosbags buffers MCAP messages in an in-memory chunk (up to 1 MiB). :meth:`BagWriter.flush`
(called every ``flush_period_s`` by :meth:`BagWriter.maybe_flush`) closes that chunk, writes it to the
file and fsyncs it, so at most ``flush_period_s`` of data (plus the caller's polling period) is lost
when the process is killed or the power fails; the bag directory entries are fsynced at open.
:meth:`BagWriter.close` writes the MCAP summary/footer and ``metadata.yaml`` and makes the bag
readable by every reader; a bag that was never closed is repaired by
:mod:`rtc_ros.recording.recover`.

Everything here is ROS-free (``rosbags`` only).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Iterable

from rosbags.interfaces import Qos
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode
from rosbags.rosbag2.errors import WriterError
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from rtc_ros.recording.sidecar import (  # noqa: F401 (re-exported: the bag's sidecar and metadata.yaml)
    EPISODE_META_KEY,
    _json_default,
    fsync_dir,
    json_safe,
    metadata_yaml_valid,
    read_metadata_yaml_meta,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)

log = logging.getLogger(__name__)

#: default episode bag name prefix (``episode_0000``, ``episode_0001``, ...)
EPISODE_PREFIX = "episode"
SIDECAR_VERSION = 1


class RecordingError(RuntimeError):
    """The recording cannot start or continue (unwritable directory, disk full, bad topic)."""


_TYPESTORE: Typestore | None = None


def default_typestore() -> Typestore:
    """The ROS 2 Jazzy type store of ``rosbags`` (std, sensor, trajectory, diagnostic, geometry...)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        _TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
    return _TYPESTORE


def _find_msg_file(msgtype: str, search: Iterable[Path]) -> Path | None:
    pkg, _, name = msgtype.split("/")
    for base in search:
        cand = base / "share" / pkg / "msg" / f"{name}.msg"
        if cand.is_file():
            return cand
    return None


def register_type_from_share(store: Typestore, msgtype: str) -> bool:
    """Register ``pkg/msg/Name`` (and its dependencies) from ``share/<pkg>/msg/*.msg`` files.

    Searches ``$AMENT_PREFIX_PATH`` and ``sys.prefix``; returns False when not found. Used for
    message types the Jazzy store of ``rosbags`` does not know (a custom robot message, say).
    """
    import sys

    from rosbags.typesys import get_types_from_msg

    search = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    search.append(Path(sys.prefix))
    pending = [msgtype]
    found: dict[str, Any] = {}
    while pending:
        t = pending.pop()
        if t in store.types or t in found:
            continue
        if t.count("/") != 2:
            return False
        path = _find_msg_file(t, search)
        if path is None:
            return False
        types = get_types_from_msg(path.read_text(), t)
        found.update(types)
        for _, fields in types.values():
            for _, desc in fields:
                # desc: (nodetype, payload); dependencies appear as ('pkg/msg/Name') strings
                for token in re.findall(r"[A-Za-z0-9_]+/msg/[A-Za-z0-9_]+", repr(desc)):
                    if token not in store.types and token not in found:
                        pending.append(token)
    store.register(found)
    return True


def preflight_output_dir(directory: str | Path, min_free_bytes: int = 0) -> int:
    """Check that ``directory`` can hold recordings *now*, not at the end of an episode.

    Creates the directory if needed, writes, fsyncs and deletes a probe file, and checks the free
    space. Returns the free bytes.

    Raises:
        RecordingError: not creatable, not writable, or less than ``min_free_bytes`` free.
    """
    directory = Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():  # (before mkdir, which says only "File exists")
        raise RecordingError(f"recording path {directory} (parameter output_dir) exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecordingError(f"cannot create recording directory {directory} (parameter output_dir): "
                             f"{exc.strerror or exc}") from exc
    probe = directory / f".rtc_write_probe_{os.getpid()}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"\0" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        reason = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise RecordingError(f"recording directory {directory} (parameter output_dir) is not writable: {reason}") from exc
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    free = shutil.disk_usage(directory).free
    if free < min_free_bytes:
        raise RecordingError(
            f"recording directory {directory} has {free / 1e6:.1f} MB free, "
            f"need at least {min_free_bytes / 1e6:.1f} MB (parameter min_free_mb)"
        )
    return free


def _last_name_file(root: Path, prefix: str) -> Path:
    """Where the last episode name handed out in ``root`` is kept (a hidden file beside the episodes)."""
    return root / f".{prefix}_last"


def next_episode_name(root: str | Path, prefix: str = EPISODE_PREFIX) -> str:
    """``<prefix>_NNNN`` with NNNN one above the highest index in ``root`` and above the last one recorded there
    (:func:`mark_episode_name`): a number is not reused when the newest episode folder was moved away."""
    root = Path(root)
    pat = re.compile(rf"^{re.escape(prefix)}_(\d+)$")
    idx = [int(m.group(1)) for p in (root.iterdir() if root.is_dir() else []) if (m := pat.match(p.name))]
    try:
        last = pat.match(_last_name_file(root, prefix).read_text().strip())
    except OSError:
        last = None
    if last:
        idx.append(int(last.group(1)))
    return f"{prefix}_{(max(idx) + 1) if idx else 0:04d}"


def mark_episode_name(root: str | Path, name: str, prefix: str = EPISODE_PREFIX) -> None:
    """Record ``name`` as the last episode started in ``root`` (atomically; a failure only loses the mark)."""
    path = _last_name_file(Path(root), prefix)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(name + "\n")
        os.replace(tmp, path)
    except OSError:
        pass


class BagWriter:
    """One rosbag2 bag (MCAP storage) written from raw serialized messages.

    Args:
        bag_dir: the bag directory to create (must not exist).
        typestore: where message definitions and type hashes come from (default: ROS 2 Jazzy);
            unknown types are looked up in ``share/<pkg>/msg`` of the ROS installation.
        flush_period_s: :meth:`maybe_flush` pushes buffered messages to the file this often.
        compression: ``"none"`` or ``"zstd"`` (MCAP chunk compression).
    """

    def __init__(
        self,
        bag_dir: str | Path,
        typestore: Typestore | None = None,
        flush_period_s: float = 0.5,
        compression: str = "none",
    ) -> None:
        if compression not in ("none", "zstd"):
            raise ValueError(f"compression must be 'none' or 'zstd', got {compression!r}")
        self.path = Path(bag_dir)
        self.mcap_path = self.path / f"{self.path.name}.mcap"
        self.typestore = typestore or default_typestore()
        self.flush_period_s = float(flush_period_s)
        self.compression = compression
        self._writer: Writer | None = None
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.first_ns: dict[str, int] = {}
        self.last_ns: dict[str, int] = {}
        self._last_flush = time.monotonic()
        #: messages written and fsynced by the last successful :meth:`flush` (on disk whatever happens later)
        self.flushed_messages = 0
        self._open = False
        self.closed = False

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> None:
        """Create the bag directory and the MCAP file.

        Raises:
            RecordingError: the directory exists already or cannot be created.
        """
        try:
            self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
            if self.compression == "zstd":
                self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise RecordingError(f"cannot open bag {self.path}: {exc}") from exc
        self._open = True
        try:
            self.flush(force=True)  # the MCAP header on disk: a bag killed now is recoverable (empty)
        except RecordingError:
            self.abort()  # (a full disk at the start: the file is not left open, a long-run audit, and the folder
            shutil.rmtree(self.path, ignore_errors=True)  # this open created, with nothing in it, not left: a review)
            raise
        fsync_dir(self.path)
        fsync_dir(self.path.parent)

    @property
    def is_open(self) -> bool:
        return self._open and not self.closed

    def add_topic(
        self,
        topic: str,
        msgtype: str,
        qos: list[Qos] | None = None,
    ) -> None:
        """Declare ``topic`` of ROS type ``msgtype`` (``pkg/msg/Name``) before writing to it."""
        if not self.is_open:
            raise RecordingError(f"bag {self.path} is not open")
        if topic in self._connections:
            return
        if msgtype not in self.typestore.types and not register_type_from_share(self.typestore, msgtype):
            raise RecordingError(f"unknown message type {msgtype!r} for topic {topic}: no definition found")
        assert self._writer is not None
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=list(qos or [])
        )
        self.counts[topic] = 0
        self.bytes[topic] = 0

    def has_topic(self, topic: str) -> bool:
        return topic in self._connections

    def write(self, topic: str, timestamp_ns: int, data: bytes | memoryview) -> None:
        """Append one serialized (CDR) message received at ``timestamp_ns`` (ns since epoch)."""
        if not self.is_open:
            raise RecordingError(f"bag {self.path} is not open")
        conn = self._connections.get(topic)
        if conn is None:
            raise RecordingError(f"topic {topic} was not added to bag {self.path}")
        assert self._writer is not None
        try:  # the writer writes a full chunk to the file from here (a large image, a burst)
            self._writer.write(conn, int(timestamp_ns), bytes(data))
        except OSError as exc:
            raise RecordingError(f"writing bag {self.path} failed: {exc.strerror or exc}") from exc
        self.counts[topic] += 1
        self.bytes[topic] += len(data)
        self.first_ns.setdefault(topic, int(timestamp_ns))
        self.last_ns[topic] = int(timestamp_ns)

    def flush(self, force: bool = False) -> None:
        """Close the in-memory MCAP chunk (if it holds messages), write it to the file and fsync it.

        A chunk is written whole (one ``write``), so a crash leaves complete chunks plus at most one
        cut one, which :mod:`rtc_ros.recording.recover` drops. Nothing is written (and no fsync
        done) when no message arrived since the last flush, unless ``force``.

        Raises:
            RecordingError: the write failed (disk full, I/O error).
        """
        if not self.is_open:
            return
        storage = getattr(self._writer, "storage", None)
        chunk = getattr(storage, "chunk", None)
        try:
            if chunk is not None and chunk.msgs:
                storage.close_chunk()  # type: ignore[union-attr]
                force = True
            bio = getattr(storage, "bio", None)
            if bio is not None and force:
                bio.flush()
                os.fsync(bio.fileno())
        except OSError as exc:
            raise RecordingError(f"writing bag {self.path} failed: {exc.strerror or exc}") from exc
        self._last_flush = time.monotonic()
        if force:
            self.flushed_messages = sum(self.counts.values())

    def maybe_flush(self) -> None:
        """:meth:`flush` if ``flush_period_s`` has passed since the last one."""
        if time.monotonic() - self._last_flush >= self.flush_period_s:
            self.flush()

    def close(self, meta: dict[str, Any] | None = None) -> None:
        """Finish the MCAP file and ``metadata.yaml`` (``custom_data[rtc_episode]`` = ``meta``).

        Raises:
            RecordingError: the final write failed; the bag is then aborted (data flushed so far
                stays in the ``.mcap`` file).
        """
        if not self.is_open or self._writer is None:
            return
        if meta is not None:
            self._writer.set_custom_data(EPISODE_META_KEY, json.dumps(json_safe(meta), default=_json_default))
        try:
            self._writer.close()
        except OSError as exc:
            self.abort()
            raise RecordingError(f"closing bag {self.path} failed: {exc.strerror or exc}") from exc
        finally:
            self.closed = True
        for done in (self.mcap_path, self.path / "metadata.yaml"):  # durable before the sidecar says "closed"
            try:
                with open(done, "rb+") as fh:
                    os.fsync(fh.fileno())
            except OSError:
                pass
        try:
            fsync_dir(self.path)
        except OSError:
            pass

    def abort(self) -> None:
        """Close the file without summary (used after an I/O error)."""
        try:
            if self._writer is not None:
                self._writer.abort()
        except Exception:  # noqa: BLE001 - best effort after an error
            pass
        self.closed = True

    def stats(self) -> dict[str, dict[str, int]]:
        """Per-topic ``{count, bytes, first_ns, last_ns}``."""
        return {
            t: {"count": self.counts[t], "bytes": self.bytes[t],
                "first_ns": self.first_ns.get(t, 0), "last_ns": self.last_ns.get(t, 0)}
            for t in self._connections
        }
