"""The Kubernetes permissions the operator's code needs, declared next to that code.

``REQUIRED_RULES`` is the one list. The Helm chart's ``files/rbac/*.yaml`` are generated
from it (``python scripts/render_install.py``; a unit test fails when they drift), and so
is ``manifests/install.yaml``, the chart rendered. A controller that starts touching a
new resource adds its rule here first.

Least privilege, measured: each verb is one the code (or kopf on its behalf) calls, and
tests/e2e/test_rbac_usage.py proves it. It runs e2e flows of all four kinds with the operator
under the chart's ServiceAccount, reads the API server's audit log, and fails on a call these
rules do not grant and on a granted verb no call used. Hence no ``get`` where the code lists,
no ``watch`` where it polls, no ``delete`` of what it never deletes. A server-side apply that
creates its object is authorized as ``patch`` and as ``create``.

Scope: ``cluster_scoped`` rules (cluster-scoped resources, and the Gateway a route names in
any namespace) are granted by a ClusterRole and ClusterRoleBinding; the rest by a second
ClusterRole bound cluster-wide when the operator watches every namespace, and by a Role and
RoleBinding in each watched namespace when it watches some (the chart's
``operator.watchNamespaces``). ``watching`` marks the rules one of those two modes needs
alone: kopf lists and watches Namespaces only when it serves some, and its peering object is
a ClusterKopfPeering for an operator of every namespace, a KopfPeering per namespace
otherwise. Secrets are not among them:
the operator reads exactly one, the webhooks' HMAC key (``--webhook-secret NS/NAME``), and
:data:`WEBHOOK_SECRET_RULE` grants ``get`` on that name only (``resourceNames``), in its
namespace. Trial pods read their own Secrets (``secretKeyRef``) with the kubelet's rights.

kopf's peering does not use coordination.k8s.io Leases but objects of its own CRDs
(``kopf.dev``), so those rules exist only with peering.

``REGISTRY_READER_RULES`` are the rules of another account: the tracking server's, when it
serves the MLflow registry read API from ModelVersion and RegisteredModel objects
(``--registry-in-cluster``, :class:`modelship.tracking.server.registry.KubeReader`);
``REGISTRY_WRITER_RULES`` are what its write API adds (unless ``--no-registry-writes``).
The chart's ``files/rbac/tracking-rules.yaml`` and ``tracking-write-rules.yaml`` must
grant exactly these, and unit tests check it and that the server's API calls need exactly
these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modelship.api import GROUP, KINDS
from modelship.resources.webhooks import DELIVERIES_CONFIGMAP

ANY, ALL, SOME = "any", "all", "some"
"""Values of :attr:`Rule.watching`."""

CHILD = ("create", "delete", "list", "patch")
"""A ModelDeployment's children: server-side apply, and the prune, which lists them by label and
deletes those the plan no longer has (controllers/modeldeployment.py ``apply_children``,
``prune_children``). An apply is a PATCH, but one that creates the object needs ``create`` too:
the API server authorizes both (the audit log shows a PATCH answered 201)."""


@dataclass(frozen=True)
class Rule:
    """One PolicyRule, with the reason it is needed."""

    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str
    peering_only: bool = False
    cluster_scoped: bool = False
    """Granted cluster-wide whatever the operator watches: cluster-scoped resources, or ones the
    code reads in any namespace (a Gateway)."""
    watching: str = ANY
    """When the rule is needed: whatever the operator watches (``ANY``), only when it watches
    every namespace (``ALL``: ``--all-namespaces``), or only when it watches some (``SOME``:
    the chart's ``operator.watchNamespaces``)."""
    resource_names: tuple[str, ...] = ()
    """Only these objects (``resourceNames``); empty: every object of the resources."""

    def policy_rule(self) -> dict[str, Any]:
        """The rule as a ClusterRole lists it."""
        rule: dict[str, Any] = {
            "apiGroups": [self.api_group],
            "resources": list(self.resources),
            "verbs": sorted(self.verbs),
        }
        if self.resource_names:
            rule["resourceNames"] = list(self.resource_names)
        return rule


_PLURALS = tuple(k.plural for k in KINDS)

REQUIRED_RULES: tuple[Rule, ...] = (
    Rule(
        GROUP,
        _PLURALS,
        ("list", "watch", "patch"),
        "kopf lists and watches the four kinds and patches its progress and diff-base annotations onto them",
    ),
    Rule(
        GROUP,
        tuple(f"{p}/status" for p in _PLURALS),
        ("patch",),
        "write status (observedGeneration, conditions) through the status subresource",
    ),
    Rule(
        GROUP,
        ("modelversions",),
        ("create",),
        "an Experiment registers its best run as a ModelVersion (not owned: it outlives the Experiment)",
    ),
    Rule(
        GROUP,
        ("modelversions", "registeredmodels"),
        ("get",),
        "the registry view (controllers/registry_view.py) reads one object again when a conditional write of it "
        "answers 409 (its copy was stale)",
    ),
    Rule(
        GROUP,
        ("experiments",),
        ("create",),
        "spec.monitoring.retrain: a ModelDeployment whose drift holds creates one retraining Experiment "
        "(owned by it; a 409 means it exists)",
    ),
    Rule(
        "",
        ("events",),
        ("create",),
        "kopf posts warnings and handler failures as Events on the object",
    ),
    Rule(
        "apiextensions.k8s.io",
        ("customresourcedefinitions",),
        ("list", "watch"),
        "kopf discovers the served kinds and notices CRDs installed after it starts",
        cluster_scoped=True,
    ),
    Rule(
        "",
        ("namespaces",),
        ("list", "watch"),
        "kopf follows the watched namespaces as they appear and disappear (an operator of every namespace does not)",
        cluster_scoped=True,
        watching=SOME,
    ),
    Rule(
        "gateway.networking.k8s.io",
        ("gateways",),
        ("get",),
        "a gatewayAPI ModelDeployment checks that its Gateway exists, in whatever namespace "
        "spec.routing.gateway.namespace names (read only)",
        cluster_scoped=True,
    ),
    Rule(
        "batch",
        ("jobs",),
        ("create", "list", "patch"),
        "one Job per Experiment trial: created (a 409 means it exists), listed by label each tick, "
        "ended (merge patch of activeDeadlineSeconds) when early stopping or maxFailedTrials stops a trial",
    ),
    Rule(
        "",
        ("pods",),
        ("list", "watch"),
        "trial pods' phase and failure reasons (listed by label); model-server pods' readiness and failure "
        "reasons (kopf indexes them: list, watch, by the ModelDeployment label, selected server-side)",
    ),
    Rule(
        "",
        ("configmaps",),
        ("create", "get", "list", "patch"),
        "per-model registry counters (get, create, merge patch), the webhook outboxes (listed by label) and "
        "each namespace's webhook delivery record (get once, merge patch, create)",
    ),
    Rule(
        "apps",
        ("deployments",),
        (*CHILD, "watch"),
        "one Deployment per ModelDeployment variant; kopf indexes them (list, watch) by the ModelDeployment label",
    ),
    Rule("", ("services",), CHILD, "the Service in front of a ModelDeployment and one per variant"),
    Rule("policy", ("poddisruptionbudgets",), CHILD, "a PodDisruptionBudget per ModelDeployment variant"),
    Rule("autoscaling", ("horizontalpodautoscalers",), CHILD, "a variant's HPA when spec.autoscaling is set"),
    Rule("gateway.networking.k8s.io", ("httproutes",), CHILD, "the weighted HTTPRoute of routing.mode gatewayAPI"),
    Rule("traefik.io", ("traefikservices",), CHILD, "a shadow variant's mirror with routing.mirror TraefikService"),
    Rule(
        "kopf.dev",
        ("clusterkopfpeerings",),
        ("get", "list", "watch", "patch"),
        "kopf peering of a cluster-wide operator (only with --peering)",
        peering_only=True,
        cluster_scoped=True,
        watching=ALL,
    ),
    Rule(
        "kopf.dev",
        ("kopfpeerings",),
        ("get", "list", "watch", "patch"),
        "kopf peering of a namespaced operator (only with --peering)",
        peering_only=True,
        watching=SOME,
    ),
)

WEBHOOK_SECRET_RULE = Rule(
    "",
    ("secrets",),
    ("get",),
    "the registry webhooks' HMAC key: the one Secret --webhook-secret names, by resourceNames (controllers/webhooks.py)",
)
"""Granted in the Secret's namespace, for its name only, when the operator signs webhooks."""

UI_CLUSTER_RULE = Rule(
    GROUP,
    ("experiments", "modeldeployments"),
    ("list",),
    "the web UI's Kubernetes views list Experiments (trials) and ModelDeployments (split, replicas) "
    "through the same reader (tracking/server/ui_cluster.py)",
)
"""Part of ``REGISTRY_READER_RULES``: what the web UI's cluster views add to the registry's reads."""

WEBHOOK_RECORD_RULE = Rule(
    "",
    ("configmaps",),
    ("get",),
    "the web UI's registry page shows webhook delivery status from each namespace's delivery record, "
    "read by name only (tracking/server/ui_cluster.py)",
    resource_names=(DELIVERIES_CONFIGMAP,),
)
"""Part of ``REGISTRY_READER_RULES``: the one ConfigMap per namespace the tracking server reads, by name."""

UI_LIVE_RULE = Rule(
    "discovery.k8s.io",
    ("endpointslices",),
    ("list",),
    "the web UI's live per-variant figures find a ModelDeployment's model-server pods in its variants' "
    "EndpointSlices (addresses and readiness; not pods, whose specs carry their environment) and scrape their "
    "/metrics (tracking/server/live.py)",
)
"""Part of ``REGISTRY_READER_RULES``: the Deployments page's live request rate, error rate and p99."""

REGISTRY_READER_RULES: tuple[Rule, ...] = (
    Rule(
        GROUP,
        ("modelversions", "registeredmodels"),
        ("list",),
        "the tracking server's MLflow registry read API lists ModelVersions and RegisteredModels (KubeReader)",
    ),
    UI_CLUSTER_RULE,
    WEBHOOK_RECORD_RULE,
    UI_LIVE_RULE,
)

REGISTRY_WRITER_RULES: tuple[Rule, ...] = (
    Rule(
        GROUP,
        ("modelversions",),
        ("create", "delete", "get", "patch"),
        "the MLflow registry write API creates, changes and deletes ModelVersions and reads a new one back until "
        "it is numbered (tracking/server/registry_write.py)",
    ),
    Rule(
        GROUP,
        ("registeredmodels",),
        ("create", "delete", "patch"),
        "the MLflow registry write API creates, changes and deletes RegisteredModels",
    ),
)

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)


