"""Every pod Modelship makes passes Pod Security ``restricted`` and has resources on every container.

The pods: the chart's (operator, tracking server, the ``helm test`` pods) with several value
sets, ``manifests/install.yaml``'s, a trial Job's (checkout init container, tracking sidecar,
trainer) and a model server's. ``violations`` is the profile's rules as
https://kubernetes.io/docs/concepts/security/pod-security-standards/ lists them for
``restricted`` (which includes ``baseline``); the e2e suite has the API server itself enforce
them (its namespaces carry ``pod-security.kubernetes.io/enforce: restricted``), this test
names the field to fix without a cluster.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.experiments.helpers import spec as experiment_spec
from tests.unit.serving.test_deployment_plan import CTX, resolved_all
from tests.unit.serving.test_deployment_plan import spec as deployment_spec
from tests.unit.test_install import INSTALL, _docs, _render

from modelship.resources import serving
from modelship.resources.experiment import (
    CHECKOUT_RESOURCES,
    SIDECAR_RESOURCES,
    TRAINER_RESOURCES,
    Owner,
    build_trial_job,
)

ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def violations(pod: dict[str, Any]) -> list[str]:
    """What keeps ``pod`` (a PodSpec) from passing ``restricted``, as "field: why" lines."""
    out: list[str] = []
    pod_sc = pod.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            out.append(f"spec.{key}: must be unset or false")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            out.append(f"volume {volume['name']}: {sorted(kinds - ALLOWED_VOLUMES)} is not allowed")
    if pod_sc.get("runAsUser") == 0:
        out.append("spec.securityContext.runAsUser: 0 is root")
    containers = [(f"{kind}[{c['name']}]", c) for kind in ("initContainers", "containers") for c in pod.get(kind) or []]
    for where, c in containers:
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f"{where}.securityContext.privileged: must be false")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{where}.securityContext.allowPrivilegeEscalation: must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{where}.securityContext.capabilities.drop: must include ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{where}.securityContext.capabilities.add: only NET_BIND_SERVICE")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            out.append(f"{where}: runAsNonRoot must be true (pod or container)")
        if sc.get("runAsUser") == 0:
            out.append(f"{where}.securityContext.runAsUser: 0 is root")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{where}: seccompProfile.type must be RuntimeDefault or Localhost (pod or container)")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            out.append(f"{where}.ports: no hostPort")
        resources = c.get("resources") or {}
        if not (resources.get("requests") or {}).get("memory") or not (resources.get("requests") or {}).get("cpu"):
            out.append(f"{where}.resources.requests: cpu and memory are needed (Modelship's own rule)")
        if not (resources.get("limits") or {}).get("memory"):
            out.append(f"{where}.resources.limits.memory: needed (Modelship's own rule)")
    return out


def test_violations_finds_each_rule() -> None:
    """The checker itself: a pod that breaks every rule is told about each."""
    bad = {
        "hostNetwork": True,
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "containers": [
            {
                "name": "c",
                "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}, "runAsUser": 0},
                "ports": [{"containerPort": 80, "hostPort": 80}],
            }
        ],
    }
    found = "\n".join(violations(bad))
    for needle in (
        "hostNetwork",
        "hostPath",
        "privileged",
        "allowPrivilegeEscalation",
        "drop: must include ALL",
        "capabilities.add",
        "runAsNonRoot",
        "runAsUser: 0",
        "seccompProfile",
        "hostPort",
        "requests",
        "limits.memory",
    ):
        assert needle in found, needle


def _pods_of(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    pods = []
    for obj in objects:
        if obj["kind"] == "Pod":
            pods.append((f"Pod/{obj['metadata']['name']}", obj["spec"]))
        elif obj["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            pods.append((f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"]))
    return pods


CHART_VALUE_SETS = [
    (),
    ("peering.enabled=true", "operator.replicas=2", "operator.watchNamespaces={a,b}"),
    ("tracking.registry.enabled=false", "tracking.persistence.enabled=false"),
    ("tracking.enabled=false",),
]


@pytest.mark.parametrize("sets", CHART_VALUE_SETS, ids=lambda s: ",".join(s) or "defaults")
def test_the_charts_pods_are_restricted(sets: tuple[str, ...]) -> None:
    pods = _pods_of(list(_render(*sets).values()))
    assert any(name.startswith("Pod/") for name, _ in pods), "the helm test pods are rendered too"
    assert {name: violations(pod) for name, pod in pods} == {name: [] for name, _ in pods}


def test_the_install_yamls_pods_are_restricted() -> None:
    pods = _pods_of(_docs(INSTALL))
    assert len(pods) == 2
    assert {name: violations(pod) for name, pod in pods} == {name: [] for name, _ in pods}


def _trial_pod(**changes: Any) -> dict[str, Any]:
    job = build_trial_job(
        Owner(name="iris", namespace="ml", uid="u"),
        experiment_spec(**changes),
        number=0,
        parameters={"C": 1.0},
        run_id="r0",
        experiment_id="1",
        tracking_url="http://tracking:5000",
        default_image="ghcr.io/modelship/modelship:0.1.0",
    )
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize(
    "changes",
    [{}, {"project": {"image": "ghcr.io/modelship/modelship:dev", "entryPoint": "main"}}],
    ids=["git checkout", "image only"],
)
def test_trial_pods_are_restricted(changes: dict[str, Any]) -> None:
    pod = _trial_pod(**changes)
    assert violations(pod) == []
    names = [c["name"] for c in pod.get("initContainers", []) + pod["containers"]]
    assert names == (["checkout", "tracking", "trainer"] if not changes else ["tracking", "trainer"])


def test_trial_resources_default_and_are_set_per_experiment() -> None:
    def by_name(pod: dict[str, Any]) -> dict[str, Any]:
        return {c["name"]: c["resources"] for c in pod["initContainers"] + pod["containers"]}

    assert by_name(_trial_pod()) == {
        "checkout": CHECKOUT_RESOURCES,
        "tracking": SIDECAR_RESOURCES,
        "trainer": TRAINER_RESOURCES,
    }
    trainer = {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "8Gi", "nvidia.com/gpu": 1}}
    sidecar = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
    checkout = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}
    assert by_name(_trial_pod(resources=trainer, sidecarResources=sidecar, checkoutResources=checkout)) == {
        "checkout": checkout,
        "tracking": sidecar,
        "trainer": trainer,
    }


def test_model_server_pods_are_restricted() -> None:
    s = deployment_spec(
        variants=[
            {"name": "blue", "stage": "Production", "weight": 90},
            {"name": "green", "alias": "challenger", "weight": 10, "resources": {"requests": {"cpu": "1"}}},
        ]
    )
    plan = serving.plan_children(s, resolved_all(s), CTX, set())
    pods = _pods_of(plan.objects)
    assert len(pods) == 2
    found = {name: violations(pod) for name, pod in pods}
    # A variant's own resources are the user's: without a memory request or limit, only our rule speaks.
    assert found["Deployment/iris-blue"] == []
    assert all("Modelship's own rule" in v for v in found["Deployment/iris-green"])
