"""Where the runs table's first rows spend their time, in Chromium, against our server.

Starts ``modelship tracking-server`` on a copy of ``bench.py``'s seeded database (or on
``--db``) and opens the experiment's runs table ``--repeat`` times, each in a fresh browser
context, as ``bench.py`` does. The page records, with ``performance.now()`` (milliseconds
from the navigation's start), when the first row showed (a MutationObserver), and prints
it beside the navigation's and each resource's timings and what Playwright saw: the time
from ``page.goto`` to its locator finding the row (``bench.py``'s measurement), and to a
``wait_for_function`` polled every animation frame finding it.

    .venv/bin/python benchmarks/ui/firstrows.py [--repeat 5] [--db PATH] [--drop-caches-by-copy]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.cache import CACHE
from tests.browser.harness import launch_chromium
from tests.local_servers import free_port, stop, wait_http

SCALE = "ui-v1-10000-20-50-1000000"

# Installed before the page's own scripts: the first time a row of the table is in the DOM.
OBSERVER = """
(() => {
  const seen = () => document.querySelector('.tr a.name');
  const mark = () => { if (!window.__firstRow && seen()) window.__firstRow = performance.now(); };
  new MutationObserver(mark).observe(document, { childList: true, subtree: true });
  window.__longTasks = [];
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longTasks.push([Math.round(e.startTime), Math.round(e.duration)]); })
      .observe({ type: 'longtask', buffered: true });
  } catch (e) {}
})();
"""

COLLECT = """
() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const r = (e) => ({ name: e.name.replace(location.origin, ''), start: Math.round(e.startTime),
    reqStart: Math.round(e.requestStart), respStart: Math.round(e.responseStart), end: Math.round(e.responseEnd),
    bytes: e.encodedBodySize });
  return { firstRow: Math.round(window.__firstRow || -1), dcl: Math.round(nav.domContentLoadedEventEnd),
    load: Math.round(nav.loadEventEnd), html: r(nav), resources: performance.getEntriesByType('resource').map(r),
    longTasks: window.__longTasks };
}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--db", type=Path, help="the database to serve as it is (default: a copy of bench.py's)")
    ap.add_argument("--experiment", default=None)
    args = ap.parse_args()
    seeded = json.loads((CACHE / SCALE / "seeded.json").read_text())
    experiment = args.experiment or seeded["experiment"]
    tmp = Path(tempfile.mkdtemp(prefix="ui-firstrows-"))
    db = args.db
    if db is None:
        db = tmp / "modelship.db"
        shutil.copy(CACHE / SCALE / "modelship.db", db)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    env = dict(os.environ, MODELSHIP_TRACKING_CHART_SUMMARIES_EVERY_S="0")
    command = [sys.executable, "-m", "modelship", "tracking-server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination", str(tmp / "artifacts")]
    print("load at start:", os.getloadavg(), flush=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True, env=env)
    try:
        wait_http(url + "/health", proc, timeout=180, log=log)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = launch_chromium(p)
            for n in range(args.repeat):
                for how in ("locator", "raf"):
                    context = browser.new_context(viewport={"width": 1400, "height": 900})
                    context.add_init_script(OBSERVER)
                    page = context.new_page()
                    started = time.perf_counter()
                    page.goto(f"{url}/#/experiments/{experiment}")
                    after_goto = time.perf_counter() - started
                    if how == "locator":
                        page.locator(".tr a.name").first.wait_for()
                    else:
                        page.wait_for_function("() => !!document.querySelector('.tr a.name')", polling="raf")
                    seen = time.perf_counter() - started
                    page.wait_for_timeout(300)
                    got: dict[str, Any] = page.evaluate(COLLECT)
                    context.close()
                    res = {
                        x["name"].split("?")[0]: (x["start"], x["respStart"], x["end"], x["bytes"])
                        for x in got["resources"]
                    }
                    print(
                        f"round {n} {how:7}: playwright saw it {seen * 1000:4.0f} ms (goto returned {after_goto * 1000:4.0f}); "
                        f"page: first row {got['firstRow']} ms, DCL {got['dcl']}, load {got['load']}, "
                        f"html {got['html']['respStart']}-{got['html']['end']}",
                        flush=True,
                    )
                    print(
                        "   resources (start, first byte, end, bytes):",
                        res,
                        "long tasks:",
                        got["longTasks"],
                        flush=True,
                    )
            browser.close()
    finally:
        stop(proc)
        print("load at end:", os.getloadavg(), flush=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
