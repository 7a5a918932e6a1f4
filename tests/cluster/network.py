"""The test bed's network: a node of its own, with a bridge and one namespace per pod.

As kind makes each node a container, a bed's node is a network namespace, ``ms<N>-node``:
the bridge ``msbr<N>``, the pods' veths and every rule kube-proxy installs live there,
never in the machine's own namespace. The host reaches the node through one veth pair
(``ms<N>-host`` on the host, ``eth0`` in the node) with routes for the bed's pod and
service ranges only.

The node has no default route (nothing leaves the bed). In its place the service range is
routed into ``ms<N>-sink``, a namespace that forwards nothing and so drops, without a word,
what reaches it. A packet to a ClusterIP that kube-proxy has not translated thus passes the
node's forward hook as on a real node, whose default route leads away: kube-proxy's rules
refuse a Service with no endpoints (ECONNREFUSED), and a ClusterIP not programmed yet loses
the SYN, which the client sends again. Without the route the node answered "network
unreachable" (ENETUNREACH), which no cluster does. (The kernel here has no dummy links.)

Addresses, all inside 198.18.0.0/15 (set aside for test networks):

    pods      198.18.N.0/24     the bridge holds .1: the node's InternalIP, where the API
                                server, the kubelet API and kube-proxy listen
    services  198.19.N.0/24     .1 is ``kubernetes``, .10 is ``kube-dns``
    uplink    198.19.255.4N/30  .4N+1 on the host, .4N+2 in the node
    sink      198.18.64.4N/30   .4N+1 in the node (``services``), .4N+2 in ``ms<N>-sink``

Several beds run at once on one machine: each holds a lock on its index, and every
object it makes (namespaces, links, routes) carries the index in its name, so
``teardown`` can remove what a killed bed of that index left.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

MAX_BEDS = 64
LOCK_DIR = Path(os.environ.get("MODELSHIP_BED_LOCK_DIR", "/tmp"))


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["ip", *args], check=False, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip() or res.stdout.strip()}")
    return res


@dataclass(frozen=True)
class BedNetwork:
    index: int

    # --- names --------------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        """Every network namespace of this bed starts with it (node and pods)."""
        return f"ms{self.index}-"

    @property
    def node_netns(self) -> str:
        return f"{self.prefix}node"

    @property
    def sink_netns(self) -> str:
        return f"{self.prefix}sink"

    @property
    def bridge(self) -> str:
        return f"msbr{self.index}"

    @property
    def host_link(self) -> str:
        return f"{self.prefix}host"

    # --- addresses ----------------------------------------------------------------------
    @property
    def pod_cidr(self) -> str:
        return f"198.18.{self.index}.0/24"

    @property
    def service_cidr(self) -> str:
        return f"198.19.{self.index}.0/24"

    @property
    def node_ip(self) -> str:
        """The bridge's address in the node: pods' gateway, the Node's InternalIP."""
        return f"198.18.{self.index}.1"

    @property
    def host_ip(self) -> str:
        """The host's end of the uplink: where host processes listen for pods to reach them."""
        return f"198.19.255.{4 * self.index + 1}"

    @property
    def uplink_node_ip(self) -> str:
        return f"198.19.255.{4 * self.index + 2}"

    @property
    def sink_node_ip(self) -> str:
        return f"198.18.64.{4 * self.index + 1}"

    @property
    def sink_ip(self) -> str:
        return f"198.18.64.{4 * self.index + 2}"

    @property
    def kubernetes_service_ip(self) -> str:
        return f"198.19.{self.index}.1"

    @property
    def dns_service_ip(self) -> str:
        return f"198.19.{self.index}.10"

    def pod_ips(self) -> list[str]:
        net = ipaddress.ip_network(self.pod_cidr)
        return [str(h) for h in list(net.hosts())[1:]]

    def in_node(self, argv: list[str]) -> list[str]:
        """argv run in the node's network namespace (only the network: mounts stay the host's)."""
        return ["nsenter", f"--net=/run/netns/{self.node_netns}", "--", *argv]

    # --- the node -----------------------------------------------------------------------
    def setup(self) -> None:
        """The node namespace, its bridge, the uplink to the host and the host's two routes."""
        if not 0 <= self.index < MAX_BEDS:
            raise ValueError(f"bed index {self.index} is outside 0..{MAX_BEDS - 1}")
        node = self.node_netns
        ip("netns", "add", node)
        ip("-n", node, "link", "set", "lo", "up")
        self._sysctl("net.ipv4.ip_forward", "1")
        # Bridged pod-to-pod replies must pass the node's netfilter hooks, so that the
        # conntrack entry of a Service connection sees them (the kernel's per-namespace default).
        self._sysctl("net.bridge.bridge-nf-call-iptables", "1")
        ip("-n", node, "link", "add", self.bridge, "type", "bridge")
        ip("-n", node, "addr", "add", f"{self.node_ip}/24", "dev", self.bridge)
        ip("-n", node, "link", "set", self.bridge, "up")
        ip("link", "add", self.host_link, "type", "veth", "peer", "name", "eth0", "netns", node)
        ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_link)
        ip("link", "set", self.host_link, "up")
        ip("-n", node, "addr", "add", f"{self.uplink_node_ip}/30", "dev", "eth0")
        ip("-n", node, "link", "set", "eth0", "up")
        self._sink()
        for cidr in (self.pod_cidr, self.service_cidr):
            ip("route", "add", cidr, "via", self.uplink_node_ip, "dev", self.host_link)

    def _sink(self) -> None:
        """The service range's route out of the node, into a namespace that drops it (a new
        namespace does not forward, and a packet it does not forward gets no ICMP answer)."""
        sink, node = self.sink_netns, self.node_netns
        ip("netns", "add", sink)
        ip("-n", node, "link", "add", "services", "type", "veth", "peer", "name", "eth0", "netns", sink)
        ip("-n", node, "addr", "add", f"{self.sink_node_ip}/30", "dev", "services")
        ip("-n", node, "link", "set", "services", "up")
        ip("-n", sink, "addr", "add", f"{self.sink_ip}/30", "dev", "eth0")
        ip("-n", sink, "link", "set", "eth0", "up")
        ip("-n", node, "route", "add", self.service_cidr, "via", self.sink_ip, "dev", "services")

    def _sysctl(self, key: str, value: str) -> None:
        path = "/proc/sys/" + key.replace(".", "/")
        subprocess.run(self.in_node(["sh", "-c", f"echo {value} > {path}"]), check=True, capture_output=True)

    def namespaces(self) -> list[str]:
        out = ip("netns", "list", check=False).stdout
        names = [line.split(" ")[0].strip() for line in out.splitlines()]
        return [n for n in names if n.startswith(self.prefix)]

    def teardown(self) -> None:
        """Remove every process, namespace, link and route of this bed index.

        Safe after a crash: a process left in one of the bed's namespaces is killed first,
        since a namespace lives on (addresses and all) while a process is in it.
        """
        namespaces = self.namespaces()
        for _ in range(3):
            pids = [pid for ns in namespaces for pid in _netns_pids(ns)]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        # Pods first: their veths are ends of links into the node.
        for ns in sorted(namespaces, key=lambda n: n == self.node_netns):
            ip("netns", "delete", ns, check=False)
        ip("link", "delete", self.host_link, check=False)
        ip("link", "delete", self.bridge, check=False)  # a bed of the old layout kept it here

    def leftovers(self) -> list[str]:
        """What of this bed index is still on the machine (empty once torn down)."""
        found = [f"network namespace {ns}" for ns in self.namespaces()]
        links = ip("-o", "link", "show", check=False).stdout
        for line in links.splitlines():
            name = line.split(":", 2)[1].strip().split("@")[0] if ":" in line else ""
            if name in (self.host_link, self.bridge) or name.startswith(f"v{self.index}-"):
                found.append(f"link {name}")
        routes = ip("route", "show", check=False).stdout
        for line in routes.splitlines():
            if line.startswith((self.pod_cidr, self.service_cidr)) or self.host_link in line:
                found.append(f"route {line.strip()}")
        return found

    # --- pods (run by the node agent, inside the node namespace) ------------------------
    def create_pod_netns(self, ns: str, host_veth: str, pod_ip: str) -> None:
        """A namespace with lo and eth0 (pod_ip/24), default route via the node's bridge."""
        node = self.node_netns
        if ip("netns", "exec", ns, "true", check=False).returncode == 0:
            ip("netns", "delete", ns, check=False)
        ip("-n", node, "link", "delete", host_veth, check=False)
        ip("netns", "add", ns)
        ip("-n", node, "link", "add", host_veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("-n", node, "link", "set", host_veth, "master", self.bridge)
        ip("-n", node, "link", "set", host_veth, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "addr", "add", f"{pod_ip}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "route", "add", "default", "via", self.node_ip)

    def delete_pod_netns(self, ns: str, host_veth: str) -> None:
        ip("netns", "delete", ns, check=False)
        ip("-n", self.node_netns, "link", "delete", host_veth, check=False)


def _netns_pids(ns: str) -> list[int]:
    out = ip("netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit() and int(p) != os.getpid()]


def host_nft_tables() -> list[str]:
    """The machine's own nftables tables (the bed must never add one)."""
    res = subprocess.run(["nft", "list", "tables"], check=False, capture_output=True, text=True)
    return [line.strip() for line in res.stdout.splitlines() if line.strip()]


class BedLock:
    """Holds the lock of one bed index for the life of the process that owns the bed.

    The lock file also names the owner's pid, so ``bed down`` can tell a dead bed's index
    from one a later bed has taken.
    """

    def __init__(self) -> None:
        self._fd: int | None = None
        self.index = -1

    @staticmethod
    def path(index: int) -> Path:
        return LOCK_DIR / f"modelship-bed-{index}.lock"

    def acquire(self, wanted: int | None = None) -> int:
        candidates = [wanted] if wanted is not None else list(range(MAX_BEDS))
        for index in candidates:
            fd = os.open(self.path(index), os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd, self.index = fd, index
            return index
        raise RuntimeError(f"no free test-bed index in {candidates}: other beds hold the locks in {LOCK_DIR}")

    @classmethod
    def holder(cls, index: int) -> int | None:
        """The pid of the live process holding index's lock, or None when it is free."""
        try:
            fd = os.open(cls.path(index), os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = Path(cls.path(index)).read_text().strip()
            return int(text) if text.isdigit() else -1
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
