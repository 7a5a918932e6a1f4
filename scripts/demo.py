"""The lifecycle demo on the local control plane: train → register → promote → serve → promote.

1. starts the test bed (a real kube-apiserver, controller-manager, scheduler, etcd and
   kube-proxy, a node agent that runs pods as processes, CoreDNS and a Traefik Gateway),
   installs the CRDs with kubectl;
2. starts Modelship's tracking server and the operator;
3. applies the iris Experiment (manifests/examples/iris): a TPE search of 6 trials, 2 at
   a time; each trial is a Job whose trainer logs with the plain mlflow client through
   its tracking sidecar;
4. waits for the search to finish and for the best run's ModelVersion to get a number;
5. promotes it to Production with `modelship promote`, as a user without git would, and
   registers the runner-up trial as a second version with the alias ``challenger``;
6. applies a ModelDeployment: ``champion`` follows Production at 90 %, ``challenger``
   follows the alias at 10 %, through the bed's Gateway; counts who answers 200 requests;
7. promotes the challenger to Production while requests flow: the champion variant rolls
   to it by itself, and no request fails; prints predictions through the Service.

``--keep`` leaves everything running until Ctrl-C and prints how to reach it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.cluster.bed import Bed, build_binaries
from tests.cluster.processes import Process, wait_for
from tests.local_servers import free_port

MODELSHIP = str(Path(sys.executable).with_name("modelship"))
IMAGE = "ghcr.io/modelship/modelship:dev"


def step(text: str) -> None:
    print(f"\n=== {time.strftime('%H:%M:%S')} {text}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=REPO / ".testbed",
        help="the bed's state (default .testbed); two demos side by side need two",
    )
    args = parser.parse_args()
    state = args.state_dir.resolve()
    # SIGTERM (a CI runner, `kill`) stops everything as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    bin_dir = build_binaries()
    step("starting the control plane and the node agent")
    bed = Bed(state, bin_dir).start()
    env = {**os.environ, "KUBECONFIG": str(bed.kubeconfig), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    procs: list[Process] = []

    def kubectl(*argv: str) -> str:
        out = subprocess.run(["kubectl", *argv], env=env, text=True, capture_output=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(argv)} failed:\n{out.stdout}{out.stderr}")
        return out.stdout

    def get(kind: str, name: str) -> dict[str, Any]:
        return json.loads(kubectl("get", kind, name, "-o", "json"))

    try:
        print(kubectl("get", "nodes", "-o", "wide"))
        print(kubectl("apply", "--server-side", "-f", str(REPO / "crds")))
        kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")

        step("starting the tracking server and the operator")
        assert bed.network is not None
        host = bed.host_address
        tracking_url = f"http://{host}:{free_port(host)}"
        port = tracking_url.rsplit(":", 1)[1]
        tracking_dir = state / "tracking"
        tracking_dir.mkdir(exist_ok=True)
        procs.append(
            Process(
                "tracking-server",
                [
                    MODELSHIP,
                    "tracking-server",
                    "--host",
                    host,
                    "--port",
                    port,
                    "--backend-store-uri",
                    f"sqlite:///{tracking_dir / 'tracking.db'}",
                    "--artifacts-destination",
                    str(tracking_dir / "artifacts"),
                ],
                state / "logs",
                env=env,
            ).start()
        )
        wait_for(lambda: _http_ok(f"{tracking_url}/health"), 60, "tracking server", processes=procs)
        procs.append(
            Process(
                "operator",
                [MODELSHIP, "operator", "--all-namespaces", "--tracking-url", tracking_url],
                state / "logs",
                env=env,
            ).start()
        )
        print(f"tracking server {tracking_url}; logs in {state / 'logs'}")

        step("applying the iris Experiment (TPE, 6 trials, 2 at a time)")
        manifest = state / "iris-experiment.yaml"
        manifest.write_text(yaml.safe_dump(_iris_experiment(_iris_repo(state / "iris-repo"))))
        print(kubectl("apply", "-f", str(manifest)))
        exp = _watch(lambda: get("experiment", "iris"), _complete, kubectl, 900, procs)
        print(kubectl("get", "experiment", "iris"))
        print(kubectl("get", "jobs", "-l", "modelship.io/experiment=iris"))
        best = exp["status"]["bestTrial"]
        print(f"best trial: {best['name']} objective={best['objective']:.4f} params={best.get('parameters')}")

        step("the registered ModelVersion")
        mv_name = exp["status"].get("modelVersion")
        if not mv_name:
            raise SystemExit(f"the experiment registered nothing: {exp['status'].get('conditions')}")
        mv = wait_for(
            lambda: (m := get("modelversion", mv_name)).get("status", {}).get("version") and m,
            120,
            "a version number",
            interval=1,
            processes=procs,
        )
        print(kubectl("get", "modelversions", "-o", "wide"))

        step(f"promoting iris version {mv['status']['version']} to Production")
        subprocess.run(
            [MODELSHIP, "promote", "iris", str(mv["status"]["version"]), "--to", "Production", "--wait", "120"],
            env=env,
            check=True,
        )
        print(kubectl("get", "modelversions", "-o", "wide"))

        champion = int(mv["status"]["version"])
        step("registering the runner-up trial as the challenger")
        challenger = _register_challenger(exp, mv, kubectl, get, procs, state)
        print(kubectl("get", "modelversions", "-o", "wide"))

        step(f"serving: champion (Production, v{champion}) 90 %, challenger (alias, v{challenger}) 10 %")
        gateway = json.loads((bed.state_dir / "bed.json").read_text())["gateway"]
        deployment = state / "iris-deployment.yaml"
        deployment.write_text(yaml.safe_dump(_iris_deployment(gateway)))
        print(kubectl("apply", "-f", str(deployment)))
        _watch_deployment(get, kubectl, {"champion": champion, "challenger": challenger}, procs)
        print(kubectl("get", "modeldeployment", "iris"))
        target = (gateway["address"], int(gateway["port"]), {"Host": DEMO_HOST})
        wait_for(
            lambda: len(_answers(*target, n=20)) == 2,
            90,
            "both variants answering through the Gateway",
            interval=1,
            processes=procs,
        )
        print(f"200 predictions through the Gateway {gateway['address']}: {_answers(*target, n=200)}")

        step(f"promoting the challenger (v{challenger}) to Production while requests flow")
        load = _Load(*target)
        load.start()
        subprocess.run(
            [MODELSHIP, "promote", "iris", str(challenger), "--to", "Production", "--wait", "120"], env=env, check=True
        )
        _watch_deployment(get, kubectl, {"champion": challenger, "challenger": challenger}, procs)
        time.sleep(3)
        load.finish()
        print(
            f"during the promotion: {load.sent} predictions, {len(load.failures)} failed"
            + (f": {load.failures[:5]}" if load.failures else "")
        )
        print(kubectl("get", "modeldeployment", "iris", "-o", "wide"))
        service = get("service", "iris")["spec"]["clusterIP"]
        rows = {
            "dataframe_split": {
                "columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
                "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]],
            }
        }
        req = urllib.request.Request(
            f"http://{service}/invocations", json.dumps(rows).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            print(
                f"the Service iris ({service}) predicts {json.load(resp)} for {rows['dataframe_split']['data']} "
                f"(answered by {resp.headers.get('x-modelship-variant')})"
            )

        if args.keep:
            print(f"\nrunning; export KUBECONFIG={bed.kubeconfig} PATH={bin_dir}:$PATH  (Ctrl-C stops everything)")
            while True:
                bed.check_alive()
                time.sleep(2)
        step("done")
    except KeyboardInterrupt:
        pass
    finally:
        for p in reversed(procs):
            p.stop()
        bed.stop()
    return 0


DEMO_HOST = "iris.demo.test"


def _register_challenger(
    exp: dict[str, Any],
    best: dict[str, Any],
    kubectl: Callable[..., str],
    get: Callable[[str, str], dict[str, Any]],
    procs: list[Process],
    state: Path,
) -> int:
    """The runner-up trial's run as a second version of the model, with the alias ``challenger``."""
    best_run = best["spec"]["source"].split("/")[1]
    artifact = best["spec"]["source"].split("/", 2)[2]
    goal = exp["spec"]["search"]["objective"].get("goal", "maximize")
    done = [
        t
        for t in exp["status"].get("trials") or []
        if t.get("phase") == "Succeeded"
        and t.get("runId")
        and t.get("objective") is not None
        and t["runId"] != best_run
    ]
    if not done:
        raise SystemExit("the experiment has no second finished trial to be the challenger")
    runner_up = sorted(done, key=lambda t: t["objective"], reverse=goal == "maximize")[0]
    manifest = state / "iris-challenger.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "modelship.io/v1alpha1",
                "kind": "ModelVersion",
                "metadata": {"name": "iris-challenger", "namespace": "default"},
                "spec": {
                    "model": best["spec"]["model"],
                    "source": f"runs:/{runner_up['runId']}/{artifact}",
                    "aliases": ["challenger"],
                    "description": f"trial {runner_up['number']}, the runner-up",
                },
            }
        )
    )
    print(kubectl("apply", "-f", str(manifest)))
    mv = wait_for(
        lambda: (m := get("modelversion", "iris-challenger")).get("status", {}).get("version") and m,
        120,
        "the challenger's version number",
        interval=1,
        processes=procs,
    )
    print(f"challenger: trial {runner_up['number']} objective={runner_up['objective']:.4f}")
    return int(mv["status"]["version"])


