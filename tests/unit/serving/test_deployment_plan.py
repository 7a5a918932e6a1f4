"""The ModelDeployment's pure plan: versions from the registry, the split, the children, the phase."""

from __future__ import annotations

from typing import Any

import pytest

from modelship.api import ModelDeploymentSpec
from modelship.resources import serving
from modelship.resources.experiment import Owner

OWNER = Owner("iris", "team", "uid-1", kind="ModelDeployment")
CTX = serving.ServingContext(OWNER, "ghcr.io/modelship/modelship:dev", "http://tracking:5000")


def mv(
    name: str,
    version: int | None,
    stage: str | None = None,
    aliases: list[str] | None = None,
    model: str = "iris",
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"model": model, "source": f"runs:/{name}/model"},
        "status": {"version": version, "stage": stage, "aliases": aliases},
    }


VERSIONS = [
    mv("v1", 1, "Archived"),
    mv("v2", 2, "Production", ["champion"]),
    mv("v3", 3, "Staging", ["challenger"]),
    mv("v4", None),
    mv("other", 9, "Production", model="wine"),
    mv("v5", 5, "Production", deleting=True),
]


def spec(**fields: Any) -> ModelDeploymentSpec:
    base: dict[str, Any] = {"model": "iris", "variants": [{"name": "a", "stage": "Production"}]}
    return ModelDeploymentSpec.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("variant", "version", "error"),
    [
        ({"name": "a", "version": 1}, 1, None),
        ({"name": "a", "stage": "Production"}, 2, None),
        ({"name": "a", "stage": "Staging"}, 3, None),
        ({"name": "a", "alias": "challenger"}, 3, None),
        ({"name": "a", "alias": "champion"}, 2, None),
        ({"name": "a", "version": 4}, None, "model iris has no version 4 (numbered versions: 1, 2, 3)"),
        ({"name": "a", "version": 9}, None, "has no version 9"),  # 9 is another model's
        ({"name": "a", "alias": "gone"}, None, "has no version with alias 'gone'"),
    ],
)
def test_resolve_variant(variant: dict[str, Any], version: int | None, error: str | None) -> None:
    v = spec(variants=[{**variant, "weight": 100}]).variants[0]
    got = serving.resolve_variant(v, "iris", VERSIONS)
    assert got.version == version
    if error:
        assert got.error is not None and error in got.error
        assert "spec.variants[a]" in got.error  # the field to fix
    else:
        assert got.error is None and got.source == f"runs:/v{version}/model"


def test_resolving_a_model_with_no_versions_names_the_fix() -> None:
    got = serving.resolve_variant(spec().variants[0], "iris", [])
    assert got.error is not None and "numbered versions: none" in got.error and "register or promote" in got.error


def test_the_newest_of_several_in_one_stage_wins() -> None:
    versions = [mv("v2", 2, "Production"), mv("v7", 7, "Production")]
    assert serving.resolve_variant(spec().variants[0], "iris", versions).version == 7


@pytest.mark.parametrize(
    ("weights", "total", "counts"),
    [
        ([("a", 75), ("b", 25)], 4, {"a": 3, "b": 1}),
        ([("a", 80), ("b", 20)], 5, {"a": 4, "b": 1}),
        ([("a", 80), ("b", 20)], 3, {"a": 2, "b": 1}),
        ([("a", 50), ("b", 50)], 3, {"a": 2, "b": 1}),  # a tie goes to the earlier variant
        ([("a", 100), ("b", 0)], 4, {"a": 4, "b": 0}),
        ([("a", 34), ("b", 33), ("c", 33)], 3, {"a": 1, "b": 1, "c": 1}),
        ([("a", 90), ("b", 10)], 2, {"a": 2, "b": 0}),
        ([("a", 50), ("b", 50)], 0, {"a": 0, "b": 0}),
    ],
)
def test_replica_split_is_largest_remainder(weights: list[tuple[str, int]], total: int, counts: dict[str, int]) -> None:
    got = serving.replica_split(weights, total)
    assert got == counts and sum(got.values()) == total


