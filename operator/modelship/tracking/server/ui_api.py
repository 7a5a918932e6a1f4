"""Read-only endpoints of Modelship's own that the web UI needs beyond MLflow's REST API.

- ``metrics/history-windows``: the histories of one metric for one or more runs, each
  reduced on the server to ``windows`` windows that keep their first, last, min and max
  point (:mod:`.downsample`), as columns a chart takes as they are; with ``x_metric_key``,
  each point also carries another metric's value at its step (a chart's x-axis);
- ``metrics/extremes``: each run's min and max of a metric over its whole history, for the
  runs table's "min" and "max" columns (MLflow's API returns only the last value);
- ``runs/count``: how many runs a search finds, so that the runs table can size its
  scroll bar and load its pages only as they are scrolled to;
- ``runs/table-search`` (a POST that writes nothing, like MLflow's searches): ``runs/search``'s
  body and paging, each run as the runs table reads it (MLflow's ``info``, and objects of
  key -> value for the latest metrics, params and tags: ``jsonsql.table_run_json``), 40 %
  of MLflow's answer for the same page; answered by ``hotpath`` before routing;
- ``artifacts/preview``: the first bytes of a run's artifact, answered so that a browser
  never renders or runs it (``application/octet-stream``, ``nosniff``, a sandbox CSP).

All but the table's search are GETs: the UI needs no write token. Nothing here writes.
"""

from __future__ import annotations

import posixpath
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from sqlalchemy import and_, func, select
from starlette.concurrency import run_in_threadpool

from modelship.tracking.errors import invalid, not_found
from modelship.tracking.protocol import messages as msg
from modelship.tracking.protocol.http import body_schema, ok, query, query_int
from modelship.tracking.protocol.paths import TABLE_RUNS_SEARCH, UI_API, safe_path
from modelship.tracking.server import hotpath
from modelship.tracking.server.downsample import DEFAULT_WINDOWS, MAX_WINDOWS, MIN_WINDOWS, window_indices
from modelship.tracking.store import schema as t
from modelship.tracking.store.artifacts import ArtifactStore, relative_to_proxy
from modelship.tracking.store.blocks import block_windows
from modelship.tracking.store.rows import experiment_ints
from modelship.tracking.store.runsearch import run_condition
from modelship.tracking.store.search import parse_filter
from modelship.tracking.store.sql import TrackingStore, view_type

PREFIX = UI_API
MAX_RUNS_PER_HISTORY_CALL = 500
MAX_KEYS_PER_EXTREMES_CALL = 100
DEFAULT_PREVIEW_BYTES = 1 << 20
MAX_PREVIEW_BYTES = 20 << 20
# A preview is data, never a page: no script, no plugin, no navigation, not even styles.
PREVIEW_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Content-Disposition": "attachment",
    "Cache-Control": "no-store",
}


def _float(value: float, is_nan: bool) -> float | None:
    # JSON has no NaN; a chart draws a gap at null.
    return None if is_nan else value


