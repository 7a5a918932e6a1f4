"""resources.webhooks: body shape, signatures, outbox entries and backoff."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from modelship.resources import webhooks as wh
from modelship.resources.registry import RegistryEvent

NOW = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
EVENT = RegistryEvent("d" * 32, "model_version", "created", {"name": "iris", "version": "1"})


def test_body_has_mlflows_webhook_shape() -> None:
    body = json.loads(wh.body_of(EVENT, now=NOW))
    assert body == {
        "entity": "model_version",
        "action": "created",
        "timestamp": "2026-02-03T04:05:06Z",
        "data": {"name": "iris", "version": "1"},
    }


@pytest.mark.parametrize(("secret", "body"), [(b"k", "{}"), (b"s3cr3t", '{"a":1}'), (b"", "")])
def test_signature_round_trip(secret: bytes, body: str) -> None:
    header = wh.sign(secret, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert wh.verify(secret, body.encode(), header)
    assert not wh.verify(secret + b"x", body.encode(), header)


def test_entries_one_per_url_with_stable_keys() -> None:
    urls = ["http://a/hook", "http://b/hook"]
    entries = wh.entries_for(EVENT, urls, now=NOW)
    assert len(entries) == 2 and all(k.startswith("outbox-" + "d" * 32) for k in entries)
    assert entries == wh.entries_for(EVENT, urls, now=NOW)
    for key, text in entries.items():
        entry = wh.OutboxEntry.load(text)
        assert wh.outbox_key(entry.delivery_id, entry.url) == key
        headers = entry.headers(b"k")
        assert headers[wh.DELIVERY_HEADER] == "d" * 32
        assert wh.verify(b"k", entry.body.encode(), headers[wh.SIGNATURE_HEADER])
    assert wh.SIGNATURE_HEADER not in wh.OutboxEntry.load(next(iter(entries.values()))).headers(None)


@pytest.mark.parametrize(("attempts", "delay"), [(1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (30, 60.0)])
def test_backoff(attempts: int, delay: float) -> None:
    assert wh.backoff(attempts) == delay


def test_failure_bumps_attempts_and_next_try() -> None:
    entry = wh.OutboxEntry("i", "http://a", "model_version.created", "{}")
    failed = wh.entry_after_failure(entry, now=100.0)
    assert (failed.attempts, failed.next_attempt) == (1, 101.0)
    assert wh.entry_after_failure(failed, now=200.0).next_attempt == 202.0


def test_pending_reads_only_outbox_keys_in_order() -> None:
    late = wh.entries_for(EVENT, ["http://a"], now=datetime(2026, 2, 3, 5, tzinfo=UTC))
    early = wh.entries_for(RegistryEvent("e" * 32, "x", "y", {}), ["http://a"], now=NOW)
    data = {"last": "3", "uid-x": "1", "outbox-broken": "not json", **late, **early}
    assert [e.delivery_id for _, e in wh.pending(data)] == ["e" * 32, "d" * 32]
