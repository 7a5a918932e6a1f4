"""The whole test bed: node network, control plane, node agent and add-ons, as one.

Used by the pytest fixture (tests/conftest.py), by the demo, and by hand:

    python -m tests.cluster.bed up --state-dir DIR [--json]   # start; wait for Ctrl-C or SIGTERM
    python -m tests.cluster.bed down --state-dir DIR          # stop it, also after `up` was SIGKILLed
    python -m tests.cluster.bed leftovers [--index N]         # what of a bed is still on the machine
    python -m tests.cluster.bed build                         # build (or find) the binaries

``up`` writes ``DIR/bed.json`` (what a script needs: index, addresses, kubeconfig, kubectl,
the Gateway) and ``--json`` prints it once the bed is ready. Every process of a bed runs in
one of its network namespaces, so ``down`` (and the next bed of the same index) finds and
stops whatever a killed bed left by those namespaces.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from tests.cluster import addons, kwok
from tests.cluster.controlplane import API_PORT, KUBELET_PORT, ControlPlane
from tests.cluster.kubeapi import KubeApi
from tests.cluster.mountpoints import MOUNT_POINTS
from tests.cluster.network import BedLock, BedNetwork, host_nft_tables
from tests.cluster.processes import Process, wait_for

REPO = Path(__file__).resolve().parents[2]
NODE_NAME = "bed-node-0"
INFO_FILE = "bed.json"


def build_binaries() -> Path:
    """Run build.sh (a no-op when the cache is warm) and return the bin directory."""
    out = subprocess.run(
        ["bash", str(REPO / "tests" / "cluster" / "build.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def _yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


class Bed:
    local = True

    def __init__(
        self,
        state_dir: Path,
        bin_dir: Path | None = None,
        index: int | None = None,
        audit_users: tuple[str, ...] = (),
        kwok_nodes: int = 0,
        kwok_taint: bool = True,
    ):
        """``kwok_nodes`` fake nodes run by kwok besides the real one (none by default: the e2e
        suite runs real pods only); see :mod:`tests.cluster.kwok` for ``kwok_taint``."""
        self.state_dir = state_dir
        self.audit_users = audit_users
        self.kwok_nodes = kwok_nodes
        self.kwok_taint = kwok_taint
        self.kwok: Process | None = None
        self.bin_dir = bin_dir
        self.wanted_index = index
        self.lock = BedLock()
        self.network: BedNetwork | None = None
        self.control_plane: ControlPlane | None = None
        self.agent: Process | None = None
        self.provisioner: Process | None = None
        self.api: KubeApi | None = None
        self.versions: dict[str, str] = {}

    @property
    def kubeconfig(self) -> Path:
        assert self.control_plane is not None
        return self.control_plane.kubeconfig

    @property
    def host_address(self) -> str:
        """Where a process on the host listens so that pods reach it: the host end of the uplink."""
        assert self.network is not None
        return self.network.host_ip

    @property
    def gateway_address(self) -> str:
        assert self.network is not None
        return addons.gateway_ip(self.network)

    @property
    def processes(self) -> list[Process]:
        own = [p for p in (self.agent, self.provisioner, self.kwok) if p]
        return [*(self.control_plane.processes if self.control_plane else []), *own]

    def start(self) -> Bed:
        if os.geteuid() != 0:
            raise RuntimeError("the test bed needs root: it creates network namespaces and bind mounts")
        for tool, package in (("ip", "iproute2"), ("nsenter", "util-linux"), ("nft", "nftables")):
            if shutil.which(tool) is None:
                raise RuntimeError(f"the test bed needs `{tool}` (apt-get install -y {package}; scripts/setup.sh does)")
        bin_dir = self.bin_dir = self.bin_dir or build_binaries()
        self.versions = json.loads((bin_dir.parent / "versions.json").read_text())
        wanted = self.wanted_index
        if wanted is None and "MODELSHIP_BED_INDEX" in os.environ:
            wanted = int(os.environ["MODELSHIP_BED_INDEX"])
        index = self.lock.acquire(wanted)
        self.network = BedNetwork(index)
        self.network.teardown()  # leftovers of a bed of this index that was killed
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        self.state_dir.mkdir(parents=True)
        self._write_info(ready=False)
        try:
            self.network.setup()
            self.control_plane = ControlPlane(
                bin_dir,
                self.state_dir,
                self.network,
                secrets.token_hex(24),
                node_name=NODE_NAME,
                audit_users=self.audit_users,
            )
            self.control_plane.start()
            self.api = KubeApi.from_kubeconfig(self.kubeconfig)
            self.agent = Process(
                "node-agent",
                [
                    sys.executable,
                    "-m",
                    "tests.cluster.node_agent",
                    f"--kubeconfig={self.kubeconfig}",
                    f"--node-name={NODE_NAME}",
                    f"--bed-index={index}",
                    f"--state-dir={self.state_dir}",
                    f"--kubelet-port={KUBELET_PORT}",
                    f"--pki-dir={self.state_dir / 'pki'}",
                    f"--bin-dir={bin_dir}",
                ],
                self.state_dir / "logs",
                env={**os.environ, "PYTHONPATH": str(REPO)},
                wrap=self.network.in_node,
            ).start()
            wait_for(self._node_ready, 60, f"node {NODE_NAME} Ready", interval=0.5, processes=self.processes)
            self.control_plane.start_kube_proxy()
            self.provisioner = Process(
                "provisioner",
                [
                    sys.executable,
                    "-m",
                    "tests.cluster.provisioner",
                    f"--kubeconfig={self.kubeconfig}",
                    f"--root={self.state_dir / 'volumes'}",
                    f"--node-name={NODE_NAME}",
                ],
                self.state_dir / "logs",
                env={**os.environ, "PYTHONPATH": str(REPO)},
                wrap=self.network.in_node,
            ).start()
            wait_for(
                lambda: self.api.exists("/api/v1/namespaces/default/serviceaccounts/default"),
                60,
                "the default service account",
                interval=0.5,
                processes=self.processes,
            )
            self._install_addons()
            if self.kwok_nodes:
                self._start_kwok()
            self._write_info(ready=True)
        except BaseException:
            self.stop()
            raise
        return self

    def _node_ready(self) -> bool:
        assert self.api is not None
        node = self.api.get(f"/api/v1/nodes/{NODE_NAME}")
        ready = [c for c in node.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        taints = [t for t in node.get("spec", {}).get("taints") or [] if t["key"].startswith("node.kubernetes.io/")]
        return bool(ready) and ready[0]["status"] == "True" and not taints

    def _start_kwok(self) -> None:
        assert self.api is not None and self.network is not None
        self.kwok = kwok.start(kwok.build(), self.kubeconfig, self.network, self.state_dir / "logs")
        for i in range(self.kwok_nodes):
            self.api.apply(
                f"/api/v1/nodes/{kwok.node_name(i)}", kwok.node(i, taint=self.kwok_taint), manager="modelship-testbed"
            )
        wait_for(
            lambda: (
                len(kwok.ready_nodes(self.api.get("/api/v1/nodes", labelSelector=kwok.SELECTOR)["items"]))
                == self.kwok_nodes
            ),
            60,
            f"{self.kwok_nodes} kwok nodes Ready",
            interval=0.5,
            processes=self.processes,
        )

    # --- add-ons ------------------------------------------------------------------------
    def _apply(self, objects: list[dict[str, Any]]) -> None:
        assert self.api is not None
        for obj in objects:
            self.api.apply(addons.object_path(obj), obj, manager="modelship-testbed")

    def _install_addons(self) -> None:
        """Gateway API and Traefik CRDs, CoreDNS, Traefik with the bed's Gateway, the StorageClass."""
        assert self.api is not None and self.network is not None and self.bin_dir is not None
        manifests = self.bin_dir.parent / "manifests"
        crds = _yaml_documents(manifests / "gateway-api-standard.yaml") + _yaml_documents(
            manifests / "traefik-crds.yaml"
        )
        self._apply(crds)
        self._apply([addons.storage_class()])
        self._apply(addons.coredns(self.network, self.versions))
        wait_for(
            lambda: all(self._established(c["metadata"]["name"]) for c in crds),
            60,
            "the Gateway API and Traefik CRDs Established",
            interval=0.5,
            processes=self.processes,
        )
        self._apply(addons.traefik(self.network, self.versions) + addons.gateway())
        wait_for(
            lambda: self._deployment_ready(addons.DNS_NAMESPACE, "coredns"),
            120,
            "CoreDNS Ready",
            interval=0.5,
            processes=self.processes,
        )
        wait_for(
            lambda: self._deployment_ready(addons.GATEWAY_NAMESPACE, "traefik"),
            120,
            "Traefik Ready",
            interval=0.5,
            processes=self.processes,
        )
        wait_for(
            self._gateway_programmed,
            120,
            f"Gateway {addons.GATEWAY_NAMESPACE}/{addons.GATEWAY_NAME} Programmed",
            interval=0.5,
            processes=self.processes,
        )

    def _established(self, crd: str) -> bool:
        assert self.api is not None
        obj = self.api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
        return any(
            c["type"] == "Established" and c["status"] == "True" for c in obj.get("status", {}).get("conditions") or []
        )

    def _deployment_ready(self, namespace: str, name: str) -> bool:
        assert self.api is not None
        dep = self.api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        return bool(dep.get("status", {}).get("readyReplicas"))

    def _gateway_programmed(self) -> bool:
        assert self.api is not None
        gw = self.api.get(
            f"/apis/gateway.networking.k8s.io/v1/namespaces/{addons.GATEWAY_NAMESPACE}/gateways/{addons.GATEWAY_NAME}"
        )
        conds = {c["type"]: c["status"] for c in gw.get("status", {}).get("conditions") or []}
        return conds.get("Programmed") == "True" and bool(gw["status"].get("addresses"))

    # --- what a script needs ------------------------------------------------------------
    def info(self, ready: bool = True) -> dict[str, Any]:
        assert self.network is not None
        net = self.network
        info: dict[str, Any] = {
            "ready": ready,
            "index": net.index,
            "pid": os.getpid(),
            "stateDir": str(self.state_dir),
            "kubeconfig": str(self.state_dir / "kubeconfig"),
            "apiServer": f"https://{net.node_ip}:{API_PORT}",
            "kubectl": str(self.bin_dir / "kubectl") if self.bin_dir else None,
            "binDir": str(self.bin_dir or ""),
            "nodeName": NODE_NAME,
            "nodeNetns": net.node_netns,
            "nodeIP": net.node_ip,
            "hostIP": net.host_ip,
            "podCIDR": net.pod_cidr,
            "serviceCIDR": net.service_cidr,
            "dnsIP": net.dns_service_ip,
            "gateway": {
                "namespace": addons.GATEWAY_NAMESPACE,
                "name": addons.GATEWAY_NAME,
                "className": addons.GATEWAY_CLASS,
                "address": addons.gateway_ip(net),
                "port": addons.GATEWAY_HTTP_PORT,
            },
            "storageClass": addons.STORAGE_CLASS,
            "kwokNodes": [kwok.node_name(i) for i in range(self.kwok_nodes)],
            "versions": self.versions,
        }
        return info

    def _write_info(self, ready: bool) -> None:
        path = self.state_dir / INFO_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info(ready), indent=2) + "\n")
        os.replace(tmp, path)

    def check_alive(self) -> None:
        if self.control_plane:
            self.control_plane.check_alive()
        for p in (self.agent, self.provisioner, self.kwok):
            if p and not p.alive():
                raise RuntimeError(f"the bed's {p.name} exited:\n{p.tail()}")

    def pod_log(self, namespace: str, pod: str, container: str) -> str:
        matches = sorted((self.state_dir / "pods").glob(f"{namespace}_{pod}_*/{container}.log"))
        return matches[-1].read_text(errors="replace") if matches else ""

    def stop(self) -> None:
        if self.kwok:
            self.kwok.stop()
        if self.agent:
            self.agent.stop(grace=30)
        if self.provisioner:
            self.provisioner.stop()
        if self.control_plane:
            self.control_plane.stop()
        if self.api:
            self.api.close()
        if self.network:
            self.network.teardown()
        MOUNT_POINTS.prune()
        self.lock.release()


