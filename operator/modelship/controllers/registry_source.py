"""Resolve a ModelVersion's ``spec.source`` to a model directory, its signature and metrics.

Blocking (run with ``asyncio.to_thread``). The grammar of each scheme is ``modelship.uris``'
table. ``runs:/``, ``mlflow-artifacts:/`` and ``models:/m-<id>`` (an MLflow 3 logged model)
go through the tracking server (``--tracking-url``) with the one tracking client and MLflow's
own REST endpoints; ``models:/<name>/...`` is answered from the registry itself (the other
ModelVersions of the namespace); a local path or ``file://`` URI is checked on the
operator's filesystem; ``s3://`` is read with ``uris.s3_client``. The directory must hold an
``MLmodel`` file.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from modelship.models.mlmodel import MLMODEL_FILE
from modelship.models.uri import ModelURIError, run_model_uri
from modelship.tracking.client import TrackingClient
from modelship.tracking.errors import TrackingError
from modelship.uris import (
    S3URI,
    SCHEMES,
    ArtifactsURI,
    LocalURI,
    ModelsURI,
    RunsURI,
    URIError,
    parse,
    s3_client,
    scheme_of,
)


class SourceError(Exception):
    """The source cannot be resolved now; ``reason`` is the condition's CamelCase reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Resolved:
    artifact_uri: str
    run_id: str | None = None
    signature: dict[str, Any] | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"artifactUri": self.artifact_uri, "metrics": self.metrics}
        if self.run_id:
            out["runId"] = self.run_id
        if self.signature:
            out["signature"] = self.signature
        return out


Lookup = Callable[[str, str], dict[str, Any] | None]
"""(model name, version | stage | @alias | latest) -> that ModelVersion's status, or None."""


def resolve(source: str, *, tracking_url: str | None, lookup: Lookup) -> Resolved:
    if scheme_of(source) not in SCHEMES:
        raise SourceError("UnsupportedSource", f"{source}: use runs:/, models:/, mlflow-artifacts:/, s3:// or a path")
    try:
        ref = parse(source)
    except URIError as exc:
        raise SourceError("InvalidSource", str(exc)) from None
    if isinstance(ref, ModelsURI) and ref.logged_model_id is None:
        return _from_registry(ref, lookup)
    if isinstance(ref, (RunsURI, ArtifactsURI, ModelsURI)):
        if not tracking_url:
            raise SourceError(
                "NoTrackingServer", f"{source} needs the tracking server: start the operator with --tracking-url"
            )
        try:
            with TrackingClient(tracking_url, timeout=15.0) as client:
                return _from_tracking(client, ref)
        except TrackingError as exc:  # unreachable (answers are handled where they are asked for)
            raise SourceError("TrackingUnavailable", f"tracking server {tracking_url}: {exc}") from None
    if isinstance(ref, LocalURI):
        path = ref.path
        if not os.path.isfile(os.path.join(path, MLMODEL_FILE)):
            raise SourceError("SourceNotFound", f"{source}: no {MLMODEL_FILE} file in that directory")
        with open(os.path.join(path, MLMODEL_FILE)) as f:
            return Resolved(source, signature=_signature(f.read()))
    return Resolved(source, signature=_signature(_s3_mlmodel(ref)))


def _answered(exc: TrackingError) -> TrackingError:
    """``exc`` if the server answered it; an unreachable server is raised on, to the caller."""
    if exc.status is None:
        raise exc
    return exc


def _metrics(run: dict[str, Any]) -> dict[str, float]:
    return {m["key"]: float(m["value"]) for m in (run.get("data") or {}).get("metrics") or []}


