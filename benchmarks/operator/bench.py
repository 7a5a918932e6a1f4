"""The operator at 1,000 objects (issue 17, item 7), on the bed with kwok nodes.

    .venv/bin/python benchmarks/operator/bench.py [--versions 1000] [--models 20] \\
        [--deployments 200] [--kwok-nodes 4] [--idle 70] [--source file|runs] [--json out.json]

Starts a bed of its own with fake nodes (``tests/cluster/kwok.py``), the CRDs, a tracking
server, a webhook receiver and ``modelship operator`` exactly as the e2e session runs it (the
chart's ServiceAccount, every namespace, signed webhooks: ``tests/e2e/conftest.py``). Then:

1. creates ``--versions`` ModelVersions of ``--models`` models at once (8 client threads),
   each with a source that resolves (``file``: a model directory on the operator's
   filesystem; ``runs``: a run of the tracking server, one per model);
2. once all are Ready, cordons the real node and creates ``--deployments``
   ModelDeployments (one variant, one replica, pinned to a version), whose pods land on the
   kwok nodes, where kwok makes them Running and Ready without running anything;
3. with every ModelDeployment Ready and nothing changing, watches the operator for
   ``--idle`` seconds (70: longer than a minute): its requests per ModelDeployment per
   minute and its CPU seconds per minute, the cost of its follower and resync;
4. deletes the ModelDeployments: the operator's requests for that (floor 0) and the time
   until the API server has none left.

For each phase it records: the time from each object's create call returning to the watch
showing it Ready (p50, p99, max) and until the last one; the operator's CPU seconds
(``/proc/<pid>/stat``) and resident memory (``VmRSS`` at the end, ``VmHWM`` the peak); the
API server's own ``apiserver_request_total`` deltas by resource and verb; and the operator's
requests alone, from the API server's audit log of its ServiceAccount, per object and
against the floor (``FLOOR``, justified in README.md). It checks that what it sent arrived:
every version numbered 1..N per model exactly once, a ``model_version.created`` webhook per
version, every ModelDeployment Ready with its pod on a kwok node. Bounded: every wait has a
deadline (``--timeout``). It deletes everything it made and stops every process it started;
``python -m tests.cluster.bed leftovers`` is empty afterwards.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.cluster import kwok
from tests.cluster.bed import NODE_NAME, Bed, leftovers
from tests.cluster.kubeapi import ApiError, KubeApi, path_for
from tests.cluster.processes import wait_for
from tests.conftest import OPERATOR_USER
from tests.e2e.conftest import (
    OPERATOR_VALUES,
    WEBHOOK_NAMESPACE,
    WEBHOOK_SECRET,
    chart_rbac,
    ensure_namespace,
    install_crds,
    install_operator_identity,
    operator_process,
    start_tracking_server,
)
from tests.e2e.webhook_receiver import Receiver
from tests.local_servers import free_port

API = "modelship.io/v1alpha1"
NAMESPACE = "bench-operator"
MLMODEL = """flavors:
  python_function:
    loader_module: modelship.models.flavors.pyfunc
    python_version: 3.12.0
signature:
  inputs: '[{"type": "double", "name": "x", "required": true}]'
  outputs: '[{"type": "long", "required": true}]'
  params: null
