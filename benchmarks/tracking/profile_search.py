"""Where Modelship's tracking server spends a search: py-spy on the server while a bounded
loop sends one of ``scale.py``'s requests, its samples split into SQL, SQLAlchemy, building
the answer, JSON, the web framework and idle time.

    .venv/bin/python -m pip install py-spy      # into the venv, from PyPI
    .venv/bin/python benchmarks/tracking/profile_search.py --backend sqlite [--requests 200] \
        [--queries metric,param,order,history,experiments,page] [--keep DIR]

It reuses the databases ``scale.py`` seeded (run that first, same sizes) and starts one
``modelship tracking-server`` on them (PostgreSQL: the kept cluster under
/var/tmp/modelship-bench). Each query is sent ``--requests`` times back to back over one
keep-alive connection while ``py-spy record --idle`` samples the server at 250 Hz; the
samples of each query are then put in one bucket each by the innermost Python frame of the
stack (py-spy attributes the time of a C call, such as sqlite3's ``execute`` or
``orjson.dumps``, to the Python line that made it):

- ``sql``: the database driver (sqlite3's calls from SQLAlchemy's ``do_execute`` and from
  ``driver_rows``; psycopg's Python code, its waits on the socket included);
- ``sqlalchemy``: SQLAlchemy itself (compiling, caching, result objects);
- ``build``: Modelship's store code (rows into the answer's shape);
- ``json``: encoding the answer (``orjson.dumps`` in the response helpers; after the change,
  the joining of the database's JSON texts);
- ``framework``: uvicorn, Starlette, FastAPI, pydantic, httptools, asyncio's run loop;
- ``idle``: the event loop (uvloop's C code, where py-spy sees no Python frame below
  ``Runner.run``): waiting for the next request while the client works, and its socket
  reads and writes, which are left out of the percentages with the waiting;
- ``other``: the rest.

Not a test: it prints percentages of the busy samples (idle excluded) for each query.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.cache import CACHE, hold
from benchmarks.sqlseed import env as _env
from benchmarks.sqlseed import run_ids
from benchmarks.tracking.scale import AJAX, API, SEARCHES, SEED_VERSION, bulk_interval_params, search_body, send
from tests.local_servers import free_port, local_postgres, stop, wait_http

PY = sys.executable
PYSPY = Path(PY).parent / "py-spy"

QUERIES = {
    "metric": ("POST", f"{API}/runs/search", {"json": SEARCHES["search_runs, metric filter"]}),
    "param": ("POST", f"{API}/runs/search", {"json": SEARCHES["search_runs, param filter"]}),
    "order": ("POST", f"{API}/runs/search", {"json": SEARCHES["search_runs, order_by a metric"]}),
    "history": ("GET", f"{AJAX}/metrics/get-history-bulk-interval", {}),
    "experiments": ("POST", f"{API}/experiments/search", {"json": {"max_results": 1000}}),
    "page": ("POST", f"{API}/runs/search", {}),  # the 50th page of the start-time order, by its token
}
BUCKETS = ("sql", "sqlalchemy", "build", "json", "framework", "other")


def bucket(stack: str) -> str:
    """The bucket of one collapsed py-spy stack (frames root first, ``;``-separated)."""
    frames = stack.split(";")
    leaf = frames[-1]
    if leaf.startswith(("Runner.run (", "select (")) or "_run_once (asyncio/base_events.py" in leaf:
        # The event loop itself (uvloop is C): waiting for the next request, mostly.
        return "idle"
    if leaf.startswith(("ok (", "raw_ok (", "dumps", "search_runs_json (", "search_experiments_json (")):
        return "json"
    if "psycopg" in leaf or "do_execute (" in leaf or "driver_rows (" in leaf:
        return "sql"
    if "sqlalchemy" in leaf:
        return "sqlalchemy"
    if "modelship/tracking/store" in leaf or "modelship/tracking/server/hotreads" in leaf:
        return "build"
    if any(p in leaf for p in ("uvicorn", "starlette", "fastapi", "pydantic", "httptools", "h11", "asyncio", "anyio")):
        return "framework"
    return "other"


def split(raw: Path) -> dict[str, float]:
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack:
            counts[bucket(stack)] += int(n)
    busy = sum(v for k, v in counts.items() if k != "idle") or 1
    out = {k: 100.0 * counts[k] / busy for k in BUCKETS}
    out["busy_samples"] = busy
    out["idle_samples"] = counts["idle"]
    return out


@contextmanager
def tracking_server(url: str, artifacts: Path, log: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    cmd = [PY, "-m", "modelship", "tracking-server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--backend-store-uri", url, "--artifacts-destination", str(artifacts)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True, env=_env())
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/health", proc, log=log)
        yield base, proc.pid
    finally:
        stop(proc)


def profile(base: str, pid: int, name: str, requests: int, out_dir: Path) -> dict[str, Any]:
    method, path, kwargs = QUERIES[name]
    with httpx.Client(base_url=base, timeout=600) as client:
        if name == "history":
            kwargs = {"params": bulk_interval_params(run_ids(100))}
        if name == "page":
            token = None
            for _ in range(49):
                token = send(client, "POST", path, json=search_body(token=token)).json()["next_page_token"]
            kwargs = {"json": search_body(token=token)}
        for _ in range(5):  # warm: the first reads come from disk
            send(client, method, path, **kwargs)
        raw = out_dir / f"{name}.txt"
        spy = subprocess.Popen(
            [str(PYSPY), "record", "--pid", str(pid), "--rate", "250", "--idle", "--format", "raw", "-o", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)  # py-spy attaches
            t = time.perf_counter()
            for _ in range(requests):
                send(client, method, path, **kwargs)
            elapsed = time.perf_counter() - t
        finally:
            spy.send_signal(2)  # SIGINT: py-spy writes what it sampled and exits
            spy.wait(timeout=60)
    result = split(raw)
    result["ms_per_request"] = 1000 * elapsed / requests
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--history-runs", type=int, default=1000)
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--queries", default=",".join(QUERIES))
    parser.add_argument("--keep", type=Path, default=None, help="keep py-spy's raw stacks here")
    args = parser.parse_args()
    work = CACHE / f"scale-v{SEED_VERSION}-{args.runs}-{args.history_runs}-{args.experiments}"
    if not (work / f"{args.backend}-modelship.seeded.json").exists():
        raise SystemExit(f"no seeded {args.backend} database in {work}: run scale.py with the same sizes first")
    hold(work)  # its PostgreSQL cluster is started from there
    print(f"load average at the start: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with ExitStack() as stack:
        if args.backend == "postgresql":
            pg = stack.enter_context(local_postgres(Path("/var/tmp/modelship-bench") / work.name / "pg"))
            url = f"{pg}/modelship".replace("postgresql://", "postgresql+psycopg://")
        else:
            url = f"sqlite:///{work / 'modelship.db'}"
        out_dir = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        out_dir.mkdir(parents=True, exist_ok=True)
        base, pid = stack.enter_context(
            tracking_server(url, work / f"{args.backend}-modelship-artifacts", work / f"{args.backend}-profile.log")
        )
        print(f"\n{args.backend}: % of the server's busy samples\n")
        print("| query | ms/request | " + " | ".join(BUCKETS) + " | busy samples |")
        print("| --- | --- | " + " | ".join("---" for _ in BUCKETS) + " | --- |")
        for name in args.queries.split(","):
            r = profile(base, pid, name, args.requests, out_dir)
            cells = " | ".join(f"{r[b]:.0f} %" for b in BUCKETS)
            print(f"| {name} | {r['ms_per_request']:.1f} | {cells} | {r['busy_samples']} |", flush=True)
    print(f"\nload average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