def reduced_history(
    store: TrackingStore, run_id: str, key: str, windows: int, x_key: str | None = None
) -> dict[str, Any]:
    """The history of ``key`` reduced to ``windows`` windows (of whole blocks for a long
    history, store/blocks.py; of its points otherwise). With ``x_key``, each point also
    gets ``x``: the value of metric ``x_key`` at the same step (its last one there), for a chart
    of one metric against another; points at steps where ``x_key`` has no value are left out."""
    if x_key is None:
        history = store.history.chart_history(run_id, key, windows)
        if history.blocks is not None:  # a long history: windows of whole blocks
            steps, stamps, values = block_windows(history.blocks, windows)
        else:
            step, stamp, value, nan = history.points  # type: ignore[misc]
            keep = window_indices(np.where(nan, np.nan, value).tolist(), windows)
            steps, stamps = step[keep].tolist(), stamp[keep].tolist()
            values = [None if bad else v for v, bad in zip(value[keep].tolist(), nan[keep].tolist(), strict=True)]
        return {
            "run_id": run_id,
            "metric_key": key,
            "total": history.total,
            "step": steps,
            "timestamp": stamps,
            "value": values,
        }
    m = t.metrics
    q = (
        select(m.c.step, m.c.timestamp, m.c.value, m.c.is_nan)
        .where(and_(m.c.run_uuid == run_id, m.c.key == key))
        .order_by(m.c.step, m.c.timestamp, m.c.value)
    )
    with store.engine.connect() as c:
        rows = c.execute(q).all()
        at_step: dict[int, float | None] = {}
        if x_key is not None:
            xq = (
                select(m.c.step, m.c.value, m.c.is_nan)
                .where(and_(m.c.run_uuid == run_id, m.c.key == x_key))
                .order_by(m.c.step, m.c.timestamp, m.c.value)
            )
            at_step = {r[0]: _float(r[1], r[2]) for r in c.execute(xq)}  # the last of a step wins
    if x_key is not None:
        rows = [r for r in rows if at_step.get(r[0]) is not None]
    steps = [r[0] for r in rows]
    stamps = [r[1] for r in rows]
    values = [_float(r[2], r[3]) for r in rows]
    keep = window_indices(values, windows)
    if len(keep) < len(rows):
        steps = [steps[i] for i in keep]
        stamps = [stamps[i] for i in keep]
        values = [values[i] for i in keep]
    out: dict[str, Any] = {
        "run_id": run_id,
        "metric_key": key,
        "total": len(rows),
        "step": steps,
        "timestamp": stamps,
        "value": values,
    }
    if x_key is not None:
        out["x_metric_key"] = x_key
        out["x"] = [at_step[s] for s in steps]
    return out


def existing_runs(store: TrackingStore, run_ids: list[str]) -> set[str]:
    with store.engine.connect() as c:
        return {r[0] for r in c.execute(select(t.runs.c.run_uuid).where(t.runs.c.run_uuid.in_(run_ids)))}


def extremes(store: TrackingStore, experiment_id: int, keys: list[str]) -> dict[str, dict[str, list[float]]]:
    m, r = t.metrics, t.runs
    q = (
        select(m.c.key, m.c.run_uuid, func.min(m.c.value), func.max(m.c.value))
        .join(r, r.c.run_uuid == m.c.run_uuid)
        .where(and_(r.c.experiment_id == experiment_id, m.c.key.in_(keys), m.c.is_nan.is_(False)))
        .group_by(m.c.key, m.c.run_uuid)
    )
    out: dict[str, dict[str, list[float]]] = {k: {} for k in keys}
    with store.engine.connect() as c:
        for key, run_id, lo, hi in c.execute(q):
            out[key][run_id] = [lo, hi]
    return out


def count_runs(store: TrackingStore, experiment_ids: list[str], filter_string: str | None) -> int:
    """How many active runs of the experiments match the filter (MLflow's search syntax):
    what paging through ``runs/search`` would find, told before the pages are loaded."""
    r = t.runs.c
    with store.engine.connect() as c:
        conditions = [run_condition(clause, c) for clause in parse_filter(filter_string)]
        q = select(func.count()).where(
            r.experiment_id.in_(experiment_ints(experiment_ids)), r.lifecycle_stage.in_(view_type(None)), *conditions
        )
        return int(c.execute(q).scalar_one())


