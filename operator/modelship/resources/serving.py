"""A ModelDeployment's children, and what its status says: spec and observations in, dicts out.

Per variant a Deployment of ``modelship serve`` (readiness true only once the model is
loaded; ``maxUnavailable: 0`` so the old version serves until the new one is Ready), a
Service and a PodDisruptionBudget, and an ``autoscaling/v2`` HorizontalPodAutoscaler with
``spec.autoscaling`` (the Deployment then omits ``replicas``: they are the HPA's). Over
all live variants the ModelDeployment's own Service; with ``routing.mode: gatewayAPI`` an
HTTPRoute whose defaults are written out (``group``, ``kind``, ``port``, ``weight``), so
the API server's defaulting never makes it drift under Argo CD.

Pure: nothing here reads the clock, the cluster or the registry; the controller passes
in what it observed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelship.api import ModelDeploymentSpec
from modelship.api.modeldeployment import Monitoring, Variant
from modelship.resources.experiment import Owner, shorten
from modelship.resources.podsecurity import container_security_context, pod_security_context

LABEL_DEPLOYMENT = "modelship.io/deployment"
LABEL_VARIANT = "modelship.io/variant"
LABEL_MODEL = "modelship.io/model"
LABEL_VERSION = "modelship.io/version"
LABEL_SERVING = "modelship.io/serving"  # "true" on live variants' pods: the ModelDeployment's Service selects it
LABEL_TRACK = "modelship.io/track"  # stable, or canary for the new version on trial beside it
LABEL_ANSWERS = "modelship.io/answers"  # "true" on pods whose replies reach clients: the peers Service selects it
ANNOTATION_MODEL_URI = "modelship.io/model-uri"
VARIANT_HEADER = "x-modelship-variant"
SERVER_PORT = 8080
SERVICE_PORT = 80
SHUTDOWN_DELAY_S = 5
GATEWAY_GROUP = "gateway.networking.k8s.io"


def label_value(value: str) -> str:
    """A label value (63 characters, alphanumerics at both ends) for any name."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in value).strip("-_.")
    return shorten(cleaned or "x")


def variant_name(deployment: str, variant: str) -> str:
    """``<deployment>-<variant>``: the variant's Deployment, Service, PDB and HPA."""
    return shorten(deployment, f"-{variant}")


def peers_name(deployment: str) -> str:
    """``<deployment>--peers``: the headless Service over the pods that answer clients, where a
    model server finds its peers for feedback it does not know. The double hyphen keeps it
    apart from every variant's Service (a variant name cannot begin with one)."""
    return shorten(deployment, "--peers")


def canary_name(deployment: str, variant: str) -> str:
    """``<deployment>-<variant>-canary``: the canary's Deployment and Service."""
    return shorten(deployment, f"-{variant}-canary")


# --- versions --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resolved:
    """The version a variant serves, or why it cannot be found."""

    variant: str
    version: int | None = None
    model_version: str | None = None
    source: str | None = None
    error: str | None = None


def resolve_variant(variant: Variant, model: str, versions: Sequence[Mapping[str, Any]]) -> Resolved:
    """Find the ModelVersion a variant names, from the ModelVersions of its model.

    By number, by the effective stage the registry controller computed (``status.stage``,
    the newest when several hold it), or by alias (``status.aliases``). Versions not yet
    numbered, being deleted, or of another model never match.
    """
    candidates = []
    for mv in versions:
        meta, spec, status = mv.get("metadata") or {}, mv.get("spec") or {}, mv.get("status") or {}
        if spec.get("model") != model or meta.get("deletionTimestamp") or not status.get("version"):
            continue
        candidates.append((int(status["version"]), meta.get("name", ""), spec.get("source", ""), status))
    if variant.version is not None:
        matches = [c for c in candidates if c[0] == variant.version]
        what = f"version {variant.version}"
    elif variant.stage is not None:
        matches = [c for c in candidates if c[3].get("stage") == variant.stage]
        what = f"version in stage {variant.stage}"
    else:
        matches = [c for c in candidates if variant.alias in (c[3].get("aliases") or [])]
        what = f"version with alias {variant.alias!r}"
    if not matches:
        known = ", ".join(str(c[0]) for c in sorted(candidates)) or "none"
        field_name = "version" if variant.version is not None else "stage" if variant.stage is not None else "alias"
        return Resolved(
            variant.name,
            error=(
                f"variant {variant.name}: model {model} has no {what} (numbered versions: {known}); "
                f"register or promote one, or change spec.variants[{variant.name}].{field_name}"
            ),
        )
    number, name, source, _ = max(matches)
    return Resolved(variant.name, version=number, model_version=name, source=source)


