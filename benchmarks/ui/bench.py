"""The web UI against MLflow's own, in headless Chromium, on the same data.

Seeds the same runs (``--runs`` runs of ``--params`` params and ``--metrics`` metrics; one
run of ``--points`` points of one metric in an experiment of its own) into the SQLite
database of ``mlflow server`` (the mlflow of the test extra), through MLflow's own
SqlAlchemyStore, and of ``modelship tracking-server``, through its TrackingStore; the
mlflow client over HTTP would take hours for MLflow's server here (about 0.8 s a call on
this loaded machine). Then starts both servers and measures in Debian's chromium, driven
by Playwright, each ``--repeat`` times (the best is kept):

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
TIMEOUT_MS = int(os.environ.get("UI_BENCH_TIMEOUT_MS", "300000"))


def start(command: list[str], log: Path, url: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
    wait_http(url + "/health", proc, timeout=180, log=log)
    return proc


class Data:
    """The same runs for every server: names, params and metric values from one seed."""

    def __init__(self, runs: int, params: int, metrics: int, points: int) -> None:
        self.runs, self.params, self.metrics, self.points = runs, params, metrics, points

    def run(self, i: int) -> tuple[str, list[tuple[str, str]], list[tuple[str, float]]]:
        rng = random.Random(i)
        params = [(f"p{k:02d}", str(rng.randint(0, 1000))) for k in range(self.params)]
        return f"run-{i:05d}", params, [(f"m{k:02d}", rng.random()) for k in range(self.metrics)]

    def history(self, start: int) -> list[tuple[int, float]]:
        rng = random.Random(start)
        return [(s, 1.0 / (1 + s / 1000) + rng.random() * 0.01) for s in range(start, min(self.points, start + 1000))]


T0 = 1_700_000_000_000


def seed_mlflow(db: str, data: Data) -> dict[str, Any]:
    """Into ``mlflow server``'s database through MLflow's own SqlAlchemyStore."""
    from mlflow.entities import ExperimentTag, Metric, Param, RunTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(db, "mlflow-artifacts:/")
    # MLflow 3's UI opens an experiment on its GenAI overview unless the experiment is of
    # the "model training" kind; with this tag it opens on the runs table.
    kind = [ExperimentTag("mlflow.experimentKind", "custom_model_development")]
    eid = store.create_experiment("bench-ui", tags=kind)
    for i in range(data.runs):
        name, params, metrics = data.run(i)
        run = store.create_run(eid, "bench", T0 + i, [RunTag("mlflow.runName", name)], name)
        store.log_batch(
            run.info.run_id, [Metric(k, v, T0 + i, 0) for k, v in metrics], [Param(k, v) for k, v in params], []
        )
    big_eid = store.create_experiment("bench-ui-history", tags=kind)
    big = store.create_run(big_eid, "bench", T0, [RunTag("mlflow.runName", "one-million")], "one-million").info.run_id
    for start in range(0, data.points, 1000):
        store.log_batch(big, [Metric(HISTORY_METRIC, v, T0 + s, s) for s, v in data.history(start)], [], [])
    return {"experiment": eid, "history_experiment": big_eid, "big_run": big}


def seed_modelship(db: str, data: Data) -> dict[str, Any]:
    """Into ``modelship tracking-server``'s database through its TrackingStore."""
    from modelship.tracking.store.sql import TrackingStore

    store = TrackingStore(db)
    eid = store.create_experiment("bench-ui")
    for i in range(data.runs):
        name, params, metrics = data.run(i)
        rid = store.create_run(eid, "bench", name, T0 + i)["info"]["run_id"]
        store.log_batch(rid, [(k, v, T0 + i, 0, None, None, None) for k, v in metrics], params)
    big_eid = store.create_experiment("bench-ui-history")
    big = store.create_run(big_eid, "bench", "one-million", T0)["info"]["run_id"]
    for start in range(0, data.points, 1000):
        store.log_batch(big, [(HISTORY_METRIC, v, T0 + s, s, None, None, None) for s, v in data.history(start)])
    store.close()
    return {"experiment": eid, "history_experiment": big_eid, "big_run": big}


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
        page.goto(f"{self.url}/#/experiments/{eid}/runs/{rid}/model-metrics", wait_until="commit")
        page.locator(".js-plotly-plot .scatterlayer path.js-line, canvas").first.wait_for(timeout=TIMEOUT_MS)


