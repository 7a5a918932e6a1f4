"""ModelDeployment on the bed: real model servers behind kube-proxy and Traefik's Gateway,
splits that hold, a promotion that rolls with no failed request, bad input as conditions."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.kubeapi import ApiError, KubeApi, path_for
from tests.conftest import wait
from tests.e2e.test_network import binomial_bounds
from tests.e2e.test_registry import mv, upload

from modelship.api import ModelDeploymentSpec
from modelship.resources import serving
from modelship.resources.experiment import Owner
from modelship.tracking.client import TrackingClient

API = "modelship.io/v1alpha1"
ROWS = {
    "dataframe_split": {
        "columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
        "data": [[5.1, 3.5, 1.4, 0.2]],
    }
}


def log_iris_model(tracking_url: str, work: Path, experiment: str = "modeldeployment-e2e") -> str:
    """A run with an sklearn model of iris (saved by Modelship, skops) at ``model``."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from modelship.models.save import save_model

    X, y = load_iris(return_X_y=True, as_frame=True)
    local = work / "model"
    save_model(local, LogisticRegression(max_iter=300).fit(X, y), input_example=X.head(2))
    with TrackingClient(tracking_url) as client:
        run_id = client.create_run(client.get_or_create_experiment(experiment))
        root = client.get_run(run_id)["info"]["artifact_uri"]
        for f in local.rglob("*"):
            if f.is_file():
                upload(tracking_url, f"{root}/model/{f.relative_to(local)}", f.read_bytes())
        client.set_terminated(run_id)
    return run_id


@pytest.fixture(scope="module")
def iris_run(tracking_server: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return log_iris_model(tracking_server, tmp_path_factory.mktemp("iris"))


def register(
    kube: KubeApi, namespace: str, name: str, model: str, run_id: str, stage: str = "None", **spec: Any
) -> int:
    kube.create(path_for(API, "modelversions", namespace), mv(name, model, f"runs:/{run_id}/model", stage, **spec))
    return int(
        wait(
            lambda: kube.get(path_for(API, "modelversions", namespace, name)).get("status", {}).get("version"),
            60,
            f"ModelVersion {name} numbered",
        )
    )


def model_deployment(name: str, model: str, variants: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": model, "variants": variants, **spec},
    }


def md_status(kube: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    return kube.get(path_for(API, "modeldeployments", namespace, name)).get("status") or {}


def wait_healthy(kube: KubeApi, namespace: str, name: str, timeout: float = 240, **versions: int) -> dict[str, Any]:
    def healthy() -> dict[str, Any] | None:
        st = md_status(kube, namespace, name)
        served = {v["name"]: v.get("version") for v in st.get("variants") or []}
        if st.get("phase") == "Healthy" and all(served.get(k) == v for k, v in versions.items()):
            return st
        return None

    try:
        return wait(healthy, timeout, f"ModelDeployment {name} Healthy with {versions or 'its versions'}")
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nstatus: {json.dumps(md_status(kube, namespace, name), indent=1)[-3000:]}"
        ) from None


def predict(host: str, port: int, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, str]:
    """One prediction on a connection of its own; (status, the variant that answered)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(
            "POST",
            "/invocations",
            body=json.dumps(ROWS),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        resp = conn.getresponse()
        body = resp.read()
        if resp.status == 200:
            assert json.loads(body)["predictions"] == [0], body
        return resp.status, resp.getheader("x-modelship-variant") or ""
    finally:
        conn.close()


def variants_of(host: str, port: int, n: int, headers: dict[str, str] | None = None) -> Counter[str]:
    counts: Counter[str] = Counter()
    for _ in range(n):
        status, variant = predict(host, port, headers)
        assert status == 200, (status, variant)
        counts[variant] += 1
    return counts


def routed_service(kube: KubeApi, namespace: str, name: str) -> str:
    """The Service's ClusterIP once a prediction through it is answered. The ModelDeployment
    is Healthy when its pods are Ready; kube-proxy programs the Service's rules a sync later,
    and until then a connection to the ClusterIP is not translated: a load started on Healthy
    alone counted two such failures against the canary it was watching (CI of 779de24, when
    the bed's node still answered those with ENETUNREACH; see tests/cluster/network.py)."""
    host = kube.get(path_for("v1", "services", namespace, name))["spec"]["clusterIP"]
    wait(
        lambda: predict(host, 80, timeout=2)[0] == 200,
        60,
        f"a prediction through Service {name} ({host}:80)",
        retry=(OSError,),
    )
    return host


class Load(threading.Thread):
    """Predictions in a loop while something changes: bounded in count and time, every failure kept.
    Paced at ``rate`` a second: unpaced, a quiet machine sent the 20,000 of its count bound in
    under a minute, and a canary's last step then saw no request at all."""

    def __init__(
        self,
        host: str,
        port: int,
        headers: dict[str, str] | None = None,
        limit: int = 20000,
        seconds: float = 300,
        rate: float = 50,
    ):
        super().__init__(daemon=True)
        self.host, self.port, self.headers = host, port, headers
        self.limit, self.deadline, self.interval = limit, time.monotonic() + seconds, 1 / rate
        self.stop_event = threading.Event()
        self.sent, self.failures, self.answered_by = 0, [], Counter()

    def run(self) -> None:
        started = next_at = time.monotonic()
        while not self.stop_event.is_set() and self.sent < self.limit and time.monotonic() < self.deadline:
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))
            next_at += self.interval
            self.sent += 1
            # Each failure carries its time since the load began and the wall clock, to be
            # read against the bed's logs (kube-proxy's syncs, the pods' starts and deletes).
            at = f"+{time.monotonic() - started:.2f}s {time.strftime('%H:%M:%S')}"
            try:
                status, variant = predict(self.host, self.port, self.headers)
                if status != 200:
                    self.failures.append(f"{at} HTTP {status} from {variant or 'no variant'}")
                self.answered_by[variant] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none is hidden
                self.failures.append(f"{at} {exc!r}")

    def finish(self) -> Load:
        self.stop_event.set()
        self.join(30)
        return self


