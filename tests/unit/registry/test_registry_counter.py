"""controllers.registry's version counter with the API server's ConfigMap semantics faked
(resourceVersion preconditions, merge patches): a claim and the ``created`` webhook's outbox
entry in one write, no 409 between this process's own writers, and the outbox entry of a
claim made once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from modelship.controllers import modelversion, registry
from modelship.kube import KubeError
from modelship.resources import registry as reg
from modelship.resources import webhooks as wh

NS, MODEL = "ns", "iris"
URL = "http://receiver/hook"


class FakeConfigMaps:
    """ConfigMaps as the API server keeps them: a resourceVersion per write, a merge patch
    naming an older one refused with 409. ``requests`` counts (verb, name)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.rv = 0
        self.requests: Counter[tuple[str, str]] = Counter()
        self.conflicts = 0
        self.lock = threading.Lock()
        self.meddle: list[dict[str, str]] = []
        """Data another client writes just before this process's next PATCH (once each)."""

    def _bump(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        return {**obj, "metadata": dict(obj["metadata"]), "data": dict(obj["data"])}

    def get_or_none(self, path: str) -> dict[str, Any] | None:
        name = path.rsplit("/", 1)[1]
        with self.lock:
            self.requests["get", name] += 1
            obj = self.objects.get(name)
            return None if obj is None else {**obj, "metadata": dict(obj["metadata"]), "data": dict(obj["data"])}

    def get(self, path: str, **_: Any) -> dict[str, Any]:
        found = self.get_or_none(path)
        if found is None:
            raise KubeError(404, "not found")
        return found

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        with self.lock:
            self.requests["create", name] += 1
            if name in self.objects:
                raise KubeError(409, "exists")
            self.objects[name] = {"metadata": dict(body["metadata"]), "data": dict(body.get("data") or {})}
            return self._bump(self.objects[name])

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        name = path.rsplit("/", 1)[1]
        time.sleep(0.002)  # a round trip: other threads run meanwhile, as they do against the API server
        with self.lock:
            self.requests["patch", name] += 1
            obj = self.objects.get(name)
            if obj is None:
                raise KubeError(404, "not found")
            if self.meddle:
                obj["data"].update(self.meddle.pop(0))
                self._bump(obj)
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if wanted is not None and wanted != obj["metadata"]["resourceVersion"]:
                self.conflicts += 1
                raise KubeError(409, "the object has been modified")
            for key, value in (body.get("data") or {}).items():
                if value is None:
                    obj["data"].pop(key, None)
                else:
                    obj["data"][key] = value
            return self._bump(obj)

    def data(self) -> dict[str, str]:
        return dict(self.objects[reg.counter_name(MODEL)]["data"])


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeConfigMaps:
    fake = FakeConfigMaps()
    for name in ("get_or_none", "get", "create", "merge_patch"):
        monkeypatch.setattr(registry.kube, name, getattr(fake, name))
    monkeypatch.setattr(registry, "_counters", {})
    return fake


def created(uid: str) -> Any:
    """The entries a claim of ``uid`` writes: the created event of the number it gets."""

    def entries(number: int) -> dict[str, str]:
        event = reg.RegistryEvent(f"{uid}-created", "model_version", "created", {"version": str(number)})
        return wh.entries_for(event, [URL], now=datetime(2026, 12, 2, tzinfo=UTC))

    return entries


def test_a_new_claim_and_its_created_entry_are_one_write(api: FakeConfigMaps) -> None:
    claim = registry.assign_version(NS, MODEL, "u1", entries=created("u1"))
    assert claim == registry.Claim(1, True)
    name = reg.counter_name(MODEL)
    assert api.requests["patch", name] == 1  # the claim, with the entry
    data = api.data()
    assert data[reg.LAST_KEY] == "1" and data[reg.claim_key("u1")] == "1"
    [(_, entry)] = wh.pending(data)
    assert '"version":"1"' in entry.body


def test_an_earlier_claim_writes_nothing_and_no_entry(api: FakeConfigMaps) -> None:
    registry.assign_version(NS, MODEL, "u1", entries=created("u1"))
    before = api.requests.copy()
    again = registry.assign_version(NS, MODEL, "u1", entries=created("u1"))
    assert again == registry.Claim(1, False)  # the handler queues its created entry itself then
    assert api.requests == before


def test_a_claim_that_loses_to_another_writer_takes_the_next_number_with_its_entry(api: FakeConfigMaps) -> None:
    registry.assign_version(NS, MODEL, "u1", entries=created("u1"))
    # another operator (an older replica) claims number 2 between our read and our write
    api.meddle.append({reg.LAST_KEY: "2", reg.claim_key("other"): "2"})
    claim = registry.assign_version(NS, MODEL, "u2", entries=created("u2"))
    assert claim == registry.Claim(3, True)
    assert api.conflicts == 1
    bodies = [e.body for _, e in wh.pending(api.data())]
    assert any('"version":"3"' in b for b in bodies) and not any('"version":"2"' in b for b in bodies)


def test_versions_of_one_model_claimed_at_once_never_conflict(api: FakeConfigMaps) -> None:
    """This process's writers of one counter take turns: before the counter lock, every
    claim that raced another paid a 409 and a GET."""
    uids = [f"u{i}" for i in range(24)]
    got: dict[str, registry.Claim] = {}
    start = threading.Barrier(len(uids) + 1)

    def claim(uid: str) -> None:
        start.wait()
        got[uid] = registry.assign_version(NS, MODEL, uid, entries=created(uid))
        # the deliverer's write-back and a stage event's outbox write go between the claims
        registry.enqueue(NS, MODEL, {f"{wh.OUTBOX_PREFIX}x-{uid}": "{}"})

    threads = [threading.Thread(target=claim, args=(u,)) for u in uids]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join()
    assert sorted(c.version for c in got.values()) == list(range(1, len(uids) + 1))
    assert all(c.with_entries for c in got.values())
    assert api.conflicts == 0
    name = reg.counter_name(MODEL)
    assert api.requests["patch", name] == 2 * len(uids)
    assert api.requests["get", name] == 1  # the first read, which found nothing and created it


def _decision(uid: str, version: int) -> reg.VersionDecision:
    view = reg.VersionView.from_object(
        {
            "metadata": {"name": f"v{version}", "uid": uid, "creationTimestamp": "2026-12-02T00:00:00Z"},
            "spec": {"model": MODEL, "source": "file:///m", "stage": "Staging"},
            "status": {"version": version, "conditions": [{"type": "Ready", "status": "True"}]},
        }
    )
    [decision] = reg.decide_model([view], now=datetime(2026, 12, 2, tzinfo=UTC))
    return decision


@pytest.mark.parametrize(("queued", "created_entries"), [(False, 1), (True, 0)])
def test_the_outbox_writer_adds_the_created_entry_unless_the_claim_carried_it(
    monkeypatch: pytest.MonkeyPatch, queued: bool, created_entries: int
) -> None:
    written: list[dict[str, str]] = []
    monkeypatch.setattr(registry, "enqueue", lambda ns, model, entries: written.append(dict(entries)))
    d = _decision("u1", 1)
    obj = {"metadata": {"name": "v1", "namespace": NS, "uid": "u1"}, "spec": {"model": MODEL}, "status": {}}
    write = modelversion._outbox_writer(NS, MODEL, "u1", [URL], created_queued=queued)
    write([d], {"u1": obj}, {"u1": obj})
    [entries] = written
    events = Counter(wh.OutboxEntry.load(v).event for v in entries.values())
    assert events["model_version.created"] == created_entries
    assert events["model_version_stage.transitioned"] == 1  # a transition still goes through the writer
