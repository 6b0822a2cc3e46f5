"""Read what is intact in an MCAP file that was never finished (writer killed, power lost).

A finished MCAP file ends with a summary and a footer; readers that seek (``mcap``'s
``make_reader``, ``rosbags``) need them. A recorder killed by SIGKILL (or a power loss) leaves the
data section only, possibly cut in the middle of a record. :func:`salvage` walks the data section
from the start and yields every schema, channel and message of every *complete* chunk, and stops at
the first record that is cut short or does not make sense (a torn write, zeros after a power loss):

* outer records: ``opcode u8, length u64, content``; a length past the end of the file is a cut;
* a chunk is used only as a whole: its compression is known, it decompresses to its declared size,
  its CRC (when set) matches, every inner record lies inside it, every message refers to a channel
  already seen and its log time lies within the chunk's declared time range.

Everything after the first bad record is ignored (a writer appends; what follows a cut is not
trustworthy). The result says how many bytes were used and why the walk stopped.

ROS-free; decompression with ``zstandard`` when installed, else the ``zstd`` module ``rosbags`` uses.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Union

MAGIC = b"\x89MCAP0\r\n"
OP_HEADER, OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
OP_DATA_END = 0x0F
#: opcodes a writer may put into the data section (MCAP spec); anything else means garbage
DATA_OPCODES = frozenset({0x01, 0x03, 0x04, 0x05, 0x06, 0x07, 0x09, 0x0C, 0x0F})


@dataclass(frozen=True)
class SchemaRec:
    id: int
    name: str
    encoding: str
    data: bytes


@dataclass(frozen=True)
class ChannelRec:
    id: int
    schema_id: int
    topic: str
    message_encoding: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class MessageRec:
    channel_id: int
    log_time: int
    data: bytes


Record = Union[SchemaRec, ChannelRec, MessageRec]


@dataclass
class SalvageResult:
    """How far :func:`salvage` got (filled in while iterating)."""

    total_bytes: int = 0
    good_bytes: int = 0  # offset just past the last record that was used
    complete: bool = False  # the data section ended properly (DataEnd record)
    stopped: str = ""  # why the walk stopped
    compression: str = ""  # chunk compression seen ('' or 'zstd')
    channels: dict[int, ChannelRec] = field(default_factory=dict)
    schemas: dict[int, SchemaRec] = field(default_factory=dict)


class _Bad(ValueError):
    pass


def _decompress(kind: str, data: bytes, size: int) -> bytes:
    if kind == "":
        return data
    if kind == "zstd":
        try:
            import zstandard

            return zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
        except ImportError:  # pragma: no cover - rosbags' own dependency
            from backports import zstd  # type: ignore[no-redef]

            return zstd.decompress(data)
    if kind == "lz4":
        import lz4.frame  # type: ignore[import-not-found]

        return lz4.frame.decompress(data)
    raise _Bad(f"unknown chunk compression {kind!r}")


class _Buf:
    """Bounds-checked little-endian reads from a bytes object."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos, self.end = data, pos, len(data) if end is None else end

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise _Bad("record runs past its end")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self) -> str:
        try:
            return self.take(self.u32()).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Bad(f"invalid string: {exc}") from None


def _parse_inner(op: int, buf: _Buf, res: SalvageResult, chunk_range: tuple[int, int] | None) -> Record | None:
    if op == OP_SCHEMA:
        sid, name, enc = buf.u16(), buf.string(), buf.string()
        return SchemaRec(sid, name, enc, buf.take(buf.u32()))
    if op == OP_CHANNEL:
        cid, sid, topic, enc = buf.u16(), buf.u16(), buf.string(), buf.string()
        meta_end = buf.u32() + buf.pos
        if meta_end > buf.end:
            raise _Bad("channel metadata runs past its record")
        meta: dict[str, str] = {}
        while buf.pos < meta_end:
            k = buf.string()
            meta[k] = buf.string()
        if sid and sid not in res.schemas:
            raise _Bad(f"channel {cid} refers to unknown schema {sid}")
        return ChannelRec(cid, sid, topic, enc, meta)
    if op == OP_MESSAGE:
        cid, _seq, log_time, _pub = buf.u16(), buf.u32(), buf.u64(), buf.u64()
        if cid not in res.channels:
            raise _Bad(f"message on unknown channel {cid}")
        if chunk_range is not None and not chunk_range[0] <= log_time <= chunk_range[1]:
            raise _Bad("message time outside its chunk's time range")
        return MessageRec(cid, log_time, buf.take(buf.end - buf.pos))
    return None


