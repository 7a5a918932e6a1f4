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
from modelship.tracking.server.registry import RegistryReader, StaticReader
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
def tracking_server(
    root: Path, token: str | None = TOKEN, *, cluster: bool = True, reader: RegistryReader | None = None
) -> Iterator[Server]:
    """The app on a free port; writes need ``token`` (the UI itself sends none). With
    ``cluster``, a registry of ModelVersion, Experiment and ModelDeployment objects
    (``Server.registry``'s lists), or ``reader`` (a :class:`KubeReader` of a real cluster)."""
    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{root / 'tracking.db'}",
        artifacts_destination=str(root / "artifacts"),
        auth_token=token,
    )
    store = TrackingStore(settings.backend_store_uri)
    registry = StaticReader([])
    app = create_app(settings, store, registry=(reader or registry) if cluster else None)
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
    model: str,
    version: int,
    stage: str,
    run_id: str,
    aliases: list[str] | None = None,
    *,
    gates: list[dict[str, Any]] | None = None,
    metrics: dict[str, float] | None = None,
    history: list[tuple[str, str, str]] | None = None,
    requested: str | None = None,
) -> dict[str, Any]:
    """A ModelVersion object as the API server returns it, numbered by the operator; with
    gates (held against ``metrics``, the run's as the operator read them) and a stage
    history of (from, to, reason)."""
    status: dict[str, Any] = {
        "version": version,
        "stage": stage,
        "aliases": aliases or [],
        "runId": run_id,
        "artifactUri": f"mlflow-artifacts:/1/{run_id}/artifacts/model",
        "conditions": [
            {"type": "Ready", "status": "True", "message": "ready", "lastTransitionTime": "2026-01-01T00:00:10Z"}
        ],
    }
    if metrics is not None:
        status["metrics"] = metrics
    if history:
        status["stageHistory"] = [
            {"from": a, "to": b, "time": f"2026-01-0{i + 2}T00:00:00Z", "reason": why}
            for i, (a, b, why) in enumerate(history)
        ]
    spec: dict[str, Any] = {"model": model, "source": f"runs:/{run_id}/model", "stage": requested or stage}
    if gates:
        spec["gates"] = gates
    return {
        "metadata": {"name": f"{model}-{version}", "namespace": "ml", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": spec,
        "status": status,
    }


def endpoint_slice(service: str, port: int, pod: str, address: str = "127.0.0.1") -> dict[str, Any]:
    """An EndpointSlice of namespace ml with one Ready model-server pod at ``address:port``."""
    return {
        "metadata": {
            "name": f"{service}-x",
            "namespace": "ml",
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port}],
        "endpoints": [
            {"addresses": [address], "conditions": {"ready": True}, "targetRef": {"kind": "Pod", "name": pod}}
        ],
    }


def delivery_record() -> dict[str, str]:
    """The operator's webhook delivery record of namespace ml: one receiver of iris delivered
    after a failure, one failing now (its error a <script>, which must show as text)."""
    from modelship.resources import webhooks as wh

    t0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    good, bad = "http://hooks.example.com/ok", "https://user:pw@hooks.example.com/down?token=s3cret"
    rows = {
        good: wh.record_after(
            None, "iris", good, [wh.Attempt(False, t0, "HTTP 503"), wh.Attempt(True, t0 + 2)], pending=0
        ),
        bad: wh.record_after(
            None, "iris", bad, [wh.Attempt(False, t0 + 5, "<script>alert(1)</script>")] * 3, pending=2
        ),
    }
    return {wh.record_key("iris", url): rec.dump() for url, rec in rows.items()}


def registry_objects(run_ids: list[str]) -> list[dict[str, Any]]:
    """Three versions of iris: an archived one, the champion in Production with its gates held
    and a stage history, and a Staging one whose gate failed and that asks for Production."""
    gates = [{"metric": "accuracy", "op": ">=", "value": 0.5}, {"metric": "loss", "op": "<", "value": 1.0}]
    return [
        model_version(
            "iris",
            1,
            "Archived",
            run_ids[0],
            history=[("None", "Production", "Promoted"), ("Production", "Archived", "Superseded")],
        ),
        model_version(
            "iris",
            2,
            "Production",
            run_ids[1],
            aliases=["champion"],
            gates=gates,
            metrics={"accuracy": 0.91, "loss": 0.27},
            history=[("None", "Staging", "Promoted"), ("Staging", "Production", "Promoted")],
        ),
        model_version(
            "iris",
            3,
            "Staging",
            run_ids[2],
            gates=gates,
            metrics={"accuracy": 0.93, "loss": 1.4},
            requested="Production",
            history=[("None", "Staging", "Promoted")],
        ),
    ]