# --- the split -------------------------------------------------------------------------------
def replica_split(weights: Sequence[tuple[str, int]], total: int) -> dict[str, int]:
    """Share ``total`` pods by weight (largest remainder; ties go to the earlier variant)."""
    weight_sum = sum(w for _, w in weights)
    if weight_sum <= 0 or total <= 0:
        return {name: 0 for name, _ in weights}
    exact = [(name, total * w / weight_sum) for name, w in weights]
    counts = {name: int(x) for name, x in exact}
    left = total - sum(counts.values())
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i][1] - int(exact[i][1])), i))
    for i in by_remainder[:left]:
        counts[exact[i][0]] += 1
    return counts


def percentages(counts: Mapping[str, int]) -> dict[str, int]:
    """Counts as whole percentages that sum to 100 (largest remainder), 0 for all when empty."""
    total = sum(counts.values())
    if total <= 0:
        return {name: 0 for name in counts}
    return replica_split([(name, n) for name, n in counts.items()], 100)


@dataclass(frozen=True)
class VariantPlan:
    name: str
    replicas: int
    weight: int  # the route weight (gatewayAPI) or the spec weight (replicas)
    shadow: bool


def plan_variants(spec: ModelDeploymentSpec) -> list[VariantPlan]:
    """Pods and weights per variant. In replicas mode live pods are shared out by weight."""
    mode = spec.routing.mode if spec.routing else "replicas"
    live = [v for v in spec.variants if not v.shadow]
    if mode == "replicas":
        total = sum(v.replicas for v in live)
        counts = replica_split([(v.name, v.weight) for v in live], total)
    else:
        counts = {v.name: v.replicas for v in live}
    plans = [VariantPlan(v.name, counts[v.name], v.weight, False) for v in live]
    plans += [VariantPlan(v.name, v.replicas, 0, True) for v in spec.variants if v.shadow]
    return plans


def split_message(spec: ModelDeploymentSpec, plans: Sequence[VariantPlan]) -> str | None:
    """Why replica ratios cannot give the weights asked for, or None when they do."""
    if (spec.routing.mode if spec.routing else "replicas") != "replicas":
        return None
    live = [p for p in plans if not p.shadow]
    total = sum(p.replicas for p in live)
    got = percentages({p.name: p.replicas for p in live})
    wanted = {v.name: v.weight for v in spec.variants if not v.shadow}
    if got == wanted:
        return None
    shown = ", ".join(f"{n} {got[n]}% (asked {wanted[n]}%)" for n in wanted)
    need = _pods_for(list(wanted.values()))
    return (
        f"{total} pods cannot split {'/'.join(str(w) for w in wanted.values())}: they give {shown}; "
        f"set the variants' replicas to sum to {need} (or a multiple), or use routing.mode gatewayAPI"
    )


def _pods_for(weights: list[int]) -> int:
    from math import gcd

    g = 0
    for w in weights:
        g = gcd(g, w)
    return sum(weights) // g if g else 1


# --- children --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServingContext:
    """What the operator adds to the spec: the image, the tracking server, the owner."""

    owner: Owner
    image: str
    tracking_url: str


def _labels(owner: Owner, model: str, variant: str | None = None) -> dict[str, str]:
    labels = {
        LABEL_DEPLOYMENT: label_value(owner.name),
        LABEL_MODEL: label_value(model),
        "app.kubernetes.io/name": "modelship-model-server",
        "app.kubernetes.io/managed-by": "modelship",
    }
    if variant:
        labels[LABEL_VARIANT] = variant
    return labels


