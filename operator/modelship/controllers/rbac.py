"""The Kubernetes permissions the operator's code needs, declared next to that code.

``REQUIRED_RULES`` is the one list. The Helm chart's ``files/rbac/*.yaml`` are generated
from it (``python scripts/render_install.py``; a unit test fails when they drift), and so
is ``manifests/install.yaml``, the chart rendered. A controller that starts touching a
new resource adds its rule here first.

Rules for child resources (Jobs, Deployments, Services, ...) are granted from the
start, so that installs do not change shape with each feature; the verbs are the ones
their appliers use: ``patch`` for server-side apply (an apply PATCH that creates the
object is still authorized as ``patch``) and JSON merge patches, ``create`` for
:func:`modelship.kube.ensure`, ``delete`` of children that are no longer wanted, and
``get/list/watch`` to observe them.

Scope: rules of cluster-scoped resources (``cluster_scoped``) are granted by a ClusterRole
and ClusterRoleBinding; the rest by a second ClusterRole that is bound cluster-wide when
the operator watches every namespace, and by a RoleBinding in each watched namespace when
it watches some (the chart's ``operator.watchNamespaces``). Secrets are not among them:
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

READ = ("get", "list", "watch")
MANAGE = ("create", "delete", "get", "list", "patch", "watch")


@dataclass(frozen=True)
class Rule:
    """One PolicyRule, with the reason it is needed."""

    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str
    peering_only: bool = False
    cluster_scoped: bool = False
    """The resources are cluster-scoped: granted cluster-wide whatever the operator watches."""

    def policy_rule(self) -> dict[str, Any]:
        """The rule as a ClusterRole lists it."""
        return {
            "apiGroups": [self.api_group],
            "resources": list(self.resources),
            "verbs": sorted(self.verbs),
        }


_PLURALS = tuple(k.plural for k in KINDS)

REQUIRED_RULES: tuple[Rule, ...] = (
    Rule(
        GROUP,
        _PLURALS,
        ("get", "list", "watch", "patch"),
        "watch the four kinds; kopf patches its progress and diff-base annotations",
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
        "kopf follows namespaces that appear and disappear",
        cluster_scoped=True,
    ),
    Rule("batch", ("jobs",), MANAGE, "one Job per Experiment trial"),
    Rule("apps", ("deployments",), MANAGE, "one Deployment per ModelDeployment variant"),
    Rule("", ("services",), MANAGE, "the Service in front of a ModelDeployment and one per variant"),
    Rule("policy", ("poddisruptionbudgets",), MANAGE, "a PodDisruptionBudget per ModelDeployment variant"),
    Rule("autoscaling", ("horizontalpodautoscalers",), MANAGE, "a variant's HPA when spec.autoscaling is set"),
    Rule("gateway.networking.k8s.io", ("httproutes",), MANAGE, "the weighted HTTPRoute of routing.mode gatewayAPI"),
    Rule("traefik.io", ("traefikservices",), MANAGE, "a shadow variant's mirror with routing.mirror TraefikService"),
    Rule("", ("configmaps",), MANAGE, "rendered trial configuration; per-model registry counters and webhook outboxes"),
    Rule("", ("pods",), READ, "phase, readiness and failure reasons of trial and model-server pods"),
    Rule(
        "kopf.dev",
        ("clusterkopfpeerings",),
        ("get", "list", "watch", "patch"),
        "kopf peering of a cluster-wide operator (only with --peering)",
        peering_only=True,
        cluster_scoped=True,
    ),
    Rule(
        "kopf.dev",
        ("kopfpeerings",),
        ("get", "list", "watch", "patch"),
        "kopf peering of a namespaced operator (only with --peering)",
        peering_only=True,
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

REGISTRY_READER_RULES: tuple[Rule, ...] = (
    Rule(
        GROUP,
        ("modelversions", "registeredmodels"),
        ("list",),
        "the tracking server's MLflow registry read API lists ModelVersions and RegisteredModels (KubeReader)",
    ),
    UI_CLUSTER_RULE,
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


def required_grants(*, peering: bool, cluster_scoped: bool | None = None) -> set[Grant]:
    """What the operator needs, with or without kopf peering; only the cluster-scoped rules'
    or only the others' when ``cluster_scoped`` says which."""
    return grants(
        r for r in REQUIRED_RULES if (peering or not r.peering_only) and cluster_scoped in (None, r.cluster_scoped)
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


def policy_rules(*, peering_only: bool, cluster_scoped: bool) -> list[Rule]:
    """The rules of one of the chart's files/rbac/*.yaml: base or peering, cluster-scoped or not."""
    return [r for r in REQUIRED_RULES if r.peering_only == peering_only and r.cluster_scoped == cluster_scoped]