def test_replicas_mode_shares_the_pods_of_live_variants_by_weight() -> None:
    s = spec(
        variants=[
            {"name": "a", "version": 1, "weight": 75, "replicas": 2},
            {"name": "b", "version": 2, "weight": 25, "replicas": 2},
            {"name": "s", "version": 3, "weight": 0, "shadow": True, "replicas": 1},
        ]
    )
    plans = {p.name: p for p in serving.plan_variants(s)}
    assert (plans["a"].replicas, plans["b"].replicas, plans["s"].replicas) == (3, 1, 1)
    assert serving.split_message(s, list(plans.values())) is None


def test_a_split_the_replicas_cannot_express_is_explained() -> None:
    s = spec(
        variants=[
            {"name": "a", "version": 1, "weight": 90, "replicas": 1},
            {"name": "b", "version": 2, "weight": 10, "replicas": 1},
        ]
    )
    message = serving.split_message(s, serving.plan_variants(s))
    assert message is not None
    assert "a 100% (asked 90%)" in message and "sum to 10" in message and "gatewayAPI" in message


def resolved_all(s: ModelDeploymentSpec, versions: list[dict[str, Any]] | None = None) -> dict[str, serving.Resolved]:
    return {v.name: serving.resolve_variant(v, s.model, VERSIONS if versions is None else versions) for v in s.variants}


def kinds(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in objects]


def test_children_of_a_replicas_deployment() -> None:
    s = spec(
        variants=[
            {"name": "blue", "stage": "Production", "weight": 50, "replicas": 1},
            {"name": "green", "alias": "challenger", "weight": 50, "replicas": 1},
        ]
    )
    plan = serving.plan_children(s, resolved_all(s), CTX, set())
    assert kinds(plan.objects) == [
        ("Deployment", "iris-blue"),
        ("Service", "iris-blue"),
        ("PodDisruptionBudget", "iris-blue"),
        ("Deployment", "iris-green"),
        ("Service", "iris-green"),
        ("PodDisruptionBudget", "iris-green"),
        ("Service", "iris"),
        ("Service", "iris--peers"),
    ]
    dep = plan.objects[0]
    assert dep["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    pod = dep["spec"]["template"]
    assert pod["metadata"]["labels"][serving.LABEL_VERSION] == "2"
    assert pod["metadata"]["labels"][serving.LABEL_SERVING] == "true"
    (c,) = pod["spec"]["containers"]
    assert c["args"][:3] == ["serve", "--model-uri", "runs:/v2/model"]
    assert c["args"][c["args"].index("--variant") + 1] == "blue"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ping"  # 200 only once the model is loaded
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert {"name": "MLFLOW_TRACKING_URI", "value": "http://tracking:5000"} in c["env"]
    service = plan.objects[-2]
    assert service["spec"]["selector"] == {serving.LABEL_DEPLOYMENT: "iris", serving.LABEL_SERVING: "true"}


def test_with_autoscaling_the_replicas_belong_to_the_hpa() -> None:
    s = spec(autoscaling={"minReplicas": 2, "maxReplicas": 6, "targetCpuUtilization": 60})
    plan = serving.plan_children(s, resolved_all(s), CTX, set())
    dep = next(o for o in plan.objects if o["kind"] == "Deployment")
    assert "replicas" not in dep["spec"]
    hpa = next(o for o in plan.objects if o["kind"] == "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "iris-a"}
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60


def test_an_unresolved_variant_keeps_its_deployment_and_a_new_one_gets_none() -> None:
    s = spec(variants=[{"name": "a", "alias": "gone", "weight": 100}])
    existing = serving.plan_children(s, resolved_all(s), CTX, {"iris-a"})
    assert "a" in existing.held and ("Deployment", "iris-a") not in kinds(existing.objects)
    assert ("Service", "iris-a") in kinds(existing.objects)  # it goes on serving behind its Service
    fresh = serving.plan_children(s, resolved_all(s), CTX, set())
    assert ("Service", "iris-a") not in kinds(fresh.objects)


GATEWAY = {"mode": "gatewayAPI", "gateway": {"name": "bed", "namespace": "traefik"}}


def route_of(s: ModelDeploymentSpec) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    objects = serving.plan_children(s, resolved_all(s), CTX, set()).objects
    route = next(o for o in objects if o["kind"] == "HTTPRoute")
    return route, [o for o in objects if o["kind"] == "TraefikService"]


def test_the_http_route_writes_out_every_default_and_pins_by_header() -> None:
    s = spec(
        routing=GATEWAY,
        variants=[{"name": "blue", "version": 2, "weight": 80}, {"name": "green", "version": 3, "weight": 20}],
    )
    route, traefik = route_of(s)
    assert not traefik
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "traefik", "name": "bed"}
    ]
    rules = route["spec"]["rules"]
    assert rules[0]["matches"][0]["headers"] == [{"type": "Exact", "name": "x-modelship-variant", "value": "blue"}]
    assert rules[0]["backendRefs"] == [{"group": "", "kind": "Service", "name": "iris-blue", "port": 80, "weight": 1}]
    assert rules[-1]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "iris-blue", "port": 80, "weight": 80},
        {"group": "", "kind": "Service", "name": "iris-green", "port": 80, "weight": 20},
    ]
    assert rules[-1]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]