def _meta(name: str, owner: Owner, labels: Mapping[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": owner.namespace, "labels": dict(labels), "ownerReferences": [owner.reference()]}


def _selector(owner: Owner, variant: str, track: str | None = None) -> dict[str, str]:
    sel = {LABEL_DEPLOYMENT: label_value(owner.name), LABEL_VARIANT: variant}
    if track:
        sel[LABEL_TRACK] = track
    return sel


def drift_env(monitoring: Monitoring | None) -> list[dict[str, str]]:
    """``spec.monitoring`` as the model server's drift settings (none: the server's defaults,
    the same numbers)."""
    if monitoring is None:
        return []
    m = monitoring
    return [
        {"name": "MODELSHIP_DRIFT", "value": "true" if m.enabled else "false"},
        {"name": "MODELSHIP_DRIFT_WINDOW", "value": str(m.window)},
        {"name": "MODELSHIP_DRIFT_MIN_SAMPLES", "value": str(m.min_samples)},
        {"name": "MODELSHIP_DRIFT_PSI_WARN", "value": repr(float(m.psi_warn))},
        {"name": "MODELSHIP_DRIFT_PSI_ALERT", "value": repr(float(m.alert))},
        {"name": "MODELSHIP_DRIFT_IGNORE", "value": ",".join(m.ignore_features or [])},
    ]


def build_deployment(
    spec: ModelDeploymentSpec,
    plan: VariantPlan,
    resolved: Resolved,
    ctx: ServingContext,
    *,
    track: str = "stable",
    replicas: int | None = None,
) -> dict[str, Any]:
    """The variant's Deployment (or its canary's): the model server for the resolved version."""
    variant = next(v for v in spec.variants if v.name == plan.name)
    owner = ctx.owner
    assert resolved.version is not None and resolved.source
    pod_labels = {**_labels(owner, spec.model, plan.name), LABEL_VERSION: str(resolved.version), LABEL_TRACK: track}
    mode = spec.routing.mode if spec.routing else "replicas"
    # Behind the ModelDeployment's own Service: live variants, and a canary only in replicas
    # mode (where its share is its pods'); with a Gateway, the route's weights are its share.
    if not plan.shadow and (track == "stable" or mode == "replicas"):
        pod_labels[LABEL_SERVING] = "true"
    # Feedback reaches any pod that answers clients (a canary's too, also behind a Gateway):
    # they find each other through the peers Service. A shadow's replies reach no client.
    peers_env = []
    if not plan.shadow:
        pod_labels[LABEL_ANSWERS] = "true"
        peers_env = [
            {
                "name": "MODELSHIP_FEEDBACK_PEERS",
                "value": f"{peers_name(owner.name)}.{owner.namespace}.svc:{SERVER_PORT}",
            },
            {"name": "MODELSHIP_POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
        ]
    env = [
        {"name": "MLFLOW_TRACKING_URI", "value": ctx.tracking_url},
        {"name": "HOME", "value": "/tmp"},
        {"name": "MODELSHIP_MODEL_CACHE", "value": "/tmp/models"},
        # Keep serving 5 s after SIGTERM with /ping failing: the endpoint leaves the Service first.
        {"name": "MODELSHIP_SHUTDOWN_DELAY_S", "value": str(SHUTDOWN_DELAY_S)},
        *peers_env,
        *drift_env(spec.monitoring),
        *[e.wire() for e in spec.env or []],
    ]
    probe = {"httpGet": {"path": "/ping", "port": "http", "scheme": "HTTP"}, "timeoutSeconds": 2, "successThreshold": 1}
    resources = (
        variant.resources.wire()
        if variant.resources
        else {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}}
    )
    container = {
        "name": "model-server",
        "image": spec.image or ctx.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "serve",
            "--model-uri",
            resolved.source,
            "--host",
            "0.0.0.0",
            "--port",
            str(SERVER_PORT),
            "--model-name",
            spec.model,
            "--model-version",
            str(resolved.version),
            "--variant",
            plan.name,
            *(["--allow-pickle"] if spec.allow_pickle else []),
        ],
        "env": env,
        "ports": [{"name": "http", "containerPort": SERVER_PORT, "protocol": "TCP"}],
        # /ping answers 200 only once the model is loaded: no traffic before, and 5 min to load.
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 150},
        "readinessProbe": {**probe, "periodSeconds": 2, "failureThreshold": 2},
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http", "scheme": "HTTP"},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
            "successThreshold": 1,
        },
        "resources": resources,
        "securityContext": container_security_context(read_only_root=True),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    name = canary_name(owner.name, plan.name) if track == "canary" else variant_name(owner.name, plan.name)
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, owner, {**_labels(owner, spec.model, plan.name), LABEL_TRACK: track}),
        "spec": {
            "selector": {"matchLabels": _selector(owner, plan.name, track)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": pod_labels, "annotations": {ANNOTATION_MODEL_URI: resolved.source}},
                "spec": {
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "restartPolicy": "Always",
                    "dnsPolicy": "ClusterFirst",
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": pod_security_context(),
                },
            },
        },
    }
    if replicas is not None:
        body["spec"]["replicas"] = replicas
    elif spec.autoscaling is None:
        body["spec"]["replicas"] = plan.replicas
    return body


