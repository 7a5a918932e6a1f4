"""Artifacts in S3-compatible object storage (AWS S3, MinIO, Ceph RGW...) through boto3.

``s3://bucket/prefix``. The client is ``modelship.uris.s3_client``, configured as MLflow's
(``MLFLOW_S3_ENDPOINT_URL``, else boto3's own ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``;
``MLFLOW_S3_IGNORE_TLS``); credentials from boto3's usual chain (environment, IRSA / pod
identity, config files).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from modelship.tracking.errors import invalid, not_found
from modelship.tracking.protocol.paths import safe_path
from modelship.uris import S3URI, URIError, parse, s3_client


class S3ArtifactStore:
    def __init__(self, destination: str, client: Any = None) -> None:
        try:
            source = parse(destination)
        except URIError:
            source = None
        if not isinstance(source, S3URI):
            raise invalid(f"Invalid S3 destination {destination!r}")
        self.bucket, self.prefix = source.bucket, source.key
        self.s3 = client if client is not None else s3_client()

    def _key(self, path: str) -> str:
        path = safe_path(path)
        return "/".join(p for p in (self.prefix, path) if p)

    def _missing(self, exc: Exception) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def list(self, path: str) -> list[dict[str, Any]]:
        key = self._key(path)
        if key and self.exists_file(path):
            size = self.s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
            return [{"path": key.rsplit("/", 1)[-1], "is_dir": False, "file_size": size}]
        prefix = f"{key}/" if key else ""
        out: list[dict[str, Any]] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for cp in page.get("CommonPrefixes", []):
                out.append({"path": cp["Prefix"][len(prefix) :].rstrip("/"), "is_dir": True})
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if name:
                    out.append({"path": name, "is_dir": False, "file_size": obj["Size"]})
        return sorted(out, key=lambda f: f["path"])

    def exists_file(self, path: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=self._key(path))
            return True
        except Exception as exc:
            if self._missing(exc):
                return False
            raise

    def locate(self, path: str) -> Path | None:
        if not self.exists_file(path):
            raise not_found(f"Artifact '{path}' does not exist")
        return None

    def iter_file(self, path: str) -> Iterator[bytes]:
        body = self.s3.get_object(Bucket=self.bucket, Key=self._key(path))["Body"]
        try:
            yield from body.iter_chunks(1 << 20)
        finally:
            body.close()

    async def write(self, path: str, chunks: AsyncIterator[bytes]) -> int:
        key = self._key(safe_path(path, allow_root=False))
        size = 0
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as buf:
            async for chunk in chunks:
                buf.write(chunk)
                size += len(chunk)
            buf.seek(0)
            await run_in_threadpool(self.s3.upload_fileobj, buf, self.bucket, key)
        return size

    def delete(self, path: str) -> None:
        key = self._key(safe_path(path, allow_root=False))
        if self.exists_file(path):
            self.s3.delete_object(Bucket=self.bucket, Key=key)
            return
        keys = [
            obj["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=key + "/")
            for obj in page.get("Contents", [])
        ]
        if not keys:
            raise not_found(f"Artifact '{path}' does not exist")
        for i in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]]})