def _iris_deployment(gateway: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "modelship.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "default"},
        "spec": {
            "model": "iris",
            "image": IMAGE,
            "variants": [
                {"name": "champion", "stage": "Production", "weight": 90},
                {"name": "challenger", "alias": "challenger", "weight": 10},
            ],
            "routing": {
                "mode": "gatewayAPI",
                "hostnames": [DEMO_HOST],
                "gateway": {"name": gateway["name"], "namespace": gateway["namespace"]},
                "mirror": "TraefikService",
            },
        },
    }


def _watch_deployment(
    get: Callable[[str, str], dict[str, Any]],
    kubectl: Callable[..., str],
    versions: dict[str, int],
    procs: list[Process],
    timeout: float = 300,
) -> None:
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive():
                raise SystemExit(f"{p.name} exited:\n{p.tail()}")
        st = get("modeldeployment", "iris").get("status") or {}
        served = {v["name"]: v.get("version") for v in st.get("variants") or []}
        summary = f"phase={st.get('phase')} split={st.get('split')} versions={served} pods={st.get('ready')}"
        if summary != last:
            print(f"  {time.strftime('%H:%M:%S')} {summary}", flush=True)
            last = summary
        if st.get("phase") == "Healthy" and served == versions:
            return
        time.sleep(1)
    raise SystemExit(f"the ModelDeployment did not become Healthy with {versions}: {st.get('message')}")


