"""Registry appliers: the version counter, and one serialized status writer per model.

Blocking helpers (the handlers run them with ``asyncio.to_thread``). Why this module
writes ModelVersion status itself instead of returning it through kopf's ``patch``: the
registry's decisions are per *model*, not per object. Promoting version 3 changes what
version 2 shows (superseded), so one decision writes several objects; and two handlers
of one model deciding at once from stale lists would undo each other. So every registry
status write of one model goes through :func:`sync_model`, one at a time per model
(an in-process lock; the operator runs as one replica), and each write is conditional on
the resourceVersion the decision was made from (409 means: read that object again and
decide again). What a decision reads is the operator's view of the namespace
(:mod:`modelship.controllers.registry_view`), kept by its watches and by the answers to
these writes, not a list call per object.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelship import kube
from modelship.controllers.registry_view import MODEL_VERSIONS, REGISTERED_MODELS
from modelship.kube import KubeError
from modelship.resources import registry as reg
from modelship.resources.conditions import READY, find_condition, merge_conditions
from modelship.resources.registry_api import registered_model_status

log = logging.getLogger(__name__)

PLURAL = "modelversions"
RM_PLURAL = "registeredmodels"
MAX_CONFLICTS = 50


# --- the version counter ------------------------------------------------------------------


def _counter_body(namespace: str, model: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": reg.counter_name(model),
            "namespace": namespace,
            "labels": {reg.COUNTER_LABEL: "counter"},
            "annotations": {reg.COUNTER_MODEL_ANNOTATION: model},
        },
        "data": {reg.LAST_KEY: "0"},
    }


_counters: dict[tuple[str, str], dict[str, Any]] = {}
"""The last copy of each counter ConfigMap the operator read or wrote. Only the operator
writes counters (claims here, the webhook outbox here and in the deliverer), and every
write is conditional or idempotent, so a copy made stale by another writer costs a 409 and
one GET (:func:`read_counter` with ``fresh``), not a wrong number."""
_counters_lock = threading.Lock()
_locks_lock = threading.Lock()


def remember_counter(namespace: str, model: str, counter: dict[str, Any] | None) -> dict[str, Any] | None:
    """Keep ``counter`` as the operator's copy if it is later than the one held (None: forget it)."""
    with _counters_lock:
        if counter is None:
            _counters.pop((namespace, model), None)
        elif reg.is_newer(counter, _counters.get((namespace, model))):
            _counters[(namespace, model)] = counter
        return _counters.get((namespace, model))


def read_counter(namespace: str, model: str, *, fresh: bool = False) -> dict[str, Any]:
    """The model's counter ConfigMap, created (last = 0) when missing; the operator's last
    copy unless ``fresh``."""
    if not fresh:
        with _counters_lock:
            known = _counters.get((namespace, model))
        if known is not None:
            return known
    path = kube.core_path(namespace, "configmaps", reg.counter_name(model))
    found = kube.get_or_none(path)
    if found is None:
        try:
            found = kube.create(kube.core_path(namespace, "configmaps"), _counter_body(namespace, model))
        except KubeError as exc:
            if exc.status != 409:  # AlreadyExists: another handler made it first
                raise
            found = kube.get(path)
    remember_counter(namespace, model, found)
    return found  # type: ignore[no-any-return]


_counter_locks: dict[tuple[str, str], threading.RLock] = {}


def counter_lock(namespace: str, model: str) -> threading.RLock:
    """Held around every write of one model's counter in this process, and around a claim's
    read of the copy and its conditional write: versions of one model created together
    then claim one after another from the copy the last answer left, instead of racing on
    one resourceVersion (every loser paid a 409 and a GET), and an outbox write or a
    delivery write-back never moves the resourceVersion under a claim in flight."""
    with _locks_lock:
        return _counter_locks.setdefault((namespace, model), threading.RLock())


