"""The web UI's views of the cluster side, read through the registry's reader.

- ``cluster``: whether this server has cluster access (always answered, so that the UI
  asks before it calls an endpoint that would fail, and logs no error without a cluster);
- ``registry/model-versions``: one model's versions as the registry decided them, with
  what MLflow's ``ModelVersion`` message cannot carry: each gate (metric, op, threshold,
  the run's value and whether it held), the stage history (the audit trail), the
  requested stage and the version that superseded it, and the conditions; and the
  webhook delivery status of the model's events per receiver (the operator's delivery
  record in the versions' namespace, read by name);
- ``kube/experiments``: Experiment objects with their trials (phase, parameters,
  objective, stopped early or not, message, the run);
- ``kube/modeldeployments``: ModelDeployment objects with their variants (version,
  requested and live weight, ready replicas) and the canary's figures of the last step it
  judged, the only per-variant traffic figures the status carries;
- ``kube/modeldeployments/live``: one ModelDeployment's live per-variant request rate,
  error rate and p99, scraped from its model servers' ``/metrics`` (:mod:`live`), asked
  per card by the page so that a slow or unreachable pod never delays the listing.

The shaping functions are pure (a listing in, JSON out). Everything comes from the one
reader (:class:`registry.KubeReader`, so the one Kubernetes client and the tracking
server's RBAC, ``REGISTRY_READER_RULES``); all are GETs, and nothing here writes.
Without cluster access the views answer NOT_IMPLEMENTED, as the registry does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelship.kube import KubeError
from modelship.resources import webhooks as wh
from modelship.resources.registry import evaluate_gates
from modelship.tracking import errors
from modelship.tracking.errors import TrackingError
from modelship.tracking.protocol.http import ok, query
from modelship.tracking.server.live import LiveFigures, endpoints_of
from modelship.tracking.server.registry import NO_CLUSTER, RegistryReader, read_registry

PREFIX = "/api/2.0/modelship"
T = TypeVar("T")

NO_CLUSTER_VIEWS = (
    "This tracking server has no access to the cluster, where Modelship's model registry, Experiments and "
    "ModelDeployments live. Start it with --registry-in-cluster (in a pod) or --registry-kubeconfig PATH "
    "(Helm: tracking.registry.enabled=true)."
)
NO_METRICS = (
    "The ModelDeployment's status carries per-variant traffic figures only for a canary, over the last step "
    "it judged (requests, error rate, p99); the live figures are scraped by this tracking server from the "
    "model servers' own /metrics while the page is open."
)


def _conditions(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "type": c.get("type") or "",
            "status": c.get("status") or "",
            "reason": c.get("reason") or "",
            "message": c.get("message") or "",
            "last_transition_time": c.get("lastTransitionTime") or "",
        }
        for c in status.get("conditions") or []
    ]


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def version_detail(obj: Mapping[str, Any]) -> dict[str, Any]:
    """One ModelVersion: gates, stage history and conditions (what the status says)."""
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    metrics = status.get("metrics")
    gates = [
        {
            "metric": g.metric,
            "op": g.op,
            "value": g.value,
            "actual": g.actual,
            # Unknown until the operator has read the run's metrics into the status.
            "held": None if metrics is None else g.passed,
        }
        for g in evaluate_gates(spec.get("gates") or [], metrics)
    ]
    passed = _condition(status, "GatesPassed")
    return {
        "name": spec.get("model") or "",
        "version": str(status.get("version")),
        "object": meta.get("name") or "",
        "namespace": meta.get("namespace") or "",
        "requested_stage": spec.get("stage") or "None",
        "current_stage": status.get("stage") or "None",
        "superseded_by": status.get("supersededBy") or "",
        "gates": gates,
        "gates_message": passed.get("message") or "",
        "stage_history": [
            {
                "from": h.get("from") or "None",
                "to": h.get("to") or "None",
                "time": h.get("time") or "",
                "reason": h.get("reason") or "",
            }
            for h in status.get("stageHistory") or []
        ],
        "conditions": _conditions(status),
    }


def delivery_json(rec: wh.DeliveryRecord, namespace: str) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "receiver": rec.receiver,
        "last_success": rec.last_success,
        "last_failure": rec.last_failure,
        "last_error": rec.last_error,
        "failures": rec.failures,
        "delivered": rec.delivered,
        "dropped": rec.dropped,
        "pending": rec.pending,
    }


def webhook_status(reader: RegistryReader, model: str, namespaces: list[str]) -> dict[str, Any]:
    """A model's webhook deliveries per receiver, from the delivery record of each namespace
    its versions live in. ``known`` is False when a record could not be read (the message
    says why and what to grant); an empty list with ``known`` means nothing was sent yet, or
    the operator sends no webhooks."""
    receivers: list[dict[str, Any]] = []
    for ns in sorted(set(namespaces)):
        try:
            data = reader.webhook_deliveries(ns)
        except KubeError as exc:
            if exc.status == 403:
                why = (
                    f"The tracking server's account may not read ConfigMap {ns}/{wh.DELIVERIES_CONFIGMAP} "
                    f"({exc.message}): grant it the rules of REGISTRY_READER_RULES (get on that name; the chart's "
                    "files/rbac/tracking-rules.yaml; upgrade the chart)"
                )
            else:
                why = f"Reading ConfigMap {ns}/{wh.DELIVERIES_CONFIGMAP} failed: {exc}"
            return {"known": False, "message": why, "receivers": receivers}
        receivers += [delivery_json(r, ns) for r in wh.records(data, model)]
    return {"known": True, "message": "", "receivers": receivers}


def trial_json(trial: Mapping[str, Any]) -> dict[str, Any]:
    phase = trial.get("phase") or "Pending"
    return {
        "number": trial.get("number"),
        "name": trial.get("name") or "",
        "phase": phase,
        "run_id": trial.get("runId") or "",
        "parameters": {str(k): v for k, v in sorted((trial.get("parameters") or {}).items())},
        "objective": trial.get("objective"),
        "stopped": phase == "Stopped",  # stopped early (pruned) by the search's early stopping
        "message": trial.get("message") or "",
    }


def experiment_json(obj: Mapping[str, Any]) -> dict[str, Any]:
    """One Experiment object and its trials."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    search = spec.get("search") or {}
    objective = search.get("objective") or {}
    best = status.get("bestTrial") or {}
    namespace, name = _key(obj)
    return {
        "namespace": namespace,
        "name": name,
        "phase": status.get("phase") or "Pending",
        "message": _condition(status, "Ready").get("message") or "",
        "trials_summary": status.get("trialsSummary") or "",
        "max_trials": (search.get("maxTrials") or 10) if search else 1,
        "algorithm": search.get("algorithm") or "",
        "objective": {"metric": objective.get("metric") or "", "goal": objective.get("goal") or "maximize"}
        if objective
        else None,
        "experiment_id": status.get("experimentId") or "",
        "model_version": status.get("modelVersion") or "",
        "best_trial": best.get("number"),
        "trials": [trial_json(t) for t in sorted(status.get("trials") or [], key=lambda t: t.get("number") or 0)],
        "conditions": _conditions(status),
    }


