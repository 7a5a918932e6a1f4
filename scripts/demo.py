"""The lifecycle demo on the local control plane: train → register → promote → serve.

1. starts the test bed (a real kube-apiserver, controller-manager, scheduler and etcd,
   and a node agent that runs pods as processes), installs the CRDs with kubectl;
2. starts Modelship's tracking server and the operator;
3. applies the iris Experiment (manifests/examples/iris): a TPE search of 6 trials, 2 at
   a time; each trial is a Job whose trainer logs with the plain mlflow client through
   its tracking sidecar;
4. waits for the search to finish and for the best run's ModelVersion to get a number;
5. promotes it to Production with `modelship promote`, as a user without git would;
6. serves the registered model with `modelship serve` and asks it for predictions.

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
    parser.add_argument("--state-dir", type=Path, default=REPO / ".testbed",
                        help="the bed's state (default .testbed); two demos side by side need two")
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
        print(kubectl("apply", "--server-side", "-k", str(REPO / "crds")))
        kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")

        step("starting the tracking server and the operator")
        assert bed.network is not None
        host = bed.host_address
        tracking_url = f"http://{host}:{free_port(host)}"
        port = tracking_url.rsplit(":", 1)[1]
        tracking_dir = state / "tracking"
        tracking_dir.mkdir(exist_ok=True)
        procs.append(Process("tracking-server", [
            MODELSHIP, "tracking-server", "--host", host, "--port", port,
            "--backend-store-uri", f"sqlite:///{tracking_dir / 'tracking.db'}",
            "--artifacts-destination", str(tracking_dir / "artifacts")], state / "logs", env=env).start())
        wait_for(lambda: _http_ok(f"{tracking_url}/health"), 60, "tracking server", processes=procs)
        procs.append(Process("operator", [MODELSHIP, "operator", "--all-namespaces", "--tracking-url", tracking_url],
                             state / "logs", env=env).start())
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
        mv = wait_for(lambda: (m := get("modelversion", mv_name)).get("status", {}).get("version") and m, 120,
                      "a version number", interval=1, processes=procs)
        print(kubectl("get", "modelversions", "-o", "wide"))

        step(f"promoting iris version {mv['status']['version']} to Production")
        subprocess.run([MODELSHIP, "promote", "iris", str(mv["status"]["version"]), "--to", "Production",
                        "--wait", "120"], env=env, check=True)
        print(kubectl("get", "modelversions", "-o", "wide"))

        step("serving the model and asking it for predictions")
        serve_port = free_port()
        source = mv["spec"]["source"]
        procs.append(Process("model-server", [MODELSHIP, "serve", "--model-uri", source, "--host", "127.0.0.1",
                                              "--port", str(serve_port)], state / "logs",
                             env={**env, "MLFLOW_TRACKING_URI": tracking_url}).start())
        wait_for(lambda: _http_ok(f"http://127.0.0.1:{serve_port}/ping"), 180, "the model server", interval=1,
                 processes=procs)
        rows = {"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                                                "petal width (cm)"],
                                    "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}}
        req = urllib.request.Request(f"http://127.0.0.1:{serve_port}/invocations", json.dumps(rows).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            print(f"model {source} predicts {json.load(resp)} for {rows['dataframe_split']['data']}")

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


def _iris_repo(root: Path) -> str:
    """The iris example in a git repository of its own (trial pods clone it by file://)."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(REPO / "manifests" / "examples" / "iris", root / "examples" / "iris")
    git_env = {**os.environ, "GIT_AUTHOR_NAME": "demo", "GIT_AUTHOR_EMAIL": "demo@example.com",
               "GIT_COMMITTER_NAME": "demo", "GIT_COMMITTER_EMAIL": "demo@example.com"}
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


def _watch(read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], kubectl: Callable[..., str],
           timeout: float, procs: list[Process]) -> dict[str, Any]:
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
