"""Trial Jobs that clean up after themselves (spec.trialJobTTLSeconds) on the bed.

The bed's kube-controller-manager runs its default controllers, the ttl-after-finished
controller among them: it deletes a finished trial Job (and its pods) a few seconds after it
finished, and the search must go on from status.trials. The operator is SIGKILLed while a
trial runs and kept away until that trial's Job is gone too, so the restarted operator meets
a trial its record shows running and whose Job no longer exists; it must end it as its run
ended, never run it again. The API server's audit log counts the Jobs the operator created.

A stopped trial's Job (maxFailedTrials, early stopping) is ended by an active deadline, so it
finishes and its TTL deletes it too (a suspended Job would stay for ever).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.kubeapi import KubeApi, path_for
from tests.conftest import OPERATOR_USER, wait
from tests.e2e.test_experiment import (
    EXAMPLE,
    IMAGE,
    exp_path,
    finished,
    git_repository,
    iris_experiment,
    jobs_of,
    tags,
    tracking_runs,
)

API = "modelship.io/v1alpha1"
TTL = 3
TRIALS = 4


MLPROJECT = """\
name: stop
entry_points:
  main:
    parameters:
      mode: {type: string, default: slow}
    command: "python trial.py {mode}"
"""
TRIAL = """\
# "fail" fails at once; "slow" runs until it is stopped.
import sys, time

