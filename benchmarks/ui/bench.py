"""The web UI against MLflow's own, in headless Chromium, on the same data.

Starts ``mlflow server`` (the mlflow of the test extra) and ``modelship tracking-server``
on SQLite, seeds both through the mlflow client with the same runs (``--runs`` runs of
``--params`` params and ``--metrics`` metrics; one run of ``--points`` points of one
metric in an experiment of its own), then measures in Debian's chromium, driven by
Playwright, each ``--repeat`` times (the best is kept):

- first rows: from navigating to the experiment's runs table until its first row shows;
- sort: from asking for a sort by a metric until the run with the largest value is first;
- filter: from submitting ``metrics.m00 > 0.99`` until the first matching run is first;
- history: from navigating to the big run's metric chart until the chart has drawn.

    .venv/bin/python benchmarks/ui/bench.py [--runs 10000] [--points 1000000] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from tests.browser.harness import launch_chromium
from tests.local_servers import free_port, mlflow_server_command, stop, wait_http

SORT_METRIC = "m00"
FILTER = f"metrics.{SORT_METRIC} > 0.99"
HISTORY_METRIC = "loss"
TIMEOUT_MS = 600_000


def start(command: list[str], log: Path, url: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
    wait_http(url + "/health", proc, timeout=180, log=log)
    return proc


def seed(url: str, runs: int, params: int, metrics: int, points: int, workers: int) -> dict[str, Any]:
    """The same data on every server, through the mlflow client: 2 calls per run, 1000 points a batch."""
    import mlflow
    from mlflow.entities import Metric, Param

    client = mlflow.MlflowClient(url)
    eid = client.create_experiment("bench-ui")
    t0 = 1_700_000_000_000

    def one(i: int) -> None:
        rng = random.Random(i)
        run = client.create_run(eid, run_name=f"run-{i:05d}", start_time=t0 + i)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(f"m{k:02d}", rng.random(), t0 + i, 0) for k in range(metrics)],
            params=[Param(f"p{k:02d}", str(rng.randint(0, 1000))) for k in range(params)],
        )

    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(runs)))
    runs_s = time.monotonic() - started

    big_eid = client.create_experiment("bench-ui-history")
    big = client.create_run(big_eid, run_name="one-million", start_time=t0).info.run_id
    rng = random.Random(7)

    def batch(start: int) -> None:
        ms = [
            Metric(HISTORY_METRIC, 1.0 / (1 + s / 1000) + rng.random() * 0.01, t0 + s, s)
            for s in range(start, min(points, start + 1000))
        ]
        client.log_batch(big, metrics=ms)

    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(batch, range(0, points, 1000)))
    points_s = time.monotonic() - started
    return {
        "experiment": eid,
        "history_experiment": big_eid,
        "big_run": big,
        "seed_runs_s": runs_s,
        "seed_points_s": points_s,
    }


def expected(url: str, eid: str) -> dict[str, str]:
    """The run names each measurement waits for, from the server's API."""
    import mlflow

    client = mlflow.MlflowClient(url)
    top = client.search_runs([eid], order_by=[f"metrics.{SORT_METRIC} DESC"], max_results=1)[0]
    first = client.search_runs([eid], max_results=1)[0]
    filtered = client.search_runs([eid], FILTER, max_results=1)[0]
    return {"sorted": top.info.run_name, "first": first.info.run_name, "filtered": filtered.info.run_name}


def timed(fn: Callable[[Any], None], page: Any) -> float:
    started = time.perf_counter()
    fn(page)
    return time.perf_counter() - started


class Ours:
    name = "modelship"

    def __init__(self, url: str, seeded: dict[str, Any], names: dict[str, str]) -> None:
        self.url, self.s, self.names = url, seeded, names

    def first_name(self, page: Any, name: str) -> None:
        page.locator(".tr a.name").first.filter(has_text=name).wait_for(timeout=TIMEOUT_MS)

    def open_table(self, page: Any) -> None:
        page.goto(f"{self.url}/#/experiments/{self.s['experiment']}")
        self.first_name(page, self.names["first"])

    def sort(self, page: Any) -> None:
        page.locator("[role=columnheader]", has_text=SORT_METRIC).first.click()
        self.first_name(page, self.names["sorted"])

    def filter(self, page: Any) -> None:
        page.locator("input.filter").fill(FILTER)
        page.locator("input.filter").press("Enter")
        self.first_name(page, self.names["filtered"])

    def history(self, page: Any) -> None:
        page.goto(f"{self.url}/#/runs/{self.s['big_run']}?tab=charts")
        page.locator("[data-testid=chart-card] canvas").first.wait_for(timeout=TIMEOUT_MS)