def _predict(host: str, port: int, headers: dict[str, str]) -> tuple[int, str]:
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        body = json.dumps(
            {
                "dataframe_split": {
                    "columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
                    "data": [[5.9, 3.0, 5.1, 1.8]],
                }
            }
        )
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("x-modelship-variant") or ""
    finally:
        conn.close()


def _answers(host: str, port: int, headers: dict[str, str], n: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _ in range(n):
        try:
            status, variant = _predict(host, port, headers)
        except OSError:
            continue
        if status == 200:
            counts[variant] = counts.get(variant, 0) + 1
    return counts


class _Load(threading.Thread):
    """Predictions while the promotion rolls: bounded in count and time, every failure kept."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.target = (host, port, headers)
        self.stop = threading.Event()
        self.sent, self.failures = 0, []  # type: ignore[var-annotated]
        self.deadline = time.monotonic() + 300

    def run(self) -> None:
        while not self.stop.is_set() and self.sent < 20000 and time.monotonic() < self.deadline:
            self.sent += 1
            try:
                status, _ = _predict(*self.target)
                if status != 200:
                    self.failures.append(status)
            except OSError as exc:
                self.failures.append(repr(exc))

    def finish(self) -> None:
        self.stop.set()
        self.join(30)


def _iris_repo(root: Path) -> str:
    """The iris example in a git repository of its own (trial pods clone it by file://)."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(REPO / "manifests" / "examples" / "iris", root / "examples" / "iris")
    git_env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "demo",
        "GIT_AUTHOR_EMAIL": "demo@example.com",
        "GIT_COMMITTER_NAME": "demo",
        "GIT_COMMITTER_EMAIL": "demo@example.com",
    }
    for argv in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "iris"]):
        subprocess.run(["git", *argv], cwd=root, env=git_env, check=True)
    return f"file://{root}"


def _iris_experiment(url: str) -> dict[str, Any]:
    exp = yaml.safe_load((REPO / "manifests" / "examples" / "iris" / "experiment.yaml").read_text())
    exp["metadata"] = {"name": "iris", "namespace": "default"}
    exp["spec"]["project"]["git"].update({"url": url, "ref": "main", "path": "examples/iris"})
    exp["spec"]["project"]["image"] = IMAGE
    exp["spec"].pop("resources", None)  # a 2-core machine: let both trials fit
    return exp


def _complete(exp: dict[str, Any]) -> bool:
    conds = {c["type"]: c for c in exp.get("status", {}).get("conditions") or []}
    if conds.get("Complete", {}).get("status") == "True":
        return True
    if exp.get("status", {}).get("phase") == "Failed":
        raise SystemExit(f"the experiment failed: {list(conds.values())}")
    return False


def _watch(
    read: Callable[[], dict[str, Any]],
    done: Callable[[dict[str, Any]], bool],
    kubectl: Callable[..., str],
    timeout: float,
    procs: list[Process],
) -> dict[str, Any]:
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive():
                raise SystemExit(f"{p.name} exited:\n{p.tail()}")
        obj = read()
        if done(obj):
            return obj
        summary = f"phase={obj.get('status', {}).get('phase')} trials={obj.get('status', {}).get('trialsSummary')}"
        if summary != last:
            print(f"  {time.strftime('%H:%M:%S')} {summary}", flush=True)
            last = summary
        time.sleep(2)
    raise SystemExit(f"timed out after {timeout}s")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return resp.status == 200


if __name__ == "__main__":
    sys.exit(main())