def absent(kube: KubeApi, namespace: str, api_version: str, plural: str, name: str) -> bool:
    """Whether the object is gone (a 404); any other error is raised."""
    try:
        kube.get(path_for(api_version, plural, namespace, name))
        return False
    except ApiError as exc:
        if exc.status != 404:
            raise
        return True


def ready_pods(kube: KubeApi, namespace: str, selector: str) -> list[dict[str, Any]]:
    pods = kube.get(path_for("v1", "pods", namespace), labelSelector=selector)["items"]
    return [
        p
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions") or [])
    ]


def test_replicas_mode_splits_by_pods_and_a_promotion_rolls_with_no_failed_request(
    kube: KubeApi, namespace: str, operator, iris_run: str
) -> None:
    model = f"iris-{namespace}"
    register(kube, namespace, "v1", model, iris_run, "Production")
    register(kube, namespace, "v2", model, iris_run, "Staging")
    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment(
            "iris",
            model,
            [
                {"name": "blue", "stage": "Production", "weight": 75, "replicas": 3},
                {"name": "green", "stage": "Staging", "weight": 25, "replicas": 1},
            ],
        ),
    )
    st = wait_healthy(kube, namespace, "iris", blue=1, green=2)
    assert st["split"] == "blue=75 green=25" and st["ready"] == "4/4"
    assert st["url"] == f"http://iris.{namespace}.svc.cluster.local"
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds == {"Ready": "True", "Progressing": "False", "Degraded": "False", "SplitExpressible": "True"}
    service = kube.get(path_for("v1", "services", namespace, "iris"))
    host = service["spec"]["clusterIP"]
    wait(lambda: set(variants_of(host, 80, 20)) == {"blue", "green"}, 60, "both variants behind the Service")

    n = 800
    counts = variants_of(host, 80, n)
    low, high = binomial_bounds(n, 0.25)
    assert low <= counts["green"] <= high, counts

    # Promote a new version to Production: blue follows, no request fails, and blue never
    # has fewer Ready pods than it asks for (the old ones go only after the new are Ready).
    load = Load(host, 80)
    load.start()
    v3 = register(kube, namespace, "v3", model, iris_run, "Production")
    assert v3 == 3
    fewest_ready = 3
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        fewest_ready = min(fewest_ready, len(ready_pods(kube, namespace, "modelship.io/variant=blue")))
        st = md_status(kube, namespace, "iris")
        served = {v["name"]: v.get("version") for v in st.get("variants") or []}
        if st.get("phase") == "Healthy" and served.get("blue") == 3:
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"blue did not roll to version 3: {st}")
    time.sleep(2)  # requests on the way while the last old pod drains
    load.finish()
    assert load.sent > 50 and load.failures == [], (load.sent, load.failures[:10])
    assert fewest_ready >= 3
    versions = {
        p["metadata"]["labels"]["modelship.io/version"]
        for p in ready_pods(kube, namespace, "modelship.io/variant=blue")
    }
    assert versions == {"3"}