def deployment_json(obj: Mapping[str, Any]) -> dict[str, Any]:
    """One ModelDeployment: its variants as spec asks and status has them."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    canary = status.get("canary") or {}
    observed = {v.get("name"): v for v in status.get("variants") or []}
    variants = []
    for asked in spec.get("variants") or []:
        name = asked.get("name") or ""
        seen = observed.pop(name, {})
        variants.append(_variant(name, asked, seen, canary))
    variants += [_variant(str(n or ""), {}, seen, canary) for n, seen in observed.items()]  # left in status only
    namespace, name = _key(obj)
    return {
        "namespace": namespace,
        "name": name,
        "model": spec.get("model") or "",
        "phase": status.get("phase") or "",
        "message": status.get("message") or "",
        "split": status.get("split") or "",
        "ready": status.get("ready") or "",
        "rollout": status.get("rollout") or "",
        "url": status.get("url") or "",
        "variants": variants,
        "canary": {
            "variant": canary.get("variant") or "",
            "phase": canary.get("phase") or "",
            "from_version": canary.get("fromVersion"),
            "to_version": canary.get("toVersion"),
            "step": canary.get("step"),
            "steps": canary.get("steps"),
            "message": canary.get("message") or "",
        }
        if canary
        else None,
        "metrics_note": NO_METRICS,
        "experiment": _experiment(status.get("experiment")),
        "conditions": _conditions(status),
    }


def _experiment(exp: Any) -> dict[str, Any] | None:
    """The A/B readout as status has it, without the operator's per-pod bookkeeping."""
    if not isinstance(exp, Mapping):
        return None
    arms = [
        {
            k: a.get(k)
            for k in (
                "name",
                "version",
                "control",
                "samples",
                "mean",
                "ciLow",
                "ciHigh",
                "difference",
                "pValue",
                "verdict",
            )
        }
        for a in exp.get("variants") or []
        if isinstance(a, Mapping)
    ]
    keep = ("metric", "control", "confidence", "minSamples", "verdict", "winner", "message", "updatedAt")
    return {**{k: exp.get(k) for k in keep}, "variants": arms}


def _variant(name: str, asked: Mapping[str, Any], seen: Mapping[str, Any], canary: Mapping[str, Any]) -> dict[str, Any]:
    selector = (
        f"v{asked['version']}"
        if asked.get("version") is not None
        else f"stage {asked['stage']}"
        if asked.get("stage")
        else f"@{asked['alias']}"
        if asked.get("alias")
        else ""
    )
    figures = canary.get("analysis") if canary.get("variant") == name else None
    return {
        "name": name,
        "selector": selector,
        "version": seen.get("version"),
        "model_version": seen.get("modelVersion") or "",
        "weight": asked.get("weight"),
        "effective_weight": seen.get("effectiveWeight"),
        "shadow": bool(seen.get("shadow") if "shadow" in seen else asked.get("shadow")),
        "replicas": seen.get("replicas"),
        "ready_replicas": seen.get("readyReplicas"),
        "message": seen.get("message") or "",
        "canary": (
            {
                "requests": figures.get("requests"),
                "errors": figures.get("errors"),
                "error_rate": figures.get("errorRate"),
                "p99_ms": figures.get("p99Ms"),
            }
            if isinstance(figures, Mapping)
            else None
        ),
    }


