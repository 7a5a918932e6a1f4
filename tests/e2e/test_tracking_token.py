"""Experiments against a token-protected tracking server: the token reaches the trial pods'
sidecars from a Secret in the Experiment's namespace (never in the pod spec), every metric
arrives; with a wrong token the trial says so and the sidecar keeps what it acknowledged.

The session's operator talks to the session's open tracking server; this module stops it
for its tests and runs one of its own against a server started with ``--auth-token``, as a
cluster with ``tracking.authTokenSecret`` set has it, then starts the session's one again.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.kubeapi import KubeApi, path_for
from tests.conftest import wait
from tests.e2e.conftest import operator_process, start_tracking_server
from tests.e2e.test_experiment import exp_path, finished, iris_experiment, iris_repo, jobs_of, tracking_runs

__all__ = ["iris_repo"]  # the module fixture, shared with test_experiment

TOKEN = secrets.token_urlsafe(24)
DEFAULT_SECRET = "tracking-token"
STEPS = 10  # manifests/examples/iris/train.py logs accuracy and log_loss once per step


@pytest.fixture(scope="module")
def protected_server(bed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tracking server that refuses writes without the token (``--auth-token`` by env)."""
    proc, url = start_tracking_server(
        bed,
        tmp_path_factory.mktemp("protected-tracking"),
        name="protected-tracking-server",
        env={**os.environ, "MODELSHIP_TRACKING_AUTH_TOKEN": TOKEN},
    )
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def token_operator(
    bed, operator, operator_kubeconfig: Path, protected_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The operator against the protected server: its own token in MODELSHIP_TRACKING_TOKEN,
    trial pods' default Secret ``tracking-token``. The session's operator pauses meanwhile."""
    from tests.cluster.processes import wait_for
    from tests.local_servers import free_port

    health = free_port()
    proc = operator_process(
        bed,
        "token-operator",
        tmp_path_factory.mktemp("token-operator"),
        health,
        protected_server,
        "--metrics-port",
        "0",
        "--tracking-token-secret",
        DEFAULT_SECRET,
        kubeconfig=operator_kubeconfig,
        env={"MODELSHIP_TRACKING_TOKEN": TOKEN},
    )

    def live(url: str) -> bool:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200

    operator.stop()
    try:
        proc.start()
        wait_for(lambda: live(f"http://127.0.0.1:{health}/healthz"), 60, "token operator liveness", processes=[proc])
        yield proc
    finally:
        proc.stop()
        log = proc.log_path.read_text(errors="replace")
        print(f"--- token operator log\n{log[-6000:]}")
        assert TOKEN not in log, "the operator logged the tracking token"
        operator.start()
        wait_for(lambda: live(operator.health_url), 60, "session operator liveness", processes=[operator])


def _secret(kube: KubeApi, namespace: str, name: str, token: str) -> None:
    kube.create(
        f"/api/v1/namespaces/{namespace}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "data": {"token": base64.b64encode(token.encode()).decode()},
        },
    )


def _history(server: str, run_id: str, key: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"run_id": run_id, "metric_key": key, "max_results": 10000})
    with urllib.request.urlopen(f"{server}/api/2.0/mlflow/metrics/get-history?{query}", timeout=10) as resp:
        return list(json.load(resp).get("metrics") or [])


def _sidecar_reports(kube: KubeApi, namespace: str, job: str) -> list[dict[str, Any]]:
    """The tracking sidecar's termination message (JSON) of each pod of the Job."""
    pods = kube.get(path_for("v1", "pods", namespace), labelSelector=f"job-name={job}")["items"]
    reports = []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("initContainerStatuses") or ():
            terminated = (cs.get("state") or {}).get("terminated") or {}
            if cs["name"] == "tracking" and terminated.get("message"):
                reports.append(json.loads(terminated["message"]))
    return reports


def _sidecar_env(job: dict[str, Any]) -> list[dict[str, Any]]:
    sidecar = next(c for c in job["spec"]["template"]["spec"]["initContainers"] if c["name"] == "tracking")
    return list(sidecar.get("env") or [])


def test_trials_log_to_a_token_protected_server_through_a_secret(
    kube: KubeApi, namespace: str, token_operator, protected_server: str, iris_repo: str
) -> None:
    _secret(kube, namespace, DEFAULT_SECRET, TOKEN)
    exp = iris_experiment("guarded", iris_repo, maxTrials=2, parallelism=2, algorithm="random")
    exp["spec"]["search"].pop("earlyStopping")
    exp["spec"].pop("register")
    kube.create(exp_path(namespace), exp)
    done = wait(lambda: finished(kube, namespace, "guarded"), 900, "the guarded search to finish", interval=1)
    status = done["status"]
    assert status["phase"] == "Succeeded", status
    assert [t["phase"] for t in status["trials"]] == ["Succeeded", "Succeeded"], status["trials"]
    assert all("message" not in t for t in status["trials"]), status["trials"]

    jobs = jobs_of(kube, namespace, "guarded")
    assert len(jobs) == 2
    for job in jobs:
        # The token is the kubelet's to read from the Secret: never a value in the pod spec.
        assert TOKEN not in json.dumps(job)
        assert {
            "name": "MODELSHIP_SIDECAR_SERVER_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": DEFAULT_SECRET, "key": "token"}},
        } in _sidecar_env(job)

    # Every metric of every trial arrived, counted on the server; nothing was dead-lettered.
    runs = {r["info"]["run_id"]: r for r in tracking_runs(protected_server, namespace, "guarded")}
    assert set(runs) == {t["runId"] for t in status["trials"]}
    counts = {}
    for run_id, run in runs.items():
        assert run["info"]["status"] == "FINISHED"
        counts[run_id] = {key: len(_history(protected_server, run_id, key)) for key in ("accuracy", "log_loss")}
    assert all(c == {"accuracy": STEPS, "log_loss": STEPS} for c in counts.values()), counts
    for job in jobs:
        (report,) = _sidecar_reports(kube, namespace, job["metadata"]["name"])
        assert (report["pending"], report["deadLettered"], report["authFailing"]) == (0, 0, False), report
    print(f"token-protected server: {len(runs)} runs, metric points per run {list(counts.values())}")


