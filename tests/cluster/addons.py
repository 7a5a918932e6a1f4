"""What a cluster has besides its control plane: cluster DNS, a Gateway and a StorageClass.

Builders only (versions and the bed's network in, manifests out); ``bed.py`` applies them
once the node is Ready. CoreDNS and Traefik run as pods, from the images a cluster would
pull, which the node agent maps to the binaries built from their Go modules
(``podspec.upstream_images``).
"""

from __future__ import annotations

from typing import Any

from tests.cluster.network import BedNetwork
from tests.cluster.podspec import coredns_image, traefik_image

CLUSTER_DOMAIN = "cluster.local"
DNS_NAMESPACE = "kube-system"
GATEWAY_NAMESPACE = "traefik"
GATEWAY_CLASS = "traefik"
GATEWAY_NAME = "bed"
GATEWAY_CONTROLLER = "traefik.io/gateway-controller"
GATEWAY_HTTP_PORT = 80
STORAGE_CLASS = "standard"
PROVISIONER_NAME = "modelship.io/testbed-hostpath"


def gateway_ip(network: BedNetwork) -> str:
    """The Gateway's address: a fixed ClusterIP of Traefik's Service, reported in Gateway status."""
    return f"198.19.{network.index}.20"


def corefile() -> str:
    """The cluster zone from the API; every other name is NXDOMAIN at once.

    The bed has no way out, so there is nothing to forward to: an answer beats a 5 s
    timeout for a name that cannot resolve.
    """
    return f"""\
{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    errors
    health :8080
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        ttl 30
    }}
    prometheus :9153
    cache 30
    loadbalance
}}
.:53 {{
    errors
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""


def _meta(name: str, namespace: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return meta


def _cluster_role(name: str, rules: list[dict[str, Any]], sa: str, namespace: str) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _meta(name), "rules": rules},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
        },
    ]


def coredns(network: BedNetwork, versions: dict[str, str]) -> list[dict[str, Any]]:
    """kube-dns as kubeadm installs it: CoreDNS behind the Service at the bed's DNS address."""
    ns, labels = DNS_NAMESPACE, {"k8s-app": "kube-dns"}
    read = ["list", "watch"]
    rules = [
        {"apiGroups": [""], "resources": ["services", "pods", "namespaces"], "verbs": read},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
    ]
    container = {
        "name": "coredns",
        "image": coredns_image(versions),
        "args": ["-conf", "/etc/coredns/Corefile"],
        "ports": [
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
        ],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 1},
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10, "failureThreshold": 5},
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("coredns", ns)},
        *_cluster_role("system:coredns", rules, "coredns", ns),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("coredns", ns), "data": {"Corefile": corefile()}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta("coredns", ns, labels),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "dnsPolicy": "Default",
                        "priorityClassName": "system-cluster-critical",
                        "containers": [container],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("kube-dns", ns, labels),
            "spec": {
                "selector": labels,
                "clusterIP": network.dns_service_ip,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
                ],
            },
        },
    ]


def traefik(network: BedNetwork, versions: dict[str, str]) -> list[dict[str, Any]]:
    """Traefik v3 with its Kubernetes Gateway provider (and its CRD provider, for TraefikService)."""
    ns, labels = GATEWAY_NAMESPACE, {"app.kubernetes.io/name": "traefik"}
    read = ["get", "list", "watch"]
    gateway_kinds = [
        "gatewayclasses",
        "gateways",
        "httproutes",
        "grpcroutes",
        "referencegrants",
        "backendtlspolicies",
        "tcproutes",
        "tlsroutes",
    ]
    rules = [
        {"apiGroups": [""], "resources": ["services", "secrets", "configmaps", "namespaces", "nodes"], "verbs": read},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
        {"apiGroups": ["gateway.networking.k8s.io"], "resources": gateway_kinds, "verbs": read},
        {
            "apiGroups": ["gateway.networking.k8s.io"],
            "resources": [f"{k}/status" for k in gateway_kinds],
            "verbs": ["update", "patch"],
        },
        {"apiGroups": ["traefik.io"], "resources": ["*"], "verbs": read},
        {"apiGroups": ["extensions", "networking.k8s.io"], "resources": ["ingresses", "ingressclasses"], "verbs": read},
    ]
    args = [
        f"--entryPoints.web.address=:{GATEWAY_HTTP_PORT}",
        "--entryPoints.traefik.address=:9000",
        "--ping=true",
        "--metrics.prometheus=true",
        "--providers.kubernetesgateway=true",
        f"--providers.kubernetesgateway.statusaddress.ip={gateway_ip(network)}",
        "--providers.kubernetescrd=true",
        "--log.level=INFO",
    ]
    container = {
        "name": "traefik",
        "image": traefik_image(versions),
        "args": args,
        "ports": [{"name": "web", "containerPort": GATEWAY_HTTP_PORT}, {"name": "admin", "containerPort": 9000}],
        "readinessProbe": {"httpGet": {"path": "/ping", "port": 9000}, "periodSeconds": 1},
        "livenessProbe": {"httpGet": {"path": "/ping", "port": 9000}, "periodSeconds": 10, "failureThreshold": 5},
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns)},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("traefik", ns)},
        *_cluster_role("traefik-gateway", rules, "traefik", ns),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta("traefik", ns, labels),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"serviceAccountName": "traefik", "containers": [container]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("traefik", ns, labels),
            "spec": {
                "selector": labels,
                "clusterIP": gateway_ip(network),
                "ports": [{"name": "web", "port": GATEWAY_HTTP_PORT, "targetPort": "web", "protocol": "TCP"}],
            },
        },
    ]


def gateway() -> list[dict[str, Any]]:
    """The bed's GatewayClass and one Gateway with an HTTP listener that takes routes from any namespace."""
    return [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": _meta(GATEWAY_CLASS),
            "spec": {"controllerName": GATEWAY_CONTROLLER},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": _meta(GATEWAY_NAME, GATEWAY_NAMESPACE),
            "spec": {
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [
                    {
                        "name": "http",
                        "protocol": "HTTP",
                        "port": GATEWAY_HTTP_PORT,
                        "allowedRoutes": {"namespaces": {"from": "All"}},
                    }
                ],
            },
        },
    ]


def storage_class() -> dict[str, Any]:
    """The default StorageClass, served by the bed's provisioner (tests/cluster/provisioner.py)."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": PROVISIONER_NAME,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


# kind -> (plural, namespaced) for what the bed applies.
KINDS = {
    "Namespace": ("namespaces", False),
    "ServiceAccount": ("serviceaccounts", True),
    "ConfigMap": ("configmaps", True),
    "Service": ("services", True),
    "Deployment": ("deployments", True),
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
    "StorageClass": ("storageclasses", False),
    "CustomResourceDefinition": ("customresourcedefinitions", False),
    "GatewayClass": ("gatewayclasses", False),
    "Gateway": ("gateways", True),
}


def object_path(obj: dict[str, Any]) -> str:
    """The API path of one object, for server-side apply."""
    api_version, kind, meta = obj["apiVersion"], obj["kind"], obj["metadata"]
    plural, namespaced = KINDS[kind]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    ns = f"/namespaces/{meta['namespace']}" if namespaced else ""
    return f"{base}{ns}/{plural}/{meta['name']}"
