"""The ``mlflow-artifacts`` proxy: list, upload, download and delete artifacts by path,
plus ``mlflow/artifacts/list`` by run, which older clients use."""

from __future__ import annotations

import posixpath

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from modelship.tracking.protocol.http import ok, query
from modelship.tracking.protocol.paths import API, safe_path
from modelship.tracking.protocol.paths import ARTIFACTS as PREFIX
from modelship.tracking.store.artifacts import ArtifactStore, relative_to_proxy
from modelship.tracking.store.sql import TrackingStore


def artifacts_router(store: TrackingStore, artifacts: ArtifactStore) -> APIRouter:
    router = APIRouter(tags=["MLflow artifacts"])

    @router.get(PREFIX, summary="List the artifacts directly under a path")
    async def list_artifacts(request: Request) -> Response:
        path = safe_path(request.query_params.get("path"))
        files = await run_in_threadpool(artifacts.list, path)
        return ok({"files": files})

    @router.get(PREFIX + "/{path:path}", summary="Download an artifact")
    async def download_artifact(path: str) -> Response:
        path = safe_path(path, allow_root=False)
        local = await run_in_threadpool(artifacts.locate, path)
        if local is not None:
            return FileResponse(local, media_type="application/octet-stream")
        return StreamingResponse(artifacts.iter_file(path), media_type="application/octet-stream")

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

    @router.get(f"{API}/artifacts/list", summary="List a run's artifacts")
    async def list_run_artifacts(request: Request) -> Response:
        run = store.get_run(query(request, "run_id", "run_uuid") or "")
        root = run["info"]["artifact_uri"]
        sub = safe_path(request.query_params.get("path"))
        base = relative_to_proxy(root)
        files = await run_in_threadpool(artifacts.list, posixpath.join(base, sub) if sub else base)
        for f in files:
            f["path"] = posixpath.join(sub, f["path"]) if sub else f["path"]
        return ok({"root_uri": root, "files": files})

    return router
