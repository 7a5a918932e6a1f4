"""One pod on the node: its network namespace, volumes, containers, probes and status.

A ``PodRuntime`` is driven by ``step()`` from the agent's worker thread: each call looks
at the processes, starts or restarts what is due, runs the probes that are due, and
returns the pod status to report. Nothing here watches the API; the agent does that.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cluster import podspec, volumes
from tests.cluster.mountpoints import MOUNT_POINTS
from tests.cluster.network import BedNetwork

LAUNCHER = str(Path(__file__).with_name("launch.py"))
# The checkout the bed runs from: the project image's files (podspec.PROJECT_IMAGE_FILES) are its directories.
REPOSITORY = Path(__file__).resolve().parents[2]


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ProbeState:
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0


@dataclass
class Container:
    spec: dict[str, Any]
    role: str  # init | sidecar | main
    popen: subprocess.Popen[bytes] | None = None
    state: str = "waiting"
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    term_reason: str = ""
    restarts: int = 0
    last_terminated: dict[str, Any] | None = None
    ready: bool = False
    started: bool = False
    next_start: float = 0.0
    probes: dict[str, ProbeState] = field(default_factory=dict)
    stopping: bool = False
    term_message: str = ""

    @property
    def name(self) -> str:
        return str(self.spec["name"])


@dataclass
class NodeContext:
    """What every pod of the node shares: the network, lookups into the API and the node's setup."""

    network: BedNetwork
    pods_dir: Path
    lookup: podspec.Lookup
    issue_token: volumes.TokenIssuer
    claim_path: volumes.ClaimResolver
    base_env: dict[str, str]
    host_ip: str
    upstream_images: dict[str, str] = field(default_factory=dict)
    bin_dir: str = ""
    cluster_dns: str = ""
    node_resolv: str = ""


