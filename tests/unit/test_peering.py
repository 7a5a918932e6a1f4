"""Peering for the loops beside kopf's handlers: the rule they pause by (resources/peering.py),
case by case as kopf's peering decides (kopf/_core/engines/peering.py: process_peering_event);
PeeringPause's reading of the peering objects (controllers/peering.py, the API faked here;
tests/e2e/test_peering.py on the bed); and the follower and the webhook deliverer asking it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest

from modelship.controllers import follower as following
from modelship.controllers import peering, webhooks
from modelship.controllers.settings import OperatorConfig
from modelship.kube import KubeError
from modelship.resources.peering import pausing_peers

NOW = datetime(2026, 12, 4, 20, 0, 0, tzinfo=UTC)
ME = "operator-7d9f-abcde"


def seen(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).isoformat()


@pytest.mark.parametrize(
    ("status", "priority", "expected"),
    [
        (None, 10, []),
        ({}, 10, []),
        ({ME: {"priority": 10, "lifetime": 60, "lastseen": seen(1)}}, 10, []),  # ourselves only
        ({"b": {"priority": 20, "lifetime": 60, "lastseen": seen(5)}}, 10, ["b"]),  # higher, live
        ({"b": {"priority": 5, "lifetime": 60, "lastseen": seen(5)}}, 10, []),  # lower
        ({"b": {"priority": 10, "lifetime": 60, "lastseen": seen(5)}}, 10, ["b"]),  # the same: both pause
        ({"b": {"priority": 20, "lifetime": 60, "lastseen": seen(60)}}, 10, []),  # expired at lastseen + lifetime
        ({"b": {"priority": 20, "lifetime": 60, "lastseen": seen(59.9)}}, 10, ["b"]),
        ({"b": {"priority": 20, "lifetime": 300, "lastseen": seen(120)}}, 10, ["b"]),  # its own lifetime
        ({"b": {"priority": 20, "lastseen": seen(61)}}, 10, []),  # kopf's default lifetime, 60 s
        ({"b": {"priority": 20}}, 10, ["b"]),  # no lastseen: live, as kopf counts it
        ({"b": {"lifetime": 60, "lastseen": seen(1)}}, 0, ["b"]),  # no priority is 0
        ({"b": {"lifetime": 60, "lastseen": seen(1)}}, 1, []),
        ({"b": {"priority": 20, "lastseen": "2026-12-04T19:59:58Z"}}, 10, ["b"]),  # a Z suffix
        (
            {
                "c": {"priority": 30, "lastseen": seen(1)},
                ME: {"priority": 10, "lastseen": seen(1)},
                "a": {"priority": 20, "lastseen": seen(1)},
                "old": {"priority": 99, "lastseen": seen(3600)},
            },
            10,
            ["a", "c"],
        ),
        ({"b": "not a record"}, 10, ["b"]),  # unreadable: cannot be ruled out
        ({"b": {"priority": "high", "lastseen": seen(1)}}, 10, ["b"]),
        ({"b": {"priority": 1, "lastseen": "yesterday"}}, 10, ["b"]),
    ],
)
def test_pausing_peers(status: dict[str, Any] | None, priority: int, expected: list[str]) -> None:
    assert pausing_peers(status, ME, priority, NOW) == expected


# --- PeeringPause: the peering objects read, shared by the loops beside kopf's handlers ------
class Objects:
    """The API server's namespaces and KopfPeerings ("modelship" in each namespace named here:
    a body, a KubeError or other exception to raise, or None for a namespace without one)."""

    def __init__(self, **by_namespace: Any) -> None:
        self.by_namespace, self.reads, self.lists = dict(by_namespace), [], []

    def list_items(self, path: str, **params: Any) -> list[dict[str, Any]]:
        assert path == "/api/v1/namespaces", path
        self.lists.append(params.get("labelSelector"))
        return [{"metadata": {"name": ns}} for ns in self.by_namespace]

    def get_or_none(self, path: str) -> Any:
        namespace = path.split("/namespaces/")[1].split("/")[0]
        assert path == f"/apis/kopf.dev/v1/namespaces/{namespace}/kopfpeerings/modelship", path
        self.reads.append(namespace)
        found = self.by_namespace[namespace]
        if isinstance(found, Exception):
            raise found
        return found


def live(priority: int) -> dict[str, Any]:
    return {"priority": priority, "lifetime": 60, "lastseen": datetime.now(UTC).isoformat()}


def pause_with(monkeypatch: pytest.MonkeyPatch, objects: Objects, namespaces: list[str], every: float = 0.0):
    monkeypatch.setattr(peering.kube, "get_or_none", objects.get_or_none)
    monkeypatch.setattr(peering.kube, "list_items", objects.list_items)
    monkeypatch.setattr(peering, "READS_PER_S", 1e9)  # every reading fresh, however many namespaces
    return peering.PeeringPause("modelship", namespaces, ME, 10, every=every)


def test_a_replica_is_paused_by_a_live_peer_in_any_of_its_peering_objects(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Of the watched namespaces, those that exist are read (a KopfPeering of one not created
    yet would be a 403: the chart's Role is not there either), listed at most every 30 s."""
    objects = Objects(a={"status": {ME: live(10)}}, b={"status": {ME: live(10)}}, c=None)
    pause = pause_with(monkeypatch, objects, ["a", "b", "c", "not-created-yet"])
    caplog.set_level("INFO", logger="modelship.controllers.peering")
    assert asyncio.run(pause.paused()) is False
    objects.by_namespace["b"]["status"]["other"] = live(20)
    assert asyncio.run(pause.paused()) is True and pause.pausing == ["other"]
    del objects.by_namespace["b"]["status"]["other"]
    assert asyncio.run(pause.paused()) is False
    assert [r.getMessage() for r in caplog.records] == [
        "peering: paused beside kopf's handlers in favour of other",
        "peering: resumed, no live peer of priority 10 or higher",
    ]
    assert objects.reads == ["a", "b", "c"] * 3, "never the namespace that does not exist"
    assert objects.lists == ["kubernetes.io/metadata.name in (a,b,c,not-created-yet)"], "listed once"


