"""The bed's pure network decisions: pods' resolv.conf, the image allow-list, addresses."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from tests.cluster import kwok, podspec
from tests.cluster.network import MAX_BEDS, BedNetwork

VERSIONS = {"coredns": "v1.15.0", "traefik": "v3.6.12"}
NODE_RESOLV = "# from the host\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0 timeout:2\n"


def pod(namespace: str = "team", **spec: object) -> dict:
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": dict(spec)}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {},
            "nameserver 198.19.3.10\nsearch team.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
        ),
        (
            {"dnsPolicy": "ClusterFirst"},
            "nameserver 198.19.3.10\nsearch team.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
        ),
        (
            {"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": True},
            "nameserver 198.19.3.10\nsearch team.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
        ),
        # ClusterFirst on the host's network falls back to the node's own resolver, as the kubelet does.
        ({"hostNetwork": True}, "nameserver 10.0.0.2\nsearch corp.example\noptions edns0 timeout:2\n"),
        ({"dnsPolicy": "Default"}, "nameserver 10.0.0.2\nsearch corp.example\noptions edns0 timeout:2\n"),
        (
            {
                "dnsPolicy": "None",
                "dnsConfig": {
                    "nameservers": ["1.2.3.4"],
                    "searches": ["a.b"],
                    "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}],
                },
            },
            "nameserver 1.2.3.4\nsearch a.b\noptions ndots:2 rotate\n",
        ),
        # dnsConfig adds to ClusterFirst: servers and searches appended, options override by name.
        (
            {
                "dnsConfig": {
                    "nameservers": ["1.2.3.4"],
                    "searches": ["extra.example", "svc.cluster.local"],
                    "options": [{"name": "ndots", "value": "1"}, {"name": "edns0"}],
                }
            },
            (
                "nameserver 198.19.3.10\nnameserver 1.2.3.4\n"
                "search team.svc.cluster.local svc.cluster.local cluster.local extra.example\noptions ndots:1 edns0\n"
            ),
        ),
    ],
)
def test_resolv_conf(spec: dict, expected: str) -> None:
    assert podspec.resolv_conf(pod(**spec), "198.19.3.10", NODE_RESOLV) == expected


def test_resolv_conf_keeps_three_nameservers_at_most() -> None:
    spec = {"dnsConfig": {"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3"]}}
    out = podspec.resolv_conf(pod(**spec), "198.19.0.10", "")
    assert [line for line in out.splitlines() if line.startswith("nameserver")] == [
        "nameserver 198.19.0.10",
        "nameserver 1.1.1.1",
        "nameserver 2.2.2.2",
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [({"dnsPolicy": "None"}, "needs dnsConfig.nameservers"), ({"dnsPolicy": "Cluster"}, "is not one of")],
)
def test_resolv_conf_refuses_what_the_kubelet_refuses(spec: dict, message: str) -> None:
    with pytest.raises(podspec.ConfigError, match=message):
        podspec.resolv_conf(pod(**spec), "198.19.0.10", NODE_RESOLV)


@pytest.mark.parametrize(
    ("image", "normalized"),
    [
        ("traefik:v3.6.12", "docker.io/library/traefik:v3.6.12"),
        ("docker.io/traefik:v3.6.12", "docker.io/library/traefik:v3.6.12"),
        ("docker.io/library/traefik:v3.6.12", "docker.io/library/traefik:v3.6.12"),
        ("rancher/local-path-provisioner:v0.0.30", "docker.io/rancher/local-path-provisioner:v0.0.30"),
        ("registry.k8s.io/coredns/coredns:v1.15.0", "registry.k8s.io/coredns/coredns:v1.15.0"),
        ("localhost:5000/x:1", "localhost:5000/x:1"),
    ],
)
def test_normalize_image(image: str, normalized: str) -> None:
    assert podspec.normalize_image(image) == normalized


@pytest.mark.parametrize(
    ("image", "allowed", "entrypoint"),
    [
        ("registry.k8s.io/coredns/coredns:v1.15.0", True, ["/bin/dir/coredns"]),
        ("traefik:v3.6.12", True, ["/bin/dir/traefik"]),
        ("docker.io/library/traefik:v3.6.12", True, ["/bin/dir/traefik"]),
        ("ghcr.io/modelship/modelship:dev", True, ["modelship"]),
        # Pinned: another tag of an allowed image is not the binary that was built.
        ("traefik:v3.7.0", False, ["modelship"]),
        ("traefik", False, ["modelship"]),
        ("registry.k8s.io/coredns/coredns:v1.12.0", False, ["modelship"]),
        ("busybox:1.36", False, ["modelship"]),
    ],
)
def test_upstream_images_are_an_allow_list_of_pinned_references(image: str, allowed: bool, entrypoint: list) -> None:
    upstream = podspec.upstream_images(VERSIONS)
    assert podspec.image_allowed(image, upstream) is allowed
    assert podspec.entrypoint(image, upstream, "/bin/dir") == entrypoint


def test_pull_message_names_the_pinned_images() -> None:
    message = podspec.image_pull_message("busybox:1.36", podspec.upstream_images(VERSIONS))
    assert "docker.io/library/traefik:v3.6.12" in message and "registry.k8s.io/coredns/coredns:v1.15.0" in message


def test_args_follow_the_upstream_entrypoint_and_command_replaces_it() -> None:
    entry = ["/bin/dir/coredns"]
    assert podspec.container_argv({"args": ["-conf", "/etc/coredns/Corefile"]}, {}, entry) == [
        "/bin/dir/coredns",
        "-conf",
        "/etc/coredns/Corefile",
    ]
    assert podspec.container_argv({"command": ["sh"], "args": ["-c", "x"]}, {}, entry) == ["sh", "-c", "x"]


@pytest.mark.parametrize("index", [0, 1, 7, MAX_BEDS - 1])
def test_bed_addresses_stay_inside_the_test_range_and_apart(index: int) -> None:
    net = BedNetwork(index)
    test_range = ipaddress.ip_network("198.18.0.0/15")
    pods, services = ipaddress.ip_network(net.pod_cidr), ipaddress.ip_network(net.service_cidr)
    uplink = ipaddress.ip_network(f"{net.host_ip}/30", strict=False)
    sink = ipaddress.ip_network(f"{net.sink_ip}/30", strict=False)
    fake_pods = ipaddress.ip_network(kwok.pod_cidr(net))
    mine = (pods, services, uplink, sink, fake_pods)
    for network in mine:
        assert network.subnet_of(test_range)
    for a, b in itertools.combinations(mine, 2):
        assert not a.overlaps(b), (a, b)
    assert ipaddress.ip_address(net.sink_node_ip) in sink and net.sink_node_ip != net.sink_ip
    assert ipaddress.ip_address(net.uplink_node_ip) in uplink
    assert ipaddress.ip_address(net.dns_service_ip) in services
    assert ipaddress.ip_address(net.kubernetes_service_ip) in services
    assert ipaddress.ip_address(net.node_ip) in pods
    assert len(net.host_link) <= 15 and len(net.bridge) <= 15  # Linux interface names
    others = [BedNetwork(i) for i in range(MAX_BEDS) if i != index]
    for other in others:
        theirs = (
            ipaddress.ip_network(other.pod_cidr),
            ipaddress.ip_network(other.service_cidr),
            ipaddress.ip_network(f"{other.host_ip}/30", strict=False),
            ipaddress.ip_network(f"{other.sink_ip}/30", strict=False),
            ipaddress.ip_network(kwok.pod_cidr(other)),
        )
        for a, b in itertools.product(mine, theirs):
            assert not a.overlaps(b), (index, a, other.index, b)
        assert not other.node_netns.startswith(net.prefix)