def _listed(list_: Callable[[], list[dict[str, Any]]], what: str) -> list[dict[str, Any]]:
    """A listing, with the API server's refusals said as what to change."""
    try:
        return list_()
    except KubeError as exc:
        if exc.status == 404:  # the CRD is not installed
            return []
        if exc.status == 403:
            raise TrackingError(
                f"The tracking server's account may not list {what} ({exc.message}): grant it the rules of "
                "REGISTRY_READER_RULES (the chart's files/rbac/tracking-rules.yaml; upgrade the chart)",
                errors.PERMISSION_DENIED,
            ) from exc
        raise TrackingError(f"Listing {what} failed: {exc}", errors.TEMPORARILY_UNAVAILABLE) from exc


def ui_cluster_router(reader: RegistryReader | None, live: LiveFigures | None = None) -> APIRouter:
    router = APIRouter(tags=["Modelship UI"])
    live = live or (LiveFigures() if reader is not None else None)

    @router.get(PREFIX + "/cluster", summary="Whether this server reads the cluster (registry, Experiments, ...)")
    async def cluster() -> Response:
        if reader is None:
            return ok({"cluster": False, "message": NO_CLUSTER_VIEWS})
        return ok({"cluster": True, "scoped": reader.scoped, "message": ""})

    async def blocking(work: Callable[[RegistryReader], T], path: str) -> T:
        if reader is None:
            raise TrackingError(NO_CLUSTER.format(path=path), errors.NOT_IMPLEMENTED)
        return await run_in_threadpool(work, reader)

    @router.get(PREFIX + "/registry/model-versions", summary="A model's versions: gates, stage history, conditions")
    async def model_versions(request: Request) -> Response:
        name = query(request, "name") or ""
        if not name:
            raise errors.invalid("Missing value for required parameter 'name'.")

        def work(r: RegistryReader) -> dict[str, Any]:
            try:
                versions = read_registry(r).versions(name)
            except TrackingError as exc:
                if exc.error_code != errors.RESOURCE_DOES_NOT_EXIST:
                    raise
                r.invalidate()  # created a moment ago? one fresh listing, as the registry API does
                versions = read_registry(r).versions(name)
            detail = [version_detail(o) for o in sorted(versions, key=lambda o: -int(o["status"]["version"]))]
            return {
                "model_versions": detail,
                "webhooks": webhook_status(r, name, [d["namespace"] for d in detail]),
            }

        return ok(await blocking(work, "registry/model-versions"))

    @router.get(PREFIX + "/kube/experiments", summary="Experiment objects and their trials")
    async def experiments() -> Response:
        def work(r: RegistryReader) -> list[dict[str, Any]]:
            return [experiment_json(o) for o in sorted(_listed(r.list_experiments, "Experiments"), key=_key)]

        return ok({"experiments": await blocking(work, "kube/experiments")})

    @router.get(PREFIX + "/kube/modeldeployments", summary="ModelDeployment objects: variants, split, replicas")
    async def deployments() -> Response:
        def work(r: RegistryReader) -> list[dict[str, Any]]:
            return [deployment_json(o) for o in sorted(_listed(r.list_deployments, "ModelDeployments"), key=_key)]

        return ok({"model_deployments": await blocking(work, "kube/modeldeployments")})

    @router.get(
        PREFIX + "/kube/modeldeployments/live",
        summary="One ModelDeployment's live per-variant request rate, error rate and p99 (its model servers' /metrics)",
    )
    async def deployment_live(request: Request) -> Response:
        name = query(request, "name") or ""
        namespace = query(request, "namespace", required=False) or ""

        def work(r: RegistryReader) -> dict[str, Any]:
            found = [o for o in _listed(r.list_deployments, "ModelDeployments") if _key(o)[1] == name]
            found = [o for o in found if not namespace or _key(o)[0] == namespace]
            if len(found) != 1:
                where = f" in namespace {namespace}" if namespace else ""
                raise TrackingError(
                    f"ModelDeployment {name!r}{where} "
                    + ("not found" if not found else "is in several namespaces: pass namespace="),
                    errors.RESOURCE_DOES_NOT_EXIST if not found else errors.INVALID_PARAMETER_VALUE,
                )
            ns = _key(found[0])[0]
            variants = [str(v.get("name")) for v in (found[0].get("spec") or {}).get("variants") or [] if v.get("name")]
            assert live is not None

            def endpoints(namespace: str, services: list[str]) -> dict[str, Any]:
                return endpoints_of(r.endpoint_slices(namespace, services))

            return {
                "namespace": ns,
                "name": name,
                "window_s": live.window,
                "variants": live.deployment(ns, name, variants, endpoints),
            }

        return ok(await blocking(work, "kube/modeldeployments/live"))

    return router
