"""Metric history (one run, paged; many runs in bulk; many runs sampled over steps) and the
dataset summaries of experiments: the reads behind charts in MLflow's UI and its client."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import orjson
from sqlalchemy import Connection, and_, delete, func, insert, select, tuple_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from modelship.tracking.errors import invalid
from modelship.tracking.store import schema as t
from modelship.tracking.store.blocks import (
    BLOCK,
    BLOCK_DTYPE,
    CHUNK,
    Point,
    block_starts,
    covered,
    dense_blocks,
    dense_run,
    pack,
    shortest_with_blocks,
    summarize,
    unpack,
    uses_blocks,
)
from modelship.tracking.store.db import read_engine
from modelship.tracking.store.jsonsql import (
    history_point_json,
    history_points_by_run_sql,
    history_points_json,
    join_array,
)
from modelship.tracking.store.rows import any_of, driver_rows, experiment_int, metric_out, placeholder, run_row
from modelship.tracking.store.search import decode_page_token, encode_page_token

# MLflow's bounds for the UI's calls (mlflow.server.handlers).
MAX_HISTORY_RESULTS = 25000
MAX_BULK_RUN_IDS = 100
MAX_INTERVAL_RESULTS_PER_RUN = 2500
MAX_DATASET_SEARCH_EXPERIMENTS = 20
MAX_DATASET_SUMMARIES = 1000
DATASET_CONTEXT_TAG = "mlflow.data.context"

# MLflow returns a run's history in logging-time order: timestamp, then step, then value.
_HISTORY_ORDER = (t.metrics.c.timestamp, t.metrics.c.step, t.metrics.c.value)

log = logging.getLogger(__name__)
Points = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""A history's points as columns: step, timestamp, value, is_nan."""


class ChartHistory(NamedTuple):
    """A history as a chart reads it: its count of points, and its blocks or its points."""

    total: int
    blocks: np.ndarray | None
    points: Points | None


class _Stale(Exception):
    pass


def _first_point(b: Any) -> Point:
    return (int(b["first_step"]), int(b["first_timestamp"]), float(b["first_value"]), bool(b["first_nan"]))


def _last_point(blocks: np.ndarray) -> Point:
    b = blocks[-1]
    return (int(b["last_step"]), int(b["last_timestamp"]), float(b["last_value"]), bool(b["last_nan"]))


_POINT_DTYPE = np.dtype([("step", "<i8"), ("timestamp", "<i8"), ("value", "<f8"), ("is_nan", "?")])


def sample_steps(
    steps_per_run: Sequence[Sequence[int]], max_results: int, start: int | None, end: int | None
) -> set[int]:
    """The steps a bulk-interval read returns: at most ``max_results`` of the distinct steps
    in ``[start, end]`` (all steps when both are None), evenly spaced over them, with the
    last step of the range, and each run's own first and last step in the range."""
    max_results = max(1, max_results)
    all_steps = sorted({s for steps in steps_per_run for s in steps})
    if start is None or end is None:
        start, end = 0, (all_steps[-1] if all_steps else 0)
    in_range = [s for s in all_steps if start <= s <= end]
    bounds = {b for steps in steps_per_run if steps for b in (min(steps), max(steps)) if start <= b <= end}
    if len(in_range) <= max_results:
        return set(in_range) | bounds
    interval = len(in_range) / max_results
    sampled = {in_range[int(i * interval)] for i in range(max_results)}
    sampled.add(in_range[-1])
    return sampled | bounds


def evenly_spaced(n: int, k: int) -> list[int]:
    """``k`` indices into ``n`` items, first and last included (all of them when n <= k)."""
    if n <= k:
        return list(range(n))
    if k == 1:
        return [n - 1]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


