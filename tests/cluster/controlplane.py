"""etcd, kube-apiserver, kube-controller-manager and kube-scheduler on the bed's network."""

from __future__ import annotations

import ssl
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tests.cluster.network import BedNetwork
from tests.cluster.pki import make_pki
from tests.cluster.processes import Process, wait_for
from tests.local_servers import free_port

ADMIN_TOKEN_USER = "modelship-admin"
API_PORT = 6443


@dataclass
class ControlPlane:
    bin_dir: Path
    state_dir: Path
    network: BedNetwork
    admin_token: str
    processes: list[Process] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.network.gateway

    @property
    def server(self) -> str:
        return f"https://{self.host}:{API_PORT}"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.state_dir / "pki" / "ca.crt"

    def start(self, timeout: float = 120.0) -> None:
        logs = self.state_dir / "logs"
        pki = make_pki(self.state_dir / "pki", ips=[self.host, "127.0.0.1", self.service_ip()],
                       dns_names=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                                  "kubernetes.default.svc.cluster.local"])
        tokens = self.state_dir / "tokens.csv"
        tokens.write_text(f'{self.admin_token},{ADMIN_TOKEN_USER},{ADMIN_TOKEN_USER},"system:masters"\n')
        tokens.chmod(0o600)
        self._write_kubeconfig()
        b = str(self.bin_dir)
        etcd_client, etcd_peer = free_port(), free_port()
        etcd = Process("etcd", [
            f"{b}/etcd", "--name=bed", f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=bed=http://127.0.0.1:{etcd_peer}",
            "--listen-metrics-urls=", "--unsafe-no-fsync=true", "--log-level=warn",
            "--quota-backend-bytes=2147483648",
        ], logs).start()
        self.processes.append(etcd)
        wait_for(lambda: _http_ok(f"http://127.0.0.1:{etcd_client}/health"), 30, "etcd health", processes=[etcd])
        apiserver = Process("kube-apiserver", [
            f"{b}/kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_client}",
            f"--bind-address={self.host}", f"--advertise-address={self.host}", f"--secure-port={API_PORT}",
            f"--tls-cert-file={pki['apiserver.crt']}", f"--tls-private-key-file={pki['apiserver.key']}",
            f"--client-ca-file={pki['ca.crt']}",
            f"--service-account-key-file={pki['sa.pub']}",
            f"--service-account-signing-key-file={pki['sa.key']}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--token-auth-file={tokens}",
            "--authorization-mode=Node,RBAC",
            f"--service-cluster-ip-range={self.network.service_cidr}",
            "--allow-privileged=true", "--enable-priority-and-fairness=false", "--profiling=false",
            "--enable-garbage-collector=true", "--event-ttl=1h", "--v=1",
            # `kubectl logs` goes through the node agent's small kubelet API (mutual TLS).
            f"--kubelet-client-certificate={pki['kubelet-client.crt']}",
            f"--kubelet-client-key={pki['kubelet-client.key']}",
            f"--kubelet-certificate-authority={pki['ca.crt']}",
            "--kubelet-preferred-address-types=InternalIP",
        ], logs).start()
        self.processes.append(apiserver)
        wait_for(self._ready, timeout, "kube-apiserver /readyz", interval=0.5, processes=[etcd, apiserver])
        cm = Process("kube-controller-manager", [
            f"{b}/kube-controller-manager",
            f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--secure-port=0",
            f"--service-account-private-key-file={pki['sa.key']}",
            f"--root-ca-file={pki['ca.crt']}",
            f"--cluster-signing-cert-file={pki['ca.crt']}", f"--cluster-signing-key-file={pki['ca.key']}",
            "--use-service-account-credentials=false", "--concurrent-gc-syncs=5",
            "--node-monitor-grace-period=60s", "--v=1",
        ], logs).start()
        scheduler = Process("kube-scheduler", [
            f"{b}/kube-scheduler", f"--kubeconfig={self.kubeconfig}", "--leader-elect=false",
            "--secure-port=0", "--v=1",
        ], logs).start()
        self.processes += [cm, scheduler]

    def service_ip(self) -> str:
        return self.network.service_cidr.rsplit(".", 1)[0] + ".1"

    def _ready(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        req = urllib.request.Request(f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.admin_token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            return resp.status == 200

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "bed", "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": "admin", "user": {"token": self.admin_token}}],
            "contexts": [{"name": "bed", "context": {"cluster": "bed", "user": "admin", "namespace": "default"}}],
            "current-context": "bed",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)

    def check_alive(self) -> None:
        for p in self.processes:
            if not p.alive():
                raise RuntimeError(f"{p.name} of the test bed exited:\n{p.tail()}")

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return resp.status == 200
