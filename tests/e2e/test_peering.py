"""kopf's peering pauses the loops beside its handlers too (controllers/peering.py).

An operator of one namespace runs with ``--peering`` as the chart runs its replicas (the
chart's peering CRDs, KopfPeering and RBAC, rendered by helm, with the chart's
ServiceAccount). A peer of a higher priority written into the KopfPeering pauses kopf's
handlers and, from the same record, the operator's one PeeringPause, which the
ModelDeployment follower and the webhook deliverer ask before each round (that both ask it
is tests/unit/test_peering.py's); its record removed, all resume. The operator's identity
in kopf's record is the one it reads the record with: otherwise it would count itself a
peer of its own priority and never work."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cluster.kubeapi import ApiError, KubeApi, path_for
from tests.conftest import wait
from tests.e2e.conftest import chart_rbac, install_operator_identity, operator_process

PEERING = "modelship"
RELEASE = "peers"  # the chart's RBAC of this release, beside the session operator's
PRIORITY = 10


def peering_objects(namespace: str) -> list[dict[str, Any]]:
    """The chart's kopf peering CRDs and the namespace's KopfPeering (peering.enabled)."""
    from scripts.render_install import CHART, KUBE_VERSION, find_helm

    helm = find_helm()
    assert helm, "helm is needed to render the chart: scripts/setup.sh builds it (MODELSHIP_HELM names it)"
    out = subprocess.run(
        [helm, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "--show-only", "templates/peering.yaml",
         "--set", "peering.enabled=true", "--set", f"operator.watchNamespaces={{{namespace}}}"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [o for o in yaml.safe_load_all(out) if o]


@pytest.fixture
def peering_namespace(kube: KubeApi, namespace: str, crds: list[dict]) -> Iterator[str]:
    """The namespace with its KopfPeering, the CRDs made when the bed has none (and removed after)."""
    objects = peering_objects(namespace)
    made = []
    for crd in [o for o in objects if o["kind"] == "CustomResourceDefinition"]:
        path = path_for("apiextensions.k8s.io/v1", "customresourcedefinitions")
        try:
            kube.create(path, crd)
            made.append(f"{path}/{crd['metadata']['name']}")
        except ApiError as exc:
            if exc.status != 409:
                raise
    (peering,) = [o for o in objects if o["kind"] == "KopfPeering"]
    wait(
        lambda: _created(kube, path_for("kopf.dev/v1", "kopfpeerings", namespace), peering),
        60,
        "the KopfPeering accepted (its CRD established)",
    )
    try:
        yield namespace
    finally:
        for path in made:
            kube.delete(path)


def _created(kube: KubeApi, path: str, obj: dict[str, Any]) -> bool:
    try:
        kube.create(path, obj)
    except ApiError as exc:
        if exc.status == 404:
            return False  # the CRD is not served yet
        raise
    return True


@pytest.fixture
def peer_operator(
    bed, kube: KubeApi, peering_namespace: str, tracking_server: str, webhook_receiver: Any, tmp_path: Path
) -> Iterator[Any]:
    from tests.cluster.processes import wait_for
    from tests.local_servers import free_port

    rbac = chart_rbac("--set", "peering.enabled=true", "--set", f"operator.watchNamespaces={{{peering_namespace}}}",
                      release=RELEASE)  # fmt: skip
    kubeconfig = install_operator_identity(bed, kube, rbac, tmp_path / "kubeconfig")
    health = free_port()
    proc = operator_process(
        bed,
        "peer-operator",
        tmp_path / "operator",
        health,
        tracking_server,
        "--metrics-port",
        "0",
        "--peering",
        PEERING,
        "--priority",
        str(PRIORITY),
        "--log-format",
        "text",
        # a deliverer, which asks the pause at every round (the follower asks only when one
        # of its ModelDeployments is due, and this namespace has none)
        "--webhook-url",
        webhook_receiver.url,
        kubeconfig=kubeconfig,
        # and a namespace not created yet, as the chart's watchNamespaces may name one: it has
        # no KopfPeering and no Role to read one with, and is not read
        scope=("--namespace", peering_namespace, "--namespace", f"{peering_namespace}-later"),
    )

    def live() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=2) as resp:
            return resp.status == 200

    proc.start()
    try:
        wait_for(live, 60, "the peering operator's liveness", processes=[proc])
        yield proc
    finally:
        proc.stop()
        print(f"--- peering operator log\n{proc.tail(60)}")
        for obj in rbac:  # the namespaced ones go with the namespace
            if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                kube.delete(path_for("rbac.authorization.k8s.io/v1", obj["kind"].lower() + "s", None,
                                     obj["metadata"]["name"]))  # fmt: skip


def test_a_peer_of_higher_priority_pauses_the_loops_beside_kopfs_handlers(
    kube: KubeApi, peering_namespace: str, peer_operator: Any
) -> None:
    path = path_for("kopf.dev/v1", "kopfpeerings", peering_namespace, PEERING)

    def log() -> str:
        return str(peer_operator.log_path.read_text(errors="replace"))

    # kopf records the replica under the identity the operator announced and reads peers by.
    status = wait(lambda: kube.get(path).get("status") or None, 60, "the operator's record in the KopfPeering")
    ((identity, record),) = status.items()
    assert record["priority"] == PRIORITY, record
    assert f"peering {PEERING!r} as {identity!r} at priority {PRIORITY}" in log()

    lastseen = datetime.now(UTC).isoformat()
    kube.patch(path, {"status": {"intruder": {"priority": PRIORITY + 1, "lifetime": 120, "lastseen": lastseen}}})
    wait(lambda: "Pausing operations in favour of" in log(), 60, "kopf's handlers paused")
    # The follower and the deliverer, from the same record: the intruder alone (not the
    # replica itself, which a wrong identity would count as a peer of its own priority).
    wait(lambda: "paused beside kopf's handlers in favour of intruder\n" in log(), 60, "the loops paused")
    assert "paused beside kopf's handlers in favour of intruder, " not in log()

    kube.patch(path, {"status": {"intruder": None}})
    wait(lambda: "Resuming operations after the pause" in log(), 60, "kopf's handlers resumed")
    wait(lambda: "peering: resumed, no live peer of priority 10 or higher" in log(), 60, "the loops resumed")

    # Its peering objects were read and none refused (a 403 is logged, "may not read"): not
    # one in the namespace not created yet, where no Role would grant it.
    assert "peering: may not read" not in log() and "peering: cannot" not in log()
    # nor did the deliverer's scans fail on it (a 403 there failed every namespace's webhooks)
    assert "webhook delivery scan failed" not in log() and "webhooks: may not list" not in log()