class MetricHistoryStore:
    """Metric histories and dataset summaries of the tracking database (``TrackingStore.history``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = read_engine(engine)

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        if max_results is not None and max_results <= 0:
            raise invalid(
                f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive integer."
            )
        offset = decode_page_token(page_token)
        m = t.metrics
        q = select(m).where(and_(m.c.run_uuid == run_id, m.c.key == key)).order_by(*_HISTORY_ORDER).offset(offset)
        if max_results is not None:
            q = q.limit(max_results + 1)
        with self.engine.connect() as c:
            run_row(c, run_id)
            rows = c.execute(q).all()
        token = None
        if max_results is not None and len(rows) > max_results:
            rows, token = rows[:max_results], encode_page_token(offset + max_results)
        return [metric_out(r, run_id=True) for r in rows], token

    def chart_history(self, run_id: str, key: str, windows: int) -> ChartHistory:
        """The run's history of ``key`` as a chart of ``windows`` windows needs it: its
        blocks (store/blocks.py) when it is long enough (``uses_blocks``), else its points.

        Blocks saved by an earlier read are a true prefix of the history (a write of points
        deletes those it makes untrue, ``TrackingStore._insert_metrics``): when no point
        follows their last one they are the whole history; when some do, the last row of
        blocks is built again from its points on, with the new ones. A history without
        saved blocks is summarised whole (``_summarized``), and its blocks saved, if it is
        long; a shorter one is read as points."""
        with self.engine.connect() as c:
            version = self._data_version(c)
            rows = c.execute(
                select(t.metric_blocks.c.blocks)
                .where(t.metric_blocks.c.run_uuid == run_id, t.metric_blocks.c.key == key)
                .order_by(t.metric_blocks.c.chunk)
            ).scalars()
            blocks = unpack(list(rows))
            start = 0  # the first row of blocks to save
            if len(blocks):
                if not len(self._points(c, run_id, key, _last_point(blocks), after=True)[0]):
                    return self._short_or(c, run_id, key, windows, blocks)
                start = (len(blocks) - 1) // CHUNK
                grown = self._summarized(c, run_id, key, _first_point(blocks[start * CHUNK]))
                blocks = np.concatenate([blocks[: start * CHUNK], grown])
            else:
                if not uses_blocks(self._count_upto(c, run_id, key, shortest_with_blocks(windows)), windows):
                    points = self._points(c, run_id, key, None)
                    return ChartHistory(len(points[0]), None, points)
                blocks = self._summarized(c, run_id, key, None)
            self._save(c, run_id, key, blocks, start, version)
            return self._short_or(c, run_id, key, windows, blocks)

    @staticmethod
    def _data_version(c: Connection) -> int | None:
        """SQLite's count of the commits other connections made to the database, as this
        connection last saw it (``PRAGMA data_version``); None on PostgreSQL."""
        if c.dialect.name != "sqlite":
            return None
        return int(c.exec_driver_sql("PRAGMA data_version").scalar_one())

    def histories_to_summarize(self, min_points: int) -> list[tuple[str, str, int, int, float]]:
        """The (run, key, and last step, timestamp and value) of the histories whose last step is at least ``min_points - 1`` and
        whose saved blocks are missing or end before their last point (latest_metrics holds
        that point), so that a background pass can build them before a chart asks
        (``server/summaries.py``). The last step stands for the length: a training loop
        logs a step per point, and this is one read of latest_metrics, where counting every
        history's points would read the whole metrics table. A history logged without steps
        is summarised at its first chart read."""
        lm, mb = t.latest_metrics, t.metric_blocks
        current = (
            select(mb.c.chunk)
            .where(
                mb.c.run_uuid == lm.c.run_uuid,
                mb.c.key == lm.c.key,
                tuple_(mb.c.last_step, mb.c.last_timestamp, mb.c.last_value)
                >= tuple_(lm.c.step, lm.c.timestamp, lm.c.value),
            )
            .exists()
        )
        q = (
            select(lm.c.run_uuid, lm.c.key, lm.c.step, lm.c.timestamp, lm.c.value)
            .where(lm.c.step >= min_points - 1, ~current)
            .order_by(lm.c.run_uuid, lm.c.key)
        )
        with self.engine.connect() as c:
            return [(r, k, s, ts, v) for r, k, s, ts, v in c.execute(q)]

    def _short_or(self, c: Connection, run_id: str, key: str, windows: int, blocks: np.ndarray) -> ChartHistory:
        """The blocks, unless the history is too short for ``windows`` windows of blocks."""
        if uses_blocks(covered(blocks), windows):
            return ChartHistory(covered(blocks), blocks, None)
        points = self._points(c, run_id, key, None)
        return ChartHistory(len(points[0]), None, points)

    def _save(self, c: Connection, run_id: str, key: str, blocks: np.ndarray, start: int, version: int | None) -> None:
        """Save the rows of ``blocks`` from row ``start`` on, if they still summarise the
        history's points up to their last one (a write may have come between the read and
        now): on SQLite, when no other connection committed since ``version`` (the
        ``_data_version`` before the read, on this connection) they do; else, and on
        PostgreSQL, the points up to their last one are counted (a million points: 40-70 ms
        of SQLite). A cache's write: when it fails (a read-only database, a race with
        another reader) the answer is still right, and the next read tries again."""
        mb, m = t.metric_blocks, t.metrics
        fresh = []
        for n in range(start, -(-len(blocks) // CHUNK)):
            part = blocks[n * CHUNK : (n + 1) * CHUNK]
            last = part[-1]
            fresh.append(
                {"run_uuid": run_id, "key": key, "chunk": n, "last_step": int(last["last_step"]),
                 "last_timestamp": int(last["last_timestamp"]), "last_value": float(last["last_value"]),
                 "blocks": pack(part)}
            )  # fmt: skip
        last_point = _last_point(blocks)
        try:
            c.commit()  # the reads': the save is a transaction of its own
            with c.begin():
                c.execute(delete(mb).where(mb.c.run_uuid == run_id, mb.c.key == key, mb.c.chunk >= start))
                c.execute(insert(mb), fresh)
                if version is not None and self._data_version(c) == version:
                    return  # the write lock is held: nothing else was committed since the read
                upto = and_(
                    m.c.run_uuid == run_id,
                    m.c.key == key,
                    tuple_(m.c.step, m.c.timestamp, m.c.value, m.c.is_nan) <= tuple_(*last_point),
                )
                if c.execute(select(func.count()).select_from(m).where(upto)).scalar_one() != covered(blocks):
                    raise _Stale()
        except _Stale:
            log.info("metric blocks not saved: the history changed meanwhile", extra={"run_id": run_id, "key": key})
        except SQLAlchemyError as exc:
            log.warning("metric blocks not saved", extra={"run_id": run_id, "key": key, "error": str(exc)[:200]})

    def _summarized(self, c: Connection, run_id: str, key: str, since: Point | None) -> np.ndarray:
        """The blocks of the history from ``since`` (the first point of a block; None: the
        history's first point) on: those of its leading dense step ranges as the database
        computes them (``_dense_prefix``), then those of the points after them."""
        dense = self._dense_prefix(c, run_id, key, since)
        if not len(dense):
            return summarize(*self._points(c, run_id, key, since))
        return np.concatenate([dense, summarize(*self._points(c, run_id, key, _last_point(dense), after=True))])

    @staticmethod
    def _dense_prefix(c: Connection, run_id: str, key: str, since: Point | None) -> np.ndarray:
        """The blocks of the history's leading step ranges of BLOCK steps from ``since`` on
        (from its first point when None) that hold a point at each step (``dense_run``), as
        summarize would make them of the points, with no point read into Python but 4 a
        block: the database counts and takes the min and max of each range, and the step of
        its first point reaching each, in one statement (a million points: 15,625 rows);
        then the points at those steps and at the ranges' ends come back. A training loop's
        history (a point a step) is such ranges from end to end; a history with a step
        logged twice or skipped is such ranges up to there (maybe none), and the rest is
        read as points by the caller.

        SQLite groups the ranges in order when they come from a table of block numbers (a
        temporary table of this connection: over a recursive CTE it sorted every point,
        1.7x the time)."""
        empty = np.zeros(0, BLOCK_DTYPE)
        sqlite = c.dialect.name == "sqlite"
        dbapi = c.connection.dbapi_connection
        cursor = dbapi.cursor()  # type: ignore[union-attr]

        def mark(name: str) -> str:
            return f":{name}" if sqlite else f"%({name})s"

        p: dict[str, Any] = {"run": run_id, "key": key}
        of = f"FROM metrics WHERE run_uuid = {mark('run')} AND key = {mark('key')}"
        try:
            if since is None:
                cursor.execute(
                    f"SELECT step, timestamp, value, is_nan {of} ORDER BY step, timestamp, value, is_nan LIMIT 1", p
                )
                found = cursor.fetchone()
                if found is None:
                    return empty
                since = (int(found[0]), int(found[1]), float(found[2]), bool(found[3]))
            else:
                # A point of since's step before it would belong to the range of since.
                cursor.execute(
                    f"SELECT 1 {of} AND step = {mark('s0')} AND (step, timestamp, value, is_nan) < "
                    f"({mark('s0')}, {mark('t0')}, {mark('v0')}, {mark('n0')}) LIMIT 1",
                    {**p, "s0": since[0], "t0": since[1], "v0": since[2], "n0": since[3]},
                )
                if cursor.fetchone() is not None:
                    return empty
            cursor.execute(f"SELECT max(step) {of}", p)
            first_step, last_step = since[0], cursor.fetchone()[0]  # type: ignore[index]
            count = (int(last_step) - first_step + 1) // BLOCK if last_step is not None else 0
            # Steps are int64: the ranges' bounds must be too (PostgreSQL would refuse them).
            if count <= 0 or not -(2**62) < first_step < 2**62 - BLOCK * count:
                return empty
            p |= {"s0": first_step, "count": count}
            if sqlite:
                cursor.execute("CREATE TEMP TABLE IF NOT EXISTS modelship_block_numbers (k INTEGER PRIMARY KEY)")
                (have,) = cursor.execute("SELECT coalesce(max(k) + 1, 0) FROM temp.modelship_block_numbers").fetchone()
                if have < count:
                    cursor.execute(
                        "WITH RECURSIVE n(k) AS (SELECT ? UNION ALL SELECT k + 1 FROM n WHERE k + 1 < ?) "
                        "INSERT INTO temp.modelship_block_numbers SELECT k FROM n",
                        (have, count),
                    )
                    dbapi.commit()  # type: ignore[union-attr]  # only the temporary table: this connection reads
                numbers, only = "temp.modelship_block_numbers d", f" WHERE d.k < {mark('count')}"
                valid = "CASE WHEN m.is_nan THEN NULL ELSE m.value END"
            else:
                numbers, only = f"generate_series(0, {mark('count')} - 1) AS d(k)", ""
                valid = "CASE WHEN m.is_nan OR m.value = 'NaN' THEN NULL ELSE m.value END"

            def in_range(t: str) -> str:
                lo = f"{mark('s0')} + {BLOCK} * d.k"
                return f"{t}.run_uuid = {mark('run')} AND {t}.key = {mark('key')} AND {t}.step >= {lo} AND {t}.step < {lo} + {BLOCK}"

            def first_reaching(extreme: str) -> str:
                return (
                    f"(SELECT min(x.step) FROM metrics x WHERE {in_range('x')} AND NOT x.is_nan "
                    f"AND x.value = {extreme}({valid}))"
                )

            cursor.execute(
                f"SELECT d.k, count(*), count(DISTINCT m.step), {first_reaching('min')}, {first_reaching('max')} "
                f"FROM {numbers} JOIN metrics m ON {in_range('m')}{only} GROUP BY d.k ORDER BY d.k",
                p,
            )
            ranges = cursor.fetchall()
            if not ranges:
                return empty
            block, n, distinct_steps = (np.array([r[i] for r in ranges], np.int64) for i in range(3))
            dense = dense_run(block, n, distinct_steps)
            if not dense:
                return empty
            extremes = {
                name: (
                    np.array([r[i] if r[i] is not None else 0 for r in ranges[:dense]], np.int64),
                    np.array([r[i] is not None for r in ranges[:dense]], bool),
                )
                for name, i in (("lo", 3), ("hi", 4))
            }
            starts = block_starts(first_step, dense)
            wanted = np.unique(
                np.concatenate([starts, starts + BLOCK - 1] + [found[has] for found, has in extremes.values()])
            ).tolist()
            if sqlite:
                steps, p["steps"] = (
                    f"step IN (SELECT value FROM json_each({mark('steps')}))",
                    orjson.dumps(wanted).decode(),
                )
            else:
                steps, p["steps"] = f"step = ANY({mark('steps')})", wanted
            cursor.execute(f"SELECT step, timestamp, value, is_nan {of} AND {steps} ORDER BY step", p)
            points = np.fromiter(cursor, dtype=_POINT_DTYPE)  # type: ignore[arg-type]
        finally:
            cursor.close()
        blocks = dense_blocks(
            first_step, extremes, (points["step"], points["timestamp"], points["value"], points["is_nan"])
        )
        return empty if blocks is None else blocks

    @staticmethod
    def _count_upto(c: Connection, run_id: str, key: str, most: int) -> int:
        """The history's count of points, or ``most`` if it has more (a read of at most ``most``)."""
        ph = placeholder(c)
        ((n,),) = driver_rows(
            c,
            f"SELECT count(*) FROM (SELECT 1 FROM metrics WHERE run_uuid = {ph} AND key = {ph} LIMIT {ph}) AS p",
            (run_id, key, most),
        )
        return int(n)

    @staticmethod
    def _points(c: Connection, run_id: str, key: str, since: Point | None, after: bool = False) -> Points:
        """The history's points in chart order, from ``since`` on (included, or not with
        ``after``), as columns. Driver SQL: for a million rows, SQLAlchemy's per-row
        processing costs more than SQLite's own work."""
        ph = "?" if c.dialect.name == "sqlite" else "%s"
        sql = f"SELECT step, timestamp, value, is_nan FROM metrics WHERE run_uuid = {ph} AND key = {ph}"
        params: tuple[Any, ...] = (run_id, key)
        if since is not None:
            sql += f" AND (step, timestamp, value, is_nan) {'>' if after else '>='} ({ph}, {ph}, {ph}, {ph})"
            params += since
        cursor = c.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql + " ORDER BY step, timestamp, value, is_nan", params)
            points = np.fromiter(cursor, dtype=_POINT_DTYPE)  # type: ignore[arg-type]
        finally:
            cursor.close()
        return points["step"], points["timestamp"], points["value"], points["is_nan"]

    def get_metric_history_bulk(
        self, run_ids: Sequence[str], key: str, max_results: int | None
    ) -> list[dict[str, Any]]:
        """Every point of ``key`` of the runs, by run id then logging time, at most
        ``max_results`` (25000) in all; run ids that name no run contribute nothing, as in MLflow."""
        if not run_ids:
            raise invalid("GetMetricHistoryBulk request must specify at least one run_id.")
        if len(run_ids) > MAX_BULK_RUN_IDS:
            raise invalid(
                f"GetMetricHistoryBulk request cannot specify more than {MAX_BULK_RUN_IDS} run_ids. "
                f"Received {len(run_ids)} run_ids."
            )
        limit = min(max_results or MAX_HISTORY_RESULTS, MAX_HISTORY_RESULTS)
        if limit <= 0:
            raise invalid(
                f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive integer."
            )
        m = t.metrics
        q = (
            select(m)
            .where(and_(m.c.run_uuid.in_(list(run_ids)), m.c.key == key))
            .order_by(m.c.run_uuid, *_HISTORY_ORDER)
            .limit(limit)
        )
        with self.engine.connect() as c:
            return [metric_out(r, run_id=True) for r in c.execute(q)]

    def get_metric_history_bulk_interval(
        self,
        run_ids: Sequence[str],
        key: str,
        max_results: int | None,
        start_step: int | None,
        end_step: int | None,
    ) -> list[dict[str, Any]]:
        """Up to ``max_results`` points per run, sampled over the steps the runs logged (see
        :func:`sample_steps`), by run in the order given, then step and timestamp."""
        body = self.get_metric_history_bulk_interval_json(run_ids, key, max_results, start_step, end_step)
        return list(orjson.loads(body)["metrics"])

    def get_metric_history_bulk_interval_json(
        self,
        run_ids: Sequence[str],
        key: str,
        max_results: int | None,
        start_step: int | None,
        end_step: int | None,
    ) -> bytes:
        """The body of the bulk-interval answer, ``{"metrics": [...]}``, its points written
        as JSON by the database (``jsonsql``): 100 runs x 100 steps are 10,000 points, and a
        dict per point, then encoded, cost more than reading them."""
        if not run_ids:
            raise invalid("Missing value for required parameter 'run_ids'.")
        if len(run_ids) > MAX_BULK_RUN_IDS:
            raise invalid(
                f"GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUN_IDS} run_ids. "
                f"Received {len(run_ids)} run_ids."
            )
        max_results = MAX_INTERVAL_RESULTS_PER_RUN if max_results is None else max_results
        if not 1 <= max_results <= MAX_INTERVAL_RESULTS_PER_RUN:
            raise invalid(f"max_results must be between 1 and {MAX_INTERVAL_RESULTS_PER_RUN}.")
        if (start_step is None) != (end_step is None):
            raise invalid("If either start step or end step are specified, both must be specified.")
        if start_step is not None and end_step is not None and start_step > end_step:
            raise invalid(
                f"end_step must be greater than start_step. Found start_step={start_step} and end_step={end_step}."
            )
        wanted = list(dict.fromkeys(run_ids))
        with self.reads.connect() as c:
            ph = placeholder(c)
            runs_in, wanted_parameters = any_of(c, "run_uuid", wanted)
            # The steps sample_steps considers: [start, end], or from 0 without a range.
            in_range = f" AND step >= {ph}" + ("" if end_step is None else f" AND step <= {ph}")
            range_parameters = (start_step or 0,) if end_step is None else (start_step, end_step)
            span = self._step_span(c, wanted, key, in_range, range_parameters)
            if span is None:  # none of the runs has a point of ``key`` in the range
                return b'{"metrics":[]}'
            base = (*wanted_parameters, key, *range_parameters)
            # Steps are integers: no more distinct steps than the span holds. When that is
            # within max_results (the usual case: a chart asks for more points than a run
            # has steps), every step of the range is chosen without counting them.
            distinct = span
            if span > max_results:
                ((distinct,),) = driver_rows(
                    c, f"SELECT COUNT(DISTINCT step) FROM metrics WHERE {runs_in} AND key = {ph}{in_range}", base
                )
            if distinct <= max_results:
                by_run = {
                    run: (count, text)
                    for run, count, text in driver_rows(
                        c, history_points_by_run_sql(c.dialect.name, ph, len(wanted), in_range), base
                    )
                }
                if all(count <= max_results for count, _ in by_run.values()):
                    texts = [history_points_json(r, key, by_run[r][1]) for r in wanted if r in by_run]
                    return b'{"metrics":[' + ",".join(texts).encode() + b"]}"
                # A run with more points than max_results (several per step): its points
                # are picked evenly below, which needs them one by one.
                step_filter, step_parameters, per_run_cap = in_range, range_parameters, max_results
            else:
                steps: dict[str, list[int]] = defaultdict(list)
                for run_id, step in driver_rows(
                    c,
                    f"SELECT DISTINCT run_uuid, step FROM metrics WHERE {runs_in} AND key = {ph}",
                    (*wanted_parameters, key),
                ):
                    steps[run_id].append(step)
                chosen = sorted(sample_steps([steps[r] for r in wanted], max_results, start_step, end_step))
                per_run_cap = max(max_results, len(chosen))
                steps_in, step_parameters_list = any_of(c, "step", chosen)
                step_filter, step_parameters = f" AND {steps_in}", tuple(step_parameters_list)
            # Driver SQL and plain tuples: a SQLAlchemy row per point, read by attribute,
            # cost five times the database's work (benchmarks/tracking/scale.py).
            rows = driver_rows(
                c,
                f"SELECT run_uuid, {history_point_json(c.dialect.name)} FROM metrics "
                f"WHERE {runs_in} AND key = {ph}{step_filter} ORDER BY run_uuid, step, timestamp, value",
                (*wanted_parameters, key, *step_parameters),
            )
        points = {run: list(map(itemgetter(1), group)) for run, group in groupby(rows, key=itemgetter(0))}
        out: list[str] = []
        for run_id in wanted:
            texts = points.get(run_id, [])
            if len(texts) > per_run_cap:
                texts = [texts[i] for i in evenly_spaced(len(texts), per_run_cap)]
            out += texts
        return b'{"metrics":' + join_array(out) + b"}"

    @staticmethod
    def _step_span(
        c: Connection, run_ids: Sequence[str], key: str, in_range: str, range_parameters: tuple[Any, ...]
    ) -> int | None:
        """How many steps lie from the runs' first to their last step of ``key`` in the range
        (None when they have none), in one read that also checks that every run exists (the
        first one missing answers as a single read of it would). Each run's first and last
        step are two probes of the primary key (run, key, step, ...), where counting the
        distinct steps read every point (10,000 for a chart of 100 runs)."""
        ph = placeholder(c)
        runs_in, parameters = any_of(c, "r.run_uuid", run_ids)
        probe = f"(SELECT {{}}(m.step) FROM metrics m WHERE m.run_uuid = r.run_uuid AND m.key = {ph}"
        probe += in_range.replace("step", "m.step") + ")"
        rows = driver_rows(
            c,
            f"SELECT r.run_uuid, {probe.format('MIN')}, {probe.format('MAX')} FROM runs r WHERE {runs_in}",
            (key, *range_parameters, key, *range_parameters, *parameters),
        )
        found = {r for r, _, _ in rows}
        for run_id in (r for r in run_ids if r not in found):
            run_row(c, run_id)
        lows = [lo for _, lo, _ in rows if lo is not None]
        if not lows:
            return None
        return int(max(hi for _, _, hi in rows if hi is not None)) - int(min(lows)) + 1

    def search_datasets(self, experiment_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The distinct (experiment, dataset name, digest, context) of the runs' dataset inputs."""
        if not experiment_ids:
            raise invalid("SearchDatasets request must specify at least one experiment_id.")
        if len(experiment_ids) > MAX_DATASET_SEARCH_EXPERIMENTS:
            raise invalid(
                f"SearchDatasets request cannot specify more than {MAX_DATASET_SEARCH_EXPERIMENTS} experiment_ids. "
                f"Received {len(experiment_ids)} experiment_ids."
            )
        eids = [experiment_int(e) for e in experiment_ids]
        r, i = t.runs, t.run_inputs
        q = (
            select(r.c.experiment_id, i.c.body)
            .join(i, i.c.run_uuid == r.c.run_uuid)
            .where(r.c.experiment_id.in_(eids), i.c.kind == "dataset")
            .order_by(r.c.experiment_id, i.c.ref)
        )
        seen: dict[tuple[str, str, str, str | None], None] = {}
        with self.engine.connect() as c:
            for eid, body in c.execute(q):
                entry = orjson.loads(body)
                dataset = entry.get("dataset") or {}
                context = next(
                    (tag.get("value") for tag in entry.get("tags") or [] if tag.get("key") == DATASET_CONTEXT_TAG), None
                )
                seen.setdefault((str(eid), dataset.get("name", ""), dataset.get("digest", ""), context))
                if len(seen) == MAX_DATASET_SUMMARIES:
                    break
        out = []
        for eid, name, digest, context in seen:
            summary = {"experiment_id": eid, "name": name, "digest": digest}
            if context is not None:
                summary["context"] = context
            out.append(summary)
        return out
