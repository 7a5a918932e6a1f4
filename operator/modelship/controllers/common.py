"""What every kind's handler does first: accept the spec or refuse it, in status.

The handler modules call :func:`accept_spec` and, on success, go on with their kind's
own reconcile; on refusal it raises :class:`InvalidSpec` after writing the condition, so
kopf records a permanent failure (no retry until the spec changes) and posts it as an
Event. Also :func:`register_reconcile`, so that each kind is wired the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import kopf
from pydantic import BaseModel

from modelship.api import GROUP, VERSION, Kind
from modelship.resources.acceptance import INVALID_SPEC, decide_acceptance, parse_spec

M = TypeVar("M", bound=BaseModel)

HANDLER_ID = "reconcile"
"""The handler id of every kind; kopf keeps its progress in ``modelship.io/reconcile``."""


class InvalidSpec(kopf.PermanentError):
    """The spec cannot be reconciled as written; only a new spec can change that."""

    reason = INVALID_SPEC


def utcnow() -> datetime:
    """The clock, in one place, so that the pure functions never read it."""
    return datetime.now(UTC)


def accept_spec(
    kind: Kind,
    model: type[M],
    body: Mapping[str, Any],
    patch: kopf.Patch,
    *,
    now: datetime | None = None,
) -> M:
    """Parse the spec, write observedGeneration and the Ready condition into ``patch``.

    ``model`` is ``kind.spec``, passed again so that the caller gets its own type back.
    Returns the parsed spec model; raises :class:`InvalidSpec` when the model refuses it.
    The patch is written either way: kopf applies it even when the handler fails.
    """
    parsed = parse_spec(model, body.get("spec"))
    decision = decide_acceptance(
        kind.kind,
        parsed,
        generation=(body.get("metadata") or {}).get("generation"),
        status=body.get("status"),
        now=now or utcnow(),
    )
    if decision.changed:
        patch.status.update(decision.status_patch)
    if parsed.spec is None:
        raise InvalidSpec(decision.message)
    return parsed.spec


def accept_into_scratch(kind: Kind, model: type[M], body: Mapping[str, Any], patch: kopf.Patch) -> tuple[M, kopf.Patch]:
    """:func:`accept_spec` into a patch of its own, for a handler that writes its status itself
    (its Ready is its own decision, not "accepted"). Returns the spec and that patch; on
    refusal the patch goes into ``patch`` and :class:`InvalidSpec` is raised."""
    scratch = kopf.Patch()
    try:
        return accept_spec(kind, model, body, scratch), scratch
    except InvalidSpec:
        patch.status.update(scratch.status)
        raise


def register_reconcile(registry: kopf.OperatorRegistry, kind: Kind, fn: Callable[..., Any]) -> None:
    """Register ``fn`` for one kind on resume, create and update of the object.

    Resume covers objects that exist when the operator starts; create and update cover
    the rest. Status changes are not in kopf's essence of the object, so writing status
    does not trigger update again. Unexpected errors are retried with kopf's backoff;
    :class:`InvalidSpec` is not.
    """
    for on in (kopf.on.resume, kopf.on.create, kopf.on.update):
        on(
            group=GROUP,
            version=VERSION,
            plural=kind.plural,
            id=HANDLER_ID,
            backoff=30,
            registry=registry,
        )(fn)
