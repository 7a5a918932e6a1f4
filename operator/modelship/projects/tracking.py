"""The few calls of the MLflow tracking REST API that running a project needs, over httpx.

Not the ``mlflow`` package: this image may not have it, and it would pull a large tree of
imports into an init container. Works against MLflow's server and Modelship's own.
Authentication follows the ``mlflow`` client's environment: ``MLFLOW_TRACKING_TOKEN``
(bearer) or ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (basic);
``MLFLOW_TRACKING_INSECURE_TLS`` and ``MLFLOW_TRACKING_SERVER_CERT_PATH`` for TLS.
A user and password in the tracking URL itself are sent as basic auth when the
environment gives no credentials. Connection errors, 429 and 5xx are retried with
backoff: a trainer may start a moment before its tracking sidecar listens.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import httpx

from modelship.models.uri import redact_url, split_credentials

API = "/api/2.0/mlflow"
MAX_BATCH = 100  # MLflow's limit of params (and of tags) per log-batch call
TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")


class TrackingError(RuntimeError):
    """A call the tracking server refused, with MLflow's error code when it sent one."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class RunInfo:
    """What the runner needs to know about a tracking run."""

    run_id: str
    experiment_id: str
    status: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class TrackingClient:
    """A small synchronous client of one tracking server."""

    def __init__(
        self,
        uri: str,
        *,
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 30.0,
    ) -> None:
        if not uri.startswith(("http://", "https://")):
            raise TrackingError(
                f"the tracking URI must be an http(s) URL of a tracking server, got {redact_url(uri)!r}"
            )
        self.uri = uri.rstrip("/")
        """The URL as given: what the entry point gets as ``MLFLOW_TRACKING_URI``."""
        self.shown_uri = redact_url(self.uri)
        """The URL for messages."""
        self.retries = retries
        self.backoff = backoff
        # A user and password in the URL go as basic auth, not in every request's URL,
        # which httpx logs and errors repeat; credentials given explicitly win.
        base_url, credentials = split_credentials(self.uri)
        if credentials is not None and auth is None and "authorization" not in {k.lower() for k in headers or {}}:
            auth = credentials
        self._http = httpx.Client(
            base_url=base_url,
            auth=auth,
            headers=dict(headers or {}),
            verify=verify,
            transport=transport,
            timeout=timeout,
        )

    @classmethod
    def from_env(cls, uri: str | None = None, environ: Mapping[str, str] = os.environ, **kwargs: Any) -> TrackingClient:
        """A client configured the way the ``mlflow`` client reads its environment."""
        uri = uri or environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            raise TrackingError("set MLFLOW_TRACKING_URI to the tracking server's URL (http://host:port)")
        headers: dict[str, str] = {}
        auth: tuple[str, str] | None = None
        if environ.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {environ['MLFLOW_TRACKING_TOKEN']}"
        elif environ.get("MLFLOW_TRACKING_USERNAME"):
            auth = (environ["MLFLOW_TRACKING_USERNAME"], environ.get("MLFLOW_TRACKING_PASSWORD", ""))
        verify: bool | str = True
        if environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("1", "true"):
            verify = False
        elif environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
            verify = environ["MLFLOW_TRACKING_SERVER_CERT_PATH"]
        return cls(uri, auth=auth, headers=headers, verify=verify, **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- experiments ------------------------------------------------------------------

    def experiment_id(self, name: str) -> str:
        """The id of the experiment called ``name``, created when it does not exist."""
        found = self._get_experiment_by_name(name)
        if found is not None:
            return found
        try:
            return str(self._call("POST", "/experiments/create", json={"name": name})["experiment_id"])
        except TrackingError as exc:
            if exc.code != "RESOURCE_ALREADY_EXISTS":
                raise
        # Someone created it between our two calls (parallel trials of one Experiment).
        found = self._get_experiment_by_name(name)
        if found is None:
            raise TrackingError(f"experiment {name!r} exists and cannot be read")
        return found

    def _get_experiment_by_name(self, name: str) -> str | None:
        try:
            body = self._call("GET", "/experiments/get-by-name", params={"experiment_name": name})
        except TrackingError as exc:
            if exc.code == "RESOURCE_DOES_NOT_EXIST" or exc.status == 404:
                return None
            raise
        return str(body["experiment"]["experiment_id"])

    # -- runs -------------------------------------------------------------------------

    def create_run(
        self, experiment_id: str, *, tags: Mapping[str, str], run_name: str | None = None, user: str | None = None
    ) -> RunInfo:
        body: dict[str, Any] = {
            "experiment_id": experiment_id,
            "start_time": _now_ms(),
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        if run_name:
            body["run_name"] = run_name
        if user:
            body["user_id"] = user
        return _run_info(self._call("POST", "/runs/create", json=body)["run"])

    def get_run(self, run_id: str) -> RunInfo:
        return _run_info(self._call("GET", "/runs/get", params={"run_id": run_id})["run"])

    def log_batch(
        self, run_id: str, *, params: Mapping[str, str] | None = None, tags: Mapping[str, str] | None = None
    ) -> None:
        """Log params and tags, in as many calls as MLflow's per-call limits need."""
        param_items = [{"key": k, "value": v} for k, v in (params or {}).items()]
        tag_items = [{"key": k, "value": v} for k, v in (tags or {}).items()]
        for start in range(0, max(len(param_items), len(tag_items)), MAX_BATCH):
            self._call(
                "POST",
                "/runs/log-batch",
                json={
                    "run_id": run_id,
                    "params": param_items[start : start + MAX_BATCH],
                    "tags": tag_items[start : start + MAX_BATCH],
                    "metrics": [],
                },
            )

    def set_status(self, run_id: str, status: str) -> None:
        """Set the run's status; a terminal status also sets its end time."""
        body: dict[str, Any] = {"run_id": run_id, "status": status}
        if status in TERMINAL_STATUSES:
            body["end_time"] = _now_ms()
        self._call("POST", "/runs/update", json=body)

    # -- transport --------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, API + path, **kwargs)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise TrackingError(f"{method} {self.shown_uri}{API}{path}: {exc}") from None
            else:
                if response.status_code < 400:
                    return response.json() if response.content else {}
                if response.status_code not in (429, 502, 503, 504) or attempt >= self.retries:
                    raise _error(method, path, response)
            time.sleep(self.backoff * 2**attempt)
            attempt += 1


def _error(method: str, path: str, response: httpx.Response) -> TrackingError:
    code: str | None = None
    message = response.text.strip()[:500]
    try:
        body = response.json()
        code = body.get("error_code")
        message = body.get("message") or message
    except ValueError:
        pass
    return TrackingError(
        f"{method} {API}{path} -> {response.status_code} {code or ''}: {message}".replace(" :", ":"),
        code=code,
        status=response.status_code,
    )


def _run_info(run: Mapping[str, Any]) -> RunInfo:
    info, data = run.get("info", {}), run.get("data", {})
    return RunInfo(
        run_id=str(info.get("run_id") or info.get("run_uuid")),
        experiment_id=str(info.get("experiment_id")),
        status=str(info.get("status", "RUNNING")),
        params=_pairs(data.get("params", [])),
        tags=_pairs(data.get("tags", [])),
    )


def _pairs(items: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    return {str(i["key"]): str(i.get("value", "")) for i in items}


def _now_ms() -> int:
    return int(time.time() * 1000)
