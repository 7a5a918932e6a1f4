"""The ``mlflow-artifacts`` proxy: list, upload, download and delete artifacts by path,
plus ``mlflow/artifacts/list`` by run, which older clients use, and the UI's calls:
``upload-artifact`` into a run, a logged model's directories and files."""

from __future__ import annotations

import posixpath
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from modelship.tracking.errors import BAD_REQUEST, TrackingError, invalid
from modelship.tracking.protocol.http import ok, query
from modelship.tracking.protocol.paths import API, UPLOAD_ARTIFACT, safe_path
from modelship.tracking.protocol.paths import ARTIFACTS as PREFIX
from modelship.tracking.store.artifacts import ArtifactStore, relative_to_proxy
from modelship.tracking.store.sql import TrackingStore

MAX_UI_UPLOAD_BYTES = 10 << 20
"""``upload-artifact``'s bound, as in MLflow (its UI uploads small files; clients use the proxy)."""


def artifacts_router(store: TrackingStore, artifacts: ArtifactStore) -> APIRouter:
    router = APIRouter(tags=["MLflow artifacts"])

    @router.get(PREFIX, summary="List the artifacts directly under a path")
    async def list_artifacts(request: Request) -> Response:
        path = safe_path(request.query_params.get("path"))
        files = await run_in_threadpool(artifacts.list, path)
        return ok({"files": files})

    async def _listing(root: str, directory: str | None) -> dict[str, Any]:
        """The files under ``directory`` of an artifact root, with paths relative to the root."""
        sub = safe_path(directory)
        base = relative_to_proxy(root)
        files = await run_in_threadpool(artifacts.list, posixpath.join(base, sub) if sub else base)
        for f in files:
            f["path"] = posixpath.join(sub, f["path"]) if sub else f["path"]
        return {"root_uri": root, "files": files}

    async def _send(path: str) -> Response:
        local = await run_in_threadpool(artifacts.locate, path)
        if local is not None:
            return FileResponse(local, media_type="application/octet-stream")
        return StreamingResponse(artifacts.iter_file(path), media_type="application/octet-stream")

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
        base = relative_to_proxy(store.get_run(run_id)["info"]["artifact_uri"])
        data = await request.body()
        if not data:
            raise invalid("Request must specify data.")
        if len(data) > MAX_UI_UPLOAD_BYTES:
            raise invalid("Artifact size is too large. Max size is 10MB.")

        async def body() -> AsyncIterator[bytes]:
            yield data

        await artifacts.write(posixpath.join(base, path), body())
        return ok()

    @router.get(f"{API}/logged-models/{{model_id}}/artifacts/directories", summary="List a logged model's artifacts")
    async def list_logged_model_artifacts(model_id: str, request: Request) -> Response:
        root = store.logged_models.get_logged_model(model_id)["info"]["artifact_uri"]
        return ok(await _listing(root, request.query_params.get("artifact_directory_path")))

    @router.get(f"{API}/logged-models/{{model_id}}/artifacts/files", summary="Download a file of a logged model")
    async def download_logged_model_artifact(model_id: str, request: Request) -> Response:
        wanted = request.query_params.get("artifact_file_path")
        if not wanted:
            raise TrackingError('Request must include the "artifact_file_path" query parameter.', BAD_REQUEST)
        path = posixpath.join(
            relative_to_proxy(store.logged_models.get_logged_model(model_id)["info"]["artifact_uri"]),
            safe_path(wanted, allow_root=False),
        )
        return await _send(path)

    @router.get(f"{API}/artifacts/list", summary="List a run's artifacts")
    async def list_run_artifacts(request: Request) -> Response:
        run = store.get_run(query(request, "run_id", "run_uuid") or "")
        return ok(await _listing(run["info"]["artifact_uri"], request.query_params.get("path")))

    return router
