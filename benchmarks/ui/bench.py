"""The web UI against MLflow's own, in headless Chromium, on the same data.

Seeds the same runs (``--runs`` runs of ``--params`` params and ``--metrics`` metrics; one
run of ``--points`` points of one metric in an experiment of its own) straight into the
SQLite schemas of ``mlflow server`` (the mlflow of the test extra) and of ``modelship
tracking-server`` (``benchmarks/sqlseed.py``, as ``benchmarks/tracking/scale.py`` does:
each server creates its schema, then the rows go in with one insert per table chunk;
through MLflow's store 10,000 runs take hours here). The databases are kept under
``~/.cache/modelship/bench/ui-v<N>-<runs>-<params>-<metrics>-<points>/`` and reused. Both
servers are started and checked to answer the same through their REST APIs (the run
count, one run's params and metrics, the big run's last point). Then measures in Debian's
chromium, driven by Playwright, each ``--repeat`` times (the best is kept):

- first rows: from navigating to the experiment's runs table until its first row shows;
- sort: from asking for a sort by a metric until the run with the largest value is first;
- filter: from submitting ``metrics.m00 > 0.99`` until the first matching run is first;
- history: from navigating to the big run's metric chart until the chart has drawn.

The machine's 1-minute load average is sampled every 5 s while the browser measures.

    .venv/bin/python benchmarks/ui/bench.py [--runs 10000] [--points 1000000] [--repeat 3] [--json results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from benchmarks.cache import CACHE, hold
from benchmarks.sqlseed import Chunks, mlflow_schema, modelship_kept, modelship_schema, run_ids, write_rows
from tests.browser.harness import launch_chromium
from tests.local_servers import free_port, stop, wait_http

SORT_METRIC = "m00"
FILTER = f"metrics.{SORT_METRIC} > 0.99"
HISTORY_METRIC = "loss"
TIMEOUT_MS = int(os.environ.get("UI_BENCH_TIMEOUT_MS", "300000"))


def start(command: list[str], log: Path, url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True, env=env)
    try:
        wait_http(url + "/health", proc, timeout=180, log=log)
    except BaseException:  # not yet the caller's to stop: a SIGTERM while it starts included
        stop(proc)
        raise
    return proc


class Data:
    """The same runs for every server: names, params and metric values from one seed."""

    def __init__(self, runs: int, params: int, metrics: int, points: int) -> None:
        self.runs, self.params, self.metrics, self.points = runs, params, metrics, points

    def key(self) -> str:
        """Names the cached databases: a change of the rows below bumps SEED_VERSION."""
        return f"ui-v{SEED_VERSION}-{self.runs}-{self.params}-{self.metrics}-{self.points}"

    def run(self, i: int) -> tuple[str, list[tuple[str, str]], list[tuple[str, float]]]:
        rng = random.Random(i)
        params = [(f"p{k:02d}", str(rng.randint(0, 1000))) for k in range(self.params)]
        return f"run-{i:05d}", params, [(f"m{k:02d}", rng.random()) for k in range(self.metrics)]

    def history(self, start: int) -> list[tuple[int, float]]:
        rng = random.Random(start)
        return [(s, 1.0 / (1 + s / 1000) + rng.random() * 0.01) for s in range(start, min(self.points, start + 1000))]


T0 = 1_700_000_000_000
SEED_VERSION = 1
EXPERIMENT, HISTORY_EXPERIMENT = 1, 2
# MLflow 3's UI opens an experiment on its GenAI overview unless the experiment is of
# the "model training" kind; with this tag it opens on the runs table (ours ignores it).
KIND_TAG = {"key": "mlflow.experimentKind", "value": "custom_model_development"}


def rows(data: Data, artifacts: str) -> Chunks:
    """The (table, rows) chunks both databases get (``benchmarks/sqlseed.py`` writes them)."""
    ids = run_ids(data.runs + 1)
    yield (
        "experiments",
        [
            {"experiment_id": e, "name": name, "artifact_location": f"{artifacts}/{e}", "lifecycle_stage": "active",
             "creation_time": T0, "last_update_time": T0}
            for e, name in ((EXPERIMENT, "bench-ui"), (HISTORY_EXPERIMENT, "bench-ui-history"))
        ],
    )  # fmt: skip
    yield "experiment_tags", [{"experiment_id": e, **KIND_TAG} for e in (EXPERIMENT, HISTORY_EXPERIMENT)]

    def run_row(rid: str, name: str, experiment: int, start: int) -> dict[str, Any]:
        return {"run_uuid": rid, "name": name, "source_type": "LOCAL", "source_name": "", "entry_point_name": "",
                "user_id": "bench", "status": "FINISHED", "start_time": start, "end_time": start + 500,
                "source_version": "", "lifecycle_stage": "active",
                "artifact_uri": f"{artifacts}/{experiment}/{rid}/artifacts", "experiment_id": experiment}  # fmt: skip

    def tag_rows(rid: str, name: str) -> list[dict[str, Any]]:
        return [{"run_uuid": rid, "key": "mlflow.runName", "value": name},
                {"run_uuid": rid, "key": "mlflow.user", "value": "bench"}]  # fmt: skip

    def point(rid: str, key: str, value: float, timestamp: int, step: int) -> dict[str, Any]:
        return {"run_uuid": rid, "key": key, "value": value, "timestamp": timestamp, "step": step, "is_nan": False}

    chunk = 1000
    for lo in range(0, data.runs, chunk):
        runs, params, tags, metrics = [], [], [], []
        for i in range(lo, min(lo + chunk, data.runs)):
            name, run_params, run_metrics = data.run(i)
            rid = ids[i]
            runs.append(run_row(rid, name, EXPERIMENT, T0 + i))
            tags += tag_rows(rid, name)
            params += [{"run_uuid": rid, "key": k, "value": v} for k, v in run_params]
            metrics += [point(rid, k, v, T0 + i, 0) for k, v in run_metrics]
        yield "runs", runs
        yield "tags", tags
        yield "params", params
        yield "latest_metrics", metrics
        yield "metrics", metrics
    big = ids[data.runs]
    yield "runs", [run_row(big, "one-million", HISTORY_EXPERIMENT, T0)]
    yield "tags", tag_rows(big, "one-million")
    last: dict[str, Any] = {}
    for lo in range(0, data.points, 100_000):
        history = [
            point(big, HISTORY_METRIC, v, T0 + s, s)
            for start in range(lo, min(lo + 100_000, data.points), 1000)
            for s, v in data.history(start)
        ]
        last = history[-1]
        yield "metrics", history
    yield "latest_metrics", [last] if last else []


def seed(data: Data, work: Path) -> dict[str, Any]:
    """Both databases under ``work`` (the cache), written once per ``Data.key()``, then
    checked: the same rows in both. What was seeded (ids, counts, seconds)."""
    marker = work / "seeded.json"
    if marker.exists():
        return dict(json.loads(marker.read_text()))
    out: dict[str, Any] = {"experiment": str(EXPERIMENT), "history_experiment": str(HISTORY_EXPERIMENT),
                           "big_run": run_ids(data.runs + 1)[data.runs]}  # fmt: skip
    for kind in ("mlflow", "modelship"):
        db = work / f"{kind}.db"
        db.unlink(missing_ok=True)
        url, art = f"sqlite:///{db}", work / f"{kind}-artifacts"
        started = time.monotonic()
        mlflow_schema(url, art) if kind == "mlflow" else modelship_schema(url)
        out[f"{kind}_counts"] = write_rows(url, rows(data, str(art)))
        if kind == "modelship":
            modelship_kept(url)
        out[f"{kind}_seed_s"] = round(time.monotonic() - started, 1)
        print(kind, "seeded in", out[f"{kind}_seed_s"], "s:", out[f"{kind}_counts"], flush=True)
    if out["mlflow_counts"] != out["modelship_counts"]:
        raise SystemExit(f"the two databases got different rows: {out}")
    marker.write_text(json.dumps(out, indent=1) + "\n")
    return out


def forget_blocks(db: Path) -> None:
    """Every run starts from our database as seeded: without the per-block summaries of its
    long history (``metric_blocks``), which an earlier run's server built and kept in it."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as c, c:
        c.execute("DELETE FROM metric_blocks")


