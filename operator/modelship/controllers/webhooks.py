"""Registry webhook delivery: a durable outbox in each model's registry ConfigMap.

The registry writer (:mod:`modelship.controllers.registry`) adds one outbox entry per
event and receiver *before* it writes the transition the event reports, so an event is
never lost to a crash. This worker sends due entries, removes each one after a 2xx
answer, and on failure stores the attempt count and the next try (exponential backoff).
After an operator restart it finds what is still pending and sends only that: an entry
that was delivered is gone. The delivery id is derived from the event (the same after a
restart), so a receiver can also drop the rare repeat of a delivery whose answer was lost.

After each scan it also writes what happened into the namespace's delivery record
(:data:`modelship.resources.webhooks.DELIVERIES_CONFIGMAP`, one merge patch of the keys that
changed), which the tracking server's registry page reads by name.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import kopf

from modelship import kube
from modelship.controllers import peering, registry
from modelship.controllers.settings import OperatorConfig
from modelship.kube import KubeError
from modelship.resources import registry as reg
from modelship.resources import webhooks as wh

log = logging.getLogger(__name__)

SCAN_INTERVAL = 5.0
"""Seconds between scans for due retries when nothing wakes the worker earlier."""


@dataclass(frozen=True)
class Scanned:
    """What one scan did with one model's outbox, for the delivery record."""

    model: str
    attempts: dict[str, list[wh.Attempt]]
    """Per receiver URL, the attempts made."""
    left: dict[str, int]
    """Per receiver URL, the entries still pending."""
    dropped: dict[str, int]
    """Per receiver URL, the entries given up."""