def _register(rec: Record | None, res: SalvageResult) -> None:
    if isinstance(rec, SchemaRec):
        res.schemas[rec.id] = rec
    elif isinstance(rec, ChannelRec):
        res.channels[rec.id] = rec


def _chunk(content: bytes, res: SalvageResult) -> list[Record]:
    buf = _Buf(content)
    start, end, size, crc = buf.u64(), buf.u64(), buf.u64(), buf.u32()
    kind = buf.string()
    raw = buf.take(buf.u64())
    try:
        data = _decompress(kind, raw, size)
    except _Bad:
        raise
    except Exception as exc:  # noqa: BLE001 - any decompression failure means a damaged chunk
        raise _Bad(f"chunk does not decompress: {exc}") from None
    if len(data) != size:
        raise _Bad(f"chunk decompresses to {len(data)} bytes, header says {size}")
    if crc and zlib.crc32(data) != crc:
        raise _Bad("chunk CRC mismatch")
    res.compression = res.compression or kind
    # parse the whole chunk before using any of it; channels/schemas count only once it is good
    staged = SalvageResult(channels=dict(res.channels), schemas=dict(res.schemas))
    out: list[Record] = []
    inner = _Buf(data)
    while inner.pos < inner.end:
        op, length = inner.take(1)[0], inner.u64()
        body = _Buf(data, inner.pos, inner.pos + length)
        inner.take(length)
        rec = _parse_inner(op, body, staged, (start, end))
        _register(rec, staged)
        if rec is not None:
            out.append(rec)
    return out


def salvage(path: str | Path, result: SalvageResult | None = None) -> Iterator[Record]:
    """Yield the schemas, channels and messages of every intact record of an MCAP file, in order.

    ``result`` (optional) is filled in while iterating: bytes used, why the walk stopped, the
    compression and the channels seen.

    Raises:
        OSError: the file cannot be read.
        ValueError: the file does not start with the MCAP magic (not an MCAP file at all).
    """
    res = result if result is not None else SalvageResult()
    with open(path, "rb") as fh:
        res.total_bytes = os.fstat(fh.fileno()).st_size
        magic = fh.read(len(MAGIC))
        if len(magic) < len(MAGIC) and MAGIC.startswith(magic):
            res.stopped = "file ends inside the MCAP magic (nothing was flushed)"
            return
        if magic != MAGIC:
            raise ValueError(f"{path} is not an MCAP file (bad magic)")
        res.good_bytes = pos = len(MAGIC)
        while True:
            head = fh.read(9)
            if len(head) == 0:
                res.stopped = "end of file (no summary: the writer did not finish)"
                return
            if len(head) < 9:
                res.stopped = f"record header cut short at byte {pos}"
                return
            op, length = head[0], struct.unpack("<Q", head[1:])[0]
            if op not in DATA_OPCODES:
                res.stopped = f"invalid record opcode 0x{op:02x} at byte {pos}"
                return
            if length > res.total_bytes - pos - 9:
                res.stopped = f"record at byte {pos} is cut short ({length} bytes declared)"
                return
            content = fh.read(length)
            if op == OP_DATA_END:
                res.complete, res.good_bytes = True, pos + 9 + length
                res.stopped = "end of data section"
                return
            try:
                if op == OP_CHUNK:
                    recs = _chunk(content, res)
                else:
                    rec = _parse_inner(op, _Buf(content), res, None)
                    recs = [rec] if rec is not None else []
            except _Bad as exc:
                res.stopped = f"damaged record at byte {pos}: {exc}"
                return
            for rec in recs:
                _register(rec, res)
                yield rec
            pos += 9 + length
            res.good_bytes = pos