def summaries_built(log: Path) -> list[str]:
    """Our server's log lines of its background pass (when it built the blocks, how long it took)."""
    return [line for line in log.read_text(errors="replace").splitlines() if "chart summaries" in line]


def verify(urls: dict[str, str], seeded: dict[str, Any], data: Data) -> dict[str, Any]:
    """Both servers' REST APIs answer the same: the run count (paging through
    ``runs/search``), a spot-checked run's params and metrics, the big run's last point."""
    import httpx

    def runs_of(client: httpx.Client) -> list[str]:
        ids: list[str] = []
        token = None
        while True:
            body: dict[str, Any] = {"experiment_ids": [seeded["experiment"]], "max_results": 1000}
            if token:
                body["page_token"] = token
            answer = client.post("/api/2.0/mlflow/runs/search", json=body, timeout=600).raise_for_status().json()
            ids += [r["info"]["run_id"] for r in answer.get("runs", [])]
            token = answer.get("next_page_token")
            if not token:
                return ids

    def run_of(client: httpx.Client, rid: str) -> dict[str, Any]:
        run = client.get("/api/2.0/mlflow/runs/get", params={"run_id": rid}, timeout=600).raise_for_status().json()
        d = run["run"]["data"]
        return {"name": run["run"]["info"]["run_name"],
                "params": sorted((p["key"], p["value"]) for p in d.get("params", [])),
                "metrics": sorted((m["key"], m["value"], m["step"]) for m in d.get("metrics", []))}  # fmt: skip

    spot = data.runs // 2
    name, params, metrics = data.run(spot)
    want = {"name": name, "params": sorted(params), "metrics": sorted((k, v, 0) for k, v in metrics)}
    found: dict[str, Any] = {}
    for kind, url in urls.items():
        with httpx.Client(base_url=url) as client:
            ids = runs_of(client)
            got = run_of(client, run_ids(data.runs + 1)[spot])
            big = run_of(client, seeded["big_run"])
        if len(ids) != data.runs or len(set(ids)) != data.runs:
            raise SystemExit(
                f"{kind}: runs/search pages through {len(ids)} runs ({len(set(ids))} distinct), not {data.runs}"
            )
        if got != want:
            raise SystemExit(f"{kind}: run {spot} answers {got}, not {want}")
        last_step = data.points - 1
        if [(k, s) for k, _, s in big["metrics"]] != [(HISTORY_METRIC, last_step)]:
            raise SystemExit(
                f"{kind}: the big run's latest metric is {big['metrics']}, not {HISTORY_METRIC} at {last_step}"
            )
        found[kind] = {"runs": len(ids), "spot_run": name, "big_run_last": big["metrics"][0]}
    page = httpx.get(urls["modelship"] + "/", timeout=30).raise_for_status().text
    if "is not built in this installation" in page:
        # Otherwise every step of ours waits for a table that never comes, and times out.
        raise SystemExit("modelship: the web UI is not built; run `bash scripts/setup.sh` (npm ci, npm run build)")
    print("verified through both REST APIs:", found, flush=True)
    return found


