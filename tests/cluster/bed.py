"""The whole test bed: network, control plane and node agent, started and stopped as one.

Used by the pytest fixture (tests/conftest.py) and by the demo:

    python -m tests.cluster.bed up      # start, print the kubeconfig path, wait for Ctrl-C
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cluster.controlplane import API_PORT, ControlPlane
from tests.cluster.kubeapi import KubeApi
from tests.cluster.network import BedLock, BedNetwork
from tests.cluster.processes import Process, wait_for
from tests.local_servers import free_port

REPO = Path(__file__).resolve().parents[2]
NODE_NAME = "bed-node-0"


def build_binaries() -> Path:
    """Run build.sh (a no-op when the cache is warm) and return the bin directory."""
    out = subprocess.run(["bash", str(REPO / "tests" / "cluster" / "build.sh")], check=True,
                         stdout=subprocess.PIPE, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


class Bed:
    local = True

    def __init__(self, state_dir: Path, bin_dir: Path | None = None):
        self.state_dir = state_dir
        self.bin_dir = bin_dir
        self.lock = BedLock()
        self.network: BedNetwork | None = None
        self.control_plane: ControlPlane | None = None
        self.agent: Process | None = None
        self.api: KubeApi | None = None

    @property
    def kubeconfig(self) -> Path:
        assert self.control_plane is not None
        return self.control_plane.kubeconfig

    def start(self) -> Bed:
        if os.geteuid() != 0:
            raise RuntimeError("the test bed needs root: it creates network namespaces and bind mounts")
        if shutil.which("ip") is None:
            raise RuntimeError("the test bed needs iproute2's `ip` (apt-get install -y iproute2)")
        bin_dir = self.bin_dir or build_binaries()
        index = self.lock.acquire(int(os.environ["MODELSHIP_BED_INDEX"]) if "MODELSHIP_BED_INDEX" in os.environ else None)
        self.network = BedNetwork(index)
        self.network.teardown()  # leftovers of a bed of this index that was killed
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        self.state_dir.mkdir(parents=True)
        self.network.ensure_bridge()
        self.control_plane = ControlPlane(bin_dir, self.state_dir, self.network, secrets.token_hex(24))
        try:
            self.control_plane.start()
            self.api = KubeApi.from_kubeconfig(self.kubeconfig)
            self.agent = Process("node-agent", [
                sys.executable, "-m", "tests.cluster.node_agent", f"--kubeconfig={self.kubeconfig}",
                f"--node-name={NODE_NAME}", f"--bed-index={index}", f"--state-dir={self.state_dir}",
                f"--api-port={API_PORT}", f"--kubelet-port={free_port(self.network.gateway)}",
                f"--pki-dir={self.state_dir / 'pki'}",
            ], self.state_dir / "logs", env={**os.environ, "PYTHONPATH": str(REPO)}).start()
            wait_for(self._node_ready, 60, f"node {NODE_NAME} Ready", interval=0.5,
                     processes=[*self.control_plane.processes, self.agent])
            wait_for(lambda: self.api.exists("/api/v1/namespaces/default/serviceaccounts/default"), 60,
                     "the default service account", interval=0.5, processes=self.control_plane.processes)
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

    def check_alive(self) -> None:
        if self.control_plane:
            self.control_plane.check_alive()
        if self.agent and not self.agent.alive():
            raise RuntimeError(f"the node agent exited:\n{self.agent.tail()}")

    def pod_log(self, namespace: str, pod: str, container: str) -> str:
        matches = sorted((self.state_dir / "pods").glob(f"{namespace}_{pod}_*/{container}.log"))
        return matches[-1].read_text(errors="replace") if matches else ""

    def stop(self) -> None:
        if self.agent:
            self.agent.stop(grace=30)
        if self.control_plane:
            self.control_plane.stop()
        if self.api:
            self.api.close()
        if self.network:
            self.network.teardown()
        self.lock.release()


class ExternalBed:
    """A cluster someone else runs (kind, say), named by MODELSHIP_KUBECONFIG."""

    local = False

    def __init__(self, kubeconfig: Path):
        self.kubeconfig = kubeconfig
        self.api = KubeApi.from_kubeconfig(kubeconfig)
        self.state_dir = kubeconfig.parent

    def start(self) -> ExternalBed:
        return self

    def check_alive(self) -> None:
        self.api.get("/readyz")

    def pod_log(self, namespace: str, pod: str, container: str) -> str:
        return self.api.text(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", container=container)

    def stop(self) -> None:
        self.api.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start the Modelship test bed and keep it running.")
    parser.add_argument("action", choices=["up", "build"])
    parser.add_argument("--state-dir", type=Path, default=REPO / ".testbed")
    args = parser.parse_args(argv)
    if args.action == "build":
        print(build_binaries())
        return 0
    # SIGTERM (a CI runner, `kill`) stops everything as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    bed = Bed(args.state_dir).start()
    print(f"test bed up: export KUBECONFIG={bed.kubeconfig}", flush=True)
    try:
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