def test_gateway_mode_weights_pins_edits_and_a_shadow(
    kube: KubeApi, namespace: str, operator, bed, iris_run: str
) -> None:
    model = f"iris-{namespace}"
    register(kube, namespace, "v1", model, iris_run, "Production")
    register(kube, namespace, "v2", model, iris_run)
    info = json.loads((bed.state_dir / "bed.json").read_text())["gateway"]
    hostname = f"{namespace}.models.test"
    routing = {
        "mode": "gatewayAPI",
        "gateway": {"name": info["name"], "namespace": info["namespace"]},
        "hostnames": [hostname],
        "mirror": "TraefikService",
    }
    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment(
            "iris",
            model,
            [
                {"name": "blue", "version": 1, "weight": 80},
                {"name": "green", "version": 2, "weight": 20},
                {"name": "cand", "version": 2, "weight": 0, "shadow": True},
            ],
            routing=routing,
        ),
    )
    st = wait_healthy(kube, namespace, "iris", blue=1, green=2, cand=2)
    assert st["split"] == "blue=80 green=20 cand=shadow"
    route = kube.get(path_for("gateway.networking.k8s.io/v1", "httproutes", namespace, "iris"))
    assert route["spec"]["rules"][-1]["backendRefs"][0]["group"] == "traefik.io"
    # What the API server stores is exactly what the operator wrote: no defaulted field, so
    # nothing drifts under Argo CD.
    md = kube.get(path_for(API, "modeldeployments", namespace, "iris"))
    want = serving.build_route(
        ModelDeploymentSpec.model_validate(md["spec"]),
        serving.plan_variants(ModelDeploymentSpec.model_validate(md["spec"])),
        Owner("iris", namespace, md["metadata"]["uid"], kind="ModelDeployment"),
    )
    assert route["spec"] == next(o for o in want if o["kind"] == "HTTPRoute")["spec"]
    gw, port, host = info["address"], int(info["port"]), {"Host": hostname}
    wait(lambda: _answers(gw, port, host) == {"blue", "green"}, 90, "the route answering from both variants")

    n = 1000
    counts = variants_of(gw, port, n, host)
    low, high = binomial_bounds(n, 0.2)
    assert set(counts) == {"blue", "green"} and low <= counts["green"] <= high, counts
    assert variants_of(gw, port, 100, {**host, "x-modelship-variant": "green"}) == Counter({"green": 100})
    # The shadow answered no one, yet saw the traffic.
    (cand,) = ready_pods(kube, namespace, "modelship.io/variant=cand")
    wait(lambda: _invocations(cand["status"]["podIP"]) >= n, 30, "the shadow to see a copy of the traffic")

    # 50/50 -> 100/0: after the route changes, the 0-weight variant gets no request.
    patch = {
        "spec": {
            "variants": [
                {"name": "blue", "version": 1, "weight": 100},
                {"name": "green", "version": 2, "weight": 0},
                {"name": "cand", "version": 2, "weight": 0, "shadow": True},
            ]
        }
    }
    kube.patch(path_for(API, "modeldeployments", namespace, "iris"), patch)
    wait(
        lambda: (
            [
                b["weight"]
                for b in kube.get(path_for("gateway.networking.k8s.io/v1", "httproutes", namespace, "iris"))["spec"][
                    "rules"
                ][-1]["backendRefs"]
            ]
            == [100, 0]
        ),
        60,
        "the route's weights 100/0",
    )
    wait(lambda: "green" not in variants_of(gw, port, 40, host), 30, "Traefik to take the new weights")
    assert variants_of(gw, port, 300, host) == Counter({"blue": 300})
    assert md_status(kube, namespace, "iris")["split"].startswith("blue=100 green=0")


