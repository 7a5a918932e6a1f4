"""A tracking server on loopback for the browser: the real app under uvicorn in a thread,
with a write token and a registry of ModelVersion objects, and Debian's chromium.

Used by the browser tests, ``python -m tests.browser.screenshots`` and the UI benchmark.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from tests.local_servers import free_port

from modelship.tracking.server.app import create_app
from modelship.tracking.server.registry import StaticReader
from modelship.tracking.settings import ServerSettings
from modelship.tracking.store.sql import TrackingStore

CHROMIUM = os.environ.get("MODELSHIP_CHROMIUM", "/usr/bin/chromium")
TOKEN = "ui-test-write-token"


@dataclass
class Server:
    url: str
    store: TrackingStore
    registry: StaticReader


@contextmanager
def tracking_server(root: Path, token: str | None = TOKEN, *, cluster: bool = True) -> Iterator[Server]:
    """The app on a free port; writes need ``token`` (the UI itself sends none). With
    ``cluster``, a registry of ModelVersion objects (``Server.registry.objects``)."""
    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{root / 'tracking.db'}",
        artifacts_destination=str(root / "artifacts"),
        auth_token=token,
    )
    store = TrackingStore(settings.backend_store_uri)
    registry = StaticReader([])
    app = create_app(settings, store, registry=registry if cluster else None)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="ui-test-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the tracking server on {url} did not start")
        time.sleep(0.1)
    try:
        yield Server(url, store, registry)
    finally:
        server.should_exit = True
        thread.join(30)
        store.close()


def model_version(
    model: str, version: int, stage: str, run_id: str, aliases: list[str] | None = None
) -> dict[str, Any]:
    """A ModelVersion object as the API server returns it, numbered by the operator."""
    return {
        "metadata": {"name": f"{model}-{version}", "namespace": "ml", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"model": model, "source": f"runs:/{run_id}/model", "stage": stage},
        "status": {
            "version": version,
            "stage": stage,
            "aliases": aliases or [],
            "runId": run_id,
            "artifactUri": f"mlflow-artifacts:/1/{run_id}/artifacts/model",
            "conditions": [
                {"type": "Ready", "status": "True", "message": "ready", "lastTransitionTime": "2026-01-01T00:00:10Z"}
            ],
        },
    }


def launch_chromium(playwright: Any) -> Any:
    # Playwright's own browser download cannot work here: Debian's chromium instead.
    # --no-sandbox: the tests run as root, which chromium's sandbox refuses.
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
