"""The ``mlflow-artifacts`` proxy: list, upload, download and delete artifacts by path,
plus ``mlflow/artifacts/list`` by run, which older clients use, and the UI's calls:
``upload-artifact`` into a run, a logged model's directories and files."""

from __future__ import annotations

import posixpath
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from modelship.tracking.errors import BAD_REQUEST, TrackingError, invalid
from modelship.tracking.protocol.http import ok, query
from modelship.tracking.protocol.paths import API, UPLOAD_ARTIFACT, safe_path
from modelship.tracking.protocol.paths import ARTIFACTS as PREFIX
from modelship.tracking.store.artifacts import ArtifactStore, LocalArtifactStore, relative_to_proxy
from modelship.tracking.store.sql import TrackingStore

MAX_UI_UPLOAD_BYTES = 10 << 20
"""``upload-artifact``'s bound, as in MLflow (its UI uploads small files; clients use the proxy)."""


class ArtifactRoots:
    """Which store holds an artifact URI of a run or logged model, and the path in it:
    ``mlflow-artifacts:/`` is the proxy; a ``file://`` URI under the server's local
    ``--default-artifact-root`` (MLflow's plain local root) is that directory. Any other
    local path is refused: a client could otherwise name any file of the server's machine
    as an experiment's location and read it through the server."""

    def __init__(self, proxy: ArtifactStore, local_root: str | None = None) -> None:
        self.proxy = proxy
        self.local: LocalArtifactStore | None = None
        if local_root and local_root.startswith("file:"):
            self.local = LocalArtifactStore(urllib.parse.unquote(urllib.parse.urlparse(local_root).path))

    def resolve(self, uri: str) -> tuple[ArtifactStore, str]:
        if uri.startswith("file:") and self.local is not None:
            path = Path(urllib.parse.unquote(urllib.parse.urlparse(uri).path)).resolve()
            if path == self.local.root or self.local.root in path.parents:
                relative = path.relative_to(self.local.root).as_posix()
                return self.local, "" if relative == "." else relative
        return self.proxy, relative_to_proxy(uri)