def expected(url: str, eid: str) -> dict[str, str]:
    """The run names each measurement waits for, from the server's API."""
    import mlflow

    client = mlflow.MlflowClient(url)
    top = client.search_runs([eid], order_by=[f"metrics.{SORT_METRIC} DESC"], max_results=1)[0]
    first = client.search_runs([eid], max_results=1)[0]
    filtered = client.search_runs([eid], FILTER, max_results=1)[0]  # the table's own order, no sort
    return {"sorted": top.info.run_name, "first": first.info.run_name, "filtered": filtered.info.run_name}


def timed(fn: Callable[[Any], None], page: Any) -> float:
    started = time.perf_counter()
    fn(page)
    return time.perf_counter() - started


# Installed in every page of a round's context before the page's own scripts: at every
# animation frame (the frame about to be painted), the wall-clock time whenever the table's
# first row (its text) or the chart's being shown changes. A step's in-page figure is from
# its start to the first frame showing what it waits for: what the user sees, without the
# 60-140 ms Playwright's own wait adds after it (a round trip to the browser, its script
# compiled in the page; firstrows.py), alike in both UIs.
FRAME_LOG = """
(() => {
  if (window.__frames) return;
  const log = window.__frames = { row: [], chart: [], input: [], navigation: performance.timeOrigin };
  // The input a sort or a filter starts from, as the page got it (the event's own time), and
  // the navigation's start for the first rows: the time before them is Playwright's (its
  // checks before a click, a round trip, a new page's process), not the page's.
  const input = e => { if (e.type === 'pointerdown' || e.key === 'Enter') log.input.push(performance.timeOrigin + e.timeStamp); };
  addEventListener('pointerdown', input, true);
  addEventListener('keydown', input, true);
  const firstRow = () => { %(first_row)s };
  const chart = () => { const e = document.querySelector(%(chart)s);
    return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden'; };
  let row, shown;
  const tick = () => {
    const t = performance.timeOrigin + performance.now();
    const r = firstRow() || '', c = chart();
    if (r !== row) log.row.push([t, row = r]);
    if (c !== shown) log.chart.push([t, shown = c]);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""


def in_page(page: Any, started_ms: float, what: str, name: str | None) -> tuple[float | None, float | None]:
    """Seconds from ``started_ms`` (wall clock) to the first frame of the page's FRAME_LOG
    showing the step's result: the first row with ``name``, or (``name`` None) the chart;
    and from the step's first input event (a pointerdown or an Enter), or the start of the
    navigation to a new document the step made, to that frame (None for a step with neither:
    a navigation within the page, by its URL's hash)."""
    # After the next frame: Playwright's wait checks the page at once as well as at frames, so it
    # can return on a row in the DOM that no frame has shown (nor logged) yet; that frame comes first.
    log = page.evaluate(
        "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(window.__frames || null))))"
    )
    if not log:
        return None, None
    entries = log[what]
    ok = (lambda v: bool(v)) if name is None else (lambda v: name in v)
    before = [v for t, v in entries if t < started_ms]
    if before and ok(before[-1]):  # already shown when the step started
        return 0.0, None
    shown = next((t for t, v in entries if t >= started_ms and ok(v)), None)
    if shown is None:
        return None, None
    inputs = [t for t in log["input"] if started_ms <= t <= shown]
    if not inputs and log["navigation"] >= started_ms:
        inputs = [log["navigation"]]
    return (shown - started_ms) / 1000, inputs and (shown - inputs[0]) / 1000 or None


def drawn(page: Any, selector: str) -> None:
    """Until ``selector`` is in the page and shown (what a locator's ``wait_for`` waits for),
    checked every animation frame, for both UIs alike."""
    page.wait_for_function(
        """sel => { const e = document.querySelector(sel);
          return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden'; }""",
        arg=selector,
        polling="raf",
        timeout=TIMEOUT_MS,
    )


def click_point(target: Any) -> tuple[float, float]:
    """The middle of ``target`` once Playwright finds it clickable (in view, stable, not
    covered): found before a timed step, so that the step is the click itself (a mouse
    press and release at that point, trusted events) without the 50-70 ms of Playwright's
    own checks before a ``locator.click``, alike in both UIs and none of the page's work."""
    target.scroll_into_view_if_needed()
    target.click(trial=True)  # the actionability checks of a click, without the click
    box = target.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


class Ours:
    name = "modelship"
    FIRST_ROW = "const a = document.querySelector('.tr a.name'); return a && a.textContent;"
    CHART = "[data-testid=chart-card] canvas"

    def __init__(self, url: str, seeded: dict[str, Any], names: dict[str, str]) -> None:
        self.url, self.s, self.names = url, seeded, names

    def first_name(self, page: Any, name: str) -> None:
        # Checked every animation frame, as MLflow's below: a locator's wait_for polls at
        # 0, 20, 70, 170, 270, 770 ms..., which put up to 500 ms on a row already shown
        # (firstrows.py), and its injected script compiles in the page as the page starts.
        page.wait_for_function(
            """name => { const a = document.querySelector('.tr a.name');
              return !!a && a.textContent.includes(name); }""",
            arg=name,
            polling="raf",
            timeout=TIMEOUT_MS,
        )

    def open_table(self, page: Any) -> None:
        page.goto(f"{self.url}/#/experiments/{self.s['experiment']}")
        self.first_name(page, self.names["first"])

    def before_sort(self, page: Any) -> None:
        self.at = click_point(page.locator("[role=columnheader]", has_text=SORT_METRIC).first)

    def sort(self, page: Any) -> None:
        page.mouse.click(*self.at)
        self.first_name(page, self.names["sorted"])

    def before_filter(self, page: Any) -> None:
        """The table as it opens (in the newest-first order, no sort), the filter typed."""
        self.open_table(page)
        page.locator("input.filter").fill(FILTER)

    def filter(self, page: Any) -> None:
        page.keyboard.press("Enter")
        self.first_name(page, self.names["filtered"])

    def history(self, page: Any) -> None:
        page.goto(f"{self.url}/#/runs/{self.s['big_run']}?tab=charts")
        drawn(page, self.CHART)


class MLflow:
    """MLflow 3.x's own UI: an ag-grid runs table, a sort menu, the search box, Plotly charts."""

    name = "mlflow"
    FIRST_ROW = (
        "return [...document.querySelectorAll('.ag-center-cols-container .ag-row, .ag-pinned-left-cols-container .ag-row')]"
        ".filter(r => r.getAttribute('row-index') === '0').map(r => r.textContent).join(' ');"
    )
    CHART = ".js-plotly-plot .scatterlayer path.js-line, canvas"

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

    # MLflow 3.17's UI opens every experiment on its GenAI overview unless the URL (or the
    # sidebar's toggle, kept in local storage) asks for the "model training" workflow.
    ML = "workflowType=machine_learning"

    def open_table(self, page: Any) -> None:
        page.goto(f"{self.url}/#/experiments/{self.s['experiment']}?{self.ML}")
        self.first_name(page, self.names["first"])

    def before_filter(self, page: Any) -> None:
        """The table newest first again (MLflow keeps the last sort, the URL's state), the
        filter typed."""
        page.goto(
            f"{self.url}/#/experiments/{self.s['experiment']}/runs?{self.ML}"
            "&orderByKey=attributes.start_time&orderByAsc=false"
        )
        self.first_name(page, self.names["first"])
        page.locator("input[placeholder*='metrics']").first.fill(FILTER)

    def before_sort(self, page: Any) -> None:
        """Open the sort menu and find the metric (the user's part, not timed); the
        sort's time starts at the click on the metric, as ours starts at the header click."""
        page.get_by_text("Sort: Created").click()
        page.keyboard.type(SORT_METRIC)
        self.at = click_point(page.get_by_role("menuitemcheckbox", name=SORT_METRIC, exact=True).first)

    def sort(self, page: Any) -> None:
        page.mouse.click(*self.at)
        self.first_name(page, self.names["sorted"])

    def filter(self, page: Any) -> None:
        page.keyboard.press("Enter")  # in the search box, focused by its fill
        self.first_name(page, self.names["filtered"])

    def history(self, page: Any) -> None:
        eid, rid = self.s["history_experiment"], self.s["big_run"]
        page.goto(f"{self.url}/#/experiments/{eid}/runs/{rid}/model-metrics?{self.ML}", wait_until="commit")
        drawn(page, self.CHART)


# The kinds of figure each round gives: as Playwright saw it, in the page from the step's
# start (FRAME_LOG), and in the page from the step's input event or navigation start.
KINDS = ("", "_page", "_input")


def measure(
    browser: Any, target: Any, repeat: int, state: Path
) -> tuple[dict[str, dict[str, float | None]], dict[str, list[dict[str, float | None]]]]:
    """Per kind of figure (KINDS), the best of ``repeat`` rounds, and every round's figures;
    a step that does not finish within TIMEOUT_MS is None (a screenshot of the page then
    goes into ``state``)."""
    from playwright.sync_api import Error as PlaywrightError

    best: dict[str, dict[str, float | None]] = {kind: {} for kind in KINDS}
    rounds: dict[str, list[dict[str, float | None]]] = {kind: [] for kind in KINDS}
    awaited = {"first_rows": "first", "sort": "sorted", "filter": "filtered", "history_1m": None}
    frame_log = FRAME_LOG % {"first_row": target.FIRST_ROW, "chart": json.dumps(target.CHART)}
    # (name, untimed preparation, timed step): the filter starts from a table opened afresh,
    # so that the sort before it does not already put the awaited run first.
    steps = [("first_rows", None, target.open_table), ("sort", target.before_sort, target.sort)]
    steps += [("filter", target.before_filter, target.filter), ("history_1m", None, target.history)]
    for n in range(repeat):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        context.add_init_script(frame_log)
        page = context.new_page()
        got: dict[str, dict[str, float | None]] = {kind: {} for kind in KINDS}
        for name, prepare, step in steps:
            try:
                if prepare is not None:
                    prepare(page)
                    page.wait_for_timeout(500)
                    awaited_row = target.names[awaited[name]]
                    if awaited_row in (page.evaluate(f"() => {{ {target.FIRST_ROW} }}") or ""):
                        # The UI acted before the step (a filter applied as it was typed): the step's figure would be nothing.
                        raise RuntimeError(f"{target.name} {name}: {awaited_row} is the first row before the step")
                started_ms = time.time() * 1000
                got[""][name] = timed(step, page)
                key = awaited[name]
                got["_page"][name], got["_input"][name] = in_page(
                    page, started_ms, "chart" if key is None else "row", key and target.names[key]
                )
            except PlaywrightError as exc:  # a timeout, or a page that is not what the step expects
                for kind in KINDS:
                    got[kind][name] = None
                page.screenshot(path=str(state / f"{target.name}-{name}-{n}.png"))
                print(target.name, name, "failed:", str(exc).splitlines()[0], flush=True)
            page.wait_for_timeout(500)  # let the page settle before the next step
        context.close()
        for kind in KINDS:
            kept = best[kind]
            for k, v in got[kind].items():
                old = kept.get(k)
                kept[k] = v if old is None else old if v is None else min(old, v)
            figures = {k: v and round(v, 3) for k, v in got[kind].items()}
            rounds[kind].append(figures)
            print(target.name, kind or "playwright", figures, flush=True)
    return best, rounds


class Load:
    """The machine's 1-minute load average, sampled every 5 s while the browser measures."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(5)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        xs = self.samples or [os.getloadavg()[0]]
        return {"min": round(min(xs), 1), "mean": round(sum(xs) / len(xs), 1), "max": round(max(xs), 1), "n": len(xs)}


def main() -> None:
    # A SIGTERM (timeout, kill) unwinds through the finally below, which stops both servers;
    # by default it would end this process alone and leave them running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--params", type=int, default=20)
    ap.add_argument("--metrics", type=int, default=50)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["modelship", "mlflow"], help="measure one UI (both are seeded and verified)")
    ap.add_argument(
        "--cold-history",
        action="store_true",
        help="our server without its background pass over long histories (chart_summaries_every_s=0): "
        "the history's round 1 is then a first read that builds the blocks itself",
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument("--state", type=Path, help="the servers' logs and screenshots (default: a temporary directory)")
    ap.add_argument("--work", type=Path, help="where the seeded databases are kept (default: the cache, by scale)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    data = Data(args.runs, args.params, args.metrics, args.points)
    work = hold(args.work or CACHE / data.key())
    state = args.state or Path(tempfile.mkdtemp(prefix="ui-bench-"))
    state.mkdir(parents=True, exist_ok=True)
    seeded = seed(data, work)
    forget_blocks(work / "modelship.db")
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {"runs": args.runs, "params": args.params, "metrics": args.metrics, "points": args.points}
    results.update({k: v for k, v in seeded.items() if k.endswith(("_seed_s", "_counts"))})
    try:
        urls: dict[str, str] = {}
        for kind in ("modelship", "mlflow"):
            port = free_port()
            urls[kind] = url = f"http://127.0.0.1:{port}"
            db = f"sqlite:///{work / f'{kind}.db'}"
            art = str(work / f"{kind}-artifacts")
            if kind == "mlflow":
                command = [sys.executable, "-m", "mlflow", "server", "--workers", "1"]
            else:
                command = [sys.executable, "-m", "modelship", "tracking-server"]
            command += [
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backend-store-uri",
                db,
                "--artifacts-destination",
                art,
            ]
            env = dict(os.environ)
            if kind == "modelship" and args.cold_history:
                env["MODELSHIP_TRACKING_CHART_SUMMARIES_EVERY_S"] = "0"
            procs.append(start(command, state / f"{kind}.log", url, env))
        results["verified"] = verify(urls, seeded, data)
        targets = [
            kind(urls[kind.name], seeded, expected(urls[kind.name], seeded["experiment"])) for kind in (Ours, MLflow)
        ]
        targets = [t for t in targets if args.only in (None, t.name)]
        with sync_playwright() as p, Load() as load:
            browser = launch_chromium(p)
            for target in targets:
                best, rounds = measure(browser, target, args.repeat, state)
                for kind in KINDS:
                    results[target.name + kind] = {k: v and round(v, 3) for k, v in best[kind].items()}
                    # Round 1 is the first time (ours: the history's blocks are built then).
                    results[f"{target.name}{kind}_rounds"] = rounds[kind]
            browser.close()
        results["load_1min"] = load.summary()
    finally:
        for proc in procs:
            stop(proc)
    results["cold_history"] = args.cold_history
    results["modelship_summaries"] = summaries_built(state / "modelship.log")
    print("our server's background pass:", results["modelship_summaries"] or "none")
    print("state (logs, screenshots):", state, "| load average (1 min) while measuring:", results["load_1min"])
    if args.only:
        print(
            results[args.only],
            "in the page:",
            results[f"{args.only}_page"],
            "from the input:",
            results[f"{args.only}_input"],
        )
    else:
        report(results)
        print("in the page (from the start of each step to the first frame showing its result):")
        report(results, "_page")
        print(
            "in the page from the step's input event (the sort's pointerdown, the filter's Enter)"
            " or its navigation's start (the first rows) to that frame:"
        )
        report(results, "_input")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def report(results: dict[str, Any], which: str = "") -> None:
    ours, theirs = results["modelship" + which], results["mlflow" + which]
    if which == "_input":  # the steps that start from an input event or a new document's navigation
        ours = {k: v for k, v in ours.items() if k in ("first_rows", "sort", "filter")}
    limit = TIMEOUT_MS / 1000
    # MLflow's figure is at least the limit where it did not finish: the ratio is then a lower bound.
    ratios = {k: ours[k] and round((theirs[k] or limit) / ours[k], 1) for k in ours}
    results["ratio_mlflow_over_ours" + which] = ratios
    print(f"{'':12} {'mlflow s':>10} {'modelship s':>12} {'ratio':>8}")
    for k in ours:
        mine = f"{ours[k]:12.3f}" if ours[k] else f"{'failed':>12}"
        other = f"{theirs[k]:10.3f}" if theirs[k] else f"{'>' + str(limit):>10}"
        ratio = ratios[k]
        print(f"{k:12} {other} {mine} {str(ratio) + 'x' if ratio else '':>8}{'+' if not theirs[k] else ''}")


if __name__ == "__main__":
    main()
