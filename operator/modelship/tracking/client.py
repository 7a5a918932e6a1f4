"""The one client of a tracking server's REST API (httpx only, no ``mlflow``).

Every part of Modelship that talks to a tracking server goes through :class:`TrackingClient`:
the Experiment operator (the runs of trials, objective metrics), ``modelship run`` (a
project's run, in a training pod), model URIs (``modelship.models.uri``: ``runs:/``,
``models:/`` and the ``mlflow-artifacts`` proxy) and the ModelVersion controller (a source's
run and ``MLmodel``), tools and tests. It speaks MLflow's REST API only, with the paths of
``tracking.protocol``, so the same calls work against ``mlflow server`` and Modelship's own;
it splits batches at MLflow's limits, follows page tokens, retries when asked (``retries``:
a trainer may start a moment before its sidecar listens) and raises :class:`TrackingError`
with the server's error code and HTTP status.

:meth:`TrackingClient.from_env` reads the environment as the ``mlflow`` client does:
``MLFLOW_TRACKING_URI``; ``MLFLOW_TRACKING_USERNAME`` with ``MLFLOW_TRACKING_PASSWORD``
(basic), else ``MLFLOW_TRACKING_TOKEN`` (bearer); ``MLFLOW_TRACKING_INSECURE_TLS``,
``MLFLOW_TRACKING_SERVER_CERT_PATH`` (a CA bundle) and ``MLFLOW_TRACKING_CLIENT_CERT_PATH``.
A user and password in the URL itself are sent as basic auth when the environment gives no
credentials; they never travel in request URLs, which httpx logs, and every message shows
the URL redacted.
"""

from __future__ import annotations

import base64
import os
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import httpx

from modelship.tracking.errors import (
    INTERNAL_ERROR,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
    TrackingError,
)
from modelship.tracking.protocol import validation as v
from modelship.tracking.protocol.paths import API, ARTIFACT_FILES, ARTIFACTS, safe_path
from modelship.uris import ArtifactsURI, redact_url, split_credentials
from modelship.uris import parse as parse_uri

TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
RETRIED_STATUSES = (429, 502, 503, 504)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _true(value: str | None) -> bool:
    """A boolean variable as mlflow reads one."""
    return (value or "").lower() in ("true", "1")


