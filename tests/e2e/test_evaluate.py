"""spec.evaluate on the bed: trials evaluate their model after training, and a ModelVersion
gate on a fairness metric keeps the unfair model out of Production while the fair one goes in.

The fairness example (manifests/examples/fairness) is copied into a git repository of the
test's own, as the iris example in test_experiment.py. Two Experiments train it, one with a
biased history (bias 0.8: most positive women labelled negative), one without (bias 0);
each trial pod runs ``modelship evaluate`` on its model after training, into its run.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from tests.cluster.kubeapi import KubeApi, path_for
from tests.conftest import wait
from tests.e2e.test_experiment import IMAGE, exp_path, finished, git_repository, jobs_of
from tests.e2e.test_registry import condition, mv, status, wait_stage

API = "modelship.io/v1alpha1"
EXAMPLE = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "fairness"
GATES = [
    {"metric": "eval.accuracy", "op": ">=", "value": 0.7},
    {"metric": "eval.fairness.sex.demographic_parity_difference", "op": "<=", "value": 0.1},
]


def credit_experiment(name: str, url: str, bias: float) -> dict[str, Any]:
    exp = yaml.safe_load((EXAMPLE / "experiment.yaml").read_text())
    exp["metadata"] = {"name": name}
    exp["spec"]["project"]["git"].update({"url": url, "ref": "main", "path": "examples/fairness"})
    exp["spec"]["project"]["image"] = IMAGE
    exp["spec"]["parameters"] = {"bias": bias, "rows": 1200}
    return exp


def run_of(tracking_url: str, run_id: str) -> dict[str, Any]:
    query = urllib.parse.urlencode({"run_id": run_id})
    with urllib.request.urlopen(f"{tracking_url}/api/2.0/mlflow/runs/get?{query}", timeout=10) as r:
        return json.load(r)["run"]  # type: ignore[no-any-return]


def artifacts_of(tracking_url: str, root: str, path: str) -> set[str]:
    rel = root.split(":", 1)[1].lstrip("/") + "/" + path
    query = urllib.parse.urlencode({"path": rel})
    with urllib.request.urlopen(f"{tracking_url}/api/2.0/mlflow-artifacts/artifacts?{query}", timeout=10) as r:
        return {f["path"].rsplit("/", 1)[-1] for f in json.load(r).get("files", [])}


def test_a_fairness_gate_refuses_the_unfair_model_and_passes_the_fair_one(
    kube: KubeApi, namespace: str, operator, tracking_server: str, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root / "examples" / "fairness")
    url = git_repository(root, "fairness")
    for name, bias in (("unfair", 0.8), ("fair", 0.0)):
        kube.create(exp_path(namespace), credit_experiment(name, url, bias))
    runs: dict[str, str] = {}
    for name in ("unfair", "fair"):
        exp = wait(lambda n=name: finished(kube, namespace, n), 600, f"Experiment {name} to finish", interval=1)
        st = exp["status"]
        assert st["phase"] == "Succeeded", st
        runs[name] = st["bestTrial"]["runId"]
        (job,) = jobs_of(kube, namespace, name)
        pod = job["spec"]["template"]["spec"]
        assert [c["name"] for c in pod["initContainers"]] == ["checkout", "tracking", "trainer"]
        assert [c["name"] for c in pod["containers"]] == ["evaluate"]

    # The evaluation logged into the trial's run, through the sidecar.
    values: dict[str, float] = {}
    for name, run_id in runs.items():
        run = run_of(tracking_server, run_id)
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        assert {"accuracy", "eval.accuracy", "eval.roc_auc", "eval.importance.income"} <= set(metrics), metrics
        values[name] = metrics["eval.fairness.sex.demographic_parity_difference"]
        files = artifacts_of(tracking_server, run["info"]["artifact_uri"], "eval")
        assert files == {"report.json", "confusion_matrix.png", "calibration.png", "importance.png"}
    print(f"demographic parity difference: unfair {values['unfair']:.3f}, fair {values['fair']:.3f}")
    assert values["unfair"] > 0.1 >= values["fair"]

    # Both ask for Production behind the same gates: the fair one gets it, the unfair one never does.
    path = path_for(API, "modelversions", namespace)
    kube.create(path, mv("credit-unfair", "credit", f"runs:/{runs['unfair']}/model", stage="Production", gates=GATES))
    st = wait(
        lambda: (
            (s := status(kube, namespace, "credit-unfair"))
            and condition(s, "GatesPassed").get("status") == "False"
            and s
        ),
        120,
        "credit-unfair GatesPassed=False",
    )
    gate = condition(st, "GatesPassed")
    assert gate["reason"] == "GateFailed"
    assert (
        "gate eval.fairness.sex.demographic_parity_difference <= 0.1 failed: "
        f"eval.fairness.sex.demographic_parity_difference is {values['unfair']:g}"
    ) in gate["message"], gate
    assert st["stage"] == "None"
    kube.create(path, mv("credit-fair", "credit", f"runs:/{runs['fair']}/model", stage="Production", gates=GATES))
    fair = wait_stage(kube, namespace, "credit-fair", "Production", timeout=120)
    assert condition(fair, "GatesPassed")["status"] == "True"
    assert fair["metrics"]["eval.fairness.sex.demographic_parity_difference"] == values["fair"]
    assert status(kube, namespace, "credit-unfair")["stage"] == "None"