"""

# The API round-trips one object needs, by (resource, verb) as the audit log names them
# (README.md says why each is needed). Writes only: the operator reads through its watches.
FLOOR: dict[str, dict[str, float]] = {
    "ModelVersion": {
        "configmaps patch": 1.0,  # claim the version number (+ the webhook outbox entry, same ConfigMap)
        "modelversions/status patch": 1.0,  # version, source, signature, Ready: one status write
        "modelversions patch": 1.0,  # kopf's last-handled-configuration annotation (diff base)
    },
    "ModelDeployment": {
        "deployments patch": 1.0,  # server-side apply of the variant's Deployment
        "services patch": 3.0,  # the ModelDeployment's Service, the variant's, the headless <md>--peers
        "poddisruptionbudgets patch": 1.0,  # the variant's PodDisruptionBudget
        "modeldeployments/status patch": 2.0,  # Progressing once applied, Ready once the pod is
        "modeldeployments patch": 1.0,  # kopf's last-handled-configuration annotation
    },
}


# --- what the operator does, seen from /proc and the API server --------------------------------
def proc_figures(pid: int) -> dict[str, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {
        "cpu_s": cpu,
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "hwm_mb": int(status["VmHWM"].split()[0]) / 1024,
    }


METRIC = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def request_totals(kube: KubeApi) -> Counter[str]:
    """apiserver_request_total summed by 'resource[/subresource] VERB' (every client)."""
    out: Counter[str] = Counter()
    for line in kube.text("/metrics").splitlines():
        m = METRIC.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"]))
        resource = labels.get("resource", "") + (f"/{labels['subresource']}" if labels.get("subresource") else "")
        out[f"{resource} {labels.get('verb', '')}"] += int(float(m["value"]))
    return out


class Audit:
    """The operator's own requests, from the bed's audit log (its ServiceAccount only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def since_mark(self) -> Counter[str]:
        seen: set[str] = set()
        out: Counter[str] = Counter()
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            for raw in f:
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue  # a line being written
                if event.get("auditID") in seen:
                    continue
                seen.add(event.get("auditID"))
                ref = event.get("objectRef") or {}
                resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
                out[f"{resource} {event.get('verb', '')}"] += 1
        return out


# --- timing each object until Ready --------------------------------------------------------------
class ReadyWatch:
    """Watches one kind in the namespace and records when each object is first seen Ready."""

    def __init__(self, kubeconfig: Path, plural: str, ready: Any) -> None:
        self.kube = KubeApi.from_kubeconfig(kubeconfig)  # a client of its own: it holds a stream
        self.plural, self.ready = plural, ready
        self.first_ready: dict[str, float] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"watch-{plural}")

    def start(self) -> ReadyWatch:
        self.thread.start()
        return self

    def _run(self) -> None:
        path = path_for(API, self.plural, NAMESPACE)
        while not self.stopped.is_set():
            try:
                listed = self.kube.get(path)
                for obj in listed.get("items") or []:
                    self._see(obj)
                for event in self.kube.watch(path, listed["metadata"]["resourceVersion"], timeout_seconds=30):
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._see(event["object"])
                    if self.stopped.is_set():
                        return
            except (ApiError, OSError, ValueError) as exc:  # a dropped watch: list and watch again
                print(f"  (watch {self.plural}: {exc}; again)", flush=True)
                time.sleep(0.5)
            except Exception as exc:  # noqa: BLE001 - httpx errors; same
                print(f"  (watch {self.plural}: {type(exc).__name__} {exc}; again)", flush=True)
                time.sleep(0.5)

    def _see(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if name not in self.first_ready and self.ready(obj):
            self.first_ready[name] = time.monotonic()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(45)
        self.kube.close()


def is_ready(obj: dict[str, Any]) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def mv_ready(obj: dict[str, Any]) -> bool:
    return is_ready(obj) and (obj.get("status") or {}).get("version") is not None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def create_all(kube: KubeApi, plural: str, bodies: list[dict[str, Any]]) -> dict[str, float]:
    """POST every body with 8 threads; when each create returned."""
    path = path_for(API, plural, NAMESPACE)
    created: dict[str, float] = {}

    def one(body: dict[str, Any]) -> None:
        kube.create(path, body)
        created[body["metadata"]["name"]] = time.monotonic()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, bodies))
    return created