def _service(name: str, owner: Owner, labels: Mapping[str, str], selector: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, owner, labels),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "sessionAffinity": "None",
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def build_variant_service(
    spec: ModelDeploymentSpec, variant: str, owner: Owner, track: str = "stable"
) -> dict[str, Any]:
    name = canary_name(owner.name, variant) if track == "canary" else variant_name(owner.name, variant)
    return _service(name, owner, _labels(owner, spec.model, variant), _selector(owner, variant, track))


def build_service(spec: ModelDeploymentSpec, owner: Owner) -> dict[str, Any]:
    """The ModelDeployment's own Service, over every live variant's ready pods."""
    selector = {LABEL_DEPLOYMENT: label_value(owner.name), LABEL_SERVING: "true"}
    return _service(owner.name, owner, _labels(owner, spec.model), selector)


def build_peers_service(spec: ModelDeploymentSpec, owner: Owner) -> dict[str, Any]:
    """The headless Service whose DNS name resolves to every Ready pod that answers clients
    (``clusterIP: None``: no virtual IP, no kube-proxy rules; CoreDNS gives the pod IPs)."""
    selector = {LABEL_DEPLOYMENT: label_value(owner.name), LABEL_ANSWERS: "true"}
    body = _service(peers_name(owner.name), owner, _labels(owner, spec.model), selector)
    body["spec"] = {
        "clusterIP": "None",
        "selector": selector,
        "publishNotReadyAddresses": False,
        "ports": [{"name": "http", "port": SERVER_PORT, "targetPort": "http", "protocol": "TCP"}],
    }
    return body


def build_pdb(spec: ModelDeploymentSpec, variant: str, owner: Owner) -> dict[str, Any]:
    """At most one pod of the variant away by a voluntary disruption (a drain, an eviction)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(variant_name(owner.name, variant), owner, _labels(owner, spec.model, variant)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(owner, variant)}},
    }


def build_hpa(spec: ModelDeploymentSpec, variant: str, owner: Owner) -> dict[str, Any]:
    assert spec.autoscaling is not None
    a = spec.autoscaling
    name = variant_name(owner.name, variant)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(name, owner, _labels(owner, spec.model, variant)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": a.target_cpu_utilization},
                    },
                }
            ],
        },
    }


def _backend(
    name: str,
    weight: int,
    *,
    group: str = "",
    kind: str = "Service",
    port: int | None = SERVICE_PORT,
    namespace: str | None = None,
) -> dict[str, Any]:
    ref: dict[str, Any] = {"group": group, "kind": kind, "name": name}
    if namespace:
        ref["namespace"] = namespace
    if port is not None:
        ref["port"] = port
    ref["weight"] = weight
    return ref


def mirror_service_name(owner: Owner, variant: str) -> str:
    return shorten(owner.name, f"-{variant}-mirrored")


def build_route(
    spec: ModelDeploymentSpec, plans: Sequence[VariantPlan], owner: Owner, canary: CanaryPlan | None = None
) -> list[dict[str, Any]]:
    """The HTTPRoute (and, mirroring the Traefik way, its TraefikServices).

    One rule per live variant that a ``x-modelship-variant: <name>`` header pins, then the
    weighted rule. A shadow variant gets a copy of every live request: through the
    RequestMirror filter, or by wrapping each live backend in a TraefikService whose
    ``mirroring`` sends the copy.
    """
    assert spec.routing is not None and spec.routing.gateway is not None
    routing, gw = spec.routing, spec.routing.gateway
    live = [p for p in plans if not p.shadow]
    shadow = next((p for p in plans if p.shadow), None)
    traefik = shadow is not None and routing.mirror == "TraefikService"
    objects: list[dict[str, Any]] = []

    def one(variant: str, weight: int) -> dict[str, Any]:
        if traefik:
            return _backend(
                mirror_service_name(owner, variant), weight, group="traefik.io", kind="TraefikService", port=None
            )
        return _backend(variant_name(owner.name, variant), weight)

    splitting = canary is not None and canary.weight > 0

    def targets(variant: str, weight: int) -> list[dict[str, Any]]:
        """The variant's backends; during its canary the new version takes its share of the
        variant's weight (all weights are then in hundredths, to keep the proportions whole)."""
        if not splitting:
            return [one(variant, weight)]
        assert canary is not None
        if canary.variant != variant:
            return [one(variant, weight * 100)]
        return [
            one(variant, weight * (100 - canary.weight)),
            _backend(canary_name(owner.name, variant), weight * canary.weight),
        ]

    if traefik:
        assert shadow is not None
        for p in live:
            objects.append(
                {
                    "apiVersion": "traefik.io/v1alpha1",
                    "kind": "TraefikService",
                    "metadata": _meta(mirror_service_name(owner, p.name), owner, _labels(owner, spec.model, p.name)),
                    "spec": {
                        "mirroring": {
                            "name": variant_name(owner.name, p.name),
                            "port": SERVICE_PORT,
                            "mirrors": [
                                {"name": variant_name(owner.name, shadow.name), "port": SERVICE_PORT, "percent": 100}
                            ],
                        }
                    },
                }
            )
    prefix = {"path": {"type": "PathPrefix", "value": "/"}}
    rules: list[dict[str, Any]] = [
        {
            "matches": [{**prefix, "headers": [{"type": "Exact", "name": VARIANT_HEADER, "value": p.name}]}],
            "backendRefs": targets(p.name, 1),
        }
        for p in live
    ]
    split: dict[str, Any] = {
        "matches": [prefix],
        "backendRefs": [ref for p in live for ref in targets(p.name, p.weight)],
    }
    if shadow is not None and not traefik:
        split["filters"] = [
            {
                "type": "RequestMirror",
                "requestMirror": {
                    "backendRef": {
                        "group": "",
                        "kind": "Service",
                        "name": variant_name(owner.name, shadow.name),
                        "port": SERVICE_PORT,
                    }
                },
            }
        ]
    rules.append(split)
    parent: dict[str, Any] = {
        "group": GATEWAY_GROUP,
        "kind": "Gateway",
        "namespace": gw.namespace or owner.namespace,
        "name": gw.name,
    }
    if gw.section_name:
        parent["sectionName"] = gw.section_name
    route_spec: dict[str, Any] = {"parentRefs": [parent], "rules": rules}
    if routing.hostnames:
        route_spec["hostnames"] = list(routing.hostnames)
    objects.append(
        {
            "apiVersion": f"{GATEWAY_GROUP}/v1",
            "kind": "HTTPRoute",
            "metadata": _meta(owner.name, owner, _labels(owner, spec.model)),
            "spec": route_spec,
        }
    )
    return objects


