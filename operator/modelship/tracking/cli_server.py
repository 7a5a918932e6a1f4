"""``modelship tracking-server``: flags named as ``mlflow server`` names them."""

from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path

from modelship.tracking import logs
from modelship.tracking.settings import ServerSettings

log = logging.getLogger("modelship.tracking.server")


def artifact_root_uri(root: str | None) -> str:
    """``--default-artifact-root`` as the URI new experiments get: a local path becomes an
    absolute ``file://`` URI, as ``mlflow server`` makes it; unset is the proxy."""
    if not root:
        return "mlflow-artifacts:/"
    if "://" in root or root.startswith("mlflow-artifacts:"):
        return root
    return Path(root).resolve().as_uri()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ServerSettings()
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", "-p", type=int, default=defaults.port)
    parser.add_argument(
        "--backend-store-uri",
        default=defaults.backend_store_uri,
        help="sqlite:///path (default) or postgresql://user@host:port/db",
    )
    parser.add_argument(
        "--artifacts-destination",
        default=defaults.artifacts_destination,
        help="local directory / PVC mount, or s3://bucket/prefix",
    )
    parser.add_argument(
        "--default-artifact-root",
        default=defaults.default_artifact_root,
        help="root of new experiments' artifact locations (default mlflow-artifacts:/, through the proxy); "
        "a local directory or file:// URI as mlflow server has it, or s3://...",
    )
    parser.add_argument(
        "--auth-token",
        default=defaults.auth_token,
        help="bearer token required for writes (env MODELSHIP_TRACKING_AUTH_TOKEN)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="accepted for mlflow compatibility; must be 1 (SQLite has one writer)"
    )
    parser.add_argument("--log-level", default=defaults.log_level)
    parser.add_argument(
        "--registry-kubeconfig",
        metavar="PATH",
        help="serve the MLflow registry API from ModelVersion and RegisteredModel objects, with this kubeconfig",
    )
    parser.add_argument(
        "--registry-in-cluster",
        action="store_true",
        help="the same, with the pod's service account (the chart's default; RBAC in docs/registry.md)",
    )
    parser.add_argument(
        "--registry-namespace",
        metavar="NS",
        help="namespace of the ModelVersions (default: all; a name in two is then ambiguous)",
    )
    parser.add_argument(
        "--registry-write-namespace",
        metavar="NS",
        help="namespace of models registered through the MLflow API (default: --registry-namespace, else the "
        "server's own namespace in a pod, else the kubeconfig context's, else default)",
    )
    parser.add_argument(
        "--no-registry-writes",
        dest="registry_writes",
        action="store_false",
        help="refuse the MLflow registry write API (register, transition, alias, tag, delete): git is the "
        "registry's only source of truth",
    )
    parser.add_argument(
        "--registry-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="longest a registry write waits for the operator (a new version's number, a stage or alias change)",
    )


def write_namespace(args: argparse.Namespace) -> str:
    """Where models registered through the MLflow API go (see --registry-write-namespace)."""
    if args.registry_namespace and args.registry_write_namespace not in (None, args.registry_namespace):
        raise SystemExit(
            f"--registry-write-namespace {args.registry_write_namespace} is outside --registry-namespace "
            f"{args.registry_namespace}: models registered there could not be read back"
        )
    if args.registry_write_namespace or args.registry_namespace:
        return str(args.registry_write_namespace or args.registry_namespace)
    from modelship import kube

    return kube.default_namespace(args.registry_kubeconfig)


def run(args: argparse.Namespace) -> int | None:
    import uvicorn

    from modelship.tracking.protocol.http import KEEP_ALIVE_S
    from modelship.tracking.protocol.transport import JoinedHttpToolsProtocol
    from modelship.tracking.server.app import create_app
    from modelship.tracking.store.migrate import UnknownRevision
    from modelship.tracking.store.sql import TrackingStore

    if args.workers != 1:
        raise SystemExit("modelship tracking-server runs one worker (--workers 1)")
    settings = ServerSettings(
        host=args.host,
        port=args.port,
        backend_store_uri=args.backend_store_uri,
        artifacts_destination=args.artifacts_destination,
        default_artifact_root=args.default_artifact_root,
        auth_token=args.auth_token,
        log_level=args.log_level,
    )
    logs.setup(settings.log_level)
    try:
        store = TrackingStore(settings.backend_store_uri, artifact_root_uri(settings.default_artifact_root))
    except UnknownRevision as exc:
        raise SystemExit(f"modelship tracking-server: {exc}") from None
    registry = writes = None
    if args.registry_kubeconfig or args.registry_in_cluster:
        from modelship.tracking.server.registry import KubeReader
        from modelship.tracking.server.registry_write import KubeObjects, WriteSettings

        registry = KubeReader(args.registry_namespace, kubeconfig=args.registry_kubeconfig)
        if args.registry_writes:
            writes = WriteSettings(KubeObjects(), write_namespace(args), wait=args.registry_wait)
    app = create_app(settings, store, registry=registry, registry_writes=writes)
    logs.event(
        log,
        "tracking server starting",
        host=settings.host,
        port=settings.port,
        database=store.engine.dialect.name,
        pid=os.getpid(),
        artifacts=settings.artifacts_destination,
        auth=bool(settings.auth_token),
        registry=("none" if registry is None else "read-write" if writes else "read-only"),
        registry_write_namespace=writes.namespace if writes else None,
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal
    # with the handler that was installed before it; a no-op one here makes a clean
    # shutdown exit 0, which is what a pod's container status should show.
    signal.signal(signal.SIGTERM, lambda *_: None)
    summaries = None
    if settings.chart_summaries_every_s > 0:
        from modelship.tracking.server.summaries import ChartSummaries

        summaries = ChartSummaries(store.history, settings.chart_summaries_every_s)
        summaries.start()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=KEEP_ALIVE_S,
        http=JoinedHttpToolsProtocol,  # a response's head and body in one send
    )
    if summaries is not None:
        summaries.stop()
    store.close()
    return 0