def phase(
    name: str,
    kube: KubeApi,
    kubeconfig: Path,
    plural: str,
    bodies: list[dict[str, Any]],
    ready: Any,
    operator_pid: int,
    audit: Audit,
    timeout: float,
) -> dict[str, Any]:
    print(f"{name}: creating {len(bodies)} ...", flush=True)
    watch = ReadyWatch(kubeconfig, plural, ready).start()
    audit.mark()
    before_api, before_proc = request_totals(kube), proc_figures(operator_pid)
    start = time.monotonic()
    created = create_all(kube, plural, bodies)
    created_in = time.monotonic() - start
    try:
        wait_for(
            lambda: len(watch.first_ready) >= len(bodies),
            timeout,
            f"{len(bodies)} {plural} Ready (have {len(watch.first_ready)})",
            interval=0.5,
        )
    finally:
        watch.stop()
    wall = max(watch.first_ready.values()) - start
    # Let the last status writes and kopf's bookkeeping land before counting.
    time.sleep(3)
    after_api, after_proc = request_totals(kube), proc_figures(operator_pid)
    mine = audit.since_mark()
    latencies = [watch.first_ready[n] - created[n] for n in created]
    api_delta = {k: v for k, v in (after_api - before_api).items() if v}
    n = len(bodies)
    floor = FLOOR[name]
    per_object = {k: v / n for k, v in sorted(mine.items())}
    out = {
        "objects": n,
        "created_in_s": round(created_in, 2),
        "all_ready_s": round(wall, 2),
        "p50_s": round(percentile(latencies, 0.5), 2),
        "p99_s": round(percentile(latencies, 0.99), 2),
        "max_s": round(max(latencies), 2),
        "operator_cpu_s": round(after_proc["cpu_s"] - before_proc["cpu_s"], 1),
        "operator_rss_mb": round(after_proc["rss_mb"], 1),
        "operator_peak_rss_mb": round(after_proc["hwm_mb"], 1),
        "operator_requests": dict(sorted(mine.items())),
        "operator_requests_per_object": round(sum(mine.values()) / n, 2),
        "floor_per_object": sum(floor.values()),
        "ratio_to_floor": round(sum(mine.values()) / n / sum(floor.values()), 2),
        "beyond_floor": {k: round(v - floor.get(k, 0.0), 3) for k, v in per_object.items() if v > floor.get(k, 0.0)},
        "apiserver_request_total_delta": dict(sorted(api_delta.items())),
        "load": os.getloadavg(),
    }
    print(
        f"{name}: {n} Ready in {out['all_ready_s']} s (create calls took {out['created_in_s']} s); "
        f"per object p50 {out['p50_s']} s, p99 {out['p99_s']} s; operator CPU {out['operator_cpu_s']} s, "
        f"RSS {out['operator_rss_mb']} MB (peak {out['operator_peak_rss_mb']}); "
        f"{out['operator_requests_per_object']} requests per object against a floor of "
        f"{out['floor_per_object']:g}: {out['ratio_to_floor']}x",
        flush=True,
    )
    for k, v in per_object.items():
        print(f"    {k:40s} {v:8.3f} per object   (floor {floor.get(k, 0.0):g})", flush=True)
    return out


def steady(kube: KubeApi, operator_pid: int, audit: Audit, seconds: float, deployments: int) -> dict[str, Any]:
    """What ``deployments`` Ready ModelDeployments cost while nothing changes: the follower's
    ticks, the periodic resync (longer than a minute, so each one's resync falls in the window)."""
    print(f"steady state: {deployments} Ready ModelDeployments, nothing changing, for {seconds:g} s ...", flush=True)
    audit.mark()
    before = proc_figures(operator_pid)
    time.sleep(seconds)  # the measured window itself (nothing is waited for)
    after = proc_figures(operator_pid)
    mine = audit.since_mark()
    minutes = seconds / 60
    out = {
        "seconds": seconds,
        "operator_requests": dict(sorted(mine.items())),
        "requests_per_deployment_per_minute": round(sum(mine.values()) / deployments / minutes, 2),
        "operator_cpu_s_per_minute": round((after["cpu_s"] - before["cpu_s"]) / minutes, 2),
        "operator_rss_mb": round(after["rss_mb"], 1),
        "load": os.getloadavg(),
    }
    print(
        f"steady state: {out['requests_per_deployment_per_minute']} requests per ModelDeployment per minute, "
        f"operator CPU {out['operator_cpu_s_per_minute']} s per minute, RSS {out['operator_rss_mb']} MB",
        flush=True,
    )
    for k, v in sorted(mine.items()):
        print(f"    {k:40s} {v / deployments / minutes:8.3f} per deployment per minute", flush=True)
    return out


def deletion(kube: KubeApi, operator_pid: int, audit: Audit, deployments: int, timeout: float) -> dict[str, Any]:
    """Delete every ModelDeployment (8 threads) and wait until the API server has none left:
    the operator's requests for it (floor 0: the children go through their ownerReferences,
    the controller manager's garbage collector deletes them) and how long until the last one
    is gone (a finalizer would hold each one until the operator removed it)."""
    print(f"ModelDeployment: deleting {deployments} ...", flush=True)
    path = path_for(API, "modeldeployments", NAMESPACE)
    names = [item["metadata"]["name"] for item in kube.get(path).get("items") or []]
    audit.mark()
    before = proc_figures(operator_pid)
    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: kube.delete(f"{path}/{name}"), names))
    wait_for(lambda: not kube.get(path).get("items"), timeout, "every ModelDeployment gone", interval=0.5)
    gone_s = time.monotonic() - start
    after = proc_figures(operator_pid)
    time.sleep(5)  # the watch delivers the DELETED events: what the operator does on them is counted too
    mine = audit.since_mark()
    out = {
        "objects": len(names),
        "all_gone_s": round(gone_s, 2),
        "operator_cpu_s": round(after["cpu_s"] - before["cpu_s"], 1),
        "operator_requests": dict(sorted(mine.items())),
        "operator_requests_per_object": round(sum(mine.values()) / max(1, len(names)), 3),
        "load": os.getloadavg(),
    }
    print(
        f"ModelDeployment: {len(names)} deleted, all gone in {out['all_gone_s']} s; "
        f"{out['operator_requests_per_object']} operator requests per object (floor 0)",
        flush=True,
    )
    return out


