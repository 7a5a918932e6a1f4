"""A write-ahead log of acknowledged writes: append, read from the head, and a cursor.

Each record is framed as ``[length u32][crc32 u32][orjson payload]`` and carries a
sequence number. ``cursor`` holds the highest sequence number the server has accepted.
A torn record at the tail (the process died mid-append) fails its CRC and is cut off: it
was never acknowledged. Forwarding is idempotent, so a cursor that lags (it is written
without fsync) only means some records are sent again.

The pending records live on disk, not in memory: the log keeps counts, byte totals and
file offsets, and reads records from the head as the forwarder asks for them (``head``),
so an outage costs disk, bounded by the sidecar's cap, and not memory. A restart streams
the file instead of loading it. The file is truncated whenever everything was forwarded,
and rewritten without its forwarded prefix (``_compact``) when that prefix outgrows the rest,
so a log that never quite empties does not grow without end either.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

_HEADER = struct.Struct(">II")
_READ_AHEAD = 256 << 10
# The forwarded prefix is dropped from the file once it is this large and larger than what
# is still pending: each byte is then copied at most once per byte forwarded before it.
COMPACT_MIN_BYTES = 64 << 20


class DurableLog:
    def __init__(self, directory: str | Path, fsync: bool = False, compact_min_bytes: int = COMPACT_MIN_BYTES) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.blobs = self.dir / "blobs"
        self.blobs.mkdir(exist_ok=True)
        self.path = self.dir / "wal.log"
        self.cursor_path = self.dir / "cursor"
        self.fsync = fsync
        self.compact_min_bytes = compact_min_bytes
        self.forwarded = self._read_cursor()
        self.pending_count = 0
        self.pending_bytes = 0
        """Bytes the pending records hold on disk: their frames and their artifact blobs."""
        self.last_seq = self.forwarded
        self._head = 0  # file offset of the first pending record
        self._end = 0  # file offset after the last record
        # Pending records read from the head and not yet forwarded: (record, frame, blob bytes).
        self._window: deque[tuple[dict[str, Any], int, int]] = deque()
        self._window_end = 0
        self._buf, self._buf_at = b"", 0
        self.path.with_suffix(".tmp").unlink(missing_ok=True)  # a compaction that died
        self._scan()
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._rfd = os.open(self.path, os.O_RDONLY)

    def _read_cursor(self) -> int:
        try:
            return int(self.cursor_path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _scan(self) -> None:
        """Count the records not yet forwarded, in one streaming pass; cut a torn tail."""
        if not self.path.exists():
            return
        size = self.path.stat().st_size
        pos = 0
        with open(self.path, "rb") as f:
            while pos + _HEADER.size <= size:
                length, crc = _HEADER.unpack(f.read(_HEADER.size))
                if pos + _HEADER.size + length > size:
                    break  # a torn (or corrupt) length: never read past the file
                payload = f.read(length)
                if zlib.crc32(payload) != crc:
                    break
                record = orjson.loads(payload)
                pos += _HEADER.size + length
                if record["seq"] <= self.forwarded:
                    self._head = pos
                else:
                    self.pending_count += 1
                    self.pending_bytes += _HEADER.size + length + self._blob_size(record)
                    self.last_seq = max(self.last_seq, int(record["seq"]))
        if pos < size:
            with open(self.path, "r+b") as f:
                f.truncate(pos)
        self._end, self._window_end = pos, self._head

    def _blob_size(self, record: dict[str, Any]) -> int:
        if not record.get("blob"):
            return 0
        try:
            return self.blob_path(record["blob"]).stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, record: dict[str, Any]) -> int:
        """Append and return the record's sequence number; durable against a process crash
        when this returns (and against power loss too with ``fsync=True``)."""
        self.last_seq += 1
        seq = self.last_seq
        record["seq"] = seq
        payload = orjson.dumps(record)
        frame = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        try:
            if os.write(self._fd, frame) != len(frame):
                raise OSError("short write to the log")
            if self.fsync:
                os.fdatasync(self._fd)
        except OSError:
            # A disk full mid-frame: cut the torn frame off now, or a restart would stop at it
            # and cut off every acknowledged record appended after it. Not acknowledged.
            os.ftruncate(self._fd, self._end)
            self.last_seq -= 1
            raise
        self._end += len(frame)
        self.pending_count += 1
        self.pending_bytes += len(frame) + self._blob_size(record)
        return seq

    # ---- reading from the head -----------------------------------------------------------
    def _pread(self, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset``, through a read-ahead buffer (records are small)."""
        if not (self._buf_at <= offset and offset + n <= self._buf_at + len(self._buf)):
            self._buf = os.pread(self._rfd, max(n, _READ_AHEAD), offset)
            self._buf_at = offset
        start = offset - self._buf_at
        return self._buf[start : start + n]

    def _read_next(self) -> bool:
        """Read the record after the window into it; False at the end of the log."""
        if self._window_end >= self._end:
            return False
        length, _ = _HEADER.unpack(self._pread(self._window_end, _HEADER.size))
        record = orjson.loads(self._pread(self._window_end + _HEADER.size, length))
        frame = _HEADER.size + length
        self._window.append((record, frame, self._blob_size(record)))
        self._window_end += frame
        return True

    def head(self) -> Iterator[dict[str, Any]]:
        """The pending records in order, read from disk as far as the caller iterates; what
        was read stays in memory until it is forwarded, so iterate only as far as needed."""
        n = 0
        while n < len(self._window) or self._read_next():
            yield self._window[n][0]
            n += 1

    @property
    def pending(self) -> Iterator[dict[str, Any]]:
        """Every pending record, streamed from a snapshot of the file (not kept in memory).
        Safe to iterate in another thread: appends after the call are not seen."""
        # Opened now, not when iteration starts: a compaction renames a new file in.
        return _stream(open(self.path, "rb"), self._head, self._end)

    # ---- forwarding ----------------------------------------------------------------------
    def mark_forwarded(self, seq: int) -> None:
        """Everything up to ``seq`` reached the server (or the dead letter): drop it from
        the pending records and delete the artifact blobs it held."""
        while self.pending_count and (self._window or self._read_next()):
            record, frame, blob = self._window[0]
            if record["seq"] > seq:
                break
            self._window.popleft()
            self._head += frame
            self.pending_count -= 1
            self.pending_bytes -= frame + blob
            if record.get("blob"):
                self.blob_path(record["blob"]).unlink(missing_ok=True)
        self.forwarded = seq
        tmp = self.cursor_path.with_suffix(".tmp")
        tmp.write_text(str(seq))
        os.replace(tmp, self.cursor_path)
        if not self.pending_count:
            # The cursor is written before the truncation: a crash in between leaves only
            # records at or below the cursor, which a restart skips.
            os.ftruncate(self._fd, 0)
            self._head = self._end = self._window_end = 0
            self._buf, self._buf_at = b"", 0
            self._window.clear()
        elif self._head >= self.compact_min_bytes and self._head > self._end - self._head:
            self._compact()

    def _compact(self) -> None:
        """Rewrite the file as its pending part only. The new file replaces the old one in
        one rename: a crash leaves either file, both valid (records at or below the cursor
        are skipped on restart)."""
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            offset = self._head
            while offset < self._end:
                chunk = os.pread(self._rfd, min(1 << 20, self._end - offset), offset)
                out.write(chunk)
                offset += len(chunk)
            if self.fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, self.path)
        os.close(self._fd)
        os.close(self._rfd)
        self._open()
        shift = self._head
        self._head, self._end, self._window_end = 0, self._end - shift, self._window_end - shift
        self._buf, self._buf_at = b"", 0

    @property
    def file_bytes(self) -> int:
        return self._end

    def blob_path(self, name: str) -> Path:
        return self.blobs / name

    def close(self) -> None:
        os.close(self._fd)
        os.close(self._rfd)


def _stream(f: BinaryIO, start: int, end: int) -> Iterator[dict[str, Any]]:
    with f:
        f.seek(start)
        pos = start
        while pos < end:
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return  # truncated meanwhile: everything was forwarded
            length, _ = _HEADER.unpack(header)
            payload = f.read(length)
            if len(payload) < length:
                return
            yield orjson.loads(payload)
            pos += _HEADER.size + length
