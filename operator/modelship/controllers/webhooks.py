"""Registry webhook delivery: a durable outbox in each model's registry ConfigMap.

The registry writer (:mod:`modelship.controllers.registry`) adds one outbox entry per
event and receiver *before* it writes the transition the event reports, so an event is
never lost to a crash. This worker sends due entries, removes each one after a 2xx
answer, and on failure stores the attempt count and the next try (exponential backoff).
After an operator restart it finds what is still pending and sends only that: an entry
that was delivered is gone. The delivery id is derived from the event (the same after a
restart), so a receiver can also drop the rare repeat of a delivery whose answer was lost.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import Any

import httpx
import kopf

from modelship import kube
from modelship.controllers import registry
from modelship.controllers.settings import OperatorConfig
from modelship.kube import KubeError
from modelship.resources import registry as reg
from modelship.resources import webhooks as wh

log = logging.getLogger(__name__)

SCAN_INTERVAL = 5.0
"""Seconds between scans for due retries when nothing wakes the worker earlier."""


class Deliverer:
    """Sends the outbox of every registry ConfigMap the operator can see."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.wake = asyncio.Event()
        self._secret: tuple[float, bytes | None] | None = None
        self.http = httpx.Client(timeout=config.webhook_timeout)

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
        for ns in self.config.namespaces:
            out.extend(kube.list_items(kube.core_path(ns, "configmaps"), labelSelector=selector))
        return out

    def deliver_due(self) -> float:
        """Send every due entry once; returns seconds until the next one is due.

        Each ConfigMap's outcomes are written back in one PATCH (delivered and dropped keys
        removed, failed ones rescheduled), not one per entry: a thousand versions created
        together would otherwise cost a thousand writes of the same few ConfigMaps.
        """
        now = time.time()
        next_due = SCAN_INTERVAL
        for cm in self._configmaps():
            meta = cm["metadata"]
            model = (meta.get("annotations") or {}).get(reg.COUNTER_MODEL_ANNOTATION)
            if model:
                registry.remember_counter(meta["namespace"], model, cm)
            outcomes: dict[str, str | None] = {}
            for key, entry in wh.pending(cm.get("data")):
                if entry.next_attempt > now:
                    next_due = min(next_due, entry.next_attempt - now)
                    continue
                outcomes[key] = self._deliver(entry)
            if outcomes:
                self._write_back(cm, model, outcomes)
        return max(0.05, next_due)

    def _write_back(self, cm: dict[str, Any], model: str | None, outcomes: dict[str, str | None]) -> None:
        """The outcomes into the ConfigMap (merge patch: other keys untouched; the operator's
        copy of the counter takes the answer, so its next claim is not refused as stale)."""
        meta = cm["metadata"]
        if model:
            registry.patch_counter(meta["namespace"], model, {"data": outcomes})
        else:
            kube.merge_patch(kube.core_path(meta["namespace"], "configmaps", meta["name"]), {"data": outcomes})

    def _deliver(self, entry: wh.OutboxEntry) -> str | None:
        """One attempt; the entry's new value (None: remove it)."""
        try:
            resp = self.http.post(entry.url, content=entry.body.encode(), headers=entry.headers(self.secret()))
            ok, why = wh.is_success(resp.status_code), f"HTTP {resp.status_code}"
        except (httpx.HTTPError, KubeError) as exc:
            ok, why = False, str(exc) or type(exc).__name__
        if ok:
            log.info("webhook delivered: %s", wh.describe(entry))
            return None
        failed = wh.entry_after_failure(entry, now=time.time())
        if failed.attempts >= self.config.webhook_max_attempts:
            log.warning("webhook dropped after %d attempts (%s): %s", failed.attempts, why, wh.describe(entry))
            return None
        log.info(
            "webhook attempt %d failed (%s), retry in %.0fs: %s",
            failed.attempts,
            why,
            failed.next_attempt - time.time(),
            wh.describe(entry),
        )
        return failed.dump()

    async def run(self) -> None:
        while True:
            try:
                wait = await asyncio.to_thread(self.deliver_due)
            except Exception:  # a failing scan must not end webhooks for good
                log.exception("webhook delivery scan failed")
                wait = SCAN_INTERVAL
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=wait)
            except TimeoutError:
                pass
            self.wake.clear()


async def start(memo: kopf.Memo, **_: Any) -> None:
    """kopf startup: run the worker in the background when webhooks are configured."""
    config: OperatorConfig = memo.config
    if not config.webhook_urls:
        memo.deliverer = None
        return
    deliverer = Deliverer(config)
    memo.deliverer = deliverer
    memo.deliverer_task = asyncio.create_task(deliverer.run(), name="modelship-webhooks")
    log.info("registry webhooks to %s", ", ".join(config.webhook_urls))


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
