"""The A/B readout on the bed: two versions 50/50 behind one Service, predictions with
request ids, the true labels fed back through the same Service (the pod that gets them asks
its peer about the ids it does not know); the better model's
variant gets the verdict ``better`` in ``status.experiment``, ``modelship ab-report``
prints it, and a restarted pod's outcomes stay counted."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.cluster.kubeapi import KubeApi, path_for
from tests.conftest import wait
from tests.e2e.test_modeldeployment import (
    API,
    events,
    md_status,
    model_deployment,
    ready_pods,
    register,
    wait_healthy,
)
from tests.e2e.test_registry import upload

from modelship.tracking.client import TrackingClient

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def log_model(tracking_url: str, work: Path, shuffled: bool) -> str:
    """A run with an iris classifier; ``shuffled``: trained on permuted labels (a bad model)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from modelship.models.save import save_model

    X, y = load_iris(return_X_y=True, as_frame=True)
    if shuffled:
        y = y.sample(frac=1.0, random_state=3).reset_index(drop=True)
    local = work / ("bad" if shuffled else "good")
    save_model(local, LogisticRegression(max_iter=300).fit(X, y), input_example=X.head(2))
    with TrackingClient(tracking_url) as client:
        run_id = client.create_run(client.get_or_create_experiment("abtest-e2e"))
        root = client.get_run(run_id)["info"]["artifact_uri"]
        for f in local.rglob("*"):
            if f.is_file():
                upload(tracking_url, f"{root}/model/{f.relative_to(local)}", f.read_bytes())
        client.set_terminated(run_id)
    return run_id


