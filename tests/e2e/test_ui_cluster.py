"""The web UI's cluster views in a real browser, from a real API server (the bed).

A tracking server reads the bed through its KubeReader (the one it runs with
``--registry-kubeconfig``); an Experiment, a ModelDeployment and ModelVersions are created
as a user would, and their status is written as the operator would (the operator is not
needed to show a status: this checks the whole path from the API server's stored objects,
pruned to the CRDs' status schemas, to the page). The session's operator is stopped
meanwhile: running, it reconciles these objects and writes a status of its own. Debian's chromium shows them; the test
fails on any console error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser.harness import TOKEN, launch_chromium, tracking_server
from tests.browser.seed import HOSTILE
from tests.cluster.kubeapi import KubeApi, path_for

API = "modelship.io/v1alpha1"


def create_with_status(kube: KubeApi, namespace: str, plural: str, obj: dict[str, Any], status: dict[str, Any]) -> None:
    kube.create(path_for(API, plural, namespace), obj)
    kube.patch(path_for(API, plural, namespace, obj["metadata"]["name"], "status"), {"status": status})


def make_objects(kube: KubeApi, namespace: str, runs: list[str]) -> None:
    create_with_status(
        kube,
        namespace,
        "experiments",
        {
            "apiVersion": API,
            "kind": "Experiment",
            "metadata": {"name": "iris-search"},
            "spec": {
                "project": {"image": "example.com/iris-trainer:1"},
                "search": {
                    "algorithm": "random",
                    "objective": {"metric": "accuracy", "goal": "maximize"},
                    "maxTrials": 4,
                    "space": {"lr": {"type": "float", "low": 0.001, "high": 0.1}},
                },
            },
        },
        {
            "phase": "Running",
            "trialsSummary": "2/4",
            "trials": [
                {
                    "name": "iris-search-0",
                    "number": 0,
                    "runId": runs[0],
                    "parameters": {"lr": 0.01},
                    "objective": 0.93,
                    "phase": "Succeeded",
                },
                {
                    "name": "iris-search-1",
                    "number": 1,
                    "runId": runs[1],
                    "parameters": {"lr": 0.09},
                    "objective": 0.4,
                    "phase": "Stopped",
                    "message": HOSTILE,
                },
                {"name": "iris-search-2", "number": 2, "parameters": {"lr": 0.002}, "phase": "Running"},
            ],
            "bestTrial": {
                "name": "iris-search-0",
                "number": 0,
                "runId": runs[0],
                "objective": 0.93,
                "phase": "Succeeded",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "Running",
                    "message": "2 of 4 trials finished",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        },
    )
    gates = [{"metric": "accuracy", "op": ">=", "value": 0.9}]
    for version, run, stage, metrics in [(1, runs[0], "Production", 0.93), (2, runs[1], "None", 0.4)]:
        create_with_status(
            kube,
            namespace,
            "modelversions",
            {
                "apiVersion": API,
                "kind": "ModelVersion",
                "metadata": {"name": f"iris-{version}"},
                "spec": {"model": "iris", "source": f"runs:/{run}/model", "stage": "Production", "gates": gates},
            },
            {
                "version": version,
                "stage": stage,
                "runId": run,
                "metrics": {"accuracy": metrics},
                "stageHistory": [
                    {"from": "None", "to": "Production", "time": "2026-01-02T00:00:00Z", "reason": "Promoted"}
                ]
                if stage == "Production"
                else [],
            },
        )
    create_with_status(
        kube,
        namespace,
        "modeldeployments",
        {
            "apiVersion": API,
            "kind": "ModelDeployment",
            "metadata": {"name": "iris-live"},
            "spec": {
                "model": "iris",
                "variants": [
                    {"name": "blue", "version": 1, "weight": 90},
                    {"name": "green", "version": 2, "weight": 10},
                ],
            },
        },
        {
            "phase": "Degraded",
            "message": "green: 0 of 1 pods ready",
            "split": "blue=90 green=10",
            "ready": "1/2",
            "rollout": "Stable",
            "variants": [
                {
                    "name": "blue",
                    "version": 1,
                    "modelVersion": "iris-1",
                    "replicas": 1,
                    "readyReplicas": 1,
                    "effectiveWeight": 90,
                },
                {
                    "name": "green",
                    "version": 2,
                    "modelVersion": "iris-2",
                    "replicas": 1,
                    "readyReplicas": 0,
                    "effectiveWeight": 10,
                    "message": "ImagePullBackOff",
                },
            ],
        },
    )


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture
def operator_stopped(kube: KubeApi, namespace: str, operator: Any) -> Iterator[None]:
    """The session's operator stopped while this test writes the status it would write (in
    the full e2e run it had reconciled the Experiment to 0 of 4 trials); the test's objects
    deleted before it starts again, so it never acts on them."""
    import urllib.request

    from tests.cluster.processes import wait_for

    operator.stop()
    try:
        yield
    finally:
        for plural in ("experiments", "modeldeployments", "modelversions", "registeredmodels"):
            for obj in kube.get(path_for(API, plural, namespace))["items"]:
                kube.delete(path_for(API, plural, namespace, obj["metadata"]["name"]))
        operator.start()

        def live() -> bool:
            with urllib.request.urlopen(operator.health_url, timeout=2) as resp:
                return bool(resp.status == 200)

        wait_for(live, 120, "operator liveness after the restart", interval=0.5, processes=[operator])


def test_cluster_views_from_the_api_server(
    kube: KubeApi,
    bed: Any,
    namespace: str,
    crds: list[dict[str, Any]],
    operator_stopped: None,
    browser: Any,
    tmp_path: Path,
) -> None:
    import mlflow
    from playwright.sync_api import expect

    from modelship.tracking.server.registry import KubeReader

    reader = KubeReader(namespace, kubeconfig=str(bed.kubeconfig))
    with tracking_server(tmp_path, reader=reader) as server:
        os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
        try:
            client = mlflow.MlflowClient(server.url)
            eid = client.create_experiment("iris-search")
            runs = [client.create_run(eid, run_name=f"trial-{i}").info.run_id for i in range(2)]
        finally:
            del os.environ["MLFLOW_TRACKING_TOKEN"]
        make_objects(kube, namespace, runs)

        page = browser.new_page(base_url=server.url, viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
        page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))

        page.goto("/#/kube/experiments")
        card = page.get_by_test_id("kube-experiment")
        expect(card.get_by_test_id("kube-experiment-name")).to_have_text("iris-search")
        expect(card).to_contain_text(namespace)
        expect(card).to_contain_text("trials 2/4")
        expect(card).to_contain_text("2 of 4 trials finished")
        rows = card.get_by_test_id("trials").locator("tbody tr")
        expect(rows).to_have_count(3)
        expect(rows.nth(0)).to_contain_text("best")
        expect(rows.nth(0)).to_contain_text("0.93")
        expect(rows.nth(1)).to_contain_text("yes (pruned)")
        expect(rows.nth(1).locator("td").last).to_have_text(HOSTILE)  # text, not markup
        expect(rows.nth(2)).to_contain_text("Running")
        rows.nth(0).get_by_role("link", name=runs[0][:12]).click()
        expect(page.get_by_test_id("run-name")).to_have_text("trial-0")

        page.goto("/#/kube/deployments")
        md = page.get_by_test_id("kube-deployment")
        expect(md.get_by_test_id("kube-deployment-name")).to_have_text("iris-live")
        expect(md.get_by_test_id("split")).to_have_text("live split blue=90 green=10")
        expect(md).to_contain_text("ready 1/2")
        variants = md.get_by_test_id("variants").locator("tbody tr")
        expect(variants).to_have_count(2)
        expect(variants.nth(0).get_by_test_id("live-weight")).to_have_text("90 %")
        expect(variants.nth(1)).to_contain_text("0 / 1")
        expect(variants.nth(1)).to_contain_text("ImagePullBackOff")
        expect(md.get_by_test_id("metrics-note")).to_contain_text("only for a canary")
        # Live figures: the variants' EndpointSlices listed on the real API server; with no
        # model-server pod (no operator here), each variant says so.
        expect(variants.nth(0).get_by_test_id("live-figures")).to_have_text("no Ready pod")
        expect(variants.nth(1).get_by_test_id("live-figures")).to_have_text("no Ready pod")

        page.goto("/#/models/iris")
        expect(page.get_by_test_id("versions").locator("tbody tr")).to_have_count(2)
        v1, v2 = page.get_by_test_id("version-1"), page.get_by_test_id("version-2")
        expect(v1.get_by_test_id("gates").locator("tbody tr").first).to_contain_text("held")
        expect(v2.get_by_test_id("gates").locator("tbody td").last).to_have_text("failed")
        expect(v2).to_contain_text("asks for Production")
        # The namespace has no webhook delivery record (its ConfigMap read by name: 404).
        expect(page.get_by_test_id("webhooks-none")).to_contain_text("No delivery recorded")
        expect(v1.get_by_test_id("stage-history")).to_contain_text("Promoted")
        assert page.locator("#app script").count() == 0
        page.close()
        assert errors == [], f"browser console errors: {errors}"
