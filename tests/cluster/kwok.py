"""Fake nodes for scale tests: kwok (``sigs.k8s.io/kwok``) on the bed, as an option.

kwok is a controller, not a kubelet: it watches the Nodes that carry its label, keeps
them Ready (status and a Lease heartbeat), and plays Stage objects on the pods bound to
them — the "fast" stages mark a pod Running and Ready at once, with an address from its own
range, and delete it at once when it is deleted. Nothing runs. So a scale test can have
hundreds of pods that are Ready for the control plane (ReplicaSets, Deployments,
EndpointSlices) for the cost of a status write each.

The fake nodes and the real node agent never share a pod: the agent runs only the pods
bound to ``bed-node-0``, kwok only those bound to nodes labelled ``type=kwok``, and each
fake node carries the taint ``kwok.x-k8s.io/node=fake:NoSchedule``, so only a pod that
tolerates it is scheduled there (``taint=False`` leaves it off, for a bed whose test
cordons the real node instead: a workload whose pod template has no toleration then lands
on the fake nodes).

Pure builders (:func:`node`, :func:`kwok_argv`, :func:`pod_cidr`) and one applier
(:func:`start`); kwok runs in the node's network namespace like every other process of the
bed, so ``bed down`` stops it with the rest.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.cluster.network import BedNetwork
from tests.cluster.processes import Process

LABEL = "type"
LABEL_VALUE = "kwok"
SELECTOR = f"{LABEL}={LABEL_VALUE}"
TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
TOLERATION = {"key": TAINT["key"], "operator": "Equal", "value": TAINT["value"], "effect": TAINT["effect"]}
"""What a pod spec needs to be scheduled onto a tainted fake node."""
NAME_PREFIX = "bed-kwok-"


def node_name(i: int) -> str:
    return f"{NAME_PREFIX}{i}"


def pod_cidr(network: BedNetwork) -> str:
    """The fake pods' addresses: a /23 of 198.18.128.0/17 per bed index, outside the bed's
    routed ranges (the real pods' 198.18.N.0/24, services and uplink in 198.19.0.0/16). They
    are never routed: no process answers there."""
    return f"198.18.{128 + 2 * network.index}.0/23"


def node(i: int, *, taint: bool = True) -> dict[str, Any]:
    """Fake node ``i``: labelled for kwok, tainted unless ``taint`` is False. kwok writes its
    status (Ready, addresses, capacity 1k CPU / 1 Ti / 1M pods)."""
    name = node_name(i)
    spec: dict[str, Any] = {"taints": [dict(TAINT)]} if taint else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {LABEL: LABEL_VALUE, "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": spec,
    }


def kwok_argv(bin_dir: Path, kubeconfig: Path, network: BedNetwork) -> list[str]:
    """kwok managing the nodes labelled ``type=kwok``, with the module's "fast" stages and no
    server of its own (no logs/exec/port-forward for fake pods: nothing runs in them)."""
    stages = bin_dir.parent / "manifests" / "stages.yaml"
    cidr = pod_cidr(network)
    return [
        str(bin_dir / "kwok"),
        f"--config={stages}",
        f"--kubeconfig={kubeconfig}",
        f"--manage-nodes-with-label-selector={SELECTOR}",
        f"--cidr={cidr}",
        "--node-lease-duration-seconds=40",
    ]


def build() -> Path:
    """``build.sh kwok`` (a no-op when cached): kwok's bin directory."""
    script = Path(__file__).with_name("build.sh")
    out = subprocess.run(["bash", str(script), "kwok"], check=True, stdout=subprocess.PIPE, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def start(bin_dir: Path, kubeconfig: Path, network: BedNetwork, log_dir: Path) -> Process:
    return Process("kwok", kwok_argv(bin_dir, kubeconfig, network), log_dir, wrap=network.in_node).start()


def ready_nodes(nodes: list[dict[str, Any]]) -> list[str]:
    """Names of the fake nodes among ``nodes`` whose Ready condition is True."""
    out = []
    for n in nodes:
        if (n.get("metadata") or {}).get("labels", {}).get(LABEL) != LABEL_VALUE:
            continue
        conds = {c.get("type"): c.get("status") for c in (n.get("status") or {}).get("conditions") or []}
        if conds.get("Ready") == "True":
            out.append(n["metadata"]["name"])
    return out
