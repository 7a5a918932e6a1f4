"""The bed's network is a cluster's: Services route through kube-proxy, names resolve through
CoreDNS, HTTPRoutes move packets through Traefik's Gateway, claims get volumes."""

from __future__ import annotations

import errno
import http.client
import ipaddress
import json
import math
import os
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.kubeapi import ApiError, KubeApi, path_for
from tests.conftest import wait
from tests.e2e.objects import container, deployment, job, job_condition

# The bed's own tests run bare pods (no securityContext): their namespaces enforce no Pod
# Security level. Modelship's pods run in namespaces that enforce restricted (tests/conftest.py).
POD_SECURITY = None

REPO = Path(__file__).resolve().parents[2]
ECHO = ["python", str(REPO / "tests" / "e2e" / "echo_server.py"), "8000"]
GATEWAY_API = "gateway.networking.k8s.io/v1"


def echo(name: str, replicas: int = 1) -> dict[str, Any]:
    web = container(
        "echo",
        ECHO,
        ports=[{"containerPort": 8000, "name": "http"}],
        readinessProbe={"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1, "failureThreshold": 1},
    )
    return deployment(name, [web], replicas=replicas)


def service(name: str, port: int = 80) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": 8000}]},
    }


def serve(kube: KubeApi, namespace: str, name: str, replicas: int = 1) -> dict[str, Any]:
    """A Deployment of echo servers behind a ClusterIP Service; returns the Service once it routes to every pod.

    Ready endpoints in the EndpointSlice are not yet rules in the node: kube-proxy programs
    them on its next sync, so the Service is polled until each pod has answered through it.
    """
    kube.create(path_for("apps/v1", "deployments", namespace), echo(name, replicas))
    svc = kube.create(path_for("v1", "services", namespace), service(name))
    wait(lambda: len(ready_endpoints(kube, namespace, name)) == replicas, 120, f"{replicas} ready endpoints of {name}")
    names = {p["metadata"]["name"] for p in pods(kube, namespace, name)}
    seen: set[str] = set()

    def routed() -> bool:
        try:
            seen.update(hits(svc["spec"]["clusterIP"], 80, 10))
        except OSError:
            pass  # refused until kube-proxy has the endpoints
        return seen == names

    wait(routed, 60, f"the Service {name} routing to all its pods")
    return svc


def ready_endpoints(kube: KubeApi, namespace: str, svc: str) -> list[str]:
    slices = kube.get(
        path_for("discovery.k8s.io/v1", "endpointslices", namespace), labelSelector=f"kubernetes.io/service-name={svc}"
    )["items"]
    return [
        ep["targetRef"]["name"]
        for s in slices
        for ep in s.get("endpoints") or []
        if ep.get("conditions", {}).get("ready")
    ]


def pods(kube: KubeApi, namespace: str, app: str) -> list[dict[str, Any]]:
    return kube.get(path_for("v1", "pods", namespace), labelSelector=f"app={app}")["items"]


def request(
    host: str, port: int, path: str = "/", headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, str]:
    """One request on a connection of its own (so kube-proxy chooses a backend each time)."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("x-served-by") or ""
    finally:
        conn.close()


def answered_by(host: str, port: int, path: str = "/") -> str:
    """The pod that answered one request, or "" while the route is not there yet."""
    try:
        status, served_by = request(host, port, path)
    except OSError:
        return ""
    return served_by if status == 200 else ""


def hits(host: str, port: int, n: int, path: str = "/", headers: dict[str, str] | None = None) -> Counter[str]:
    counts: Counter[str] = Counter()
    for _ in range(n):
        status, served_by = request(host, port, path, headers)
        assert status == 200, (status, served_by)
        counts[served_by] += 1
    return counts


def run_in_pod(kube: KubeApi, namespace: str, name: str, script: str, **spec: Any) -> str:
    """Run a Python script as a Job's pod and return what it printed."""
    kube.create(
        path_for("batch/v1", "jobs", namespace), job(name, [container("main", ["python", "-c", script])], **spec)
    )
    done = wait(
        lambda: (
            (j := kube.get(path_for("batch/v1", "jobs", namespace, name)))
            and (job_condition(j, "Complete") or job_condition(j, "Failed"))
            and j
        ),
        180,
        f"job {name} finished",
    )
    (pod,) = kube.get(path_for("v1", "pods", namespace), labelSelector=f"batch.kubernetes.io/job-name={name}")["items"]
    out = kube.text(path_for("v1", "pods", namespace, pod["metadata"]["name"], "log"))
    assert job_condition(done, "Complete"), f"job {name} failed:\n{out}"
    return out