def ui_api_router(store: TrackingStore, artifacts: ArtifactStore) -> APIRouter:
    router = APIRouter(tags=["Modelship UI"])

    @router.get(
        PREFIX + "/metrics/history-windows", summary="Metric histories reduced to N windows (first/last/min/max)"
    )
    async def history_windows(request: Request) -> Response:
        run_ids = list(dict.fromkeys(request.query_params.getlist("run_id")))
        key = query(request, "metric_key") or ""
        x_key = query(request, "x_metric_key", required=False)
        windows = query_int(request, "windows")
        windows = DEFAULT_WINDOWS if windows is None else windows
        if not run_ids:
            raise invalid("Missing value for required parameter 'run_id' (repeat it for several runs).")
        if len(run_ids) > MAX_RUNS_PER_HISTORY_CALL:
            raise invalid(f"At most {MAX_RUNS_PER_HISTORY_CALL} run_id per call, got {len(run_ids)}: split the call")
        if not MIN_WINDOWS <= windows <= MAX_WINDOWS:
            raise invalid(f"Invalid value {windows} for parameter 'windows': expected {MIN_WINDOWS} to {MAX_WINDOWS}")

        def work() -> dict[str, Any]:
            found = existing_runs(store, run_ids)
            missing = [i for i in run_ids if i not in found]
            if missing:
                raise not_found(f"Run with id={missing[0]} not found")
            return {"histories": [reduced_history(store, i, key, windows, x_key) for i in run_ids]}

        return ok(await run_in_threadpool(work))

    @router.get(PREFIX + "/metrics/extremes", summary="Each run's min and max of metrics over its whole history")
    async def metric_extremes(request: Request) -> Response:
        raw = query(request, "experiment_id") or ""
        try:
            experiment_id = int(raw)
        except ValueError:
            raise invalid(f"Invalid value {raw!r} for parameter 'experiment_id': expected an integer") from None
        keys = list(dict.fromkeys(request.query_params.getlist("metric_key")))
        if not keys:
            raise invalid("Missing value for required parameter 'metric_key' (repeat it for several metrics).")
        if len(keys) > MAX_KEYS_PER_EXTREMES_CALL:
            raise invalid(f"At most {MAX_KEYS_PER_EXTREMES_CALL} metric_key per call, got {len(keys)}: split the call")
        return ok({"extremes": await run_in_threadpool(extremes, store, experiment_id, keys)})

    @router.post(
        TABLE_RUNS_SEARCH,
        summary="The runs table's search: runs/search's body, each run's metrics, params and tags as key -> value",
        openapi_extra=body_schema(msg.SearchRuns),
    )
    async def table_search(request: Request) -> Response:
        return Response(hotpath.search_table_runs(store, await request.body()), media_type="application/json")

    @router.get(PREFIX + "/runs/count", summary="How many active runs of experiments match a search filter")
    async def runs_count(request: Request) -> Response:
        experiment_ids = list(dict.fromkeys(request.query_params.getlist("experiment_id")))
        if not experiment_ids:
            raise invalid("Missing value for required parameter 'experiment_id' (repeat it for several experiments).")
        filter_string = query(request, "filter", required=False)
        return ok({"count": await run_in_threadpool(count_runs, store, experiment_ids, filter_string)})

    @router.get(PREFIX + "/artifacts/preview", summary="The first bytes of a run's artifact, never rendered")
    async def preview(request: Request) -> Response:
        run_id = query(request, "run_id", "run_uuid") or ""
        path = safe_path(query(request, "path"), allow_root=False)
        limit = query_int(request, "max_bytes")
        limit = DEFAULT_PREVIEW_BYTES if limit is None else limit
        if not 1 <= limit <= MAX_PREVIEW_BYTES:
            raise invalid(f"Invalid value {limit} for parameter 'max_bytes': expected 1 to {MAX_PREVIEW_BYTES}")
        run = store.get_run(run_id)
        full = posixpath.join(relative_to_proxy(run["info"]["artifact_uri"]), path)

        def head() -> tuple[bytes, bool]:
            local = artifacts.locate(full)
            if local is not None:
                with local.open("rb") as f:
                    data = f.read(limit + 1)
                return data[:limit], len(data) > limit
            chunks: list[bytes] = []
            size = 0
            for chunk in artifacts.iter_file(full):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    break
            data = b"".join(chunks)
            return data[:limit], len(data) > limit

        data, truncated = await run_in_threadpool(head)
        headers = dict(PREVIEW_HEADERS, **{"X-Modelship-Truncated": "true" if truncated else "false"})
        return Response(data, media_type="application/octet-stream", headers=headers)

    return router
