"""Feedback behind a Service: outcomes for request ids a pod does not know go to its peers.

A prediction is remembered by the process that answered it, but a client sends its
outcomes later to the ModelDeployment's Service (or a Gateway), which picks any pod. So a
pod that gets outcomes for ids it does not know asks its peers — the other pods of the
deployment, the addresses of a headless Service the operator makes (``feedback_peers``) —
once: the forwarded request carries :data:`FORWARDED_HEADER`, and a pod that gets one
counts what it knows and never forwards again. The reply the client gets sums what every
pod accepted and names the ids no pod knew.

Which peer first: a server-made id is ``<instance>-<random>`` (:func:`instance_hint`), and
each peer's reply names its instance, so once a pod has heard from a peer its ids go
straight there; a client's own ids (``X-Request-Id``) are offered to the peers one after
the other, each getting only those still unknown, so an outcome is counted by one pod at
most even when two pods know the id.

Bounded: ``feedback_max_peers`` peers per request, ``feedback_peer_timeout_s`` per peer and
``feedback_forward_deadline_s`` in all, ``feedback_forward_concurrency`` forwardings at
once, a peer's reply read up to :data:`MAX_REPLY_BYTES`. The peers' addresses are looked
up in DNS at most every :data:`RESOLVE_TTL_S`. The pure parts (:func:`parse_targets`,
:func:`order_peers`, :func:`for_peer`, :func:`combine`) do no I/O; :class:`Peers` does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelship.serving.feedback import instance_hint

log = logging.getLogger("modelship.serving.peers")

FORWARDED_HEADER = "x-modelship-forwarded"
"""On a ``/feedback`` request one pod sends another: the sender's instance. The receiver
counts what it knows, does not count its unknowns (the sender does) and forwards nothing."""
MAX_REPLY_BYTES = 4 * 1024 * 1024
"""A peer's reply to a forwarded batch of at most ``feedback_max_batch`` items is far smaller."""
RESOLVE_TTL_S = 5.0
"""How long the peers' addresses are kept before DNS is asked again (a new pod is seen then)."""

Address = tuple[str, int]


def parse_targets(spec: str, default_port: int) -> list[Address]:
    """``"host[:port],host[:port]"`` (a DNS name resolving to every peer, or addresses) as
    (host, port) pairs; ValueError naming the bad entry."""
    out: list[Address] = []
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        if not sep:
            host, port = entry, str(default_port)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"feedback_peers entry {entry!r} is not host[:port] (MODELSHIP_FEEDBACK_PEERS, e.g. "
                f"iris--peers.demo.svc:{default_port})"
            )
        out.append((host, int(port)))
    return out


@dataclass(frozen=True, slots=True)
class Pending:
    """An outcome this pod did not know: its index in the client's batch, the item, its hint."""

    index: int
    item: Any
    hint: str | None = None


def pending(items: Sequence[Any], errors: Sequence[Mapping[str, Any]]) -> list[Pending]:
    """The items of a ``/feedback`` batch refused here as ``unknown``: what to ask the peers."""
    out = []
    for e in errors:
        if e.get("reason") == "unknown":
            rid = e.get("requestId")
            out.append(Pending(int(e["index"]), items[int(e["index"])], instance_hint(rid) if rid else None))
    return out


def order_peers(
    addresses: Sequence[Address], instances: Mapping[Address, str], wanted: Sequence[Pending]
) -> list[Address]:
    """Peers whose known instance made one of the ``wanted`` ids first (most ids first), then
    the others; sorted within each group, so the order does not depend on DNS's."""
    hints: dict[str, int] = {}
    for p in wanted:
        if p.hint is not None:
            hints[p.hint] = hints.get(p.hint, 0) + 1

    def key(addr: Address) -> tuple[int, Address]:
        return (-hints.get(instances.get(addr, ""), 0), addr)

    return sorted(dict.fromkeys(addresses), key=key)


def for_peer(wanted: Sequence[Pending], instance: str | None, elsewhere: set[str]) -> list[Pending]:
    """What to send to a peer of ``instance`` (None: not heard from yet): the ids it made, and
    the ids no other known peer made (a client's ids, or a server's not placed yet)."""
    return [p for p in wanted if p.hint is None or p.hint == instance or p.hint not in elsewhere]