CLIENT = """
import collections, json, urllib.request
counts = collections.Counter()
for _ in range({n}):
    with urllib.request.urlopen("{url}", timeout=10) as resp:
        counts[resp.headers["x-served-by"]] += 1
print(json.dumps(counts))
"""


@pytest.fixture
def local_bed(bed):
    if not bed.local:
        pytest.fail("this test checks the bed's own network; it has no meaning on an external cluster")
    return bed


# --- kube-proxy ---------------------------------------------------------------------------
def test_cluster_ip_service_reaches_every_ready_pod_and_no_unready_one(kube: KubeApi, namespace: str, bed) -> None:
    svc = serve(kube, namespace, "web", replicas=3)
    names = {p["metadata"]["name"] for p in pods(kube, namespace, "web")}
    assert len(names) == 3

    # From another pod, by the Service's DNS name.
    from_pod = json.loads(run_in_pod(kube, namespace, "client", CLIENT.format(n=300, url="http://web/")))
    assert set(from_pod) == names and sum(from_pod.values()) == 300, from_pod

    # From the host, to the ClusterIP.
    cluster_ip = svc["spec"]["clusterIP"]
    from_host = hits(cluster_ip, 80, 300)
    assert set(from_host) == names and sum(from_host.values()) == 300, from_host

    # A pod that fails its readiness probe leaves the EndpointSlice, and kube-proxy stops sending it traffic.
    (victim,) = [p for p in pods(kube, namespace, "web") if p["metadata"]["name"] == min(names)]
    assert request(victim["status"]["podIP"], 8000, "/unready", method="POST")[0] == 200
    wait(lambda: victim["metadata"]["name"] not in ready_endpoints(kube, namespace, "web"), 60, "the pod un-Ready")
    wait(lambda: victim["metadata"]["name"] not in hits(cluster_ip, 80, 30), 30, "kube-proxy to drop the endpoint")
    after = hits(cluster_ip, 80, 300)
    assert set(after) == names - {victim["metadata"]["name"]}, after


def connect_error(host: str, port: int, timeout: float = 2) -> str:
    """How a TCP connect to host:port ends: "connected", "timeout" or the errno's name."""
    sock = socket.socket()
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
        return "connected"
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, repr(exc))
    finally:
        sock.close()


def test_a_service_with_no_endpoints_refuses_and_an_unknown_cluster_ip_drops(
    kube: KubeApi, namespace: str, local_bed
) -> None:
    """As on a real node, whose default route leads away: kube-proxy refuses a Service with no
    endpoints and drops a ClusterIP no Service holds. The bed's node once had no route there,
    and answered "network unreachable" to both, a failure no cluster shows."""
    svc = kube.create(path_for("v1", "services", namespace), service("nobody"))  # selects no pod
    cluster_ip = svc["spec"]["clusterIP"]
    # kube-proxy programs the Service on its next sync: until then its address is unknown
    outcome = wait(lambda: (e := connect_error(cluster_ip, 80)) != "timeout" and e, 60, f"a verdict on {cluster_ip}:80")
    assert outcome == "ECONNREFUSED", outcome
    assert local_bed.network is not None
    taken = {s["spec"]["clusterIP"] for s in kube.get(path_for("v1", "services"))["items"]}
    free = next(str(a) for a in ipaddress.ip_network(local_bed.network.service_cidr).hosts() if str(a) not in taken)
    assert connect_error(free, 80) == "timeout"


