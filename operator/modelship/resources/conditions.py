"""metav1.Condition-shaped conditions: build, find and merge them without losing history.

A condition list is a list of plain dicts as the API server stores it (camelCase keys).
The functions never mutate their arguments: they return new lists, so the caller can
compare old and new and write a patch only when something changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

ConditionStatus = Literal["True", "False", "Unknown"]

READY = "Ready"

# metav1.Condition limits message to 32768 bytes; stay well below to leave room in etcd.
MAX_MESSAGE = 4096


def rfc3339(moment: datetime) -> str:
    """The time as metav1.Time serialises it: UTC, second precision, a Z suffix."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_condition(
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    now: datetime,
    observed_generation: int | None = None,
) -> dict[str, Any]:
    """One condition as a dict with every metav1.Condition field."""
    if not reason or not reason[0].isupper() or not reason.replace("_", "").isalnum():
        # The API server refuses a reason that is not CamelCase (a Go identifier).
        raise ValueError(f"condition reason must be CamelCase, got {reason!r}")
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    condition: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": rfc3339(now),
    }
    if observed_generation is not None:
        condition["observedGeneration"] = observed_generation
    return condition


def find_condition(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    """The condition of this type, or None."""
    for condition in conditions or ():
        if condition.get("type") == type_:
            return dict(condition)
    return None


def set_condition(conditions: Sequence[Mapping[str, Any]] | None, new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The list with ``new`` in place of the condition of its type (appended when absent).

    ``lastTransitionTime`` keeps its old value when the status does not change, as
    Kubernetes' meta.SetStatusCondition does: it says when the status flipped, not when
    the operator last looked. Reason, message and observedGeneration always take the new
    values. Order is kept so that a status patch does not reorder the list needlessly.
    """
    merged: list[dict[str, Any]] = []
    replaced = False
    for old in conditions or ():
        if old.get("type") != new["type"]:
            merged.append(dict(old))
            continue
        if replaced:  # a duplicate type from a broken writer: drop it
            continue
        updated = dict(new)
        if old.get("status") == new["status"] and old.get("lastTransitionTime"):
            updated["lastTransitionTime"] = old["lastTransitionTime"]
        merged.append(updated)
        replaced = True
    if not replaced:
        merged.append(dict(new))
    return merged


def merge_conditions(
    conditions: Sequence[Mapping[str, Any]] | None, updates: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Apply several :func:`set_condition` calls in order."""
    merged = [dict(c) for c in conditions or ()]
    for update in updates:
        merged = set_condition(merged, update)
    return merged


def is_true(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> bool:
    """Whether the condition of this type exists and has status True."""
    condition = find_condition(conditions, type_)
    return condition is not None and condition.get("status") == "True"