def test_a_zero_weight_variant_stays_in_the_route_with_weight_zero() -> None:
    s = spec(
        routing=GATEWAY,
        variants=[{"name": "blue", "version": 2, "weight": 100}, {"name": "green", "version": 3, "weight": 0}],
    )
    route, _ = route_of(s)
    assert [b["weight"] for b in route["spec"]["rules"][-1]["backendRefs"]] == [100, 0]


@pytest.mark.parametrize("mirror", ["RequestMirror", "TraefikService"])
def test_a_shadow_variant_gets_a_copy_and_no_pin(mirror: str) -> None:
    s = spec(
        routing={**GATEWAY, "mirror": mirror},
        variants=[
            {"name": "live", "version": 2, "weight": 100},
            {"name": "cand", "version": 3, "weight": 0, "shadow": True},
        ],
    )
    route, traefik = route_of(s)
    rules = route["spec"]["rules"]
    assert len(rules) == 2  # a pin for the live variant, the split; the shadow answers no client
    if mirror == "RequestMirror":
        assert rules[-1]["filters"] == [
            {
                "type": "RequestMirror",
                "requestMirror": {"backendRef": {"group": "", "kind": "Service", "name": "iris-cand", "port": 80}},
            }
        ]
        assert rules[-1]["backendRefs"][0]["name"] == "iris-live"
    else:
        assert "filters" not in rules[-1]
        assert rules[-1]["backendRefs"] == [
            {"group": "traefik.io", "kind": "TraefikService", "name": "iris-live-mirrored", "weight": 100}
        ]
        (ts,) = traefik
        assert ts["spec"]["mirroring"] == {
            "name": "iris-live",
            "port": 80,
            "mirrors": [{"name": "iris-cand", "port": 80, "percent": 100}],
        }
    plans = serving.plan_children(s, resolved_all(s), CTX, set()).objects
    cand = next(o for o in plans if o["kind"] == "Deployment" and o["metadata"]["name"] == "iris-cand")
    assert serving.LABEL_SERVING not in cand["spec"]["template"]["metadata"]["labels"]  # not behind the main Service


def obs(
    replicas: int, ready: int, version: int | None, updated: int | None = None, **kw: Any
) -> serving.ObservedVariant:
    return serving.ObservedVariant(
        replicas=replicas,
        ready=ready,
        updated=ready if updated is None else updated,
        available=ready,
        exists=True,
        up_to_date=True,
        version=version,
        **kw,
    )


@pytest.mark.parametrize(
    ("observed", "phase", "ready"),
    [
        ({"a": obs(1, 1, 2)}, "Healthy", True),
        ({}, "Progressing", False),
        ({"a": obs(2, 1, 2, updated=1)}, "Progressing", False),  # surge: the new pod is not Ready yet
        ({"a": obs(1, 1, 1)}, "Progressing", False),  # still the old version's template
        # Degraded, yet Ready: the old version's pod goes on serving while the new one fails.
        ({"a": obs(2, 1, 2, updated=1, failure="pod iris-a-x exited 1: no MLmodel")}, "Degraded", True),
        ({"a": obs(1, 0, 2, failure="pod iris-a-x exited 1: no MLmodel")}, "Degraded", False),
        ({"a": obs(1, 1, 2, progress_deadline_exceeded=True)}, "Degraded", True),
    ],
)
def test_decide_phase(observed: dict[str, serving.ObservedVariant], phase: str, ready: bool) -> None:
    s = spec()
    verdict = serving.decide_phase(s, serving.plan_variants(s), resolved_all(s), observed)
    assert (verdict.phase, verdict.ready) == (phase, ready), verdict.message


