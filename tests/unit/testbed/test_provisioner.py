"""The bed's volume provisioner: which claims it serves, the volume it makes, what it deletes."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cluster import addons
from tests.cluster.provisioner import (
    ANN_PROVISIONED_BY,
    ANN_PROVISIONER,
    ANN_SELECTED_NODE,
    claim_needs_volume,
    volume_for_claim,
    volume_to_delete,
)

SC = addons.storage_class()
CLASSES = {
    SC["metadata"]["name"]: SC,
    "immediate": {**SC, "metadata": {"name": "immediate"}, "volumeBindingMode": "Immediate"},
    "other": {**SC, "metadata": {"name": "other"}, "provisioner": "ebs.csi.aws.com"},
}


def claim(sc: str = "standard", annotations: dict | None = None, **spec: object) -> dict:
    return {
        "metadata": {
            "name": "data",
            "namespace": "team",
            "uid": "1234-abcd",
            "annotations": {ANN_PROVISIONER: addons.PROVISIONER_NAME, ANN_SELECTED_NODE: "bed-node-0"}
            if annotations is None
            else annotations,
        },
        "spec": {
            "storageClassName": sc,
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            **spec,
        },
    }


@pytest.mark.parametrize(
    ("pvc", "needed"),
    [
        (claim(), True),
        # WaitForFirstConsumer: not before the scheduler has chosen the node.
        (claim(annotations={ANN_PROVISIONER: addons.PROVISIONER_NAME}), False),
        (claim("immediate", annotations={ANN_PROVISIONER: addons.PROVISIONER_NAME}), True),
        # The PV controller has not handed it to us (or handed it to another provisioner).
        (claim(annotations={}), False),
        (claim(annotations={ANN_PROVISIONER: "ebs.csi.aws.com", ANN_SELECTED_NODE: "n"}), False),
        (claim("other"), False),
        (claim("missing"), False),
        (claim(volumeName="pvc-already"), False),
    ],
)
def test_claim_needs_volume(pvc: dict, needed: bool) -> None:
    assert claim_needs_volume(pvc, CLASSES) is needed


def test_volume_reserves_a_directory_for_the_claim(tmp_path: Path) -> None:
    pv = volume_for_claim(claim(), SC, tmp_path, "bed-node-0")
    assert pv["metadata"]["name"] == "pvc-1234-abcd"
    assert pv["metadata"]["annotations"] == {ANN_PROVISIONED_BY: addons.PROVISIONER_NAME}
    spec = pv["spec"]
    assert spec["claimRef"] == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": "team",
        "name": "data",
        "uid": "1234-abcd",
    }
    assert (spec["capacity"], spec["accessModes"], spec["storageClassName"]) == (
        {"storage": "1Gi"},
        ["ReadWriteOnce"],
        "standard",
    )
    assert spec["persistentVolumeReclaimPolicy"] == "Delete"
    assert Path(spec["hostPath"]["path"]).parent == tmp_path
    terms = spec["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms == [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["bed-node-0"]}]}
    ]


@pytest.mark.parametrize(
    ("annotations", "policy", "phase", "delete"),
    [
        ({ANN_PROVISIONED_BY: addons.PROVISIONER_NAME}, "Delete", "Released", True),
        ({ANN_PROVISIONED_BY: addons.PROVISIONER_NAME}, "Delete", "Bound", False),
        ({ANN_PROVISIONED_BY: addons.PROVISIONER_NAME}, "Retain", "Released", False),
        ({}, "Delete", "Released", False),
        ({ANN_PROVISIONED_BY: "ebs.csi.aws.com"}, "Delete", "Released", False),
    ],
)
def test_volume_to_delete(annotations: dict, policy: str, phase: str, delete: bool) -> None:
    pv = {
        "metadata": {"name": "pvc-x", "annotations": annotations},
        "spec": {"persistentVolumeReclaimPolicy": policy},
        "status": {"phase": phase},
    }
    assert volume_to_delete(pv) is delete