# --- CoreDNS --------------------------------------------------------------------------------
RESOLVE = """
import json, socket
out = {{"resolv.conf": open("/etc/resolv.conf").read()}}
for name in ["web", "web.{ns}", "web.{ns}.svc.cluster.local", "kubernetes.default", "no-such-service",
             "no-such-host.example.com"]:
    try:
        out[name] = socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)[0][4][0]
    except socket.gaierror as exc:
        out[name] = {{"errno": exc.errno}}
print(json.dumps(out))
"""


def test_pods_resolve_services_by_short_name_namespace_and_fqdn(kube: KubeApi, namespace: str, bed) -> None:
    svc = serve(kube, namespace, "web")
    out = json.loads(run_in_pod(kube, namespace, "resolve", RESOLVE.format(ns=namespace)))
    ip = svc["spec"]["clusterIP"]
    assert out["web"] == out[f"web.{namespace}"] == out[f"web.{namespace}.svc.cluster.local"] == ip, out
    kubernetes = kube.get(path_for("v1", "services", "default", "kubernetes"))["spec"]["clusterIP"]
    assert out["kubernetes.default"] == kubernetes
    # An unknown name is answered (NXDOMAIN: EAI_NONAME), not left to time out (that is EAI_AGAIN).
    import socket

    assert out["no-such-service"] == {"errno": socket.EAI_NONAME}, out
    assert out["no-such-host.example.com"] == {"errno": socket.EAI_NONAME}, out
    lines = out["resolv.conf"].splitlines()
    dns = kube.get(path_for("v1", "services", "kube-system", "kube-dns"))["spec"]["clusterIP"]
    assert lines == [
        f"nameserver {dns}",
        f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local",
        "options ndots:5",
    ]


def test_dns_policy_none_gives_the_pod_its_dns_config(kube: KubeApi, namespace: str, bed) -> None:
    script = "print(open('/etc/resolv.conf').read(), end='')"
    out = run_in_pod(
        kube,
        namespace,
        "custom-dns",
        script,
        dnsPolicy="None",
        dnsConfig={
            "nameservers": ["198.18.255.53"],
            "searches": ["models.example"],
            "options": [{"name": "ndots", "value": "2"}],
        },
    )
    assert out.splitlines() == ["nameserver 198.18.255.53", "search models.example", "options ndots:2"]


# --- the Gateway ----------------------------------------------------------------------------
class Gateway:
    """The bed's Gateway as one test sees it: routes of this test carry its own hostname.

    Every test's routes match ``/``; a hostname per test keeps a route of an earlier test
    (its namespace still terminating) from answering for this one.
    """

    def __init__(self, bed, namespace: str):
        if bed.local:
            info = json.loads((bed.state_dir / "bed.json").read_text())["gateway"]
        else:
            host, _, port = bed.gateway_address.partition(":")
            assert host, "MODELSHIP_GATEWAY_ADDRESS names the external cluster's Gateway (host:port)"
            info = {
                "namespace": os.environ.get("MODELSHIP_GATEWAY_NAMESPACE", "default"),
                "name": os.environ.get("MODELSHIP_GATEWAY_NAME", "gateway"),
                "address": host,
                "port": int(port or 80),
            }
        self.ref = {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "namespace": info["namespace"],
            "name": info["name"],
        }
        self.address, self.port = info["address"], int(info["port"])
        self.hostname = f"{namespace}.bed.test"

    def route(self, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": GATEWAY_API,
            "kind": "HTTPRoute",
            "metadata": {"name": name},
            "spec": {"parentRefs": [self.ref], "hostnames": [self.hostname], "rules": rules},
        }

    def request(self, path: str = "/", headers: dict[str, str] | None = None) -> tuple[int, str]:
        return request(self.address, self.port, path, {"Host": self.hostname, **(headers or {})})

    def answered_by(self) -> str:
        try:
            status, served_by = self.request()
        except OSError:
            return ""
        return served_by if status == 200 else ""

    def status(self) -> int:
        try:
            return self.request()[0]
        except OSError:
            return 0

    def hits(self, n: int, path: str = "/", headers: dict[str, str] | None = None) -> Counter[str]:
        return hits(self.address, self.port, n, path, {"Host": self.hostname, **(headers or {})})