class Deliverer:
    """Sends the outbox of every registry ConfigMap the operator can see."""

    def __init__(self, config: OperatorConfig, paused: peering.Paused | None = None) -> None:
        self.config = config
        self.paused = paused
        """Whether kopf's peering paused this replica (controllers/peering.py): then the
        working replica delivers, and this one sends nothing."""
        self.wake = asyncio.Event()
        self._secret: tuple[float, bytes | None] | None = None
        self.http = httpx.Client(timeout=config.webhook_timeout)
        self._records: dict[str, dict[str, str]] = {}
        """Each namespace's delivery record as last written (read once after a start)."""

    def notify(self) -> None:
        self.wake.set()

    def secret(self) -> bytes | None:
        """The HMAC key, read from the Secret and cached for a minute (rotation takes effect)."""
        if not self.config.webhook_secret:
            return None
        if self._secret and time.monotonic() - self._secret[0] < 60:
            return self._secret[1]
        namespace, _, name = self.config.webhook_secret.partition("/")
        secret = kube.get(kube.core_path(namespace, "secrets", name))
        raw = (secret.get("data") or {}).get(self.config.webhook_secret_key)
        if raw is None:
            raise KubeError(404, f"Secret {self.config.webhook_secret} has no key {self.config.webhook_secret_key!r}")
        key = base64.b64decode(raw)
        self._secret = (time.monotonic(), key)
        return key

    def _configmaps(self) -> list[dict[str, Any]]:
        selector = f"{reg.COUNTER_LABEL}=counter"
        if self.config.clusterwide:
            return kube.list_items(kube.core_path(None, "configmaps"), labelSelector=selector)
        out: list[dict[str, Any]] = []
        # Only the watched namespaces that exist: one named before it is created has no Role
        # of the chart yet, and its 403 failed the whole scan, every namespace's webhooks with it.
        for ns in kube.existing_namespaces(self.config.namespaces):
            try:
                out.extend(kube.list_items(kube.core_path(ns, "configmaps"), labelSelector=selector))
            except KubeError as exc:
                if exc.status != 403:
                    raise
                log.warning("webhooks: may not list the ConfigMaps of namespace %s (%s); its webhooks wait", ns, exc)
        return out

    def deliver_due(self) -> float:
        """Send every due entry once; returns seconds until the next one is due.

        Each ConfigMap's outcomes are written back in one PATCH (delivered and dropped keys
        removed, failed ones rescheduled), not one per entry: a thousand versions created
        together would otherwise cost a thousand writes of the same few ConfigMaps.
        """
        now = time.time()
        next_due = SCAN_INTERVAL
        scanned: dict[str, list[Scanned]] = {}
        try:
            for cm in self._configmaps():
                meta = cm["metadata"]
                model = (meta.get("annotations") or {}).get(reg.COUNTER_MODEL_ANNOTATION)
                if model:
                    registry.remember_counter(meta["namespace"], model, cm)
                outcomes: dict[str, str | None] = {}
                attempts: dict[str, list[wh.Attempt]] = {}
                dropped: dict[str, int] = {}
                entries = wh.pending(cm.get("data"))
                for key, entry in entries:
                    if entry.next_attempt > now:
                        next_due = min(next_due, entry.next_attempt - now)
                        continue
                    outcomes[key], attempt, gave_up = self._deliver(entry)
                    attempts.setdefault(entry.url, []).append(attempt)
                    dropped[entry.url] = dropped.get(entry.url, 0) + gave_up
                if outcomes:
                    self._write_back(cm, model, outcomes)
                    left: dict[str, int] = {}
                    for key, entry in entries:
                        if key not in outcomes or outcomes[key] is not None:
                            left[entry.url] = left.get(entry.url, 0) + 1
                    scanned.setdefault(meta["namespace"], []).append(
                        Scanned(model or meta["name"], attempts, left, dropped)
                    )
        finally:
            # the scan's record, also when a write-back failed after other models' deliveries
            for namespace, models in scanned.items():
                self._record(namespace, models)
        return max(0.05, next_due)

    def _record(self, namespace: str, models: list[Scanned]) -> None:
        """One scan's attempts into the namespace's delivery record, in one PATCH for every
        model of the namespace (a thousand versions of 20 models created together made a
        record write per model and scan). A failure here is logged, never raised: the
        record is for reading; delivery goes on without it."""
        try:
            data = self._records.get(namespace)
            path = kube.core_path(namespace, "configmaps", wh.DELIVERIES_CONFIGMAP)
            if data is None:
                data = dict((kube.get_or_none(path) or {}).get("data") or {})
            changed: dict[str, str] = {}
            for one in models:
                for url, tried in one.attempts.items():
                    key = wh.record_key(one.model, url)
                    previous = wh.DeliveryRecord.load(data[key]) if key in data else None
                    rec = wh.record_after(
                        previous, one.model, url, tried, pending=one.left.get(url, 0), dropped=one.dropped.get(url, 0)
                    )
                    changed[key] = rec.dump()
            try:
                kube.merge_patch(path, {"data": changed})
            except KubeError as exc:
                if exc.status != 404 or not kube.ensure(
                    kube.core_path(namespace, "configmaps"), deliveries_configmap(namespace, changed)
                ):
                    raise
            self._records[namespace] = {**data, **changed}
        except KubeError as exc:
            self._records.pop(namespace, None)
            names = ", ".join(one.model for one in models)
            log.warning("webhook delivery record of %s in %s not written: %s", names, namespace, exc)

    def _write_back(self, cm: dict[str, Any], model: str | None, outcomes: dict[str, str | None]) -> None:
        """The outcomes into the ConfigMap (merge patch: other keys untouched; the operator's
        copy of the counter takes the answer, so its next claim is not refused as stale)."""
        meta = cm["metadata"]
        if model:
            registry.patch_counter(meta["namespace"], model, {"data": outcomes})
        else:
            kube.merge_patch(kube.core_path(meta["namespace"], "configmaps", meta["name"]), {"data": outcomes})

    def _deliver(self, entry: wh.OutboxEntry) -> tuple[str | None, wh.Attempt, int]:
        """One attempt: the entry's new value (None: remove it), its outcome, and 1 when it was dropped."""
        try:
            resp = self.http.post(entry.url, content=entry.body.encode(), headers=entry.headers(self.secret()))
            ok, why = wh.is_success(resp.status_code), f"HTTP {resp.status_code}"
        except (httpx.HTTPError, KubeError) as exc:
            ok, why = False, str(exc) or type(exc).__name__
        at = time.time()
        if ok:
            log.info("webhook delivered: %s", wh.describe(entry))
            return None, wh.Attempt(True, at), 0
        failed = wh.entry_after_failure(entry, now=at, error=why)
        attempt = wh.Attempt(False, at, failed.error)
        if failed.attempts >= self.config.webhook_max_attempts:
            log.warning("webhook dropped after %d attempts (%s): %s", failed.attempts, failed.error, wh.describe(entry))
            return None, attempt, 1
        log.info(
            "webhook attempt %d failed (%s), retry in %.0fs: %s",
            failed.attempts,
            failed.error,
            failed.next_attempt - time.time(),
            wh.describe(entry),
        )
        return failed.dump(), attempt, 0

    async def run(self) -> None:
        while True:
            try:
                if self.paused is not None and await self.paused():
                    wait = peering.CHECK_EVERY_S
                else:
                    wait = await asyncio.to_thread(self.deliver_due)
            except Exception:  # a failing scan must not end webhooks for good
                log.exception("webhook delivery scan failed")
                wait = SCAN_INTERVAL
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=wait)
            except TimeoutError:
                pass
            self.wake.clear()


def deliveries_configmap(namespace: str, data: dict[str, str]) -> dict[str, Any]:
    """The namespace's delivery record, created with its first entries."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": wh.DELIVERIES_CONFIGMAP,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "modelship"},
        },
        "data": data,
    }


async def start(memo: kopf.Memo, **_: Any) -> None:
    """kopf startup: run the worker in the background when webhooks are configured."""
    config: OperatorConfig = memo.config
    if not config.webhook_urls:
        memo.deliverer = None
        return
    pause = peering.pause_of(memo)
    deliverer = Deliverer(config, pause.paused if pause is not None else None)
    memo.deliverer = deliverer
    memo.deliverer_task = asyncio.create_task(deliverer.run(), name="modelship-webhooks")
    log.info("registry webhooks to %s", ", ".join(wh.redact_url(u) for u in config.webhook_urls))


async def stop(memo: kopf.Memo, **_: Any) -> None:
    """kopf cleanup: stop the worker; undelivered entries stay in the outbox."""
    task = getattr(memo, "deliverer_task", None)
    if task is not None:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.startup(id="webhooks", registry=registry)(start)
    kopf.on.cleanup(id="webhooks", registry=registry)(stop)