def experiment_object(name: str, run_ids: list[str], *, hostile: str = "") -> dict[str, Any]:
    """An Experiment object whose status has four trials: succeeded, stopped early, failed, running."""
    trials = [
        {
            "name": f"{name}-t0",
            "number": 0,
            "runId": run_ids[0],
            "parameters": {"lr": 0.01, "depth": 3},
            "objective": 0.93,
            "phase": "Succeeded",
        },
        {
            "name": f"{name}-t1",
            "number": 1,
            "runId": run_ids[1],
            "parameters": {"lr": 0.1, "depth": 2},
            "objective": 0.41,
            "phase": "Stopped",
            "message": "stopped early at step 30: below the median of earlier trials",
        },
        {
            "name": f"{name}-t2",
            "number": 2,
            "runId": run_ids[2],
            "parameters": {"lr": 0.001, "depth": 5},
            "phase": "Failed",
            "message": hostile or "the trainer exited with code 1",
        },
        {"name": f"{name}-t3", "number": 3, "parameters": {"lr": 0.05, "depth": 4}, "phase": "Running"},
    ]
    return {
        "metadata": {"name": name, "namespace": "ml", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "project": {"uri": "git+https://example.com/iris.git"},
            "search": {
                "algorithm": "tpe",
                "objective": {"metric": "accuracy", "goal": "maximize"},
                "maxTrials": 6,
                "space": {"lr": {"type": "float", "low": 0.001, "high": 0.1}},
            },
        },
        "status": {
            "phase": "Running",
            "trials": trials,
            "trialsSummary": "3/6",
            "succeededTrials": 1,
            "failedTrials": 1,
            "bestTrial": trials[0],
            "experimentId": "1",
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "Running", "message": "3 of 6 trials finished"}
            ],
        },
    }


def deployment_object(name: str, *, hostile: str = "") -> dict[str, Any]:
    """A ModelDeployment object mid-canary: blue serves v2 at 80 %, green v3 at 20 % on step 2/4."""
    return {
        "metadata": {"name": name, "namespace": "ml", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "model": "iris",
            "variants": [
                {"name": "blue", "stage": "Production", "weight": 80},
                {"name": "green", "version": 3, "weight": 20},
            ],
            "strategy": {"type": "Canary"},
        },
        "status": {
            "phase": "Progressing",
            "message": hostile or "canary of green at step 2/4",
            "split": "blue=80 green=20",
            "ready": "3/3",
            "rollout": "Canary 2/4 v3",
            "url": f"http://{name}.ml.svc:8080",
            "variants": [
                {
                    "name": "blue",
                    "version": 2,
                    "modelVersion": "iris-2",
                    "replicas": 2,
                    "readyReplicas": 2,
                    "effectiveWeight": 80,
                },
                {
                    "name": "green",
                    "version": 3,
                    "modelVersion": "iris-3",
                    "replicas": 1,
                    "readyReplicas": 1,
                    "effectiveWeight": 20,
                },
            ],
            "canary": {
                "variant": "green",
                "fromVersion": 2,
                "toVersion": 3,
                "phase": "Progressing",
                "step": 1,
                "steps": 4,
                "analysis": {"requests": 412, "errors": 2, "errorRate": 0.0049, "p99Ms": 38.5},
                "message": "step 2/4 at 20 %",
            },
            "experiment": {
                "metric": "binary",
                "control": "blue",
                "confidence": 0.95,
                "minSamples": 30,
                "verdict": "better",
                "winner": "green",
                "message": "green is better than blue: rate 0.973 vs 0.6364 (+0.3366, p 3.2e-07; 74 and 66 outcomes)",
                "variants": [
                    {
                        "name": "blue",
                        "version": 2,
                        "control": True,
                        "samples": 66,
                        "mean": 0.636364,
                        "ciLow": 0.515796,
                        "ciHigh": 0.74193,
                    },
                    {
                        "name": "green",
                        "version": 3,
                        "samples": 74,
                        "mean": 0.972973,
                        "ciLow": 0.906707,
                        "ciHigh": 0.992557,
                        "difference": 0.336609,
                        "pValue": 3.178e-07,
                        "verdict": "better",
                    },
                ],
                "tally": {"instances": {"5c1e0a7d9b21": {"variant": "green", "version": "3"}}},
            },
        },
    }


def launch_chromium(playwright: Any) -> Any:
    # Playwright's own browser download cannot work here: Debian's chromium instead.
    # --no-sandbox: the tests run as root, which chromium's sandbox refuses.
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