@dataclass(frozen=True)
class CanaryPlan:
    """A variant's canary as the children see it: the version held, the one on trial, the traffic."""

    variant: str
    stable: Resolved  # what the variant's own Deployment serves meanwhile
    candidate: Resolved
    weight: int  # percent of the variant's traffic to the candidate now
    pods: bool = True  # the candidate's Deployment exists (False once rolled back or promoted)


def canary_replicas(stable: int, weight: int) -> int:
    """Pods of the candidate so that, beside ``stable`` pods, it takes about ``weight`` % (replicas mode)."""
    if weight <= 0:
        return 1
    if weight >= 50:
        return max(1, stable)
    return max(1, round(stable * weight / (100 - weight)))


@dataclass
class ChildPlan:
    """Every child the ModelDeployment should have, and the variants held back."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # variant -> why its Deployment is left as it is

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.objects, sort_keys=True).encode()).hexdigest()[:16]


def may_have_strays(applied_digest: str | None, digest: str, status: Mapping[str, Any] | None) -> bool:
    """Whether children the plan no longer names may exist, so the prune must list them.

    ``applied_digest`` is the digest of the plan this process applied last (None: none yet).
    A plan that changed since may have dropped a variant (or a canary, a route); a
    ModelDeployment this process has not applied yet but with variants in its status was
    reconciled by an earlier operator, which may have left some. A new one (no apply yet,
    no status of variants) has no children but the ones being applied, and the periodic
    resync of an unchanged plan has none either (its children carry our labels and owner,
    and only a changed plan drops one): listing six kinds to find none cost six LIST calls
    per ModelDeployment each time, every minute of its life at the resync.
    """
    if applied_digest is None:
        return bool((status or {}).get("variants"))
    return applied_digest != digest


def apply_due(
    applied: tuple[str, float] | None,
    digest: str,
    now: float,
    missing: bool,
    *,
    resync: float,
    grace: float,
) -> bool:
    """Whether to apply the children now: the plan (``digest``) changed since the last apply
    (``applied``: its digest and when); a Deployment of the plan is ``missing`` from the
    operator's watch ``grace`` seconds after that apply (deleted by hand: it comes back; the
    grace lets the watch show our own apply first); or ``resync`` seconds went by (another
    child deleted or edited by hand is put back; server-side apply of an unchanged object
    changes nothing, but each is a request per child)."""
    if applied is None or applied[0] != digest:
        return True
    if missing and applied[1] + grace < now:
        return True
    return applied[1] + resync < now


def slim_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """What :func:`pod_facts` reads of a model-server pod (kept in the operator's index of them)."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    containers = []
    for c in status.get("containerStatuses") or []:
        waiting = (c.get("state") or {}).get("waiting") or {}
        last = (c.get("lastState") or {}).get("terminated") or {}
        containers.append(
            {
                "restartCount": c.get("restartCount", 0),
                "waiting": {k: waiting[k] for k in ("reason", "message") if k in waiting},
                "terminated": {k: last[k] for k in ("exitCode", "reason", "message") if k in last},
            }
        )
    return {
        "name": meta.get("name"),
        "version": (meta.get("labels") or {}).get(LABEL_VERSION),
        "ready": any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []),
        "containers": containers,
    }


