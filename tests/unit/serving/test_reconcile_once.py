"""ModelDeployment reconciles, counted: the timer's first tick beside the create handler runs
the reconcile once, a new ModelDeployment (or the resync of an unchanged one) does not list
its (absent) strays, and a tick that sees a body older than the operator's own status write
judges from that write (the pure part: tests/unit/test_status.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from modelship.controllers import modeldeployment
from modelship.resources.serving import apply_due, may_have_strays, pod_facts, slim_pod
from modelship.resources.status import known_status


@pytest.mark.parametrize(
    ("applied", "digest", "status", "prune"),
    [
        (None, "a", None, False),  # just created: nothing but what is being applied
        (None, "a", {}, False),
        (None, "a", {"phase": "Progressing", "conditions": []}, False),  # accepted, not yet applied
        (None, "a", {"variants": [{"name": "a"}]}, True),  # an earlier operator reconciled it
        ("a", "b", None, True),  # the plan changed: it may have dropped a variant
        ("a", "b", {"variants": []}, True),
        ("a", "a", {"variants": [{"name": "a"}]}, False),  # the resync of an unchanged plan
        ("a", "a", None, False),
    ],
)
def test_may_have_strays(applied: str | None, digest: str, status: dict[str, Any] | None, prune: bool) -> None:
    assert may_have_strays(applied, digest, status) is prune


def test_the_timer_beside_the_create_handler_reconciles_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def reconcile(**kwargs: Any) -> None:
        calls.append(kwargs["who"])
        await asyncio.sleep(0.01)  # the other one arrives meanwhile

    monkeypatch.setattr(modeldeployment, "reconcile", reconcile)

    async def both() -> None:
        memo = kopf.Memo()
        await asyncio.gather(
            modeldeployment.handle(memo=memo, who="create"), modeldeployment.follow(memo=memo, who="timer")
        )

    asyncio.run(both())
    assert calls == ["create"]


def test_the_timer_reconciles_when_nothing_did_for_a_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def reconcile(**kwargs: Any) -> None:
        calls.append(kwargs["who"])

    monkeypatch.setattr(modeldeployment, "reconcile", reconcile)
    memo = kopf.Memo()
    asyncio.run(modeldeployment.follow(memo=memo, who="timer"))
    memo["reconciled_at"] -= modeldeployment.FOLLOW_INTERVAL  # a tick later
    asyncio.run(modeldeployment.follow(memo=memo, who="timer"))
    assert calls == ["timer", "timer"]


def _pod(name: str, version: str, ready: bool, **container: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"modelship.io/version": version}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [container] if container else [],
        },
    }


CRASHED = {"restartCount": 2, "lastState": {"terminated": {"exitCode": 1, "message": "  no such model\n"}}}
PULLING = {"restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}}


@pytest.mark.parametrize(
    ("pods", "version", "failure", "serving"),
    [
        ([], "2", None, []),
        ([_pod("a", "1", True), _pod("b", "2", False)], "2", None, [1]),  # coming up, nothing wrong
        ([_pod("a", "1", True), _pod("b", "2", False, **CRASHED)], "2", "pod b exited 1: no such model", [1]),
        ([_pod("b", "2", False, **PULLING)], "2", "pod b: ImagePullBackOff: not found", []),
        ([_pod("a", "1", False, **CRASHED)], "2", None, []),  # an old version's crash is not the new one's
        ([_pod("a", "1", True), _pod("b", "2", True)], None, None, [1, 2]),
        (
            [_pod("z", "2", False, **PULLING), _pod("c", "2", False, **CRASHED)],
            "2",
            "pod c exited 1: no such model",
            [],
        ),
    ],
)
def test_pod_facts_from_the_index(
    pods: list[dict[str, Any]], version: str | None, failure: str | None, serving: list[int]
) -> None:
    assert pod_facts([slim_pod(p) for p in pods], version) == (failure, serving)


ROLLING = {
    "type": "Ready",
    "status": "False",
    "reason": "RollingOut",
    "message": "rolling out",
    "lastTransitionTime": "t0",
}


def test_a_tick_of_a_deployment_not_ready_yet_writes_nothing_new() -> None:
    """Ready=False stays False: its lastTransitionTime stays, and nothing is patched (the
    acceptance's Ready=True in the scratch patch is not taken for the stored status)."""
    old = {"phase": "Progressing", "observedGeneration": 1, "conditions": [ROLLING]}
    scratch = kopf.Patch()
    scratch.status["conditions"] = [{**ROLLING, "status": "True", "reason": "Accepted", "lastTransitionTime": "t1"}]
    patch, memo = kopf.Patch(), kopf.Memo()
    now_ready = {**ROLLING, "lastTransitionTime": "t2"}  # make_condition stamps now; the flip keeps t0
    modeldeployment._write_status(patch, memo, old, {"phase": "Progressing"}, [now_ready], scratch)
    assert dict(patch.status) == {}
    assert memo.get("status_written") is None


def test_a_status_write_is_remembered_until_the_watch_shows_it() -> None:
    old = {"phase": "Progressing", "conditions": [ROLLING]}
    patch, memo = kopf.Patch(), kopf.Memo()
    modeldeployment._write_status(patch, memo, old, {"phase": "Healthy"}, [ROLLING], kopf.Patch())
    assert dict(patch.status) == {"phase": "Healthy"}
    since, _ = memo["status_written"]
    # the next tick sees the old body: it knows the write, so the same status writes nothing
    known, pending = known_status(
        old, memo["status_written"], since + 2, trust_seconds=modeldeployment.STATUS_TRUST_SECONDS
    )
    assert known["phase"] == "Healthy" and pending is not None
    again = kopf.Patch()
    modeldeployment._write_status(
        again, kopf.Memo(status_written=pending), known, {"phase": "Healthy"}, [ROLLING], kopf.Patch()
    )
    assert dict(again.status) == {}


@pytest.mark.parametrize(
    ("applied", "now", "missing", "due"),
    [
        (None, 0.0, False, True),  # never applied by this process
        (("other", 0.0), 1.0, False, True),  # the plan changed
        (("d", 0.0), 5.0, False, False),  # applied a moment ago, nothing changed
        (("d", 0.0), 5.0, True, False),  # the watch has not shown our own apply yet
        (("d", 0.0), 31.0, True, True),  # a Deployment deleted by hand comes back
        (("d", 0.0), 599.0, False, False),  # steady state: no request
        (("d", 0.0), 601.0, False, True),  # the resync puts back what else was edited
    ],
)
def test_apply_due(applied: tuple[str, float] | None, now: float, missing: bool, due: bool) -> None:
    assert apply_due(applied, "d", now, missing, resync=600.0, grace=30.0) is due


class _Index(dict):  # type: ignore[type-arg]
    """kopf.Index as the reconcile reads it: .get(key, default) of a list of entries."""


def test_a_quiet_tick_is_skipped_until_something_changes_or_is_due(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def reconcile(**kwargs: Any) -> None:
        calls.append(kwargs["body"]["metadata"]["resourceVersion"])
        kwargs["memo"]["quiet_until"] = 2e9  # what a reconcile of a quiet one says: nothing due for long

    monkeypatch.setattr(modeldeployment, "reconcile", reconcile)
    memo = kopf.Memo()
    body = {"metadata": {"name": "d", "namespace": "n", "uid": "u", "resourceVersion": "1"}, "spec": {"model": "m"}}
    pods = _Index({("n", "d", "main"): [{"name": "p", "ready": False}]})
    body["spec"]["variants"] = [{"name": "main"}]

    def tick(**kw: Any) -> None:
        asyncio.run(modeldeployment.follow(memo=memo, **kw))
        memo["reconciled_at"] -= modeldeployment.FOLLOW_INTERVAL  # a tick later

    tick(body=body, modeldeployment_pods=pods)
    tick(body=body, modeldeployment_pods=pods)  # nothing changed: skipped
    pods[("n", "d", "main")] = [{"name": "p", "ready": True}]  # the pod became Ready
    tick(body=body, modeldeployment_pods=pods)
    tick(body={**body, "metadata": {**body["metadata"], "resourceVersion": "2"}}, modeldeployment_pods=pods)
    memo["quiet_until"] = 0.0  # the resync (or a grace) is due
    tick(body={**body, "metadata": {**body["metadata"], "resourceVersion": "2"}}, modeldeployment_pods=pods)
    assert calls == ["1", "1", "2", "2"]
