"""A write-ahead log of acknowledged writes: append, scan, and a forwarding cursor.

Each record is framed as ``[length u32][crc32 u32][orjson payload]`` and carries a
sequence number. ``cursor`` holds the highest sequence number the server has accepted.
A torn record at the tail (the process died mid-append) fails its CRC and is cut off: it
was never acknowledged. Forwarding is idempotent, so a cursor that lags (it is written
without fsync) only means some records are sent again.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from pathlib import Path
from typing import Any

import orjson

_HEADER = struct.Struct(">II")


class DurableLog:
    def __init__(self, directory: str | Path, fsync: bool = False) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.blobs = self.dir / "blobs"
        self.blobs.mkdir(exist_ok=True)
        self.path = self.dir / "wal.log"
        self.cursor_path = self.dir / "cursor"
        self.fsync = fsync
        self.forwarded = self._read_cursor()
        self.pending: deque[dict[str, Any]] = deque(self._scan())
        self.last_seq: int = max([self.forwarded] + [int(r["seq"]) for r in self.pending])
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _read_cursor(self) -> int:
        try:
            return int(self.cursor_path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _scan(self) -> list[dict[str, Any]]:
        """Records not yet forwarded; truncates a torn tail."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        out: list[dict[str, Any]] = []
        pos = 0
        while pos + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, pos)
            payload = data[pos + _HEADER.size: pos + _HEADER.size + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            record = orjson.loads(payload)
            if record["seq"] > self.forwarded:
                out.append(record)
            pos += _HEADER.size + length
        if pos < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(pos)
        return out

    def append(self, record: dict[str, Any]) -> int:
        """Append and return the record's sequence number; durable against a process crash
        when this returns (and against power loss too with ``fsync=True``)."""
        self.last_seq += 1
        seq = self.last_seq
        record["seq"] = seq
        payload = orjson.dumps(record)
        os.write(self._fd, _HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        if self.fsync:
            os.fdatasync(self._fd)
        self.pending.append(record)
        return seq

    def mark_forwarded(self, seq: int) -> None:
        """Everything up to ``seq`` reached the server; drop it from the pending list."""
        self.forwarded = seq
        while self.pending and self.pending[0]["seq"] <= seq:
            self.pending.popleft()
        tmp = self.cursor_path.with_suffix(".tmp")
        tmp.write_text(str(seq))
        os.replace(tmp, self.cursor_path)
        if not self.pending:
            # The cursor is written before the truncation: a crash in between leaves only
            # records at or below the cursor, which a restart skips.
            os.ftruncate(self._fd, 0)

    def blob_path(self, name: str) -> Path:
        return self.blobs / name

    def close(self) -> None:
        os.close(self._fd)