def predict_all(host: str, rows: np.ndarray, prefix: str = "e2e") -> list[tuple[str, str]]:
    """Each row as one prediction through the Service, a connection each (so kube-proxy
    spreads them); (the variant that answered, the request id) per row. Every other client
    names its request ``<prefix>-<i>`` (ids are unique per prediction: an id known to two
    pods is judged by whichever gets the outcome first)."""
    out = []
    for i, row in enumerate(rows):
        conn = http.client.HTTPConnection(host, 80, timeout=15)
        try:
            body = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [row.tolist()]}})
            headers = {"Content-Type": "application/json"}
            if i % 2:
                headers["X-Request-Id"] = f"{prefix}-{i}"  # half the clients name their requests
            conn.request("POST", "/invocations", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
            rid = resp.getheader("x-request-id")
            assert rid and (i % 2 == 0 or rid == f"{prefix}-{i}"), rid
            out.append((str(resp.getheader("x-modelship-variant")), rid))
        finally:
            conn.close()
    return out


def both_answering(host: str, rows: np.ndarray) -> None:
    """Until predictions through the Service reach both variants: kube-proxy routes a Service
    and each Ready pod a moment after they are there (until then a connection can find no
    route, ENETUNREACH, or be refused), and on a quiet machine 140 predictions took less than
    that (all went to blue, green had no sample). The probes get no outcome, so the tally does
    not count them."""
    wait(
        lambda: {v for v, _ in predict_all(host, rows, prefix=f"probe{time.monotonic_ns()}")} == {"blue", "green"},
        60,
        "predictions through the Service reaching both variants",
        retry=(OSError, AssertionError),
    )


def feed_back(
    host: str, answered: list[tuple[str, str]], labels: np.ndarray, batch: int = 35
) -> list[list[dict[str, Any]]]:
    """The true labels through the ModelDeployment's Service, a connection per batch (kube-proxy
    picks a pod per connection: most batches hold ids of both variants, so the pod that gets
    one asks its peer about the other's). Refused outcomes go again in bounded rounds (a pod
    new to the peers Service is found a moment after it is Ready). The replies, by round."""
    outcomes = [{"requestId": rid, "label": int(y)} for (_, rid), y in zip(answered, labels)]
    rounds: list[list[dict[str, Any]]] = []
    deadline = time.monotonic() + 90
    while outcomes:
        if rounds:
            time.sleep(1)
        replies, refused = [], []
        for i in range(0, len(outcomes), batch):
            part = outcomes[i : i + batch]
            r = httpx.post(f"http://{host}/feedback", json={"outcomes": part}, timeout=30)
            r.raise_for_status()
            body = r.json()
            assert {e["reason"] for e in body["errors"]} <= {"unknown", "unreachable"}, body
            replies.append(body)
            refused += [part[e["index"]] for e in body["errors"]]
        rounds.append(replies)
        if refused and time.monotonic() > deadline:
            raise AssertionError(f"{len(refused)} outcomes refused through the Service for 90 s: {rounds[-1][:2]}")
        outcomes = refused
    return rounds


def accepted(rounds: list[list[dict[str, Any]]]) -> int:
    return sum(r["accepted"] for replies in rounds for r in replies)


def experiment(kube: KubeApi, namespace: str) -> dict[str, Any]:
    return md_status(kube, namespace, "iris").get("experiment") or {}


def arm(exp: dict[str, Any], name: str) -> dict[str, Any]:
    return next((a for a in exp.get("variants") or [] if a["name"] == name), {})


def ab_report(bed: Any, namespace: str) -> subprocess.CompletedProcess[str]:
    cli = str(Path(sys.executable).with_name("modelship"))
    return subprocess.run(
        [cli, "ab-report", "iris", "-n", namespace],
        env={**os.environ, "KUBECONFIG": str(bed.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_better_version_wins_and_the_readout_survives_a_pod_restart(
    kube: KubeApi, namespace: str, operator, bed, tracking_server: str, tmp_path: Path
) -> None:
    from sklearn.datasets import load_iris

    model = f"iris-{namespace}"
    register(kube, namespace, "v1", model, log_model(tracking_server, tmp_path, shuffled=True))
    register(kube, namespace, "v2", model, log_model(tracking_server, tmp_path, shuffled=False))
    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment(
            "iris",
            model,
            [{"name": "blue", "version": 1, "weight": 50}, {"name": "green", "version": 2, "weight": 50}],
            experiment={"minSamples": 30},
        ),
    )
    wait_healthy(kube, namespace, "iris", blue=1, green=2)
    exp = wait(lambda: experiment(kube, namespace) or None, 60, "a first readout")
    assert exp["control"] == "blue" and exp.get("verdict") is None and "collecting outcomes" in exp["message"], exp
    assert ab_report(bed, namespace).returncode == 3  # still collecting

    X, y = load_iris(return_X_y=True)
    order = np.random.default_rng(5).permutation(len(X))[:140]
    host = kube.get(path_for("v1", "services", namespace, "iris"))["spec"]["clusterIP"]
    both_answering(host, X[:8])
    answered = predict_all(host, X[order])
    per_variant = {v: sum(1 for a, _ in answered if a == v) for v in ("blue", "green")}
    assert min(per_variant.values()) >= 30, per_variant  # 140 at 50 %: fewer than 30 is p < 1e-20
    rounds = feed_back(host, answered, y[order])
    print("feedback rounds:", [[(r["accepted"], r.get("peers")) for r in replies] for replies in rounds])
    assert accepted(rounds) == 140
    # the peers Service is as old as the pods: the first round is taken whole, each batch
    # (ids of both variants) with the help of the other pod
    assert len(rounds) == 1 and all(r.get("peers") == {"asked": 1, "failed": []} for r in rounds[0]), rounds
    nobody = httpx.post(
        f"http://{host}/feedback", json={"outcomes": [{"requestId": "nobody-e2e", "label": 0}]}, timeout=30
    ).json()
    assert [e["reason"] for e in nobody["errors"]] == ["unknown"], nobody
    assert "every pod of the deployment" in nobody["errors"][0]["message"], nobody

    def decided() -> dict[str, Any] | None:
        exp = experiment(kube, namespace)
        return exp if exp.get("verdict") else None

    exp = wait(decided, 90, "a verdict in status.experiment")
    print(json.dumps({k: v for k, v in exp.items() if k != "tally"}, indent=1))
    assert exp["metric"] == "binary" and exp["verdict"] == "better" and exp["winner"] == "green", exp
    green, blue = arm(exp, "green"), arm(exp, "blue")
    assert (green["samples"], blue["samples"]) == (per_variant["green"], per_variant["blue"])
    # The bad model is right on 62 % of iris; kube-proxy picks which rows blue gets (30 or more),
    # so its rate is 0.62 give or take 0.06-0.09: a bound of 0.7 failed on a fair draw (0.701).
    assert green["mean"] > 0.9 and blue["mean"] < 0.85 and green["pValue"] < 0.001 and green["version"] == 2
    # a perfect rate (every label matched) has its Wilson upper bound at 1 itself
    assert green["ciLow"] < green["mean"] <= green["ciHigh"] <= 1 and green["differenceLow"] > 0
    wait(lambda: "ABVerdict" in {e["reason"] for e in events(kube, namespace, "iris")}, 60, "an ABVerdict Event")

    report = ab_report(bed, namespace)
    print(report.stdout)
    assert report.returncode == 0, report.stderr + report.stdout
    assert "verdict: better" in report.stdout and "green is better than blue" in report.stdout
    assert "green" in report.stdout and "blue (control)" in report.stdout
    assert f"next: `modelship promote {model} 2 --to Production -n {namespace}`" in report.stdout, report.stdout

    # green's pod goes: its replacement starts with no counts, the old process's stay counted
    (old,) = ready_pods(kube, namespace, "modelship.io/variant=green")
    kube.delete(path_for("v1", "pods", namespace, old["metadata"]["name"]))
    wait(
        lambda: [
            p
            for p in ready_pods(kube, namespace, "modelship.io/variant=green")
            if p["metadata"]["uid"] != old["metadata"]["uid"]
        ],
        180,
        "a new Ready green pod",
    )
    # Ready is not yet routed: the EndpointSlice and kube-proxy's rules follow the pod a moment
    # later (under load, seconds), so rows go out in rounds until the new pod answers some.
    more: list[tuple[str, str]] = []
    sent_labels: list[int] = []
    deadline = time.monotonic() + 90
    while not any(v == "green" for v, _ in more) and time.monotonic() < deadline:
        more += predict_all(host, X[order[:20]], prefix=f"again{len(more)}")
        sent_labels += [int(v) for v in y[order[:20]]]
    mine = [(v, rid) for v, rid in more if v == "green"]
    answered_by = sorted({v for v, _ in more})
    assert mine, f"no row reached the new green pod in 90 s: {len(more)} answered by {answered_by}"
    labels = np.array(sent_labels)[[v == "green" for v, _ in more]]
    assert accepted(feed_back(host, mine, labels)) == len(mine)
    want = per_variant["green"] + len(mine)
    wait(lambda: arm(experiment(kube, namespace), "green").get("samples") == want, 90, f"green at {want} outcomes")
    assert experiment(kube, namespace)["verdict"] == "better"


def test_promote_on_win_gives_the_winner_the_traffic_and_leaves_spec_and_registry_alone(
    kube: KubeApi, namespace: str, operator, bed, tracking_server: str, tmp_path: Path
) -> None:
    from sklearn.datasets import load_iris

    model = f"iris-{namespace}"
    register(kube, namespace, "v1", model, log_model(tracking_server, tmp_path, shuffled=True), stage="Production")
    register(kube, namespace, "v2", model, log_model(tracking_server, tmp_path, shuffled=False))
    variants = [{"name": "blue", "stage": "Production", "weight": 50}, {"name": "green", "version": 2, "weight": 50}]
    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment("iris", model, variants, experiment={"minSamples": 30, "promoteOnWin": True}),
    )
    wait_healthy(kube, namespace, "iris", blue=1, green=2)
    X, y = load_iris(return_X_y=True)
    order = np.random.default_rng(6).permutation(len(X))[:140]
    host = kube.get(path_for("v1", "services", namespace, "iris"))["spec"]["clusterIP"]
    both_answering(host, X[:8])
    answered = predict_all(host, X[order])
    assert accepted(feed_back(host, answered, y[order])) == 140

    promoted = wait(lambda: experiment(kube, namespace).get("promoted"), 120, "status.experiment.promoted (green wins)")
    assert (promoted["variant"], promoted["version"]) == ("green", 2), promoted
    command = f"modelship promote {model} 2 --to Production -n {namespace}"
    assert command in promoted["message"], promoted

    def all_to_green() -> dict[str, Any] | None:
        st = md_status(kube, namespace, "iris")
        split = {v["name"]: (v.get("effectiveWeight"), v.get("readyReplicas")) for v in st.get("variants") or []}
        return st if st.get("phase") == "Healthy" and split == {"blue": (0, 0), "green": (100, 2)} else None

    st = wait(all_to_green, 180, "green with every pod and 100 % of the split, blue with none")
    assert st["split"] == "blue=0 green=100", st["split"]
    wait(lambda: "ABPromoted" in {e["reason"] for e in events(kube, namespace, "iris")}, 60, "an ABPromoted Event")
    # git's spec and the registry are as they were: the promotion is the operator's status only
    spec = kube.get(path_for(API, "modeldeployments", namespace, "iris"))["spec"]
    assert [v["weight"] for v in spec["variants"]] == [50, 50]
    assert kube.get(path_for(API, "modelversions", namespace, "v2"))["spec"].get("stage") in (None, "None")
    assert kube.get(path_for(API, "modelversions", namespace, "v1"))["spec"]["stage"] == "Production"
    report = ab_report(bed, namespace)
    assert report.returncode == 0 and "promoted: green v2 won against blue" in report.stdout, report.stdout
    assert command in " ".join(report.stdout.split()), report.stdout

    # every prediction now reaches green (blue's pod is gone from the Service a moment after it stops)
    def only_green() -> bool:
        return {v for v, _ in predict_all(host, X[order[:10]], prefix=f"after{time.monotonic_ns()}")} == {"green"}

    wait(only_green, 90, "ten predictions in a row answered by green", retry=(OSError, AssertionError))


@pytest.fixture(autouse=True)
def _dump_operator_on_failure(request: pytest.FixtureRequest, operator) -> Any:
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(Path(operator.log_path).read_text()[-6000:])
