"""ModelDeployment handlers: serve a model's versions, follow the registry, report the split.

Observe, plan, apply. What the handler reads comes from kopf indices kept by watches:
the ModelVersions of every model (so following a stage costs no API call), and the
Deployments and pods the operator made for ModelDeployments (watched with a server-side
label selector, :data:`WATCH_SELECTORS`: another team's Deployments and pods never reach
the operator), read while a variant is not fully ready to find the model server's own
message. The plan is the pure functions of :mod:`modelship.resources.serving`; the
children are applied with server-side apply and ownerReferences, and the ones no longer
wanted are deleted when the plan changed.

One operator-wide follower (:mod:`modelship.controllers.follower`, not a kopf timer per
object: a timer would put kopf's finalizer on every ModelDeployment) runs the same reconcile
every few seconds for each ModelDeployment whose world moved, so a promotion in the registry
(a ModelVersion's effective stage or alias moving) reaches the Deployments without any edit
of the ModelDeployment, and for each one with work that time brings due (:func:`_quiet_until`).
It applies when the plan changed since the last apply (a digest in kopf's per-object memo),
at once when a Deployment of the plan is gone from the watch (deleted by hand), and every 10
minutes regardless, so any other child deleted or edited by hand is put back; it writes
status only when it differs from what is stored, or from what this operator wrote last while
the watch has not shown that write yet (:func:`modelship.resources.status.known_status`).
No finalizer: the children go with the ModelDeployment through their ownerReferences, and a
delete needs no operator.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, cast

import kopf

from modelship import __version__, kube
from modelship.api import GROUP, VERSION, ModelDeploymentSpec, kind_by_name
from modelship.api.modeldeployment import Strategy, Variant
from modelship.controllers import follower as following
from modelship.controllers import retrain as retrain_loop
from modelship.controllers.common import (
    InvalidSpec,
    accept_into_scratch,
    register_reconcile,
    utcnow,
)
from modelship.controllers.drift import ready_pod_ips, scrape_drift, scrape_pods
from modelship.controllers.metrics import METRICS
from modelship.controllers.settings import OperatorConfig
from modelship.resources import abtest, canary, serving
from modelship.resources.conditions import READY, find_condition, make_condition, merge_conditions
from modelship.resources.drift import CONDITION as DRIFT_DETECTED
from modelship.resources.drift import DriftPlan, plan_drift
from modelship.resources.experiment import Owner
from modelship.resources.retrain import CONDITION as RETRAIN_READY
from modelship.resources.retrain import Rollout
from modelship.resources.status import Written, known_status, without_none

KIND = kind_by_name("ModelDeployment")
log = logging.getLogger(__name__)
FOLLOW_INTERVAL = 2.0
"""How often the follower looks at every ModelDeployment (a promotion reaches traffic this fast)."""
BODIES_INDEX = "modeldeployments_by_uid"
"""The kopf index of the ModelDeployments' newest bodies, from which the follower reconciles."""
FOLLOWER = "modeldeployment_follower"
"""The key of the follower in the operator's memo (and so in every object's)."""
RESYNC_SECONDS = 600.0
"""How often the children are applied with an unchanged plan (every one, to put back an edit by hand)."""
MISSING_GRACE_SECONDS = 30.0
"""A Deployment of the plan absent from the watch this long after the apply is applied again at once."""
STATUS_TRUST_SECONDS = 60.0
"""How long the operator's own last status write stands for the stored one while the watch
has not delivered it (a write that failed is made again after this long)."""
WATCH_SELECTORS = {("apps", "deployments"): serving.LABEL_DEPLOYMENT, ("v1", "pods"): serving.LABEL_DEPLOYMENT}
"""Server-side label selectors of the operator's watches (kopf's ``settings.watching.label_selectors``):
it watches only the Deployments and pods that carry a ModelDeployment's label."""
CHILD_KINDS = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("traefik.io/v1alpha1", "TraefikService"),
)


