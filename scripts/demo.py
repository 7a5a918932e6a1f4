"""The lifecycle demo on the local control plane.

Starts the test bed (a real kube-apiserver and friends, and a node agent), installs the
CRDs, runs the operator, applies the example objects and shows what the operator made of
them with the real kubectl. ``--keep`` leaves everything running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.cluster.bed import Bed, build_binaries  # noqa: E402
from tests.cluster.processes import Process, wait_for  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the bed and operator running until Ctrl-C")
    parser.add_argument("--examples", default=str(REPO / "manifests" / "examples" / "quickstart"))
    args = parser.parse_args()
    bin_dir = build_binaries()
    bed = Bed(REPO / ".testbed", bin_dir).start()
    env = {**os.environ, "KUBECONFIG": str(bed.kubeconfig), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    operator = None

    def kubectl(*argv: str, check: bool = True) -> str:
        out = subprocess.run(["kubectl", *argv], env=env, text=True, capture_output=True)
        if check and out.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(argv)} failed:\n{out.stdout}{out.stderr}")
        return out.stdout + out.stderr

    try:
        print(f"control plane up; export KUBECONFIG={bed.kubeconfig} PATH={bin_dir}:$PATH")
        print(kubectl("apply", "--server-side", "-k", str(REPO / "crds")))
        kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        operator = Process("operator", [str(Path(sys.executable).with_name("modelship")), "operator", "--all-namespaces"],
                           bed.state_dir / "logs", env=env).start()
        print(kubectl("apply", "-k", args.examples))
        wait_for(lambda: _all_ready(kubectl), 120, "every example Ready", interval=1, processes=[operator])
        print(kubectl("get", "modelship", "-A", "-o", "wide"))
        print(kubectl("get", "nodes", "-o", "wide"))
        if args.keep:
            print("running; Ctrl-C stops the operator and the control plane")
            while True:
                bed.check_alive()
                time.sleep(2)
    except KeyboardInterrupt:
        pass
    finally:
        if operator:
            operator.stop()
        bed.stop()
    return 0


def _all_ready(kubectl) -> bool:
    out = kubectl("get", "modelship", "-A", "-o",
                  "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}")
    lines = out.splitlines()
    return bool(lines) and all(line.strip() == "True" for line in lines)


if __name__ == "__main__":
    sys.exit(main())