def _exit_code(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 + (-returncode)


class PodRuntime:
    def __init__(self, pod: dict[str, Any], node: NodeContext, pod_ip: str):
        self.pod = pod
        self.uid = pod["metadata"]["uid"]
        self.node = node
        network = self.network = node.network
        self.pod_ip = pod_ip
        self.host_ip = node.host_ip
        self.dir = node.pods_dir / f"{pod['metadata']['namespace']}_{pod['metadata']['name']}_{self.uid}"
        self.lookup = node.lookup
        self.issue_token = node.issue_token
        self.base_env = node.base_env
        self.netns = f"{network.prefix}{self.uid[:8]}"
        self.host_veth = f"v{network.index}-{self.uid[:10]}"
        spec = pod["spec"]
        self.restart_policy = spec.get("restartPolicy", "Always")
        self.init = [
            Container(c, "sidecar" if podspec.is_sidecar(c) else "init") for c in spec.get("initContainers") or []
        ]
        self.main = [Container(c, "main") for c in spec.get("containers") or []]
        self.grace = int(spec.get("terminationGracePeriodSeconds", 30))
        self.start_time = now_rfc3339()
        self.sandbox = False
        self.volume_dirs: dict[str, Path] | None = None
        self.config_error = ""
        self.init_done = False
        self.init_failed = False
        self.finished = False
        self.deleting = False
        self.image_error = ""
        self.conditions: list[dict[str, Any]] = list(pod.get("status", {}).get("conditions") or [])
        self.events: list[str] = []  # drained into the agent's log
        self.claimed: list[str] = []  # mount points this pod created on the host

    # --- lifecycle ----------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        if not self.deleting and not self.finished:
            self._advance()
        return self.status()

    def _advance(self) -> None:
        upstream = self.node.upstream_images
        bad = [c for c in self.init + self.main if not podspec.image_allowed(c.spec.get("image", ""), upstream)]
        if bad:
            for c in bad:
                c.waiting_reason = "ErrImagePull"
                c.waiting_message = podspec.image_pull_message(c.spec.get("image", ""), upstream)
            return
        if not self.sandbox:
            try:
                resolv = podspec.resolv_conf(self.pod, self.node.cluster_dns, self.node.node_resolv)
            except podspec.ConfigError as exc:
                for c in self.init + self.main:
                    c.waiting_reason, c.waiting_message = "CreateContainerConfigError", str(exc)
                return
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "resolv.conf").write_text(resolv)
            self.network.create_pod_netns(self.netns, self.host_veth, self.pod_ip)
            self._write_hosts()
            self.sandbox = True
        if self.volume_dirs is None:
            try:
                self.volume_dirs = {
                    v["name"]: volumes.prepare(
                        self.pod,
                        v,
                        self.dir / "volumes" / v["name"],
                        self.lookup,
                        self.issue_token,
                        self.node.claim_path,
                    )
                    for v in self.pod["spec"].get("volumes") or []
                }
                self.config_error = ""
            except podspec.ConfigError as exc:
                self.config_error = str(exc)
                for c in self.init + self.main:
                    c.waiting_reason, c.waiting_message = "CreateContainerConfigError", self.config_error
                return
        self._reap()
        self._run_probes()
        if not self.init_done:
            self._advance_init()
        if self.init_done and not self.init_failed:
            for c in self.main:
                if c.state == "waiting" and time.monotonic() >= c.next_start:
                    self._start(c)
        self._restart_due()
        if self._main_finished():
            self._stop_sidecars()
            self.finished = True
            self._release_sandbox()

    def _advance_init(self) -> None:
        for c in self.init:
            if c.role == "sidecar":
                if c.state == "waiting" and c.restarts == 0 and c.popen is None:
                    self._start(c)
                if not c.started:
                    return
                continue
            if c.state == "terminated" and c.exit_code == 0:
                continue
            if c.state == "waiting" and c.popen is None and c.restarts == 0:
                self._start(c)
            if c.state == "terminated" and c.exit_code != 0 and self.restart_policy == "Never":
                self.init_failed = True
            return
        self.init_done = True

    def _restart_due(self) -> None:
        for c in self.init + self.main:
            if c.state != "terminated" or c.stopping:
                continue
            if c.role == "sidecar":
                restart = True
            elif c.role == "init":
                restart = c.exit_code != 0 and self.restart_policy != "Never"
            else:
                restart = podspec.should_restart(self.restart_policy, c.exit_code or 0)
            if restart and not self.finished:
                c.last_terminated = self._terminated_state(c)
                c.restarts += 1
                c.state, c.waiting_reason = "waiting", "CrashLoopBackOff"
                c.waiting_message = f"back-off restarting failed container {c.name}"
                c.popen = None
                c.next_start = time.monotonic() + podspec.backoff_seconds(c.restarts)
        for c in self.init:
            due = c.state == "waiting" and c.restarts > 0 and time.monotonic() >= c.next_start
            if due and not self.finished and (c.role == "sidecar" or not self.init_done):
                self._start(c)

    def _main_finished(self) -> bool:
        if self.init_failed:
            return True
        if not self.init_done or not self.main:
            return False
        return self.pod_phase() in ("Succeeded", "Failed")

    # --- processes ----------------------------------------------------------------------
    def _start(self, c: Container) -> None:
        try:
            env = podspec.container_env(self.pod_with_ips(), c.spec, self.base_env, self.lookup)
            env.setdefault("HOSTNAME", self.pod["metadata"]["name"])
            image_entrypoint = podspec.entrypoint(c.spec.get("image", ""), self.node.upstream_images, self.node.bin_dir)
            argv = podspec.container_argv(c.spec, env, image_entrypoint)
            mounts = self._mounts(c)
        except podspec.ConfigError as exc:
            c.state, c.waiting_reason, c.waiting_message = "waiting", "CreateContainerConfigError", str(exc)
            c.next_start = time.monotonic() + 2
            return
        for m in mounts:
            if m["target"] not in self.claimed and MOUNT_POINTS.claim(m["target"], os.path.isdir(m["source"])):
                self.claimed.append(m["target"])
        work = Path(c.spec.get("workingDir") or self.dir / "work" / c.name)
        work.mkdir(parents=True, exist_ok=True)
        spec_file = self.dir / f"{c.name}.launch.json"
        spec_file.write_text(
            json.dumps(
                {
                    "netns": self.netns,
                    "hostname": self.pod["metadata"]["name"][:63],
                    "mounts": mounts,
                    "workingDir": str(work),
                    "argv": argv,
                    "env": env,
                }
            )
        )
        log_path = self.dir / f"{c.name}.log"
        if c.restarts and log_path.exists():
            os.replace(log_path, self.dir / f"{c.name}.previous.log")
        with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            c.popen = subprocess.Popen(
                [sys.executable, LAUNCHER, str(spec_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.events.append(f"started {c.name} (#{c.restarts}): {argv}")
        c.state, c.started_at, c.finished_at, c.exit_code = "running", now_rfc3339(), None, None
        c.ready = "readinessProbe" not in c.spec and c.role != "init"
        c.started = "startupProbe" not in c.spec
        c.probes = {}
        c.waiting_reason = c.waiting_message = ""

    def _mounts(self, c: Container) -> list[dict[str, Any]]:
        termination_log = self.dir / f"{c.name}.termination-log"
        termination_log.write_bytes(b"")
        mounts = [
            {"source": str(self.dir / "hosts"), "target": "/etc/hosts", "readOnly": False},
            {"source": str(self.dir / "resolv.conf"), "target": "/etc/resolv.conf", "readOnly": False},
            {
                "source": str(termination_log),
                "target": c.spec.get("terminationMessagePath") or "/dev/termination-log",
                "readOnly": False,
            },
        ]
        mounts += podspec.image_files(c.spec.get("image", ""), str(REPOSITORY))
        for vm in c.spec.get("volumeMounts") or []:
            if self.volume_dirs is None or vm["name"] not in self.volume_dirs:
                raise podspec.ConfigError(f"volumeMount {vm['name']!r} names no volume of the pod")
            src = self.volume_dirs[vm["name"]]
            if vm.get("subPath"):
                src = src / vm["subPath"]
                if not src.exists():
                    src.mkdir(parents=True)
            mounts.append({"source": str(src), "target": vm["mountPath"], "readOnly": bool(vm.get("readOnly"))})
        return mounts

    def _write_hosts(self) -> None:
        name = self.pod["metadata"]["name"]
        (self.dir / "hosts").write_text(
            f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{self.pod_ip}\t{name}\n"
        )

    def _reap(self) -> None:
        for c in self.init + self.main:
            if c.state == "running" and c.popen is not None and c.popen.poll() is not None:
                c.state, c.finished_at = "terminated", now_rfc3339()
                c.exit_code = _exit_code(c.popen.returncode)
                c.term_reason = c.term_reason or ("Completed" if c.exit_code == 0 else "Error")
                c.term_message = self._termination_message(c)
                c.ready = False

    def _termination_message(self, c: Container) -> str:
        """The kubelet's rule: the termination-log file, else (FallbackToLogsOnError) the log's tail."""
        try:
            message = (self.dir / f"{c.name}.termination-log").read_bytes()[:4096].decode("utf-8", "replace")
        except FileNotFoundError:
            message = ""
        if not message and c.exit_code and c.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            try:
                lines = (self.dir / f"{c.name}.log").read_bytes().splitlines()[-80:]
            except FileNotFoundError:
                lines = []
            message = b"\n".join(lines)[-2048:].decode("utf-8", "replace")
        return message

    def _kill(self, c: Container, grace: float) -> None:
        if c.popen is None or c.popen.poll() is not None:
            return
        c.stopping = True
        try:
            os.killpg(c.popen.pid, signal.SIGTERM)
            c.popen.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(c.popen.pid, signal.SIGKILL)
            c.popen.wait(10)
        except ProcessLookupError:
            pass
        self._reap()

    def _stop_sidecars(self) -> None:
        for c in reversed(self.init):
            if c.role == "sidecar":
                self._kill(c, self.grace)
                if c.state == "waiting":
                    c.stopping = True

    def terminate(self, grace: int | None) -> None:
        """Pod deletion: SIGTERM, the grace period, then SIGKILL; main containers first."""
        self.deleting = True
        g = self.grace if grace is None else grace
        for c in self.main + list(reversed(self.init)):
            c.stopping = True
        for c in self.main:
            self._kill(c, g)
        for c in reversed(self.init):
            self._kill(c, g)
        self._release_sandbox()

    def _release_sandbox(self) -> None:
        while self.claimed:
            MOUNT_POINTS.release(self.claimed.pop())
        if self.sandbox:
            self.network.delete_pod_netns(self.netns, self.host_veth)
            self.sandbox = False

    # --- probes -------------------------------------------------------------------------
    def _run_probes(self) -> None:
        for c in self.init + self.main:
            if c.state != "running" or c.stopping:
                continue
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = c.spec.get(kind)
                if not probe or (kind != "startupProbe" and not c.started) or (kind == "startupProbe" and c.started):
                    continue
                self._probe(c, kind, probe)

    def _probe(self, c: Container, kind: str, probe: dict[str, Any]) -> None:
        st = c.probes.setdefault(kind, ProbeState())
        t = time.monotonic()
        if st.next_at == 0.0:
            st.next_at = t + float(probe.get("initialDelaySeconds", 0))
        if t < st.next_at:
            return
        st.next_at = t + float(probe.get("periodSeconds", 10))
        ok = self._probe_once(c, probe)
        if ok:
            st.successes, st.failures = st.successes + 1, 0
        else:
            st.successes, st.failures = 0, st.failures + 1
        success_needed = int(probe.get("successThreshold", 1))
        failure_limit = int(probe.get("failureThreshold", 3))
        if kind == "startupProbe":
            if st.successes >= 1:
                c.started = True
            elif st.failures >= failure_limit:
                c.term_reason = "Error"
                self._kill(c, self.grace)
        elif kind == "livenessProbe" and st.failures >= failure_limit:
            c.term_reason = "Error"
            self._kill(c, self.grace)
            c.stopping = False
        elif kind == "readinessProbe":
            if st.successes >= success_needed:
                c.ready = True
            elif st.failures >= failure_limit:
                c.ready = False

    def _probe_once(self, c: Container, probe: dict[str, Any]) -> bool:
        timeout = float(probe.get("timeoutSeconds", 1))
        try:
            if "httpGet" in probe:
                h = probe["httpGet"]
                port = self._port(c, h["port"])
                scheme = h.get("scheme", "HTTP").lower()
                url = f"{scheme}://{self.pod_ip}:{port}{h.get('path', '/')}"
                req = urllib.request.Request(url, headers={x["name"]: x["value"] for x in h.get("httpHeaders") or []})
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    return 200 <= resp.status < 400
            if "tcpSocket" in probe:
                with socket.create_connection(
                    (self.pod_ip, self._port(c, probe["tcpSocket"]["port"])), timeout=timeout
                ):
                    return True
            if "exec" in probe:
                argv = probe["exec"]["command"]
                res = subprocess.run(
                    ["ip", "netns", "exec", self.netns, *argv],
                    timeout=max(timeout, 1),
                    capture_output=True,
                    env={**self.base_env},
                    check=False,
                )
                return res.returncode == 0
        except Exception:  # noqa: BLE001 - any failure to reach the probe is a failed probe
            return False
        return False

    @staticmethod
    def _port(c: Container, port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for p in c.spec.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ValueError(f"named port {port} not found")

    # --- status -------------------------------------------------------------------------
    def pod_with_ips(self) -> dict[str, Any]:
        pod = dict(self.pod)
        pod["status"] = {**pod.get("status", {}), "podIP": self.pod_ip, "hostIP": self.host_ip}
        return pod

    def pod_phase(self) -> str:
        outcome = podspec.MainOutcome(restart_policy=self.restart_policy, names=[c.name for c in self.main])
        for c in self.main:
            if c.state == "running":
                outcome.running.add(c.name)
            elif c.state == "terminated":
                outcome.terminated[c.name] = podspec.Terminated(c.exit_code or 0, c.term_reason)
            elif c.state == "waiting" and c.restarts > 0 and c.last_terminated:
                outcome.running.add(c.name)  # restarting: the pod is still running
        started_any = any(c.started_at for c in self.main)
        return podspec.pod_phase(self.init_done, self.init_failed, outcome, started_any)

    def _terminated_state(self, c: Container) -> dict[str, Any]:
        state = {
            "exitCode": c.exit_code,
            "reason": c.term_reason or ("Completed" if c.exit_code == 0 else "Error"),
            "startedAt": c.started_at,
            "finishedAt": c.finished_at,
            "containerID": f"testbed://{self.uid}/{c.name}/{c.restarts}",
        }
        if c.term_message:
            state["message"] = c.term_message
        return state

    def _container_status(self, c: Container) -> dict[str, Any]:
        state: dict[str, Any] = {"waiting": None, "running": None, "terminated": None}
        if c.state == "running":
            state["running"] = {"startedAt": c.started_at}
        elif c.state == "terminated":
            state["terminated"] = self._terminated_state(c)
        else:
            state["waiting"] = {"reason": c.waiting_reason or "ContainerCreating"}
            if c.waiting_message:
                state["waiting"]["message"] = c.waiting_message
        last: dict[str, Any] = {"waiting": None, "running": None, "terminated": c.last_terminated}
        status = {
            "name": c.name,
            "image": c.spec.get("image", ""),
            "imageID": "",
            "ready": c.ready and c.state == "running",
            "started": c.state == "running" and c.started,
            "restartCount": c.restarts,
            "state": state,
            "lastState": last,
        }
        if c.started_at:
            status["containerID"] = f"testbed://{self.uid}/{c.name}/{c.restarts}"
        if c.role == "sidecar":
            status["restartPolicy"] = "Always"
        return status

    def status(self) -> dict[str, Any]:
        now = now_rfc3339()
        phase = self.pod_phase()
        main_ready = bool(self.main) and all(c.ready and c.state == "running" for c in self.main)
        done = phase in ("Succeeded", "Failed")
        prev = self.conditions
        conds = [c for c in prev if c.get("type") == "PodScheduled"]
        conds.append(podspec.condition("PodReadyToStartContainers", self.sandbox or done, now, prev))
        conds.append(podspec.condition("Initialized", self.init_done, now, prev))
        conds.append(
            podspec.condition(
                "ContainersReady",
                main_ready and not done,
                now,
                prev,
                "PodCompleted" if done else ("" if main_ready else "ContainersNotReady"),
            )
        )
        conds.append(
            podspec.condition(
                "Ready",
                main_ready and not done,
                now,
                prev,
                "PodCompleted" if done else ("" if main_ready else "ContainersNotReady"),
            )
        )
        self.conditions = conds
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": conds,
            "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}],
            "startTime": self.start_time,
            "initContainerStatuses": [self._container_status(c) for c in self.init] or None,
            "containerStatuses": [self._container_status(c) for c in self.main],
        }
        if self.sandbox or self.finished:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        return status
