"""The URL space of ``mlflow server`` that routing sees: its UI prefix, and what is not served.

``mlflow server`` registers every REST endpoint twice, under ``/api/`` (clients) and under
``/ajax-api/`` (its web UI), and a few UI calls only under ``/ajax-api/`` (metric history
in bulk, dataset search, upload-artifact, a logged model's files). ``MlflowPaths`` maps
``/ajax-api/...`` onto ``/api/...`` before anything else looks at the path (the bearer
check, the body limits, the hot writes, the router), so each endpoint is written once.

MLflow's GenAI surface (traces, the AI gateway, evaluation datasets, scorers, prompt
optimisation, GraphQL, ...) is not part of what Modelship serves; a call to it gets a 404
``ENDPOINT_NOT_FOUND`` in MLflow's error shape that names the feature, instead of the bare
"Not Found" of an unknown path. The table is listed in docs/tracking.md.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from modelship.tracking.errors import ENDPOINT_NOT_FOUND, TrackingError
from modelship.tracking.protocol.http import error_response

UI_PREFIX = "/ajax-api/"
API_PREFIX = "/api/"

# (path prefix after the /ajax-api/ mapping, the feature's name). A prefix matches a path
# equal to it or continuing with "/".
UNSUPPORTED: tuple[tuple[str, str], ...] = (
    ("/api/2.0/mlflow/traces", "Traces"),
    ("/api/3.0/mlflow/traces", "Traces"),
    ("/api/2.0/mlflow/unified-traces", "Traces"),
    ("/api/2.0/mlflow/get-online-trace-details", "Traces"),
    ("/api/2.0/mlflow/get-trace-artifact", "Traces"),
    ("/api/3.0/mlflow/get-trace-artifact", "Traces"),
    ("/v1/traces", "Traces (OpenTelemetry export)"),
    ("/api/3.0/mlflow/gateway", "The AI gateway"),
    ("/api/2.0/mlflow/gateway-proxy", "The AI gateway"),
    ("/gateway", "The AI gateway"),
    ("/api/3.0/mlflow/datasets", "Evaluation datasets"),
    ("/api/3.0/mlflow/scorers", "Scorers"),
    ("/api/3.0/mlflow/issues", "Issues"),
    ("/api/3.0/mlflow/label-schemas", "Label schemas"),
    ("/api/3.0/mlflow/review-queues", "Review queues"),
    ("/api/3.0/mlflow/prompt-optimization", "Prompt optimization"),
    ("/api/2.0/mlflow/runs/create-promptlab-run", "The prompt lab"),
    ("/api/3.0/mlflow/workspaces", "Workspaces"),
    ("/graphql", "GraphQL"),
    ("/api/graphql", "GraphQL"),
)


def unsupported_feature(path: str) -> str | None:
    """The name of the GenAI feature ``path`` belongs to, if it is one this server does not serve."""
    for prefix, feature in UNSUPPORTED:
        if path == prefix or path.startswith(prefix + "/"):
            return feature
    return None


def not_served(method: str, path: str, feature: str) -> TrackingError:
    return TrackingError(
        f"{method} {path}: {feature} are not served by Modelship's tracking server, which serves MLflow's "
        "tracking, logged-model, artifact and registry API (see docs/tracking.md, 'Not served')",
        ENDPOINT_NOT_FOUND,
    )


class MlflowPaths:
    """Map ``/ajax-api/`` onto ``/api/``; answer the GenAI endpoints ENDPOINT_NOT_FOUND.

    Repeated slashes at the start of the path are merged first, as MLflow's Flask routing
    merges them (``//model-versions/get-artifact`` is ``/model-versions/get-artifact``
    there); inside the path they stay, so that an artifact path ``/etc/x`` sent as
    ``artifacts/%2Fetc%2Fx`` is still refused as absolute, not made relative."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("//"):
            path = "/" + path.lstrip("/")
            scope = dict(scope, path=path, raw_path=path.encode())
        if path.startswith(UI_PREFIX):
            path = API_PREFIX + path[len(UI_PREFIX) :]
            scope = dict(scope, path=path, raw_path=path.encode())
        feature = unsupported_feature(path)
        if feature is not None:
            await error_response(not_served(scope["method"], path, feature))(scope, receive, send)
            return
        await self.app(scope, receive, send)
