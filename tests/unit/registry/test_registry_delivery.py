"""controllers.webhooks.Deliverer with the API and the receiver faked: send, retry, drop."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from modelship.controllers import webhooks
from modelship.controllers.settings import OperatorConfig
from modelship.resources import webhooks as wh
from modelship.resources.registry import RegistryEvent

URL = "http://receiver/hook"
EVENT = RegistryEvent("a" * 32, "model_version", "created", {"name": "iris", "version": "1"})


class FakeKube:
    """One registry ConfigMap and the Secret, behind the functions the worker calls."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {"last": "1", **wh.entries_for(EVENT, [URL], now=datetime(2026, 1, 1, tzinfo=UTC))}

    def list_items(self, path: str, **_: Any) -> list[dict[str, Any]]:
        return [{"metadata": {"namespace": "ns", "name": "modelship-registry-iris-x"}, "data": dict(self.data)}]

    def get(self, path: str, **_: Any) -> dict[str, Any]:
        assert path == "/api/v1/namespaces/ops/secrets/hooks"
        return {"data": {"secret": base64.b64encode(b"k3y").decode()}}

    def merge_patch(self, path: str, body: dict[str, Any]) -> None:
        for key, value in body["data"].items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    kube = FakeKube()
    for name in ("list_items", "get", "merge_patch"):
        monkeypatch.setattr(webhooks.kube, name, getattr(kube, name))
    return kube


def deliverer(answers: list[int], seen: list[httpx.Request], attempts: int = 3) -> webhooks.Deliverer:
    config = OperatorConfig(webhook_urls=[URL], webhook_secret="ops/hooks", webhook_max_attempts=attempts)
    d = webhooks.Deliverer(config)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answers.pop(0))

    d.http = httpx.Client(transport=httpx.MockTransport(handle))
    return d


def outbox(fake: FakeKube) -> list[wh.OutboxEntry]:
    return [e for _, e in wh.pending(fake.data)]


def test_a_delivery_is_signed_and_removed_after_2xx(fake: FakeKube) -> None:
    seen: list[httpx.Request] = []
    deliverer([204], seen).deliver_due()
    assert outbox(fake) == [] and fake.data == {"last": "1"}
    (request,) = seen
    assert request.headers[wh.DELIVERY_HEADER] == "a" * 32
    assert wh.verify(b"k3y", request.content, request.headers[wh.SIGNATURE_HEADER])
    assert json.loads(request.content)["entity"] == "model_version"


def test_a_failure_is_retried_later_with_the_same_id(fake: FakeKube, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    d = deliverer([503, 200], seen)
    d.deliver_due()
    (entry,) = outbox(fake)
    assert entry.attempts == 1 and entry.next_attempt > 0
    d.deliver_due()  # not due yet: nothing is sent
    assert len(seen) == 1
    monkeypatch.setattr(webhooks.time, "time", lambda: entry.next_attempt + 0.01)
    d.deliver_due()
    assert outbox(fake) == [] and [r.headers[wh.DELIVERY_HEADER] for r in seen] == ["a" * 32] * 2


def test_a_delivery_is_dropped_after_max_attempts(fake: FakeKube, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    d = deliverer([500, 500], seen, attempts=2)
    clock = [1000.0]
    monkeypatch.setattr(webhooks.time, "time", lambda: clock[0])
    d.deliver_due()
    clock[0] += 120
    d.deliver_due()
    assert outbox(fake) == [] and len(seen) == 2


def test_the_outcomes_of_one_configmap_are_written_back_in_one_patch(
    fake: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = RegistryEvent("b" * 32, "model_version", "created", {"name": "iris", "version": "2"})
    fake.data.update(wh.entries_for(second, [URL], now=datetime(2026, 1, 1, tzinfo=UTC)))
    patches: list[dict[str, Any]] = []
    write = fake.merge_patch
    monkeypatch.setattr(webhooks.kube, "merge_patch", lambda path, body: (patches.append(body), write(path, body)))
    seen: list[httpx.Request] = []
    deliverer([200, 200], seen).deliver_due()
    assert len(seen) == 2 and len(patches) == 1
    assert [k for k in fake.data if k != "last"] == []
