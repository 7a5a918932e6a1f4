"""The calls that are repeated most, answered before routing: the two writes a training
loop repeats (log-metric, log-batch), and the reads of search pages and charts
(runs/search, experiments/search, get-history-bulk-interval), and the web UI's runs table's search.

For one metric, FastAPI's router, dependency solving and middleware stack cost more than
storing it; for a search page, its Request, dependency solving and Response were a tenth of
the page (benchmarks/tracking/scale.py). ``HotPaths`` serves these paths straight from the
ASGI scope with the same functions as their routes in ``api.py`` (the same parsing,
validation, store calls and error bodies), which still document them in OpenAPI and serve
them where the middleware is not installed. Every other request passes through untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from modelship.tracking import errors
from modelship.tracking.errors import TrackingError
from modelship.tracking.logs import event
from modelship.tracking.protocol import fastparse
from modelship.tracking.protocol import messages as msg
from modelship.tracking.protocol.http import MAX_WRITE_BODY, query, query_int, read_body, send_json
from modelship.tracking.protocol.messages import parse_body
from modelship.tracking.protocol.paths import API as PREFIX
from modelship.tracking.protocol.paths import TABLE_RUNS_SEARCH
from modelship.tracking.store.sql import TrackingStore

log = logging.getLogger("modelship.tracking.server")

OK = b"{}"


def write_metric(store: TrackingStore, raw: bytes) -> None:
    run_id, metric = fastparse.log_metric(raw)
    store.log_batch(run_id, [metric])


def write_batch(store: TrackingStore, raw: bytes) -> None:
    run_id, metrics, params, tags = fastparse.log_batch(raw)
    store.log_batch(run_id, metrics, params, tags)


def search_runs(store: TrackingStore, raw: bytes) -> bytes:
    m = parse_body(raw, msg.SearchRuns)
    return store.search_runs_json(m.experiment_ids, m.filter, m.run_view_type, m.max_results, m.order_by, m.page_token)


def search_table_runs(store: TrackingStore, raw: bytes) -> bytes:
    """The web UI's runs table's search (``ui_api``): runs/search's body, runs in the table's shape."""
    m = parse_body(raw, msg.SearchRuns)
    return store.search_runs_json(
        m.experiment_ids, m.filter, m.run_view_type, m.max_results, m.order_by, m.page_token, table=True
    )


def search_experiments(store: TrackingStore, raw: bytes) -> bytes:
    m = parse_body(raw, msg.SearchExperiments)
    return store.search_experiments_json(m.view_type, m.max_results, m.filter, m.order_by, m.page_token)


def history_bulk_interval(store: TrackingStore, request: Request) -> bytes:
    return store.history.get_metric_history_bulk_interval_json(
        request.query_params.getlist("run_ids"),
        query(request, "metric_key") or "",
        query_int(request, "max_results"),
        query_int(request, "start_step"),
        query_int(request, "end_step"),
    )


HOT_WRITES: dict[str, Callable[[TrackingStore, bytes], None]] = {
    f"{PREFIX}/runs/log-metric": write_metric,
    f"{PREFIX}/runs/log-batch": write_batch,
}
HOT_POSTS: dict[str, Callable[[TrackingStore, bytes], bytes]] = {
    f"{PREFIX}/runs/search": search_runs,
    f"{PREFIX}/experiments/search": search_experiments,
    TABLE_RUNS_SEARCH: search_table_runs,
}
HOT_GETS: dict[str, Callable[[TrackingStore, Request], bytes]] = {
    f"{PREFIX}/metrics/get-history-bulk-interval": history_bulk_interval,
}


class HotPaths:
    """``max_body`` bounds the write bodies read here (the reads', ``MAX_WRITE_BODY``); in
    the app, ``BodyLimits`` answers an oversize one first, with the limit of its route."""

    def __init__(self, app: ASGIApp, store: TrackingStore, max_body: int = MAX_WRITE_BODY) -> None:
        self.app, self.store, self.max_body = app, store, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        write = read = get = None
        if method == "POST":
            write = HOT_WRITES.get(path)
            read = HOT_POSTS.get(path) if write is None else None
        elif method == "GET":
            get = HOT_GETS.get(path)
        if write is None and read is None and get is None:
            await self.app(scope, receive, send)
            return
        status, body = 200, OK
        try:
            if get is not None:
                body = get(self.store, Request(scope))
            else:
                if write is not None:
                    write(self.store, await read_body(receive, self.max_body))
                elif read is not None:
                    # A search body's limit is its route's (BodyLimits, outside), not log-batch's.
                    body = read(self.store, await read_body(receive))
        except ClientDisconnect:
            return
        except TrackingError as exc:
            status, body = exc.http_status, orjson.dumps(exc.body())
        except Exception as exc:  # noqa: BLE001 - the app's last-resort handler, for this path
            event(log, "unhandled error", logging.ERROR, path=path, error=repr(exc))
            failure = TrackingError("Internal server error", errors.INTERNAL_ERROR)
            status, body = failure.http_status, orjson.dumps(failure.body())
        await send_json(send, status, body)
