"""Who pauses this replica under kopf's peering: the rule kopf applies to a peering object's
``status`` (a live peer of a higher priority pauses us; one of the same priority pauses us
both), for the work that runs outside kopf's handlers and that kopf therefore cannot pause
(the ModelDeployment follower and the webhook deliverer: controllers/peering.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

DEFAULT_LIFETIME_S = 60
"""What kopf assumes of a peer that does not say how long its record lives."""


def pausing_peers(status: Mapping[str, Any] | None, identity: str, priority: int, now: datetime) -> list[str]:
    """The live peers, other than ``identity``, whose priority is ``priority`` or higher:
    while there is one, this replica does nothing. A peer is live until its ``lastseen``
    plus its ``lifetime`` (seconds); one without ``lastseen`` is live, as kopf counts it. A
    record that is not a mapping, or whose numbers or time do not parse, is a peer that
    cannot be ruled out: it pauses us too (a replica that works beside another is the
    failure peering exists to prevent)."""
    peers = []
    for peer, record in sorted((status or {}).items()):
        if peer == identity:
            continue
        if not isinstance(record, Mapping):
            peers.append(peer)
            continue
        try:
            their_priority = int(record.get("priority", 0))
            lifetime = timedelta(seconds=int(record.get("lifetime", DEFAULT_LIFETIME_S)))
            lastseen = record.get("lastseen")
            alive = lastseen is None or datetime.fromisoformat(str(lastseen)) + lifetime > now
        except (TypeError, ValueError):
            peers.append(peer)
            continue
        if alive and their_priority >= priority:
            peers.append(peer)
    return peers
