"""Registry webhooks as data: the JSON body, its signature, outbox entries and backoff.

The body has the shape of MLflow's webhooks (``entity``, ``action``, ``timestamp``,
``data``). Each delivery is signed GitHub-style: ``X-Modelship-Signature:
sha256=<hex HMAC-SHA256 of the exact body bytes>``, and carries ``X-Modelship-Delivery``
(the same id on every retry, so receivers can drop repeats). Pure: the controller's
delivery worker does the sending.

Besides the outbox (what is still to send, in each model's registry ConfigMap), each
namespace has one small delivery record, the ConfigMap :data:`DELIVERIES_CONFIGMAP`: per
model and receiver the last success, the last failure and its error, the failures since
the last success, the deliveries made and what is pending. It has a fixed name so that the
tracking server may read it by name alone (``get`` with ``resourceNames``), not every
ConfigMap of the namespace; it holds no body, no secret and no URL credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from modelship.resources.conditions import rfc3339
from modelship.resources.registry import RegistryEvent

SIGNATURE_HEADER = "X-Modelship-Signature"
DELIVERY_HEADER = "X-Modelship-Delivery"
EVENT_HEADER = "X-Modelship-Event"
OUTBOX_PREFIX = "outbox-"
DELIVERIES_CONFIGMAP = "modelship-webhook-deliveries"
"""The per-namespace delivery record's ConfigMap (a fixed name: readable by ``resourceNames``)."""
RECORD_PREFIX = "delivery-"
MAX_ERROR = 200
"""Characters of an error kept in the outbox and the record."""


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
    error: str = ""
    """Why the last attempt failed (redacted: :func:`redact_error`)."""

    def dump(self) -> str:
        d: dict[str, Any] = {
            "id": self.delivery_id,
            "url": self.url,
            "event": self.event,
            "body": self.body,
            "attempts": self.attempts,
            "next": self.next_attempt,
        }
        if self.error:
            d["error"] = self.error
        return json.dumps(d, sort_keys=True)

    @classmethod
    def load(cls, text: str) -> OutboxEntry:
        d = json.loads(text)
        return cls(
            d["id"],
            d["url"],
            d["event"],
            d["body"],
            int(d.get("attempts", 0)),
            float(d.get("next", 0.0)),
            str(d.get("error") or ""),
        )

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


def entry_after_failure(entry: OutboxEntry, *, now: float, error: str = "") -> OutboxEntry:
    attempts = entry.attempts + 1
    return OutboxEntry(
        entry.delivery_id,
        entry.url,
        entry.event,
        entry.body,
        attempts,
        now + backoff(attempts),
        redact_error(error, entry.url),
    )


def describe(entry: Any) -> str:
    """For the log: the receiver redacted (a URL's user, password or query may be its credentials)."""
    return f"{entry.event} {entry.delivery_id} -> {redact_url(entry.url)}"


# --- the delivery record -------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """A receiver as it may be shown: scheme, host, port and path; no user, password,
    query or fragment (where a receiver's token would be)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(unparsable URL)"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_error(text: str, url: str) -> str:
    """An error as it may be stored and shown: the URL (whose credentials an HTTP library
    may quote) replaced by its redacted form, one line, at most :data:`MAX_ERROR` characters."""
    out = " ".join(text.replace(url, redact_url(url)).split())
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is not None:
        if parts.username and parts.password:
            out = out.replace(f"{parts.username}:{parts.password}", "***:***")
        # The password and the query anywhere; a user name alone is no secret (and a short
        # one would match inside words).
        for secret in (parts.password, parts.query):
            if secret and len(secret) >= 2:
                out = out.replace(secret, "***")
    return out if len(out) <= MAX_ERROR else out[: MAX_ERROR - 1] + "\u2026"


def record_key(model: str, url: str) -> str:
    """The record's data key for one model and receiver (ConfigMap keys allow few characters;
    the model and the receiver are in the value)."""
    return f"{RECORD_PREFIX}{hashlib.sha256(model.encode()).hexdigest()[:12]}-{url_key(url)}"


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt's outcome."""

    ok: bool
    at: float
    """Unix time."""
    error: str = ""


@dataclass(frozen=True)
class DeliveryRecord:
    """Delivery to one receiver of one model's events, as of the last attempt."""

    model: str
    receiver: str
    """The URL, redacted (:func:`redact_url`)."""
    last_success: str = ""
    """RFC 3339; empty before the first delivery."""
    last_failure: str = ""
    last_error: str = ""
    failures: int = 0
    """Failed attempts since the last success."""
    delivered: int = 0
    dropped: int = 0
    """Entries given up after the maximum number of attempts."""
    pending: int = 0
    """Entries still in the outbox after the last attempt."""

    def dump(self) -> str:
        return json.dumps(
            {
                "model": self.model,
                "receiver": self.receiver,
                "lastSuccess": self.last_success,
                "lastFailure": self.last_failure,
                "lastError": self.last_error,
                "failures": self.failures,
                "delivered": self.delivered,
                "dropped": self.dropped,
                "pending": self.pending,
            },
            sort_keys=True,
        )

    @classmethod
    def load(cls, text: str) -> DeliveryRecord:
        d = json.loads(text)
        return cls(
            str(d["model"]),
            str(d["receiver"]),
            str(d.get("lastSuccess") or ""),
            str(d.get("lastFailure") or ""),
            str(d.get("lastError") or ""),
            int(d.get("failures") or 0),
            int(d.get("delivered") or 0),
            int(d.get("dropped") or 0),
            int(d.get("pending") or 0),
        )


def _stamp(at: float) -> str:
    return rfc3339(datetime.fromtimestamp(at, tz=UTC))


def record_after(
    previous: DeliveryRecord | None,
    model: str,
    url: str,
    attempts: list[Attempt],
    *,
    pending: int,
    dropped: int = 0,
) -> DeliveryRecord:
    """The record after one scan's ``attempts`` (in order) to ``url`` for ``model``."""
    rec = previous or DeliveryRecord(model, redact_url(url))
    last_success, last_failure, last_error = rec.last_success, rec.last_failure, rec.last_error
    failures, delivered = rec.failures, rec.delivered
    for a in sorted(attempts, key=lambda a: a.at):
        if a.ok:
            last_success, failures, delivered = _stamp(a.at), 0, delivered + 1
        else:
            last_failure, last_error, failures = _stamp(a.at), redact_error(a.error, url), failures + 1
    return DeliveryRecord(
        model,
        redact_url(url),
        last_success,
        last_failure,
        last_error,
        failures,
        delivered,
        rec.dropped + dropped,
        pending,
    )


def records(data: Mapping[str, str] | None, model: str | None = None) -> list[DeliveryRecord]:
    """The records in a delivery ConfigMap's data (one model's when ``model`` is given), by receiver."""
    out = []
    for key, value in (data or {}).items():
        if key.startswith(RECORD_PREFIX):
            try:
                rec = DeliveryRecord.load(value)
            except (ValueError, KeyError, TypeError):
                continue
            if model is None or rec.model == model:
                out.append(rec)
    return sorted(out, key=lambda r: (r.model, r.receiver))