def patch_counter(namespace: str, model: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch of the counter (conditional when ``body`` names a resourceVersion); the
    answer becomes the operator's copy. A 404 forgets the copy and raises."""
    path = kube.core_path(namespace, "configmaps", reg.counter_name(model))
    with counter_lock(namespace, model):
        try:
            answer: dict[str, Any] = kube.merge_patch(path, body)
        except KubeError as exc:
            if exc.status == 404:
                remember_counter(namespace, model, None)
            raise
        remember_counter(namespace, model, answer)
    return answer


@dataclass(frozen=True)
class Claim:
    version: int
    with_entries: bool
    """Whether the claim wrote ``entries`` (a new number; an earlier claim writes nothing)."""


def assign_version(
    namespace: str,
    model: str,
    uid: str,
    *,
    settled: Callable[[], list[str]] = list,
    entries: Callable[[int], Mapping[str, str]] | None = None,
) -> Claim:
    """This ModelVersion's number: its earlier claim, or the next one, claimed atomically.

    The write is a merge patch preconditioned on the counter's resourceVersion, so two
    writers that read the same ``last`` cannot both win: the loser gets 409, reads
    again and takes the next number. ``entries(number)`` are further data keys written in
    the same PATCH as a new claim (the webhook outbox's ``created`` entry, so a version
    costs one ConfigMap write, not two).
    """
    done = settled()  # once: a settled claim stays settled
    fresh = False
    for _attempt in range(MAX_CONFLICTS):
        with counter_lock(namespace, model):
            counter = read_counter(namespace, model, fresh=fresh)
            update = reg.claim_version(counter.get("data"), uid, settled=done)
            if update.already_claimed and not update.data_patch:
                return Claim(update.version, False)
            data: dict[str, str | None] = dict(update.data_patch)
            extra = entries(update.version) if entries is not None and not update.already_claimed else {}
            data.update(extra)
            patch = {"metadata": {"resourceVersion": counter["metadata"]["resourceVersion"]}, "data": data}
            try:
                patch_counter(namespace, model, patch)
            except KubeError as exc:
                if exc.status in (404, 409):
                    fresh = True  # another writer, or the copy is gone: read it again
                    continue
                raise
        return Claim(update.version, bool(extra))
    raise RuntimeError(f"the version counter of model {model!r} stayed contended for {MAX_CONFLICTS} tries")


def enqueue(namespace: str, model: str, entries: Mapping[str, str]) -> None:
    """Add webhook outbox entries to the model's registry ConfigMap (keys are delivery ids:
    writing one twice is harmless)."""
    if not entries:
        return
    read_counter(namespace, model)  # made when missing
    try:
        patch_counter(namespace, model, {"data": dict(entries)})
    except KubeError as exc:
        if exc.status != 404:
            raise
        read_counter(namespace, model, fresh=True)  # deleted under the operator's copy: made again
        patch_counter(namespace, model, {"data": dict(entries)})


# --- listing a model's versions ----------------------------------------------------------------


def list_model(namespace: str, model: str) -> list[dict[str, Any]]:
    """Every ModelVersion of ``model`` in ``namespace``, listed from the API server (filtered
    on spec.model client-side: custom resources have no field selectors on spec, and labels
    belong to the user). For a process without the operator's watches (the CLI); the
    operator reads :data:`MODEL_VERSIONS`."""
    items = kube.list_items(kube.custom_path(namespace, PLURAL))
    return [o for o in items if (o.get("spec") or {}).get("model") == model]


def settled_claims(namespace: str, model: str) -> list[str]:
    """uids whose counter claim is no longer needed: numbered in status, or deleted."""
    counter = read_counter(namespace, model)
    claims = {k[len(reg.CLAIM_PREFIX) :] for k in (counter.get("data") or {}) if k.startswith(reg.CLAIM_PREFIX)}
    if not claims:
        return []
    versions = MODEL_VERSIONS.of_model(namespace, model)
    live = {(o["metadata"]["uid"]): (o.get("status") or {}).get("version") for o in versions}
    return [u for u in claims if u not in live or live[u] is not None]


# --- the per-model status writer ----------------------------------------------------------------

_model_locks: dict[tuple[str, str], threading.Lock] = {}


def model_lock(namespace: str, model: str) -> threading.Lock:
    with _locks_lock:
        return _model_locks.setdefault((namespace, model), threading.Lock())


@dataclass
class Own:
    """What the handled object's own handler found, written together with the decision."""

    uid: str
    status: dict[str, Any]
    """Status fields owned by the handler (version, runId, metrics, Ready...)."""
    conditions: list[dict[str, Any]] = field(default_factory=list)
    """Conditions owned by the handler (Ready), merged into the object's list."""
    body: Mapping[str, Any] | None = None
    """The object as the handler got it, so the view holds it even before its watch event."""


@dataclass
class SyncResult:
    decisions: list[reg.VersionDecision]
    objects: dict[str, dict[str, Any]]
    created: list[str]
    """uids that got their version number written in this sync."""


def _overlay(obj: dict[str, Any], own: Own | None) -> dict[str, Any]:
    if own is None or obj["metadata"]["uid"] != own.uid:
        return obj
    status = {**(obj.get("status") or {}), **own.status}
    if own.conditions:
        status["conditions"] = merge_conditions(status.get("conditions"), own.conditions)
    return {**obj, "status": status}


def _gains(patch: dict[str, Any], original: dict[str, Any]) -> bool:
    """Whether a status patch gives its version a stage or an alias it did not hold."""
    old = original.get("status") or {}
    if patch.get("stage") in ("Staging", "Production") and old.get("stage") != patch.get("stage"):
        return True
    return bool(set(patch.get("aliases") or []) - set(old.get("aliases") or []))


def sync_model(
    namespace: str,
    model: str,
    *,
    now: Callable[[], datetime],
    own: Own | None = None,
    before_write: Callable[[list[reg.VersionDecision], dict[str, dict[str, Any]], dict[str, dict[str, Any]]], None]
    | None = None,
) -> SyncResult:
    """Decide the whole model and write each version's status that differs.

    ``own`` carries the handled object's freshly observed fields; they are written in the
    same PATCH as its registry fields. ``before_write`` runs after the decision and before
    any status write (the webhook outbox goes there, so an event is durable before the
    transition it reports is).
    """
    with model_lock(namespace, model):
        for _attempt in range(MAX_CONFLICTS):
            if own is not None and own.body is not None:
                MODEL_VERSIONS.observe(own.body)
            listed = MODEL_VERSIONS.of_model(namespace, model)
            objects = {o["metadata"]["uid"]: _overlay(o, own) for o in listed}
            originals = {o["metadata"]["uid"]: o for o in listed}
            views = [reg.VersionView.from_object(o) for o in objects.values()]
            decisions = reg.decide_model(views, now=now())
            if before_write is not None:
                before_write(decisions, objects, originals)
            created: list[str] = []
            try:
                # Gains before losses: a reader (a ModelDeployment following Production) then
                # sees the new holder of a stage or alias before the old one lets go, never
                # a moment with no holder.
                for d in sorted(decisions, key=lambda d: not _gains(d.status_patch, originals[d.uid])):
                    patch = dict(d.status_patch)
                    if own is not None and d.uid == own.uid:
                        original = originals[d.uid].get("status") or {}
                        for key, value in objects[d.uid]["status"].items():
                            if key not in patch and original.get(key) != value:
                                patch[key] = value
                        if original.get("version") is None:
                            created.append(d.uid)
                    if patch:
                        _write_status(namespace, originals[d.uid], patch)
                if own is not None and own.uid in objects and own.uid not in {d.uid for d in decisions}:
                    # Not numbered yet (cannot happen from the handler, which numbers first).
                    _write_status(namespace, originals[own.uid], objects[own.uid]["status"])
            except StaleWrite as stale:
                MODEL_VERSIONS.refresh(stale.obj)  # the one object that changed under us
                continue
            _sync_registered_models_safely(namespace, model, _after(objects, decisions), now=now)
            return SyncResult(decisions, objects, created)
    raise RuntimeError(f"status of model {model!r} stayed contended for {MAX_CONFLICTS} tries")


def _after(objects: Mapping[str, dict[str, Any]], decisions: list[reg.VersionDecision]) -> list[dict[str, Any]]:
    """The versions as they are once the decision's status patches are written."""
    patches = {d.uid: d.status_patch for d in decisions}
    return [{**o, "status": {**(o.get("status") or {}), **patches.get(uid, {})}} for uid, o in objects.items()]


# --- RegisteredModel status: the model-level view ------------------------------------------------


def sync_registered_models(
    namespace: str, model: str, versions: list[dict[str, Any]] | None = None, *, now: Callable[[], datetime]
) -> None:
    """Write the status of the model's RegisteredModel(s) from its versions (listed when not given).

    The oldest RegisteredModel of a model is its entry; a later one is marked a duplicate.
    Called under the model's lock (from :func:`sync_model`, or taking it), so that two
    writers never race; each write is conditional on the resourceVersion read.
    """
    for _attempt in range(MAX_CONFLICTS):
        entries = REGISTERED_MODELS.of_model(namespace, model)
        if not entries:
            return
        listed = versions if versions is not None else MODEL_VERSIONS.of_model(namespace, model)
        entries.sort(key=lambda o: (o["metadata"].get("creationTimestamp") or "", o["metadata"]["name"]))
        try:
            for i, entry in enumerate(entries):
                old = entry.get("status") or {}
                new = registered_model_status(
                    model,
                    listed,
                    duplicate_of=entries[0]["metadata"]["name"] if i else None,
                    generation=entry["metadata"].get("generation"),
                    now=now(),
                    previous_ready=find_condition(old.get("conditions"), READY),
                )
                if any(old.get(k) != v for k, v in new.items()):
                    body = {"metadata": {"resourceVersion": entry["metadata"]["resourceVersion"]}, "status": new}
                    try:
                        answer = kube.merge_patch(
                            kube.custom_path(namespace, RM_PLURAL, entry["metadata"]["name"], subresource="status"),
                            body,
                        )
                    except KubeError as exc:
                        if exc.status in (404, 409):
                            raise StaleWrite(entry) from None
                        raise
                    REGISTERED_MODELS.observe(answer)
        except StaleWrite as stale:
            REGISTERED_MODELS.refresh(stale.obj)  # something changed under us
            versions = None
            continue
        return
    raise RuntimeError(f"status of RegisteredModel {model!r} stayed contended for {MAX_CONFLICTS} tries")


def _sync_registered_models_safely(
    namespace: str, model: str, versions: list[dict[str, Any]], *, now: Callable[[], datetime]
) -> None:
    # The versions' own status is written; the model-level view is a summary, and a cluster
    # without the RegisteredModel CRD (an older install) must not stop the registry.
    try:
        sync_registered_models(namespace, model, versions, now=now)
    except (KubeError, RuntimeError) as exc:
        log.warning("model %s: RegisteredModel status not written: %s", model, exc)


class StaleWrite(Exception):
    """A conditional status write found the object changed (409) or gone (404)."""

    def __init__(self, obj: Mapping[str, Any]) -> None:
        super().__init__(obj["metadata"]["name"])
        self.obj = obj


def _write_status(namespace: str, obj: Mapping[str, Any], status_patch: Mapping[str, Any]) -> None:
    """The status PATCH, conditional on the copy the decision read; its answer goes into the view."""
    meta = obj["metadata"]
    body = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": dict(status_patch)}
    try:
        answer = kube.merge_patch(kube.custom_path(namespace, PLURAL, meta["name"], subresource="status"), body)
    except KubeError as exc:
        if exc.status in (404, 409):
            raise StaleWrite(obj) from None
        raise
    MODEL_VERSIONS.observe(answer)