def _answers(host: str, port: int, headers: dict[str, str]) -> set[str]:
    seen = set()
    for _ in range(20):
        try:
            status, variant = predict(host, port, headers, timeout=5)
        except OSError:
            continue
        if status == 200:
            seen.add(variant)
    return seen


def _invocations(pod_ip: str) -> float:
    conn = http.client.HTTPConnection(pod_ip, 8080, timeout=5)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("modelship_requests_total{") and 'endpoint="invocations"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_children_follow_the_spec_and_go_with_the_deployment(
    kube: KubeApi, namespace: str, operator, iris_run: str
) -> None:
    model = f"iris-{namespace}"
    register(kube, namespace, "v1", model, iris_run, "Production")
    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment(
            "auto",
            model,
            [{"name": "main", "stage": "Production", "weight": 100}],
            autoscaling={"minReplicas": 1, "maxReplicas": 4, "targetCpuUtilization": 65},
        ),
    )
    wait_healthy(kube, namespace, "auto", main=1)
    hpa = kube.get(path_for("autoscaling/v2", "horizontalpodautoscalers", namespace, "auto-main"))
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 65
    pdb = kube.get(path_for("policy/v1", "poddisruptionbudgets", namespace, "auto-main"))
    assert pdb["spec"]["maxUnavailable"] == 1
    dep = kube.get(path_for("apps/v1", "deployments", namespace, "auto-main"))
    managers = {m["manager"]: m for m in dep["metadata"]["managedFields"]}
    assert "f:replicas" not in json.dumps(managers["modelship-operator"]["fieldsV1"]["f:spec"])  # the HPA's

    # A Deployment deleted by hand comes back without waiting for the 10-minute resync: it is
    # gone from the operator's watch, and the next tick after the grace applies it again.
    kube.delete(path_for("apps/v1", "deployments", namespace, "auto-main"))

    def back() -> bool:
        try:
            again = kube.get(path_for("apps/v1", "deployments", namespace, "auto-main"))
        except ApiError as exc:
            if exc.status != 404:
                raise
            return False
        return bool(again["metadata"]["uid"] != dep["metadata"]["uid"])

    wait(back, 120, "the Deployment deleted by hand applied again")
    wait_healthy(kube, namespace, "auto", main=1)

    kube.delete(path_for(API, "modeldeployments", namespace, "auto"))

    children = [
        ("apps/v1", "deployments", "auto-main"),
        ("v1", "services", "auto-main"),
        ("v1", "services", "auto"),
        ("policy/v1", "poddisruptionbudgets", "auto-main"),
        ("autoscaling/v2", "horizontalpodautoscalers", "auto-main"),
    ]
    wait(lambda: all(absent(kube, namespace, *c) for c in children), 90, "every child deleted with the ModelDeployment")


