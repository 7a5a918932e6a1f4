"""Resolve a ModelVersion's ``spec.source`` to a model directory, its signature and metrics.

Blocking (run with ``asyncio.to_thread``). ``runs:/`` and ``mlflow-artifacts:/`` go
through the tracking server (``--tracking-url``) with MLflow's own REST endpoints;
``models:/`` is answered from the registry itself (the other ModelVersions of the
namespace); a local path or ``file://`` URI is checked on the operator's filesystem;
``s3://`` needs boto3. The directory must hold an ``MLmodel`` file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlparse

import yaml

from modelship.models.mlmodel import MLMODEL_FILE
from modelship.models.uri import ModelURIError, TrackingClient

PROXY = "/api/2.0/mlflow-artifacts/artifacts"


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
    scheme = urlparse(source).scheme.lower()
    if scheme == "models" and is_logged_model(source):
        if not tracking_url:
            raise SourceError(
                "NoTrackingServer", f"{source} needs the tracking server: start the operator with --tracking-url"
            )
        return _from_logged_model(source, tracking_url)
    if scheme == "models":
        return _from_registry(source, lookup)
    if scheme in ("runs", "mlflow-artifacts"):
        if not tracking_url:
            raise SourceError(
                "NoTrackingServer", f"{source} needs the tracking server: start the operator with --tracking-url"
            )
        return _from_tracking(source, scheme, tracking_url)
    if scheme in ("", "file"):
        path = unquote(urlparse(source).path) if scheme == "file" else source
        if not os.path.isfile(os.path.join(path, MLMODEL_FILE)):
            raise SourceError("SourceNotFound", f"{source}: no {MLMODEL_FILE} file in that directory")
        with open(os.path.join(path, MLMODEL_FILE)) as f:
            return Resolved(source, signature=_signature(f.read()))
    if scheme == "s3":
        return Resolved(source, signature=_signature(_s3_mlmodel(source)))
    raise SourceError("UnsupportedSource", f"{source}: use runs:/, models:/, mlflow-artifacts:/, s3:// or a path")


@contextmanager
def _tracking_client(tracking_url: str) -> Iterator[TrackingClient]:
    """A client of the tracking server; a server that cannot be reached is TrackingUnavailable."""
    client = TrackingClient(tracking_url, timeout=15.0)
    try:
        yield client
    except OSError as exc:  # httpx.TransportError is not an OSError; see below
        raise SourceError("TrackingUnavailable", f"tracking server {tracking_url}: {exc}") from None
    except Exception as exc:
        if type(exc).__module__.startswith("httpx"):
            raise SourceError("TrackingUnavailable", f"tracking server {tracking_url}: {exc}") from None
        raise
    finally:
        client.http.close()


def _run_metrics(client: TrackingClient, run_id: str) -> dict[str, float]:
    run = client._get("/api/2.0/mlflow/runs/get", run_id=run_id)["run"]
    return {m["key"]: float(m["value"]) for m in (run.get("data") or {}).get("metrics") or []}


def _from_tracking(source: str, scheme: str, tracking_url: str) -> Resolved:
    with _tracking_client(tracking_url) as client:
        run_id = None
        metrics: dict[str, float] = {}
        if scheme == "runs":
            run_id = source[len("runs:/") :].lstrip("/").partition("/")[0]
            try:
                metrics = _run_metrics(client, run_id)
            except ModelURIError as exc:
                raise SourceError(
                    "RunNotFound", f"{source}: run {run_id} not found on the tracking server ({exc})"
                ) from None
            try:
                artifact_uri = client.run_model_uri(source)
            except ModelURIError as exc:
                raise SourceError(
                    "SourceNotFound", f"{exc}: the run has no model directory with an {MLMODEL_FILE} file at that path"
                ) from None
        else:
            artifact_uri = source
        text = _proxy_text(client, artifact_uri)
        return Resolved(artifact_uri, run_id, _signature(text), metrics)


def is_logged_model(source: str) -> bool:
    """``models:/m-<id>``: an MLflow 3 logged model (what ``log_model(registered_model_name=...)``
    registers), not a registered model's version, stage or alias."""
    rest = source[len("models:/") :].lstrip("/")
    return rest.startswith("m-") and "/" not in rest and "@" not in rest


def _from_logged_model(source: str, tracking_url: str) -> Resolved:
    """The logged model's artifact location, and its source run's metrics (gates need them)."""
    model_id = source[len("models:/") :].lstrip("/")
    with _tracking_client(tracking_url) as client:
        try:
            info = client._get(f"/api/2.0/mlflow/logged-models/{model_id}")["model"]["info"]
        except ModelURIError as exc:
            raise SourceError(
                "SourceNotFound", f"{source}: logged model not found on the tracking server ({exc})"
            ) from None
        run_id = info.get("source_run_id") or None
        metrics: dict[str, float] = {}
        if run_id:
            try:
                metrics = _run_metrics(client, run_id)
            except ModelURIError:
                pass  # a logged model may outlive its run; its artifacts are what matter
        artifact_uri = str(info["artifact_uri"])
        return Resolved(artifact_uri, run_id, _signature(_proxy_text(client, artifact_uri)), metrics)


def _proxy_text(client: TrackingClient, artifact_uri: str) -> str:
    rel = unquote(urlparse(artifact_uri).path).strip("/")
    resp = client.http.get(f"{PROXY}/{quote(rel + '/' + MLMODEL_FILE)}")
    if resp.status_code != 200:
        raise SourceError("SourceNotFound", f"{artifact_uri}: no {MLMODEL_FILE} file there (HTTP {resp.status_code})")
    return resp.text


def _s3_mlmodel(source: str) -> str:
    try:
        import boto3
    except ImportError:
        raise SourceError("UnsupportedSource", "s3:// sources need boto3 in the operator image") from None
    parsed = urlparse(source)
    endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    key = parsed.path.strip("/") + "/" + MLMODEL_FILE
    try:
        obj = boto3.client("s3", endpoint_url=endpoint).get_object(Bucket=parsed.netloc, Key=key)
    except Exception as exc:  # noqa: BLE001 -- botocore's errors are many; all mean "not there now"
        raise SourceError("SourceNotFound", f"{source}: cannot read {MLMODEL_FILE}: {exc}") from None
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


def _from_registry(source: str, lookup: Lookup) -> Resolved:
    rest = source[len("models:/") :].lstrip("/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        ref = "@" + alias
    else:
        name, _, ref = rest.rpartition("/")
    if not name or not ref:
        raise SourceError(
            "InvalidSource", f"{source}: expected models:/<name>/<version|stage|latest> or models:/<name>@<alias>"
        )
    status = lookup(name, ref)
    if not status or not status.get("artifactUri"):
        raise SourceError(
            "SourceNotFound", f"{source}: no resolved version {ref!r} of model {name!r} in this namespace"
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