def grants(rules: Iterable[Rule]) -> set[Grant]:
    """Every (group, resource, verb) that ``rules`` grant."""
    return {(r.api_group, res, v) for r in rules for res in r.resources for v in r.verbs}


def required_grants(*, peering: bool, cluster_scoped: bool | None = None, watching: str | None = None) -> set[Grant]:
    """What the operator needs, with or without kopf peering; only the cluster-scoped rules'
    or only the others' when ``cluster_scoped`` says which; when ``watching`` is ALL or SOME,
    what an operator of every namespace or of some needs (None: either)."""
    return grants(
        r
        for r in REQUIRED_RULES
        if (peering or not r.peering_only)
        and cluster_scoped in (None, r.cluster_scoped)
        and (watching is None or r.watching in (ANY, watching))
    )


def granted_by(policy_rules: Iterable[Mapping[str, Any]]) -> set[Grant]:
    """Every (group, resource, verb) that ClusterRole ``rules`` grant (no wildcards)."""
    out: set[Grant] = set()
    for rule in policy_rules:
        for group in rule.get("apiGroups") or [""]:
            for res in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    out.add((group, res, verb))
    return out


def policy_rules(*, peering_only: bool, cluster_scoped: bool, watching: str | None = None) -> list[Rule]:
    """The rules of one of the chart's files/rbac/*.yaml: base or peering, cluster-scoped or not,
    and (when ``watching`` is given) needed in that mode only."""
    return [
        r
        for r in REQUIRED_RULES
        if r.peering_only == peering_only
        and r.cluster_scoped == cluster_scoped
        and (watching is None or r.watching == watching)
    ]
