"""The operator's view of ModelVersions (controllers.registry_view) and the rule it keeps by
(resources.registry.is_newer), without an API server: what it holds after watch events,
write answers, lists and deletions in every order."""

from __future__ import annotations

from typing import Any

import pytest

from modelship.controllers import registry, registry_view
from modelship.resources.registry import is_newer


def mv(uid: str, rv: str, model: str = "iris", ns: str = "ns", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": f"v-{uid}", "namespace": ns, "uid": uid, "resourceVersion": rv},
        "spec": {"model": model},
        "status": status,
    }


@pytest.mark.parametrize(
    ("incoming", "current", "newer"),
    [
        ("12", None, True),  # nothing held yet
        ("12", "11", True),
        ("11", "12", False),  # an answer that arrives after the watch's later copy
        ("12", "12", False),  # the same copy twice
        ("100", "99", True),  # compared as numbers, not strings
        ("abc", "12", True),  # not etcd's integers: the copy just received wins
        ("12", "", True),
    ],
)
def test_is_newer(incoming: str, current: str | None, newer: bool) -> None:
    held = None if current is None else {"metadata": {"resourceVersion": current}}
    assert is_newer({"metadata": {"resourceVersion": incoming}}, held) is newer


def primed(*items: dict[str, Any], at: str = "10") -> registry_view.View:
    view = registry_view.View("modelversions")
    view.absorb_list("ns", list(items), at)
    return view


def test_the_later_copy_wins_whichever_comes_first() -> None:
    view = primed(mv("a", "5", version=None))
    view.observe(mv("a", "7", version=1))  # the answer to our status write
    view.observe(mv("a", "6", version=None))  # the watch's older event, late
    (held,) = view.of_model("ns", "iris")
    assert held["status"]["version"] == 1


def test_a_deleted_version_stays_deleted() -> None:
    view = primed(mv("a", "5"), mv("b", "6"))
    view.observe(mv("a", "8"), deleted=True)
    view.observe(mv("a", "7"))  # a write's answer that raced the deletion
    view.absorb_list("ns", [mv("a", "5"), mv("b", "6")], "6")  # a list older than the deletion
    assert [o["metadata"]["uid"] for o in view.of_model("ns", "iris")] == ["b"]


def test_a_list_drops_what_it_lacks_unless_the_view_saw_it_later() -> None:
    view = primed(mv("a", "5"), mv("b", "6"))
    view.observe(mv("c", "12"))  # created after the next list was taken
    view.absorb_list("ns", [mv("b", "6")], "11")  # "a" was deleted while no watch said so
    assert sorted(o["metadata"]["uid"] for o in view.of_model("ns", "iris")) == ["b", "c"]


def test_models_and_namespaces_are_apart() -> None:
    view = primed(mv("a", "5"), mv("b", "6", model="wine"))
    view.absorb_list("other", [mv("c", "7", ns="other")], "7")
    assert [o["metadata"]["uid"] for o in view.of_model("ns", "wine")] == ["b"]
    assert [o["metadata"]["uid"] for o in view.of_model("other", "iris")] == ["c"]


def test_a_namespace_is_listed_once_then_read_from_the_view(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def get(path: str, **params: Any) -> dict[str, Any]:
        calls.append(path)
        return {"metadata": {"resourceVersion": "9"}, "items": [mv("a", "5"), mv("b", "6")]}

    monkeypatch.setattr(registry_view.kube, "get", get)
    view = registry_view.View("modelversions")
    for _ in range(5):
        assert len(view.of_model("ns", "iris")) == 2
    assert calls == ["/apis/modelship.io/v1alpha1/namespaces/ns/modelversions"]


def test_a_refused_write_reads_that_one_object_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """sync_model on a stale copy: 409, one GET of that object, the decision again; no list."""
    view = primed(mv("a", "5", version=1), mv("b", "6"))
    monkeypatch.setattr(registry, "MODEL_VERSIONS", view)
    monkeypatch.setattr(registry, "_sync_registered_models_safely", lambda *a, **k: None)
    writes: list[str] = []
    gets: list[str] = []

    def merge_patch(path: str, body: dict[str, Any]) -> dict[str, Any]:
        rv = body["metadata"]["resourceVersion"]
        writes.append(f"{path.split('/')[-2]}@{rv}")
        if path.endswith("v-b/status") and rv == "6":
            raise registry.KubeError(409, "the object has been modified")
        uid = path.split("/")[-2][2:]
        return mv(uid, str(int(rv) + 10), **body["status"])

    def get_or_none(path: str) -> dict[str, Any]:
        gets.append(path)
        return mv("b", "8")

    monkeypatch.setattr(registry.kube, "merge_patch", merge_patch)
    monkeypatch.setattr(registry_view.kube, "get_or_none", get_or_none)
    from datetime import UTC, datetime

    own = registry.Own("b", {"version": 2}, [])
    registry.sync_model("ns", "iris", now=lambda: datetime(2026, 1, 1, tzinfo=UTC), own=own)
    assert "v-b@6" in writes and "v-b@8" in writes  # refused, then written on the fresh copy
    assert gets == ["/apis/modelship.io/v1alpha1/namespaces/ns/modelversions/v-b"]
    held = {o["metadata"]["uid"]: o for o in view.of_model("ns", "iris")}
    assert held["b"]["status"]["version"] == 2 and held["b"]["metadata"]["resourceVersion"] == "18"
