"""RegisteredModel handlers: the model-level view of a model's ModelVersions, in status.

A RegisteredModel holds what MLflow keeps per model (description, tags); its status is
computed from the model's ModelVersions (how many, the latest per stage, the aliases) by
:func:`modelship.resources.registry_api.registered_model_status`. Every ModelVersion
decision refreshes it too (:func:`registry.sync_model`), so this handler only covers the
RegisteredModel's own create, change and resume, and a duplicate's deletion.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from modelship.api import GROUP, VERSION, RegisteredModelSpec, kind_by_name
from modelship.controllers import registry, registry_view
from modelship.controllers.common import accept_into_scratch, register_reconcile, utcnow
from modelship.controllers.metrics import METRICS

KIND = kind_by_name("RegisteredModel")


def _sync(namespace: str, model: str, body: kopf.Body | None = None) -> None:
    if body is not None:
        registry_view.REGISTERED_MODELS.observe(body)
    with registry.model_lock(namespace, model):
        registry.sync_registered_models(namespace, model, now=utcnow)


@METRICS.measured(KIND.kind)
async def reconcile(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Accept the spec, then write the model-level view (through the model's one writer)."""
    spec, _scratch = accept_into_scratch(KIND, RegisteredModelSpec, body, patch)
    await asyncio.to_thread(_sync, body.metadata.namespace or "", spec.model, body)


async def on_deleted(body: kopf.Body, type: str, logger: kopf.Logger, **_: Any) -> None:
    """An entry went away: a duplicate of the same model may now be the entry."""
    model, namespace = (body.get("spec") or {}).get("model"), body.metadata.namespace
    if type != "DELETED" or not model or not namespace:
        return
    try:
        await asyncio.to_thread(_sync, namespace, model)
    except Exception as exc:  # noqa: BLE001 -- event handlers are not retried; the next change fixes it
        logger.warning("model %s: RegisteredModel status after a deletion failed: %s", model, exc)


def _is_deletion(type: str, **_: Any) -> bool:
    return type == "DELETED"


def register(registry_: kopf.OperatorRegistry) -> None:
    """Register this kind's handlers on ``registry_``."""
    registry_view.register(registry_, registry_view.REGISTERED_MODELS)
    register_reconcile(registry_, KIND, reconcile)
    kopf.on.event(
        group=GROUP,
        version=VERSION,
        plural=KIND.plural,
        id="registeredmodel-deleted",
        when=_is_deletion,
        registry=registry_,
    )(on_deleted)
