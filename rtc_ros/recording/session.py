"""One episode at a time (ROS-free): the open bag, its metadata, stop with grace, close, score.

The ``episode_recorder`` node translates messages, parameters and timers into calls of
:class:`EpisodeSession`; times are passed in (``now_ns`` of the node's clock for the metadata,
``mono`` of ``time.monotonic`` for the stop grace), so the lifecycle is tested without ROS.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtc_ros.recording.bag import (
    BagWriter,
    RecordingError,
    mark_episode_name,
    next_episode_name,
    preflight_output_dir,
    read_sidecar,
    write_sidecar,
)
from rtc_ros.recording.metadata import RECORDER_FIELDS, fill_derived, start_meta
from rtc_ros.recording.sidecar import update_metadata_yaml_meta
from rtc_ros.recording.recover import Recovery, recover_all, writer_identity


@dataclass
class EpisodeSession:
    """The recorder's episode state.

    Args:
        output_dir: where episode bags go.
        prefix: bag name prefix (``<prefix>_0003``).
        flush_period: seconds between flushes of buffered messages.
        compression: MCAP chunk compression (``none`` / ``zstd``).
    """

    output_dir: Path
    prefix: str = "episode"
    flush_period: float = 0.5
    compression: str = "none"
    bag: BagWriter | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    stop_deadline: float | None = None
    pending_result: tuple[str, dict[str, Any]] | None = None
    last_closed: Path | None = None
    #: errors met while closing (logged by the node)
    errors: list[str] = field(default_factory=list)
    _disk_checked: float = float("-inf")  # monotonic s of the last free-space check (:meth:`flush`)

    @property
    def recording(self) -> bool:
        return self.bag is not None

    @property
    def episode(self) -> str | None:
        return self.meta.get("episode") if self.bag is not None else None

    def start(self, meta: dict[str, Any], now_ns: int, min_free_bytes: int) -> BagWriter:
        """Open a new episode bag (the caller closes a running one first).

        Raises:
            RecordingError: the directory is unusable or the bag cannot be opened.
        """
        try:
            free = preflight_output_dir(self.output_dir, min_free_bytes)
            name = next_episode_name(self.output_dir, self.prefix)
            bag = BagWriter(self.output_dir / name, flush_period_s=self.flush_period, compression=self.compression)
            bag.open()
            mark_episode_name(self.output_dir, name, self.prefix)
        except RecordingError:
            self.last_closed = None  # a 'score' now is for the episode that could not start, not an older one
            raise
        self.bag, self.stop_deadline, self.pending_result = bag, None, None
        _reserve(bag.path)
        self.meta = start_meta(meta, name, now_ns, free)
        # who writes this bag: a later recorder start repairs it only once this process is gone
        self.meta["writer"] = {**writer_identity(), "flush_period": self.flush_period}
        return bag

    def recover_orphans(self) -> list[Recovery]:
        """Repair the bags in ``output_dir`` left unfinished by a recorder that died (SIGKILL, power
        loss): sidecar ``recording`` (or ``failed``), no ``metadata.yaml``, writer process gone."""
        if not self.output_dir.is_dir():
            return []
        running = self.bag.path if self.bag is not None else None
        return [r for r in recover_all(self.output_dir) if r.bag != running]

    def request_stop(self, status: str, result: dict[str, Any], now_ns: int, mono: float, grace: float) -> None:
        """Stop at ``mono + grace`` (messages already in flight still land in the bag). A second stop within the grace
        updates the verdict but keeps the first one's stop time and deadline (an audit: each repeated stop pushed the
        close further back and moved the episode's end)."""
        if self.stop_deadline is None:
            self.meta["stop_time_ns"] = now_ns
            self.stop_deadline = mono + grace
        self.pending_result = (status, result)
        self.meta["pending_stop"] = {**result, "status": status}  # in the sidecar: a kill in the grace keeps the verdict

    def stop_due(self, mono: float) -> bool:
        return self.bag is not None and self.stop_deadline is not None and mono >= self.stop_deadline

    def finish(self, status: str | None, result: dict[str, Any] | None, now_ns: int) -> dict[str, Any] | None:
        """Close the running episode now (``status`` None = the pending stop's): bag, metadata, sidecar.

        Returns:
            The final metadata (``meta['bag']`` is the bag path), None when nothing was recording.
        """
        bag = self.bag
        if bag is None:
            return None
        if status is None:
            status, result = self.pending_result or ("completed", {})
        elif self.pending_result is not None:  # forced (low disk) in a stop's grace: the operator's verdict is kept
            result = {**self.pending_result[1], **(result or {})}
        self.bag, self.stop_deadline, self.pending_result = None, None, None
        self.errors = []
        meta = self.meta
        meta.pop("pending_stop", None)  # (applied now)
        meta.update({k: v for k, v in (result or {}).items() if k not in RECORDER_FIELDS})  # the recorder's win
        meta.setdefault("stop_time_ns", now_ns)
        meta["close_time_ns"] = now_ns
        meta["status"] = status
        meta["duration_s"] = (meta["stop_time_ns"] - meta["start_time_ns"]) * 1e-9
        meta["topics"] = bag.stats()
        meta["message_count"] = sum(bag.counts.values())
        fill_derived(meta)
        _release(bag.path)  # room for the messages in memory, the MCAP summary, metadata.yaml and the sidecar
        try:
            bag.close(meta)
        except RecordingError as exc:
            meta["status"], meta["writer"] = "failed", None  # (let go: recover repairs it while the recorder runs)
            meta["error"] = (f"{exc}; {bag.flushed_messages} of the {meta['message_count']} messages were on disk "
                             "at the last flush (python -m rtc_ros.recording.recover keeps what is intact)")
            meta["message_count_flushed"] = bag.flushed_messages
            self.errors.append(meta["error"])
        try:
            write_sidecar(bag.path, meta)
        except OSError as exc:
            self.errors.append(f"cannot write sidecar of {bag.path}: {exc}")
        self.last_closed = bag.path
        return {**meta, "bag": bag.path}

    def fail(self, error: str, now_ns: int) -> None:
        """Abort the running episode after a write error; the sidecar says ``failed``."""
        bag = self.bag
        if bag is None:
            return
        self.errors = []
        bag.abort()
        _release(bag.path)  # room for the sidecar on a full disk
        # the writer has let go: `recover` (the command, or the next recorder start) may repair it now, once its
        # file has not changed for a while, instead of waiting for this process to end
        self.meta.update({"status": "failed", "error": error, "stop_time_ns": now_ns, "writer": None})
        self.meta["duration_s"] = (now_ns - self.meta["start_time_ns"]) * 1e-9
        self.meta["topics"] = bag.stats()
        try:
            write_sidecar(bag.path, self.meta)
        except OSError as exc:
            self.errors.append(f"cannot write sidecar of {bag.path}: {exc} (it still says 'recording': "
                               "python -m rtc_ros.recording.recover --force repairs it once the disk has room)")
        self.bag, self.stop_deadline, self.pending_result = None, None, None
        self.last_closed = bag.path  # a later 'score' is for this episode, not the one before it

    def amend_score(self, result: dict[str, Any]) -> dict[str, Any] | None:
        """Update success/score/notes of the episode just stopped: while its stop grace runs, the pending
        stop's result (the episode is not closed yet); else the last closed episode's sidecar and its copy in
        ``metadata.yaml`` (raises OSError). None: nothing was stopped yet."""
        result = {k: v for k, v in result.items() if k not in RECORDER_FIELDS}
        if self.bag is not None and self.pending_result is not None:
            status, pending = self.pending_result
            self.pending_result = (status, {**pending, **result})
            self.meta["pending_stop"] = {**self.pending_result[1], "status": status}
            return {**self.meta, **self.pending_result[1]}
        if self.last_closed is None:
            return None
        meta = read_sidecar(self.last_closed) or {}
        meta.update(result)
        meta["scored_after_stop"] = True
        write_sidecar(self.last_closed, meta)
        update_metadata_yaml_meta(self.last_closed, meta)  # the copy readers fall back to (a failed bag has none)
        return meta

    def write_sidecar(self) -> None:
        """Rewrite the running episode's sidecar (raises OSError)."""
        if self.bag is not None:
            write_sidecar(self.bag.path, self.meta)

    def store_params(self, node: str, episode: str, values: dict[str, Any]) -> bool:
        """Store a node's parameter snapshot if ``episode`` is still running; True if stored."""
        if self.bag is None or self.meta.get("episode") != episode:
            return False  # the episode is over; too late
        self.meta["params"][node] = values
        fill_derived(self.meta)
        return True

    def flush(self, mono: float | None = None) -> int | None:
        """Flush buffered messages when due; returns the free bytes after a flush, or every :data:`DISK_CHECK_S` of
        ``mono`` (monotonic s; an audit: with ``flush_period`` 60 the disk was checked once a minute, 2.2 MB written
        below ``stop_free_mb``), None otherwise.

        Raises:
            RecordingError: the write failed.
        """
        bag = self.bag
        if bag is None:
            return None
        before = bag._last_flush  # noqa: SLF001 -- only to know whether a flush happened
        bag.maybe_flush()
        due = mono is not None and mono - self._disk_checked >= DISK_CHECK_S
        if bag._last_flush == before and not due:  # noqa: SLF001
            return None
        if mono is not None:
            self._disk_checked = mono
        return shutil.disk_usage(self.output_dir).free


#: s between two free-space checks of a running episode whatever its ``flush_period``
DISK_CHECK_S = 1.0

#: bytes kept free in every running episode's folder (``.reserve``), released before the bag is closed or failed, so
#: that a full disk still leaves room for the messages in memory (rosbags writes a chunk out once it passes 1 MiB: at
#: most 1 MiB and one message; 1 MiB was too little, a review), the MCAP summary (about 100 bytes per chunk flushed:
#: 0.7 MB for an hour at the default ``flush_period``), ``metadata.yaml`` and the sidecar (17 and 12 kB in the
#: ``make demo`` episodes, with the nodes' parameter snapshots)
RESERVE_BYTES = 4 << 20


def _reserve(bag_dir: Path) -> None:
    """Write the episode's reserve file (best effort: none when the disk has no room for it)."""
    try:
        with open(bag_dir / ".reserve", "wb") as fh:
            fh.write(os.urandom(RESERVE_BYTES))  # (zeros take no room on a compressing file system: ZFS, btrfs)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError:
        _release(bag_dir)


def _release(bag_dir: Path) -> None:
    (bag_dir / ".reserve").unlink(missing_ok=True)
