"""controllers.webhooks.Deliverer with the API and the receiver faked: send, retry, drop,
and the delivery record it keeps beside the outbox."""

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
NOW = datetime(2026, 1, 1, tzinfo=UTC)
EVENT = RegistryEvent("a" * 32, "model_version", "created", {"name": "iris", "version": "1"})


RECORD = f"/api/v1/namespaces/ns/configmaps/{wh.DELIVERIES_CONFIGMAP}"


class FakeKube:
    """One registry ConfigMap, the namespace's delivery record and the Secret, behind the
    functions the worker calls."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {"last": "1", **wh.entries_for(EVENT, [URL], now=datetime(2026, 1, 1, tzinfo=UTC))}
        self.record: dict[str, str] | None = None
        """The delivery record's data; None while the ConfigMap does not exist."""
        self.record_reads = 0

    def list_items(self, path: str, **_: Any) -> list[dict[str, Any]]:
        return [{"metadata": {"namespace": "ns", "name": "modelship-registry-iris-x"}, "data": dict(self.data)}]

    def get(self, path: str, **_: Any) -> dict[str, Any]:
        assert path == "/api/v1/namespaces/ops/secrets/hooks"
        return {"data": {"secret": base64.b64encode(b"k3y").decode()}}

    def get_or_none(self, path: str) -> dict[str, Any] | None:
        assert path == RECORD
        self.record_reads += 1
        return None if self.record is None else {"data": dict(self.record)}

    def ensure(self, path: str, body: dict[str, Any]) -> bool:
        assert path == "/api/v1/namespaces/ns/configmaps" and body["metadata"]["name"] == wh.DELIVERIES_CONFIGMAP
        if self.record is not None:
            return False
        self.record = dict(body["data"])
        return True

    def merge_patch(self, path: str, body: dict[str, Any]) -> None:
        if path == RECORD:
            if self.record is None:
                raise webhooks.KubeError(404, "configmaps not found")
            self.record.update(body["data"])
            return
        for key, value in body["data"].items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value

    def records(self) -> list[wh.DeliveryRecord]:
        return wh.records(self.record)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    kube = FakeKube()
    for name in ("list_items", "get", "get_or_none", "ensure", "merge_patch"):
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
    assert len(seen) == 2 and len([p for p in patches if "last" not in p["data"] and not _recorded(p)]) == 1
    assert [k for k in fake.data if k != "last"] == []


def _recorded(patch: dict[str, Any]) -> bool:
    return all(k.startswith(wh.RECORD_PREFIX) for k in patch["data"])


def test_one_scan_records_every_model_of_a_namespace_in_one_patch(
    fake: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three models' outboxes delivered in one scan: three write-backs (one per registry
    ConfigMap) and one write of the namespace's record, which names all three."""
    models = ("iris", "wine", "digits")
    boxes = {
        m: wh.entries_for(RegistryEvent(m * 4, "model_version", "created", {"name": m}), [URL], now=NOW) for m in models
    }

    def list_items(path: str, **_: Any) -> list[dict[str, Any]]:
        return [
            {"metadata": {"namespace": "ns", "name": f"modelship-registry-{m}"}, "data": dict(boxes[m])} for m in models
        ]

    patches: list[tuple[str, dict[str, Any]]] = []
    write = fake.merge_patch
    monkeypatch.setattr(webhooks.kube, "list_items", list_items)
    monkeypatch.setattr(
        webhooks.kube, "merge_patch", lambda path, body: (patches.append((path, body)), write(path, body))
    )
    seen: list[httpx.Request] = []
    deliverer([200, 200, 200], seen).deliver_due()
    assert len(seen) == 3
    assert len([p for p, _ in patches if p == RECORD]) == 1
    assert len([p for p, _ in patches if p != RECORD]) == 3
    assert sorted(r.model for r in fake.records()) == sorted(f"modelship-registry-{m}" for m in models)
    assert all(r.delivered == 1 and r.pending == 0 for r in fake.records())


