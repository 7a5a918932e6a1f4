"""Live per-variant figures of ModelDeployments for the web UI: request rate, error rate, p99.

The model servers count their predictions in Prometheus ``/metrics`` (requests by status,
a latency histogram); the operator reads them only for a canary, over a step, so the
ModelDeployment's status has no figures of the other variants. Writing them there would
cost the operator a status PATCH per ModelDeployment every few seconds, for a page that
may be closed. So the tracking server scrapes, and only while the page asks:

- a variant's Ready pods are the addresses of its Services' EndpointSlices (the stable
  Service and the canary's), read through the registry reader (``list`` on
  ``endpointslices``: addresses and readiness, not pod specs with their environment); only
  pod IPs that Kubernetes' EndpointSlice controller wrote are fetched (:func:`endpoints_of`);
- each pod's ``/metrics`` is fetched with a short timeout (1 s), a few at a time, at most
  :data:`MAX_PODS` per variant; a ModelDeployment's figures are cached for ``ttl``
  seconds (5), so many open pages cost one scrape;
- figures are over a window: the difference of each pod's counters since its oldest sample
  of the last ``window`` seconds (60). Until a pod has an older sample (the first look),
  the error rate and p99 are since the pod started and the rate is unknown; the UI asks
  again and shows the window then;
- a variant whose Ready pods cannot be reached (the tracking server outside the cluster
  network) is said "not reachable", with why.

The window arithmetic is pure (:func:`figures`); :class:`LiveFigures` does the I/O.
Bounded: samples older than the window go, and at most :data:`MAX_TRACKED` pods are
remembered (the least recently seen are forgotten first).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from modelship.kube import KubeError
from modelship.resources import canary
from modelship.resources.serving import SERVER_PORT, canary_name, variant_name

MAX_PODS = 50
"""Pods scraped per variant (the rest are left out and counted)."""
MAX_TRACKED = 2000
"""Pods whose samples are remembered."""
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
ENDPOINTSLICE_CONTROLLER = "endpointslice-controller.k8s.io"


@dataclass(frozen=True)
class Endpoint:
    """One Ready pod behind a Service."""

    pod: str
    """The pod's name (the slice's targetRef), or its address."""
    address: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/metrics"


def _pod_address(address: object) -> str | None:
    """An address the tracking server may fetch ``/metrics`` from: an IP, never a host name, a
    link-local (a cloud's metadata service), multicast, unspecified or reserved one. Loopback
    stays allowed: in a pod it is the tracking server's own, the request is a GET of the fixed
    path /metrics, and the tests' model servers listen there."""
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        return None
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return None
    return str(ip)


def endpoints_of(slices: Iterable[Mapping[str, Any]]) -> dict[str, list[Endpoint]]:
    """The Ready, not terminating pod endpoints of EndpointSlices, by the Service they belong to.
    The port is the slice's port named ``http`` (the model server's), else the server's own.

    The tracking server sends a GET to what it finds here, so only what Kubernetes' own
    EndpointSlice controller wrote about pods counts: a slice someone else made (for a Service
    without a selector), an FQDN slice, an endpoint that is not a pod, and an address that is
    no pod's (:func:`_pod_address`) are skipped, so a writer of EndpointSlices cannot point the
    server at another host."""
    out: dict[str, list[Endpoint]] = {}
    for s in slices:
        labels = (s.get("metadata") or {}).get("labels") or {}
        service = labels.get(SERVICE_NAME_LABEL)
        if not service or labels.get(MANAGED_BY_LABEL) != ENDPOINTSLICE_CONTROLLER:
            continue
        if s.get("addressType") not in ("IPv4", "IPv6"):
            continue
        ports = s.get("ports") or []
        port = next((p.get("port") for p in ports if p.get("name") == "http"), None) or SERVER_PORT
        for e in s.get("endpoints") or []:
            cond = e.get("conditions") or {}
            ref = e.get("targetRef") or {}
            if cond.get("ready") is False or cond.get("terminating") or ref.get("kind") != "Pod":
                continue
            pod = str(ref.get("name") or "")
            for address in e.get("addresses") or []:
                ip = _pod_address(address)
                if ip is not None:
                    out.setdefault(str(service), []).append(Endpoint(pod or ip, ip, int(port)))
    for eps in out.values():
        eps.sort(key=lambda e: (e.pod, e.address))
    return out


def services_of(deployment: str, variant: str) -> tuple[str, str]:
    """A variant's two Services: the stable one and its canary's."""
    return variant_name(deployment, variant), canary_name(deployment, variant)


Sample = tuple[float, canary.Snapshot]


def figures(
    now: tuple[float, Mapping[str, canary.Snapshot]], history: Mapping[str, list[Sample]], *, window: float
) -> dict[str, Any]:
    """A variant's figures from this scrape (``now``: time, each pod's counters) and the
    earlier samples of its pods. Over the window when some pod has an earlier sample in it,
    else since the pods started (no rate)."""
    at, current = now
    deltas, spans = [], []
    for pod, snap in current.items():
        earlier = [(t, s) for t, s in history.get(pod, []) if at - window <= t < at]
        if earlier:
            t0, base = min(earlier, key=lambda ts: ts[0])
            deltas.append(snap.since(base))
            spans.append(at - t0)
    windowed = bool(deltas)
    total = canary.total(deltas if windowed else current.values())
    rate = sum(d.requests / s for d, s in zip(deltas, spans, strict=True) if s > 0) if windowed else None
    p99 = canary.p99_ms(total)
    return {
        "window_s": round(max(spans), 1) if windowed else None,
        "requests": int(total.requests),
        "errors": int(total.errors),
        "request_rate": None if rate is None else round(rate, 3),
        "error_rate": round(total.errors / total.requests, 4) if total.requests else None,
        "p99_ms": None if p99 is None or math.isinf(p99) else round(p99, 1),
        "p99_over_max": p99 is not None and math.isinf(p99),
    }


def _fetch(url: str, timeout: float) -> str:
    resp = httpx.get(url, timeout=timeout)
    resp.raise_for_status()
    return resp.text


class LiveFigures:
    """Scrapes the model servers of a ModelDeployment's variants, with a cache and a window."""

    def __init__(
        self,
        fetch: Callable[[str, float], str] = _fetch,
        *,
        timeout: float = 1.0,
        ttl: float = 5.0,
        window: float = 60.0,
        parallel: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetch, self.timeout, self.ttl, self.window, self.clock = fetch, timeout, ttl, window, clock
        self._pool = ThreadPoolExecutor(parallel, thread_name_prefix="modelship-live")
        self._lock = threading.Lock()
        self._samples: OrderedDict[str, list[Sample]] = OrderedDict()
        self._cached: dict[tuple[str, str], tuple[float, dict[str, dict[str, Any]]]] = {}

    def deployment(
        self,
        namespace: str,
        name: str,
        variants: list[str],
        endpoints: Callable[[str, list[str]], dict[str, list[Endpoint]]],
    ) -> dict[str, dict[str, Any]]:
        """Each variant's figures; ``endpoints(namespace, services)`` reads the EndpointSlices."""
        key = (namespace, name)
        with self._lock:
            hit = self._cached.get(key)
            if hit and self.clock() - hit[0] < self.ttl:
                return hit[1]
        services = {v: services_of(name, v) for v in variants}
        try:
            eps = endpoints(namespace, [s for pair in services.values() for s in pair])
        except KubeError as exc:  # the listing refused: every variant says so, the page still shows
            why = (
                "the tracking server's account may not list EndpointSlices: grant it the rules of "
                "REGISTRY_READER_RULES (the chart's files/rbac/tracking-rules.yaml; upgrade the chart)"
                if exc.status == 403
                else f"its EndpointSlices could not be listed: {exc}"
            )
            return {v: {"reachable": False, "pods": 0, "message": why} for v in variants}
        out = {v: self._variant(namespace, [e for s in services[v] for e in eps.get(s, [])]) for v in variants}
        with self._lock:
            self._cached[key] = (self.clock(), out)
            for k in [k for k, (t, _) in self._cached.items() if self.clock() - t > self.window]:
                del self._cached[k]
        return out

    def _variant(self, namespace: str, eps: list[Endpoint]) -> dict[str, Any]:
        if not eps:
            return {"reachable": False, "pods": 0, "message": "no Ready pod"}
        chosen = eps[:MAX_PODS]
        results = list(self._pool.map(self._scrape, chosen))
        at = self.clock()
        current = {f"{namespace}/{e.pod}/{e.address}": r for e, r in zip(chosen, results, strict=True) if r[0]}
        failed = [r[1] for r in results if not r[0]]
        if not current:
            return {
                "reachable": False,
                "pods": len(eps),
                "message": f"not reachable from the tracking server: {failed[0]}",
            }
        snaps = {pod: canary.parse_metrics(text) for pod, (_, text) in current.items()}
        with self._lock:
            history = {pod: list(self._samples.get(pod, [])) for pod in snaps}
            for pod, snap in snaps.items():
                kept = [(t, s) for t, s in self._samples.pop(pod, []) if at - t <= self.window]
                self._samples[pod] = [*kept, (at, snap)]
            while len(self._samples) > MAX_TRACKED:
                self._samples.popitem(last=False)
        out = figures((at, snaps), history, window=self.window)
        note = []
        if failed:
            note.append(f"{len(failed)} of {len(chosen)} pods not reachable ({failed[0]})")
        if len(eps) > len(chosen):
            note.append(f"{len(chosen)} of {len(eps)} pods scraped")
        return {"reachable": True, "pods": len(eps), "scraped": len(current), **out, "message": "; ".join(note)}

    def _scrape(self, e: Endpoint) -> tuple[bool, str]:
        try:
            return True, self.fetch(e.url, self.timeout)
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__} {e.address}:{e.port}" + (f": {exc}" if str(exc) else "")
