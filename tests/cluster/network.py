"""The test bed's network: one Linux bridge per bed, one network namespace per pod.

A bed owns 198.18.<index>.0/24 for pods (the bridge holds .1, the host side) and
198.19.<index>.0/24 for Service cluster IPs; both lie inside 198.18.0.0/15, the range set
aside for benchmarks and test networks, so nothing here can reach another address.
Several beds can run at once on one machine: each holds a lock on its index.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

MAX_BEDS = 64
LOCK_DIR = Path(os.environ.get("MODELSHIP_BED_LOCK_DIR", "/tmp"))


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


@dataclass(frozen=True)
class BedNetwork:
    index: int

    @property
    def bridge(self) -> str:
        return f"msbr{self.index}"

    @property
    def pod_cidr(self) -> str:
        return f"198.18.{self.index}.0/24"

    @property
    def service_cidr(self) -> str:
        return f"198.19.{self.index}.0/24"

    @property
    def gateway(self) -> str:
        return f"198.18.{self.index}.1"

    @property
    def netns_prefix(self) -> str:
        return f"ms{self.index}-"

    def pod_ips(self) -> list[str]:
        net = ipaddress.ip_network(self.pod_cidr)
        return [str(h) for h in list(net.hosts())[1:]]

    def ensure_bridge(self) -> None:
        if ip("link", "show", self.bridge, check=False).returncode != 0:
            ip("link", "add", self.bridge, "type", "bridge")
        addrs = ip("-o", "addr", "show", "dev", self.bridge).stdout
        if f"{self.gateway}/24" not in addrs:
            ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def teardown(self) -> None:
        """Remove every namespace of this bed and its bridge."""
        for ns in ip("netns", "list", check=False).stdout.split("\n"):
            name = ns.split(" ")[0].strip()
            if name.startswith(self.netns_prefix):
                ip("netns", "delete", name, check=False)
        ip("link", "delete", self.bridge, check=False)

    # --- pods ---------------------------------------------------------------------------
    def create_pod_netns(self, ns: str, host_veth: str, pod_ip: str) -> None:
        """A namespace with lo and eth0 (pod_ip/24), default route via the bridge."""
        if ip("netns", "exec", ns, "true", check=False).returncode == 0:
            ip("netns", "delete", ns, check=False)
        ip("link", "delete", host_veth, check=False)
        ip("netns", "add", ns)
        ip("link", "add", host_veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("link", "set", host_veth, "master", self.bridge)
        ip("link", "set", host_veth, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "addr", "add", f"{pod_ip}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "route", "add", "default", "via", self.gateway)

    def delete_pod_netns(self, ns: str, host_veth: str) -> None:
        ip("netns", "delete", ns, check=False)
        ip("link", "delete", host_veth, check=False)


class BedLock:
    """Holds the lock of one bed index for the life of the process that owns the bed."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self.index = -1

    def acquire(self, wanted: int | None = None) -> int:
        candidates = [wanted] if wanted is not None else list(range(MAX_BEDS))
        for index in candidates:
            fd = os.open(LOCK_DIR / f"modelship-bed-{index}.lock", os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._fd, self.index = fd, index
            return index
        raise RuntimeError(f"no free test-bed index in {candidates}: other beds hold the locks in {LOCK_DIR}")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
