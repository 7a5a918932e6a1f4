"""The two writes a training loop repeats (log-metric, log-batch), answered before routing.

For one metric, FastAPI's router, dependency solving and middleware stack cost more than
storing it. ``HotWrites`` serves these two paths straight from the ASGI scope with the
same parsing and store calls as their routes in ``api.py``, which still document them in
OpenAPI and serve them where the middleware is not installed. Every other request passes
through untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from modelship.tracking import errors
from modelship.tracking.errors import TrackingError
from modelship.tracking.logs import event
from modelship.tracking.protocol import fastparse
from modelship.tracking.protocol.http import MAX_WRITE_BODY, read_body, send_json
from modelship.tracking.protocol.paths import API as PREFIX
from modelship.tracking.store.sql import TrackingStore

log = logging.getLogger("modelship.tracking.server")

OK = b"{}"


def write_metric(store: TrackingStore, raw: bytes) -> None:
    run_id, metric = fastparse.log_metric(raw)
    store.log_batch(run_id, [metric])


def write_batch(store: TrackingStore, raw: bytes) -> None:
    run_id, metrics, params, tags = fastparse.log_batch(raw)
    store.log_batch(run_id, metrics, params, tags)


HOT_WRITES: dict[str, Callable[[TrackingStore, bytes], None]] = {
    f"{PREFIX}/runs/log-metric": write_metric,
    f"{PREFIX}/runs/log-batch": write_batch,
}


class HotWrites:
    """``max_body`` bounds the bodies read here; in the app, ``BodyLimits`` answers an
    oversize one first, with the limit of its route."""

    def __init__(self, app: ASGIApp, store: TrackingStore, max_body: int = MAX_WRITE_BODY) -> None:
        self.app, self.store, self.max_body = app, store, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        write = HOT_WRITES.get(scope["path"]) if scope["type"] == "http" else None
        if write is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        status, body = 200, OK
        try:
            write(self.store, await read_body(receive, self.max_body))
        except ClientDisconnect:
            return
        except TrackingError as exc:
            status, body = exc.http_status, orjson.dumps(exc.body())
        except Exception as exc:  # noqa: BLE001 - the app's last-resort handler, for this path
            event(log, "unhandled error", logging.ERROR, path=scope["path"], error=repr(exc))
            failure = TrackingError("Internal server error", errors.INTERNAL_ERROR)
            status, body = failure.http_status, orjson.dumps(failure.body())
        await send_json(send, status, body)
