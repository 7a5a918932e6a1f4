"""resources.conditions: metav1.Condition semantics, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from modelship.resources.conditions import (
    find_condition,
    is_true,
    make_condition,
    merge_conditions,
    rfc3339,
    set_condition,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 12, 5, 0, tzinfo=UTC)


def cond(
    type_: str, status: str, reason: str = "R", message: str = "", when: datetime = T0, gen: int | None = 1
) -> dict[str, Any]:
    return make_condition(type_, status, reason, message, now=when, observed_generation=gen)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(None, cond("Ready", "True", when=T1), [cond("Ready", "True", when=T1)], id="first-condition"),
        pytest.param([], cond("Ready", "False", when=T1), [cond("Ready", "False", when=T1)], id="empty-list"),
        pytest.param(
            [cond("Ready", "True", "Accepted", "old", T0, 1)],
            cond("Ready", "True", "Accepted", "new", T1, 2),
            [cond("Ready", "True", "Accepted", "new", T0, 2)],
            id="same-status-keeps-transition-time",
        ),
        pytest.param(
            [cond("Ready", "True", "Accepted", "", T0)],
            cond("Ready", "False", "InvalidSpec", "bad", T1),
            [cond("Ready", "False", "InvalidSpec", "bad", T1)],
            id="status-flip-takes-new-time",
        ),
        pytest.param(
            [cond("Ready", "True", "Accepted", "", T0, 1)],
            cond("Ready", "True", "Reconciled", "", T1, 3),
            [cond("Ready", "True", "Reconciled", "", T0, 3)],
            id="reason-change-alone-is-no-transition",
        ),
        pytest.param(
            [cond("Progressing", "True", when=T0), cond("Ready", "False", when=T0)],
            cond("Ready", "True", when=T1),
            [cond("Progressing", "True", when=T0), cond("Ready", "True", when=T1)],
            id="others-kept-in-order",
        ),
        pytest.param(
            [cond("Degraded", "False", when=T0)],
            cond("Ready", "True", when=T1),
            [cond("Degraded", "False", when=T0), cond("Ready", "True", when=T1)],
            id="appended-when-absent",
        ),
        pytest.param(
            [cond("Ready", "False", when=T0), cond("Ready", "False", "Dup", when=T0)],
            cond("Ready", "False", "Again", when=T1),
            [cond("Ready", "False", "Again", when=T0)],
            id="duplicate-types-collapse",
        ),
        pytest.param(
            [{"type": "Ready", "status": "True"}],
            cond("Ready", "True", when=T1),
            [cond("Ready", "True", when=T1)],
            id="old-without-time-takes-new-time",
        ),
    ],
)
def test_set_condition(old: list[dict[str, Any]] | None, new: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    before = [dict(c) for c in old] if old is not None else None
    assert set_condition(old, new) == expected
    assert old == before, "set_condition must not mutate its input"


def test_merge_conditions_applies_in_order() -> None:
    merged = merge_conditions(
        [cond("Ready", "False", when=T0)],
        [
            cond("Ready", "True", when=T1),
            cond("Progressing", "False", when=T1),
            cond("Ready", "True", "Later", when=T1),
        ],
    )
    assert merged == [cond("Ready", "True", "Later", when=T1), cond("Progressing", "False", when=T1)]


@pytest.mark.parametrize(
    ("conditions", "type_", "found", "true"),
    [
        (None, "Ready", None, False),
        ([], "Ready", None, False),
        ([cond("Ready", "True")], "Ready", cond("Ready", "True"), True),
        ([cond("Ready", "Unknown")], "Ready", cond("Ready", "Unknown"), False),
        ([cond("Degraded", "True")], "Ready", None, False),
    ],
)
def test_find_and_is_true(
    conditions: list[dict[str, Any]] | None, type_: str, found: dict[str, Any] | None, true: bool
) -> None:
    assert find_condition(conditions, type_) == found
    assert is_true(conditions, type_) is true


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC), "2026-03-04T05:06:07Z"),
        (datetime(2026, 3, 4, 5, 6, 7), "2026-03-04T05:06:07Z"),  # naive means UTC
        (datetime.fromisoformat("2026-03-04T07:06:07+02:00"), "2026-03-04T05:06:07Z"),
    ],
)
def test_rfc3339(moment: datetime, text: str) -> None:
    assert rfc3339(moment) == text


def test_make_condition_shape() -> None:
    assert make_condition("Ready", "True", "Accepted", "ok", now=T0, observed_generation=4) == {
        "type": "Ready",
        "status": "True",
        "reason": "Accepted",
        "message": "ok",
        "lastTransitionTime": "2026-01-01T12:00:00Z",
        "observedGeneration": 4,
    }
    assert "observedGeneration" not in make_condition("Ready", "True", "Accepted", "", now=T0)


@pytest.mark.parametrize("reason", ["", "accepted", "Not Camel", "Bad-Reason"])
def test_make_condition_refuses_reasons_the_api_server_refuses(reason: str) -> None:
    with pytest.raises(ValueError, match="CamelCase"):
        make_condition("Ready", "True", reason, "", now=T0)


def test_long_messages_are_cut() -> None:
    message = make_condition("Ready", "False", "InvalidSpec", "x" * 10_000, now=T0)["message"]
    assert len(message) == 4096 and message.endswith("…")
