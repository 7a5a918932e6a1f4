"""Resolve a model URI to a local model directory.

Schemes (their grammar is ``modelship.uris``' table): a local path, ``file://``,
``runs:/<run>/<path>``, ``models:/<name>/<version>``, ``models:/<name>/<stage>``,
``models:/<name>/latest``, ``models:/<name>@<alias>``, ``models:/<m-id>``,
``mlflow-artifacts:/...`` and ``s3://bucket/prefix``. ``runs:/``, ``models:/`` and
``mlflow-artifacts:/`` go through the tracking server named by ``MLFLOW_TRACKING_URI`` with
the one tracking client (``modelship.tracking.client``) and MLflow's standard REST endpoints
only, so the same code works against ``mlflow server`` and Modelship's own tracking server:

* ``runs/get`` for a run's artifact root (and, for MLflow 3 logged models, the run's
  ``outputs.model_outputs`` plus ``logged-models/<id>``);
* ``registered-models/get-latest-versions``, ``registered-models/alias`` and
  ``model-versions/get-download-uri`` for ``models:/``;
* the ``mlflow-artifacts`` proxy to list and download files.

``s3://`` is read with ``modelship.uris.s3_client``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelship.tracking.client import TrackingClient
from modelship.tracking.errors import TrackingError
from modelship.uris import (
    S3URI,
    ArtifactsURI,
    LocalURI,
    ModelSource,
    ModelsURI,
    RunsURI,
    URIError,
    parse,
    redact_url,
    s3_client,
)

log = logging.getLogger(__name__)


class ModelURIError(ValueError):
    """The URI is malformed or names something that does not exist."""


def resolve_model_uri(uri: str, *, dst: str | Path | None = None) -> Path:
    """A local directory holding the model's files (downloaded into ``dst`` if remote)."""
    source = _parse(uri)
    if isinstance(source, LocalURI):
        path = Path(source.path).expanduser()
        if not path.exists():
            raise ModelURIError(f"model path {path} does not exist")
        return path
    target = Path(dst) if dst else _cache_dir(uri)
    if isinstance(source, S3URI):
        download_s3(source, target)
    else:
        with _client_from_env() as client:
            if isinstance(source, RunsURI):
                artifact_uri = run_model_uri(client, source)
            elif isinstance(source, ModelsURI):
                artifact_uri = registry_download_uri(client, source)
            else:
                artifact_uri = uri
            download(client, artifact_uri, target)
    if not (target / "MLmodel").is_file():
        raise ModelURIError(f"{redact_url(uri)} has no MLmodel file")
    return target


def _cache_dir(uri: str) -> Path:
    root = Path(os.environ.get("MODELSHIP_MODEL_CACHE", tempfile.gettempdir())) / "modelship-models"
    return root / hashlib.sha256(uri.encode()).hexdigest()[:16]


def _client_from_env() -> TrackingClient:
    try:
        return TrackingClient.from_env(timeout=60.0)
    except TrackingError:
        raise ModelURIError(
            "runs:/ and models:/ URIs need MLFLOW_TRACKING_URI set to an http(s) tracking server"
        ) from None


def _parse(uri: str) -> ModelSource:
    try:
        return parse(uri)
    except URIError as exc:
        raise ModelURIError(str(exc)) from None


@contextlib.contextmanager
def _answered() -> Iterator[None]:
    """The server's refusals (it answered: not found, bad request) as ModelURIError; an
    unreachable server stays a TrackingError, so callers can tell the two apart."""
    try:
        yield
    except TrackingError as exc:
        if exc.status is None:
            raise
        raise ModelURIError(str(exc)) from None


# -- runs:/ -------------------------------------------------------------------------------
def run_model_uri(client: TrackingClient, source: RunsURI) -> str:
    """The artifact URI of the model directory ``source`` names."""
    with _answered():
        run = client.get_run(source.run_id)
        candidate = _join(run["info"]["artifact_uri"], source.path)
        if _has_mlmodel(client, candidate):
            return candidate
        # MLflow 3 logs models as LoggedModels outside the run's artifact root; the run
        # lists them in outputs.model_outputs, and runs:/<run>/<name> means the one named so.
        for out in (run.get("outputs") or {}).get("model_outputs") or []:
            model = client.get_logged_model(out["model_id"])
            if model["info"].get("name") == source.path:
                return str(model["info"]["artifact_uri"])
    raise ModelURIError(f"{source.uri}: no model at {redact_url(candidate)}")


