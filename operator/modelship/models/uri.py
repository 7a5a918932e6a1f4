"""Resolve a model URI to a local model directory.

Schemes: a local path, ``file://``, ``runs:/<run>/<path>``, ``models:/<name>/<version>``,
``models:/<name>/<stage>``, ``models:/<name>/latest``, ``models:/<name>@<alias>``,
``mlflow-artifacts:/...`` and ``s3://bucket/prefix``. ``runs:/`` and ``models:/`` go
through the tracking server named by ``MLFLOW_TRACKING_URI`` with MLflow's standard REST
endpoints only, so the same code works against ``mlflow server`` and Modelship's own
tracking server:

* ``runs/get`` for a run's artifact root (and, for MLflow 3 logged models, the run's
  ``outputs.model_outputs`` plus ``logged-models/<id>``);
* ``registered-models/get-latest-versions``, ``registered-models/alias`` and
  ``model-versions/get-download-uri`` for ``models:/``;
* the ``mlflow-artifacts`` proxy to list and download files.

``redact_url`` is the one way any component shows a URL (in a log line, an error, a
status): with its user name and password replaced by ``***``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse, urlsplit, urlunsplit

log = logging.getLogger(__name__)

STAGES = {"none", "staging", "production", "archived"}


class ModelURIError(ValueError):
    """The URI is malformed or names something that does not exist."""


# scheme://userinfo@ : the userinfo runs to the last "@" before the path, query or fragment.
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")


def redact_url(text: str) -> str:
    """``text`` with the user name and password of every URL in it replaced by ``***``.

    ``https://user:password@host/x`` becomes ``https://***@host/x``; a user name alone is
    redacted too, since it is often a token (``https://<token>@github.com``). For a log
    line, an error message or a status: never for a URL that is to be used.
    """
    return _USERINFO.sub(r"\1***@", text)


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its user name and password, and them (unquoted), if it had any."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), (unquote(user), unquote(password))


def resolve_model_uri(uri: str, *, dst: str | Path | None = None) -> Path:
    """A local directory holding the model's files (downloaded into ``dst`` if remote)."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        path = Path(unquote(parsed.path) if scheme == "file" else uri).expanduser()
        if not path.exists():
            raise ModelURIError(f"model path {path} does not exist")
        return path
    target = Path(dst) if dst else _cache_dir(uri)
    if scheme == "runs":
        client = TrackingClient.from_env()
        artifact_uri = client.run_model_uri(uri)
        client.download(artifact_uri, target)
    elif scheme == "models":
        client = TrackingClient.from_env()
        client.download(client.registry_download_uri(uri), target)
    elif scheme == "mlflow-artifacts":
        TrackingClient.from_env().download(uri, target)
    elif scheme == "s3":
        download_s3(uri, target)
    else:
        raise ModelURIError(f"unsupported model URI scheme {scheme!r} in {redact_url(uri)!r}")
    if not (target / "MLmodel").is_file():
        raise ModelURIError(f"{redact_url(uri)} has no MLmodel file")
    return target


def _cache_dir(uri: str) -> Path:
    root = Path(os.environ.get("MODELSHIP_MODEL_CACHE", tempfile.gettempdir())) / "modelship-models"
    return root / hashlib.sha256(uri.encode()).hexdigest()[:16]


class TrackingClient:
    """The few tracking-server REST calls needed to find and fetch a model."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None, timeout: float = 60.0) -> None:
        import httpx

        # A user and password in the URL go as a header, not in every request's URL,
        # which httpx logs and error messages repeat; a header given explicitly wins.
        url, credentials = split_credentials(base_url.rstrip("/"))
        headers = dict(headers or {})
        if credentials is not None and "Authorization" not in headers:
            headers["Authorization"] = _basic(*credentials)
        self.base_url = url
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    @classmethod
    def from_env(cls) -> TrackingClient:
        url = os.environ.get("MLFLOW_TRACKING_URI", "")
        if not url.startswith(("http://", "https://")):
            raise ModelURIError("runs:/ and models:/ URIs need MLFLOW_TRACKING_URI set to an http(s) tracking server")
        headers = {}
        if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {token}"
        elif (user := os.environ.get("MLFLOW_TRACKING_USERNAME")) is not None:
            headers["Authorization"] = _basic(user, os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
        return cls(url, headers)

    def _get(self, endpoint: str, **params: Any) -> dict[str, Any]:
        resp = self.http.get(endpoint, params=params)
        if resp.status_code == 404:
            raise ModelURIError(f"{endpoint} {params}: not found ({resp.text[:200]})")
        if resp.status_code >= 400:
            raise ModelURIError(f"{endpoint} {params}: HTTP {resp.status_code}: {resp.text[:300]}")
        return resp.json()  # type: ignore[no-any-return]

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.http.post(path, json=body)
        if resp.status_code >= 400:
            raise ModelURIError(f"{path}: HTTP {resp.status_code}: {resp.text[:300]}")
        return resp.json()  # type: ignore[no-any-return]

    # -- runs:/ ---------------------------------------------------------------------------
    def run_model_uri(self, uri: str) -> str:
        rest = uri[len("runs:/") :].lstrip("/")
        run_id, _, path = rest.partition("/")
        if not run_id:
            raise ModelURIError(f"{uri}: expected runs:/<run_id>/<path>")
        run = self._get("/api/2.0/mlflow/runs/get", run_id=run_id)["run"]
        root = run["info"]["artifact_uri"]
        candidate = _join(root, path)
        if self._has_mlmodel(candidate):
            return candidate
        # MLflow 3 logs models as LoggedModels outside the run's artifact root; the run
        # lists them in outputs.model_outputs, and runs:/<run>/<name> means the one named so.
        for out in (run.get("outputs") or {}).get("model_outputs") or []:
            model = self._get(f"/api/2.0/mlflow/logged-models/{out['model_id']}")["model"]
            if model["info"].get("name") == path.strip("/"):
                return str(model["info"]["artifact_uri"])
        raise ModelURIError(f"{uri}: no model at {redact_url(candidate)}")

    def _has_mlmodel(self, artifact_uri: str) -> bool:
        try:
            return any(
                f["path"].rsplit("/", 1)[-1] == "MLmodel" and not f.get("is_dir") for f in self._list(artifact_uri)
            )
        except ModelURIError:
            return False

    # -- models:/ -------------------------------------------------------------------------
    def registry_download_uri(self, uri: str) -> str:
        rest = uri[len("models:/") :].lstrip("/")
        if "/" not in rest and "@" not in rest and rest.startswith("m-"):
            # MLflow 3 logged model: models:/<model_id>
            model = self._get(f"/api/2.0/mlflow/logged-models/{rest}")["model"]
            return str(model["info"]["artifact_uri"])
        if "@" in rest and "/" not in rest.split("@", 1)[1]:
            name, alias = rest.split("@", 1)
            mv = self._get("/api/2.0/mlflow/registered-models/alias", name=name, alias=alias)
            version = str(mv["model_version"]["version"])
        else:
            name, _, ref = rest.rpartition("/")
            if not name or not ref:
                raise ModelURIError(f"{uri}: expected models:/<name>/<version|stage|latest> or models:/<name>@<alias>")
            if ref.isdigit():
                version = ref
            else:
                body: dict[str, Any] = {"name": name}
                if ref.lower() != "latest":
                    if ref.lower() not in STAGES:
                        raise ModelURIError(f"{uri}: {ref!r} is not a version, a stage, 'latest' or an alias")
                    body["stages"] = [ref.capitalize() if ref.lower() != "none" else "None"]
                versions = self._post("/api/2.0/mlflow/registered-models/get-latest-versions", body).get(
                    "model_versions", []
                )
                if not versions:
                    raise ModelURIError(f"{uri}: no version of {name!r} in stage {ref!r}")
                version = str(max(int(v["version"]) for v in versions))
        got = self._get("/api/2.0/mlflow/model-versions/get-download-uri", name=name, version=version)
        return str(got["artifact_uri"])

    # -- artifacts ------------------------------------------------------------------------
    def _proxy_path(self, artifact_uri: str) -> str:
        parsed = urlparse(artifact_uri)
        return unquote(parsed.path).lstrip("/")

    def _list(self, artifact_uri: str) -> list[dict[str, Any]]:
        scheme = urlparse(artifact_uri).scheme
        if scheme != "mlflow-artifacts":
            local = _local_path(artifact_uri)
            if local is None:
                raise ModelURIError(f"cannot list {redact_url(artifact_uri)}")
            if not local.is_dir():
                return []
            return [{"path": str(p), "is_dir": p.is_dir()} for p in local.iterdir()]
        rel = self._proxy_path(artifact_uri)
        resp = self._get("/api/2.0/mlflow-artifacts/artifacts", path=rel)
        return [
            {
                "path": f"{rel}/{f['path']}" if not f["path"].startswith(rel) else f["path"],
                "is_dir": f.get("is_dir", False),
            }
            for f in resp.get("files", [])
        ]

    def download(self, artifact_uri: str, dst: Path) -> None:
        scheme = urlparse(artifact_uri).scheme
        if scheme == "s3":
            download_s3(artifact_uri, dst)
            return
        if scheme != "mlflow-artifacts":
            local = _local_path(artifact_uri)
            if local is None or not local.exists():
                raise ModelURIError(f"cannot download {redact_url(artifact_uri)}")
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(local, dst)
            return
        tmp = Path(tempfile.mkdtemp(prefix=".dl-", dir=_mkparent(dst)))
        root = self._proxy_path(artifact_uri)
        self._download_tree(root, root, tmp)
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
        log.info("downloaded model", extra={"uri": redact_url(artifact_uri), "dst": str(dst)})

    def _download_tree(self, root: str, rel: str, out: Path) -> None:
        for entry in self._get("/api/2.0/mlflow-artifacts/artifacts", path=rel).get("files", []):
            name = entry["path"].rsplit("/", 1)[-1]
            child = f"{rel}/{name}"
            target = out / child[len(root) :].lstrip("/")
            if entry.get("is_dir"):
                target.mkdir(parents=True, exist_ok=True)
                self._download_tree(root, child, out)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with self.http.stream("GET", f"/api/2.0/mlflow-artifacts/artifacts/{quote(child)}") as resp:
                if resp.status_code >= 400:
                    raise ModelURIError(f"download {child}: HTTP {resp.status_code}")
                with target.open("wb") as f:
                    for chunk in resp.iter_bytes():
                        f.write(chunk)


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _mkparent(dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    return dst.parent


def _join(root: str, path: str) -> str:
    return root.rstrip("/") + ("/" + path.strip("/") if path.strip("/") else "")


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    return None


def download_s3(uri: str, dst: Path) -> None:
    """Download every object under an ``s3://bucket/prefix`` (boto3; honours
    ``MLFLOW_S3_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL`` for S3-compatible stores)."""
    try:
        import boto3
    except ImportError:
        raise ModelURIError("s3:// model URIs need boto3 installed (pip install boto3)") from None
    parsed = urlparse(uri)
    bucket, prefix = parsed.netloc, parsed.path.lstrip("/").rstrip("/")
    endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    s3 = boto3.client("s3", endpoint_url=endpoint)
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
        raise ModelURIError(f"{redact_url(uri)}: no objects under that prefix")
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)
