"""kopf's peering pause, for the loops that run outside kopf's handlers.

With ``--peering``, kopf pauses the handlers (and its watches) of every replica but the one
of the highest priority. It cannot pause what runs beside them: the ModelDeployment
follower (follower.py) and the webhook deliverer (webhooks.py). Left running, a paused
replica's follower went on reconciling the objects it had from bodies its frozen watches no
longer updated, beside the working replica's, and both deliverers sent each webhook. Both
loops therefore ask :meth:`PeeringPause.paused` before each round of work, which reads the
peering object(s) this replica meets its peers in and applies kopf's own rule
(resources/peering.py) with this replica's identity and priority, which main.py hands to
kopf too. Standalone (no ``--peering``) there is nothing to ask.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import kopf

from modelship import kube
from modelship.controllers.settings import OperatorConfig
from modelship.resources.peering import pausing_peers

log = logging.getLogger(__name__)

CHECK_EVERY_S = 2.0
"""How long one reading of the peering objects is trusted: the loops' own pace (the
follower's tick), so that a replica that loses the lead stops within about that long."""
READS_PER_S = 2.0
"""At most this many peering objects read a second: an operator of many namespaces (one
KopfPeering each) trusts a reading longer, 0.5 s per namespace (10 s for 20)."""
NAMESPACES_EVERY_S = 30.0
"""How long the list of watched namespaces that exist is trusted (namespaced peering)."""
MEMO_KEY = "peering_pause"

Paused = Callable[[], Awaitable[bool]]
"""Whether this replica does nothing now (kopf's peering paused it): PeeringPause.paused."""


def own_identity() -> str:
    """This replica's name among its peers, as kopf makes it (``POD_ID``, else user@host with
    the start time and a random suffix); made here and handed to kopf so that both know it."""
    pod = os.environ.get("POD_ID")
    if pod:
        return pod
    started = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    suffix = secrets.token_hex(2)
    return f"{getpass.getuser()}@{socket.gethostname()}/{started}/{suffix}"


class PeeringPause:
    """Whether this replica is paused, read from its peering objects at most every
    ``every`` seconds, for every loop that asks, as kopf reads them: the ClusterKopfPeering
    ``name`` for an operator of every namespace (``namespaces`` None), else the KopfPeering
    ``name`` of each watched namespace that exists (a namespace not created yet has no
    KopfPeering, nor the chart's Role to read one with; listed again every
    NAMESPACES_EVERY_S). An object that does not exist, or that this replica may not read,
    holds no peer, since kopf cannot see one there either; a reading that fails otherwise
    (the API server unreachable) leaves the last answer standing, as kopf's pause stands
    while its watch reconnects."""

    def __init__(
        self, name: str, namespaces: list[str] | None, identity: str, priority: int, *, every: float = CHECK_EVERY_S
    ) -> None:
        self.name, self.namespaces = name, namespaces
        self.identity, self.priority, self.every = identity, priority, every
        self.pausing: list[str] = []
        self._existing: list[str] = []
        self._listed_at = float("-inf")
        self._forbidden: set[str] = set()
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    def paths(self) -> list[str]:
        """The peering objects to read now (lists the namespaces when that is due)."""
        if self.namespaces is None:
            return [kube.custom_path(None, "clusterkopfpeerings", self.name, group="kopf.dev", version="v1")]
        if time.monotonic() - self._listed_at >= NAMESPACES_EVERY_S:
            self._existing = kube.existing_namespaces(self.namespaces)
            self._listed_at = time.monotonic()
        return [
            kube.custom_path(ns, "kopfpeerings", self.name, group="kopf.dev", version="v1") for ns in self._existing
        ]

    async def paused(self) -> bool:
        async with self._lock:
            every = max(self.every, len(self.namespaces or ()) / READS_PER_S)
            if time.monotonic() - self._checked_at >= every:
                read = await asyncio.to_thread(self._read)
                self._checked_at = time.monotonic()
                peers = self.pausing if read is None else read
                if bool(peers) != bool(self.pausing):
                    if peers:
                        log.info("peering: paused beside kopf's handlers in favour of %s", ", ".join(peers))
                    else:
                        log.info("peering: resumed, no live peer of priority %d or higher", self.priority)
                self.pausing = peers
            return bool(self.pausing)

    def _read(self) -> list[str] | None:
        """The peers that pause this replica now; None when a peering object could not be read."""
        now = datetime.now(UTC)
        peers: list[str] = []
        try:
            paths = self.paths()
        except Exception as exc:  # noqa: BLE001 - as a failed reading below
            log.warning("peering: cannot list the watched namespaces (%r); the last answer stands", exc)
            return None
        for path in paths:
            try:
                found = kube.get_or_none(path)
            except kube.KubeError as exc:
                if exc.status == 403:
                    if path not in self._forbidden:
                        self._forbidden.add(path)
                        log.warning(
                            "peering: may not read %s (%s); no peer counted there, as kopf counts none", path, exc
                        )
                    continue
                log.warning("peering: cannot read %s (%s); the last answer stands", path, exc)
                return None
            except Exception as exc:  # noqa: BLE001 - the connection's own errors: the loops go on asking
                log.warning("peering: cannot read %s (%r); the last answer stands", path, exc)
                return None
            self._forbidden.discard(path)
            if found is not None:
                peers += pausing_peers(found.get("status"), self.identity, self.priority, now)
        return peers


def pause_of(memo: kopf.Memo) -> PeeringPause | None:
    """The operator's one PeeringPause (made on first use, from the startup handlers' memo),
    or None standalone."""
    if MEMO_KEY not in memo:
        config: OperatorConfig = memo["config"]
        memo[MEMO_KEY] = (
            PeeringPause(
                config.peering_name,
                None if config.clusterwide else list(config.namespaces),
                memo["peering_identity"],
                memo["peering_priority"],
            )
            if config.peering_name is not None
            else None
        )
    pause: PeeringPause | None = memo[MEMO_KEY]
    return pause