def test_a_wrong_token_is_reported_on_the_trial_and_the_writes_are_kept(
    kube: KubeApi, namespace: str, token_operator, protected_server: str, iris_repo: str
) -> None:
    # The operator's default Secret holds the right token; the Experiment names another.
    _secret(kube, namespace, DEFAULT_SECRET, TOKEN)
    _secret(kube, namespace, "stale-token", "not-" + TOKEN)
    exp = iris_experiment("stale", iris_repo)
    del exp["spec"]["search"], exp["spec"]["register"]
    exp["spec"]["parameters"].update({"C": 1.0, "solver": "lbfgs"})
    exp["spec"]["tracking"] = {"tokenSecretRef": {"name": "stale-token", "key": "token"}}
    kube.create(exp_path(namespace), exp)
    done = wait(lambda: finished(kube, namespace, "stale"), 600, "the stale-token Experiment to end", interval=1)
    status = done["status"]
    assert status["phase"] == "Failed", status
    (trial,) = status["trials"]
    assert trial["phase"] == "Failed"
    message = trial["message"]
    assert "tracking sidecar" in message and "refuses the sidecar's token (HTTP 401)" in message, message
    assert "Secret stale-token, key token" in message, message

    (job,) = jobs_of(kube, namespace, "stale")
    assert {
        "name": "MODELSHIP_SIDECAR_SERVER_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "stale-token", "key": "token"}},
    } in _sidecar_env(job)
    # Nothing the trainer logged reached the server, and the sidecar dropped none of it:
    # every acknowledged write is still in its buffer, none in the dead letter.
    assert _history(protected_server, trial["runId"], "accuracy") == []
    (report,) = _sidecar_reports(kube, namespace, job["metadata"]["name"])
    assert report["authFailing"] is True and report["deadLettered"] == 0, report
    assert report["pending"] > 0, report
    print(f"wrong token: {report['pending']} writes kept by the sidecar, {report['deadLettered']} dead-lettered")


def test_a_missing_token_secret_is_said_on_the_running_trial_until_it_exists(
    kube: KubeApi, namespace: str, token_operator, protected_server: str, iris_repo: str
) -> None:
    # The kubelet cannot create the sidecar without its Secret and retries for ever; the Job
    # stays active, so the trial would read Running with nothing said unless the pod is read.
    exp = iris_experiment("unsealed", iris_repo)
    del exp["spec"]["search"], exp["spec"]["register"]
    exp["spec"]["parameters"].update({"C": 1.0, "solver": "lbfgs"})
    exp["spec"]["tracking"] = {"tokenSecretRef": {"name": "absent-token", "key": "token"}}
    kube.create(exp_path(namespace), exp)

    def degraded() -> dict[str, Any] | None:
        status = kube.get(exp_path(namespace, "unsealed")).get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or ()}
        cond = conditions.get("Degraded")
        return status if cond and cond["status"] == "True" and cond["reason"] == "TrialCannotStart" else None

    status = wait(degraded, 300, "the Experiment to say its trial cannot start", interval=1)
    (trial,) = status["trials"]
    assert trial["phase"] == "Running", trial
    assert "cannot start: CreateContainerConfigError" in trial["message"], trial
    assert "absent-token" in trial["message"], trial
    assert status["phase"] == "Running", status

    # The Secret appears: the pod starts, the trial runs to the end, Degraded is cleared.
    _secret(kube, namespace, "absent-token", TOKEN)
    done = wait(lambda: finished(kube, namespace, "unsealed"), 600, "the unsealed Experiment to end", interval=1)
    status = done["status"]
    assert status["phase"] == "Succeeded", status
    assert "message" not in status["trials"][0], status["trials"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (conditions["Degraded"]["status"], conditions["Degraded"]["reason"]) == ("False", "TrialsStarted")
    assert len(_history(protected_server, status["trials"][0]["runId"], "accuracy")) == STEPS