class MLflow:
    """MLflow 3.x's own UI: an ag-grid runs table, a sort menu, the search box, Plotly charts."""

    name = "mlflow"

    def __init__(self, url: str, seeded: dict[str, Any], names: dict[str, str]) -> None:
        self.url, self.s, self.names = url, seeded, names

    def first_name(self, page: Any, name: str) -> None:
        page.wait_for_function(
            """name => { const rows = [...document.querySelectorAll('.ag-center-cols-container .ag-row, .ag-pinned-left-cols-container .ag-row')];
              const top = rows.filter(r => r.getAttribute('row-index') === '0');
              return top.some(r => r.textContent.includes(name)); }""",
            arg=name,
            timeout=TIMEOUT_MS,
        )

    def open_table(self, page: Any) -> None:
        page.goto(f"{self.url}/#/experiments/{self.s['experiment']}")
        self.first_name(page, self.names["first"])

    def sort(self, page: Any) -> None:
        page.goto(
            f"{self.url}/#/experiments/{self.s['experiment']}?orderByKey=metrics.%60{SORT_METRIC}%60&orderByAsc=false"
        )
        self.first_name(page, self.names["sorted"])

    def filter(self, page: Any) -> None:
        box = page.locator("input[placeholder*='metrics']").first
        box.fill(FILTER)
        box.press("Enter")
        self.first_name(page, self.names["filtered"])

    def history(self, page: Any) -> None:
        eid, rid = self.s["history_experiment"], self.s["big_run"]
        page.goto(f"{self.url}/#/experiments/{eid}/runs/{rid}/model-metrics")
        page.locator(".js-plotly-plot .scatterlayer path.js-line, canvas").first.wait_for(timeout=TIMEOUT_MS)


def measure(browser: Any, target: Any, repeat: int) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        figures = {"first_rows": timed(target.open_table, page)}
        page.wait_for_timeout(500)  # let the table settle before the next action
        figures["sort"] = timed(target.sort, page)
        page.wait_for_timeout(500)
        figures["filter"] = timed(target.filter, page)
        figures["history_1m"] = timed(target.history, page)
        context.close()
        for k, v in figures.items():
            best[k] = min(best.get(k, v), v)
        print(target.name, {k: round(v, 3) for k, v in figures.items()}, flush=True)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--params", type=int, default=20)
    ap.add_argument("--metrics", type=int, default=50)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=4, help="client threads that seed each server")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--state", type=Path, help="keep the servers' data here (default: a temporary directory)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    state = args.state or Path(tempfile.mkdtemp(prefix="ui-bench-"))
    state.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {"runs": args.runs, "params": args.params, "metrics": args.metrics, "points": args.points}
    try:
        targets = []
        for kind in (Ours, MLflow):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            if kind is MLflow:
                (state / "mlflow").mkdir(exist_ok=True)
                command = mlflow_server_command(state / "mlflow", port)
            else:
                command = [sys.executable, "-m", "modelship", "tracking-server", "--host", "127.0.0.1", "--port", str(port),
                           "--backend-store-uri", f"sqlite:///{state / 'modelship.db'}",
                           "--artifacts-destination", str(state / "modelship-artifacts")]  # fmt: skip
            procs.append(start(command, state / f"{kind.name}.log", url))
            seeded = seed(url, args.runs, args.params, args.metrics, args.points, args.workers)
            print(kind.name, "seeded", {k: v for k, v in seeded.items() if k.startswith("seed")}, flush=True)
            results[f"{kind.name}_seed"] = {k: round(v, 1) for k, v in seeded.items() if k.startswith("seed")}
            targets.append(kind(url, seeded, expected(url, seeded["experiment"])))
        with sync_playwright() as p:
            browser = launch_chromium(p)
            for target in targets:
                results[target.name] = {k: round(v, 3) for k, v in measure(browser, target, args.repeat).items()}
            browser.close()
    finally:
        for proc in procs:
            stop(proc)
    ours, theirs = results["modelship"], results["mlflow"]
    results["ratio_mlflow_over_ours"] = {k: round(theirs[k] / ours[k], 1) for k in ours}
    print(f"{'':12} {'mlflow s':>10} {'modelship s':>12} {'ratio':>8}")
    for k in ours:
        print(f"{k:12} {theirs[k]:10.3f} {ours[k]:12.3f} {theirs[k] / ours[k]:7.1f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