# --- indices ---------------------------------------------------------------------------------
def index_bodies(body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    """Every ModelDeployment's newest body by uid: what the follower reconciles from (every
    watch event updates it, status ones too, and a DELETED event takes it out)."""
    return {str(body.metadata.uid): dict(body)}


def index_model_versions(body: kopf.Body, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """ModelVersions by (namespace, model): what resolving a variant needs."""
    spec, status = body.get("spec") or {}, body.get("status") or {}
    slim = {
        "metadata": {"name": body.metadata.name, "deletionTimestamp": body.metadata.get("deletionTimestamp")},
        "spec": {"model": spec.get("model"), "source": spec.get("source")},
        "status": {"version": status.get("version"), "stage": status.get("stage"), "aliases": status.get("aliases")},
    }
    return {(body.metadata.namespace or "", str(spec.get("model"))): slim}


def index_deployments(body: kopf.Body, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """The operator's model-server Deployments by (namespace, owner uid)."""
    owners = [r.get("uid") for r in body.metadata.get("ownerReferences") or [] if r.get("kind") == KIND.kind]
    if not owners:
        return {}
    template = (body.get("spec") or {}).get("template") or {}
    slim = {
        "name": body.metadata.name,
        "variant": body.metadata.labels.get(serving.LABEL_VARIANT),
        "track": body.metadata.labels.get(serving.LABEL_TRACK, "stable"),
        "generation": body.metadata.get("generation"),
        "specReplicas": (body.get("spec") or {}).get("replicas"),
        "templateVersion": ((template.get("metadata") or {}).get("labels") or {}).get(serving.LABEL_VERSION),
        "status": dict(body.get("status") or {}),
    }
    return {(body.metadata.namespace or "", str(owners[0])): slim}


def index_pods(body: kopf.Body, **_: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The model-server pods by (namespace, ModelDeployment label, variant): what :func:`serving.pod_facts` reads."""
    labels = body.metadata.labels
    key = (
        body.metadata.namespace or "",
        labels.get(serving.LABEL_DEPLOYMENT, ""),
        labels.get(serving.LABEL_VARIANT, ""),
    )
    return {key: serving.slim_pod(body)}


# --- observe ---------------------------------------------------------------------------------
def _observe(deployments: list[Mapping[str, Any]], pods_of: Any) -> dict[str, serving.ObservedVariant]:
    out: dict[str, serving.ObservedVariant] = {}
    for d in deployments:
        if d.get("track") == "canary":
            continue  # the canary is judged by its metrics, not counted as the variant
        st = d.get("status") or {}
        conds = {c.get("type"): c for c in st.get("conditions") or []}
        progressing = conds.get("Progressing") or {}
        version = d.get("templateVersion")
        replicas = int(st.get("replicas") or 0)
        ready = int(st.get("readyReplicas") or 0)
        updated = int(st.get("updatedReplicas") or 0)
        failure, serving_versions = None, ()
        # scaled to zero on purpose (promoteOnWin gave its traffic to the winner): no pod to ask
        # about, and no LIST of pods on every tick while it lasts
        scaled_to_zero = d.get("specReplicas") == 0 and replicas == 0
        if (ready < replicas or updated < replicas or not replicas) and not scaled_to_zero:
            failure, serving_versions = pods_of(d["variant"], version)
        out[str(d["variant"])] = serving.ObservedVariant(
            replicas=replicas,
            ready=ready,
            updated=updated,
            available=int(st.get("availableReplicas") or 0),
            exists=True,
            up_to_date=st.get("observedGeneration") == d.get("generation"),
            version=int(version) if version and str(version).isdigit() else None,
            failure=failure,
            serving_versions=tuple(serving_versions),
            progress_deadline_exceeded=progressing.get("reason") == "ProgressDeadlineExceeded",
        )
    return out


def scrape_canary(namespace: str, deployment: str, variant: str, version: int) -> canary.Snapshot | None:
    """The canary pods' prediction counters, summed; None when a Ready pod cannot be read."""
    import httpx

    selector = (
        f"{serving.LABEL_DEPLOYMENT}={serving.label_value(deployment)},{serving.LABEL_VARIANT}={variant},"
        f"{serving.LABEL_TRACK}=canary,{serving.LABEL_VERSION}={version}"
    )
    snapshots = []
    for ip in ready_pod_ips(namespace, selector):
        try:
            resp = httpx.get(f"http://{ip}:{serving.SERVER_PORT}/metrics", timeout=3.0)
            resp.raise_for_status()
        except httpx.HTTPError:
            return None
        snapshots.append(canary.parse_metrics(resp.text))
    return canary.total(snapshots) if snapshots else None


def plan_canary(
    spec: ModelDeploymentSpec,
    state: Mapping[str, Any] | None,
    resolved: Mapping[str, serving.Resolved],
    versions: list[Any],
    deployments: list[Mapping[str, Any]],
    namespace: str,
    name: str,
    now: datetime,
) -> tuple[canary.Decision | None, serving.CanaryPlan | None]:
    """Which variant's canary moves now, and how (at most one at a time). None without ``strategy.type: Canary``."""
    strategy = spec.strategy or Strategy()
    if strategy.type != "Canary":
        return None, None
    stable = {d["variant"]: d for d in deployments if d.get("track") != "canary"}
    candidates = {d["variant"]: d for d in deployments if d.get("track") == "canary"}
    for v in spec.variants:
        if v.shadow or (state and state.get("variant") != v.name):
            continue
        r = resolved[v.name]
        if r.error or r.version is None:
            continue
        sd = stable.get(v.name)
        template = str((sd or {}).get("templateVersion") or "")
        serving_version = int(template) if template.isdigit() else None
        mine = state if state and state.get("variant") == v.name else None
        cd = candidates.get(v.name)
        cd_status = (cd or {}).get("status") or {}
        canary_ready = bool(cd) and int(cd_status.get("readyReplicas") or 0) >= max(
            1, int(cd_status.get("replicas") or 0)
        )
        snapshot = None
        if canary_ready and mine and mine.get("phase") == "Progressing":
            snapshot = scrape_canary(namespace, name, v.name, int(mine["toVersion"]))
        elif not mine:
            snapshot = canary.Snapshot()  # nothing to judge before the first step
        decision = canary.decide(
            mine,
            variant=v.name,
            serving_version=serving_version,
            wanted_version=r.version,
            strategy=strategy,
            now=now,
            snapshot=snapshot,
            canary_ready=canary_ready,
        )
        if decision.action == "none":
            continue
        st = decision.state or {}
        old = serving.resolve_variant(
            Variant(name=v.name, version=int(st.get("fromVersion") or r.version), weight=v.weight), spec.model, versions
        )
        if decision.action == "promote":
            sd_status = (sd or {}).get("status") or {}
            want = int(sd_status.get("replicas") or 0)
            done = (
                serving_version == r.version
                and want > 0
                and int(sd_status.get("updatedReplicas") or 0) == want
                and int(sd_status.get("readyReplicas") or 0) == want
                and sd_status.get("observedGeneration") == (sd or {}).get("generation")
            )
            if done:
                return (canary.Decision(None, "done", f"canary of {v.name}: version {r.version} promoted"), None)
            return decision, serving.CanaryPlan(v.name, stable=r, candidate=r, weight=decision.weight, pods=True)
        pods = decision.action in ("start", "wait", "advance")
        held = old if old.version is not None else r
        return decision, serving.CanaryPlan(v.name, stable=held, candidate=r, weight=decision.weight, pods=pods)
    return None, None


GATEWAY_CHECK_SECONDS = 15.0
DRIFT_CHECK_SECONDS = 10.0
"""How often the model servers' /drift figures are read (the follower looks every 2 s)."""


def gateway_problem(spec: ModelDeploymentSpec, namespace: str) -> str | None:
    """Why the HTTPRoute cannot work: no Gateway API in the cluster, or no such Gateway."""
    assert spec.routing is not None and spec.routing.gateway is not None
    gw = spec.routing.gateway
    gw_namespace = gw.namespace or namespace
    try:
        kube.get(kube.object_path("gateway.networking.k8s.io/v1", "gateways", gw_namespace, gw.name))
    except kube.KubeError as exc:
        if exc.status != 404:
            raise
        try:
            kube.get("/apis/gateway.networking.k8s.io/v1")
        except kube.KubeError as inner:
            if inner.status == 404:
                return (
                    "the cluster has no Gateway API (gateway.networking.k8s.io/v1 is not served): install "
                    "its CRDs and an implementation, or set spec.routing.mode to replicas"
                )
            raise
        return (
            f"spec.routing.gateway names Gateway {gw_namespace}/{gw.name}, which does not exist: create it "
            f"or name one that does (kubectl get gateways -A)"
        )
    return None


# --- apply -----------------------------------------------------------------------------------
def apply_children(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        kube.apply(kube.path_of(obj), obj)


def prune_children(namespace: str, name: str, uid: str, keep: set[tuple[str, str, str]]) -> list[str]:
    """Delete the children of this ModelDeployment (by label and owner) that the plan no longer has."""
    removed = []
    selector = f"{serving.LABEL_DEPLOYMENT}={serving.label_value(name)}"
    for api_version, kind in CHILD_KINDS:
        plural = kube.PLURALS[(api_version, kind)]
        try:
            items = kube.list_items(kube.object_path(api_version, plural, namespace), labelSelector=selector)
        except kube.KubeError as exc:
            if exc.status == 404:  # the kind is not installed (no Gateway API, no Traefik)
                continue
            raise
        for item in items:
            meta = item.get("metadata") or {}
            owned = any(r.get("uid") == uid for r in meta.get("ownerReferences") or [])
            if owned and (api_version, kind, meta.get("name")) not in keep:
                try:
                    kube.delete(kube.object_path(api_version, plural, namespace, meta["name"]))
                    removed.append(f"{kind}/{meta['name']}")
                except kube.KubeError as exc:
                    if exc.status != 404:
                        raise
    return removed


# --- reconcile -------------------------------------------------------------------------------
@METRICS.measured(KIND.kind)
async def reconcile(
    body: kopf.Body,
    patch: kopf.Patch,
    logger: kopf.Logger,
    memo: kopf.Memo,
    modelversions_by_model: kopf.Index[Any, Any] | None = None,
    modeldeployment_children: kopf.Index[Any, Any] | None = None,
    modeldeployment_pods: kopf.Index[Any, Any] | None = None,
    retrain_experiments: kopf.Index[Any, Any] | None = None,
    retrain_children: kopf.Index[Any, Any] | None = None,
    retrain_modelversions: kopf.Index[Any, Any] | None = None,
    **_: Any,
) -> None:
    """Observe the ModelDeployment and its world, apply the plan, write status into ``patch``."""
    old_status, memo["status_written"] = known_status(
        body.get("status"), memo.get("status_written"), time.monotonic(), trust_seconds=STATUS_TRUST_SECONDS
    )
    seen = {**body, "status": old_status}  # the body as stored once the watch shows our last write
    spec, scratch = accept_into_scratch(KIND, ModelDeploymentSpec, seen, patch)
    # promoteOnWin: the winner takes the traffic through the split the children are planned
    # from; the spec (git's) and the registry stay as they are
    spec = abtest.effective_spec(spec, (old_status.get("experiment") or {}).get("promoted"))
    config: OperatorConfig = memo.config
    meta = body.get("metadata") or {}
    name, namespace, uid = meta.get("name") or "", meta.get("namespace") or "", meta.get("uid") or ""
    owner = Owner(name, namespace, uid, kind=KIND.kind)
    versions: list[Any] = (
        list(modelversions_by_model.get((namespace, spec.model), [])) if modelversions_by_model else []
    )
    resolved = {v.name: serving.resolve_variant(v, spec.model, versions) for v in spec.variants}
    deployments: list[Any] = (
        list(modeldeployment_children.get((namespace, uid), [])) if modeldeployment_children else []
    )
    existing = {str(d["name"]) for d in deployments}
    image = spec.image or config.trainer_image or f"ghcr.io/modelship/modelship:{__version__}"
    now = utcnow()
    generation = meta.get("generation")
    conditions: list[dict[str, Any]] = []

    refusal = None
    if not config.tracking_url:
        refusal = (
            "NoTrackingServer",
            (
                "the operator has no tracking server to fetch models from: start it with "
                "--tracking-url (MODELSHIP_TRACKING_URL), as the chart does"
            ),
        )
    elif spec.allow_pickle and config.forbid_pickle:
        refusal = (
            "PickleForbidden",
            (
                "spec.allowPickle is forbidden on this cluster (the operator runs with "
                "--forbid-pickle): save the model with skops (the default of modelship's save_model) and "
                "remove spec.allowPickle"
            ),
        )
    if refusal is not None:
        reason, message = refusal
        _write_status(
            patch,
            memo,
            old_status,
            {"phase": "Degraded", "message": message},
            [
                make_condition(READY, "False", reason, message, now=now, observed_generation=generation),
                make_condition("Degraded", "True", reason, message, now=now, observed_generation=generation),
            ],
            scratch,
        )
        return

    assert config.tracking_url is not None  # refused above
    ctx = serving.ServingContext(owner, image, config.tracking_url)
    if (spec.strategy or Strategy()).type == "Canary":  # it reads the canary pods' /metrics
        decision, canary_plan = await asyncio.to_thread(
            plan_canary, spec, old_status.get("canary"), resolved, versions, deployments, namespace, name, now
        )
    else:
        decision, canary_plan = None, None
    if decision is not None and decision.event:
        _event(
            body,
            "Warning" if decision.action == "rollback" else "Normal",
            {
                "start": "CanaryStarted",
                "promote": "CanaryPassed",
                "rollback": "CanaryRolledBack",
                "done": "CanaryPromoted",
            }.get(decision.action, "Canary"),
            decision.event,
        )
    plan = serving.plan_children(spec, resolved, ctx, existing, canary_plan)
    route_problem = None
    if spec.routing is not None and spec.routing.mode == "gatewayAPI":
        checked = memo.get("gateway_checked")
        if checked is None or checked[0] + GATEWAY_CHECK_SECONDS < now.timestamp():
            checked = (now.timestamp(), await asyncio.to_thread(gateway_problem, spec, namespace))
            memo["gateway_checked"] = checked
        route_problem = checked[1]
        if route_problem and "no Gateway API" in route_problem:
            plan.objects = [o for o in plan.objects if o["kind"] not in ("HTTPRoute", "TraefikService")]
    digest = plan.digest()
    applied = memo.get("applied")
    planned = {o["metadata"]["name"] for o in plan.objects if o["kind"] == "Deployment"}
    due = serving.apply_due(
        applied,
        digest,
        now.timestamp(),
        bool(planned - existing),
        resync=RESYNC_SECONDS,
        grace=MISSING_GRACE_SECONDS,
    )
    if due:
        await asyncio.to_thread(apply_children, plan.objects)
        keep = {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in plan.objects}
        # A held variant keeps the Deployment it has.
        keep |= {("apps/v1", "Deployment", serving.variant_name(name, v)) for v in plan.held}
        if serving.may_have_strays(applied[0] if applied else None, digest, old_status):
            removed = await asyncio.to_thread(prune_children, namespace, name, uid, keep)
            if removed:
                logger.info("removed %s", ", ".join(removed))
        memo["applied"] = (digest, now.timestamp())

    def failure_of(variant: str, version: str | None) -> tuple[str | None, list[int]]:
        key = (namespace, serving.label_value(name), variant)
        pods: list[Any] = list(modeldeployment_pods.get(key, [])) if modeldeployment_pods else []
        return serving.pod_facts(pods, version)

    observed = _observe(deployments, failure_of)
    plans = serving.plan_variants(spec)
    effective = dict(resolved)
    if canary_plan is not None:
        effective[canary_plan.variant] = canary_plan.stable  # what it should serve while the canary runs
    verdict = serving.decide_phase(spec, plans, effective, observed)
    canary_state = decision.state if decision is not None else None
    if canary_state is not None:
        rolled_back = canary_state.get("phase") == "RolledBack"
        message = str(canary_state.get("message") or "")
        verdict = serving.Verdict(
            "Degraded" if rolled_back else "Progressing",
            message,
            ready=verdict.ready,
            progressing=not rolled_back,
            degraded=rolled_back,
            reason="CanaryRolledBack" if rolled_back else "Canary",
        )
    if route_problem:
        verdict = serving.Verdict(
            "Degraded",
            route_problem,
            ready=False,
            progressing=verdict.progressing,
            degraded=True,
            reason="GatewayNotFound",
        )
    variants = serving.variant_status(spec, plans, effective, observed)
    split_problem = serving.split_message(spec, plans)
    ready_pods = sum(v["readyReplicas"] for v in variants)
    desired = sum(v["replicas"] or 0 for v in variants)
    status: dict[str, Any] = {
        "phase": verdict.phase,
        "message": verdict.message,
        "variants": variants,
        "split": serving.split_summary(variants),
        "ready": f"{ready_pods}/{desired}",
        "url": f"http://{name}.{namespace}.svc.cluster.local",
        "rollout": canary.rollout_summary(canary_state)
        if canary_state or decision is not None
        else ("RollingUpdate" if verdict.progressing else "Stable"),
        "canary": canary_state,
    }

    def cond(type_: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
        return make_condition(
            type_, "True" if ok else "False", reason, message, now=now, observed_generation=generation
        )

    conditions = [
        cond(READY, verdict.ready, verdict.reason, verdict.message),
        cond("Progressing", verdict.progressing, "RollingOut" if verdict.progressing else "Stable", verdict.message),
        cond(
            "Degraded",
            verdict.degraded,
            verdict.reason if verdict.degraded else "AsExpected",
            verdict.message if verdict.degraded else "",
        ),
        cond(
            "SplitExpressible",
            not split_problem,
            "ReplicasCannotExpressWeights" if split_problem else "Expressible",
            split_problem or "",
        ),
    ]
    if spec.monitoring is not None:
        drift = await _drift_plan(spec, namespace, name, memo, now.timestamp())
        conditions.append(cond(DRIFT_DETECTED, drift.status == "True", drift.reason, drift.message))
        if drift.status == "Unknown":
            conditions[-1]["status"] = "Unknown"
        before = find_condition(old_status.get("conditions"), DRIFT_DETECTED) or {}
        if drift.status == "True" and before.get("status") != "True":
            _event(body, "Warning", "DriftDetected", drift.message)
        if spec.monitoring.retrain is not None:
            loop = await asyncio.to_thread(
                retrain_loop.step,
                spec,
                owner,
                drift=(drift.status, drift.message),
                old=old_status.get("retraining"),
                rollout=Rollout({str(v["name"]): v.get("version") for v in variants}, canary_state),
                indices={
                    retrain_loop.EXPERIMENTS_INDEX: retrain_experiments,
                    retrain_loop.CHILDREN_INDEX: retrain_children,
                    retrain_loop.VERSIONS_INDEX: retrain_modelversions,
                },
                now=now,
                event=lambda type_, reason, message: _event(body, type_, reason, message),
            )
            status["retraining"] = loop.status
            ok, reason, message = loop.condition
            conditions.append(cond(RETRAIN_READY, ok == "True", reason, message))
    if (spec.monitoring is None or spec.monitoring.retrain is None) and old_status.get("retraining"):
        status["retraining"] = None  # the loop was turned off: no stale phase
    if spec.experiment is not None:
        status["experiment"] = await _experiment(
            spec, namespace, name, memo, now, old_status.get("experiment"), variants
        )
        for line in abtest.verdict_changes(old_status.get("experiment"), status["experiment"]):
            _event(body, "Normal", "ABVerdict", line)
        promoted = status["experiment"].get("promoted")
        if promoted and promoted != (old_status.get("experiment") or {}).get("promoted"):
            _event(body, "Normal", "ABPromoted", str(promoted.get("message")))
    elif old_status.get("experiment"):
        status["experiment"] = None  # the experiment was removed from the spec: so is its readout
    # Without spec.monitoring no one judges drift: a DriftDetected left from before would
    # be a stale verdict that `kubectl wait` and Argo CD still read. Likewise RetrainReady.
    retraining = spec.monitoring is not None and spec.monitoring.retrain is not None
    dropped = (() if spec.monitoring is not None else (DRIFT_DETECTED,)) + (() if retraining else (RETRAIN_READY,))
    _write_status(patch, memo, old_status, status, conditions, scratch, dropped)
    memo["quiet_until"] = _quiet_until(spec, memo, now.timestamp(), missing=bool(planned - existing))


def _quiet_until(spec: ModelDeploymentSpec, memo: Any, now: float, *, missing: bool) -> float:
    """Until when a follower tick that finds the same world (:func:`_world`) may skip the reconcile
    (0: every tick runs). The work that time alone brings due: a canary's pauses, the drift and
    A/B reads, the Gateway check (every tick runs with those), the resync, a Deployment still
    missing after the grace, a status write the watch has not shown (made again after
    STATUS_TRUST_SECONDS)."""
    routed = spec.routing is not None and spec.routing.mode == "gatewayAPI"
    timed = (spec.strategy or Strategy()).type == "Canary" or spec.monitoring is not None or spec.experiment is not None
    applied = memo.get("applied")
    if timed or routed or applied is None:
        return 0.0
    until = float(applied[1]) + (MISSING_GRACE_SECONDS if missing else RESYNC_SECONDS)
    if memo.get("status_written") is not None:
        until = min(until, now + STATUS_TRUST_SECONDS)
    return until


def _world(body: Mapping[str, Any], indices: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a reconcile of a quiet ModelDeployment judges from: the object (its resourceVersion)
    and the index entries of its model's versions, its Deployments and its pods.

    The entries are kept as they are, not as text: compared with ``==``, an entry the index
    still holds is the same object and costs a pointer's comparison, and one the index
    replaced (kopf makes a new one at every event of its object) is compared by content.
    Their repr was built at every tick for every ModelDeployment: with 1,000 versions of 20
    models behind 200 ModelDeployments that was 19 ms a tick, 0.57 s of CPU a minute of the
    operator's 0.97 at rest (benchmarks/operator/README.md). Nothing changes an index's
    entries in place (they are the indexers' slim copies, read by pure functions)."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    namespace, name, uid = meta.get("namespace") or "", meta.get("name") or "", meta.get("uid") or ""

    def entries(index_name: str, key: Any) -> tuple[Any, ...]:
        index = indices.get(index_name)
        return tuple(index.get(key, ())) if index is not None else ()

    variants = [str(v.get("name")) for v in spec.get("variants") or [] if isinstance(v, Mapping)]
    return (
        meta.get("resourceVersion"),
        entries("modelversions_by_model", (namespace, str(spec.get("model")))),
        entries("modeldeployment_children", (namespace, uid)),
        tuple(entries("modeldeployment_pods", (namespace, serving.label_value(name), v)) for v in variants),
    )


EXPERIMENT_CHECK_SECONDS = 10.0
"""How often the model servers' /feedback figures are read for the A/B readout."""


async def _experiment(
    spec: ModelDeploymentSpec,
    namespace: str,
    name: str,
    memo: Any,
    now: datetime,
    before: Mapping[str, Any] | None,
    variants: list[dict[str, Any]],
) -> dict[str, Any]:
    """status.experiment: the pods' /feedback read every EXPERIMENT_CHECK_SECONDS and folded
    into the tally kept in status (so the figures of a restarted pod stay counted)."""
    assert spec.experiment is not None
    live = [(v.name, None) for v in spec.variants if not v.shadow]
    served = {str(v.get("name")): v.get("version") for v in variants}
    arms = [(n, served.get(n)) for n, _ in live]
    key = repr((spec.experiment.wire(), arms))
    checked = memo.get("experiment_checked")
    if checked is not None and checked[1] == key and checked[0] + EXPERIMENT_CHECK_SECONDS > now.timestamp():
        return dict(before or checked[2])
    tally = (before or {}).get("tally")
    scraped = await asyncio.to_thread(scrape_pods, namespace, name, [n for n, _ in arms], "/feedback")
    reports = [r for rs in scraped.values() if rs for r in rs]
    tally = abtest.fold(tally, reports)
    result = {**abtest.readout(spec.experiment, arms, tally), "tally": tally}
    promoted = abtest.promotion(
        spec.experiment,
        result,
        (before or {}).get("promoted"),
        arms,
        namespace=namespace,
        model=spec.model,
        now=now.isoformat(),
    )
    result["promoted"] = promoted  # None: a merge patch removes one that no longer holds
    same = before is not None and without_none({k: v for k, v in before.items() if k != "updatedAt"}) == without_none(
        result
    )
    # written only when a figure moved: a quiet experiment costs no status patch
    result["updatedAt"] = str(before.get("updatedAt")) if same and before else now.isoformat()
    memo["experiment_checked"] = (now.timestamp(), key, result)
    return result


async def _drift_plan(spec: ModelDeploymentSpec, namespace: str, name: str, memo: Any, now: float) -> DriftPlan:
    """DriftDetected from the pods' /drift, read every DRIFT_CHECK_SECONDS (kept in the memo
    between, with the monitoring spec it was judged by)."""
    assert spec.monitoring is not None
    key = repr(spec.monitoring.wire())
    checked = memo.get("drift_checked")
    if checked is None or checked[1] != key or checked[0] + DRIFT_CHECK_SECONDS < now:
        variants = [v.name for v in spec.variants]
        scraped = await asyncio.to_thread(scrape_drift, namespace, name, variants) if spec.monitoring.enabled else {}
        checked = (now, key, plan_drift(spec.monitoring, scraped))
        memo["drift_checked"] = checked
    plan: DriftPlan = checked[2]
    return plan


def _event(body: Any, type_: str, reason: str, message: str) -> None:
    try:
        kopf.event(body, type=type_, reason=reason, message=message)
    except Exception as exc:  # noqa: BLE001 - an Event is a courtesy; the status says it too
        log.warning("no Event %s for %s: %s", reason, (body.get("metadata") or {}).get("name"), exc)


def _write_status(
    patch: kopf.Patch,
    memo: Any,
    old: dict[str, Any],
    status: dict[str, Any],
    conditions: list[dict[str, Any]],
    scratch: kopf.Patch,
    dropped: tuple[str, ...] = (),
) -> None:
    """Merge our conditions over the stored ones, without the ``dropped`` types; patch only
    what differs from the status as known (:func:`modelship.resources.status.known_status`), and remember what was written.

    The acceptance's Ready ("spec accepted", in ``scratch``) is not the base: ours replaces
    it, and merged over it a Ready=False took the acceptance's True for the stored status,
    so its lastTransitionTime moved to now, and the status was written again, on every tick
    of a ModelDeployment that was not Ready yet."""
    base = [c for c in old.get("conditions") or () if c.get("type") not in dropped]
    merged = merge_conditions(base, conditions)
    new = {**status, "conditions": merged}
    if "observedGeneration" in scratch.status:
        new["observedGeneration"] = scratch.status["observedGeneration"]
    for key, value in new.items():
        # as stored: a None in a merge patch removes the key, so {"a": None} is already {}
        if without_none(old.get(key)) != without_none(value):
            patch.status[key] = value
    if patch.status:
        pending: Written | None = memo.get("status_written")
        since, earlier = pending if pending is not None else (time.monotonic(), ())
        memo["status_written"] = (since, (*earlier, dict(patch.status)))


def _one_at_a_time(memo: Any) -> asyncio.Lock:
    """The object's reconcile lock, in its kopf memo (shared by its handlers and the follower)."""
    lock: asyncio.Lock | None = memo.get("reconcile_lock")
    if lock is None:
        lock = memo["reconcile_lock"] = asyncio.Lock()
    return lock


async def handle(**kwargs: Any) -> None:
    """The create/update/resume handler: :func:`reconcile`, one at a time per object; from
    then on the follower follows the object too (in this handler's context, with its memo).

    The follower's tick may come as the object is created, beside the create handler; run
    side by side, both applied every child and wrote the same status (twice the requests of
    a new ModelDeployment)."""
    memo = kwargs["memo"]
    follower: following.Follower | None = memo.get(FOLLOWER)
    if follower is not None:
        follower.add(str(kwargs["body"]["metadata"]["uid"]), memo, kwargs["logger"])
    async with _one_at_a_time(memo):
        try:
            await reconcile(**kwargs)
        finally:
            memo["reconciled_at"] = time.monotonic()


def due(body: Mapping[str, Any], followed: following.Followed, indices: Mapping[str, Any]) -> bool:
    """Whether the follower reconciles this ModelDeployment now: not when a reconcile of it
    ended less than a tick ago (it saw the registry then), nor when nothing it reads changed
    since the last one and nothing is due (:func:`_quiet_until`)."""
    memo = followed.memo
    if time.monotonic() - memo.get("reconciled_at", float("-inf")) < FOLLOW_INTERVAL:
        return False
    return _world(body, indices) != memo.get("world") or time.time() >= memo.get("quiet_until", 0.0)


async def follow(body: Mapping[str, Any], followed: following.Followed, indices: Mapping[str, Any]) -> None:
    """The follower's step: the same reconcile as the handler's, so the registry's moves reach
    the Deployments; its status patch is sent here (no kopf around it to send it)."""
    memo = followed.memo
    async with _one_at_a_time(memo):
        if not due(body, followed, indices):
            return  # a handler's reconcile ran while this one waited for the lock
        memo["world"], memo["quiet_until"] = _world(body, indices), 0.0  # a failed reconcile leaves nothing quiet
        patch = kopf.Patch()
        try:
            await reconcile(
                body=kopf.Body(cast(kopf.RawBody, dict(body))),
                patch=patch,
                logger=followed.logger,
                memo=memo,
                **indices,
            )
        except InvalidSpec:
            pass  # already reported; nothing to follow until the spec changes
        finally:
            memo["reconciled_at"] = time.monotonic()
            if patch.status:  # written as kopf writes a handler's: even when it failed
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(STATUS_WRITER, patch_status, body, dict(patch["status"]))


STATUS_WRITER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="modeldeployment-status")
"""The follower's status writes, in threads of their own: in the default executor they queued
behind the child applies of every ModelDeployment being created (200 at once: each one's
Ready was written only once all of them had applied, per object p50 to Ready 30 -> 60 s)."""


def patch_status(body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
    """A merge patch of the ModelDeployment's status; one deleted meanwhile has none to write."""
    meta = body.get("metadata") or {}
    path = kube.object_path(
        f"{GROUP}/{VERSION}", KIND.plural, meta.get("namespace"), meta.get("name"), subresource="status"
    )
    try:
        kube.merge_patch(path, {"status": dict(status)})
    except kube.KubeError as exc:
        if exc.status != 404:
            raise


def register(registry: kopf.OperatorRegistry) -> None:
    """Register this kind's handlers, the indices they read and the follower on ``registry``."""
    kopf.index(GROUP, VERSION, "modelversions", id="modelversions_by_model", registry=registry)(index_model_versions)
    kopf.index(
        "",
        "v1",
        "pods",
        id="modeldeployment_pods",
        registry=registry,
        labels={serving.LABEL_DEPLOYMENT: kopf.PRESENT},
    )(index_pods)
    kopf.index(
        "apps",
        "v1",
        "deployments",
        id="modeldeployment_children",
        registry=registry,
        labels={serving.LABEL_DEPLOYMENT: kopf.PRESENT},
    )(index_deployments)
    kopf.index(GROUP, VERSION, KIND.plural, id=BODIES_INDEX, registry=registry)(index_bodies)
    retrain_loop.register(registry)
    register_reconcile(registry, KIND, handle)
    following.register(
        registry,
        lambda: following.Follower(follow, due=due, interval=FOLLOW_INTERVAL, bodies=BODIES_INDEX),
        name="modeldeployment-follower",
        memo_key=FOLLOWER,
    )
