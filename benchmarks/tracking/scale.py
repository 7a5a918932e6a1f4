"""Tracking at scale: ``mlflow server`` and Modelship's tracking server over the same seeded
data (100,000 runs by default), on SQLite and on PostgreSQL, in one run.

    .venv/bin/python benchmarks/tracking/scale.py [--runs 100000] [--history-runs 1000]
        [--experiments 1000] [--repeat 30] [--backends sqlite,postgresql] [--json out.json]

The data: one experiment of ``--runs`` runs, each with 20 params (10 categorical, 10
numeric), 3 tags and 10 metrics whose latest value is what a search filters and sorts on;
``--history-runs`` of them carry a full 100-step history of every metric (the others their
last point only: 100 steps for 100,000 runs is 100 million rows per database, more than this
machine's disk holds four times), and ``--experiments`` experiments in all. Both databases
get the same rows, written straight into each server's own schema (each server creates its
schema first: MLflow's store, Modelship's Alembic migrations), then ANALYZEd. Seeded
databases are kept under ``--work`` and reused by the next run with the same sizes.

Each query is sent over one keep-alive connection, interleaved between the servers round by
round, ``--repeat`` times; p50 and p99 of each. Every answer is checked: both servers must
return the same run ids (same order), the same number of history points and experiments.

The floor is the SQL Modelship's store runs for the query, captured in-process and replayed
on a raw driver connection (sqlite3 / psycopg): what the database itself costs. Ours is
printed as a multiple of it. Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.cache import CACHE, hold
from benchmarks.sqlseed import env as _env
from benchmarks.sqlseed import mlflow_schema, modelship_kept, modelship_schema, run_ids, write_rows
from tests.local_servers import free_port, local_postgres, stop, wait_http

PY = sys.executable
API = "/api/2.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"
STEPS = 100
N_PARAMS, N_METRICS = 20, 10
SEED_VERSION = 1  # bump when the seeded rows change: a kept database is seeded again
T0 = 1_767_225_600_000  # 2026-01-01, ms


# ---- the data ------------------------------------------------------------------------------
def seed_rows(args: argparse.Namespace, artifacts: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(table, rows) chunks, the same for both schemas; columns a schema lacks are dropped."""
    rng = random.Random(11)
    yield (
        "experiments",
        [
            {
                "experiment_id": e,
                "name": f"scale-{e:04d}",
                "artifact_location": f"{artifacts}/{e}",
                "lifecycle_stage": "active",
                "creation_time": T0 + e,
                "last_update_time": T0 + e,
            }
            for e in range(1, args.experiments + 1)
        ],
    )
    ids = run_ids(args.runs)
    chunk = 2000
    for lo in range(0, args.runs, chunk):
        runs, params, tags, latest, metrics = [], [], [], [], []
        for i in range(lo, min(lo + chunk, args.runs)):
            rid, start = ids[i], T0 + i * 1000
            runs.append(
                {
                    "run_uuid": rid,
                    "name": f"run-{i}",
                    "source_type": "LOCAL",
                    "source_name": "",
                    "entry_point_name": "",
                    "user_id": "bench",
                    "status": "FINISHED",
                    "start_time": start,
                    "end_time": start + 500,
                    "source_version": "",
                    "lifecycle_stage": "active",
                    "artifact_uri": f"{artifacts}/1/{rid}/artifacts",
                    "experiment_id": 1,
                }
            )
            for p in range(N_PARAMS):
                value = f"v{rng.randrange(10)}" if p < 10 else str(round(rng.uniform(0, 100), 3))
                params.append({"run_uuid": rid, "key": f"p{p:02d}", "value": value})
            tags += [
                {"run_uuid": rid, "key": "mlflow.runName", "value": f"run-{i}"},
                {"run_uuid": rid, "key": "mlflow.user", "value": "bench"},
                {"run_uuid": rid, "key": "team", "value": f"team-{i % 7}"},
            ]
            full = i < args.history_runs
            for m in range(N_METRICS):
                key, last = f"m{m}", rng.random()
                latest.append(
                    {
                        "run_uuid": rid,
                        "key": key,
                        "value": last,
                        "timestamp": start + STEPS - 1,
                        "step": STEPS - 1,
                        "is_nan": False,
                    }
                )
                steps = range(STEPS) if full else (STEPS - 1,)
                for s in steps:
                    value = last if s == STEPS - 1 else last * (s + 1) / STEPS
                    metrics.append(
                        {
                            "run_uuid": rid,
                            "key": key,
                            "value": value,
                            "timestamp": start + s,
                            "step": s,
                            "is_nan": False,
                        }
                    )
        yield "runs", runs
        yield "params", params
        yield "tags", tags
        yield "latest_metrics", latest
        yield "metrics", metrics