def test_a_failing_new_version_is_degraded_with_the_pods_message_and_the_old_one_serving() -> None:
    s = spec()
    observed = {"a": obs(2, 1, 2, updated=1, failure="pod iris-a-x exited 1: no MLmodel")}
    verdict = serving.decide_phase(s, serving.plan_variants(s), resolved_all(s), observed)
    assert "variant a version 2: pod iris-a-x exited 1: no MLmodel" in verdict.message


def test_effective_weights_follow_ready_pods_in_replicas_mode() -> None:
    s = spec(
        variants=[
            {"name": "a", "version": 1, "weight": 75, "replicas": 3},
            {"name": "b", "version": 2, "weight": 25, "replicas": 1},
        ]
    )
    plans = serving.plan_variants(s)
    variants = serving.variant_status(s, plans, resolved_all(s), {"a": obs(3, 3, 1), "b": obs(1, 0, 2)})
    assert [(v["name"], v["effectiveWeight"]) for v in variants] == [("a", 100), ("b", 0)]
    variants = serving.variant_status(s, plans, resolved_all(s), {"a": obs(3, 3, 1), "b": obs(1, 1, 2)})
    assert [(v["name"], v["effectiveWeight"]) for v in variants] == [("a", 75), ("b", 25)]
    assert serving.split_summary(variants) == "a=75 b=25"


@pytest.mark.parametrize(("routing", "behind_service"), [(None, True), (GATEWAY, False)])
def test_a_canary_is_behind_the_main_service_only_in_replicas_mode(
    routing: dict[str, Any] | None, behind_service: bool
) -> None:
    fields: dict[str, Any] = {"variants": [{"name": "main", "stage": "Production", "weight": 100, "replicas": 3}]}
    if routing:
        fields["routing"] = routing
    s = spec(**fields)
    r = resolved_all(s)["main"]
    old = serving.Resolved("main", version=1, model_version="v1", source="runs:/v1/model")
    plan = serving.plan_children(
        s, {"main": r}, CTX, {"iris-main"}, serving.CanaryPlan("main", stable=old, candidate=r, weight=25)
    )
    deps = {o["metadata"]["name"]: o for o in plan.objects if o["kind"] == "Deployment"}
    stable, cand = deps["iris-main"], deps["iris-main-canary"]
    assert stable["spec"]["template"]["metadata"]["labels"][serving.LABEL_VERSION] == "1"  # held
    assert cand["spec"]["template"]["metadata"]["labels"][serving.LABEL_VERSION] == "2"
    assert stable["spec"]["selector"]["matchLabels"][serving.LABEL_TRACK] == "stable"
    assert cand["spec"]["selector"]["matchLabels"][serving.LABEL_TRACK] == "canary"  # never each other's pods
    labels = cand["spec"]["template"]["metadata"]["labels"]
    assert (labels.get(serving.LABEL_SERVING) == "true") is behind_service
    if routing:
        assert cand["spec"]["replicas"] == 1
        route = next(o for o in plan.objects if o["kind"] == "HTTPRoute")
        assert [(b["name"], b["weight"]) for b in route["spec"]["rules"][-1]["backendRefs"]] == [
            ("iris-main", 7500),
            ("iris-main-canary", 2500),
        ]
    else:
        assert cand["spec"]["replicas"] == 1  # 3 stable + 1 canary: 25 %


@pytest.mark.parametrize("allow", [False, True])
def test_the_pickle_opt_in_reaches_the_model_server_only_when_asked(allow: bool) -> None:
    s = spec(allowPickle=allow) if allow else spec()
    dep = next(o for o in serving.plan_children(s, resolved_all(s), CTX, set()).objects if o["kind"] == "Deployment")
    assert ("--allow-pickle" in dep["spec"]["template"]["spec"]["containers"][0]["args"]) is allow


