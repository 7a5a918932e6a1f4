"""Every pod Modelship makes passes Pod Security ``restricted`` and has resources on every container.

The pods: the chart's (operator, tracking server, the ``helm test`` pods) with several value
sets, ``manifests/install.yaml``'s, a trial Job's (checkout init container, tracking sidecar,
trainer; with ``spec.evaluate`` the trainer as the last init container and the evaluation)
and a model server's.

``restricted`` is judged by the API server's own library, ``k8s.io/pod-security-admission``
at the bed's release (tests/tools/podsecurity.py builds and runs it): its forbidden reasons
and details name the container and the field to set, e.g. ``runAsNonRoot != true: pod or
container "c" must set securityContext.runAsNonRoot=true``. The e2e suite has the API server
enforce the same (its namespaces carry ``pod-security.kubernetes.io/enforce: restricted``).
The profile does not ask for resources: ``resource_gaps`` is Modelship's own rule (requests
for cpu and memory, a memory limit), in Python.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.tools import podsecurity
from tests.tools.kubeconform import kubernetes_version
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

EVALUATE = {"modelType": "classifier", "targets": "species", "dataArtifact": "data/test.csv"}


def resource_gaps(pod: dict[str, Any]) -> list[str]:
    """Containers of ``pod`` (a PodSpec) without cpu and memory requests or a memory limit."""
    out: list[str] = []
    for kind in ("initContainers", "containers"):
        for c in pod.get(kind) or []:
            resources = c.get("resources") or {}
            requests = resources.get("requests") or {}
            if not requests.get("memory") or not requests.get("cpu"):
                out.append(f"{kind}[{c['name']}].resources.requests: cpu and memory are needed")
            if not (resources.get("limits") or {}).get("memory"):
                out.append(f"{kind}[{c['name']}].resources.limits.memory: needed")
    return out


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] == "Pod":
        return dict(obj["spec"])
    if obj["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet", "ReplicaSet"):
        return dict(obj["spec"]["template"]["spec"])
    return None


def _restricted(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The library's verdict on each object that holds a pod: "reason: detail" per failed check."""
    status, results = podsecurity.check(objects)
    found = {r.key: [f"{reason}: {detail}" for reason, detail in r.forbidden] for r in results}
    assert len(found) == len(results), "two objects of one kind and name"
    assert status == (1 if any(found.values()) else 0), "the exit status says whether any failed"
    assert len(results) == sum(_pod_spec(o) is not None for o in objects), "every pod was checked"
    return found


def _assert_all_pass(objects: list[dict[str, Any]]) -> None:
    found = _restricted(objects)
    assert found == {key: [] for key in found}
    gaps = {f"{o['kind']}/{o['metadata']['name']}": resource_gaps(pod) for o in objects if (pod := _pod_spec(o))}
    assert gaps == {key: [] for key in gaps}


def _trial_job(**changes: Any) -> dict[str, Any]:
    return build_trial_job(
        Owner(name="iris", namespace="ml", uid="u"),
        experiment_spec(**changes),
        number=0,
        parameters={"C": 1.0},
        run_id="r0",
        experiment_id="1",
        tracking_url="http://tracking:5000",
        default_image="ghcr.io/modelship/modelship:0.1.0",
    )


def _trial_pod(**changes: Any) -> dict[str, Any]:
    pod: dict[str, Any] = _trial_job(**changes)["spec"]["template"]["spec"]
    return pod


# --- the check itself ---------------------------------------------------------------------


def test_the_library_is_at_the_beds_release() -> None:
    """Every k8s.io module of the program is at the release that matches the bed's Kubernetes."""
    bed = kubernetes_version()  # v1.36.3
    release = "v0." + bed.removeprefix("v1.")
    go_mod = (podsecurity.SOURCE / "go.mod").read_text()
    # The staging modules of the Kubernetes release (api, apimachinery, client-go, ...) carry its
    # v0.N.P; klog, utils and kube-openapi are versioned on their own (v2.x, pseudo-versions).
    pinned = dict(re.findall(r"^\s*(k8s\.io/\S+) (v0\.\d+\.\d+)(?:\s|$)", go_mod, re.MULTILINE))
    assert {"k8s.io/api", "k8s.io/apimachinery", "k8s.io/client-go"} <= set(pinned), pinned
    assert pinned["k8s.io/pod-security-admission"] == release
    assert set(pinned.values()) == {release}, pinned


def test_a_pod_without_run_as_non_root_is_refused_in_the_librarys_words() -> None:
    """The check can fail: a trial Job that drops runAsNonRoot from the pod and every
    container fails exactly that check, and the program exits non-zero."""
    job = _trial_job()
    pod = job["spec"]["template"]["spec"]
    del pod["securityContext"]["runAsNonRoot"]
    for c in pod["initContainers"] + pod["containers"]:
        c["securityContext"].pop("runAsNonRoot", None)
    status, (result,) = podsecurity.check([job])
    assert status == 1 and not result.allowed and result.key == f"Job/{job['metadata']['name']}"
    assert result.forbidden == (
        (
            "runAsNonRoot != true",
            'pod or containers "checkout", "tracking", "trainer" must set securityContext.runAsNonRoot=true',
        ),
    )


