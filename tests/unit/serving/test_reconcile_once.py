"""ModelDeployment reconciles, counted: the follower's tick beside the create handler runs
the reconcile once, a new ModelDeployment (or the resync of an unchanged one) does not list
its (absent) strays, and a tick that sees a body older than the operator's own status write
judges from that write (the pure part: tests/unit/test_status.py)."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import kopf
import pytest

from modelship.controllers import follower as following
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


def _followed(memo: kopf.Memo) -> following.Followed:
    return following.Followed(memo, logger=None, context=contextvars.copy_context())


BODY = {"metadata": {"name": "d", "namespace": "n", "uid": "u", "resourceVersion": "1"}, "spec": {"model": "m"}}


def test_the_follower_beside_the_create_handler_reconciles_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def reconcile(**kwargs: Any) -> None:
        calls.append(kwargs.get("who", "follower"))
        await asyncio.sleep(0.01)  # the other one arrives meanwhile

    monkeypatch.setattr(modeldeployment, "reconcile", reconcile)

    async def both() -> None:
        memo = kopf.Memo()
        await asyncio.gather(
            modeldeployment.handle(memo=memo, who="create", body=BODY, logger=None),
            modeldeployment.follow(BODY, _followed(memo), {}),
        )

    asyncio.run(both())
    assert calls == ["create"]


def test_the_follower_reconciles_when_nothing_did_for_a_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def reconcile(**kwargs: Any) -> None:
        calls.append(kwargs["body"]["metadata"]["resourceVersion"])

    monkeypatch.setattr(modeldeployment, "reconcile", reconcile)
    memo = kopf.Memo()
    asyncio.run(modeldeployment.follow(BODY, _followed(memo), {}))
    memo["reconciled_at"] -= modeldeployment.FOLLOW_INTERVAL  # a tick later
    asyncio.run(modeldeployment.follow(BODY, _followed(memo), {}))
    assert calls == ["1", "1"]


def test_the_follower_sends_the_status_patch_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """No kopf around the follower's reconcile: what it wrote into the patch goes to /status."""
    sent: list[tuple[str, Any]] = []

    async def reconcile(**kwargs: Any) -> None:
        kwargs["patch"].status["phase"] = "Healthy"

    monkeypatch.setattr(modeldeployment, "reconcile", reconcile)
    monkeypatch.setattr(modeldeployment.kube, "merge_patch", lambda path, body: sent.append((path, body)))
    asyncio.run(modeldeployment.follow(BODY, _followed(kopf.Memo()), {}))
    assert sent == [
        ("/apis/modelship.io/v1alpha1/namespaces/n/modeldeployments/d/status", {"status": {"phase": "Healthy"}})
    ]


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
    body = {**BODY, "spec": {"model": "m", "variants": [{"name": "main"}]}}
    pods = _Index({("n", "d", "main"): [{"name": "p", "ready": False}]})

    def tick(body: dict[str, Any]) -> None:
        asyncio.run(modeldeployment.follow(body, _followed(memo), {"modeldeployment_pods": pods}))
        memo["reconciled_at"] -= modeldeployment.FOLLOW_INTERVAL  # a tick later

    tick(body)
    tick(body)  # nothing changed: skipped
    pods[("n", "d", "main")] = [{"name": "p", "ready": False}]  # a new entry, the same facts (a status-only event)
    tick(body)  # skipped: entries compare by content
    pods[("n", "d", "main")] = [{"name": "p", "ready": True}]  # the pod became Ready
    tick(body)
    newer = {**body, "metadata": {**body["metadata"], "resourceVersion": "2"}}
    tick(newer)
    memo["quiet_until"] = 0.0  # the resync (or a grace) is due
    tick(newer)
    assert calls == ["1", "1", "2", "2"]


# --- the follower itself ---------------------------------------------------------------------
SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen")


def test_the_follower_steps_each_due_object_in_its_handlers_context_with_its_newest_body() -> None:
    """The step runs with the body the index has now (not the handler's), in the context of
    the object's handler call (kopf's Event queue is a context variable); an object gone from
    the index is forgotten, one being deleted is passed over, and one failing step does not
    stop the others."""
    stepped: list[tuple[str, str, str]] = []

    async def step(body: Any, followed: following.Followed, indices: Any) -> None:
        stepped.append((body["metadata"]["name"], body["metadata"]["resourceVersion"], SEEN.get("-")))
        if body["metadata"]["name"] == "bad":
            raise RuntimeError("boom")

    def md(name: str, rv: str, **meta: Any) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "n", "uid": name, "resourceVersion": rv, **meta}}

    bodies = _Index({"a": [md("a", "5")], "bad": [md("bad", "1")], "going": [md("going", "3", deletionTimestamp="t")]})
    follower = following.Follower(step, due=lambda *_: True, interval=1.0, bodies="bodies")

    async def run() -> None:
        for uid in ("a", "bad", "going", "gone"):
            SEEN.set(f"handler of {uid}")
            follower.add(uid, kopf.Memo(), logger=None)
        SEEN.set("follower")
        await asyncio.gather(*follower.tick({"bodies": bodies}))
        del bodies["a"]
        assert follower.tick({"bodies": bodies}) != []  # "bad" again, "a" gone now
        await follower.stop()

    asyncio.run(run())
    assert stepped[:2] == [("a", "5", "handler of a"), ("bad", "1", "handler of bad")]
    assert set(follower.objects) == {"bad", "going"}


def test_the_follower_starts_no_task_for_an_object_not_due() -> None:
    async def step(*_: Any) -> None:
        raise AssertionError("not due")

    follower = following.Follower(step, due=lambda *_: False, interval=1.0, bodies="bodies")

    async def run() -> list[Any]:
        follower.add("a", kopf.Memo(), logger=None)
        return follower.tick({"bodies": _Index({"a": [{"metadata": {"uid": "a"}}]})})

    assert asyncio.run(run()) == []


def test_a_handler_call_while_a_step_runs_starts_no_second_step() -> None:
    """The handler's follow() of an object (every update) keeps the step in flight: one at a time."""
    started: list[str] = []

    async def run() -> None:
        release = asyncio.Event()

        async def step(*_: Any) -> None:
            started.append("step")
            await release.wait()

        follower = following.Follower(step, due=lambda *_: True, interval=1.0, bodies="bodies")
        indices = {"bodies": _Index({"a": [{"metadata": {"uid": "a"}}]})}
        follower.add("a", kopf.Memo(), logger=None)
        first = follower.tick(indices)
        await asyncio.sleep(0)
        follower.add("a", kopf.Memo(), logger=None)  # an update handled meanwhile
        assert follower.tick(indices) == []
        release.set()
        await asyncio.gather(*first)

    asyncio.run(run())
    assert started == ["step"]
