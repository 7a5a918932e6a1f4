"""Fixtures of the browser tests: one seeded tracking server that requires a write token,
Debian's chromium driven by Playwright, and a page that fails the test on any console
error, uncaught exception, dialog (an ``alert`` would mean injected script ran) or any
request that would write."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.browser.harness import (
    TOKEN,
    Server,
    delivery_record,
    deployment_object,
    endpoint_slice,
    experiment_object,
    launch_chromium,
    registry_objects,
    tracking_server,
)
from tests.browser.seed import HOSTILE, Seeded, seed
from tests.local_servers import ModelServerMetrics, closed_port

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
READ_POSTS = (
    "/api/2.0/mlflow/runs/search",
    "/api/2.0/modelship/runs/table-search",
    "/api/2.0/mlflow/experiments/search",
)

pytestmark = pytest.mark.integration


@dataclass
class Seeds:
    server: Server
    demo: Seeded
    many: Seeded
    blue: ModelServerMetrics


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeds]:
    root = tmp_path_factory.mktemp("ui")
    with tracking_server(root) as server:
        os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN  # the client writes with it; the browser has none
        try:
            demo = seed(server.url)
            many = seed_many(server.url, 300)
        finally:
            del os.environ["MLFLOW_TRACKING_TOKEN"]
        server.registry.objects[:] = registry_objects(demo.run_ids)
        server.registry.deliveries["ml"] = delivery_record()
        server.registry.experiments[:] = [experiment_object("iris-search", demo.run_ids[3:], hostile=HOSTILE)]
        server.registry.deployments[:] = [
            deployment_object("iris-live"),
            deployment_object("hostile", hostile=HOSTILE),
        ]
        # iris-live's blue variant: a server with a model server's own /metrics on loopback; its
        # green one: a pod nothing answers for (not reachable); "hostile": no EndpointSlice.
        blue = ModelServerMetrics()
        blue.predict(190)
        blue.predict(10, status=503)
        server.registry.slices[:] = [
            endpoint_slice("iris-live-blue", blue.port, "iris-live-blue-0"),
            endpoint_slice("iris-live-green", closed_port(), "iris-live-green-0"),
        ]
        try:
            yield Seeds(server, demo, many, blue)
        finally:
            blue.close()


def seed_many(url: str, count: int) -> Seeded:
    """``count`` small runs, more than the table keeps in the DOM at once."""
    import mlflow
    from mlflow.entities import Metric, Param

    client = mlflow.MlflowClient(url)
    out = Seeded(client.create_experiment("ui-many"))
    for i in range(count):
        run = client.create_run(out.experiment_id, run_name=f"many-{i:04d}", start_time=1_700_000_000_000 + i)
        client.log_batch(run.info.run_id, metrics=[Metric("score", float(i), 0, 0)], params=[Param("i", str(i))])
        out.run_ids.append(run.info.run_id)
        out.names[run.info.run_id] = f"many-{i:04d}"
    return out


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@dataclass
class Watch:
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    expected_errors: list[str] = field(default_factory=list)
    """Parts of console errors a test provokes on purpose (the browser logs a 4xx itself)."""


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Any, seeded: Seeds, watch: Watch, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(base_url=seeded.server.url, viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.on("console", lambda m: m.type == "error" and watch.errors.append(m.text))
    pg.on("pageerror", lambda e: watch.errors.append(f"uncaught: {e}"))

    def on_dialog(d: Any) -> None:
        watch.dialogs.append(d.message)
        d.dismiss()

    pg.on("dialog", on_dialog)

    def on_request(r: Any) -> None:
        path = r.url.split("?")[0].removeprefix(seeded.server.url)
        if r.method != "GET" and path not in READ_POSTS:
            watch.writes.append(f"{r.method} {path}")
        if r.headers.get("authorization"):
            watch.writes.append(f"{r.method} {path} sent an Authorization header")

    pg.on("request", on_request)
    yield pg
    context.close()
    assert watch.dialogs == [], f"a dialog opened: injected script ran: {watch.dialogs}"
    errors = [e for e in watch.errors if not any(x in e for x in watch.expected_errors)]
    assert errors == [], f"browser console errors: {errors}"
    assert watch.writes == [], f"the UI sent requests that need a write token: {watch.writes}"