sys.exit(1) if sys.argv[1] == "fail" else time.sleep(600)
"""


@pytest.fixture(scope="module")
def stop_repo(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("stop-repo")
    (root / "MLproject").write_text(MLPROJECT)
    (root / "trial.py").write_text(TRIAL)
    return git_repository(root, "stop")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("iris-ttl-repo")
    shutil.copytree(EXAMPLE, root / "examples" / "iris")
    return git_repository(root, "iris")


def status_of(kube: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    return kube.get(exp_path(namespace, name)).get("status") or {}


def trial_phase(kube: KubeApi, namespace: str, name: str, number: int) -> str | None:
    entry = next((t for t in status_of(kube, namespace, name).get("trials") or () if t["number"] == number), None)
    return entry["phase"] if entry else None


def job_names(kube: KubeApi, namespace: str, name: str) -> set[str]:
    return {j["metadata"]["name"] for j in jobs_of(kube, namespace, name)}


def created_jobs(audit_log: Path, namespace: str) -> list[str]:
    """Every Job the operator created in ``namespace`` (201 responses in the audit log)."""
    out = []
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        if (
            event.get("stage") == "ResponseComplete"
            and event.get("verb") == "create"
            and event.get("user", {}).get("username") == OPERATOR_USER
            and ref.get("resource") == "jobs"
            and ref.get("namespace") == namespace
            and (event.get("responseStatus") or {}).get("code") == 201
        ):
            out.append(str(ref.get("name") or event.get("auditID")))
    return out


def test_finished_trial_jobs_are_deleted_and_the_search_still_counts_them(
    kube: KubeApi, namespace: str, operator, tracking_server: str, repo: str, bed
) -> None:
    name = "ttl"
    exp = iris_experiment(name, repo, maxTrials=TRIALS, parallelism=1)
    exp["spec"]["search"].pop("earlyStopping")
    exp["spec"]["trialJobTTLSeconds"] = TTL
    exp["spec"]["register"]["threshold"] = 0.8  # every point of the space reaches 0.82
    kube.create(exp_path(namespace), exp)

    first = wait(lambda: next(iter(jobs_of(kube, namespace, name)), None), 120, "the first trial Job", interval=0.5)
    assert first["spec"]["ttlSecondsAfterFinished"] == TTL

    # Trial 0 ends; the TTL controller deletes its Job; the record keeps it, and trial 1 starts.
    wait(
        lambda: (
            trial_phase(kube, namespace, name, 0) == "Succeeded"
            and f"{name}-trial-0" not in job_names(kube, namespace, name)
        ),
        600,
        "trial 0 recorded Succeeded and its Job deleted by its TTL",
        interval=0.5,
    )
    wait(lambda: f"{name}-trial-1" in job_names(kube, namespace, name), 120, "trial 1's Job", interval=0.5)

    # The operator dies while trial 1 runs and stays away until trial 1's Job is gone as well.
    os.killpg(operator.popen.pid, signal.SIGKILL)
    operator.popen.wait(10)
    try:
        record_when_killed = trial_phase(kube, namespace, name, 1)
        wait(
            lambda: f"{name}-trial-1" not in job_names(kube, namespace, name),
            600,
            "trial 1 to end and its Job to be deleted while the operator is down",
            interval=0.5,
        )
    finally:
        operator.start()
    done = wait(lambda: finished(kube, namespace, name), 900, "the search to finish", interval=1)

    status = done["status"]
    assert status["phase"] == "Succeeded", status
    assert status["trialsSummary"] == f"{TRIALS}/{TRIALS}"
    assert status["succeededTrials"] == TRIALS
    trials = status["trials"]
    assert [t["number"] for t in trials] == list(range(TRIALS)), trials
    assert all(t["phase"] == "Succeeded" and t["objective"] is not None for t in trials), trials

    # One run per trial, each ended by its trainer; nothing ran twice.
    runs = {r["info"]["run_id"]: r for r in tracking_runs(tracking_server, namespace, name)}
    uid = done["metadata"]["uid"]
    assert sorted(tags(r)["modelship.io/trial-key"] for r in runs.values()) == [f"{uid}-{n}" for n in range(TRIALS)]
    assert {t["runId"] for t in trials} == set(runs)
    assert all(r["info"]["status"] == "FINISHED" for r in runs.values())
    for t in trials:
        metrics = {m["key"]: m["value"] for m in runs[t["runId"]]["data"]["metrics"]}
        assert metrics["accuracy"] == t["objective"], (t, metrics)
    created = created_jobs(bed.control_plane.audit_log, namespace)
    assert len(created) == TRIALS, created

    # The best trial and the registration come from the record, the Jobs being gone.
    best = status["bestTrial"]
    assert best["objective"] == max(t["objective"] for t in trials)
    assert best["number"] == min(t["number"] for t in trials if t["objective"] == best["objective"])
    mv = kube.get(path_for(API, "modelversions", namespace, status["modelVersion"]))
    assert mv["spec"]["source"] == f"runs:/{best['runId']}/model"

    # Every Job goes, the last one too.
    wait(lambda: not jobs_of(kube, namespace, name), 120, "every trial Job deleted by its TTL", interval=0.5)
    print(
        f"ttl search: {TRIALS} trials, {len(created)} Jobs created, {len(runs)} runs; trial 1's record was "
        f"{record_when_killed!r} when the operator was killed and its Job was gone when it came back"
    )


def test_a_stopped_trials_job_finishes_and_is_deleted_too(
    kube: KubeApi, namespace: str, operator, tracking_server: str, stop_repo: str, bed
) -> None:
    name = "stop"
    exp = {
        "apiVersion": API,
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "project": {"git": {"url": stop_repo, "ref": "main", "path": "."}, "image": IMAGE},
            "search": {
                "algorithm": "grid",
                "objective": {"metric": "score"},
                "space": {"mode": {"type": "categorical", "values": ["fail", "slow"]}},
                "maxTrials": 2,
                "parallelism": 2,
                "maxFailedTrials": 1,
            },
            "trialJobTTLSeconds": TTL,
        },
    }
    kube.create(exp_path(namespace), exp)
    done = wait(lambda: finished(kube, namespace, name), 600, "the search to fail", interval=1)
    status = done["status"]
    complete = next(c for c in status["conditions"] if c["type"] == "Complete")
    assert (status["phase"], complete["reason"]) == ("Failed", "MaxFailedTrialsReached"), status
    phases = {t["parameters"]["mode"]: (t["phase"], t.get("message", "")) for t in status["trials"]}
    assert phases["fail"][0] == "Failed" and "exited with code 1" in phases["fail"][1], phases
    assert phases["slow"] == ("Stopped", "stopped: maxFailedTrials reached"), phases
    # The stopped Job finished (its active deadline), so its TTL deletes it like the failed one's.
    wait(lambda: not jobs_of(kube, namespace, name), 300, "both trial Jobs deleted by their TTL", interval=0.5)
    runs = {tags(r)["modelship.io/trial"]: r["info"]["status"] for r in tracking_runs(tracking_server, namespace, name)}
    by_number = {str(t["number"]): t["parameters"]["mode"] for t in status["trials"]}
    assert {by_number[n]: s for n, s in runs.items()} == {"fail": "FAILED", "slow": "KILLED"}, runs
    assert len(created_jobs(bed.control_plane.audit_log, namespace)) == 2
    after = status_of(kube, namespace, name)
    assert [t["phase"] for t in after["trials"]] == [t["phase"] for t in status["trials"]]