def test_monitoring_reaches_the_model_server_as_drift_settings() -> None:
    def env_of(s: ModelDeploymentSpec) -> dict[str, str]:
        dep = next(
            o for o in serving.plan_children(s, resolved_all(s), CTX, set()).objects if o["kind"] == "Deployment"
        )
        return {e["name"]: e.get("value", "") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}

    assert not any(k.startswith("MODELSHIP_DRIFT") for k in env_of(spec()))  # unset: the server's defaults
    env = env_of(spec(monitoring={"psiAlert": 0.3, "minSamples": 50, "window": 2000, "ignoreFeatures": ["id", "ts"]}))
    assert {k: v for k, v in env.items() if k.startswith("MODELSHIP_DRIFT")} == {
        "MODELSHIP_DRIFT": "true",
        "MODELSHIP_DRIFT_WINDOW": "2000",
        "MODELSHIP_DRIFT_MIN_SAMPLES": "50",
        "MODELSHIP_DRIFT_PSI_WARN": "0.1",
        "MODELSHIP_DRIFT_PSI_ALERT": "0.3",
        "MODELSHIP_DRIFT_IGNORE": "id,ts",
    }
    # the deprecated driftThreshold is the alert band when given; off reaches the server too
    env = env_of(spec(monitoring={"driftThreshold": 0.4, "enabled": False}))
    assert env["MODELSHIP_DRIFT_PSI_ALERT"] == "0.4" and env["MODELSHIP_DRIFT"] == "false"


@pytest.mark.parametrize(
    ("routing", "track"), [(None, "stable"), (None, "canary"), (GATEWAY, "stable"), (GATEWAY, "canary")]
)
def test_every_pod_that_answers_clients_finds_its_peers_and_a_shadow_does_not(
    routing: dict[str, Any] | None, track: str
) -> None:
    fields: dict[str, Any] = {
        "variants": [
            {"name": "main", "stage": "Production", "weight": 100, "replicas": 2},
            {"name": "s", "version": 3, "weight": 0, "shadow": True, "replicas": 1},
        ]
    }
    if routing:
        fields["routing"] = routing
    s = spec(**fields)
    r = resolved_all(s)
    old = serving.Resolved("main", version=1, model_version="v1", source="runs:/v1/model")
    canary = serving.CanaryPlan("main", stable=old, candidate=r["main"], weight=25) if track == "canary" else None
    objects = serving.plan_children(s, r, CTX, {"iris-main"}, canary).objects
    peers = next(o for o in objects if o["metadata"]["name"] == "iris--peers")
    assert peers["kind"] == "Service" and peers["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert peers["spec"]["clusterIP"] == "None" and peers["spec"]["publishNotReadyAddresses"] is False
    assert peers["spec"]["selector"] == {serving.LABEL_DEPLOYMENT: "iris", serving.LABEL_ANSWERS: "true"}
    assert peers["metadata"]["labels"][serving.LABEL_DEPLOYMENT] == "iris"  # pruned with the others
    deps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    answering = ["iris-main", "iris-main-canary"] if track == "canary" else ["iris-main"]
    assert sorted(deps) == sorted([*answering, "iris-s"])
    for name, dep in deps.items():
        pod = dep["spec"]["template"]
        env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
        if name == "iris-s":
            assert serving.LABEL_ANSWERS not in pod["metadata"]["labels"] and "MODELSHIP_FEEDBACK_PEERS" not in env
            continue
        assert pod["metadata"]["labels"][serving.LABEL_ANSWERS] == "true"
        assert env["MODELSHIP_FEEDBACK_PEERS"]["value"] == "iris--peers.team.svc:8080"
        assert env["MODELSHIP_POD_IP"]["valueFrom"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}


@pytest.mark.parametrize(("deployment", "variant"), [("iris", "peers"), ("iris", "x--peers"), ("a" * 60, "peers")])
def test_the_peers_service_is_no_variant_service(deployment: str, variant: str) -> None:
    name = serving.peers_name(deployment)
    assert len(name) <= 63 and name.endswith("--peers")
    assert name != serving.variant_name(deployment, variant) != serving.canary_name(deployment, variant)
