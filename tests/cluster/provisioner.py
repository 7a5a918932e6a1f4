"""The bed's dynamic volume provisioner: hostPath PersistentVolumes for the default StorageClass.

It speaks the protocol every external provisioner speaks with kube-controller-manager's
PersistentVolume controller: the controller marks a claim of our StorageClass with
``volume.kubernetes.io/storage-provisioner`` (and, the class being WaitForFirstConsumer,
the scheduler names the node in ``volume.kubernetes.io/selected-node``); we create a
PersistentVolume with a ``claimRef`` and a directory on the node; the controller binds the
two. When a claim is deleted its volume is Released, and with reclaim policy Delete we
remove the directory and the volume.

Ours rather than Rancher's local-path-provisioner: that one creates and removes the
directories through helper pods of the ``busybox`` image, which the bed cannot run (it
has no container engine, and busybox is no Go module to build); this one does the same
directly, on the one node there is, in about a hundred lines.

    python -m tests.cluster.provisioner --kubeconfig K --root DIR --node-name N
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tests.cluster.addons import PROVISIONER_NAME
from tests.cluster.kubeapi import ApiError, KubeApi, path_for

log = logging.getLogger("provisioner")
ANN_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_PROVISIONER_BETA = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"


def claim_needs_volume(pvc: dict[str, Any], classes: dict[str, dict[str, Any]]) -> bool:
    """An unbound claim the PV controller handed to us (and, when delayed, whose node is chosen)."""
    meta, spec = pvc["metadata"], pvc.get("spec", {})
    ann = meta.get("annotations") or {}
    if spec.get("volumeName") or meta.get("deletionTimestamp"):
        return False
    if PROVISIONER_NAME not in (ann.get(ANN_PROVISIONER), ann.get(ANN_PROVISIONER_BETA)):
        return False
    sc = classes.get(spec.get("storageClassName") or "")
    if sc is None or sc.get("provisioner") != PROVISIONER_NAME:
        return False
    return sc.get("volumeBindingMode") != "WaitForFirstConsumer" or ANN_SELECTED_NODE in ann


def volume_name(pvc: dict[str, Any]) -> str:
    return f"pvc-{pvc['metadata']['uid']}"


def volume_for_claim(pvc: dict[str, Any], sc: dict[str, Any], root: Path, node: str) -> dict[str, Any]:
    """The PersistentVolume for a claim: a directory under root, reserved for that claim by claimRef."""
    meta, spec = pvc["metadata"], pvc["spec"]
    name = volume_name(pvc)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {ANN_PROVISIONED_BY: PROVISIONER_NAME}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": sc["metadata"]["name"],
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "hostPath": {"path": str(root / f"{meta['namespace']}_{meta['name']}_{name}"), "type": "DirectoryOrCreate"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}
                    ]
                }
            },
        },
    }


def volume_to_delete(pv: dict[str, Any]) -> bool:
    """A volume of ours whose claim is gone, under reclaim policy Delete."""
    ours = (pv["metadata"].get("annotations") or {}).get(ANN_PROVISIONED_BY) == PROVISIONER_NAME
    spec = pv.get("spec", {})
    return (
        ours
        and spec.get("persistentVolumeReclaimPolicy") == "Delete"
        and pv.get("status", {}).get("phase") in ("Released", "Failed")
    )


class Provisioner:
    def __init__(self, api: KubeApi, root: Path, node: str):
        self.api, self.root, self.node = api, root, node

    def reconcile_once(self) -> None:
        classes = {sc["metadata"]["name"]: sc for sc in self.api.get("/apis/storage.k8s.io/v1/storageclasses")["items"]}
        for pvc in self.api.get("/api/v1/persistentvolumeclaims")["items"]:
            if claim_needs_volume(pvc, classes):
                self._provision(pvc, classes[pvc["spec"]["storageClassName"]])
        for pv in self.api.get("/api/v1/persistentvolumes")["items"]:
            if volume_to_delete(pv):
                self._delete(pv)

    def _provision(self, pvc: dict[str, Any], sc: dict[str, Any]) -> None:
        pv = volume_for_claim(pvc, sc, self.root, self.node)
        Path(pv["spec"]["hostPath"]["path"]).mkdir(parents=True, exist_ok=True)
        try:
            self.api.create("/api/v1/persistentvolumes", pv)
            log.info(
                "provisioned %s for %s/%s",
                pv["metadata"]["name"],
                pvc["metadata"]["namespace"],
                pvc["metadata"]["name"],
            )
        except ApiError as exc:
            if exc.status != 409:  # made on an earlier pass; the PV controller binds it
                raise

    def _delete(self, pv: dict[str, Any]) -> None:
        path = Path(pv["spec"].get("hostPath", {}).get("path", ""))
        if path.parent == self.root:  # never remove anything outside the provisioner's directory
            shutil.rmtree(path, ignore_errors=True)
        try:
            self.api.delete(path_for("v1", "persistentvolumes", None, pv["metadata"]["name"]))
            log.info("deleted %s (claim released)", pv["metadata"]["name"])
        except ApiError as exc:
            if exc.status != 404:
                raise

    def run(self, interval: float = 0.5) -> None:
        while True:
            try:
                self.reconcile_once()
            except Exception as exc:  # noqa: BLE001 - the API may be restarting; try again
                log.warning("reconcile failed: %s", exc)
            time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--root", required=True, type=Path, help="where the volumes' directories are made")
    p.add_argument("--node-name", default="bed-node-0")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args.root.mkdir(parents=True, exist_ok=True)
    Provisioner(KubeApi.from_kubeconfig(args.kubeconfig), args.root.resolve(), args.node_name).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
