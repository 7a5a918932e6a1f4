"""A small, dependency-light client of the tracking server (httpx only, no ``mlflow``).

For Modelship's own code: the Experiment operator reads objective metrics with it, tools
log with it. It speaks the same REST API as the real ``mlflow`` client, splits batches at
MLflow's limits, follows page tokens, and raises :class:`TrackingError` with the server's
error code.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Self

import httpx

from modelship.tracking.errors import INTERNAL_ERROR, TrackingError
from modelship.tracking.protocol.paths import API
from modelship.tracking.protocol.validation import (
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
)


def _now_ms() -> int:
    return int(time.time() * 1000)


class TrackingClient:
    """``TrackingClient("http://tracking:5000", token=...)``; usable as a context manager."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _call(
        self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        r = self.http.request(method, API + path, json=body, params=params)
        if r.status_code != 200:
            try:
                err = r.json()
                raise TrackingError(err.get("message", r.text), err.get("error_code", INTERNAL_ERROR))
            except ValueError:
                raise TrackingError(f"HTTP {r.status_code}: {r.text[:200]}", INTERNAL_ERROR) from None
        result: dict[str, Any] = r.json()
        return result

    # ---- experiments -------------------------------------------------------------------
    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        body = {"name": name, "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
        return str(self._call("POST", "/experiments/create", body)["experiment_id"])

    def get_experiment_by_name(self, name: str) -> dict[str, Any] | None:
        try:
            exp: dict[str, Any] = self._call("GET", "/experiments/get-by-name", params={"experiment_name": name})[
                "experiment"
            ]
            return exp
        except TrackingError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def get_or_create_experiment(self, name: str) -> str:
        exp = self.get_experiment_by_name(name)
        if exp is not None:
            return str(exp["experiment_id"])
        try:
            return self.create_experiment(name)
        except TrackingError as exc:  # created meanwhile by someone else
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            found = self.get_experiment_by_name(name)
            assert found is not None
            return str(found["experiment_id"])

    # ---- runs --------------------------------------------------------------------------
    def create_run(self, experiment_id: str, run_name: str | None = None, tags: Mapping[str, str] | None = None) -> str:
        body = {
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": _now_ms(),
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
        }
        return str(self._call("POST", "/runs/create", body)["run"]["info"]["run_id"])

    def get_run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self._call("GET", "/runs/get", params={"run_id": run_id})["run"]
        return run

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of each metric of a run (what MLflow's run view shows)."""
        return {m["key"]: float(m["value"]) for m in self.get_run(run_id)["data"].get("metrics", [])}

    def log_metric(self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        self._call(
            "POST",
            "/runs/log-metric",
            {"run_id": run_id, "key": key, "value": _float(value), "timestamp": timestamp or _now_ms(), "step": step},
        )

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self._call("POST", "/runs/log-parameter", {"run_id": run_id, "key": key, "value": str(value)})

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self._call("POST", "/runs/set-tag", {"run_id": run_id, "key": key, "value": value})

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
        ps = [{"key": k, "value": str(v)} for k, v in (params or {}).items()]
        ts = [{"key": k, "value": v} for k, v in (tags or {}).items()]
        while ms or ps or ts:
            p_chunk, t_chunk = ps[:MAX_PARAMS_PER_BATCH], ts[:MAX_TAGS_PER_BATCH]
            room = min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(p_chunk) - len(t_chunk))
            m_chunk = ms[:room]
            self._call(
                "POST", "/runs/log-batch", {"run_id": run_id, "metrics": m_chunk, "params": p_chunk, "tags": t_chunk}
            )
            ms, ps, ts = ms[len(m_chunk) :], ps[len(p_chunk) :], ts[len(t_chunk) :]

    def set_terminated(self, run_id: str, status: str = "FINISHED") -> None:
        self._call("POST", "/runs/update", {"run_id": run_id, "status": status, "end_time": _now_ms()})

    def get_metric_history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                params["page_token"] = token
            page = self._call("GET", "/metrics/get-history", params=params)
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
            page = self._call(
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


def _float(value: float) -> float | str:
    from modelship.tracking.protocol.validation import encode_float

    return encode_float(float(value))