class ExternalBed:
    """A cluster someone else runs (kind, say), named by MODELSHIP_KUBECONFIG.

    Its Gateway is named by MODELSHIP_GATEWAY_ADDRESS (host:port reachable from the tests).
    """

    local = False

    def __init__(self, kubeconfig: Path):
        self.kubeconfig = kubeconfig
        self.api = KubeApi.from_kubeconfig(kubeconfig)
        self.state_dir = kubeconfig.parent
        self.host_address = "127.0.0.1"
        self.gateway_address = os.environ.get("MODELSHIP_GATEWAY_ADDRESS", "")

    def start(self) -> ExternalBed:
        return self

    def check_alive(self) -> None:
        self.api.get("/readyz")

    def pod_log(self, namespace: str, pod: str, container: str) -> str:
        return self.api.text(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", container=container)

    def stop(self) -> None:
        self.api.close()


def down(state_dir: Path, timeout: float = 60.0) -> list[str]:
    """Stop the bed that ``up`` started in state_dir and remove all of it; returns what was done."""
    info_path = state_dir / INFO_FILE
    if not info_path.exists():
        raise SystemExit(f"{info_path} does not exist: no bed was started with --state-dir {state_dir}")
    info = json.loads(info_path.read_text())
    index, pid = int(info["index"]), int(info["pid"])
    done = []
    holder = BedLock.holder(index)
    if holder is not None and holder != pid:
        raise SystemExit(
            f"bed index {index} now belongs to another bed (pid {holder}); the bed of "
            f"{state_dir} is gone and that bed cleaned what it left"
        )
    if holder == pid:
        os.kill(pid, signal.SIGTERM)
        done.append(f"sent SIGTERM to bed up (pid {pid})")
        deadline = time.monotonic() + timeout
        while BedLock.holder(index) == pid and time.monotonic() < deadline:
            time.sleep(0.2)
        if BedLock.holder(index) == pid:
            os.kill(pid, signal.SIGKILL)
            done.append(f"sent SIGKILL to bed up (pid {pid}) after {timeout:.0f}s")
            time.sleep(0.5)
    lock = BedLock()
    lock.acquire(index)
    try:
        network = BedNetwork(index)
        left = network.leftovers()
        network.teardown()
        MOUNT_POINTS.prune()
        done += [f"removed {item}" for item in left]
        remaining = network.leftovers()
        if remaining:
            raise SystemExit(f"could not remove: {remaining}")
    finally:
        lock.release()
    return done


def leftovers(index: int | None = None) -> list[str]:
    """What beds (one index, or all not running) left on the machine, and any nft table in its own namespace."""
    indices = [index] if index is not None else [i for i in range(64) if BedLock.holder(i) is None]
    found = [item for i in indices for item in BedNetwork(i).leftovers()]
    found += [f"nft {t} in the machine's own namespace" for t in host_nft_tables() if "kube" in t]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "build", "leftovers"])
    parser.add_argument("--state-dir", type=Path, default=REPO / ".testbed")
    parser.add_argument("--index", type=int, help="the bed index to take (default: the first free one)")
    parser.add_argument("--json", action="store_true", help="up: print bed.json on one line once ready")
    parser.add_argument("--kwok-nodes", type=int, default=0, help="up: this many fake nodes run by kwok (default 0)")
    args = parser.parse_args(argv)
    if args.action == "build":
        print(build_binaries())
        if args.kwok_nodes:
            print(kwok.build())
        return 0
    if args.action == "down":
        for line in down(args.state_dir.resolve()):
            print(line)
        return 0
    if args.action == "leftovers":
        found = leftovers(args.index)
        for item in found:
            print(item)
        return 1 if found else 0
    # SIGTERM (a CI runner, `kill`, `bed down`) stops everything as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    bed = Bed(args.state_dir.resolve(), index=args.index, kwok_nodes=args.kwok_nodes)
    try:
        bed.start()
        if args.json:
            print(json.dumps(bed.info()), flush=True)
        else:
            print(
                f"test bed {bed.info()['index']} up: export KUBECONFIG={bed.kubeconfig}; "
                f"kubectl is {bed.bin_dir}/kubectl; Gateway at http://{bed.gateway_address}/",
                flush=True,
            )
        while True:
            bed.check_alive()
            time.sleep(2)
    except KeyboardInterrupt:
        pass
    finally:
        bed.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