def artifacts_router(store: TrackingStore, artifacts: ArtifactStore, roots: ArtifactRoots | None = None) -> APIRouter:
    router = APIRouter(tags=["MLflow artifacts"])
    roots = roots or ArtifactRoots(artifacts)

    @router.get(PREFIX, summary="List the artifacts directly under a path")
    async def list_artifacts(request: Request) -> Response:
        path = safe_path(request.query_params.get("path"))
        files = await run_in_threadpool(artifacts.list, path)
        return ok({"files": files})

    async def _listing(root: str, directory: str | None) -> dict[str, Any]:
        """The files under ``directory`` of an artifact root, with paths relative to the root."""
        sub = safe_path(directory)
        where, base = roots.resolve(root)
        files = await run_in_threadpool(where.list, posixpath.join(base, sub) if sub else base)
        for f in files:
            f["path"] = posixpath.join(sub, f["path"]) if sub else f["path"]
        return {"root_uri": root, "files": files}

    async def _send(path: str, where: ArtifactStore = artifacts) -> Response:
        local = await run_in_threadpool(where.locate, path)
        if local is not None:
            return FileResponse(local, media_type="application/octet-stream")
        return StreamingResponse(where.iter_file(path), media_type="application/octet-stream")

    @router.get(PREFIX + "/{path:path}", summary="Download an artifact")
    async def download_artifact(path: str) -> Response:
        return await _send(safe_path(path, allow_root=False))

    @router.put(PREFIX + "/{path:path}", summary="Upload an artifact (the raw body)")
    async def upload_artifact(path: str, request: Request) -> Response:
        path = safe_path(path, allow_root=False)
        await artifacts.write(path, request.stream())
        return ok()

    @router.delete(PREFIX + "/{path:path}", summary="Delete an artifact or a directory")
    async def delete_artifact(path: str) -> Response:
        path = safe_path(path, allow_root=False)
        await run_in_threadpool(artifacts.delete, path)
        return ok()

    @router.post(UPLOAD_ARTIFACT, summary="Upload one file into a run's artifacts (the UI's call, at most 10 MB)")
    async def upload_run_artifact(request: Request) -> Response:
        run_id = request.query_params.get("run_uuid")
        if not run_id:
            raise invalid("Request must specify run_uuid.")
        path = request.query_params.get("path")
        if not path:
            raise invalid("Request must specify path.")
        path = safe_path(path, allow_root=False)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_UI_UPLOAD_BYTES:
            raise invalid("Artifact size is too large. Max size is 10MB.")
        where, base = roots.resolve(store.get_run(run_id)["info"]["artifact_uri"])
        data = await request.body()
        if not data:
            raise invalid("Request must specify data.")
        if len(data) > MAX_UI_UPLOAD_BYTES:
            raise invalid("Artifact size is too large. Max size is 10MB.")

        async def body() -> AsyncIterator[bytes]:
            yield data

        await where.write(posixpath.join(base, path), body())
        return ok()

    @router.get("/get-artifact", summary="Download one file of a run's artifacts (the UI's call)")
    async def get_run_artifact(request: Request) -> Response:
        path = safe_path(request.query_params.get("path"), allow_root=False)
        run = store.get_run(query(request, "run_id", "run_uuid") or "")
        where, base = roots.resolve(run["info"]["artifact_uri"])
        return await _send(posixpath.join(base, path), where)

    @router.get(f"{API}/logged-models/{{model_id}}/artifacts/directories", summary="List a logged model's artifacts")
    async def list_logged_model_artifacts(model_id: str, request: Request) -> Response:
        root = store.logged_models.get_logged_model(model_id)["info"]["artifact_uri"]
        return ok(await _listing(root, request.query_params.get("artifact_directory_path")))

    @router.get(f"{API}/logged-models/{{model_id}}/artifacts/files", summary="Download a file of a logged model")
    async def download_logged_model_artifact(model_id: str, request: Request) -> Response:
        wanted = request.query_params.get("artifact_file_path")
        if not wanted:
            raise TrackingError('Request must include the "artifact_file_path" query parameter.', BAD_REQUEST)
        where, base = roots.resolve(store.logged_models.get_logged_model(model_id)["info"]["artifact_uri"])
        return await _send(posixpath.join(base, safe_path(wanted, allow_root=False)), where)

    @router.get(f"{API}/artifacts/list", summary="List a run's artifacts")
    async def list_run_artifacts(request: Request) -> Response:
        run = store.get_run(query(request, "run_id", "run_uuid") or "")
        return ok(await _listing(run["info"]["artifact_uri"], request.query_params.get("path")))

    return router


def model_version_artifacts_router(registry: Any, artifacts: ArtifactStore) -> APIRouter:
    """``GET /model-versions/get-artifact`` (``name``, ``version``, ``path``): one file of a
    registered version's model directory, as MLflow's UI reads it; served when the version's
    source resolved to a location behind this server's proxy."""
    from modelship.tracking.server.registry import read_registry

    router = APIRouter(tags=["MLflow artifacts"])

    @router.get("/model-versions/get-artifact", summary="Download one file of a registered model version")
    async def get_model_version_artifact(request: Request) -> Response:
        path = safe_path(request.query_params.get("path"), allow_root=False)
        name, version = query(request, "name") or "", query(request, "version") or ""
        reg = await run_in_threadpool(read_registry, registry)
        obj = reg.version(name, version)
        uri = (obj.get("status") or {}).get("artifactUri") or (obj.get("spec") or {}).get("source") or ""
        full = posixpath.join(relative_to_proxy(uri), path)
        local = await run_in_threadpool(artifacts.locate, full)
        if local is not None:
            return FileResponse(local, media_type="application/octet-stream")
        return StreamingResponse(artifacts.iter_file(full), media_type="application/octet-stream")

    return router
