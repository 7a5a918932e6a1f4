"""The closed loop of a ModelDeployment (``spec.monitoring.retrain``): observe, plan, apply.

Called by the ModelDeployment's reconcile once DriftDetected is computed. What it reads
comes from kopf indices kept by watches the operator has anyway (Experiments and
ModelVersions), so following a retraining costs no API call: the template Experiment by
name, the retraining Experiments by their owner, and the ModelVersions that Experiments
registered by name. The plan is :func:`modelship.resources.retrain.plan_retrain` (pure);
the one write is creating the retraining Experiment (idempotent: a 409 means an operator
before a restart created it). The template is only read: its ``suspend`` stays as written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import kopf

from modelship import kube
from modelship.api import GROUP, VERSION, ModelDeploymentSpec
from modelship.resources import retrain
from modelship.resources.conditions import find_condition
from modelship.resources.experiment import LABEL_EXPERIMENT, Owner
from modelship.resources.registry import GATES_PASSED

log = logging.getLogger(__name__)
EXPERIMENTS_INDEX = "retrain_experiments"
CHILDREN_INDEX = "retrain_children"
VERSIONS_INDEX = "retrain_modelversions"


# --- indices ---------------------------------------------------------------------------------
def index_experiments(body: kopf.Body, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """Experiments by (namespace, name): a template's spec is what a retraining copies."""
    return {(body.metadata.namespace or "", body.metadata.name or ""): {"spec": dict(body.get("spec") or {})}}


def index_children(body: kopf.Body, **_: Any) -> dict[tuple[str, str], retrain.Child]:
    """Retraining Experiments by (namespace, owning ModelDeployment's uid)."""
    owners = [r.get("uid") for r in body.metadata.get("ownerReferences") or [] if r.get("kind") == "ModelDeployment"]
    number = str(body.metadata.labels.get(retrain.LABEL_RETRAIN_NUMBER) or "")
    if not owners or not number.isdigit():
        return {}
    status = body.get("status") or {}
    child = retrain.Child(
        name=body.metadata.name or "",
        number=int(number),
        phase=status.get("phase"),
        model_version=status.get("modelVersion"),
        conditions=tuple(dict(c) for c in status.get("conditions") or []),
        summary=status.get("trialsSummary"),
    )
    return {(body.metadata.namespace or "", str(owners[0])): child}


def index_versions(body: kopf.Body, **_: Any) -> dict[tuple[str, str], retrain.Version]:
    """ModelVersions that Experiments registered, by (namespace, name)."""
    spec, status = body.get("spec") or {}, body.get("status") or {}
    version = retrain.Version(
        name=body.metadata.name or "",
        version=status.get("version"),
        stage=status.get("stage"),
        requested_stage=str(spec.get("stage") or "None"),
        aliases=tuple(spec.get("aliases") or ()),
        held_aliases=tuple(status.get("aliases") or ()),
        gates=find_condition(status.get("conditions"), GATES_PASSED),
    )
    return {(body.metadata.namespace or "", body.metadata.name or ""): version}


def _one(index: kopf.Index[Any, Any] | None, key: tuple[str, str]) -> Any:
    if index is None:
        return None
    for item in index.get(key, []):
        return item
    return None


# --- observe, plan, apply --------------------------------------------------------------------
def step(
    spec: ModelDeploymentSpec,
    owner: Owner,
    *,
    drift: tuple[str, str],
    old: Mapping[str, Any] | None,
    rollout: retrain.Rollout,
    indices: Mapping[str, kopf.Index[Any, Any] | None],
    now: datetime,
    event: Callable[[str, str, str], None],
) -> retrain.RetrainPlan:
    """One look at the loop: observe from the indices, plan, create the Experiment it asks for,
    post its Events; return the plan (its status and RetrainReady condition)."""
    assert spec.monitoring is not None and spec.monitoring.retrain is not None
    namespace = owner.namespace
    template = _one(indices.get(EXPERIMENTS_INDEX), (namespace, spec.monitoring.retrain.experiment_template))
    children_index = indices.get(CHILDREN_INDEX)
    children = list(children_index.get((namespace, owner.uid), [])) if children_index is not None else []
    names = {str((old or {}).get("current", {}).get("modelVersion") or "")} | {
        c.model_version for c in children if c.model_version
    }
    versions = {n: v for n in names if n and (v := _one(indices.get(VERSIONS_INDEX), (namespace, n))) is not None}
    plan = retrain.plan_retrain(
        spec,
        owner,
        drift=drift,
        old=old,
        template=template,
        children=children,
        versions=versions,
        rollout=rollout,
        now=now,
    )
    if plan.create is not None:
        created = kube.ensure(kube.custom_path(namespace, "experiments"), plan.create)
        log.info(
            "retraining Experiment %s/%s %s for ModelDeployment %s",
            namespace,
            plan.create["metadata"]["name"],
            "created" if created else "already existed",
            owner.name,
        )
    for e in plan.events:
        event(e.type, e.reason, e.message)
    return plan


def register(registry: kopf.OperatorRegistry) -> None:
    """The indices the loop reads (the operator watches these kinds anyway)."""
    kopf.index(GROUP, VERSION, "experiments", id=EXPERIMENTS_INDEX, registry=registry)(index_experiments)
    kopf.index(
        GROUP,
        VERSION,
        "experiments",
        id=CHILDREN_INDEX,
        registry=registry,
        labels={retrain.LABEL_RETRAIN_OF: kopf.PRESENT},
    )(index_children)
    kopf.index(
        GROUP,
        VERSION,
        "modelversions",
        id=VERSIONS_INDEX,
        registry=registry,
        labels={LABEL_EXPERIMENT: kopf.PRESENT},
    )(index_versions)
