"""Is a spec acceptable? Parse it with its pydantic model and decide the Ready condition.

For now "Ready" means "the spec parsed and was accepted". Later issues put the real
reconcile decisions of each kind after a successful parse; the shape of the answer
(observedGeneration plus a merged condition list) stays the same.

The API server validates most of a spec against the CRD schema before the operator sees
it, but not all: ``x-kubernetes-preserve-unknown-fields`` nodes (free scalars) and CRDs
older than the operator let through specs that the model refuses. Those must end as a
clear ``Ready=False, reason=InvalidSpec`` that names the field and the fix, never as a
crash or a retry loop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from modelship.resources.conditions import (
    READY,
    ConditionStatus,
    find_condition,
    make_condition,
    set_condition,
)

ACCEPTED = "Accepted"
INVALID_SPEC = "InvalidSpec"

# Problems listed in one condition message; the rest are counted.
MAX_PROBLEMS = 5

M = TypeVar("M", bound=BaseModel)

# The last element of a pydantic error location that names a union member, not a field:
# str, int, float, bool, list[...], literal[...], function-after[...], or a model class.
_UNION_TAG = re.compile(r"^(str|int|float|bool|none|bytes|[a-z-]+\[.*\]|[A-Z][A-Za-z0-9]*)$")


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with a spec, located by a JSON-path-like string."""

    path: str
    problem: str
    got: str | None = None

    def describe(self) -> str:
        got = f" (got {self.got})" if self.got is not None else ""
        return f"{self.path}: {self.problem}{got}"


@dataclass(frozen=True)
class ParsedSpec(Generic[M]):
    """The outcome of parsing: the model, or the problems that prevented it."""

    spec: M | None
    problems: tuple[FieldProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return self.spec is not None


@dataclass(frozen=True)
class StatusDecision:
    """What to write into status: the whole new value of the fields this step owns."""

    accepted: bool
    reason: str
    message: str
    status_patch: dict[str, Any] = field(default_factory=dict)
    changed: bool = True


def field_path(loc: Sequence[int | str], root: str = "spec") -> str:
    """``('variants', 0, 'weight')`` -> ``spec.variants[0].weight``."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            path += f".{part}"
        else:  # a map key with dots or dashes, e.g. a parameter named learning-rate
            path += f"[{part!r}]"
    return path


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _problem_text(error: Mapping[str, Any]) -> str:
    if error["type"] == "missing":
        return "is required; add it"
    msg = str(error["msg"])
    return msg[0].lower() + msg[1:] if msg else error["type"]


def _fold(texts: list[str]) -> str:
    """``["input should be a valid string", "input should be a valid integer"]`` ->
    ``"input should be a valid string or a valid integer"``."""
    head = "input should be "
    if len(texts) > 1 and all(t.startswith(head) for t in texts):
        rest = [t[len(head) :] for t in texts]
        return head + ", ".join(rest[:-1]) + " or " + rest[-1]
    return " or ".join(texts)


def problems_of(error: ValidationError, root: str = "spec") -> tuple[FieldProblem, ...]:
    """Readable problems from a pydantic error, one per field.

    A value that fits no member of a union (a parameter that is a list, say) makes pydantic
    report one error per member, each located under the member's tag; they are folded into
    one problem at the field's own path.
    """
    errors = error.errors(include_url=False)
    tagged: dict[tuple[Any, ...], int] = {}
    for err in errors:
        loc = tuple(err["loc"])
        if loc and isinstance(loc[-1], str) and _UNION_TAG.match(loc[-1]):
            tagged[loc[:-1]] = tagged.get(loc[:-1], 0) + 1
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for err in errors:
        loc = tuple(err["loc"])
        # A lone capitalised last element is a map key (a tag named Team), not a union tag.
        tag = loc[-1] if loc and isinstance(loc[-1], str) and _UNION_TAG.match(loc[-1]) else None
        if tag is not None and (tagged[loc[:-1]] > 1 or not tag[:1].isupper()):
            loc = loc[:-1]
        groups.setdefault(loc, []).append(err)
    problems: list[FieldProblem] = []
    for loc, errs in groups.items():
        texts = _fold(list(dict.fromkeys(_problem_text(e) for e in errs)))
        first = errs[0]
        got = None if first["type"] == "missing" else _shown(first.get("input"))
        problems.append(FieldProblem(field_path(loc, root), texts, got))
    return tuple(problems)


def parse_spec(model: type[M], raw: Any) -> ParsedSpec[M]:
    """Validate ``raw`` (the object's spec as stored) against ``model``."""
    if raw is None:
        return ParsedSpec(None, (FieldProblem("spec", "is required; add it"),))
    try:
        return ParsedSpec(model.model_validate(raw))
    except ValidationError as exc:
        return ParsedSpec(None, problems_of(exc))


def invalid_message(kind: str, problems: Sequence[FieldProblem]) -> str:
    """The condition message: each problem, then how to fix it."""
    shown = "; ".join(p.describe() for p in problems[:MAX_PROBLEMS])
    more = len(problems) - MAX_PROBLEMS
    if more > 0:
        shown += f"; and {more} more"
    return (
        f"{shown}. Fix spec in the {kind} manifest and apply it again "
        f"(`kubectl explain {kind.lower()}.spec` describes every field)."
    )


def decide_acceptance(
    kind: str,
    parsed: ParsedSpec[Any],
    *,
    generation: int | None,
    status: Mapping[str, Any] | None,
    now: datetime,
) -> StatusDecision:
    """observedGeneration and the Ready condition for a parsed spec.

    ``changed`` is False when status already says exactly this, so that the caller can
    skip a PATCH that would only rewrite the same values.
    """
    status = status or {}
    ready: ConditionStatus
    if parsed.ok:
        accepted, reason, ready = True, ACCEPTED, "True"
        message = f"The {kind} spec is valid and accepted."
    else:
        accepted, reason, ready = False, INVALID_SPEC, "False"
        message = invalid_message(kind, parsed.problems)
    condition = make_condition(READY, ready, reason, message, now=now, observed_generation=generation)
    old_conditions = status.get("conditions") or []
    conditions = set_condition(old_conditions, condition)
    patch: dict[str, Any] = {"conditions": conditions}
    if generation is not None:
        patch["observedGeneration"] = generation
    changed = status.get("observedGeneration") != generation or find_condition(old_conditions, READY) != find_condition(
        conditions, READY
    )
    return StatusDecision(accepted, reason, message, patch, changed)