class TrackingClient:
    """``TrackingClient("http://tracking:5000", token=...)``; a context manager.

    ``uri`` is kept as given (``client.uri``: what a project's entry point gets as
    ``MLFLOW_TRACKING_URI``); credentials in it are sent as a header.
    """

    def __init__(
        self,
        uri: str,
        *,
        token: str | None = None,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | ssl.SSLContext = True,
        transport: httpx.BaseTransport | None = None,
        retries: int = 0,
        backoff: float = 0.5,
        timeout: float = 30.0,
    ) -> None:
        if not uri.startswith(("http://", "https://")):
            raise TrackingError(
                f"the tracking URI must be an http(s) URL of a tracking server, got {redact_url(uri)!r}",
                INTERNAL_ERROR,
            )
        self.uri = uri.rstrip("/")
        self.shown_uri = redact_url(self.uri)
        """The URL for messages."""
        self.retries = retries
        self.backoff = backoff
        base_url, in_url = split_credentials(self.uri)
        all_headers = dict(headers or {})
        if not any(k.lower() == "authorization" for k in all_headers):
            if auth is not None:
                all_headers["Authorization"] = _basic(*auth)
            elif token:
                all_headers["Authorization"] = f"Bearer {token}"
            elif in_url is not None:
                all_headers["Authorization"] = _basic(*in_url)
        self.http = httpx.Client(
            base_url=base_url, headers=all_headers, verify=verify, transport=transport, timeout=timeout
        )

    @classmethod
    def from_env(cls, uri: str | None = None, environ: Mapping[str, str] = os.environ, **kwargs: Any) -> Self:
        """A client of ``uri`` (default ``MLFLOW_TRACKING_URI``) configured as ``mlflow`` would be."""
        uri = uri or environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            raise TrackingError(
                "set MLFLOW_TRACKING_URI to the tracking server's URL (http://host:port)", INTERNAL_ERROR
            )
        user, password = environ.get("MLFLOW_TRACKING_USERNAME"), environ.get("MLFLOW_TRACKING_PASSWORD")
        auth = (user, password) if user and password else None
        token = environ.get("MLFLOW_TRACKING_TOKEN") or None
        verify: bool | ssl.SSLContext = True
        ca, cert = environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"), environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH")
        if _true(environ.get("MLFLOW_TRACKING_INSECURE_TLS")):
            verify = False
        elif ca or cert:
            verify = ssl.create_default_context(cafile=ca or None)
            if cert:
                verify.load_cert_chain(cert)
        return cls(uri, auth=auth, token=token, verify=verify, **kwargs)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # ---- transport ---------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One call of the REST API (``path`` under ``/api/2.0/mlflow``); its JSON answer."""
        response = self._send(method, API + path, json=body, params=params)
        return response.json() if response.content else {}

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise TrackingError(
                        f"{method} {self.shown_uri}{url}: {redact_url(str(exc))}", TEMPORARILY_UNAVAILABLE
                    ) from None
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRIED_STATUSES or attempt >= self.retries:
                    raise _error(method, url, response)
            time.sleep(self.backoff * 2**attempt)
            attempt += 1

    # ---- experiments -------------------------------------------------------------------
    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        body = {"name": name, "tags": [{"key": k, "value": val} for k, val in (tags or {}).items()]}
        return str(self.call("POST", "/experiments/create", body)["experiment_id"])

    def get_experiment_by_name(self, name: str) -> dict[str, Any] | None:
        try:
            exp: dict[str, Any] = self.call("GET", "/experiments/get-by-name", params={"experiment_name": name})[
                "experiment"
            ]
        except TrackingError as exc:
            if exc.error_code == RESOURCE_DOES_NOT_EXIST or exc.http_status == 404:
                return None
            raise
        return exp

    def get_or_create_experiment(self, name: str) -> str:
        """The id of the experiment called ``name``, created when it does not exist."""
        exp = self.get_experiment_by_name(name)
        if exp is not None:
            return str(exp["experiment_id"])
        try:
            return self.create_experiment(name)
        except TrackingError as exc:
            if exc.error_code != RESOURCE_ALREADY_EXISTS:
                raise
        # Someone created it between our two calls (parallel trials of one Experiment).
        exp = self.get_experiment_by_name(name)
        if exp is None:
            raise TrackingError(f"experiment {name!r} exists and cannot be read", INTERNAL_ERROR)
        return str(exp["experiment_id"])

    # ---- runs --------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> str:
        """A new run's id."""
        body: dict[str, Any] = {
            "experiment_id": experiment_id,
            "start_time": _now_ms(),
            "tags": [{"key": k, "value": val} for k, val in (tags or {}).items()],
        }
        if run_name:
            body["run_name"] = run_name
        if user:
            body["user_id"] = user
        return str(self.call("POST", "/runs/create", body)["run"]["info"]["run_id"])

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run in MLflow's JSON shape (``info``, ``data``, ``inputs``, ``outputs``)."""
        run: dict[str, Any] = self.call("GET", "/runs/get", params={"run_id": run_id})["run"]
        return run

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of each metric of a run (what MLflow's run view shows)."""
        return {m["key"]: float(m["value"]) for m in self.get_run(run_id)["data"].get("metrics", [])}

    def log_metric(self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        self.call(
            "POST",
            "/runs/log-metric",
            {"run_id": run_id, "key": key, "value": _float(value), "timestamp": timestamp or _now_ms(), "step": step},
        )

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.call("POST", "/runs/log-parameter", {"run_id": run_id, "key": key, "value": str(value)})

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.call("POST", "/runs/set-tag", {"run_id": run_id, "key": key, "value": value})

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[tuple[str, float, int] | tuple[str, float, int, int]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Metrics as ``(key, value, step[, timestamp_ms])``; split at MLflow's limits."""
        now = _now_ms()
        ms = [
            {"key": m[0], "value": _float(m[1]), "step": m[2], "timestamp": m[3] if len(m) > 3 else now}
            for m in metrics
        ]
        ps = [{"key": k, "value": str(val)} for k, val in (params or {}).items()]
        ts = [{"key": k, "value": val} for k, val in (tags or {}).items()]
        while ms or ps or ts:
            p_chunk, t_chunk = ps[: v.MAX_PARAMS_PER_BATCH], ts[: v.MAX_TAGS_PER_BATCH]
            room = min(v.MAX_METRICS_PER_BATCH, v.MAX_ENTITIES_PER_BATCH - len(p_chunk) - len(t_chunk))
            m_chunk = ms[:room]
            self.call(
                "POST", "/runs/log-batch", {"run_id": run_id, "metrics": m_chunk, "params": p_chunk, "tags": t_chunk}
            )
            ms, ps, ts = ms[len(m_chunk) :], ps[len(p_chunk) :], ts[len(t_chunk) :]

    def update_run(self, run_id: str, status: str) -> None:
        """Set the run's status; a terminal status also sets its end time."""
        body: dict[str, Any] = {"run_id": run_id, "status": status}
        if status in TERMINAL_STATUSES:
            body["end_time"] = _now_ms()
        self.call("POST", "/runs/update", body)

    def set_terminated(self, run_id: str, status: str = "FINISHED") -> None:
        """End the run with a terminal status (``mlflow``'s name for it)."""
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"{status!r} is not a terminal status: {TERMINAL_STATUSES}")
        self.update_run(run_id, status)

    def get_metric_history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                params["page_token"] = token
            page = self.call("GET", "/metrics/get-history", params=params)
            out += page.get("metrics", [])
            token = page.get("next_page_token")
            if not token:
                return out

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        order_by: list[str] | None = None,
        page_size: int = 1000,
        view_type: str = "ACTIVE_ONLY",
    ) -> Iterator[dict[str, Any]]:
        """Every matching run, page by page."""
        token: str | None = None
        while True:
            page = self.call(
                "POST",
                "/runs/search",
                {
                    "experiment_ids": experiment_ids,
                    "filter": filter_string,
                    "order_by": order_by or [],
                    "max_results": page_size,
                    "run_view_type": view_type,
                    "page_token": token,
                },
            )
            yield from page.get("runs", [])
            token = page.get("next_page_token")
            if not token:
                return

    # ---- logged models and the registry (read) -----------------------------------------
    def get_logged_model(self, model_id: str) -> dict[str, Any]:
        model: dict[str, Any] = self.call("GET", f"/logged-models/{quote(model_id, safe='')}")["model"]
        return model

    def get_model_version_by_alias(self, name: str, alias: str) -> dict[str, Any]:
        mv: dict[str, Any] = self.call("GET", "/registered-models/alias", params={"name": name, "alias": alias})[
            "model_version"
        ]
        return mv

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"name": name}
        if stages:
            body["stages"] = stages
        versions: list[dict[str, Any]] = self.call("POST", "/registered-models/get-latest-versions", body).get(
            "model_versions", []
        )
        return versions

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        got = self.call("GET", "/model-versions/get-download-uri", params={"name": name, "version": version})
        return str(got["artifact_uri"])

    # ---- the mlflow-artifacts proxy ----------------------------------------------------
    def list_artifacts(self, path: str) -> list[dict[str, Any]]:
        """The entries directly under ``path`` behind the proxy, with paths as the server gives them."""
        files: list[dict[str, Any]] = self._send("GET", ARTIFACTS, params={"path": path}).json().get("files", [])
        return files

    def read_artifact(self, path: str) -> bytes:
        """The file at ``path`` behind the proxy (a small one: it is read whole)."""
        return self._send("GET", ARTIFACT_FILES + quote(path)).content

    def upload_artifact(self, path: str, content: bytes) -> None:
        """Write ``content`` as the file at ``path`` behind the proxy (``PUT``, one request)."""
        self._send("PUT", ARTIFACT_FILES + quote(path), content=content)

    def log_artifact_bytes(self, run_id: str, artifact_path: str, content: bytes) -> None:
        """Write ``content`` as ``artifact_path`` in the run's artifacts (``eval/report.json``),
        as ``mlflow.log_text`` / ``log_figure`` do: through the proxy under the run's root."""
        root = str(self.get_run(run_id)["info"]["artifact_uri"])
        source = parse_uri(root)
        if not isinstance(source, ArtifactsURI):
            raise TrackingError(
                f"run {run_id}'s artifact root {redact_url(root)} is not behind the tracking server's "
                "artifact proxy (mlflow-artifacts:/): start the server with artifact serving",
                INTERNAL_ERROR,
            )
        self.upload_artifact(f"{source.path}/{safe_path(artifact_path, allow_root=False)}".lstrip("/"), content)

    def download_artifact(self, path: str, target: Path) -> None:
        """The file at ``path`` behind the proxy, streamed into ``target``."""
        url = ARTIFACT_FILES + quote(path)
        with self.http.stream("GET", url) as response:
            if response.status_code >= 400:
                response.read()
                raise _error("GET", url, response)
            with target.open("wb") as f:
                for chunk in response.iter_bytes():
                    f.write(chunk)


def _error(method: str, url: str, response: httpx.Response) -> TrackingError:
    code: str | None = None
    message = response.text.strip()[:500]
    try:
        body = response.json()
        code = body.get("error_code")
        message = body.get("message") or message
    except ValueError:
        pass
    return TrackingError(
        f"{method} {url} -> {response.status_code} {code or ''}: {message}".replace(" :", ":"),
        code or INTERNAL_ERROR,
        status=response.status_code,
    )


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _float(value: float) -> float | str:
    return v.encode_float(float(value))
