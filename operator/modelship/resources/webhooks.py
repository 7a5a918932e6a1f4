"""Registry webhooks as data: the JSON body, its signature, outbox entries and backoff.

The body has the shape of MLflow's webhooks (``entity``, ``action``, ``timestamp``,
``data``). Each delivery is signed GitHub-style: ``X-Modelship-Signature:
sha256=<hex HMAC-SHA256 of the exact body bytes>``, and carries ``X-Modelship-Delivery``
(the same id on every retry, so receivers can drop repeats). Pure: the controller's
delivery worker does the sending.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelship.resources.conditions import rfc3339
from modelship.resources.registry import RegistryEvent

SIGNATURE_HEADER = "X-Modelship-Signature"
DELIVERY_HEADER = "X-Modelship-Delivery"
EVENT_HEADER = "X-Modelship-Event"
OUTBOX_PREFIX = "outbox-"


def body_of(event: RegistryEvent, *, now: datetime) -> str:
    """The exact JSON text that is sent (and signed)."""
    payload = {"entity": event.entity, "action": event.action, "timestamp": rfc3339(now), "data": event.data}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def sign(secret: bytes, body: str | bytes) -> str:
    """``sha256=<hex>``: the signature header's value."""
    raw = body.encode() if isinstance(body, str) else body
    return "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str) -> bool:
    """What a receiver does; constant-time comparison."""
    return hmac.compare_digest(sign(secret, body), header)


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:8]


def outbox_key(delivery_id: str, url: str) -> str:
    """One outbox entry per delivery and receiver URL (a ConfigMap data key)."""
    return f"{OUTBOX_PREFIX}{delivery_id}-{url_key(url)}"


@dataclass(frozen=True)
class OutboxEntry:
    """A pending delivery, as stored in the registry ConfigMap (JSON text)."""

    delivery_id: str
    url: str
    event: str
    body: str
    attempts: int = 0
    next_attempt: float = 0.0
    """Unix time before which the entry is not retried."""

    def dump(self) -> str:
        return json.dumps(
            {
                "id": self.delivery_id,
                "url": self.url,
                "event": self.event,
                "body": self.body,
                "attempts": self.attempts,
                "next": self.next_attempt,
            },
            sort_keys=True,
        )

    @classmethod
    def load(cls, text: str) -> OutboxEntry:
        d = json.loads(text)
        return cls(d["id"], d["url"], d["event"], d["body"], int(d.get("attempts", 0)), float(d.get("next", 0.0)))

    def headers(self, secret: bytes | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: self.delivery_id, EVENT_HEADER: self.event}
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, self.body)
        return headers


def entries_for(event: RegistryEvent, urls: list[str], *, now: datetime) -> dict[str, str]:
    """Outbox data keys and values for one event, one per receiver URL."""
    body = body_of(event, now=now)
    name = f"{event.entity}.{event.action}"
    return {outbox_key(event.delivery_id, u): OutboxEntry(event.delivery_id, u, name, body).dump() for u in urls}


def backoff(attempts: int, *, base: float = 1.0, cap: float = 60.0) -> float:
    """Seconds to wait after ``attempts`` failed tries: 1, 2, 4, ... up to ``cap``."""
    return float(min(cap, base * (2 ** max(0, attempts - 1))))


def pending(data: Mapping[str, str] | None) -> list[tuple[str, OutboxEntry]]:
    """The outbox entries in a registry ConfigMap's data, oldest body timestamp first."""
    out = []
    for key, value in (data or {}).items():
        if key.startswith(OUTBOX_PREFIX):
            try:
                out.append((key, OutboxEntry.load(value)))
            except (ValueError, KeyError):
                continue
    return sorted(out, key=lambda kv: (json.loads(kv[1].body).get("timestamp", ""), kv[0]))


def is_success(status_code: int) -> bool:
    return 200 <= status_code < 300


def entry_after_failure(entry: OutboxEntry, *, now: float) -> OutboxEntry:
    attempts = entry.attempts + 1
    return OutboxEntry(entry.delivery_id, entry.url, entry.event, entry.body, attempts, now + backoff(attempts))


def describe(entry: Any) -> str:
    return f"{entry.event} {entry.delivery_id} -> {entry.url}"
