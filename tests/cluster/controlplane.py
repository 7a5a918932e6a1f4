"""etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kube-proxy in the bed's node.

Every process runs in the node's network namespace: etcd on the node's own loopback, the
API server on the node's address (which the host reaches through its route to the pod
range), kube-proxy writing its nftables rules into the node and nowhere else.
"""

from __future__ import annotations

import json
import secrets
import ssl
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tests.cluster.network import BedNetwork
from tests.cluster.pki import make_pki
from tests.cluster.processes import Process, wait_for

ADMIN_TOKEN_USER = "modelship-admin"
API_PORT = 6443
# Inside the node's namespace every port is the bed's own: fixed ones, as on a node.
ETCD_CLIENT_PORT, ETCD_PEER_PORT = 2379, 2380
KUBELET_PORT = 10250
KUBE_PROXY_HEALTHZ_PORT, KUBE_PROXY_METRICS_PORT = 10256, 10249
# The user kube-proxy authenticates as: the bootstrap RBAC policy binds it to system:node-proxier.
KUBE_PROXY_USER = "system:kube-proxy"


@dataclass
class ControlPlane:
    bin_dir: Path
    state_dir: Path
    network: BedNetwork
    admin_token: str
    node_name: str = "bed-node-0"
    audit_users: tuple[str, ...] = ()
    """Users whose API calls the API server records in audit.log (metadata only); none by default."""
    processes: list[Process] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.network.node_ip

    @property
    def server(self) -> str:
        return f"https://{self.host}:{API_PORT}"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def audit_log(self) -> Path:
        """One JSON audit event per line, for the calls of ``audit_users``."""
        return self.state_dir / "audit.log"

    def _audit_flags(self) -> list[str]:
        if not self.audit_users:
            return []
        policy = self.state_dir / "audit-policy.yaml"
        policy.write_text(
            json.dumps(
                {
                    "apiVersion": "audit.k8s.io/v1",
                    "kind": "Policy",
                    "omitStages": ["RequestReceived"],
                    "rules": [{"level": "Metadata", "users": list(self.audit_users)}, {"level": "None"}],
                }
            )
        )
        return [f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}", "--audit-log-format=json"]

    @property
    def ca_file(self) -> Path:
        return self.state_dir / "pki" / "ca.crt"

    def start(self, timeout: float = 120.0) -> None:
        logs = self.state_dir / "logs"
        pki = make_pki(
            self.state_dir / "pki",
            ips=[self.host, "127.0.0.1", self.service_ip()],
            dns_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )
        proxy_token = secrets.token_hex(24)
        tokens = self.state_dir / "tokens.csv"
        tokens.write_text(
            f'{self.admin_token},{ADMIN_TOKEN_USER},{ADMIN_TOKEN_USER},"system:masters"\n'
            f"{proxy_token},{KUBE_PROXY_USER},{KUBE_PROXY_USER}\n"
        )
        tokens.chmod(0o600)
        self._write_kubeconfig(self.kubeconfig, self.admin_token, "admin")
        self._write_kubeconfig(self.state_dir / "kube-proxy.kubeconfig", proxy_token, "kube-proxy")
        b = str(self.bin_dir)
        node = self.network.in_node
        etcd_client, etcd_peer = ETCD_CLIENT_PORT, ETCD_PEER_PORT
        etcd = Process(
            "etcd",
            [
                f"{b}/etcd",
                "--name=bed",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=bed=http://127.0.0.1:{etcd_peer}",
                "--listen-metrics-urls=",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
                "--quota-backend-bytes=2147483648",
            ],
            logs,
            wrap=node,
        ).start()
        self.processes.append(etcd)
        wait_for(lambda: _etcd_healthy(self.network, etcd_client), 30, "etcd health", processes=[etcd])
        apiserver = Process(
            "kube-apiserver",
            [
                f"{b}/kube-apiserver",
                f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                f"--bind-address={self.host}",
                f"--advertise-address={self.host}",
                f"--secure-port={API_PORT}",
                f"--tls-cert-file={pki['apiserver.crt']}",
                f"--tls-private-key-file={pki['apiserver.key']}",
                f"--client-ca-file={pki['ca.crt']}",
                f"--service-account-key-file={pki['sa.pub']}",
                f"--service-account-signing-key-file={pki['sa.key']}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--token-auth-file={tokens}",
                "--authorization-mode=Node,RBAC",
                f"--service-cluster-ip-range={self.network.service_cidr}",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--enable-garbage-collector=true",
                "--event-ttl=1h",
                "--v=1",
                # `kubectl logs` goes through the node agent's small kubelet API (mutual TLS).
                f"--kubelet-client-certificate={pki['kubelet-client.crt']}",
                f"--kubelet-client-key={pki['kubelet-client.key']}",
                f"--kubelet-certificate-authority={pki['ca.crt']}",
                "--kubelet-preferred-address-types=InternalIP",
                *self._audit_flags(),
            ],
            logs,
            wrap=node,
        ).start()
        self.processes.append(apiserver)
        wait_for(self._ready, timeout, "kube-apiserver /readyz", interval=0.5, processes=[etcd, apiserver])
        cm = Process(
            "kube-controller-manager",
            [
                f"{b}/kube-controller-manager",
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                f"--service-account-private-key-file={pki['sa.key']}",
                f"--root-ca-file={pki['ca.crt']}",
                f"--cluster-signing-cert-file={pki['ca.crt']}",
                f"--cluster-signing-key-file={pki['ca.key']}",
                "--use-service-account-credentials=false",
                "--concurrent-gc-syncs=5",
                "--node-monitor-grace-period=60s",
                "--v=1",
            ],
            logs,
            wrap=node,
        ).start()
        scheduler = Process(
            "kube-scheduler",
            [
                f"{b}/kube-scheduler",
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=1",
            ],
            logs,
            wrap=node,
        ).start()
        self.processes += [cm, scheduler]

    def start_kube_proxy(self, timeout: float = 60.0) -> None:
        """kube-proxy in nftables mode, once the Node it serves is registered.

        nftables rather than iptables: it is kube-proxy's current mode (GA since 1.33), its
        rules are one table (``ip kube-proxy``) that lives and dies with the node's namespace,
        and the machine needs no iptables compatibility layer.
        """
        config = self.state_dir / "kube-proxy.yaml"
        net = self.network
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                    "kind": "KubeProxyConfiguration",
                    "clientConnection": {"kubeconfig": str(self.state_dir / "kube-proxy.kubeconfig")},
                    "hostnameOverride": self.node_name,
                    "mode": "nftables",
                    "bindAddress": net.node_ip,
                    "healthzBindAddress": f"{net.node_ip}:{KUBE_PROXY_HEALTHZ_PORT}",
                    "metricsBindAddress": f"{net.node_ip}:{KUBE_PROXY_METRICS_PORT}",
                    "clusterCIDR": net.pod_cidr,
                    "detectLocalMode": "ClusterCIDR",
                    "nodePortAddresses": [f"{net.node_ip}/32"],
                    # Zero leaves the kernel's conntrack settings alone: they are the machine's, not the bed's.
                    "conntrack": {
                        "maxPerCore": 0,
                        "min": 0,
                        "tcpEstablishedTimeout": "0s",
                        "tcpCloseWaitTimeout": "0s",
                        "udpTimeout": "0s",
                        "udpStreamTimeout": "0s",
                    },
                }
            )
        )
        proxy = Process(
            "kube-proxy",
            [f"{self.bin_dir}/kube-proxy", f"--config={config}", "--v=1"],
            self.state_dir / "logs",
            wrap=net.in_node,
        ).start()
        self.processes.append(proxy)
        wait_for(
            lambda: _http_ok(self.kube_proxy_healthz), timeout, "kube-proxy healthz", interval=0.5, processes=[proxy]
        )

    @property
    def kube_proxy_healthz(self) -> str:
        return f"http://{self.network.node_ip}:{KUBE_PROXY_HEALTHZ_PORT}/healthz"

    @property
    def kube_proxy_metrics(self) -> str:
        return f"http://{self.network.node_ip}:{KUBE_PROXY_METRICS_PORT}/metrics"

    def service_ip(self) -> str:
        return self.network.kubernetes_service_ip

    def _ready(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        req = urllib.request.Request(f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.admin_token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            return resp.status == 200

    def _write_kubeconfig(self, path: Path, token: str, user: str) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "bed", "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)}}
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "bed", "context": {"cluster": "bed", "user": user, "namespace": "default"}}],
            "current-context": "bed",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)

    def check_alive(self) -> None:
        for p in self.processes:
            if not p.alive():
                raise RuntimeError(f"{p.name} of the test bed exited:\n{p.tail()}")

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()


def _etcd_healthy(network: BedNetwork, port: int) -> bool:
    """etcd listens on the node's loopback, which only the node's namespace reaches."""
    import subprocess
    import sys

    probe = f"import urllib.request as u; u.urlopen('http://127.0.0.1:{port}/health', timeout=3)"
    return (
        subprocess.run(network.in_node([sys.executable, "-c", probe]), capture_output=True, check=False).returncode == 0
    )


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return resp.status == 200