def test_no_finalizer_a_promotion_follows_and_a_delete_needs_no_operator(
    kube: KubeApi, namespace: str, operator, iris_run: str
) -> None:
    """kopf puts its finalizer on every object with a timer; the operator-wide follower has none:
    a promotion still reaches the Deployment with no edit of the ModelDeployment, and a delete
    completes, its children going through their ownerReferences, with the operator stopped."""
    model = f"iris-{namespace}"
    register(kube, namespace, "v1", model, iris_run, "Production")
    md_path = path_for(API, "modeldeployments", namespace, "follow")
    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment("follow", model, [{"name": "main", "stage": "Production", "weight": 100}]),
    )
    wait_healthy(kube, namespace, "follow", main=1)
    md = kube.get(md_path)
    assert md["metadata"].get("finalizers") in (None, []), md["metadata"]

    register(kube, namespace, "v2", model, iris_run, "Production")
    wait_healthy(kube, namespace, "follow", main=2)
    template = kube.get(path_for("apps/v1", "deployments", namespace, "follow-main"))["spec"]["template"]
    assert template["metadata"]["labels"]["modelship.io/version"] == "2"
    after = kube.get(md_path)["metadata"]
    assert after["generation"] == md["metadata"]["generation"] and not after.get("finalizers")

    operator.popen.kill()
    operator.popen.wait(10)
    try:
        kube.delete(md_path)

        wait(
            lambda: absent(kube, namespace, API, "modeldeployments", "follow"),
            30,
            "the ModelDeployment deleted with no operator",
        )
        children = [
            ("apps/v1", "deployments", "follow-main"),
            ("v1", "services", "follow"),
            ("v1", "services", "follow-main"),
            ("policy/v1", "poddisruptionbudgets", "follow-main"),
        ]
        wait(
            lambda: all(absent(kube, namespace, *c) for c in children), 90, "its children collected by ownerReferences"
        )
    finally:
        operator.start()
        wait(lambda: urllib_ok(operator.health_url), 60, "the restarted operator live")


def test_a_finalizer_left_by_an_older_operator_goes_at_the_first_event(
    kube: KubeApi, namespace: str, operator, iris_run: str
) -> None:
    """Operators before the follower put kopf's finalizer on every ModelDeployment (their
    per-object timer needed it). After an upgrade such an object must not keep it: a delete
    would then wait for an operator for nothing. kopf takes it off at the object's first
    event, as no handler requires it any more."""
    from modelship.controllers.main import FINALIZER

    model = f"iris-{namespace}"
    register(kube, namespace, "v1", model, iris_run, "Production")
    body = model_deployment("upgraded", model, [{"name": "main", "stage": "Production", "weight": 100}])
    body["metadata"]["finalizers"] = [FINALIZER]
    md_path = path_for(API, "modeldeployments", namespace, "upgraded")
    kube.create(path_for(API, "modeldeployments", namespace), body)
    wait(lambda: not kube.get(md_path)["metadata"].get("finalizers"), 60, "the old finalizer taken off")
    wait_healthy(kube, namespace, "upgraded", main=1)
    kube.delete(md_path)
    wait(lambda: absent(kube, namespace, API, "modeldeployments", "upgraded"), 30, "the ModelDeployment deleted")


def test_bad_input_is_a_condition_that_names_the_field_and_the_fix(
    kube: KubeApi, namespace: str, operator, iris_run: str
) -> None:
    model = f"iris-{namespace}"
    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment("empty", model, [{"name": "main", "stage": "Production", "weight": 100}]),
    )
    st = wait(lambda: (s := md_status(kube, namespace, "empty")).get("phase") == "Degraded" and s, 60, "Degraded")
    assert "has no version in stage Production (numbered versions: none)" in st["message"]
    assert "spec.variants[main].stage" in st["message"]
    register(kube, namespace, "v1", model, iris_run, "Production")
    wait_healthy(kube, namespace, "empty", main=1)  # a version appears: it serves, with no edit

    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment("alias", model, [{"name": "main", "alias": "champion", "weight": 100}]),
    )
    st = wait(lambda: (s := md_status(kube, namespace, "alias")).get("phase") == "Degraded" and s, 60, "Degraded")
    assert "alias 'champion'" in st["message"] and "spec.variants[main].alias" in st["message"]

    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment(
            "nogateway",
            model,
            [{"name": "main", "version": 1, "weight": 100}],
            routing={"mode": "gatewayAPI", "gateway": {"name": "no-such-gateway"}},
        ),
    )
    st = wait(lambda: (s := md_status(kube, namespace, "nogateway")).get("phase") == "Degraded" and s, 60, "Degraded")
    assert f"Gateway {namespace}/no-such-gateway, which does not exist" in st["message"]
    assert "spec.routing.gateway" in st["message"]

    # Refused by the API server itself (CEL), before the operator sees it.
    for variants, message in (
        ([{"name": "a", "version": 1, "weight": 60}, {"name": "b", "version": 1, "weight": 30}], "sum to 100"),
        (
            [{"name": "a", "version": 1, "weight": 90}, {"name": "s", "version": 1, "weight": 10, "shadow": True}],
            "shadow variant takes no live traffic",
        ),
    ):
        with pytest.raises(ApiError) as refused:
            kube.create(path_for(API, "modeldeployments", namespace), model_deployment("bad", model, variants))
        assert refused.value.status == 422 and message in refused.value.message
    with pytest.raises(ApiError) as refused:
        kube.create(
            path_for(API, "modeldeployments", namespace),
            model_deployment(
                "nogw", model, [{"name": "a", "version": 1, "weight": 100}], routing={"mode": "gatewayAPI"}
            ),
        )
    assert "needs routing.gateway" in refused.value.message


