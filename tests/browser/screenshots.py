"""Screenshots of every page of the web UI into docs/img/ui-*.png, taken with Debian's
chromium against a server seeded like the browser tests'.

    .venv/bin/python -m tests.browser.screenshots [docs/img [NAME ...]]

With names (``model-versions kube-deployments``), only those pages.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from tests.browser.harness import (
    TOKEN,
    delivery_record,
    deployment_object,
    endpoint_slice,
    experiment_object,
    launch_chromium,
    registry_objects,
    tracking_server,
)
from tests.browser.seed import seed
from tests.local_servers import ModelServerMetrics


def main(out: Path, only: list[str] | None = None) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    with tempfile.TemporaryDirectory() as tmp, tracking_server(Path(tmp)) as server:
        os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
        demo = seed(server.url)
        seed(server.url, "ui-demo-2")
        del os.environ["MLFLOW_TRACKING_TOKEN"]
        server.registry.objects[:] = registry_objects(demo.run_ids)
        server.registry.experiments[:] = [experiment_object("iris-search", demo.run_ids[4:])]
        server.registry.deployments[:] = [deployment_object("iris-live")]
        server.registry.deliveries["ml"] = delivery_record()
        metrics = {v: ModelServerMetrics() for v in ("blue", "green")}
        server.registry.slices[:] = [
            endpoint_slice(f"iris-live-{v}", m.port, f"iris-live-{v}-0") for v, m in metrics.items()
        ]
        metrics["blue"].predict(400, seconds=0.03)
        metrics["green"].predict(90, seconds=0.2)
        metrics["green"].predict(3, status=500)
        eid, runs = demo.experiment_id, demo.run_ids
        pages = {
            "experiments": ("/#/", "[data-testid=experiments] a"),
            "runs": (f"/#/experiments/{eid}?sort=m%3Alast%3Aloss%20ASC&sel={','.join(runs[:3])}", ".tr"),
            "run": (f"/#/runs/{runs[0]}", "[data-testid=params]"),
            "run-charts": (f"/#/runs/{runs[5]}?tab=charts&smooth=0.6", "[data-testid=chart-card] canvas"),
            "run-charts-by-metric": (
                f"/#/runs/{runs[5]}?tab=charts&x=metric&xm=accuracy&metric=loss",
                "[data-testid=chart-card] canvas",
            ),
            "run-artifacts": (f"/#/runs/{runs[0]}?tab=artifacts", "[data-testid=artifact-tree] button"),
            "compare": (f"/#/compare?runs={','.join(runs[:4])}", "[data-testid=overlay] canvas"),
            "models": ("/#/models", "[data-testid=models] a"),
            "model-versions": ("/#/models/iris", "[data-testid=version-details] [data-testid=gates]"),
            "kube-experiments": ("/#/kube/experiments", "[data-testid=trials] tr"),
            "kube-deployments": ("/#/kube/deployments", "[data-testid=variants] tr"),
        }
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(base_url=server.url, viewport={"width": 1400, "height": 900})
            for name, (url, ready) in pages.items():
                if only and name not in only:
                    continue
                page.goto(url)
                page.locator(ready).first.wait_for()
                if name == "kube-deployments":  # the second look shows the window: predictions meanwhile
                    page.get_by_test_id("live-figures").last.filter(has_text="since start").wait_for()
                    metrics["blue"].predict(60, seconds=0.03)
                    metrics["green"].predict(20, seconds=0.2)
                    metrics["green"].predict(1, status=500)
                    page.get_by_test_id("live-figures").last.filter(has_text="req/s").wait_for(timeout=60_000)
                if name == "run-artifacts":
                    page.get_by_role("button", name="model").click()
                    page.get_by_role("button", name="MLmodel").click()
                    page.get_by_test_id("artifact-text").wait_for()
                page.wait_for_timeout(300)  # let the canvases finish their first frame
                page.screenshot(path=str(out / f"ui-{name}.png"), full_page=name in ("compare", "model-versions"))
                print(out / f"ui-{name}.png")
            browser.close()
        for m in metrics.values():
            m.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"), sys.argv[2:] or None)