def backend(name: str, weight: int | None = None, **extra: Any) -> dict[str, Any]:
    ref: dict[str, Any] = {"group": "", "kind": "Service", "name": name, "port": 80, **extra}
    if weight is not None:
        ref["weight"] = weight
    return ref


def route_conditions(kube: KubeApi, namespace: str, name: str) -> dict[str, str]:
    route = kube.get(path_for(GATEWAY_API, "httproutes", namespace, name))
    parents = route.get("status", {}).get("parents") or []
    return {c["type"]: c["status"] for p in parents for c in p.get("conditions") or []}


def wait_route(kube: KubeApi, namespace: str, name: str) -> None:
    wait(
        lambda: (
            (c := route_conditions(kube, namespace, name)).get("Accepted") == "True" and c.get("ResolvedRefs") == "True"
        ),
        60,
        f"HTTPRoute {name} Accepted with its refs resolved",
    )


def binomial_bounds(n: int, p: float, z: float = 3.29) -> tuple[float, float]:
    """The two-sided 99.9 % interval of a Binomial(n, p) count (normal approximation)."""
    sd = math.sqrt(n * p * (1 - p))
    return n * p - z * sd, n * p + z * sd


def test_httproute_splits_by_weight_and_a_header_pins_a_backend(kube: KubeApi, namespace: str, bed) -> None:
    serve(kube, namespace, "blue")
    serve(kube, namespace, "green")
    (blue,) = [p["metadata"]["name"] for p in pods(kube, namespace, "blue")]
    (green,) = [p["metadata"]["name"] for p in pods(kube, namespace, "green")]
    gw = Gateway(bed, namespace)
    rules = [
        {
            "matches": [
                {
                    "path": {"type": "PathPrefix", "value": "/"},
                    "headers": [{"type": "Exact", "name": "x-modelship-variant", "value": "green"}],
                }
            ],
            "backendRefs": [backend("green", weight=1)],
        },
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [backend("blue", weight=80), backend("green", weight=20)],
        },
    ]
    kube.create(path_for(GATEWAY_API, "httproutes", namespace), gw.route("split", rules))
    wait_route(kube, namespace, "split")
    seen: set[str] = set()
    wait(
        lambda: seen.update(gw.answered_by() for _ in range(10)) or {blue, green} <= seen, 60, "both backends answering"
    )

    n = 1000
    counts = gw.hits(n)
    low, high = binomial_bounds(n, 0.2)
    assert set(counts) == {blue, green} and low <= counts[green] <= high, (counts, (low, high))

    pinned = gw.hits(100, headers={"x-modelship-variant": "green"})
    assert pinned == Counter({green: 100})
    # Any other value of the header is not a pin: the weights apply.
    other = gw.hits(100, headers={"x-modelship-variant": "purple"})
    assert set(other) == {blue, green}


def test_a_mirrored_backend_sees_copies_and_answers_no_client(kube: KubeApi, namespace: str, bed) -> None:
    """Mirroring through the Gateway. Traefik's Gateway provider does not implement the
    RequestMirror filter (next test), so the mirror is Traefik's own: a TraefikService with
    ``mirroring``, named by the HTTPRoute's backendRef."""
    serve(kube, namespace, "live")
    serve(kube, namespace, "shadow")
    (live,) = [p["metadata"]["name"] for p in pods(kube, namespace, "live")]
    (shadow,) = pods(kube, namespace, "shadow")
    mirrored = {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "TraefikService",
        "metadata": {"name": "live-mirrored"},
        "spec": {
            "mirroring": {"name": "live", "port": 80, "mirrors": [{"name": "shadow", "port": 80, "percent": 100}]}
        },
    }
    kube.create(path_for("traefik.io/v1alpha1", "traefikservices", namespace), mirrored)
    gw = Gateway(bed, namespace)
    rules = [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [{"group": "traefik.io", "kind": "TraefikService", "name": "live-mirrored", "weight": 1}],
        }
    ]
    kube.create(path_for(GATEWAY_API, "httproutes", namespace), gw.route("mirror", rules))
    wait_route(kube, namespace, "mirror")
    wait(lambda: gw.answered_by() == live, 60, "the route answering")
    shadow_ip = shadow["status"]["podIP"]

    def shadow_count() -> int:
        conn = http.client.HTTPConnection(shadow_ip, 8000, timeout=5)
        try:
            conn.request("GET", "/count")
            return int(json.loads(conn.getresponse().read())["requests"])
        finally:
            conn.close()

    before = shadow_count()
    answered = gw.hits(200, path="/predict")
    assert answered == Counter({live: 200})  # no client got the mirror's answer
    wait(lambda: shadow_count() - before >= 200, 30, "the mirror to receive a copy of every request")