def test_the_library_reports_every_failed_check_at_restricted() -> None:
    """restricted, not baseline: the restricted-only checks speak as well as baseline's."""
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bad", "namespace": "ml"},
        "spec": {
            "hostNetwork": True,
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
            "containers": [
                {
                    "name": "c",
                    "image": "i",
                    "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}, "runAsUser": 0},
                    "ports": [{"containerPort": 80, "hostPort": 80}],
                }
            ],
        },
    }
    status, (result,) = podsecurity.check([bad])
    assert status == 1
    # restricted's checks replace some of baseline's (capabilities, volume types) with stricter ones.
    assert {reason for reason, _ in result.forbidden} == {
        "host namespaces",  # baseline's
        "privileged",
        "hostPort",
        "allowPrivilegeEscalation != false",  # restricted's
        "unrestricted capabilities",
        "restricted volume types",
        "runAsNonRoot != true",
        "runAsUser=0",
        "seccompProfile",
    }, result.forbidden
    # At baseline only baseline's checks speak.
    _, (baseline,) = podsecurity.check([bad], level="baseline")
    assert {reason for reason, _ in baseline.forbidden} == {
        "host namespaces",
        "privileged",
        "non-default capabilities",
        "hostPath volumes",
        "hostPort",
    }


def test_lists_are_read_item_by_item_and_a_misspelt_field_is_an_error(tmp_path: Path) -> None:
    """A v1 List (what ``kubectl get -o yaml`` prints) is checked item by item; decoding is
    strict, so a misspelt field (which would otherwise be dropped unseen) stops the check."""
    job = _trial_job()
    status, results = podsecurity.check([{"apiVersion": "v1", "kind": "List", "items": [job]}])
    assert status == 0 and [r.key for r in results] == [f"Job/{job['metadata']['name']}"]
    job["spec"]["template"]["spec"]["securityContext"]["runAsNonroot"] = True
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(job))
    done = subprocess.run([str(podsecurity.binary()), str(bad)], capture_output=True, text=True, check=False)
    assert done.returncode == 2, done
    assert 'unknown field "spec.template.spec.securityContext.runAsNonroot"' in done.stderr


def test_resource_gaps_names_each_container() -> None:
    pod = {
        "initContainers": [{"name": "a", "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}}}],
        "containers": [{"name": "b", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
    }
    assert resource_gaps(pod) == [
        "initContainers[a].resources.requests: cpu and memory are needed",
        "containers[b].resources.limits.memory: needed",
    ]


# --- every pod Modelship makes ------------------------------------------------------------

CHART_VALUE_SETS = [
    (),
    ("peering.enabled=true", "operator.replicas=2", "operator.watchNamespaces={a,b}"),
    ("tracking.registry.enabled=false", "tracking.persistence.enabled=false"),
    ("tracking.enabled=false",),
]


@pytest.mark.parametrize("sets", CHART_VALUE_SETS, ids=lambda s: ",".join(s) or "defaults")
def test_the_charts_pods_are_restricted(sets: tuple[str, ...]) -> None:
    objects = list(_render(*sets).values())
    assert any(o["kind"] == "Pod" for o in objects), "the helm test pods are rendered too"
    _assert_all_pass(objects)


def test_the_install_yamls_pods_are_restricted() -> None:
    objects = _docs(INSTALL)
    assert sum(_pod_spec(o) is not None for o in objects) == 2
    _assert_all_pass(objects)


@pytest.mark.parametrize(
    ("changes", "init", "main"),
    [
        ({}, ["checkout", "tracking"], ["trainer"]),
        ({"project": {"image": "ghcr.io/modelship/modelship:dev", "entryPoint": "main"}}, ["tracking"], ["trainer"]),
        ({"evaluate": EVALUATE}, ["checkout", "tracking", "trainer"], ["evaluate"]),
    ],
    ids=["git checkout", "image only", "with evaluate"],
)
def test_trial_pods_are_restricted(changes: dict[str, Any], init: list[str], main: list[str]) -> None:
    job = _trial_job(**changes)
    pod = job["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == init
    assert [c["name"] for c in pod["containers"]] == main
    _assert_all_pass([job])


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
    found = _restricted(copy.deepcopy(plan.objects))
    assert found == {"Deployment/iris-blue": [], "Deployment/iris-green": []}
    gaps = {o["metadata"]["name"]: resource_gaps(pod) for o in plan.objects if (pod := _pod_spec(o))}
    # A variant's own resources are the user's: without a memory request or limit, only our rule speaks.
    assert gaps["iris-blue"] == []
    assert gaps["iris-green"] == [
        "containers[model-server].resources.requests: cpu and memory are needed",
        "containers[model-server].resources.limits.memory: needed",
    ]