def test_a_version_that_cannot_load_leaves_the_old_one_serving(
    kube: KubeApi, namespace: str, operator, iris_run: str, tracking_server: str
) -> None:
    model = f"iris-{namespace}"
    register(kube, namespace, "good", model, iris_run, "Production")
    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment("iris", model, [{"name": "main", "stage": "Production", "weight": 100}]),
    )
    wait_healthy(kube, namespace, "iris", main=1)
    host = routed_service(kube, namespace, "iris")
    # A run whose model directory has an MLmodel naming a flavor that does not exist.
    with TrackingClient(tracking_server) as client:
        broken = client.create_run(client.get_or_create_experiment("modeldeployment-e2e"))
        root = client.get_run(broken)["info"]["artifact_uri"]
        upload(tracking_server, f"{root}/model/MLmodel", "flavors:\n  no_such_flavor: {}\n")
        client.set_terminated(broken)
    load = Load(host, 80)
    load.start()
    kube.create(path_for(API, "modelversions", namespace), mv("broken", model, f"runs:/{broken}/model", "Production"))

    def degraded() -> dict[str, Any] | None:
        st = md_status(kube, namespace, "iris")
        return st if st.get("phase") == "Degraded" and "exited" in (st.get("message") or "") else None

    st = wait(degraded, 180, "Degraded with the pod's own message")
    load.finish()
    assert "variant main version 2" in st["message"] and "version 1 keeps serving" in st["message"], st["message"]
    assert load.failures == [] and load.sent > 10
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"  # still serving version 1


# --- canary ---------------------------------------------------------------------------------
FAILING_MLMODEL = "flavors:\n  python_function:\n    loader_module: failing_model\n    code: code\n"
FAILING_CODE = (
    "class _Model:\n    def predict(self, data):\n"
    "        raise RuntimeError('this version fails on every prediction')\n\n\n"
    "def _load_pyfunc(path):\n    return _Model()\n"
)
CANARY = {
    "type": "Canary",
    "steps": [{"weight": 25, "pauseSeconds": 8}, {"weight": 50, "pauseSeconds": 8}],
    # The error rate decides these tests; the latency bound (its own rule is unit-tested in
    # tests/unit/serving/test_canary.py) is one a loaded CI machine cannot break by slowness.
    "analysis": {"maxErrorRate": 0.05, "minRequests": 5, "maxP99LatencyMs": 60000},
}


@pytest.fixture(scope="module")
def failing_run(tracking_server: str) -> str:
    """A model that loads, and answers every prediction with a 500."""
    with TrackingClient(tracking_server) as client:
        run_id = client.create_run(client.get_or_create_experiment("modeldeployment-e2e"))
        root = client.get_run(run_id)["info"]["artifact_uri"]
        upload(tracking_server, f"{root}/model/MLmodel", FAILING_MLMODEL)
        upload(tracking_server, f"{root}/model/code/failing_model.py", FAILING_CODE)
        client.set_terminated(run_id)
    return run_id


def events(kube: KubeApi, namespace: str, name: str) -> list[dict[str, Any]]:
    return [
        e
        for e in kube.get(path_for("v1", "events", namespace))["items"]
        if e.get("involvedObject", {}).get("name") == name
    ]