def test_watched_patterns_are_matched_against_every_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = Objects(**{"team-a": {"status": {"other": live(20)}}, "team-b": None, "other": {"status": {}}})
    pause = pause_with(monkeypatch, objects, ["team-*"])
    assert asyncio.run(pause.paused()) is True
    assert objects.lists == [None] and objects.reads == ["team-a", "team-b"]


def test_a_failed_reading_leaves_the_last_answer_and_a_forbidden_object_holds_no_peer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As kopf reads them: a KopfPeering this replica may not read (403) holds no peer; an
    API server that does not answer changes nothing."""
    objects = Objects(a={"status": {"other": live(20)}}, forbidden=KubeError(403, "kopfpeerings is forbidden"))
    pause = pause_with(monkeypatch, objects, ["a", "forbidden"])
    assert asyncio.run(pause.paused()) is True
    objects.by_namespace["a"] = KubeError(503, "the API server is restarting")
    assert asyncio.run(pause.paused()) is True  # still paused: nothing was read
    objects.by_namespace["a"] = {"status": {ME: live(10)}}
    assert asyncio.run(pause.paused()) is False
    objects.by_namespace["a"] = ConnectionRefusedError(111, "Connection refused")  # not an answer of the API server
    assert asyncio.run(pause.paused()) is False  # still working


def test_one_reading_serves_every_loop_for_its_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = Objects(a={"status": {"other": live(20)}})
    pause = pause_with(monkeypatch, objects, ["a"], every=3600)

    async def loops() -> list[bool]:
        return list(await asyncio.gather(*(pause.paused() for _ in range(5))))

    assert asyncio.run(loops()) == [True] * 5
    assert objects.reads == ["a"]


def test_many_namespaces_are_read_no_faster_than_two_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = Objects(**{f"ns{i}": None for i in range(20)})
    pause = pause_with(monkeypatch, objects, list(objects.by_namespace))
    monkeypatch.setattr(peering, "READS_PER_S", 2.0)
    clock = [1000.0]
    monkeypatch.setattr(peering.time, "monotonic", lambda: clock[0])

    async def ask_at(*times: float) -> None:
        for t in times:
            clock[0] = t
            await pause.paused()

    asyncio.run(ask_at(1000.0, 1002.0, 1009.9, 1010.0))  # trusted 10 s: 20 namespaces at 2 a second
    assert len(objects.reads) == 40, "read at 1000 and at 1010 only"


async def run_until(loop: Coroutine[Any, Any, None], until: Callable[[], bool], ticks: int = 2000) -> None:
    """Run a loop as a task until ``until()`` holds, at most ``ticks`` milliseconds, then stop it."""
    task = asyncio.create_task(loop)
    for _ in range(ticks):
        await asyncio.sleep(0.001)
        if until():
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def follow_one(
    step: following.Step, due: bool, paused: following.Paused, until: Callable[[], bool], ticks: int
) -> None:
    """A follower of one object, "a", ticking every millisecond until ``until()`` (bounded)."""

    class Index(dict):  # type: ignore[type-arg]
        pass

    follower = following.Follower(step, due=lambda *_: due, interval=0.001, bodies="bodies", paused=paused)

    async def run() -> None:
        follower.add("a", kopf.Memo(), logger=None)
        await run_until(follower.run({"bodies": Index({"a": [{"metadata": {"uid": "a"}}]})}), until, ticks)
        await follower.stop()

    asyncio.run(run())


def test_the_follower_asks_no_pause_when_nothing_is_due() -> None:
    """The pause reads the peering objects: a follower of quiet objects does not ask it."""
    asked: list[bool] = []

    async def paused() -> bool:
        asked.append(True)
        return False

    async def step(*_: Any) -> None:
        raise AssertionError("not due")

    follow_one(step, False, paused, until=lambda: False, ticks=50)
    assert asked == []


def test_the_follower_does_nothing_while_paused() -> None:
    """Ticks while paused start no step, though every object is due; resumed, they do."""
    stepped: list[str] = []
    answers = [True, True, True, False, False]

    async def step(body: Any, followed: Any, indices: Any) -> None:
        stepped.append(body["metadata"]["uid"])

    async def paused() -> bool:
        return answers.pop(0) if answers else False

    follow_one(step, True, paused, until=lambda: len(stepped) >= 2, ticks=2000)
    assert not answers and stepped[:2] == ["a", "a"]


def test_the_webhook_deliverer_sends_nothing_while_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[str] = []
    answers = [True, True, False]

    async def paused() -> bool:
        return answers.pop(0) if answers else False

    deliverer = webhooks.Deliverer(OperatorConfig(webhook_urls=["http://hooks.invalid/h"]), paused)
    monkeypatch.setattr(deliverer, "deliver_due", lambda: scans.append("scan") or 0.001)
    monkeypatch.setattr(peering, "CHECK_EVERY_S", 0.001)
    asyncio.run(run_until(deliverer.run(), lambda: bool(scans)))
    assert not answers and scans, "two paused rounds sent nothing, the third scanned"
