"""Artifact stores behind the ``mlflow-artifacts`` proxy: a local directory (or a mounted
PVC) by default, S3-compatible object storage for ``s3://bucket/prefix``.

Paths are relative, POSIX, and checked by the protocol's ``safe_path`` before any I/O.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol

from modelship.tracking.errors import invalid, not_found
from modelship.tracking.protocol.paths import UPLOADS, safe_path
from modelship.uris import ArtifactsURI, parse, scheme_of


class ArtifactStore(Protocol):
    """What the proxy needs. ``locate`` raises RESOURCE_DOES_NOT_EXIST for a missing file
    and returns a local path when the store has one (else the file is streamed)."""

    def list(self, path: str) -> list[dict[str, Any]]: ...
    def exists_file(self, path: str) -> bool: ...
    def locate(self, path: str) -> Path | None: ...
    def iter_file(self, path: str) -> Iterator[bytes]: ...
    async def write(self, path: str, chunks: AsyncIterator[bytes]) -> int: ...
    def delete(self, path: str) -> None: ...


class LocalArtifactStore:
    """Artifacts under one directory; uploads land in a temp file and are renamed in place."""

    def __init__(self, root: str) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / UPLOADS
        self._tmp.mkdir(exist_ok=True)

    def _full(self, path: str) -> Path:
        full = (self.root / safe_path(path)).resolve()
        if full != self.root and self.root not in full.parents:
            raise invalid(f"Invalid artifact path: '{path}'")
        return full

    def list(self, path: str) -> list[dict[str, Any]]:
        full = self._full(path)
        if full.is_file():
            return [{"path": full.name, "is_dir": False, "file_size": full.stat().st_size}]
        if not full.is_dir():
            return []
        out: list[dict[str, Any]] = []
        for entry in sorted(os.scandir(full), key=lambda e: e.name):
            if full == self.root and entry.name == UPLOADS:
                continue
            if entry.is_dir():
                out.append({"path": entry.name, "is_dir": True})
            else:
                out.append({"path": entry.name, "is_dir": False, "file_size": entry.stat().st_size})
        return out

    def exists_file(self, path: str) -> bool:
        return self._full(path).is_file()

    def locate(self, path: str) -> Path | None:
        full = self._full(path)
        if not full.is_file():
            raise not_found(f"Artifact '{path}' does not exist")
        return full

    def iter_file(self, path: str) -> Iterator[bytes]:  # pragma: no cover - local uses FileResponse
        with open(self._full(path), "rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk

    def _check_target(self, path: str, full: Path) -> None:
        """Refuse an upload that would replace a directory or go under a file: the file
        system would refuse it only after the whole body was received."""
        if full.is_dir():
            raise invalid(f"Invalid artifact path: '{path}' is a directory; upload files into it")
        parent = full.parent
        while parent != self.root and not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise invalid(
                f"Invalid artifact path: '{parent.relative_to(self.root)}' is a file, "
                f"so '{path}' cannot be created under it"
            )

    async def write(self, path: str, chunks: AsyncIterator[bytes]) -> int:
        path = safe_path(path, allow_root=False)
        full = self._full(path)
        self._check_target(path, full)
        try:
            full.parent.mkdir(parents=True, exist_ok=True)
            # Made again if someone removed it from the volume: uploads keep working.
            self._tmp.mkdir(exist_ok=True)
        except (FileExistsError, NotADirectoryError):  # a file appeared meanwhile
            self._check_target(path, full)
            raise
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=uuid.uuid4().hex[:8])
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in chunks:
                    f.write(chunk)
                    size += len(chunk)
            try:
                os.replace(tmp, full)
            except IsADirectoryError:  # a directory appeared meanwhile
                raise invalid(f"Invalid artifact path: '{path}' is a directory") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    def delete(self, path: str) -> None:
        full = self._full(safe_path(path, allow_root=False))
        if full.is_dir():
            shutil.rmtree(full)
        elif full.exists():
            full.unlink()
        else:
            raise not_found(f"Artifact '{path}' does not exist")


def open_artifact_store(destination: str) -> ArtifactStore:
    if scheme_of(destination) == "s3":
        from modelship.tracking.store.s3 import S3ArtifactStore

        return S3ArtifactStore(destination)
    destination = destination.removeprefix("file://")
    return LocalArtifactStore(destination)


def relative_to_proxy(uri: str) -> str:
    """``mlflow-artifacts:/1/abc/artifacts`` -> ``1/abc/artifacts`` (the proxy's path)."""
    if scheme_of(uri) == "mlflow-artifacts":
        source = parse(uri)
        assert isinstance(source, ArtifactsURI)
        return source.path
    raise invalid(f"Artifact URI {uri!r} is not served by this server")