def _has_mlmodel(client: TrackingClient, artifact_uri: str) -> bool:
    try:
        with _answered():
            return any(
                f["path"].rsplit("/", 1)[-1] == "MLmodel" and not f.get("is_dir") for f in _list(client, artifact_uri)
            )
    except ModelURIError:
        return False


# -- models:/ -----------------------------------------------------------------------------
def registry_download_uri(client: TrackingClient, source: ModelsURI) -> str:
    """The artifact URI of the model version (or MLflow 3 logged model) ``source`` names."""
    with _answered():
        if source.logged_model_id is not None:
            return str(client.get_logged_model(source.logged_model_id)["info"]["artifact_uri"])
        name = source.name
        if source.alias is not None:
            version = str(client.get_model_version_by_alias(name, source.alias)["version"])
        elif source.version is not None:
            version = source.version
        else:
            if not source.latest and source.stage is None:
                raise ModelURIError(f"{source.uri}: {source.ref!r} is not a version, a stage, 'latest' or an alias")
            versions = client.get_latest_versions(name, None if source.latest else [str(source.stage)])
            if not versions:
                raise ModelURIError(f"{source.uri}: no version of {name!r} in stage {source.ref!r}")
            version = str(max(int(v["version"]) for v in versions))
        return client.get_model_version_download_uri(name, version)


# -- artifacts ----------------------------------------------------------------------------
def _list(client: TrackingClient, artifact_uri: str) -> list[dict[str, Any]]:
    source = _parse(artifact_uri)
    if isinstance(source, LocalURI):
        local = Path(source.path)
        if not local.is_dir():
            return []
        return [{"path": str(p), "is_dir": p.is_dir()} for p in local.iterdir()]
    if not isinstance(source, ArtifactsURI):
        raise ModelURIError(f"cannot list {redact_url(artifact_uri)}")
    rel = source.path
    return [
        {
            "path": f"{rel}/{f['path']}" if not f["path"].startswith(rel) else f["path"],
            "is_dir": f.get("is_dir", False),
        }
        for f in client.list_artifacts(rel)
    ]


def download(client: TrackingClient, artifact_uri: str, dst: Path) -> None:
    """The model directory at ``artifact_uri`` copied into ``dst`` (replacing it whole)."""
    source = _parse(artifact_uri)
    if isinstance(source, S3URI):
        download_s3(source, dst)
        return
    if not isinstance(source, ArtifactsURI):
        local = Path(source.path) if isinstance(source, LocalURI) else None
        if local is None or not local.exists():
            raise ModelURIError(f"cannot download {redact_url(artifact_uri)}")
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(local, dst)
        return
    tmp = Path(tempfile.mkdtemp(prefix=".dl-", dir=_mkparent(dst)))
    with _answered():
        _download_tree(client, source.path, source.path, tmp)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)
    log.info("downloaded model", extra={"uri": redact_url(artifact_uri), "dst": str(dst)})


def _download_tree(client: TrackingClient, root: str, rel: str, out: Path) -> None:
    for entry in client.list_artifacts(rel):
        name = entry["path"].rsplit("/", 1)[-1]
        child = f"{rel}/{name}"
        target = out / child[len(root) :].lstrip("/")
        if entry.get("is_dir"):
            target.mkdir(parents=True, exist_ok=True)
            _download_tree(client, root, child, out)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_artifact(child, target)


def _mkparent(dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    return dst.parent


def _join(root: str, path: str) -> str:
    return root.rstrip("/") + ("/" + path.strip("/") if path.strip("/") else "")


def download_s3(source: S3URI, dst: Path) -> None:
    """Download every object under an ``s3://bucket/prefix`` (with ``modelship.uris.s3_client``)."""
    bucket, prefix = source.bucket, source.key
    s3 = s3_client()
    tmp = Path(tempfile.mkdtemp(prefix=".dl-", dir=_mkparent(dst)))
    found = False
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix) + 1 :]
            if not rel or rel.endswith("/"):
                continue
            found = True
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))
    if not found:
        shutil.rmtree(tmp)
        raise ModelURIError(f"{redact_url(source.uri)}: no objects under that prefix")
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)