def test_the_record_shows_the_failure_then_the_delivery(fake: FakeKube, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record is created by the first attempt, keeps the error of a failure (redacted),
    and a later success clears the failure count but keeps when it last failed."""
    seen: list[httpx.Request] = []
    secret_url = "http://bob:hunter2@receiver/hook?token=t0k"
    fake.data = {"last": "1", **wh.entries_for(EVENT, [secret_url], now=datetime(2026, 1, 1, tzinfo=UTC))}
    d = deliverer([503, 200], seen)
    clock = [1_767_225_600.0]  # 2026-01-01T00:00:00Z
    monkeypatch.setattr(webhooks.time, "time", lambda: clock[0])
    d.deliver_due()
    (rec,) = fake.records()
    assert (rec.model, rec.receiver) == ("modelship-registry-iris-x", "http://receiver/hook")
    assert (rec.last_success, rec.last_failure, rec.last_error) == ("", "2026-01-01T00:00:00Z", "HTTP 503")
    assert (rec.failures, rec.delivered, rec.pending) == (1, 0, 1)
    (entry,) = outbox(fake)
    assert entry.error == "HTTP 503"
    clock[0] += 5
    d.deliver_due()
    (rec,) = fake.records()
    assert (rec.last_success, rec.last_failure, rec.last_error) == (
        "2026-01-01T00:00:05Z",
        "2026-01-01T00:00:00Z",
        "HTTP 503",
    )
    assert (rec.failures, rec.delivered, rec.pending) == (0, 1, 0)
    assert "hunter2" not in json.dumps(fake.record) and "t0k" not in json.dumps(fake.record)
    assert fake.record_reads == 1, "the record is read once, then the worker keeps its own copy"


def test_a_dropped_delivery_is_counted(fake: FakeKube, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    d = deliverer([500, 500], seen, attempts=2)
    clock = [1000.0]
    monkeypatch.setattr(webhooks.time, "time", lambda: clock[0])
    d.deliver_due()
    clock[0] += 120
    d.deliver_due()
    (rec,) = fake.records()
    assert (rec.failures, rec.dropped, rec.pending, rec.delivered) == (2, 1, 0, 0)


def test_an_unreachable_receiver_error_names_no_credentials(fake: FakeKube) -> None:
    secret_url = "http://bob:hunter2@127.0.0.1:9/hook?token=t0k"
    fake.data = {"last": "1", **wh.entries_for(EVENT, [secret_url], now=datetime(2026, 1, 1, tzinfo=UTC))}
    d = webhooks.Deliverer(OperatorConfig(webhook_urls=[secret_url], webhook_max_attempts=3))

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url} (bob:hunter2, token=t0k)", request=request)

    d.http = httpx.Client(transport=httpx.MockTransport(refuse))
    d.deliver_due()
    (rec,) = fake.records()
    assert rec.last_error.startswith("cannot connect to") and rec.failures == 1
    text = json.dumps(fake.record) + rec.last_error
    assert "hunter2" not in text and "t0k" not in text, text


def test_an_operator_of_some_namespaces_scans_those_that_exist_and_skips_a_forbidden_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """watchNamespaces may name a namespace not created yet (no Role of the chart there): it
    is not listed, and a namespace whose ConfigMaps may not be listed leaves the others'
    webhooks going (each failed the whole scan before)."""
    from modelship.kube import KubeError

    listed: list[str] = []

    def list_items(path: str, **params: Any) -> list[dict[str, Any]]:
        listed.append(path)
        if path == "/api/v1/namespaces":
            assert params["labelSelector"] == "kubernetes.io/metadata.name in (ns,locked,later)", params
            return [{"metadata": {"name": "locked"}}, {"metadata": {"name": "ns"}}]
        if path == "/api/v1/namespaces/locked/configmaps":
            raise KubeError(403, 'configmaps is forbidden: cannot list resource "configmaps"')
        assert path == "/api/v1/namespaces/ns/configmaps", path
        return []

    monkeypatch.setattr(webhooks.kube, "list_items", list_items)
    d = webhooks.Deliverer(OperatorConfig(webhook_urls=[URL], namespaces=["ns", "locked", "later"]))
    with caplog.at_level("WARNING", logger="modelship.controllers.webhooks"):
        d.deliver_due()
    assert listed == ["/api/v1/namespaces", "/api/v1/namespaces/ns/configmaps", "/api/v1/namespaces/locked/configmaps"]
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "webhooks: may not list the ConfigMaps of namespace locked"
    ]