# --- the objects ----------------------------------------------------------------------------------
def model_name(m: int) -> str:
    return f"m{m:02d}"


def version_bodies(n: int, models: int, sources: list[str]) -> list[dict[str, Any]]:
    bodies = []
    for i in range(n):
        m = i % models
        bodies.append(
            {
                "apiVersion": API,
                "kind": "ModelVersion",
                "metadata": {"name": f"{model_name(m)}-{i // models:04d}"},
                "spec": {"model": model_name(m), "source": sources[m]},
            }
        )
    return bodies


def deployment_bodies(n: int, models: int, versions_per_model: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": API,
            "kind": "ModelDeployment",
            "metadata": {"name": f"d{i:04d}"},
            "spec": {
                "model": model_name(i % models),
                "variants": [
                    {"name": "main", "version": 1 + (i // models) % versions_per_model, "weight": 100, "replicas": 1}
                ],
            },
        }
        for i in range(n)
    ]


def check_versions(kube: KubeApi, n: int, models: int) -> None:
    items = kube.get(path_for(API, "modelversions", NAMESPACE))["items"]
    by_model: dict[str, list[int]] = {}
    for o in items:
        by_model.setdefault(o["spec"]["model"], []).append(o["status"]["version"])
    expected = {model_name(m): len(range(m, n, models)) for m in range(models)}
    for model, count in expected.items():
        got = sorted(by_model.get(model, []))
        assert got == list(range(1, count + 1)), f"model {model}: versions {got[:5]}... not 1..{count}"
    print(f"checked: {len(items)} versions, each model numbered 1..{max(expected.values())} exactly once")


def check_deployments(kube: KubeApi, n: int) -> None:
    pods = kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
    on_kwok = [p for p in pods if (p["spec"].get("nodeName") or "").startswith(kwok.NAME_PREFIX)]
    ready = [p for p in on_kwok if is_ready(p)]
    assert len(ready) >= n, f"{len(ready)} Ready pods on kwok nodes, wanted {n}"
    assert len(on_kwok) == len(pods), f"{len(pods) - len(on_kwok)} pods not on kwok nodes"
    print(f"checked: {len(ready)} model-server pods Ready, every one on a kwok node")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--deployments", type=int, default=200)
    parser.add_argument("--kwok-nodes", type=int, default=4)
    parser.add_argument("--source", choices=["file", "runs"], default="file")
    parser.add_argument(
        "--idle", type=float, default=70.0, help="seconds of steady state measured after the deployments (0: none)"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="bound of each phase, seconds")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    state = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "load_start": os.getloadavg()}
    bed = Bed(state / "bed", audit_users=(OPERATOR_USER,), kwok_nodes=args.kwok_nodes, kwok_taint=False)
    started: list[Any] = []
    try:
        bed.start()
        kube = bed.api
        assert kube is not None
        install_crds(kube)
        kubeconfig = install_operator_identity(bed, kube, chart_rbac(*OPERATOR_VALUES), state / "operator.kubeconfig")
        key = secrets.token_bytes(32)
        ensure_namespace(kube, WEBHOOK_NAMESPACE)
        kube.apply(
            f"/api/v1/namespaces/{WEBHOOK_NAMESPACE}/secrets/{WEBHOOK_SECRET}",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": WEBHOOK_SECRET, "namespace": WEBHOOK_NAMESPACE},
                "data": {"secret": base64.b64encode(key).decode()},
            },
        )
        receiver = Receiver(key).start()
        started.append(receiver)
        tracking, tracking_url = start_tracking_server(bed, state)
        started.append(tracking)
        ensure_namespace(kube, NAMESPACE)

        if args.source == "file":
            sources = []
            for m in range(args.models):
                d = state / "models" / model_name(m)
                d.mkdir(parents=True)
                (d / "MLmodel").write_text(MLMODEL)
                sources.append(f"file://{d}")
        else:
            from tests.e2e.test_registry import make_run

            sources = [f"runs:/{make_run(tracking_url, 0.9)}/model" for _ in range(args.models)]

        health = free_port()
        operator = operator_process(
            bed,
            "operator",
            state,
            health,
            tracking_url,
            "--metrics-port",
            "0",
            "--webhook-url",
            receiver.url,
            "--webhook-secret",
            f"{WEBHOOK_NAMESPACE}/{WEBHOOK_SECRET}",
            kubeconfig=kubeconfig,
        ).start()
        started.append(operator)
        import urllib.request

        def live() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=2) as resp:
                return resp.status == 200

        wait_for(live, 120, "operator liveness", interval=0.5, processes=[operator])
        assert operator.popen is not None
        pid = operator.popen.pid
        time.sleep(2)
        results["operator_idle"] = proc_figures(pid)
        audit = Audit(bed.control_plane.audit_log if bed.control_plane else state / "none")

        results["ModelVersion"] = phase(
            "ModelVersion",
            kube,
            bed.kubeconfig,
            "modelversions",
            version_bodies(args.versions, args.models, sources),
            mv_ready,
            pid,
            audit,
            args.timeout,
        )
        check_versions(kube, args.versions, args.models)
        wait_for(
            lambda: len([d for d in receiver.accepted() if d.event == "model_version.created"]) >= args.versions,
            args.timeout,
            f"{args.versions} model_version.created webhooks",
            interval=1,
        )
        created_hooks = {d.delivery_id for d in receiver.accepted() if d.event == "model_version.created"}
        assert len(created_hooks) == args.versions, f"{len(created_hooks)} distinct created webhooks"
        print(
            f"checked: {len(created_hooks)} model_version.created webhooks, signatures valid: "
            f"{all(d.signature_ok for d in receiver.accepted())}"
        )
        results["webhooks_created"] = len(created_hooks)

        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        if args.deployments:
            # The real node takes no new pod: the model servers go to the fake nodes.
            kube.patch(f"/api/v1/nodes/{NODE_NAME}", {"spec": {"unschedulable": True}})
            # Each ModelDeployment has two Services; the bed's service range is a /24 (254
            # addresses). A second range (a ServiceCIDR, GA since 1.33) gives room for 400 more;
            # nothing routes to it, and nothing needs to: the pods behind those Services are fake.
            assert bed.network is not None
            kube.create(
                "/apis/networking.k8s.io/v1/servicecidrs",
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "ServiceCIDR",
                    "metadata": {"name": "bench-operator"},
                    "spec": {"cidrs": [f"198.19.{128 + 2 * bed.network.index}.0/23"]},
                },
            )
            per_model = max(1, args.versions // args.models)
            results["ModelDeployment"] = phase(
                "ModelDeployment",
                kube,
                bed.kubeconfig,
                "modeldeployments",
                deployment_bodies(args.deployments, args.models, min(per_model, 10)),
                is_ready,
                pid,
                audit,
                args.timeout,
            )
            check_deployments(kube, args.deployments)
            if args.idle:
                results["steady"] = steady(kube, pid, audit, args.idle, args.deployments)
            results["ModelDeployment delete"] = deletion(kube, pid, audit, args.deployments, args.timeout)
        results["operator_end"] = proc_figures(pid)
        results["load_end"] = os.getloadavg()
    finally:
        try:
            if bed.api is not None:
                bed.api.delete(f"/api/v1/namespaces/{NAMESPACE}")
        except Exception as exc:  # noqa: BLE001 - the bed goes down anyway
            print(f"(namespace delete: {exc})")
        for item in reversed(started):
            item.stop()
        bed.stop()
        import shutil

        if args.json and (state / "operator.log").exists():
            shutil.copy(state / "operator.log", args.json.with_suffix(".operator.log"))
        shutil.rmtree(state, ignore_errors=True)
    left = leftovers(bed.network.index if bed.network else None)
    results["leftovers"] = left
    print(f"leftovers of the bed: {left or 'none'}")
    print(json.dumps({k: v for k, v in results.items() if k in ("ModelVersion", "ModelDeployment")}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