def canary_deployed(kube: KubeApi, namespace: str, name: str) -> bool:
    try:
        kube.get(path_for("apps/v1", "deployments", namespace, name))
        return True
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise


def test_a_canary_that_fails_on_predict_rolls_back_by_itself(
    kube: KubeApi, namespace: str, operator, iris_run: str, failing_run: str
) -> None:
    model = f"iris-{namespace}"
    register(kube, namespace, "v1", model, iris_run, "Production")
    # The failing model is a loader_module model: code of its author, so it needs the opt-in.
    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment(
            "iris",
            model,
            [{"name": "main", "stage": "Production", "weight": 100, "replicas": 2}],
            strategy=CANARY,
            allowPickle=True,
        ),
    )
    wait_healthy(kube, namespace, "iris", main=1)
    host = routed_service(kube, namespace, "iris")
    load = Load(host, 80)
    load.start()
    register(kube, namespace, "v2", model, failing_run, "Production")
    wait(lambda: canary_deployed(kube, namespace, "iris-main-canary"), 60, "the canary's Deployment")

    def rolled_back() -> dict[str, Any] | None:
        st = md_status(kube, namespace, "iris")
        return st if (st.get("canary") or {}).get("phase") == "RolledBack" else None

    st = wait(rolled_back, 180, "the canary rolled back")
    assert st["phase"] == "Degraded" and st["rollout"] == "RolledBack v2"
    assert "version 2 rolled back at step 1/2" in st["message"] and "error rate" in st["message"], st["message"]
    assert st["canary"]["analysis"]["errors"] > 0
    wait(lambda: not canary_deployed(kube, namespace, "iris-main-canary"), 60, "the canary's Deployment gone")
    wait(
        lambda: not kube.get(path_for("v1", "pods", namespace), labelSelector="modelship.io/track=canary")["items"],
        60,
        "the canary's pods gone",
    )
    # kopf posts Events from a queue of its own, after the status patch: poll for it.
    wait(
        lambda: any(e["reason"] == "CanaryRolledBack" for e in events(kube, namespace, "iris")),
        60,
        "the CanaryRolledBack Event",
    )
    load.finish()
    assert load.failures, "the canary's 500s should have reached some clients"  # what the analysis caught
    # After the rollback: version 1 answers everything, and stays (the registry still says 2).
    after = variants_of(host, 80, 100)
    assert after == Counter({"main": 100})
    # The Event is posted before the status is written: wait for the status, then see it stay.
    wait(
        lambda: (md_status(kube, namespace, "iris").get("canary") or {}).get("phase") == "RolledBack",
        60,
        "status.canary.phase RolledBack",
    )
    time.sleep(3)
    st = md_status(kube, namespace, "iris")
    assert st["canary"]["phase"] == "RolledBack" and {v["name"]: v["version"] for v in st["variants"]} == {"main": 1}


