"""The operator SIGKILLed at seeded random points during a 20-trial Experiment on the bed:
the search completes, with exactly one Job per trial, one tracking run per trial and one
ModelVersion, whatever the operator was doing when it died.

The trials run a project of this test's own (in a git repository it creates): one
``score.py`` that logs one metric through the pod's tracking sidecar with the standard
library, so that twenty trials cost little CPU and the test is about the operator. The kill
points are drawn from the search's progress (Jobs created plus trials finished, 0..40), so
they land while trials are planned, created, running, finishing and registered.
"""

from __future__ import annotations

import os
import random
import signal
import time
from typing import Any

import pytest
from tests.cluster.kubeapi import KubeApi, path_for
from tests.conftest import wait
from tests.e2e.objects import job_condition
from tests.e2e.test_experiment import API, IMAGE, exp_path, finished, git_repository, jobs_of, tags, tracking_runs

pytestmark = pytest.mark.reliability

TRIALS = 20
KILLS = 5
SEED = 13

MLPROJECT = """\
name: score
entry_points:
  main:
    parameters:
      x: {type: float, default: 0.5}
    command: "python score.py --x {x}"
"""
SCORE = """\
# One metric, logged through the pod's tracking sidecar with the standard library.
import argparse, json, os, time, urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
x = parser.parse_args().x
body = {"run_id": os.environ["MLFLOW_RUN_ID"], "key": "score", "value": 1.0 - (x - 0.3) ** 2,
        "timestamp": int(time.time() * 1000), "step": 0}
request = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric",
                                 json.dumps(body).encode(), {"Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=60).read()
"""


@pytest.fixture(scope="module")
def score_repo(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("score-repo")
    (root / "MLproject").write_text(MLPROJECT)
    (root / "score.py").write_text(SCORE)
    return git_repository(root, "score")


def experiment(name: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "project": {"git": {"url": url, "ref": "main", "path": "."}, "image": IMAGE, "entryPoint": "main"},
            "search": {
                "algorithm": "random",
                "objective": {"metric": "score", "goal": "maximize"},
                "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
                "maxTrials": TRIALS,
                "parallelism": 4,
                "maxFailedTrials": 1,
            },
            "register": {"modelName": "score", "artifactPath": "model", "threshold": 0.0},
        },
    }


def progress(kube: KubeApi, namespace: str, name: str) -> int:
    """Jobs created plus trials finished: 0 before the first Job, 2 * TRIALS at the end."""
    jobs = jobs_of(kube, namespace, name)
    return len(jobs) + sum(1 for j in jobs if job_condition(j, "Complete") or job_condition(j, "Failed"))


def model_versions(kube: KubeApi, namespace: str, name: str) -> list[dict[str, Any]]:
    return kube.get(path_for(API, "modelversions", namespace), labelSelector=f"modelship.io/experiment={name}")["items"]


@pytest.mark.timeout(2400)
def test_operator_killed_at_random_points_of_a_20_trial_search_duplicates_nothing(
    kube: KubeApi, namespace: str, operator, tracking_server: str, score_repo: str, figures: dict[str, Any]
) -> None:
    rng = random.Random(SEED)
    # One kill point in each of KILLS equal bands of the progress (1 .. 2 * TRIALS - 1), so
    # that the kills spread from the first Jobs to the last trials finishing and registration.
    band = (2 * TRIALS - 1) / KILLS
    points = [rng.randint(1 + round(i * band), round((i + 1) * band)) for i in range(KILLS)]
    started = time.monotonic()
    created = kube.create(exp_path(namespace), experiment("chaos", score_repo))
    uid = created["metadata"]["uid"]
    killed_at: list[int] = []
    try:
        for point in points:
            wait(
                lambda point=point: progress(kube, namespace, "chaos") >= point, 900, f"progress {point}", interval=0.5
            )
            time.sleep(rng.uniform(0.0, 2.0))  # where in the operator's work the kill lands
            killed_at.append(progress(kube, namespace, "chaos"))
            os.killpg(operator.popen.pid, signal.SIGKILL)
            operator.popen.wait(10)
            time.sleep(rng.uniform(0.0, 2.0))
            operator.start()
        done = wait(lambda: finished(kube, namespace, "chaos"), 1200, "the search to finish", interval=1)
    finally:
        if not operator.alive():
            operator.start()
    status = done["status"]
    jobs = jobs_of(kube, namespace, "chaos")
    runs = tracking_runs(tracking_server, namespace, "chaos")
    keys = [tags(r).get("modelship.io/trial-key") for r in runs]
    mvs = model_versions(kube, namespace, "chaos")
    figures.update(
        trials=TRIALS,
        operator_kills=len(killed_at),
        killed_at_progress=",".join(map(str, killed_at)),
        jobs=len(jobs),
        runs=len(runs),
        distinct_trial_keys=len(set(keys)),
        model_versions=len(mvs),
        phase=status.get("phase"),
        seconds=round(time.monotonic() - started),
    )
    assert len(killed_at) == KILLS
    assert status["phase"] == "Succeeded", status
    assert status["trialsSummary"] == f"{TRIALS}/{TRIALS}", status
    assert [t["number"] for t in status["trials"]] == list(range(TRIALS))
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted(f"chaos-trial-{n}" for n in range(TRIALS))
    assert sorted(keys) == sorted(f"{uid}-{n}" for n in range(TRIALS)), keys  # one run per trial
    annotated = {j["metadata"]["annotations"]["modelship.io/run-id"] for j in jobs}
    assert annotated == {r["info"]["run_id"] for r in runs}  # each Job's run is the trial's one run
    assert len(mvs) == 1, [m["metadata"]["name"] for m in mvs]
    assert status["modelVersion"] == mvs[0]["metadata"]["name"]
    assert mvs[0]["spec"]["source"] == f"runs:/{status['bestTrial']['runId']}/model"
