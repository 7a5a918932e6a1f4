"""tracking.server.ui_cluster: the web UI's cluster views, shaped from objects (pure), and
their endpoints in-process over a StaticReader (with and without cluster access)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from modelship.kube import KubeError
from modelship.tracking.errors import TrackingError
from modelship.tracking.protocol.http import error_response
from modelship.tracking.server.registry import StaticReader
from modelship.tracking.server.ui_cluster import deployment_json, experiment_json, ui_cluster_router, version_detail

OURS = "/api/2.0/modelship"
META = {"name": "iris-2", "namespace": "ml"}
GATES = [{"metric": "accuracy", "op": ">=", "value": 0.9}, {"metric": "loss", "value": 0.5}]


@pytest.mark.parametrize(
    ("status", "held", "actual"),
    [
        (
            {"version": 2, "metrics": {"accuracy": 0.95, "loss": 0.7}},
            [True, True],
            [0.95, 0.7],
        ),  # loss: ">=" by default
        ({"version": 2, "metrics": {"accuracy": 0.85, "loss": 0.7}}, [False, True], [0.85, 0.7]),
        ({"version": 2, "metrics": {"accuracy": 0.95}}, [True, False], [0.95, None]),  # no such metric: failed
        ({"version": 2}, [None, None], [None, None]),  # the run's metrics not read yet: unknown
    ],
)
def test_gates_say_whether_each_held(status: dict[str, Any], held: list[bool | None], actual: list[Any]) -> None:
    out = version_detail({"metadata": META, "spec": {"model": "iris", "gates": GATES}, "status": status})
    assert [g["held"] for g in out["gates"]] == held
    assert [g["actual"] for g in out["gates"]] == actual
    assert [(g["metric"], g["op"], g["value"]) for g in out["gates"]] == [("accuracy", ">=", 0.9), ("loss", ">=", 0.5)]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            {"metadata": META, "spec": {"model": "iris"}, "status": {"version": 2}},
            {"version": "2", "requested_stage": "None", "current_stage": "None", "gates": [], "stage_history": []},
        ),
        (
            {
                "metadata": META,
                "spec": {"model": "iris", "stage": "Production"},
                "status": {
                    "version": 2,
                    "stage": "Staging",
                    "supersededBy": "iris-3",
                    "stageHistory": [{"from": "None", "to": "Staging", "time": "2026-01-02T00:00:00Z"}],
                    "conditions": [{"type": "GatesPassed", "status": "False", "message": "gate loss failed"}],
                },
            },
            {
                "requested_stage": "Production",
                "current_stage": "Staging",
                "superseded_by": "iris-3",
                "gates_message": "gate loss failed",
                "stage_history": [{"from": "None", "to": "Staging", "time": "2026-01-02T00:00:00Z", "reason": ""}],
            },
        ),
    ],
)
def test_version_detail(obj: dict[str, Any], expected: dict[str, Any]) -> None:
    out = version_detail(obj)
    assert {k: out[k] for k in expected} == expected
    assert out["object"] == "iris-2" and out["namespace"] == "ml"


TRIALS = [
    {"name": "e-1", "number": 1, "phase": "Stopped", "parameters": {"lr": 0.1}, "objective": 0.4, "message": "early"},
    {"name": "e-0", "number": 0, "phase": "Succeeded", "runId": "r0", "parameters": {"lr": 0.01}, "objective": 0.9},
]


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        ({}, {}, {"phase": "Pending", "max_trials": 1, "objective": None, "trials": [], "best_trial": None}),
        (
            {"search": {"objective": {"metric": "acc"}, "algorithm": "grid"}},
            {"phase": "Running", "trials": TRIALS, "bestTrial": TRIALS[1], "trialsSummary": "1/10"},
            {
                "max_trials": 10,
                "algorithm": "grid",
                "objective": {"metric": "acc", "goal": "maximize"},
                "best_trial": 0,
                "trials_summary": "1/10",
                "trials": [
                    {
                        "number": 0,
                        "name": "e-0",
                        "phase": "Succeeded",
                        "run_id": "r0",
                        "parameters": {"lr": 0.01},
                        "objective": 0.9,
                        "stopped": False,
                        "message": "",
                    },
                    {
                        "number": 1,
                        "name": "e-1",
                        "phase": "Stopped",
                        "run_id": "",
                        "parameters": {"lr": 0.1},
                        "objective": 0.4,
                        "stopped": True,
                        "message": "early",
                    },
                ],
            },
        ),
    ],
)
def test_experiment_json(spec: dict[str, Any], status: dict[str, Any], expected: dict[str, Any]) -> None:
    out = experiment_json({"metadata": {"name": "e", "namespace": "ml"}, "spec": spec, "status": status})
    assert {k: out[k] for k in expected} == expected


def test_deployment_json_variants_from_spec_and_status() -> None:
    obj = {
        "metadata": {"name": "d", "namespace": "ml"},
        "spec": {
            "model": "iris",
            "variants": [
                {"name": "blue", "stage": "Production", "weight": 90},
                {"name": "green", "version": 3, "weight": 10},
                {"name": "dark", "alias": "challenger", "weight": 0, "shadow": True},
            ],
        },
        "status": {
            "split": "blue=90 green=10",
            "variants": [
                {"name": "green", "version": 3, "replicas": 1, "readyReplicas": 0, "effectiveWeight": 10},
                {"name": "blue", "version": 2, "replicas": 2, "readyReplicas": 2, "effectiveWeight": 90},
                {"name": "gone", "version": 1, "replicas": 1, "readyReplicas": 1, "effectiveWeight": 0},
            ],
            "canary": {"variant": "green", "phase": "Progressing", "step": 0, "steps": 2, "analysis": {"requests": 9}},
        },
    }
    out = deployment_json(obj)
    rows = {v["name"]: v for v in out["variants"]}
    assert [v["name"] for v in out["variants"]] == ["blue", "green", "dark", "gone"]  # spec order, then status only
    assert (rows["blue"]["selector"], rows["green"]["selector"], rows["dark"]["selector"]) == (
        "stage Production",
        "v3",
        "@challenger",
    )
    assert (rows["blue"]["version"], rows["blue"]["effective_weight"], rows["blue"]["ready_replicas"]) == (2, 90, 2)
    assert rows["dark"]["shadow"] and rows["dark"]["version"] is None and rows["dark"]["replicas"] is None
    assert rows["green"]["canary"] == {"requests": 9, "errors": None, "error_rate": None, "p99_ms": None}
    assert rows["blue"]["canary"] is None
    assert out["canary"]["variant"] == "green" and out["split"] == "blue=90 green=10"
    assert "only for a canary" in out["metrics_note"]


def _client(reader: Any) -> TestClient:
    app = FastAPI()
    app.include_router(ui_cluster_router(reader))

    @app.exception_handler(TrackingError)
    async def err(_: Request, exc: TrackingError) -> Response:
        return error_response(exc)

    return TestClient(app)


def test_endpoints_over_a_reader() -> None:
    version = {"metadata": META, "spec": {"model": "iris", "gates": GATES[:1]}, "status": {"version": 2}}
    reader = StaticReader(
        [version],
        experiments=[{"metadata": {"name": n, "namespace": "ml"}} for n in ("b", "a")],
        deployments=[{"metadata": {"name": "d", "namespace": "ml"}, "spec": {"model": "iris"}}],
    )
    c = _client(reader)
    assert c.get(OURS + "/cluster").json() == {"cluster": True, "scoped": True, "message": ""}
    (mv,) = c.get(OURS + "/registry/model-versions", params={"name": "iris"}).json()["model_versions"]
    assert mv["version"] == "2" and mv["gates"][0]["metric"] == "accuracy"
    missing = c.get(OURS + "/registry/model-versions", params={"name": "wine"})
    assert missing.status_code == 404 and "wine" in missing.json()["message"]
    assert c.get(OURS + "/registry/model-versions").status_code == 400
    assert [e["name"] for e in c.get(OURS + "/kube/experiments").json()["experiments"]] == ["a", "b"]
    assert [d["name"] for d in c.get(OURS + "/kube/modeldeployments").json()["model_deployments"]] == ["d"]


def test_without_cluster_access_the_ui_is_told_first() -> None:
    c = _client(None)
    r = c.get(OURS + "/cluster")
    assert r.status_code == 200 and r.json()["cluster"] is False
    assert "--registry-in-cluster" in r.json()["message"]
    for path in ("/registry/model-versions?name=iris", "/kube/experiments", "/kube/modeldeployments"):
        r = c.get(OURS + path)
        assert r.status_code == 501 and r.json()["error_code"] == "NOT_IMPLEMENTED", path


class Refusing(StaticReader):
    def __init__(self, status: int) -> None:
        super().__init__([])
        self.status = status

    def list_experiments(self) -> list[dict[str, Any]]:
        raise KubeError(self.status, 'experiments.modelship.io is forbidden: cannot list resource "experiments"')


def test_a_refused_listing_names_the_fix() -> None:
    r = _client(Refusing(403)).get(OURS + "/kube/experiments")
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    assert "REGISTRY_READER_RULES" in r.json()["message"] and "list Experiments" in r.json()["message"]
    # A cluster without the CRD has no Experiments.
    assert _client(Refusing(404)).get(OURS + "/kube/experiments").json() == {"experiments": []}


def _record(model: str, url: str, *attempts: Any, pending: int = 0) -> str:
    from modelship.resources import webhooks as wh

    return wh.record_after(None, model, url, [wh.Attempt(*a) for a in attempts], pending=pending).dump()


def test_a_models_webhook_deliveries_come_from_its_namespaces_record() -> None:
    from modelship.resources import webhooks as wh

    version = {"metadata": META, "spec": {"model": "iris"}, "status": {"version": 2}}
    data = {
        wh.record_key("iris", "http://a/h"): _record("iris", "http://a/h", (False, 1e9, "HTTP 503"), pending=1),
        wh.record_key("iris", "http://b/h"): _record("iris", "http://b/h", (True, 1e9)),
        wh.record_key("wine", "http://a/h"): _record("wine", "http://a/h", (True, 1e9)),
    }
    c = _client(StaticReader([version], deliveries={"ml": data}))
    hooks = c.get(OURS + "/registry/model-versions", params={"name": "iris"}).json()["webhooks"]
    assert hooks["known"] is True and hooks["message"] == ""
    rows = {r["receiver"]: r for r in hooks["receivers"]}
    assert set(rows) == {"http://a/h", "http://b/h"}, "only this model's records"
    assert (rows["http://a/h"]["last_error"], rows["http://a/h"]["failures"], rows["http://a/h"]["pending"]) == (
        "HTTP 503",
        1,
        1,
    )
    assert rows["http://b/h"]["last_success"] == "2001-09-09T01:46:40Z" and rows["http://b/h"]["namespace"] == "ml"
    # No record in the namespace: known, and none.
    none = _client(StaticReader([version])).get(OURS + "/registry/model-versions", params={"name": "iris"}).json()
    assert none["webhooks"] == {"known": True, "message": "", "receivers": []}


class NoRecordRight(StaticReader):
    def webhook_deliveries(self, namespace: str) -> dict[str, str]:
        raise KubeError(403, 'configmaps "modelship-webhook-deliveries" is forbidden')


def test_a_refused_delivery_record_is_said_with_the_fix_and_the_versions_still_show() -> None:
    version = {"metadata": META, "spec": {"model": "iris"}, "status": {"version": 2}}
    out = _client(NoRecordRight([version])).get(OURS + "/registry/model-versions", params={"name": "iris"}).json()
    assert [v["version"] for v in out["model_versions"]] == ["2"]
    assert out["webhooks"]["known"] is False
    assert "ml/modelship-webhook-deliveries" in out["webhooks"]["message"]
    assert "REGISTRY_READER_RULES" in out["webhooks"]["message"]


def test_the_live_endpoint_finds_the_deployment_and_says_what_it_cannot_read() -> None:
    from modelship.tracking.server.live import LiveFigures

    def md(name: str, namespace: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": namespace}, "spec": {"variants": [{"name": "blue"}]}}

    class NoSlices(StaticReader):
        def endpoint_slices(self, namespace: str, services: list[str]) -> list[dict[str, Any]]:
            raise KubeError(403, "endpointslices.discovery.k8s.io is forbidden")

    reader = StaticReader([], deployments=[md("d", "ml"), md("twice", "a"), md("twice", "b")])
    c = _client_live(reader, LiveFigures(fetch=lambda url, timeout: ""))
    out = c.get(OURS + "/kube/modeldeployments/live", params={"name": "d"}).json()
    assert out["namespace"] == "ml" and out["variants"] == {
        "blue": {"reachable": False, "pods": 0, "message": "no Ready pod"}
    }
    missing = c.get(OURS + "/kube/modeldeployments/live", params={"name": "nope"})
    assert missing.status_code == 404 and "'nope'" in missing.json()["message"]
    ambiguous = c.get(OURS + "/kube/modeldeployments/live", params={"name": "twice"})
    assert ambiguous.status_code == 400 and "namespace=" in ambiguous.json()["message"]
    assert c.get(OURS + "/kube/modeldeployments/live", params={"name": "twice", "namespace": "b"}).status_code == 200
    assert c.get(OURS + "/kube/modeldeployments/live").status_code == 400
    refused = _client_live(NoSlices([], deployments=[md("d", "ml")]), LiveFigures())
    blue = refused.get(OURS + "/kube/modeldeployments/live", params={"name": "d"}).json()["variants"]["blue"]
    assert not blue["reachable"] and "REGISTRY_READER_RULES" in blue["message"]
    off = _client(None).get(OURS + "/kube/modeldeployments/live", params={"name": "d"})
    assert off.status_code == 501


def _client_live(reader: Any, live: Any) -> TestClient:
    app = FastAPI()
    app.include_router(ui_cluster_router(reader, live))

    @app.exception_handler(TrackingError)
    async def err(_: Request, exc: TrackingError) -> Response:
        return error_response(exc)

    return TestClient(app)
