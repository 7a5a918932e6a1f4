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


def test_a_failure_keeps_its_error_redacted_and_the_entry_round_trips() -> None:
    url = "https://u:p4ss@hooks.example.com/h?sig=abc"
    entry = wh.OutboxEntry("i", url, "model_version.created", "{}")
    failed = wh.entry_after_failure(entry, now=1.0, error=f"Connection refused by {url}")
    assert failed.error == "Connection refused by https://hooks.example.com/h"
    assert wh.OutboxEntry.load(failed.dump()) == failed
    assert "error" not in json.loads(entry.dump()), "no error key before a failure"
    assert wh.OutboxEntry.load(entry.dump()).error == ""


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"),
        ("https://user:secret@hooks.example.com/h", "https://hooks.example.com/h"),
        ("https://hooks.example.com/h?token=abc#frag", "https://hooks.example.com/h"),
        ("http://[::1]:9/x", "http://[::1]:9/x"),
        ("http://host:notaport/x", "(unparsable URL)"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert wh.redact_url(url) == shown


@pytest.mark.parametrize(
    ("error", "url", "shown"),
    [
        ("HTTP 503", "http://a/h", "HTTP 503"),
        ("refused: http://u:pw@a/h", "http://u:pw@a/h", "refused: http://a/h"),
        ("bad auth for u:pw", "http://u:pw@a/h", "bad auth for ***:***"),
        ("query token=xyz leaked", "http://a/h?token=xyz", "query *** leaked"),
        ("two\nlines", "http://a/h", "two lines"),
        ("x" * 500, "http://a/h", "x" * (wh.MAX_ERROR - 1) + "\u2026"),
    ],
)
def test_redact_error(error: str, url: str, shown: str) -> None:
    assert wh.redact_error(error, url) == shown


T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        # (ok, seconds after T0, error) ... -> (last success, last failure, last error, failures, delivered)
        ([], ("", "", "", 0, 0)),
        ([(True, 0, "")], ("2026-01-01T00:00:00Z", "", "", 0, 1)),
        ([(False, 0, "HTTP 503")], ("", "2026-01-01T00:00:00Z", "HTTP 503", 1, 0)),
        (
            [(False, 0, "HTTP 503"), (True, 2, "")],
            ("2026-01-01T00:00:02Z", "2026-01-01T00:00:00Z", "HTTP 503", 0, 1),
        ),
        (
            [(True, 0, ""), (False, 3, "HTTP 500"), (False, 1, "HTTP 502")],  # sorted by time
            ("2026-01-01T00:00:00Z", "2026-01-01T00:00:03Z", "HTTP 500", 2, 1),
        ),
    ],
)
def test_record_after(attempts: list[tuple[bool, float, str]], expected: tuple[str, str, str, int, int]) -> None:
    tried = [wh.Attempt(ok, T0 + dt, err) for ok, dt, err in attempts]
    rec = wh.record_after(None, "iris", "http://u:pw@a/h", tried, pending=3)
    assert (rec.last_success, rec.last_failure, rec.last_error, rec.failures, rec.delivered) == expected
    assert (rec.model, rec.receiver, rec.pending) == ("iris", "http://a/h", 3)
    assert wh.DeliveryRecord.load(rec.dump()) == rec


def test_record_after_accumulates_over_scans() -> None:
    first = wh.record_after(None, "iris", "http://a/h", [wh.Attempt(False, T0, "HTTP 503")], pending=1)
    second = wh.record_after(first, "iris", "http://a/h", [wh.Attempt(False, T0 + 1, "timeout")], pending=1, dropped=1)
    third = wh.record_after(second, "iris", "http://a/h", [wh.Attempt(True, T0 + 2)], pending=0)
    assert (second.failures, second.last_error, second.dropped) == (2, "timeout", 1)
    assert (third.failures, third.delivered, third.dropped, third.last_error) == (0, 1, 1, "timeout")


def test_records_reads_one_models_entries_by_receiver() -> None:
    recs = [
        wh.record_after(None, m, u, [wh.Attempt(True, T0)], pending=0)
        for m, u in [("iris", "http://b/h"), ("iris", "http://a/h"), ("wine", "http://a/h")]
    ]
    data = {wh.record_key(r.model, f"{r.receiver}"): r.dump() for r in recs} | {"delivery-broken": "{", "other": "1"}
    assert [(r.model, r.receiver) for r in wh.records(data, "iris")] == [("iris", "http://a/h"), ("iris", "http://b/h")]
    assert len(wh.records(data)) == 3 and wh.records(None) == []
    assert wh.record_key("iris", "http://a/h") != wh.record_key("wine", "http://a/h")
    assert all(c.isalnum() or c in "-._" for c in wh.record_key("a model/with spaces", "http://a/h"))


def test_the_log_line_of_an_entry_names_no_credentials() -> None:
    """describe() is what the worker logs; it printed the whole URL, user and password included."""
    entry = wh.OutboxEntry("i", "https://bob:hunter2@hooks.example.com/h?token=t0k", "model_version.created", "{}")
    line = wh.describe(entry)
    assert line == "model_version.created i -> https://hooks.example.com/h"
