"""What the forwarder sends for the head of the log: pure planning, no I/O.

Consecutive metric/param/tag writes of one run are merged into one ``runs/log-batch`` call
within MLflow's limits; every other write is sent as it came.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from modelship.tracking.protocol import validation as v
from modelship.tracking.protocol.paths import API

MERGEABLE = {f"{API}/runs/log-metric", f"{API}/runs/log-parameter", f"{API}/runs/set-tag", f"{API}/runs/log-batch"}


def entities(record: dict[str, Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """(metrics, params, tags) of a mergeable record, in log-batch JSON shapes."""
    body = record["body"]
    path = record["path"]
    if path.endswith("/log-metric"):
        m = {k: body[k] for k in ("key", "value", "timestamp", "step") if k in body}
        if body.get("model_id"):
            m["model_id"] = body["model_id"]
        return [m], [], []
    if path.endswith("/log-parameter"):
        return [], [{"key": body["key"], "value": body["value"]}], []
    if path.endswith("/set-tag"):
        return [], [], [{"key": body["key"], "value": body["value"]}]
    return body.get("metrics", []), body.get("params", []), body.get("tags", [])


class Request:
    """One HTTP call to the server that covers the records ``records``."""

    def __init__(
        self, method: str, path: str, records: list[dict[str, Any]], body: Any = None, blob: str | None = None
    ) -> None:
        self.method, self.path, self.records, self.body, self.blob = (method, path, records, body, blob)

    @property
    def last_seq(self) -> int:
        return int(self.records[-1]["seq"])


def plan(pending: Iterable[dict[str, Any]], max_entities: int) -> Request | None:
    """The next request: a merged log-batch, or the first record as it is. ``pending`` is
    consumed lazily, one record past what the request covers (the log reads from disk)."""
    it = iter(pending)
    first = next(it, None)
    if first is None:
        return None
    if first["path"] not in MERGEABLE:
        return Request(first["method"], first["path"], [first], first.get("body"), first.get("blob"))
    run_id = first["run_id"]
    metrics: list[Any] = []
    params: list[Any] = []
    tags: list[Any] = []
    records: list[dict[str, Any]] = []
    for record in itertools.chain([first], it):
        if record["path"] not in MERGEABLE or record["run_id"] != run_id:
            break
        m, p, t = entities(record)
        if records and (
            len(metrics) + len(m) > v.MAX_METRICS_PER_BATCH
            or len(params) + len(p) > v.MAX_PARAMS_PER_BATCH
            or len(tags) + len(t) > v.MAX_TAGS_PER_BATCH
            or len(metrics) + len(params) + len(tags) + len(m) + len(p) + len(t) > max_entities
        ):
            break
        metrics += m
        params += p
        tags += t
        records.append(record)
    body = {"run_id": run_id, "metrics": metrics, "params": params, "tags": tags}
    return Request("POST", f"{API}/runs/log-batch", records, body)
