"""tests/e2e/rbac_audit.py: audit events to calls, rendered RBAC to grants, and the comparison."""

from __future__ import annotations

from typing import Any

import pytest
from tests.e2e.rbac_audit import Call, Grant, calls_of, grants_of, shapes, ungranted, unused

USER = "system:serviceaccount:ops:op"


def _event(
    verb: str, resource: str, *, user: str = USER, code: int = 200, decision: str | None = "allow", **ref: str
) -> dict[str, Any]:
    event = {
        "verb": verb,
        "user": {"username": user},
        "objectRef": {"resource": resource, **ref},
        "responseStatus": {"code": code},
    }
    if decision is not None:
        event["annotations"] = {"authorization.k8s.io/decision": decision}
    return event


def test_calls_of_reads_the_users_resource_calls() -> None:
    events = [
        _event("list", "jobs", apiGroup="batch", namespace="t-1"),
        _event("patch", "experiments", apiGroup="modelship.io", namespace="t-1", name="e", subresource="status"),
        _event("watch", "namespaces"),
        _event("get", "secrets", namespace="hooks", name="key", code=403, decision="forbid"),
        # RBAC allowed it; the namespace was being deleted: not a refusal
        _event("create", "events", namespace="gone", code=403),
        _event("list", "pods", namespace="old", code=403, decision=None),  # no decision recorded: the code says
        _event("list", "pods", user="system:admin"),  # another user
        {"verb": "get", "user": {"username": USER}, "requestURI": "/apis"},  # discovery: no objectRef
        # server-side apply: of an existing object, of a new one (201), and of a new one without create
        _event("patch", "services", namespace="t-1", name="a"),
        _event("patch", "services", namespace="t-1", name="b", code=201),
        {
            **_event("patch", "services", namespace="t-1", name="c", code=403),
            "responseStatus": {"code": 403, "message": 'services "c" is forbidden: User "op" cannot create resource'},
        },
    ]
    assert calls_of(events, USER) == [
        Call("list", "batch", "jobs", namespace="t-1"),
        Call("patch", "modelship.io", "experiments", "status", "t-1", "e"),
        Call("watch", "", "namespaces"),
        Call("get", "", "secrets", namespace="hooks", name="key", refused=True),
        Call("create", "", "events", namespace="gone"),
        Call("list", "", "pods", namespace="old", refused=True),
        Call("patch", "", "services", namespace="t-1", name="a"),
        Call("patch", "", "services", namespace="t-1", name="b"),
        Call("create", "", "services", namespace="t-1", name="b"),
        Call("patch", "", "services", namespace="t-1", name="c"),
        Call("create", "", "services", namespace="t-1", name="c", refused=True),
    ]


def _cluster_role(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


def _role(name: str, namespace: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Role", "metadata": {"name": name, "namespace": namespace}, "rules": list(rules)}


def _binding(kind: str, name: str, role_kind: str, role: str, namespace: str | None = None, account: str = "op"):
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": "ops"}],
    }


JOBS = {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list", "create"]}
SECRET = {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["key"], "verbs": ["get"]}
STATUS = {"apiGroups": ["modelship.io"], "resources": ["experiments/status"], "verbs": ["patch"]}


def test_grants_of_gives_each_verb_its_bindings_scope() -> None:
    objects = [
        _cluster_role("wide", STATUS),
        _binding("ClusterRoleBinding", "wide", "ClusterRole", "wide"),
        _cluster_role("jobs", JOBS),
        _binding("RoleBinding", "jobs", "ClusterRole", "jobs", namespace="team-a"),
        _role("key", "hooks", SECRET),
        _binding("RoleBinding", "key", "Role", "key", namespace="hooks"),
        _cluster_role("other", JOBS),
        _binding("ClusterRoleBinding", "other", "ClusterRole", "other", account="someone-else"),
    ]
    assert grants_of(objects, "op", "ops") == {
        Grant("ClusterRole/wide", "patch", "modelship.io", "experiments/status", None),
        Grant("ClusterRole/jobs", "list", "batch", "jobs", "team-a"),
        Grant("ClusterRole/jobs", "create", "batch", "jobs", "team-a"),
        Grant("Role/key in hooks", "get", "", "secrets", "hooks", ("key",)),
    }


def test_a_binding_of_a_role_the_chart_lacks_is_an_error() -> None:
    with pytest.raises(ValueError, match="does not have"):
        grants_of([_binding("ClusterRoleBinding", "x", "ClusterRole", "missing")], "op", "ops")


WIDE_JOBS = Grant("ClusterRole/r", "list", "batch", "jobs", None)
TEAM_JOBS = Grant("ClusterRole/r", "list", "batch", "jobs", "team-a")
KEY = Grant("Role/k in hooks", "get", "", "secrets", "hooks", ("key",))
STATUS_PATCH = Grant("ClusterRole/r", "patch", "modelship.io", "experiments/status", None)


@pytest.mark.parametrize(
    ("grant", "call", "covered"),
    [
        (WIDE_JOBS, Call("list", "batch", "jobs", namespace="t-1"), True),
        (WIDE_JOBS, Call("list", "batch", "jobs"), True),  # all namespaces
        (WIDE_JOBS, Call("create", "batch", "jobs", namespace="t-1"), False),  # another verb
        (WIDE_JOBS, Call("list", "", "jobs", namespace="t-1"), False),  # another group
        (TEAM_JOBS, Call("list", "batch", "jobs", namespace="team-a"), True),
        (TEAM_JOBS, Call("list", "batch", "jobs", namespace="team-b"), False),  # another namespace
        (TEAM_JOBS, Call("list", "batch", "jobs"), False),  # across namespaces: a RoleBinding does not grant it
        (KEY, Call("get", "", "secrets", namespace="hooks", name="key"), True),
        (KEY, Call("get", "", "secrets", namespace="hooks", name="other"), False),  # not that name
        (KEY, Call("get", "", "secrets", namespace="other", name="key"), False),
        (STATUS_PATCH, Call("patch", "modelship.io", "experiments", "status", "t-1", "e"), True),
        (STATUS_PATCH, Call("patch", "modelship.io", "experiments", "", "t-1", "e"), False),  # not the subresource
    ],
)
def test_a_grant_covers_a_call_as_rbac_would(grant: Grant, call: Call, covered: bool) -> None:
    assert grant.covers(call) is covered


def test_ungranted_and_unused() -> None:
    grants = {WIDE_JOBS, KEY, STATUS_PATCH}
    calls = [
        Call("list", "batch", "jobs", namespace="t-1"),
        Call("list", "batch", "jobs", namespace="t-2"),
        Call("delete", "batch", "jobs", namespace="t-1", name="j"),  # not granted
        Call("get", "", "secrets", namespace="hooks", name="key", refused=True),  # refused: not a use
    ]
    assert ungranted(calls, grants) == [
        Call("delete", "batch", "jobs", namespace="t-1", name="j"),
        Call("get", "", "secrets", namespace="hooks", name="key", refused=True),
    ]
    assert unused(grants, calls) == sorted([KEY, STATUS_PATCH])
    assert shapes(calls) == [
        ("delete", "batch", "jobs", True, ""),
        ("get", "", "secrets", True, ""),
        ("list", "batch", "jobs", True, ""),
    ]