FAILING_WAITS = ("ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError", "InvalidImageName")


def pod_facts(pods: Iterable[Mapping[str, Any]], version: str | None) -> tuple[str | None, list[int]]:
    """The model server's own words when pods of the current version keep failing, and the
    versions its Ready pods serve meanwhile (``pods``: :func:`slim_pod` of the variant's pods)."""
    failure: str | None = None
    serving_versions: set[int] = set()
    for pod in sorted(pods, key=lambda p: str(p.get("name"))):
        pod_version = pod.get("version")
        if pod.get("ready") and pod_version and str(pod_version).isdigit():
            serving_versions.add(int(pod_version))
        if failure is not None or (version and pod_version != version):
            continue
        for c in pod.get("containers") or ():
            waiting, last = c.get("waiting") or {}, c.get("terminated") or {}
            if c.get("restartCount", 0) > 0 and last:
                text = (last.get("message") or last.get("reason") or "").strip()
                failure = f"pod {pod['name']} exited {last.get('exitCode')}: {text[-600:]}"
            elif waiting.get("reason") in FAILING_WAITS:
                failure = f"pod {pod['name']}: {waiting['reason']}: {waiting.get('message', '')}"
    return failure, sorted(serving_versions)


def plan_children(
    spec: ModelDeploymentSpec,
    resolved: Mapping[str, Resolved],
    ctx: ServingContext,
    existing_deployments: set[str],
    canary: CanaryPlan | None = None,
) -> ChildPlan:
    """What to apply. A variant whose version cannot be resolved keeps the Deployment it has
    (it goes on serving what it served); with none yet, it gets none. A variant in its
    canary keeps the old version, and the new one runs beside it on track ``canary``."""
    out = ChildPlan()
    owner = ctx.owner
    plans = plan_variants(spec)
    mode = spec.routing.mode if spec.routing else "replicas"
    for p in plans:
        r = resolved[p.name]
        name = variant_name(owner.name, p.name)
        if canary is not None and canary.variant == p.name:
            r = canary.stable
        if r.error or r.version is None:
            out.held[p.name] = r.error or "unresolved"
        else:
            out.objects.append(build_deployment(spec, p, r, ctx))
        if canary is not None and canary.variant == p.name and canary.pods:
            pods = 1 if mode == "gatewayAPI" else canary_replicas(p.replicas, canary.weight)
            out.objects.append(build_deployment(spec, p, canary.candidate, ctx, track="canary", replicas=pods))
            out.objects.append(build_variant_service(spec, p.name, owner, track="canary"))
        if r.version is not None or name in existing_deployments:
            out.objects.append(build_variant_service(spec, p.name, owner))
            out.objects.append(build_pdb(spec, p.name, owner))
            if spec.autoscaling is not None:
                out.objects.append(build_hpa(spec, p.name, owner))
    out.objects.append(build_service(spec, owner))
    out.objects.append(build_peers_service(spec, owner))
    if spec.routing is not None and spec.routing.mode == "gatewayAPI":
        out.objects += build_route(spec, plans, owner, canary if canary is not None and canary.pods else None)
    return out


