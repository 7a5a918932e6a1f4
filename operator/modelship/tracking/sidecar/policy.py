"""The sidecar's decisions, as pure functions: what a server answer means for a record,
when a failing record is to blame, and what a trainer is told at the cap. No I/O here; the
forwarder and the HTTP front act on these answers.
"""

from __future__ import annotations

import enum

NO_ANSWER = 0
"""The status of an attempt that got no HTTP answer (refused, reset, timed out)."""


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    """The server stored it: move on."""
    REFUSED = "refused"
    """The server refused the content (4xx): sending it again cannot help; dead letter."""
    FAILED = "failed"
    """The server failed on it (500 and the like): retry; after ``max_attempts`` failures
    that are the record's fault (see :func:`record_to_blame`) it goes to the dead letter."""
    UNAUTHORIZED = "unauthorized"
    """401/403: the sidecar's token is wrong or missing. Not the record's fault: keep it,
    report loudly, retry with back-off (a fixed token or secret delivers it)."""
    UNAVAILABLE = "unavailable"
    """No answer, or the server (or a proxy before it) is away or busy: keep, retry."""


# Answers that say "not now" about the server, not about the request: a proxy's 502/504
# while the server restarts, 503 from an overloaded one, 408/429 asking to slow down.
_BUSY = frozenset({408, 429, 502, 503, 504})


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status in (401, 403):
        return Outcome.UNAUTHORIZED
    if status == NO_ANSWER or status in _BUSY:
        return Outcome.UNAVAILABLE
    if 400 <= status < 500:
        return Outcome.REFUSED
    # 500 and other 5xx, and what a tracking server never answers (1xx, 3xx): retried,
    # but never for ever.
    return Outcome.FAILED


def record_to_blame(probe_status: int) -> bool:
    """After a write failed with a 5xx, the forwarder reads from the server: when reads work
    (any answer below 500), the failure is this record's and counts towards its attempts;
    when they fail too (the database is down), the server is sick and the record is kept, so
    an outage does not empty the log into the dead letter one record at a time."""
    return NO_ANSWER < probe_status < 500


def next_delay(delay: float, maximum: float) -> float:
    """Exponential back-off, capped."""
    return min(delay * 2, maximum)


RETRY_AFTER_DELIVERING = 1
RETRY_AFTER_STALLED = 30


def retry_after(delivering: bool) -> int:
    """Seconds a trainer is told to wait (``Retry-After``) when the buffer is full. While the
    forwarder delivers, its next batch makes room: 1 s. While it cannot, 30 s: the mlflow
    client honours the header between its 7 retries, so a trainer waits about 3.5 minutes,
    like MLflow's own back-off, before its call fails, instead of failing within seconds."""
    return RETRY_AFTER_DELIVERING if delivering else RETRY_AFTER_STALLED
