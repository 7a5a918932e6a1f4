"""ModelDeployment reconciles, counted: the timer's first tick beside the create handler runs
the reconcile once, and a new ModelDeployment does not list its (absent) strays."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from modelship.controllers import modeldeployment
from modelship.resources.serving import may_have_strays


@pytest.mark.parametrize(
    ("applied_before", "status", "prune"),
    [
        (False, None, False),  # just created: nothing but what is being applied
        (False, {}, False),
        (False, {"phase": "Progressing", "conditions": []}, False),  # accepted, not yet applied
        (False, {"variants": [{"name": "a"}]}, True),  # an earlier operator reconciled it
        (True, None, True),  # this process applied it: the plan may have dropped a variant
        (True, {"variants": []}, True),
    ],
)
def test_may_have_strays(applied_before: bool, status: dict[str, Any] | None, prune: bool) -> None:
    assert may_have_strays(applied_before, status) is prune


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