def _from_tracking(client: TrackingClient, ref: RunsURI | ArtifactsURI | ModelsURI) -> Resolved:
    run_id = None
    metrics: dict[str, float] = {}
    if isinstance(ref, RunsURI):
        run_id = ref.run_id
        try:
            metrics = _metrics(client.get_run(run_id))
        except TrackingError as exc:
            raise SourceError(
                "RunNotFound", f"{ref.uri}: run {run_id} not found on the tracking server ({_answered(exc)})"
            ) from None
        try:
            artifact_uri = run_model_uri(client, ref)
        except ModelURIError as exc:
            raise SourceError(
                "SourceNotFound", f"{exc}: the run has no model directory with an {MLMODEL_FILE} file at that path"
            ) from None
    elif isinstance(ref, ModelsURI):
        # An MLflow 3 logged model (what log_model(registered_model_name=...) registers): its
        # artifact location, and its source run's metrics (gates need them).
        try:
            info = client.get_logged_model(str(ref.logged_model_id))["info"]
        except TrackingError as exc:
            raise SourceError(
                "SourceNotFound", f"{ref.uri}: logged model not found on the tracking server ({_answered(exc)})"
            ) from None
        run_id = info.get("source_run_id") or None
        if run_id:
            try:
                metrics = _metrics(client.get_run(run_id))
            except TrackingError as exc:
                _answered(exc)  # a logged model may outlive its run; its artifacts are what matter
        artifact_uri = str(info["artifact_uri"])
    else:
        artifact_uri = ref.uri
    return Resolved(artifact_uri, run_id, _signature(_proxy_text(client, artifact_uri)), metrics)


def _proxy_text(client: TrackingClient, artifact_uri: str) -> str:
    try:
        ref = parse(artifact_uri)
    except URIError:
        ref = None
    if not isinstance(ref, ArtifactsURI):
        raise SourceError(
            "SourceNotFound", f"{artifact_uri}: no {MLMODEL_FILE} file there (not behind the tracking server's proxy)"
        )
    try:
        return client.read_artifact(posixpath.join(ref.path, MLMODEL_FILE)).decode("utf-8", "replace")
    except TrackingError as exc:
        raise SourceError(
            "SourceNotFound", f"{artifact_uri}: no {MLMODEL_FILE} file there (HTTP {_answered(exc).status})"
        ) from None


def _s3_mlmodel(ref: S3URI) -> str:
    key = posixpath.join(ref.key, MLMODEL_FILE) if ref.key else "/" + MLMODEL_FILE
    try:
        obj = s3_client().get_object(Bucket=ref.bucket, Key=key)
    except Exception as exc:  # noqa: BLE001 -- botocore's errors are many; all mean "not there now"
        raise SourceError("SourceNotFound", f"{ref.uri}: cannot read {MLMODEL_FILE}: {exc}") from None
    return str(obj["Body"].read().decode())


def _signature(mlmodel_text: str) -> dict[str, Any] | None:
    try:
        doc = yaml.safe_load(mlmodel_text) or {}
    except yaml.YAMLError as exc:
        raise SourceError("InvalidMLmodel", f"the {MLMODEL_FILE} file is not YAML: {exc}") from None
    if not isinstance(doc, dict) or "flavors" not in doc:
        raise SourceError("InvalidMLmodel", f"the {MLMODEL_FILE} file has no flavors")
    sig = doc.get("signature")
    return dict(sig) if isinstance(sig, dict) else None


def _from_registry(source: ModelsURI, lookup: Lookup) -> Resolved:
    name, ref = source.name, source.ref
    status = lookup(name, ref)
    if not status or not status.get("artifactUri"):
        raise SourceError(
            "SourceNotFound", f"{source.uri}: no resolved version {ref!r} of model {name!r} in this namespace"
        )
    return Resolved(
        status["artifactUri"], status.get("runId"), status.get("signature"), dict(status.get("metrics") or {})
    )


def find_in_registry(versions: list[dict[str, Any]], name: str, ref: str) -> dict[str, Any] | None:
    """The status of the version ``ref`` names among ``versions`` (ModelVersion objects)."""
    mine = [(o.get("status") or {}) for o in versions if (o.get("spec") or {}).get("model") == name]
    mine = [s for s in mine if s.get("version") is not None]
    if ref.startswith("@"):
        return next((s for s in mine if ref[1:] in (s.get("aliases") or [])), None)
    if ref.isdigit():
        return next((s for s in mine if s["version"] == int(ref)), None)
    if ref.lower() == "latest":
        return max(mine, key=lambda s: s["version"], default=None)
    stage = ref.capitalize()
    return max((s for s in mine if s.get("stage") == stage), key=lambda s: s["version"], default=None)
