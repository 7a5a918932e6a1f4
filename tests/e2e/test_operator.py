"""The operator reconciles every kind on the real API server and says so in status."""

from __future__ import annotations

import urllib.request
from typing import Any

from tests.cluster.kubeapi import KubeApi, path_for
from tests.conftest import wait
from tests.e2e.test_crds import API, DEPLOYMENT, EXPERIMENT, MODEL_VERSION

PLURALS = {"Experiment": "experiments", "ModelVersion": "modelversions", "ModelDeployment": "modeldeployments"}


def _ready(obj: dict[str, Any]) -> dict[str, Any] | None:
    for c in obj.get("status", {}).get("conditions") or []:
        if c["type"] == "Ready":
            return c
    return None


def test_operator_sets_observed_generation_and_ready_on_each_kind(kube: KubeApi, namespace: str, operator) -> None:
    for template in (EXPERIMENT, MODEL_VERSION, DEPLOYMENT):
        plural = PLURALS[template["kind"]]
        created = kube.create(path_for(API, plural, namespace), template)
        name = created["metadata"]["name"]
        path = path_for(API, plural, namespace, name)
        first = wait(
            lambda path=path: (o := kube.get(path)).get("status", {}).get("observedGeneration") == 1 and o,
            60,
            f"{template['kind']} observedGeneration 1",
        )
        assert _ready(first) is not None, first["status"]
        assert _ready(first)["observedGeneration"] == 1
        # A spec change bumps the generation; the operator catches up.
        kube.patch(path, {"metadata": {"labels": {"touched": "yes"}}, "spec": _spec_change(template["kind"])})
        assert kube.get(path)["metadata"]["generation"] == 2
        wait(
            lambda path=path: kube.get(path).get("status", {}).get("observedGeneration") == 2,
            60,
            f"{template['kind']} observedGeneration 2",
        )


def _spec_change(kind: str) -> dict[str, Any]:
    return {
        "Experiment": {"backoffLimit": 1},
        "ModelVersion": {"description": "second look"},
        "ModelDeployment": {"monitoring": {"driftThreshold": 0.2}},
    }[kind]


def test_operator_exports_metrics_and_liveness(kube: KubeApi, namespace: str, operator) -> None:
    kube.create(path_for(API, "modelversions", namespace), MODEL_VERSION)
    path = path_for(API, "modelversions", namespace, MODEL_VERSION["metadata"]["name"])
    wait(lambda: kube.get(path).get("status", {}).get("observedGeneration") == 1, 60, "reconciled")

    def reconciles() -> str | None:
        text = urllib.request.urlopen(operator.metrics_url, timeout=5).read().decode()
        lines = [
            l for l in text.splitlines() if l.startswith("modelship_reconcile_total") and 'kind="ModelVersion"' in l
        ]
        return text if lines and any(float(l.rsplit(" ", 1)[1]) >= 1 for l in lines) else None

    text = wait(reconciles, 30, "reconcile counter")
    assert "modelship_reconcile_duration_seconds_bucket" in text
    with urllib.request.urlopen(operator.health_url, timeout=5) as resp:
        assert resp.status == 200
