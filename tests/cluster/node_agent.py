"""The test bed's node agent: a kubelet for pods whose containers are local processes.

It registers a Node, keeps its Lease and Ready condition fresh, watches the pods bound
to the node, runs each in a ``PodRuntime`` on a thread of its own, reports their status,
and finishes deletions (SIGTERM, grace period, SIGKILL, then the final delete).

    python -m tests.cluster.node_agent --kubeconfig K --node-name N --bed-index I --state-dir D

It runs in the node's network namespace (the bed starts it there), so the pods' veths,
its kubelet API and its probes are the node's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.cluster import kubelet_api, podspec
from tests.cluster.kubeapi import STRATEGIC, ApiError, KubeApi, path_for
from tests.cluster.network import BedNetwork
from tests.cluster.pod_runtime import NodeContext, PodRuntime, now_rfc3339
from tests.cluster.volumes import decode_secret

log = logging.getLogger("node-agent")
K8S_VERSION = os.environ.get("MODELSHIP_K8S_VERSION", "v1.36.3")


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def micro_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeAgent:
    def __init__(
        self, api: KubeApi, node: str, network: BedNetwork, state_dir: Path, venv_bin: Path, bin_dir: Path | None = None
    ):
        self.api = api
        self.node = node
        self.network = network
        self.pods_dir = state_dir / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.venv_bin = venv_bin
        versions_file = bin_dir.parent / "versions.json" if bin_dir else None
        versions = json.loads(versions_file.read_text()) if versions_file and versions_file.exists() else {}
        self.context = NodeContext(
            network=network,
            pods_dir=self.pods_dir,
            lookup=self.lookup,
            issue_token=self.issue_token,
            claim_path=self.claim_path,
            base_env=self.base_env(),
            host_ip=network.node_ip,
            upstream_images=podspec.upstream_images(versions) if versions else {},
            bin_dir=str(bin_dir or ""),
            cluster_dns=network.dns_service_ip,
            node_resolv=_read("/etc/resolv.conf"),
        )
        self.free_ips = network.pod_ips()
        self.workers: dict[str, PodWorker] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.kubelet_port = 0

    def serve_logs(self, port: int, pki_dir: Path) -> None:
        kubelet_api.serve(
            self.network.node_ip,
            port,
            pki_dir / "apiserver.crt",
            pki_dir / "apiserver.key",
            pki_dir / "ca.crt",
            self.find_log,
        )
        self.kubelet_port = port

    def find_log(self, namespace: str, pod: str, container: str, previous: bool):
        name = f"{container}.previous.log" if previous else f"{container}.log"
        with self.lock:
            for w in self.workers.values():
                if (w.namespace, w.name_) == (namespace, pod):
                    c = next((c for c in w.runtime.init + w.runtime.main if c.name == container), None)
                    if c is None:
                        return None
                    return w.runtime.dir / name, lambda c=c, w=w: c.state != "terminated" and not w.runtime.finished
        matches = sorted(self.pods_dir.glob(f"{namespace}_{pod}_*/{name}"), key=lambda p: p.stat().st_mtime)
        return (matches[-1], lambda: False) if matches else None

    # --- node ---------------------------------------------------------------------------
    def node_status(self) -> dict[str, Any]:
        now = now_rfc3339()
        mem_kib = 0
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
        capacity = {
            "cpu": str(os.cpu_count() or 1),
            "memory": f"{mem_kib}Ki",
            "pods": "110",
            "ephemeral-storage": "100Gi",
        }
        return {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "test-bed node agent is ready",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                },
                {
                    "type": "MemoryPressure",
                    "status": "False",
                    "reason": "KubeletHasSufficientMemory",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                },
                {
                    "type": "DiskPressure",
                    "status": "False",
                    "reason": "KubeletHasNoDiskPressure",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                },
                {
                    "type": "PIDPressure",
                    "status": "False",
                    "reason": "KubeletHasSufficientPID",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                },
            ],
            "addresses": [
                {"type": "InternalIP", "address": self.network.node_ip},
                {"type": "Hostname", "address": self.node},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": os.uname().release,
                "osImage": "modelship test bed",
                "containerRuntimeVersion": "modelship-testbed://0.1",
                "kubeletVersion": K8S_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }

    def register(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node,
                "labels": {
                    "kubernetes.io/hostname": self.node,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node.modelship.io/test-bed": "true",
                },
            },
            "spec": {"podCIDR": self.network.pod_cidr, "podCIDRs": [self.network.pod_cidr]},
        }
        try:
            self.api.create("/api/v1/nodes", body)
        except ApiError as exc:
            if exc.status != 409:
                raise
        self.api.patch(f"/api/v1/nodes/{self.node}/status", {"status": self.node_status()}, STRATEGIC)

    def heartbeat(self) -> None:
        lease_path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node}"
        last_status = 0.0
        while not self.stopping.is_set():
            try:
                lease = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.node, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": micro_now()},
                }
                self.api.apply(lease_path, lease, manager="modelship-node-agent")
                if time.monotonic() - last_status > 20:
                    self.api.patch(f"/api/v1/nodes/{self.node}/status", {"status": self.node_status()}, STRATEGIC)
                    last_status = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - keep beating; the API may be restarting
                log.warning("heartbeat failed: %s", exc)
            self.stopping.wait(10)

    # --- lookups for pods ---------------------------------------------------------------
    def lookup(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        plural = {"configmap": "configmaps", "secret": "secrets"}[kind]
        try:
            obj = self.api.get(path_for("v1", plural, namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        if kind == "secret":
            return decode_secret(obj.get("data"))
        return dict(obj.get("data") or {})

    def issue_token(self, namespace: str, sa: str, audience: str | None, seconds: int, pod: str, uid: str) -> str:
        body: dict[str, Any] = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": max(seconds, 600),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": uid},
            },
        }
        if audience:
            body["spec"]["audiences"] = [audience]
        out = self.api.create(path_for("v1", "serviceaccounts", namespace, sa, "token"), body)
        return str(out["status"]["token"])

    def claim_path(self, namespace: str, claim: str) -> Path:
        """The directory of the PersistentVolume bound to a claim (the provisioner made it on this node)."""
        try:
            pvc = self.api.get(path_for("v1", "persistentvolumeclaims", namespace, claim))
        except ApiError as exc:
            if exc.status == 404:
                raise podspec.ConfigError(f'persistentvolumeclaim "{claim}" not found') from None
            raise
        volume = pvc.get("spec", {}).get("volumeName")
        if pvc.get("status", {}).get("phase") != "Bound" or not volume:
            raise podspec.ConfigError(f'persistentvolumeclaim "{claim}" is not bound yet')
        pv = self.api.get(path_for("v1", "persistentvolumes", None, volume))
        source = pv["spec"].get("hostPath") or pv["spec"].get("local")
        if not source:
            raise podspec.ConfigError(f"persistentvolume {volume}: only hostPath and local volumes exist on this node")
        path = Path(source["path"])
        path.mkdir(parents=True, exist_ok=True)
        return path

    def base_env(self) -> dict[str, str]:
        """The environment every container starts from; the API server as the kubelet names it, by its Service."""
        return {
            "PATH": f"{self.venv_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "PYTHONUNBUFFERED": "1",
            "KUBERNETES_SERVICE_HOST": self.network.kubernetes_service_ip,
            "KUBERNETES_SERVICE_PORT": "443",
            "KUBERNETES_SERVICE_PORT_HTTPS": "443",
        }

    # --- pods ---------------------------------------------------------------------------
    def run(self) -> None:
        self.register()
        threading.Thread(target=self.heartbeat, name="heartbeat", daemon=True).start()
        selector = f"spec.nodeName={self.node}"
        while not self.stopping.is_set():
            try:
                listing = self.api.get("/api/v1/pods", fieldSelector=selector)
                seen = set()
                for pod in listing["items"]:
                    seen.add(pod["metadata"]["uid"])
                    self.observe(pod)
                with self.lock:
                    gone = [uid for uid in self.workers if uid not in seen]
                for uid in gone:
                    self.forget(uid)
                rv = listing["metadata"]["resourceVersion"]
                for event in self.api.watch("/api/v1/pods", rv, timeout_seconds=50, fieldSelector=selector):
                    if self.stopping.is_set():
                        break
                    kind, pod = event["type"], event["object"]
                    if kind == "BOOKMARK":
                        continue
                    if kind == "ERROR":
                        break
                    if kind == "DELETED":
                        self.forget(pod["metadata"]["uid"])
                    else:
                        self.observe(pod)
            except Exception as exc:  # noqa: BLE001 - relist and go on, as a kubelet does
                if not self.stopping.is_set():
                    log.warning("pod watch failed, relisting: %s", exc)
                    time.sleep(1)

    def observe(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        with self.lock:
            worker = self.workers.get(uid)
            if worker is None:
                if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") and not pod["metadata"].get(
                    "deletionTimestamp"
                ):
                    return  # finished before this agent started; nothing to run
                if not self.free_ips:
                    log.error("no free pod IP on %s", self.node)
                    return
                worker = PodWorker(self, pod, self.free_ips.pop(0))
                self.workers[uid] = worker
                worker.start()
        if pod["metadata"].get("deletionTimestamp"):
            worker.request_delete(pod["metadata"].get("deletionGracePeriodSeconds"))

    def forget(self, uid: str) -> None:
        with self.lock:
            worker = self.workers.get(uid)
        if worker is not None:
            worker.request_delete(0, final_delete=False)

    def release(self, worker: PodWorker) -> None:
        with self.lock:
            self.workers.pop(worker.uid, None)
            self.free_ips.append(worker.pod_ip)

    def shutdown(self) -> None:
        self.stopping.set()
        with self.lock:
            workers = list(self.workers.values())
        for w in workers:
            w.request_delete(2, final_delete=False)
        for w in workers:
            w.join(15)


class PodWorker(threading.Thread):
    def __init__(self, agent: NodeAgent, pod: dict[str, Any], pod_ip: str):
        super().__init__(name=f"pod-{pod['metadata']['name']}", daemon=True)
        self.agent = agent
        self.uid = pod["metadata"]["uid"]
        self.name_ = pod["metadata"]["name"]
        self.namespace = pod["metadata"]["namespace"]
        self.pod_ip = pod_ip
        self.runtime = PodRuntime(pod, agent.context, pod_ip)
        self.delete_grace: int | None = None
        self.delete_requested = threading.Event()
        self.final_delete = True
        self.last_status = ""

    def request_delete(self, grace: int | None, final_delete: bool = True) -> None:
        if not self.delete_requested.is_set():
            self.delete_grace = grace
            self.final_delete = final_delete
            self.delete_requested.set()
        elif not final_delete:
            self.final_delete = False

    def run(self) -> None:
        path = path_for("v1", "pods", self.namespace, self.name_)
        try:
            while not self.delete_requested.is_set():
                try:
                    status = self.runtime.step()
                except Exception:
                    log.exception("pod %s/%s: step failed", self.namespace, self.name_)
                    status = self.runtime.status()
                while self.runtime.events:
                    log.info("pod %s/%s: %s", self.namespace, self.name_, self.runtime.events.pop(0))
                self.publish(path, status)
                if self.runtime.finished:
                    self.delete_requested.wait(1.0)
                else:
                    self.delete_requested.wait(0.25)
            self.runtime.terminate(self.delete_grace)
            if self.final_delete:
                self.publish(path, self.runtime.status())
                try:
                    self.agent.api.delete(path, {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}})
                except ApiError as exc:
                    if exc.status not in (404, 409):
                        log.warning("pod %s/%s: final delete failed: %s", self.namespace, self.name_, exc)
        finally:
            self.agent.release(self)

    def publish(self, path: str, status: dict[str, Any]) -> None:
        encoded = json.dumps(status, sort_keys=True)
        if encoded == self.last_status:
            return
        try:
            self.agent.api.patch(f"{path}/status", {"status": status}, STRATEGIC)
            self.last_status = encoded
        except ApiError as exc:
            if exc.status == 404:
                self.request_delete(0, final_delete=False)
            else:
                log.warning("pod %s/%s: status update failed: %s", self.namespace, self.name_, exc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--node-name", default="bed-node-0")
    p.add_argument("--bed-index", type=int, required=True)
    p.add_argument("--state-dir", required=True, type=Path)
    p.add_argument("--venv-bin", default=str(Path(sys.executable).parent), type=Path)
    p.add_argument("--bin-dir", type=Path, help="the bed's binaries, for the pinned upstream images")
    p.add_argument("--kubelet-port", type=int, default=0, help="serve container logs here (0: off)")
    p.add_argument("--pki-dir", type=Path, help="the bed's pki (CA, serving cert) for the log API")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    network = BedNetwork(args.bed_index)
    agent = NodeAgent(
        KubeApi.from_kubeconfig(args.kubeconfig), args.node_name, network, args.state_dir, args.venv_bin, args.bin_dir
    )

    def on_term(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping pods", signum)
        agent.shutdown()
        sys.exit(0)

    if args.kubelet_port and args.pki_dir:
        agent.serve_logs(args.kubelet_port, args.pki_dir)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    log.info("node %s on %s (pods %s)", args.node_name, network.bridge, network.pod_cidr)
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
