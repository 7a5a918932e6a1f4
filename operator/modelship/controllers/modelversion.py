"""ModelVersion handlers: the registry. Resolve the version's source, number it, decide the model.

One reconcile, in a fixed order:

1. accept the spec (a refused spec stops here, as for every kind);
2. resolve ``spec.source``: model directory with an MLmodel file, signature, run metrics;
3. take a version number from the model's counter (once; kept in status), in the same
   ConfigMap write as the ``model_version.created`` webhook's outbox entry;
4. decide the whole model (effective stages, superseded versions, aliases, gates) and
   write every version's status that changed, through the one per-model writer;
5. post an Event per effective transition and wake the webhook worker.

A source that cannot be resolved leaves Ready=False with the reason and raises a
temporary error, so kopf retries with a growing delay (no crash loop). A deleted version
triggers step 4 for its model, so a superseded version takes its stage back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

import kopf

from modelship.api import GROUP, VERSION, ModelVersionSpec, kind_by_name
from modelship.controllers import registry, registry_view, webhooks
from modelship.controllers.common import (
    accept_into_scratch,
    register_reconcile,
    utcnow,
)
from modelship.controllers.metrics import METRICS
from modelship.controllers.registry_source import Resolved, SourceError, find_in_registry, resolve
from modelship.controllers.settings import OperatorConfig
from modelship.resources import registry as reg
from modelship.resources import webhooks as wh
from modelship.resources.conditions import READY, find_condition, make_condition

KIND = kind_by_name("ModelVersion")


def retry_delay(retry: int) -> float:
    """Seconds before kopf tries an unresolved source again: 5, 10, 20 ... up to 5 minutes."""
    return float(min(300, 5 * 2 ** min(retry, 6)))


@METRICS.measured(KIND.kind)
async def reconcile(
    body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, memo: kopf.Memo, retry: int = 0, **_: Any
) -> None:
    """Observe the ModelVersion, decide the model with pure functions, write status."""
    spec, scratch = accept_into_scratch(KIND, ModelVersionSpec, body, patch)
    config: OperatorConfig = memo.config
    namespace, uid = body.metadata.namespace or "", body.metadata.uid or ""
    status = dict(body.get("status") or {})

    def lookup(name: str, ref: str) -> dict[str, Any] | None:
        return find_in_registry(registry.list_model(namespace, name), name, ref)

    # The source before the number: the ``created`` webhook names the run, and so its outbox
    # entry can ride on the claim's ConfigMap write instead of a write of its own.
    error: SourceError | None = None
    resolved: Resolved | None = None
    try:
        resolved = await asyncio.to_thread(resolve, spec.source, tracking_url=config.tracking_url, lookup=lookup)
    except SourceError as exc:
        error = exc

    deliverer: webhooks.Deliverer | None = getattr(memo, "deliverer", None)
    urls = config.webhook_urls if deliverer else []
    version = status.get("version")
    created_queued = False
    if version is None:
        run_id = (resolved.run_id if resolved is not None else None) or status.get("runId")
        claim = await asyncio.to_thread(
            registry.assign_version,
            namespace,
            spec.model,
            uid,
            settled=lambda: registry.settled_claims(namespace, spec.model),
            entries=lambda number: _created_entries(body, spec.model, number, run_id, urls),
        )
        version, created_queued = claim.version, claim.with_entries
        logger.info("model %s: version %d", spec.model, version)

    now = utcnow()
    own_status: dict[str, Any] = {"version": version}
    if "observedGeneration" in scratch.status:
        own_status["observedGeneration"] = scratch.status["observedGeneration"]
    if resolved is not None:
        own_status.update(resolved.status())
        ready = find_condition(scratch.status.get("conditions"), READY) or make_condition(
            READY, "True", "Accepted", "", now=now
        )
        ready = {
            **ready,
            "reason": "SourceResolved",
            "message": f"Version {version} of {spec.model}: model at {resolved.artifact_uri}.",
        }
    else:
        assert error is not None
        ready = make_condition(
            READY,
            "False",
            error.reason,
            f"{error.message}. Retrying in {retry_delay(retry):.0f}s.",
            now=now,
            observed_generation=body.metadata.get("generation"),
        )
    own = registry.Own(uid, own_status, [ready], body=dict(body))

    result = await asyncio.to_thread(
        registry.sync_model,
        namespace,
        spec.model,
        now=utcnow,
        own=own,
        before_write=_outbox_writer(namespace, spec.model, uid, urls, created_queued=created_queued),
    )
    _post_events(result)
    if deliverer is not None:
        deliverer.notify()
    if error is not None:
        raise kopf.TemporaryError(f"{error.reason}: {error.message}", delay=retry_delay(retry))
    gates = (body.get("spec") or {}).get("gates") or []  # the wire shape, as the decision reads it
    missing = sorted(reg.missing_gate_metrics(gates, resolved.metrics if resolved else None))
    if missing:
        # A metric can reach the run after the version was registered (``modelship evaluate``
        # logs eval.* later): read the run again with the same backoff as an unresolved source,
        # rather than leave the gate failed until the next spec change or operator restart.
        delay = retry_delay(retry)
        logger.info(
            "model %s version %s: gate metrics %s not in the run yet; reading it again in %.0fs",
            spec.model,
            version,
            ", ".join(missing),
            delay,
        )
        raise kopf.TemporaryError(f"GateMetricMissing: {', '.join(missing)}", delay=delay)


def _created_entries(
    body: Mapping[str, Any], model: str, version: int, run_id: str | None, urls: list[str]
) -> dict[str, str]:
    """The outbox entries of ``model_version.created`` for the version numbered ``version``."""
    if not urls:
        return {}
    obj = {**body, "status": {**(body.get("status") or {}), "version": version, "runId": run_id}}
    uid = (body.get("metadata") or {}).get("uid") or ""
    return wh.entries_for(reg.version_created_event(model, uid, version, obj), urls, now=utcnow())


def _outbox_writer(namespace: str, model: str, uid: str, urls: list[str], *, created_queued: bool = False) -> Any:
    """The ``before_write`` step: events of this decision into the durable outbox
    (``created_queued``: the handled version's ``created`` entry went with its claim)."""

    def write(
        decisions: list[reg.VersionDecision], objects: dict[str, dict[str, Any]], originals: dict[str, dict[str, Any]]
    ) -> None:
        if not urls:
            return
        now = utcnow()
        entries: dict[str, str] = {}
        for d in decisions:
            if d.uid == uid and not created_queued and (originals[d.uid].get("status") or {}).get("version") is None:
                entries.update(
                    wh.entries_for(reg.version_created_event(model, d.uid, d.version, objects[d.uid]), urls, now=now)
                )
            for event in reg.decision_events(model, namespace, d):
                entries.update(wh.entries_for(event, urls, now=now))
        registry.enqueue(namespace, model, entries)

    return write


def _post_events(result: registry.SyncResult) -> None:
    for d in result.decisions:
        body_of = kopf.Body(cast(kopf.RawBody, result.objects[d.uid]))
        if d.transition is not None:
            t = d.transition
            kind = "Warning" if t.reason in ("GatesFailed", "SourceNotReady") and t.from_ != reg.NONE else "Normal"
            kopf.event(body_of, type=kind, reason=f"Stage{t.to}", message=t.message)
        for move in d.alias_moves:
            kopf.event(
                body_of,
                type="Normal",
                reason="AliasMoved",
                message=f"Alias {move.alias!r} now points at version {d.version}"
                + (f" (was version {move.previous_version})" if move.previous_version else ""),
            )


def _is_deletion(type: str, **_: Any) -> bool:
    return type == "DELETED"


async def on_deleted(body: kopf.Body, type: str, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """A version went away: decide its model again (a superseded version may take over)."""
    if type != "DELETED":
        return
    model = (body.get("spec") or {}).get("model")
    namespace = body.metadata.namespace
    if not model or not namespace:
        return
    config: OperatorConfig = memo.config
    deliverer: webhooks.Deliverer | None = getattr(memo, "deliverer", None)
    try:
        result = await asyncio.to_thread(
            registry.sync_model,
            namespace,
            model,
            now=utcnow,
            before_write=_outbox_writer(namespace, model, "", config.webhook_urls if deliverer else []),
        )
    except Exception as exc:  # noqa: BLE001 -- event handlers are not retried; the next reconcile of the model fixes it
        logger.warning("model %s: deciding after a deletion failed: %s", model, exc)
        return
    _post_events(result)
    if deliverer is not None:
        deliverer.notify()


def register(registry_: kopf.OperatorRegistry) -> None:
    """Register this kind's handlers on ``registry_``."""
    registry_view.register(registry_, registry_view.MODEL_VERSIONS)
    register_reconcile(registry_, KIND, reconcile)
    kopf.on.event(
        group=GROUP, version=VERSION, plural=KIND.plural, id="registry-deleted", when=_is_deletion, registry=registry_
    )(on_deleted)
    webhooks.register(registry_)
