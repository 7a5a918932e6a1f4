"""``modelship promote MODEL VERSION --to STAGE``: set spec.stage as a user would.

For teams that do not keep ModelVersions in git. It patches ``spec.stage`` of the
ModelVersion whose ``status.version`` is VERSION (the operator then decides what takes
effect, gates included), and with ``--archive-existing`` sets ``spec.stage: Archived`` on
the other versions of the model that ask for the same stage, as MLflow's
``archive_existing_versions`` does. With GitOps, change the manifest instead: a sync
would put the old stage back.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from modelship import kube
from modelship.api.common import STAGES
from modelship.controllers.registry import PLURAL, list_model
from modelship.kube import KubeError
from modelship.resources.registry_api import plan_stage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="registered model name (spec.model)")
    parser.add_argument("version", metavar="VERSION", type=int, help="version number (status.version)")
    parser.add_argument("--to", required=True, choices=STAGES, dest="stage", help="the stage to request")
    parser.add_argument(
        "--archive-existing", action="store_true", help="set the other versions that request this stage to Archived"
    )
    parser.add_argument("-n", "--namespace", default=None, help="namespace (default: the kubeconfig context's)")
    parser.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait up to this long for the stage to take effect and print the outcome",
    )


def run(args: argparse.Namespace) -> int:
    namespace = args.namespace or kube.default_namespace()
    try:
        versions = list_model(namespace, args.model)
    except KubeError as exc:
        print(f"modelship promote: {exc}", file=sys.stderr)
        return 1
    try:
        # The same planning as the tracking server's MLflow transition-stage.
        changes = plan_stage(versions, args.model, args.version, args.stage, archive_existing=args.archive_existing)
    except LookupError:
        numbered = sorted((o.get("status") or {}).get("version") or 0 for o in versions)
        print(
            f"modelship promote: model {args.model!r} has no version {args.version} in namespace {namespace} "
            f"(versions: {', '.join(map(str, [n for n in numbered if n])) or 'none'})",
            file=sys.stderr,
        )
        return 1
    numbers = {o["metadata"]["name"]: (o.get("status") or {}).get("version") for o in versions}
    for change in changes:
        kube.merge_patch(kube.custom_path(namespace, PLURAL, change.name), change.patch)
        print(
            f"modelversion/{change.name}: spec.stage={change.patch['spec']['stage']} (version {numbers[change.name]})"
        )
    if args.wait:
        return _wait(namespace, changes[0].name, args.stage, args.wait)
    return 0


def _wait(namespace: str, name: str, stage: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    obj: dict[str, Any] = {}
    while time.monotonic() < deadline:
        obj = kube.get(kube.custom_path(namespace, PLURAL, name))
        if (obj.get("status") or {}).get("stage") == stage:
            print(f"modelversion/{name}: effective stage {stage}")
            return 0
        time.sleep(0.5)
    status = obj.get("status") or {}
    why = [
        f"{c['type']}={c['status']} ({c.get('reason')}: {c.get('message')})"
        for c in status.get("conditions") or []
        if (c.get("status") == "True") == (c["type"] == "Superseded")
    ]
    print(
        f"modelversion/{name}: effective stage is {status.get('stage')}, not {stage}: {'; '.join(why)}", file=sys.stderr
    )
    return 1
