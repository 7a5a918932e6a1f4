"""The operator's API calls, read from the bed's audit log, against the RBAC the chart renders.

Pure functions (no I/O but reading the log a caller names), shared by the e2e tests that run
the operator under the chart's ServiceAccount (tests/e2e/conftest.py, test_rbac_usage.py,
test_install_paths.py) and unit-tested in tests/unit/test_rbac_audit.py.

A :class:`Call` is what one audit event says the operator did: verb, API group, resource,
subresource, the namespace (None for a cluster-wide or cluster-scoped call) and the object's
name. A :class:`Grant` is one verb of one rule of a rendered Role or ClusterRole, with the
scope its binding gives it: every namespace and the cluster (a ClusterRoleBinding), or one
namespace (a RoleBinding). A call is allowed when some grant covers it, as the API server's
RBAC authorizer decides (no wildcards: the chart renders none); a grant is used when some
call needed it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


@dataclass(frozen=True, order=True)
class Call:
    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str | None = None
    """None: a call across all namespaces, or on a cluster-scoped resource."""
    name: str | None = None
    refused: bool = False
    """RBAC refused it (the audit event's ``authorization.k8s.io/decision`` is ``forbid``). A 403
    that RBAC allowed (a namespace being terminated refuses new Events) is not a refusal."""

    @property
    def key(self) -> tuple[str, str, str, bool, str]:
        """(verb, group, resource, namespaced?, subresource): the call's shape, as a report lists it."""
        return (self.verb, self.group, self.resource, self.namespace is not None, self.subresource)


@dataclass(frozen=True, order=True)
class Grant:
    role: str
    """Kind/name of the role (and its namespace, for a Role) that lists the rule."""
    verb: str
    group: str
    resource: str
    """With the subresource, as RBAC writes it: jobs, modelversions/status."""
    namespace: str | None
    """None: bound cluster-wide; else the one namespace of its RoleBinding."""
    names: tuple[str, ...] = ()
    """resourceNames; empty for every name."""

    def covers(self, call: Call) -> bool:
        resource = f"{call.resource}/{call.subresource}" if call.subresource else call.resource
        if (self.verb, self.group, self.resource) != (call.verb, call.group, resource):
            return False
        if self.namespace is not None and call.namespace != self.namespace:
            return False
        return not self.names or call.name in self.names


def calls_of(events: Iterable[Mapping[str, Any]], user: str) -> list[Call]:
    """The resource calls of ``user`` in audit events (non-resource URLs, e.g. discovery, left out)."""
    out = []
    for event in events:
        ref = event.get("objectRef")
        if (event.get("user") or {}).get("username") != user or not ref or not ref.get("resource"):
            continue
        call = Call(
            verb=event["verb"],
            group=ref.get("apiGroup") or "",
            resource=ref["resource"],
            subresource=ref.get("subresource") or "",
            namespace=ref.get("namespace") or None,
            name=ref.get("name") or None,
            refused=_refused(event),
        )
        out.append(call)
        code = (event.get("responseStatus") or {}).get("code")
        if call.verb == "patch" and (code == 201 or _create_refused(event)):
            # A server-side apply that creates its object: the API server authorizes `create`
            # too, inside the same request (no event of its own).
            out.append(dataclasses.replace(call, verb="create", refused=_create_refused(event)))
    return out


def _create_refused(event: Mapping[str, Any]) -> bool:
    """A PATCH that RBAC allowed, refused as the create an apply of a new object needs."""
    status = event.get("responseStatus") or {}
    return status.get("code") == 403 and "cannot create resource" in str(status.get("message") or "")


def _refused(event: Mapping[str, Any]) -> bool:
    """RBAC refused the request's verb (the audit's decision; without one, a 403 that no
    terminating namespace explains)."""
    decision = (event.get("annotations") or {}).get("authorization.k8s.io/decision")
    if decision is not None:
        return bool(decision == "forbid")
    status = event.get("responseStatus") or {}
    causes = ((status.get("details") or {}).get("causes")) or []
    return status.get("code") == 403 and not any(c.get("reason") == "NamespaceTerminating" for c in causes)


def read_audit_log(path: Path) -> list[dict[str, Any]]:
    """The events of a JSON-lines audit log (Metadata level)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _subject_matches(binding: Mapping[str, Any], account: str, account_namespace: str) -> bool:
    return any(
        s.get("kind") == "ServiceAccount" and s.get("name") == account and s.get("namespace") == account_namespace
        for s in binding.get("subjects") or []
    )


def grants_of(objects: Iterable[Mapping[str, Any]], account: str, account_namespace: str) -> set[Grant]:
    """Every verb the rendered RBAC ``objects`` grant the ServiceAccount, with its scope."""
    objects = list(objects)
    roles = {
        (o["kind"], (o["metadata"].get("namespace") if o["kind"] == "Role" else None), o["metadata"]["name"]): o
        for o in objects
        if o.get("kind") in ("ClusterRole", "Role")
    }
    out: set[Grant] = set()
    for binding in objects:
        if binding.get("kind") not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if not _subject_matches(binding, account, account_namespace):
            continue
        scope = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        ref = binding["roleRef"]
        role = roles.get((ref["kind"], scope if ref["kind"] == "Role" else None, ref["name"]))
        if role is None:
            raise ValueError(
                f"{binding['kind']}/{binding['metadata']['name']} binds {ref['kind']}/{ref['name']}, "
                "which the rendered chart does not have"
            )
        label = f"{role['kind']}/{role['metadata']['name']}" + (f" in {scope}" if role["kind"] == "Role" else "")
        for rule in role.get("rules") or []:
            for group in rule.get("apiGroups") or [""]:
                for resource in rule.get("resources") or []:
                    for verb in rule.get("verbs") or []:
                        out.add(Grant(label, verb, group, resource, scope, tuple(rule.get("resourceNames") or ())))
    return out


def ungranted(calls: Iterable[Call], grants: set[Grant]) -> list[Call]:
    """Calls that no grant covers, and calls the API server refused: each one a missing rule."""
    return sorted({c for c in calls if c.refused or not any(g.covers(c) for g in grants)})


def unused(grants: set[Grant], calls: Iterable[Call]) -> list[Grant]:
    """Grants that no call needed: each one a verb to prune (or a flow the e2e run does not cover)."""
    allowed = [c for c in calls if not c.refused]
    return sorted(g for g in grants if not any(g.covers(c) for c in allowed))


def shapes(calls: Iterable[Call]) -> list[tuple[str, str, str, bool, str]]:
    """The distinct (verb, group, resource, namespaced?, subresource) of the calls."""
    return sorted({c.key for c in calls})