# --- status ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObservedVariant:
    """What the cluster says of one variant: its Deployment and its pods."""

    replicas: int = 0
    ready: int = 0
    updated: int = 0
    available: int = 0
    exists: bool = False
    up_to_date: bool = False  # the Deployment controller has seen the latest spec
    version: int | None = None  # the version label of its pod template
    failure: str | None = None  # a pod's own message when its model server keeps failing
    serving_versions: tuple[int, ...] = ()  # what its Ready pods serve (looked at only while not all are)
    progress_deadline_exceeded: bool = False


def variant_status(
    spec: ModelDeploymentSpec,
    plans: Sequence[VariantPlan],
    resolved: Mapping[str, Resolved],
    observed: Mapping[str, ObservedVariant],
) -> list[dict[str, Any]]:
    mode = spec.routing.mode if spec.routing else "replicas"
    live_ready = {p.name: observed.get(p.name, ObservedVariant()).ready for p in plans if not p.shadow}
    if mode == "replicas":
        effective = percentages(live_ready)
    else:
        effective = {p.name: p.weight if live_ready.get(p.name) else 0 for p in plans if not p.shadow}
    out = []
    for p in plans:
        o = observed.get(p.name, ObservedVariant())
        r = resolved[p.name]
        entry: dict[str, Any] = {
            "name": p.name,
            "version": o.version if o.version is not None else r.version,
            "replicas": p.replicas if spec.autoscaling is None else o.replicas,
            "readyReplicas": o.ready,
            "updatedReplicas": o.updated,
            "effectiveWeight": 0 if p.shadow else effective.get(p.name, 0),
        }
        if r.model_version:
            entry["modelVersion"] = r.model_version
        if p.shadow:
            entry["shadow"] = True
        message = r.error or o.failure
        if message:
            entry["message"] = message
        out.append(entry)
    return out


@dataclass(frozen=True)
class Verdict:
    phase: str
    message: str
    ready: bool
    progressing: bool
    degraded: bool
    reason: str


def decide_phase(
    spec: ModelDeploymentSpec,
    plans: Sequence[VariantPlan],
    resolved: Mapping[str, Resolved],
    observed: Mapping[str, ObservedVariant],
) -> Verdict:
    """Healthy when every variant serves its resolved version with all its pods ready."""
    problems, rolling = [], []
    for p in plans:
        o, r = observed.get(p.name, ObservedVariant()), resolved[p.name]
        if r.error:
            problems.append(r.error if not o.exists else f"{r.error}; it goes on serving version {o.version}")
            continue
        if o.failure or o.progress_deadline_exceeded:
            older = [v for v in o.serving_versions if v != r.version]
            kept = f"; version {', '.join(map(str, older))} keeps serving" if older else "; nothing serves it"
            problems.append(
                f"variant {p.name} version {r.version}: {o.failure or 'the rollout exceeded its deadline'}{kept}"
            )
            continue
        want = o.replicas if spec.autoscaling is not None else p.replicas
        if (
            not o.exists
            or not o.up_to_date
            or o.version != r.version
            or o.updated < want
            or o.ready < want
            or o.replicas > want
        ):
            rolling.append(f"{p.name} {o.ready}/{want} ready of version {r.version}")
    if problems:
        return Verdict(
            "Degraded",
            "; ".join(problems),
            ready=not rolling and _all_serving(plans, observed),
            progressing=bool(rolling),
            degraded=True,
            reason="VariantFailing",
        )
    if rolling:
        return Verdict(
            "Progressing",
            "rolling out: " + ", ".join(rolling),
            ready=False,
            progressing=True,
            degraded=False,
            reason="RollingOut",
        )
    split = ", ".join(f"{p.name} v{resolved[p.name].version}" for p in plans)
    return Verdict("Healthy", f"serving {split}", ready=True, progressing=False, degraded=False, reason="Serving")


def _all_serving(plans: Sequence[VariantPlan], observed: Mapping[str, ObservedVariant]) -> bool:
    return all(observed.get(p.name, ObservedVariant()).ready > 0 for p in plans if p.replicas > 0)


def split_summary(status_variants: Sequence[Mapping[str, Any]]) -> str:
    """``blue=80 green=20`` (a shadow shows as ``name=shadow``)."""
    return " ".join(
        f"{v['name']}={'shadow' if v.get('shadow') else v.get('effectiveWeight', 0)}" for v in status_variants
    )