def test_a_good_canary_promotes_and_an_operator_killed_mid_way_resumes(
    kube: KubeApi, namespace: str, operator, iris_run: str
) -> None:
    model = f"iris-{namespace}"
    register(kube, namespace, "v1", model, iris_run, "Production")
    strategy = {
        **CANARY,
        "steps": [
            {"weight": 25, "pauseSeconds": 8},
            {"weight": 50, "pauseSeconds": 15},
            {"weight": 75, "pauseSeconds": 8},
        ],
    }
    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment(
            "iris", model, [{"name": "main", "stage": "Production", "weight": 100, "replicas": 2}], strategy=strategy
        ),
    )
    wait_healthy(kube, namespace, "iris", main=1)
    host = routed_service(kube, namespace, "iris")
    load = Load(host, 80)
    load.start()
    register(kube, namespace, "v2", model, iris_run, "Production")
    st = wait(
        lambda: (
            (s := md_status(kube, namespace, "iris")).get("canary", {})
            and s["canary"].get("step", 0) >= 1
            and s["canary"].get("stepStartedAt")
            and s
        ),
        120,
        "the canary's step 2",
    )
    assert st["rollout"] == "Canary 2/3 v2"
    step_before = st["canary"]["step"]

    # SIGKILL the operator mid-canary; a new one resumes from status, not from step 1.
    operator.popen.kill()
    operator.popen.wait(10)
    operator.start()
    wait(lambda: urllib_ok(operator.health_url), 60, "the restarted operator live")

    def progressed() -> dict[str, Any] | None:
        s = md_status(kube, namespace, "iris")
        c = s.get("canary")
        if c is not None:
            assert c["step"] >= step_before, f"the canary went back to step {c['step']}"
            assert c["phase"] != "RolledBack", s["message"]
        return s if s.get("phase") == "Healthy" and c is None else None

    st = wait(progressed, 240, "the canary promoted")
    assert {v["name"]: v["version"] for v in st["variants"]} == {"main": 2} and st["rollout"] == "Stable"
    wait(lambda: not canary_deployed(kube, namespace, "iris-main-canary"), 60, "the canary's Deployment gone")
    time.sleep(2)
    load.finish()
    assert load.sent > 50 and load.failures == [], (load.sent, load.failures[:10])
    wait(
        lambda: {"CanaryStarted", "CanaryPromoted"} <= {e["reason"] for e in events(kube, namespace, "iris")},
        60,
        "the CanaryStarted and CanaryPromoted Events",
    )


def urllib_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _dump_operator_on_failure(request: pytest.FixtureRequest, operator) -> Any:
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(Path(operator.log_path).read_text()[-6000:])


def test_the_ui_shows_live_per_variant_figures_from_the_model_servers(
    kube: KubeApi, namespace: str, operator, iris_run: str, tracking_server: str
) -> None:
    """The tracking server finds each variant's model-server pods in its EndpointSlices and
    scrapes their /metrics: first the figures since the pods started, then, asked again, the
    request rate, error rate and p99 of what was sent meanwhile, per variant."""
    import httpx

    model = f"iris-{namespace}"
    register(kube, namespace, "v1", model, iris_run, "Production")
    register(kube, namespace, "v2", model, iris_run, "Staging")
    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment(
            "live",
            model,
            [
                {"name": "blue", "stage": "Production", "weight": 50, "replicas": 1},
                {"name": "green", "stage": "Staging", "weight": 50, "replicas": 1},
            ],
        ),
    )
    wait_healthy(kube, namespace, "live", blue=1, green=2)

    def live() -> dict[str, Any]:
        r = httpx.get(
            f"{tracking_server}/api/2.0/modelship/kube/modeldeployments/live",
            params={"namespace": namespace, "name": "live"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return dict(r.json()["variants"])

    # The first look: both reachable, since start (no rate yet).
    first = wait(lambda: (v := live()) and all(x["reachable"] for x in v.values()) and v, 60, "both variants scraped")
    assert set(first) == {"blue", "green"} and all(x["pods"] == 1 for x in first.values()), first
    sent = {"blue": 30, "green": 10}
    for variant, n in sent.items():
        ip = kube.get(path_for("v1", "services", namespace, serving.variant_name("live", variant)))["spec"]["clusterIP"]
        # A new Ready pod is routed by kube-proxy a moment later: the first answer is polled for
        # (until then a connection can be refused or find no route: OSError, retried).
        wait(
            lambda ip=ip: predict(ip, serving.SERVICE_PORT)[0] == 200,
            60,
            f"{variant}'s Service answers",
            retry=(OSError,),
        )
        for _ in range(n - 1):
            assert predict(ip, serving.SERVICE_PORT)[0] == 200

    def windowed() -> dict[str, Any] | None:
        v = live()
        done = all(x.get("window_s") and x["requests"] >= sent[name] for name, x in v.items())
        return v if done else None

    figures = wait(windowed, 90, "figures over a window with what was sent")
    for name, x in figures.items():
        assert x["request_rate"] > 0 and x["error_rate"] == 0.0 and x["errors"] == 0, (name, x)
        assert x["p99_ms"] is not None and x["p99_ms"] > 0, (name, x)
        assert x["requests"] < sent[name] + 20, (name, x)  # the window holds this test's predictions, not others'
