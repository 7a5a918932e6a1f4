"""tracking.server.live: the Deployments page's live per-variant figures. The window
arithmetic and the EndpointSlice reading as tables; the scraper against real HTTP servers on
loopback that serve the model server's own metrics (serving.metrics.Metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.local_servers import ModelServerMetrics, closed_port

from modelship.resources.canary import Snapshot
from modelship.tracking.server.live import Endpoint, LiveFigures, endpoints_of, figures, services_of

B = ((0.01, 0.0), (0.1, 0.0), (float("inf"), 0.0))


def snap(requests: float, errors: float = 0.0, fast: float = 0.0) -> Snapshot:
    """Counters with ``fast`` requests under 10 ms and the rest between 10 and 100 ms."""
    return Snapshot(requests, errors, ((0.01, fast), (0.1, requests), (float("inf"), requests)))


@pytest.mark.parametrize(
    ("current", "history", "expected"),
    [
        # The first look: since the pods started, no rate.
        (
            {"a": snap(100, 1, fast=100)},
            {},
            {"window_s": None, "requests": 100, "errors": 1, "request_rate": None, "error_rate": 0.01, "p99_ms": 10.0},
        ),
        # Over the window: 60 more requests in 30 s, 3 of them 5xx, all slow.
        (
            {"a": snap(160, 4, fast=100)},
            {"a": [(70.0, snap(100, 1, fast=100))]},
            {"window_s": 30.0, "requests": 60, "errors": 3, "request_rate": 2.0, "error_rate": 0.05, "p99_ms": 100.0},
        ),
        # Two pods: rates add; the oldest sample inside the window is the base; one older is not.
        (
            {"a": snap(40), "b": snap(30)},
            {"a": [(0.0, snap(0)), (80.0, snap(20))], "b": [(90.0, snap(10))]},
            {"window_s": 20.0, "requests": 40, "request_rate": 3.0},
        ),
        # A pod that restarted (its counters dropped) counts from 0.
        ({"a": snap(5)}, {"a": [(90.0, snap(50))]}, {"window_s": 10.0, "requests": 5, "request_rate": 0.5}),
        # No prediction in the window: rate 0, no error rate, no p99.
        (
            {"a": snap(10)},
            {"a": [(90.0, snap(10))]},
            {"requests": 0, "request_rate": 0.0, "error_rate": None, "p99_ms": None},
        ),
        # A new pod beside an old one: the window from the old one; the new one is left out of it.
        ({"a": snap(20), "new": snap(7)}, {"a": [(95.0, snap(10))]}, {"window_s": 5.0, "requests": 10}),
    ],
)
def test_figures(current: dict[str, Snapshot], history: dict[str, Any], expected: dict[str, Any]) -> None:
    out = figures((100.0, current), history, window=60.0)
    assert {k: out[k] for k in expected} == expected


CONTROLLER = {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}


def slice_(
    service: str, port: int | None, *endpoints: dict[str, Any], address_type: str = "IPv4", **labels: str
) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"kubernetes.io/service-name": service, **CONTROLLER, **labels}},
        "addressType": address_type,
        "ports": [] if port is None else [{"name": "http", "port": port}],
        "endpoints": list(endpoints),
    }


def pod(name: str, *addresses: str, **conditions: bool) -> dict[str, Any]:
    return {
        "addresses": list(addresses),
        "conditions": conditions or {"ready": True},
        "targetRef": {"kind": "Pod", "name": name, "namespace": "ml"},
    }


def test_endpoints_of_keeps_ready_addresses_by_service() -> None:
    ready = pod("pod-b", "10.0.0.2")
    out = endpoints_of(
        [
            slice_(
                "d-blue",
                8080,
                ready,
                pod("pod-a", "10.0.0.1"),
                pod("pod-c", "10.0.0.3", ready=False),
                pod("pod-d", "10.0.0.4", ready=True, terminating=True),
            ),
            slice_("d-blue-canary", None, pod("", "fd00::5"), address_type="IPv6"),
            {"metadata": {}, "addressType": "IPv4", "endpoints": [ready]},  # no Service label: not ours to read
        ]
    )
    assert out == {
        "d-blue": [Endpoint("pod-a", "10.0.0.1", 8080), Endpoint("pod-b", "10.0.0.2", 8080)],
        "d-blue-canary": [Endpoint("fd00::5", "fd00::5", 8080)],
    }
    assert out["d-blue-canary"][0].url == "http://[fd00::5]:8080/metrics"
    assert services_of("d", "blue") == ("d-blue", "d-blue-canary")


@pytest.mark.parametrize(
    ("written", "why"),
    [
        (
            slice_("d-blue", 8080, pod("p", "10.0.0.9"), **{"endpointslice.kubernetes.io/managed-by": "me"}),
            "not the controller's",
        ),
        (
            {
                **slice_("d-blue", 8080, pod("p", "10.0.0.9")),
                "metadata": {"labels": {"kubernetes.io/service-name": "d-blue"}},
            },
            "no managed-by",
        ),
        (slice_("d-blue", 8080, pod("p", "metadata.internal"), address_type="FQDN"), "a host name"),
        (slice_("d-blue", 8080, {**pod("p", "10.0.0.9"), "targetRef": {"kind": "Node", "name": "n"}}), "not a pod"),
        (slice_("d-blue", 8080, {"addresses": ["10.0.0.9"], "conditions": {"ready": True}}), "no targetRef"),
        (slice_("d-blue", 8080, pod("p", "169.254.169.254")), "link-local: a cloud's metadata service"),
        (slice_("d-blue", 8080, pod("p", "fe80::1"), address_type="IPv6"), "link-local"),
        (slice_("d-blue", 8080, pod("p", "0.0.0.0")), "unspecified"),
        (slice_("d-blue", 8080, pod("p", "224.0.0.1")), "multicast"),
        (slice_("d-blue", 8080, pod("p", "evil.example")), "not an IP in an IPv4 slice"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_endpoints_of_fetches_only_pod_ips_the_controller_wrote(written: dict[str, Any], why: str) -> None:
    """The tracking server GETs what this returns: a writer of EndpointSlices must not be able to
    point it at another host."""
    assert endpoints_of([written]) == {}, why


@pytest.fixture
def servers() -> Iterator[list[ModelServerMetrics]]:
    out = [ModelServerMetrics(), ModelServerMetrics()]
    yield out
    for s in out:
        s.close()


def test_live_figures_from_real_metrics_servers(servers: list[ModelServerMetrics]) -> None:
    blue1, blue2 = servers
    clock = [1000.0]
    live = LiveFigures(ttl=5.0, window=60.0, clock=lambda: clock[0])
    dead = closed_port()
    pods = {
        "d-blue": [Endpoint("blue-1", "127.0.0.1", blue1.port)],
        "d-blue-canary": [Endpoint("blue-2", "127.0.0.1", blue2.port)],  # the canary's pods count for the variant
        "d-green": [Endpoint("green-1", "127.0.0.1", dead)],
    }
    asked: list[list[str]] = []

    def endpoints(namespace: str, services: list[str]) -> dict[str, list[Endpoint]]:
        assert namespace == "ml"
        asked.append(services)
        return {s: pods.get(s, []) for s in services}

    blue1.predict(90)
    blue1.predict(10, status=500)
    first = live.deployment("ml", "d", ["blue", "green", "red"], endpoints)
    assert asked == [["d-blue", "d-blue-canary", "d-green", "d-green-canary", "d-red", "d-red-canary"]]
    assert first["blue"]["reachable"] and first["blue"]["pods"] == 2 and first["blue"]["scraped"] == 2
    assert (first["blue"]["window_s"], first["blue"]["request_rate"]) == (None, None)  # since start
    assert (first["blue"]["requests"], first["blue"]["error_rate"], first["blue"]["p99_ms"]) == (100, 0.1, 25.0)
    assert not first["green"]["reachable"] and "not reachable" in first["green"]["message"]
    assert first["red"] == {"reachable": False, "pods": 0, "message": "no Ready pod"}
    # Within the cache's ttl: the same figures, no scrape.
    scrapes = blue1.scrapes
    clock[0] += 2
    assert live.deployment("ml", "d", ["blue", "green", "red"], endpoints) is first
    assert blue1.scrapes == scrapes and len(asked) == 1
    # 20 s later: 40 more predictions over both pods, over the window.
    clock[0] += 18
    blue1.predict(30)
    blue2.predict(10, seconds=0.2)
    later = live.deployment("ml", "d", ["blue", "green", "red"], endpoints)
    blue = later["blue"]
    assert (blue["window_s"], blue["requests"], blue["errors"], blue["request_rate"]) == (20.0, 40, 0, 2.0)
    assert blue["error_rate"] == 0.0 and blue["p99_ms"] == 250.0