def seed(url: str, args: argparse.Namespace, artifacts: str) -> dict[str, int]:
    """Write the rows into the schema already at ``url``; counts per table."""
    return write_rows(url, seed_rows(args, artifacts))


# ---- the servers ---------------------------------------------------------------------------
@contextmanager
def server(kind: str, url: str, artifacts: Path, log: Path) -> Iterator[str]:
    port = free_port()
    if kind == "mlflow":
        cmd = [PY, "-m", "mlflow", "server", "--workers", "1"]
    else:
        cmd = [PY, "-m", "modelship", "tracking-server"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", url]
    cmd += ["--artifacts-destination", str(artifacts)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True, env=_env())
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/health", proc, log=log)
        yield base
    finally:
        stop(proc)


# ---- the queries ---------------------------------------------------------------------------
def search_body(filter_string: str = "", order_by: list[str] | None = None, token: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"experiment_ids": ["1"], "max_results": 100, "filter": filter_string}
    if order_by:
        body["order_by"] = order_by
    if token:
        body["page_token"] = token
    return body


SEARCHES = {
    "search_runs, metric filter": search_body("metrics.m0 > 0.5"),
    "search_runs, param filter": search_body("params.p03 = 'v7'"),
    "search_runs, order_by a metric": search_body(order_by=["metrics.m1 DESC"]),
}


HTTP_FLOOR = "HTTP round trip, GET /health"


def ids_of(answer: dict[str, Any]) -> list[str]:
    return [r["info"]["run_id"] for r in answer.get("runs", [])]


def exchange(
    client: httpx.Client, method: str, path: str, json_answer: bool = True, **kwargs: Any
) -> tuple[float, Any, float]:
    """The time from sending a request to holding its whole answer (status line, headers and
    body read), and the answer decoded. Decoding is timed apart and not counted: a search
    page's answer is ~300 kB, which Python's json takes 2-4 ms to decode on this machine, the
    same for both servers' (identical) answers, and a cost of the client, not of a server.
    The decoding time is returned third (kept in the results as ``client_decode``)."""
    t = time.perf_counter()
    r = send(client, method, path, **kwargs)
    dt = time.perf_counter() - t
    if not json_answer:
        return dt, r.content, 0.0
    t = time.perf_counter()
    answer = r.json()
    return dt, answer, time.perf_counter() - t


def send(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request; sent again once when the server closed the kept-alive connection as it
    went out (both servers end idle connections after a few seconds, and a slow query to
    the other server leaves ours idle that long)."""
    try:
        r = client.request(method, path, **kwargs)
    except httpx.RemoteProtocolError:
        r = client.request(method, path, **kwargs)
    r.raise_for_status()
    return r


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(send(client, "POST", path, json=body).json())


def page_through(client: httpx.Client, total: int) -> tuple[list[float], list[str], list[float]]:
    """``total`` runs in pages of 100, following page_token: each page's time, the ids, and
    each page's client-side decoding time."""
    times, ids, decodes, token = [], [], [], None
    while len(ids) < total:
        dt, answer, decode = exchange(client, "POST", f"{API}/runs/search", json=search_body(token=token))
        times.append(dt)
        decodes.append(decode)
        ids += ids_of(answer)
        token = answer.get("next_page_token")
        if not token:
            break
    return times, ids, decodes


def bulk_interval_params(ids: list[str]) -> list[tuple[str, str]]:
    return [("run_ids", i) for i in ids] + [("metric_key", "m0"), ("max_results", "320")]


# ---- the floor -----------------------------------------------------------------------------
class Floor:
    """The SQL Modelship's store runs for a call, captured in-process, replayed raw."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import event

        from modelship.tracking.store.sql import TrackingStore

        self.store = TrackingStore(url)
        self.statements: list[tuple[str, Any]] | None = None

        @event.listens_for(self.store.engine, "before_cursor_execute")
        def _capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool) -> None:
            if self.statements is not None:
                self.statements.append((statement, parameters))

        self.raw = self.store.engine.raw_connection()

    def capture(self, call: Callable[[Any], Any]) -> list[tuple[str, Any]]:
        self.statements = []
        try:
            call(self.store)
            return self.statements
        finally:
            self.statements = None

    def replay(self, statements: list[tuple[str, Any]]) -> float:
        cursor = self.raw.cursor()
        t = time.perf_counter()
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            if cursor.description is not None:
                cursor.fetchall()
        dt = time.perf_counter() - t
        cursor.close()
        self.raw.rollback()
        return dt

    def close(self) -> None:
        self.raw.close()
        self.store.close()


# ---- the run -------------------------------------------------------------------------------
def quantiles(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, round(0.99 * (len(xs) - 1)))]
    return {"p50_ms": statistics.median(xs) * 1000, "p99_ms": p99 * 1000, "n": len(xs)}


def seeded(marker: Path, backend: str, pg_url: str | None, kind: str) -> bool:
    """Whether ``kind``'s database holds what ``marker`` says was seeded: on PostgreSQL the
    cluster under /var/tmp can be gone (a reboot, a cleaner) while the marker stays."""
    if not marker.exists():
        return False
    if backend != "postgresql":
        return True
    import psycopg

    runs = json.loads(marker.read_text())["counts"].get("runs")
    try:
        with psycopg.connect(f"{pg_url}/{kind}", autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM runs").fetchone()
    except psycopg.Error:
        return False
    return row is not None and row[0] == runs


def measure_backend(backend: str, args: argparse.Namespace, work: Path, pg_url: str | None) -> dict[str, Any]:
    """Seed (once) both databases of one backend, start both servers, time every query."""
    results: dict[str, Any] = {}
    urls: dict[str, str] = {}
    for kind in ("mlflow", "modelship"):
        if backend == "sqlite":
            urls[kind] = f"sqlite:///{work / f'{kind}.db'}"
        else:
            assert pg_url is not None
            urls[kind] = f"{pg_url}/{kind}".replace("postgresql://", "postgresql+psycopg://")
        marker = work / f"{backend}-{kind}.seeded.json"
        if not seeded(marker, backend, pg_url, kind):
            t = time.monotonic()
            if backend == "postgresql":
                import psycopg

                with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{kind}"')
                    conn.execute(f'CREATE DATABASE "{kind}"')
            else:
                Path(urls[kind].removeprefix("sqlite:///")).unlink(missing_ok=True)
            art = work / f"{backend}-{kind}-artifacts"
            mlflow_schema(urls[kind], art) if kind == "mlflow" else modelship_schema(urls[kind])
            counts = seed(urls[kind], args, str(art))
            if kind == "modelship":
                modelship_kept(urls[kind])
            marker.write_text(json.dumps({"counts": counts, "seconds": round(time.monotonic() - t, 1)}))
            print(f"[{backend}] seeded {kind}: {counts} in {time.monotonic() - t:.0f}s", flush=True)
    if backend == "postgresql":
        # As autovacuum would have by now on a server in use: a kept database was found with
        # its visibility map unset (the bulk history's index-only read fetched its 10,000
        # points from the table too), though the seeding ends with a VACUUM. Both databases
        # alike; quick once done (it skips the pages already all-visible).
        import psycopg

        for kind in ("mlflow", "modelship"):
            with psycopg.connect(f"{pg_url}/{kind}", autocommit=True) as conn:
                conn.execute("VACUUM (ANALYZE)")
    hist_ids = run_ids(args.history_runs)[:100]
    with ExitStack() as stack:
        bases = {
            kind: stack.enter_context(
                server(kind, urls[kind], work / f"{backend}-{kind}-artifacts", work / f"{backend}-{kind}.log")
            )
            for kind in ("mlflow", "modelship")
        }
        clients = {k: stack.enter_context(httpx.Client(base_url=b, timeout=600)) for k, b in bases.items()}
        floor = Floor(urls["modelship"])
        stack.callback(floor.close)
        times: dict[str, dict[str, list[float]]] = {}

        decodes: dict[str, dict[str, list[float]]] = {}

        def record(name: str, kind: str, dt: float, decode: float | None = None) -> None:
            times.setdefault(name, {}).setdefault(kind, []).append(dt)
            if decode is not None:
                decodes.setdefault(name, {}).setdefault(kind, []).append(decode)

        # Warm both (the first search reads the tables from disk), and check the answers agree.
        for name, body in SEARCHES.items():
            answers = {k: ids_of(post(c, f"{API}/runs/search", body)) for k, c in clients.items()}
            if answers["mlflow"] != answers["modelship"] or len(answers["mlflow"]) != 100:
                raise SystemExit(f"[{backend}] {name}: the servers disagree: {answers}")
        for _ in range(args.repeat):
            for kind, client in clients.items():
                # The HTTP floor: an empty request, first in each server's turn as the first
                # search is (after the other server's requests, which leave this one idle).
                dt, _, _ = exchange(client, "GET", "/health", json_answer=False)
                record(HTTP_FLOOR, kind, dt)
                for name, body in SEARCHES.items():
                    dt, _, decode = exchange(client, "POST", f"{API}/runs/search", json=body)
                    record(name, kind, dt, decode)
                dt, answer, decode = exchange(
                    client,
                    "GET",
                    f"{AJAX}/metrics/get-history-bulk-interval",
                    params=bulk_interval_params(hist_ids),
                )
                points = len(answer.get("metrics", []))
                if points != 100 * STEPS:
                    raise SystemExit(f"[{backend}] {kind}: get-history-bulk-interval gave {points} points")
                record("get-history-bulk-interval, 100 runs x 100 steps", kind, dt, decode)
                dt, answer, decode = exchange(client, "POST", f"{API}/experiments/search", json={"max_results": 1000})
                if len(answer.get("experiments", [])) != min(1000, args.experiments + 1):  # and Default
                    raise SystemExit(f"[{backend}] {kind}: experiments/search gave {len(answer['experiments'])}")
                record("experiments/search, 1,000 of them", kind, dt, decode)
        pages: dict[str, list[str]] = {}
        # One pass each untimed, as the searches are warmed above: the first pass after the
        # start reads the 10,000 runs' rows from disk (ours 22 ms a page, then 9 ms).
        for client in clients.values():
            page_through(client, args.page_total)
        for _ in range(max(1, args.repeat // 10)):
            for kind, client in clients.items():
                page_times, ids, page_decodes = page_through(client, args.page_total)
                pages[kind] = ids
                for dt, decode in zip(page_times, page_decodes, strict=True):
                    record(f"paging {args.page_total:,} runs, per page", kind, dt, decode)
                record(f"paging {args.page_total:,} runs, whole pass", kind, sum(page_times))
        if pages["mlflow"] != pages["modelship"] or len(set(pages["modelship"])) != args.page_total:
            raise SystemExit(f"[{backend}] paging: the servers disagree or repeat runs")

        # The floor: Modelship's SQL for each call, replayed on the raw connection.
        floor_calls: dict[str, Callable[[Any], Any]] = {
            name: (
                lambda store, b=body: store.search_runs(
                    ["1"], b["filter"], max_results=100, order_by=b.get("order_by", ())
                )
            )
            for name, body in SEARCHES.items()
        }
        floor_calls["get-history-bulk-interval, 100 runs x 100 steps"] = lambda store: (
            store.history.get_metric_history_bulk_interval(hist_ids, "m0", 320, None, None)
        )
        floor_calls["experiments/search, 1,000 of them"] = lambda store: store.search_experiments(max_results=1000)

        def whole_pass(store: Any) -> None:
            token, seen = None, 0
            while seen < args.page_total:
                runs, token = store.search_runs(["1"], "", max_results=100, page_token=token)
                seen += len(runs)
                if not token:
                    break

        floor_calls[f"paging {args.page_total:,} runs, whole pass"] = whole_pass
        floors: dict[str, dict[str, float]] = {}
        for name, call in floor_calls.items():
            statements = floor.capture(call)
            floors[name] = quantiles([floor.replay(statements) for _ in range(max(3, args.repeat // 3))])
            floors[name]["statements"] = len(statements)
    for name, by_kind in times.items():
        row = {kind: quantiles(xs) for kind, xs in by_kind.items()}
        if name in decodes:
            row["client_decode"] = {kind: quantiles(xs) for kind, xs in decodes[name].items()}
        row["ratio_p50"] = row["mlflow"]["p50_ms"] / max(row["modelship"]["p50_ms"], 1e-9)
        row["ratio_p99"] = row["mlflow"]["p99_ms"] / max(row["modelship"]["p99_ms"], 1e-9)
        if name in floors:
            row["floor"] = floors[name]
            row["x_floor_p50"] = row["modelship"]["p50_ms"] / max(floors[name]["p50_ms"], 1e-9)
        results[name] = row
    # The best p50 ratio a server could reach on each row: MLflow's time over the HTTP floor
    # (the faster server's empty request) plus our SQL floor (a server that added nothing).
    # A whole pass is a request per page.
    http = min(results[HTTP_FLOOR][kind]["p50_ms"] for kind in ("mlflow", "modelship"))
    for name, row in results.items():
        if "floor" in row:
            requests = -(-args.page_total // 100) if name.endswith("whole pass") else 1
            row["best_possible_ratio_p50"] = row["mlflow"]["p50_ms"] / (requests * http + row["floor"]["p50_ms"])
    return results


def print_table(backend: str, results: dict[str, Any]) -> None:
    print(f"\n## {backend}\n")
    if "loadavg" in results:
        load = results["loadavg"]
        print(f"load average {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the end\n")
    print(
        "| query | mlflow p50 / p99 ms | Modelship p50 / p99 ms | ratio p50 / p99 | SQL floor p50 ms | ours / floor "
        "| best possible ratio | client decode p50 ms (not counted) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, row in results.items():
        if name == "loadavg":
            continue
        m, o = row["mlflow"], row["modelship"]
        floor = row.get("floor")
        decode = row.get("client_decode", {}).get("modelship")
        print(
            f"| {name} | {m['p50_ms']:.1f} / {m['p99_ms']:.1f} | {o['p50_ms']:.1f} / {o['p99_ms']:.1f} "
            f"| {row['ratio_p50']:.1f}x / {row['ratio_p99']:.1f}x "
            + (
                f"| {floor['p50_ms']:.2f} ({floor['statements']} stmts) | {row['x_floor_p50']:.1f}x "
                f"| {row['best_possible_ratio_p50']:.1f}x "
                if floor
                else "| — | — | — "
            )
            + (f"| {decode['p50_ms']:.1f} |" if decode else "| — |")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--history-runs", type=int, default=1000, help="runs with a full 100-step history")
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--page-total", type=int, default=10_000, help="runs read by paging, 100 a page")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--work", type=Path, default=None, help="where seeded databases are kept")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.history_runs < 100 or args.history_runs > args.runs or args.page_total > args.runs:
        parser.error("need --history-runs >= 100 (the bulk read takes 100) and <= --runs, --page-total <= --runs")
    work = hold(args.work or CACHE / f"scale-v{SEED_VERSION}-{args.runs}-{args.history_runs}-{args.experiments}")
    out: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "backends": {}}
    for backend in args.backends.split(","):
        load_before = os.getloadavg()
        if backend == "postgresql":
            # Under /var/tmp: PostgreSQL runs as its own user, who cannot enter root's home.
            with local_postgres(Path("/var/tmp/modelship-bench") / work.name / "pg") as pg_url:
                out["backends"][backend] = measure_backend(backend, args, work, pg_url)
        elif backend == "sqlite":
            out["backends"][backend] = measure_backend(backend, args, work, None)
        else:
            parser.error(f"--backends: {backend!r} is neither sqlite nor postgresql")
        # The machine is shared: the load beside every figure, at the start and the end.
        out["backends"][backend]["loadavg"] = {"start": load_before, "end": os.getloadavg()}
        print_table(backend, out["backends"][backend])
    out["loadavg_end"] = os.getloadavg()
    print(f"\nload average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