def measure(browser: Any, target: Any, repeat: int, state: Path) -> dict[str, float | None]:
    """Best of ``repeat`` rounds; a step that does not finish within TIMEOUT_MS is None
    (a screenshot of the page then goes into ``state``)."""
    from playwright.sync_api import Error as PlaywrightError

    best: dict[str, float | None] = {}
    steps = [("first_rows", target.open_table), ("sort", target.sort), ("filter", target.filter)]
    steps.append(("history_1m", target.history))
    for n in range(repeat):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        page = context.new_page()
        figures: dict[str, float | None] = {}
        for name, step in steps:
            try:
                figures[name] = timed(step, page)
            except PlaywrightError as exc:  # a timeout, or a page that is not what the step expects
                figures[name] = None
                page.screenshot(path=str(state / f"{target.name}-{name}-{n}.png"))
                print(target.name, name, "failed:", str(exc).splitlines()[0], flush=True)
            page.wait_for_timeout(500)  # let the page settle before the next step
        context.close()
        for k, v in figures.items():
            old = best.get(k)
            best[k] = v if old is None else old if v is None else min(old, v)
        print(target.name, {k: v and round(v, 3) for k, v in figures.items()}, flush=True)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--params", type=int, default=20)
    ap.add_argument("--metrics", type=int, default=50)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--state", type=Path, help="keep the servers' data here (default: a temporary directory)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    data = Data(args.runs, args.params, args.metrics, args.points)

    state = args.state or Path(tempfile.mkdtemp(prefix="ui-bench-"))
    state.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {"runs": args.runs, "params": args.params, "metrics": args.metrics, "points": args.points}
    try:
        targets = []
        for kind in (Ours, MLflow):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            started = time.monotonic()
            if kind is MLflow:
                (state / "mlflow").mkdir(exist_ok=True)
                seeded = seed_mlflow(f"sqlite:///{state / 'mlflow' / 'mlflow.db'}", data)
                command = mlflow_server_command(state / "mlflow", port)
            else:
                db = f"sqlite:///{state / 'modelship.db'}"
                seeded = seed_modelship(db, data)
                command = [sys.executable, "-m", "modelship", "tracking-server", "--host", "127.0.0.1", "--port", str(port),
                           "--backend-store-uri", db, "--artifacts-destination", str(state / "modelship-artifacts")]  # fmt: skip
            results[f"{kind.name}_seed_s"] = round(time.monotonic() - started, 1)
            print(kind.name, "seeded in", results[f"{kind.name}_seed_s"], "s", flush=True)
            procs.append(start(command, state / f"{kind.name}.log", url))
            targets.append(kind(url, seeded, expected(url, seeded["experiment"])))
        with sync_playwright() as p:
            browser = launch_chromium(p)
            for target in targets:
                figures = measure(browser, target, args.repeat, state)
                results[target.name] = {k: v and round(v, 3) for k, v in figures.items()}
            browser.close()
    finally:
        for proc in procs:
            stop(proc)
    ours, theirs = results["modelship"], results["mlflow"]
    limit = TIMEOUT_MS / 1000
    # MLflow's figure is at least the limit where it did not finish: the ratio is then a lower bound.
    results["ratio_mlflow_over_ours"] = {k: ours[k] and round((theirs[k] or limit) / ours[k], 1) for k in ours}
    print(f"{'':12} {'mlflow s':>10} {'modelship s':>12} {'ratio':>8}")
    for k in ours:
        mine = f"{ours[k]:12.3f}" if ours[k] else f"{'failed':>12}"
        other = f"{theirs[k]:10.3f}" if theirs[k] else f"{'>' + str(limit):>10}"
        ratio = results["ratio_mlflow_over_ours"][k]
        print(f"{k:12} {other} {mine} {str(ratio) + 'x' if ratio else '':>8}{'+' if not theirs[k] else ''}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
