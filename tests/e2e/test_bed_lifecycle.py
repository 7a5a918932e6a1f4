"""Beds side by side, and what a killed one leaves: a later bed of its index cleans it, and
``bed down`` removes every namespace, link, route and process of it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.kubeapi import KubeApi
from tests.cluster.network import MAX_BEDS, BedLock, BedNetwork, host_nft_tables
from tests.conftest import wait

REPO = Path(__file__).resolve().parents[2]


def bed_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.cluster.bed", *args]


def up(state: Path, index: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """`bed up --json` in the background; the JSON it prints once ready."""
    log = open(state.parent / f"{state.name}.up.log", "w")  # noqa: SIM115 - the child writes it until killed
    proc = subprocess.Popen(
        bed_cli("up", "--state-dir", str(state), "--index", str(index), "--json"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the bed's own start-up waits are bounded; it prints or exits
    if not line:
        proc.wait(30)
        raise AssertionError(f"bed up exited {proc.returncode}:\n{Path(log.name).read_text()[-3000:]}")
    return proc, json.loads(line)


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_a_killed_bed_is_cleaned_by_the_next_of_its_index_and_by_bed_down(bed, tmp_path: Path) -> None:
    if not bed.local:
        pytest.fail("this test starts beds of its own; it has no meaning on an external cluster")
    index = next(i for i in range(MAX_BEDS) if BedLock.holder(i) is None)
    net = BedNetwork(index)

    # A second bed beside the session's: its own node, API server, rules and Gateway.
    first, info = up(tmp_path / "first", index)
    assert info["index"] == index != bed.network.index
    assert info["nodeNetns"] == net.node_netns and info["apiServer"] == f"https://{net.node_ip}:6443"
    api = KubeApi.from_kubeconfig(info["kubeconfig"])
    assert api.text("/readyz") == "ok"
    nodes = [n["metadata"]["name"] for n in api.get("/api/v1/nodes")["items"]]
    assert nodes == [info["nodeName"]]
    api.close()
    tables = subprocess.run(
        ["ip", "netns", "exec", info["nodeNetns"], "nft", "list", "tables"], capture_output=True, text=True, check=True
    ).stdout
    assert "table ip kube-proxy" in tables
    assert not [t for t in host_nft_tables() if "kube" in t]  # the machine's own tables stay the machine's
    apiserver_pid = int((tmp_path / "first" / "logs" / "kube-apiserver.pid").read_text())

    # SIGKILL: nothing of the bed stops by itself.
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    assert alive(apiserver_pid)
    assert f"network namespace {net.node_netns}" in net.leftovers()

    # A bed started later on that index takes over: what the dead one left is gone, it runs.
    second, info2 = up(tmp_path / "second", index)
    assert not alive(apiserver_pid)
    assert info2["index"] == index
    api = KubeApi.from_kubeconfig(info2["kubeconfig"])
    assert api.text("/readyz") == "ok"
    api.close()

    # SIGKILL again, and `bed down` cleans up after the dead `up`.
    os.killpg(second.pid, signal.SIGKILL)
    second.wait(10)
    assert net.leftovers()
    out = subprocess.run(
        bed_cli("down", "--state-dir", str(tmp_path / "second")),
        cwd=REPO,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert f"removed network namespace {net.node_netns}" in out.stdout
    assert net.leftovers() == []
    wait(lambda: not processes_mentioning(str(tmp_path / "second")), 10, "every process of the bed gone")
    assert not processes_mentioning(str(tmp_path / "first"))
    routes = subprocess.run(["ip", "route", "show"], capture_output=True, text=True, check=True).stdout
    assert net.pod_cidr not in routes and net.service_cidr not in routes

    # `down` of a state dir whose bed is gone and cleaned says so and changes nothing.
    again = subprocess.run(
        bed_cli("down", "--state-dir", str(tmp_path / "first")),
        cwd=REPO,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    assert net.leftovers() == []

    # The session's bed never noticed.
    bed.check_alive()
    assert bed.api.text("/readyz") == "ok"
