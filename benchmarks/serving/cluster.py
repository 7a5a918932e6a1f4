"""Serving on the test bed: pod, Service and Gateway side by side, and how long a promotion takes.

One run, on a bed of its own (tests/cluster/bed.py), with Modelship's tracking server and
operator started as the e2e fixtures start them:

1. one ModelDeployment (one variant, ``replicas: 1``, ``routing.mode: gatewayAPI`` on the
   bed's Traefik Gateway) and ``wrk`` (one thread, ``post.lua``) on ``POST /invocations``
   with one iris row, in turns over three paths to the same pod: the pod IP:8080, the
   ModelDeployment's ClusterIP Service (kube-proxy, nftables), and the Gateway with a
   ``Host`` header of ``routing.hostnames``. The pod's own request counter checks that every
   request of every path reached that pod. Prints req/s, p99 and the ratios Service/pod and
   Gateway/pod (medians over the rounds);
2. ``modelship promote MODEL N --to Production`` K times, each timed up to the first answer
   of the new version through the Service (``GET /version`` says ``model_version``), with a
   breakdown: the CLI done, the ModelVersion's effective stage, the Deployment's template,
   the ModelDeployment's ``status.variants[].version``, the new pod Ready, the first answer,
   the rollout done (Healthy, old pod gone);
3. non-2xx replies and socket errors of every run are printed; any on the steady paths fail
   the run (exit 1), as does a failed request while promoting.

    .venv/bin/python benchmarks/serving/cluster.py [--seconds 10] [--connections 8] [--rounds 3] [--promotions 3]

Needs root (the bed) and ``wrk`` (``apt-get install -y wrk``). Writes cluster-results.json
and the marked block of README.md (``--no-save``: neither).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

import yaml
from tests.cluster.bed import Bed
from tests.cluster.kubeapi import KubeApi, path_for
from tests.cluster.processes import Process, wait_for
from tests.e2e.test_modeldeployment import (
    API,
    ROWS,
    _invocations,
    log_iris_model,
    md_status,
    model_deployment,
    predict,
    ready_pods,
    register,
    wait_healthy,
)
from tests.local_servers import free_port

MODELSHIP = str(Path(sys.executable).with_name("modelship"))
RESULTS = HERE / "cluster-results.json"
README = HERE / "README.md"
BEGIN, END = "<!-- cluster.py results: begin -->", "<!-- cluster.py results: end -->"
NAMESPACE, NAME, MODEL, VARIANT = "bench", "iris", "iris-bench", "main"
PATHS = ("pod", "service", "gateway")
# Stated, though it is the default: a promotion is a rolling update here. A canary (status.canary)
# is recorded and printed if the operator runs one anyway.
STRATEGY = {"type": "RollingUpdate"}
STEPS = (
    "cli_done",
    "modelversion_stage",
    "deployment_template",
    "status_version",
    "pod_ready",
    "first_answer",
    "rollout_done",
)


def step(text: str) -> None:
    print(f"\n=== {time.strftime('%H:%M:%S')} {text}", flush=True)


# --- the bed, the tracking server, the operator ----------------------------------------------------
def install_crds(api: KubeApi) -> None:
    """crds/*.modelship.io.yaml by server-side apply, as the e2e ``crds`` fixture does."""
    names = []
    for path in sorted((REPO / "crds").glob("*.modelship.io.yaml")):
        crd = yaml.safe_load(path.read_text())
        names.append(crd["metadata"]["name"])
        api.apply(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{names[-1]}", crd)

    def established() -> bool:
        return all(
            any(
                c["type"] == "Established" and c["status"] == "True"
                for c in api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{n}")
                .get("status", {})
                .get("conditions")
                or []
            )
            for n in names
        )

    wait_for(established, 60, "the CRDs Established", interval=0.5)


def http_ok(host: str, port: int, path: str) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    finally:
        conn.close()


def start_tracking(bed: Bed, state: Path) -> tuple[Process, str]:
    """As the e2e ``tracking_server`` fixture: on the bed's host address, registry read from the bed."""
    host, port = bed.host_address, free_port(bed.host_address)
    proc = Process(
        "tracking-server",
        [
            MODELSHIP,
            "tracking-server",
            "--host",
            host,
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{state / 'tracking.db'}",
            "--artifacts-destination",
            str(state / "artifacts"),
            "--registry-kubeconfig",
            str(bed.kubeconfig),
        ],
        state,
    ).start()
    wait_for(lambda: http_ok(host, port, "/health"), 60, "tracking server health", interval=0.3, processes=[proc])
    return proc, f"http://{host}:{port}"


def start_operator(bed: Bed, tracking_url: str, state: Path) -> Process:
    """As the e2e ``operator`` fixture (no webhooks): every namespace, health on loopback."""
    health, metrics = free_port(), free_port()
    proc = Process(
        "operator",
        [
            MODELSHIP,
            "operator",
            "--all-namespaces",
            "--health-host",
            "127.0.0.1",
            "--liveness-port",
            str(health),
            "--metrics-port",
            str(metrics),
            "--tracking-url",
            tracking_url,
        ],
        state,
        env={**os.environ, "KUBECONFIG": str(bed.kubeconfig)},
    ).start()
    wait_for(lambda: http_ok("127.0.0.1", health, "/healthz"), 60, "operator liveness", interval=0.5, processes=[proc])
    return proc


# --- steady state --------------------------------------------------------------------------------
def wrk(url: str, body: Path, seconds: int, connections: int, host: str | None = None) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(HERE / "post.lua")]
    if host:
        argv += ["-H", f"Host: {host}"]
    out = subprocess.run(
        [*argv, url, "--", str(body), "application/json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    vals = {
        k: int(v) for line in out.splitlines() if line.startswith("BENCH ") for k, v in re.findall(r"(\w+)=(\d+)", line)
    }
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()))) if sock else {}
    return {
        "rps": vals["requests"] / (vals["duration_us"] / 1e6),
        "p50_ms": vals["p50_us"] / 1000,
        "p99_ms": vals["p99_us"] / 1000,
        "requests": vals["requests"],
        "non2xx": vals["non2xx"],
        "socket_errors": sum(errors.values()),
        "socket_errors_by_kind": errors,
    }


def steady_state(
    targets: dict[str, tuple[str, str | None]], pod_ip: str, body: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Every round runs every path once (a change of the machine's load hits all alike); medians."""
    for name, (url, host) in targets.items():  # warm-up: connections, Traefik's pool, the model
        wrk(url, body, 2, args.connections, host)
    raw: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for r in range(args.rounds):
        for name, (url, host) in targets.items():
            before = _invocations(pod_ip)
            res = wrk(url, body, args.seconds, args.connections, host)
            time.sleep(0.5)  # the last replies counted
            res["pod_counted"] = int(_invocations(pod_ip) - before)
            raw[name].append(res)
            print(
                f"  round {r + 1}  {name:<8} {res['rps']:>7.0f} req/s  p50 {res['p50_ms']:>6.1f} ms  "
                f"p99 {res['p99_ms']:>6.1f} ms  non-2xx {res['non2xx']}  socket errors {res['socket_errors']} "
                f"{res['socket_errors_by_kind'] or ''}  pod counted {res['pod_counted']} of {res['requests']}",
                flush=True,
            )
    out: dict[str, Any] = {}
    for name, runs in raw.items():
        out[name] = {
            "rps": statistics.median(x["rps"] for x in runs),
            "p50_ms": statistics.median(x["p50_ms"] for x in runs),
            "p99_ms": statistics.median(x["p99_ms"] for x in runs),
            "non2xx": sum(x["non2xx"] for x in runs),
            "socket_errors": sum(x["socket_errors"] for x in runs),
            "requests": sum(x["requests"] for x in runs),
            "pod_counted": sum(x["pod_counted"] for x in runs),
            "rounds": runs,
        }
    return out


# --- promotion -----------------------------------------------------------------------------------
class VersionPoller(threading.Thread):
    """``GET /version`` through the Service, a new connection each time (kube-proxy picks anew)."""

    def __init__(self, host: str, port: int, new: str, t0: float, limit: int = 20000):
        super().__init__(daemon=True)
        self.host, self.port, self.new, self.t0, self.limit = host, port, new, t0, limit
        self.stop_event = threading.Event()
        self.sent, self.failures = 0, []
        self.first_new: float | None = None
        self.last_old: float | None = None
        self.new_in_a_row = 0

    def run(self) -> None:
        while not self.stop_event.is_set() and self.sent < self.limit:
            self.sent += 1
            conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            try:
                conn.request("GET", "/version")
                resp = conn.getresponse()
                body = resp.read()
                now = time.monotonic() - self.t0
                if resp.status != 200:
                    self.failures.append((round(now, 2), resp.status))
                elif str(json.loads(body)["model_version"]) == self.new:
                    self.first_new = self.first_new if self.first_new is not None else now
                    self.new_in_a_row += 1
                else:
                    self.last_old, self.new_in_a_row = now, 0
            except Exception as exc:  # noqa: BLE001 - every failure is kept
                self.failures.append((round(time.monotonic() - self.t0, 2), repr(exc)))
            finally:
                conn.close()
            time.sleep(0.05)

    def finish(self) -> VersionPoller:
        self.stop_event.set()
        self.join(30)
        return self


def pods(api: KubeApi) -> list[dict[str, Any]]:
    return api.get(path_for("v1", "pods", NAMESPACE), labelSelector=f"modelship.io/variant={VARIANT}")["items"]


def promote(
    api: KubeApi, env: dict[str, str], service_ip: str, number: int, mv_name: str, timeout: float = 300
) -> dict[str, Any]:
    new = str(number)
    t0 = time.monotonic()
    poller = VersionPoller(service_ip, 80, new, t0)
    poller.start()
    cli = subprocess.Popen(
        [MODELSHIP, "promote", MODEL, new, "--to", "Production", "-n", NAMESPACE],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    marks: dict[str, float] = {}
    canary_phases: dict[str, float] = {}  # status.canary.phase of this version, first seen at

    def mark(key: str, ok: bool) -> None:
        if ok and key not in marks:
            marks[key] = time.monotonic() - t0

    try:
        while time.monotonic() - t0 < timeout:
            if cli.poll() is not None and "cli_done" not in marks:
                mark("cli_done", True)
                cli_out = cli.stdout.read() if cli.stdout else ""
                if cli.returncode != 0:
                    raise RuntimeError(f"modelship promote exited {cli.returncode}: {cli_out}")
            mv_status = api.get(path_for(API, "modelversions", NAMESPACE, mv_name)).get("status") or {}
            mark("modelversion_stage", mv_status.get("stage") == "Production")
            dep = api.get(path_for("apps/v1", "deployments", NAMESPACE, f"{NAME}-{VARIANT}"))
            mark(
                "deployment_template", dep["spec"]["template"]["metadata"]["labels"].get("modelship.io/version") == new
            )
            st = md_status(api, NAMESPACE, NAME)
            served = {v["name"]: v.get("version") for v in st.get("variants") or []}
            mark("status_version", served.get(VARIANT) == number)
            all_pods = pods(api)
            ready = ready_pods(api, NAMESPACE, f"modelship.io/variant={VARIANT}")
            mark("pod_ready", any(p["metadata"]["labels"].get("modelship.io/version") == new for p in ready))
            if poller.first_new is not None:
                marks.setdefault("first_answer", poller.first_new)
            can = st.get("canary") or {}
            if str(can.get("toVersion")) == new and can.get("phase"):
                canary_phases.setdefault(can["phase"], round(time.monotonic() - t0, 2))
                if can["phase"] == "RolledBack":
                    raise RuntimeError(
                        f"the operator ran a canary for version {number} and rolled it back: {can.get('message')}"
                    )
            mark(
                "rollout_done",
                st.get("phase") == "Healthy"
                and served.get(VARIANT) == number
                and not any(
                    p["metadata"]["labels"].get("modelship.io/version") != new
                    or p["metadata"]["labels"].get("modelship.io/track") == "canary"
                    for p in all_pods
                ),
            )
            if all(k in marks for k in STEPS) and poller.new_in_a_row >= 20:
                break
            time.sleep(0.1)
        else:
            raise TimeoutError(
                f"promotion to version {number} not done in {timeout}s: marks {marks}, "
                f"status {json.dumps(md_status(api, NAMESPACE, NAME))[-2000:]}"
            )
    finally:
        poller.finish()
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    return {
        "version": number,
        **{k: round(marks[k], 2) for k in STEPS},
        "last_old_answer": round(poller.last_old, 2) if poller.last_old is not None else None,
        "polls": poller.sent,
        "failures": poller.failures,
        "canary_phases": canary_phases,
    }


# --- output --------------------------------------------------------------------------------------
def ratios(paths: dict[str, Any]) -> dict[str, dict[str, float]]:
    pod = paths["pod"]
    return {
        f"{name}/pod": {"rps": paths[name]["rps"] / pod["rps"], "p99": paths[name]["p99_ms"] / pod["p99_ms"]}
        for name in ("service", "gateway")
    }


def markdown(res: dict[str, Any]) -> str:
    a, paths, rat = res["args"], res["paths"], res["ratios"]
    load = " / ".join(f"{x:.2f}" for x in res["load_start"])
    load_end = " / ".join(f"{x:.2f}" for x in res["load_end"])
    lines = [
        BEGIN,
        (
            f"{res['date']}, `cluster.py --seconds {a['seconds']} --connections {a['connections']} "
            f"--rounds {a['rounds']} --promotions {a['promotions']}`, {res['cpus']} cores, load average "
            f"(1/5/15 min) {load} at the start, {load_end} at the end; Traefik {res['traefik']}, "
            f"Kubernetes {res['kubernetes']}. Medians over the rounds:"
        ),
        "",
        "| path | req/s | p50 | p99 | non-2xx | socket errors | requests counted by the pod |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    labels = {"pod": "pod IP:8080", "service": "Service (kube-proxy)", "gateway": "Gateway (Traefik)"}
    for name in PATHS:
        p = paths[name]
        lines.append(
            f"| {labels[name]} | {p['rps']:.0f} | {p['p50_ms']:.1f} ms | {p['p99_ms']:.1f} ms | "
            f"{p['non2xx']} | {p['socket_errors']} | {p['pod_counted']} of {p['requests']} |"
        )
    lines += [
        "",
        "Ratios: " + "; ".join(f"{k} throughput {v['rps']:.2f}x, p99 {v['p99']:.2f}x" for k, v in rat.items()) + ".",
        "",
    ]
    promo = res["promotion"]
    if promo["runs"]:
        lines += [
            (
                f"Promotion (`modelship promote` to the first answer of the new version through the Service), "
                f"seconds after the CLI started, median of {len(promo['runs'])}:"
            ),
            "",
            "| " + " | ".join(STEPS) + " |",
            "| " + " | ".join("---" for _ in STEPS) + " |",
            "| " + " | ".join(f"{promo['median'][k]:.1f}" for k in STEPS) + " |",
            "",
            "Each run: "
            + "; ".join(f"v{r['version']} {r['first_answer']:.1f} s" for r in promo["runs"])
            + f". Failed `/version` polls while promoting: {sum(len(r['failures']) for r in promo['runs'])}.",
            "",
        ]
        canaries = [r for r in promo["runs"] if r["canary_phases"]]
        if canaries:
            lines += [
                f"The operator ran a canary in {len(canaries)} of {len(promo['runs'])} promotions although "
                f"`strategy.type` is RollingUpdate (status.canary phases, s: "
                + "; ".join(f"v{r['version']} {r['canary_phases']}" for r in canaries)
                + ").",
                "",
            ]
    lines.append(END)
    return "\n".join(lines)


def save(res: dict[str, Any]) -> None:
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")
    text = README.read_text()
    block = markdown(res)
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(text)


def remove_state(state: Path) -> None:
    """Delete the bed's state only when nothing is mounted under it (a bind mount would be followed)."""
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    if any(m == str(state) or m.startswith(f"{state}/") for m in mounts):
        print(f"left {state}: something is still mounted under it")
        return
    shutil.rmtree(state, ignore_errors=True)


# --- main ----------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections, one thread (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per path, interleaved (default 3)")
    parser.add_argument("--promotions", type=int, default=3, help="promotions timed (default 3)")
    parser.add_argument("--no-save", action="store_true", help="write neither cluster-results.json nor README.md")
    parser.add_argument("--keep-state", action="store_true", help="keep the bed's state directory (logs)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install -y wrk")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops everything as Ctrl-C does
    state = Path(tempfile.mkdtemp(prefix="modelship-cluster-bench-"))
    bed = Bed(state / "bed")
    procs: list[Process] = []
    ok = False
    try:
        step(f"starting the bed (state in {state})")
        bed.start()
        api = bed.api
        assert api is not None
        install_crds(api)
        step("starting the tracking server and the operator")
        tracking, tracking_url = start_tracking(bed, state / "tracking")
        procs.append(tracking)
        procs.append(start_operator(bed, tracking_url, state / "operator"))
        run_id = log_iris_model(tracking_url, state, "cluster-bench")

        step(f"a ModelDeployment of {MODEL}: one variant, one replica, routing.mode gatewayAPI")
        api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        wait_for(
            lambda: api.exists(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default"),
            30,
            "the default service account",
        )
        names = {register(api, NAMESPACE, "v1", MODEL, run_id, "Production"): "v1"}
        for i in range(2, args.promotions + 2):
            names[register(api, NAMESPACE, f"v{i}", MODEL, run_id)] = f"v{i}"
        gw = json.loads((bed.state_dir / "bed.json").read_text())["gateway"]
        hostname = f"{NAMESPACE}.models.test"
        api.create(
            path_for(API, "modeldeployments", NAMESPACE),
            model_deployment(
                NAME,
                MODEL,
                [{"name": VARIANT, "stage": "Production", "weight": 100, "replicas": 1}],
                routing={
                    "mode": "gatewayAPI",
                    "gateway": {"name": gw["name"], "namespace": gw["namespace"]},
                    "hostnames": [hostname],
                },
                strategy=STRATEGY,
            ),
        )
        wait_healthy(api, NAMESPACE, NAME, **{VARIANT: 1})
        (pod,) = ready_pods(api, NAMESPACE, f"modelship.io/variant={VARIANT}")
        pod_ip = pod["status"]["podIP"]
        service_ip = api.get(path_for("v1", "services", NAMESPACE, NAME))["spec"]["clusterIP"]
        gw_addr, gw_port = gw["address"], int(gw["port"])
        host_header = {"Host": hostname}
        wait_for(
            lambda: predict(gw_addr, gw_port, host_header, timeout=5)[0] == 200,
            90,
            "the Gateway's route answering",
            interval=0.5,
        )
        for h, p, hd in ((pod_ip, 8080, None), (service_ip, 80, None), (gw_addr, gw_port, host_header)):
            status, variant = predict(h, p, hd)
            assert (status, variant) == (200, VARIANT), (h, p, status, variant)
        targets = {
            "pod": (f"http://{pod_ip}:8080/invocations", None),
            "service": (f"http://{service_ip}:80/invocations", None),
            "gateway": (f"http://{gw_addr}:{gw_port}/invocations", hostname),
        }
        print(
            f"pod {pod['metadata']['name']} {pod_ip}:8080; Service {service_ip}:80; "
            f"Gateway {gw_addr}:{gw_port} Host {hostname}"
        )

        step(
            f"steady state: wrk -t1 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds, "
            f"POST /invocations with one row"
        )
        body = state / "rows.json"
        body.write_text(json.dumps(ROWS))
        load_start = os.getloadavg()
        paths = steady_state(targets, pod_ip, body, args)
        load_end = os.getloadavg()
        rat = ratios(paths)
        print()
        for name in PATHS:
            p = paths[name]
            print(
                f"{name:<8} {p['rps']:>7.0f} req/s  p99 {p['p99_ms']:>6.1f} ms  non-2xx {p['non2xx']}  "
                f"socket errors {p['socket_errors']}  pod counted {p['pod_counted']} of {p['requests']}"
            )
        for k, v in rat.items():
            print(f"{k:<12} throughput {v['rps']:.2f}x  p99 {v['p99']:.2f}x")
        print(
            f"load average {' / '.join(f'{x:.2f}' for x in load_start)} -> "
            f"{' / '.join(f'{x:.2f}' for x in load_end)} ({os.cpu_count()} cores)"
        )

        env = {**os.environ, "KUBECONFIG": str(bed.kubeconfig)}
        runs = []
        for number in range(2, args.promotions + 2):
            step(f"promoting {MODEL} version {number} to Production")
            r = promote(api, env, service_ip, number, names[number])
            runs.append(r)
            print(
                "  "
                + "  ".join(f"{k} {r[k]:.1f}s" for k in STEPS)
                + f"  (last answer of the old version {r['last_old_answer']}s; {r['polls']} polls, "
                f"{len(r['failures'])} failed {r['failures'][:5]})",
                flush=True,
            )
            if r["canary_phases"]:
                print(
                    f"  WARNING: the operator ran a canary (strategy.type RollingUpdate): status.canary.phase "
                    f"first seen at {r['canary_phases']} s",
                    flush=True,
                )
        median = {k: statistics.median(r[k] for r in runs) for k in STEPS} if runs else {}
        if runs:
            print("median  " + "  ".join(f"{k} {median[k]:.1f}s" for k in STEPS))

        res = {
            "date": time.strftime("%d %b %Y %H:%M"),
            "cpus": os.cpu_count(),
            "load_start": load_start,
            "load_end": load_end,
            "load_after_promotions": os.getloadavg(),
            "args": vars(args),
            "traefik": bed.versions.get("traefik", "?"),
            "kubernetes": bed.versions.get("kubernetes", "?"),
            "paths": paths,
            "ratios": rat,
            "promotion": {"runs": runs, "median": median},
        }
        if not args.no_save:
            save(res)
            print(f"wrote {RESULTS.relative_to(REPO)} and the results block of {README.relative_to(REPO)}")
        bad = {
            n: (paths[n]["non2xx"], paths[n]["socket_errors"])
            for n in PATHS
            if paths[n]["non2xx"] or paths[n]["socket_errors"]
        }
        if bad:
            raise SystemExit(f"FAILED: requests not answered 2xx on the steady paths (non-2xx, socket errors): {bad}")
        short = {
            n: (paths[n]["pod_counted"], paths[n]["requests"])
            for n in PATHS
            if paths[n]["pod_counted"] < paths[n]["requests"]
        }
        if short:
            raise SystemExit(f"FAILED: the pod counted fewer requests than wrk got answers for: {short}")
        failed = [f for r in runs for f in r["failures"]]
        if failed:
            raise SystemExit(f"FAILED: /version through the Service failed while promoting: {failed[:10]}")
        ok = True
    except KeyboardInterrupt:
        print("interrupted")
    finally:
        for p in reversed(procs):
            p.stop()
        bed.stop()
        if ok and not args.keep_state:
            remove_state(state)
        else:
            print(f"logs and state in {state}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