def test_traefik_does_not_implement_the_request_mirror_filter(kube: KubeApi, namespace: str, bed) -> None:
    """The Gateway API's own RequestMirror (extended support) is one Traefik v3.6 lacks, and
    it says so only in its log: the route is reported Accepted, and every request on it is
    answered 500. So on this data plane a mirror must be a TraefikService (above). Should
    a later Traefik implement the filter, this test fails and the bed can use it."""
    serve(kube, namespace, "live")
    gw = Gateway(bed, namespace)
    rules = [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": backend("live")}}],
            "backendRefs": [backend("live", weight=1)],
        }
    ]
    kube.create(path_for(GATEWAY_API, "httproutes", namespace), gw.route("std-mirror", rules))
    wait_route(kube, namespace, "std-mirror")
    wait(lambda: gw.status() == 500, 60, "Traefik to program the route")
    assert {gw.status() for _ in range(20)} == {500}


# --- volumes --------------------------------------------------------------------------------
def test_a_claim_gets_a_volume_that_outlives_its_pod_and_goes_with_the_claim(
    kube: KubeApi, namespace: str, local_bed
) -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    kube.create(path_for("v1", "persistentvolumeclaims", namespace), claim)
    mount = {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]

    def run(name: str, script: str) -> str:
        body = job(name, [container("main", ["python", "-c", script], **mount)], volumes=volumes)
        kube.create(path_for("batch/v1", "jobs", namespace), body)
        wait(
            lambda: job_condition(kube.get(path_for("batch/v1", "jobs", namespace, name)), "Complete"),
            120,
            f"job {name} Complete",
        )
        (pod,) = kube.get(path_for("v1", "pods", namespace), labelSelector=f"batch.kubernetes.io/job-name={name}")[
            "items"
        ]
        return kube.text(path_for("v1", "pods", namespace, pod["metadata"]["name"], "log"))

    run("writer", "open('/data/model.txt', 'w').write('weights v1')")
    pvc = kube.get(path_for("v1", "persistentvolumeclaims", namespace, "data"))
    assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["storageClassName"] == "standard"
    pv = kube.get(path_for("v1", "persistentvolumes", None, pvc["spec"]["volumeName"]))
    assert pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
    directory = Path(pv["spec"]["hostPath"]["path"])
    assert (directory / "model.txt").read_text() == "weights v1"
    assert run("reader", "print(open('/data/model.txt').read())").strip() == "weights v1"

    for name in ("writer", "reader"):  # the claim is in use until its pods are gone
        kube.delete(path_for("batch/v1", "jobs", namespace, name), {"propagationPolicy": "Foreground"})
    wait(lambda: not kube.get(path_for("v1", "pods", namespace))["items"], 60, "the jobs' pods gone")
    kube.delete(path_for("v1", "persistentvolumeclaims", namespace, "data"))

    def volume_gone() -> bool:
        try:
            kube.get(path_for("v1", "persistentvolumes", None, pv["metadata"]["name"]))
            return False
        except ApiError as exc:
            return exc.status == 404

    wait(volume_gone, 60, "the volume deleted with its claim (reclaim policy Delete)")
    assert not directory.exists()