@dataclass
class Forwarded:
    """What the peers said of the pending items."""

    #: index in the client's batch -> None (a peer accepted it) or that peer's error for it
    resolved: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    asked: int = 0
    #: the peers that could not be asked, each with why
    failed: list[str] = field(default_factory=list)
    #: the instances of the peers that answered
    answered: set[str] = field(default_factory=set)
    #: some peer was not asked (the bound of peers, the deadline, a failure): ids it might know are unreachable
    incomplete: bool = False


def combine(
    local: dict[str, Any], wanted: Sequence[Pending], fwd: Forwarded, own: str
) -> tuple[dict[str, Any], list[str]]:
    """The client's reply from this pod's and the peers' verdicts, and the reasons to count
    here (the ids no pod knew: the peers did not count them)."""
    by_index = {p.index: p for p in wanted}
    errors: list[dict[str, Any]] = []
    counted: list[str] = []
    accepted = int(local["accepted"])
    pods = f"this pod ({own}) and {fwd.asked} peer{'' if fwd.asked == 1 else 's'}"
    for e in local["errors"]:
        p = by_index.get(int(e["index"]))
        if p is None:
            errors.append(e)
            continue
        if p.index in fwd.resolved:
            theirs = fwd.resolved[p.index]
            if theirs is None:
                accepted += 1
            else:
                errors.append({**theirs, "index": p.index})
            continue
        rid = e.get("requestId")
        if fwd.incomplete and (p.hint is None or p.hint not in fwd.answered | {own}):
            failed = "; ".join(fwd.failed) or "none"
            errors.append(
                {
                    **e,
                    "reason": "unreachable",
                    "message": f"request id {rid!r} is unknown to {pods}, and not every pod of the deployment "
                    f"could be asked (failed: {failed}): send it again",
                }
            )
            counted.append("unreachable")
        else:
            errors.append(
                {
                    **e,
                    "message": f"request id {rid!r} is unknown to every pod of the deployment ({pods}) or expired: "
                    "each remembers its last predictions (feedback_window); send feedback sooner",
                }
            )
            counted.append("unknown")
    errors.sort(key=lambda e: int(e["index"]))
    reply = {
        "accepted": accepted,
        "rejected": len(errors),
        "errors": errors,
        "peers": {"asked": fwd.asked, "failed": list(fwd.failed)},
    }
    return reply, counted


