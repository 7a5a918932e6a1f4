"""The sidecar's pure decisions: what an answer means, whom to blame, what to tell a trainer
at the cap, and the metrics text."""

from __future__ import annotations

import pytest

from modelship.tracking.sidecar.policy import (
    RETRY_AFTER_DELIVERING,
    RETRY_AFTER_STALLED,
    Outcome,
    classify,
    next_delay,
    record_to_blame,
    retry_after,
)
from modelship.tracking.sidecar.report import metrics_text


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (400, Outcome.REFUSED),  # INVALID_PARAMETER_VALUE: the content
        (404, Outcome.REFUSED),  # the run was deleted meanwhile
        (413, Outcome.REFUSED),  # too large for the server or a proxy: resend singly
        (401, Outcome.UNAUTHORIZED),  # a wrong or missing token is not the record's fault
        (403, Outcome.UNAUTHORIZED),
        (0, Outcome.UNAVAILABLE),  # no answer
        (408, Outcome.UNAVAILABLE),
        (429, Outcome.UNAVAILABLE),
        (502, Outcome.UNAVAILABLE),
        (503, Outcome.UNAVAILABLE),
        (504, Outcome.UNAVAILABLE),
        (500, Outcome.FAILED),  # e.g. an OverflowError on a value the server cannot store
        (501, Outcome.FAILED),
        (307, Outcome.FAILED),  # a tracking server never redirects: not for ever
        (-1, Outcome.FAILED),
    ],
)
def test_classify(status: int, outcome: Outcome) -> None:
    assert classify(status) is outcome


@pytest.mark.parametrize(
    ("probe", "blame"),
    [
        (200, True),
        (404, True),
        (401, True),  # reads work: the write's failure is its own
        (500, False),
        (503, False),
        (0, False),  # the server is sick or away: keep the record
    ],
)
def test_record_to_blame(probe: int, blame: bool) -> None:
    assert record_to_blame(probe) is blame


def test_backoff_doubles_up_to_its_cap() -> None:
    delays = [0.2]
    for _ in range(6):
        delays.append(next_delay(delays[-1], 5.0))
    assert delays == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_retry_after() -> None:
    assert retry_after(True) == RETRY_AFTER_DELIVERING == 1
    assert retry_after(False) == RETRY_AFTER_STALLED > 7 * RETRY_AFTER_DELIVERING


def test_metrics_text_reads_the_status() -> None:
    status = {
        "pending": 3,
        "buffered_bytes": 1200,
        "max_buffer_bytes": 4096,
        "server_up": False,
        "auth_failing": True,
        "buffer_full": 2,
        "requests_sent": 9,
        "forward_failures": 4,
        "dead_letter": {"refused": 1, "failed": 5, "dropped": 0},
    }
    lines = metrics_text(status).splitlines()
    assert "modelship_sidecar_pending_records 3" in lines
    assert "modelship_sidecar_auth_failing 1" in lines
    assert "modelship_sidecar_server_up 0" in lines
    assert 'modelship_sidecar_dead_letter_total{reason="failed"} 5' in lines
    assert 'modelship_sidecar_dead_letter_total{reason="refused"} 1' in lines
    assert "# TYPE modelship_sidecar_buffer_full_total counter" in lines
