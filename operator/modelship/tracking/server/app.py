"""``create_app(settings, store)``: the FastAPI application of the tracking server."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelship import __version__
from modelship.tracking import errors
from modelship.tracking.errors import TrackingError
from modelship.tracking.logs import event
from modelship.tracking.protocol import messages
from modelship.tracking.protocol.http import error_response, ok
from modelship.tracking.protocol.paths import API, TABLE_RUNS_SEARCH
from modelship.tracking.server.api import tracking_router
from modelship.tracking.server.artifacts import ArtifactRoots, artifacts_router, model_version_artifacts_router
from modelship.tracking.server.hotpath import HotPaths
from modelship.tracking.server.limits import BodyLimits
from modelship.tracking.server.paths import MlflowPaths
from modelship.tracking.server.registry import READ_POSTS as REGISTRY_READ_POSTS
from modelship.tracking.server.registry import RegistryReader, no_cluster_router, registry_router
from modelship.tracking.server.registry_write import RegistryWrites, WriteSettings
from modelship.tracking.server.ui import ui_router
from modelship.tracking.server.ui_api import ui_api_router
from modelship.tracking.server.ui_cluster import ui_cluster_router
from modelship.tracking.settings import ServerSettings
from modelship.tracking.store.artifacts import ArtifactStore, open_artifact_store
from modelship.tracking.store.sql import TrackingStore

log = logging.getLogger("modelship.tracking.server")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Searches are POSTs that write nothing; a reader with no token may call them.
READ_POSTS = (
    frozenset(
        {
            f"{API}/runs/search",
            TABLE_RUNS_SEARCH,
            f"{API}/experiments/search",
            f"{API}/experiments/search-datasets",
            f"{API}/logged-models/search",
        }
    )
    | REGISTRY_READ_POSTS
)


class BearerAuth:
    """Refuse writes without ``Authorization: Bearer <token>`` (reads stay open)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in WRITE_METHODS and scope["path"] not in READ_POSTS:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                exc = TrackingError("A valid bearer token is required for writes", errors.UNAUTHENTICATED)
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class LastResort:
    """Answer an unexpected exception with MLflow's 500 body, and return.

    Starlette's handler for ``Exception`` sends its answer and then re-raises, and uvicorn
    then closes the connection: a client's next request on it fails, though the error was
    one request's. Raised from here only when the answer had already begun (a download
    that broke off), as the connection cannot carry on then.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:
                raise
            event(log, "unhandled error", logging.ERROR, path=scope["path"], error=repr(exc))
            failure = TrackingError("Internal server error", errors.INTERNAL_ERROR)
            await error_response(failure)(scope, receive, send)


MLFLOW_API_VERSION = "3.17.2"
"""The MLflow release whose tracking REST API this server answers, reported by ``/version``.

The mlflow client reads ``/version`` to gate features on the server's release (3.17's
``log_spans`` needs at least 3.4), so it must be an MLflow version, not Modelship's own
(``0.1.0`` made the client refuse before sending anything). It is the pinned client's
release, against which the compatibility tests run; what this server does not serve of that
release (traces, the AI gateway, ...) is answered ENDPOINT_NOT_FOUND (``paths.py``).
"""


def server_info(store: TrackingStore) -> dict[str, Any]:
    # The capability document that MLflow 3.x clients read before choosing upload paths.
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
        "server": "modelship",
        "version": __version__,
        "mlflow_version": MLFLOW_API_VERSION,
        "database": store.engine.dialect.name,
    }


def _run_artifact_uri(store: TrackingStore, run_id: str) -> str | None:
    try:
        return str(store.get_run(run_id)["info"]["artifact_uri"])
    except TrackingError:
        return None  # not a run of this server: the source is kept as sent


def _model_artifact_uri(store: TrackingStore, model_id: str) -> str | None:
    try:
        return str(store.logged_models.get_logged_model(model_id)["info"]["artifact_uri"])
    except TrackingError:
        return None  # not a logged model of this server


def _version_of_model(store: TrackingStore, model_id: str, name: str, version: str) -> None:
    try:
        store.logged_models.add_model_version(model_id, name, version)
    except TrackingError:
        pass  # a models:/ source of another server: nothing of ours to tag


def create_app(
    settings: ServerSettings,
    store: TrackingStore,
    artifacts: ArtifactStore | None = None,
    registry: RegistryReader | None = None,
    registry_writes: WriteSettings | None = None,
) -> FastAPI:
    """The app; with ``registry``, also the MLflow registry API over ModelVersion and
    RegisteredModel objects (its writes with ``registry_writes``; without, they are refused)."""
    artifacts = artifacts or open_artifact_store(settings.artifacts_destination)
    app = FastAPI(
        title="Modelship tracking server",
        version=__version__,
        description="The MLflow Tracking REST API, served by Modelship.",
    )
    app.include_router(tracking_router(store))
    app.include_router(artifacts_router(store, artifacts, ArtifactRoots(artifacts, store.artifact_root)))
    if registry is not None:
        writer = None
        if registry_writes is not None:
            writer = RegistryWrites(
                registry,
                registry_writes,
                run_artifact_uri=lambda run: _run_artifact_uri(store, run),
                model_artifact_uri=lambda model: _model_artifact_uri(store, model),
                version_of_model=lambda model, name, version: _version_of_model(store, model, name, version),
            )
        app.include_router(registry_router(registry, writer))
        app.include_router(model_version_artifacts_router(registry, artifacts))
    else:
        app.include_router(no_cluster_router())
    app.include_router(ui_api_router(store, artifacts))
    app.include_router(ui_cluster_router(registry))
    app.include_router(ui_router())

    @app.get("/api/3.0/mlflow/server-info", tags=["server"])
    async def get_server_info() -> Response:
        return ok(server_info(store))

    @app.get("/health", tags=["server"])
    async def health() -> Response:
        return Response("OK", media_type="text/plain")

    @app.get("/version", tags=["server"])
    async def version() -> Response:
        return Response(MLFLOW_API_VERSION, media_type="text/plain")

    @app.exception_handler(TrackingError)
    async def tracking_error(_: Request, exc: TrackingError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        return error_response(errors.invalid(f"Invalid request: {exc.errors()[:3]}"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = errors.ENDPOINT_NOT_FOUND if exc.status_code in (404, 405) else errors.BAD_REQUEST
        body = TrackingError(f"{request.method} {request.url.path}: {exc.detail}", code)
        response = error_response(body)
        response.status_code = exc.status_code
        return response

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        # Only for the middlewares outside LastResort, which answers the routes' errors.
        event(log, "unhandled error", logging.ERROR, path=request.url.path, error=repr(exc))
        return error_response(TrackingError("Internal server error", errors.INTERNAL_ERROR))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _, defs = models_json_schema(
                [(m, "validation") for m in messages.ALL], ref_template="#/components/schemas/{model}"
            )
            spec.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # Each middleware added runs before the ones added earlier: the /ajax-api/ mapping and the
    # GenAI refusals, the bearer token check, the body limits, the hot paths, the last
    # resort, then Starlette's exception handling.
    app.add_middleware(LastResort)
    app.add_middleware(HotPaths, store=store, max_body=settings.max_log_batch_body_bytes)
    app.add_middleware(BodyLimits, settings=settings)
    if settings.auth_token:  # it guards the hot writes too
        app.add_middleware(BearerAuth, token=settings.auth_token)
    app.add_middleware(MlflowPaths)
    return app