class Peers:
    """The other pods of this deployment, and the forwarding of unknown outcomes to them."""

    def __init__(
        self,
        targets: Sequence[Address],
        *,
        own_instance: str,
        own_addresses: set[Address],
        timeout_s: float,
        deadline_s: float,
        max_peers: int,
        concurrency: int,
    ) -> None:
        self.targets = list(targets)
        self.own_instance = own_instance
        self.own_addresses = own_addresses
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.max_peers = max_peers
        self.concurrency = concurrency
        #: the instance each peer named in its last reply (a restarted pod names a new one)
        self.instances: dict[Address, str] = {}
        self._resolved: tuple[float, list[Address], list[str]] | None = None
        self._sem: asyncio.Semaphore | None = None
        self._client: Any = None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def addresses(self) -> tuple[list[Address], list[str]]:
        """The peers' addresses (not this pod's), looked up at most every RESOLVE_TTL_S; and
        the names that could not be looked up."""
        loop = asyncio.get_running_loop()
        cached = self._resolved
        if cached is not None and cached[0] > loop.time():
            return cached[1], cached[2]
        found: list[Address] = []
        problems: list[str] = []
        for host, port in self.targets:
            try:
                ips = await asyncio.wait_for(self.resolve(host, port), timeout=self.timeout_s)
            except (OSError, TimeoutError) as exc:
                problems.append(f"{host}: {exc or type(exc).__name__}")
                continue
            found += [(ip, port) for ip in ips]
        peers = [a for a in dict.fromkeys(found) if a not in self.own_addresses]
        # forget the pods that are gone (their ids then go to every peer, and none knows them)
        self.instances = {a: i for a, i in self.instances.items() if a in peers or i == self.own_instance}
        self._resolved = (loop.time() + RESOLVE_TTL_S, peers, problems)
        return peers, problems

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to (a headless Service's name: every Ready pod's IP)."""
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [str(info[4][0]) for info in infos]

    async def forward(self, wanted: Sequence[Pending]) -> Forwarded:
        """Ask the peers about ``wanted``, one after the other, each for the ids still unknown.

        When a server-made id is left whose maker no peer turned out to be and the addresses
        came from the cache, DNS is asked once more: a pod that just became Ready (and
        already answered predictions) is in the Service before it is in the cache."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_s
        fwd = Forwarded()
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.concurrency)
        try:
            await asyncio.wait_for(self._sem.acquire(), timeout=self.deadline_s)
        except TimeoutError:
            fwd.incomplete = True
            fwd.failed.append(f"this pod is busy forwarding ({self.concurrency} batches at once)")
            return fwd
        try:
            # this pod's own ids it has forgotten: no peer has them
            remaining = [p for p in wanted if p.hint != self.own_instance]
            tried: set[Address] = set()
            cached = self._resolved is not None and self._resolved[0] > loop.time()
            remaining = await self._round(remaining, fwd, tried, deadline)
            if cached and any(p.hint is not None and p.hint not in fwd.answered for p in remaining):
                self._resolved = None
                remaining = await self._round(remaining, fwd, tried, deadline)
            return fwd
        finally:
            self._sem.release()

    async def _round(
        self, remaining: list[Pending], fwd: Forwarded, tried: set[Address], deadline: float
    ) -> list[Pending]:
        """Ask the peers not ``tried`` yet; what is still unknown after them."""
        loop = asyncio.get_running_loop()
        addresses, problems = await self.addresses()
        fwd.failed += [p for p in problems if p not in fwd.failed]
        fwd.incomplete = fwd.incomplete or bool(problems)
        fresh = [a for a in addresses if a not in tried and self.instances.get(a) != self.own_instance]
        order = order_peers(fresh, self.instances, remaining)
        room = max(0, self.max_peers - len(tried))
        if len(order) > room:
            fwd.incomplete = True
            fwd.failed.append(f"{len(order) - room} peers beyond feedback_max_peers ({self.max_peers})")
            order = order[:room]
        for addr in order:
            if not remaining:
                break
            left = deadline - loop.time()
            if left <= 0:
                fwd.incomplete = True
                fwd.failed.append(f"{addr[0]}:{addr[1]}: not asked, feedback_forward_deadline_s passed")
                continue
            mine = self.instances.get(addr)
            elsewhere = {i for a, i in self.instances.items() if a != addr}
            send = for_peer(remaining, mine, elsewhere)
            if not send:
                continue
            tried.add(addr)
            try:
                reply = await asyncio.wait_for(self._post(addr, send), timeout=min(self.timeout_s, left))
            except Exception as exc:  # noqa: BLE001 - any failure of one peer: ask the next, say so
                fwd.incomplete = True
                fwd.failed.append(f"{addr[0]}:{addr[1]}: {type(exc).__name__}: {exc}".rstrip(": "))
                continue
            instance = str(reply.get("instance") or "")
            self.instances[addr] = instance
            if instance == self.own_instance:
                continue  # this pod under another address
            fwd.asked += 1
            fwd.answered.add(instance)
            theirs = {int(e["index"]): e for e in reply["errors"]}
            for pos, p in enumerate(send):
                e = theirs.get(pos)
                if e is None:
                    fwd.resolved[p.index] = None
                elif e.get("reason") != "unknown":
                    fwd.resolved[p.index] = dict(e)
            remaining = [p for p in remaining if p.index not in fwd.resolved]
        return remaining

    async def _post(self, addr: Address, send: Sequence[Pending]) -> dict[str, Any]:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout_s,
                limits=httpx.Limits(max_connections=self.concurrency * 4, max_keepalive_connections=self.concurrency),
            )
        host = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
        body = json.dumps({"outcomes": [p.item for p in send]}).encode()
        headers = {"content-type": "application/json", FORWARDED_HEADER: self.own_instance}
        async with self._client.stream("POST", f"http://{host}:{addr[1]}/feedback", content=body, headers=headers) as r:
            if r.status_code != 200:
                raise ValueError(f"answered {r.status_code}")
            chunks, size = [], 0
            async for chunk in r.aiter_bytes():
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    raise ValueError(f"reply over {MAX_REPLY_BYTES} bytes")
                chunks.append(chunk)
        data = json.loads(b"".join(chunks))
        if not isinstance(data, dict) or not isinstance(data.get("errors"), list):
            raise ValueError("not a /feedback reply")  # noqa: TRY004 - one error type for a bad peer
        return data
