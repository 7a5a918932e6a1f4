"""``modelship ab-report NAME [-n NS]``: the A/B readout of a ModelDeployment, as a table.

It prints ``status.experiment`` as the operator wrote it (the operator reads the model
servers; this command reads only the object). Exit codes, for scripts and CI:

* 0 — a verdict: some variant is better than the control, or every comparison is
  decided (worse or inconclusive at ``minSamples``);
* 1 — no readout: no such ModelDeployment, no ``spec.experiment``, or the operator has
  not written one yet;
* 3 — still collecting: some variant has fewer than ``minSamples`` outcomes.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from modelship import kube
from modelship.kube import KubeError

PLURAL = "modeldeployments"
COLLECTING = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the ModelDeployment")
    parser.add_argument("-n", "--namespace", default=None, help="namespace (default: the kubeconfig context's)")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table", help="table (default) or json")


def run(args: argparse.Namespace) -> int:
    namespace = args.namespace or kube.default_namespace()
    try:
        obj = kube.get(kube.custom_path(namespace, PLURAL, args.name))
    except KubeError as exc:
        if exc.status == 404:
            print(f"modelship ab-report: no ModelDeployment {args.name!r} in namespace {namespace}", file=sys.stderr)
        else:
            print(f"modelship ab-report: {exc}", file=sys.stderr)
        return 1
    if not (obj.get("spec") or {}).get("experiment"):
        print(
            f"modelship ab-report: modeldeployment/{args.name} has no spec.experiment: add one "
            "(e.g. experiment: {minSamples: 100}) to get a readout",
            file=sys.stderr,
        )
        return 1
    exp = (obj.get("status") or {}).get("experiment")
    if not exp:
        print(
            f"modelship ab-report: modeldeployment/{args.name} has no readout yet (is the operator running?)",
            file=sys.stderr,
        )
        return 1
    if args.output == "json":
        print(json.dumps({k: v for k, v in exp.items() if k != "tally"}, indent=2))
    else:
        _table(args.name, exp)
        print(next_step(namespace, str(obj["spec"].get("model")), exp))
    return exit_code(exp)


def next_step(namespace: str, model: str, exp: dict[str, Any]) -> str:
    """What to do with the verdict: the promotion in force, or the command that makes the winner durable."""
    from modelship.resources.abtest import promote_command

    promoted = exp.get("promoted") or {}
    if promoted:
        return f"promoted: {promoted.get('message')}"
    winner = exp.get("winner")
    version = next((a.get("version") for a in exp.get("variants") or [] if a.get("name") == winner), None)
    if exp.get("verdict") == "better" and winner and version is not None:
        return (
            f"next: `{promote_command(namespace, model, int(version))}` makes {winner}'s version the Production one "
            "(variants that follow Production then serve it); spec.experiment.promoteOnWin gives it the traffic by itself"
        )
    return "next: wait for the verdict" if not exp.get("verdict") else "next: no variant beat the control"


def exit_code(exp: dict[str, Any]) -> int:
    """0 with a verdict, 3 while collecting (see the module docstring)."""
    return 0 if exp.get("verdict") else COLLECTING


def _fmt(x: Any, spec: str = ".4f") -> str:
    return "" if x is None else format(x, spec)


def _table(name: str, exp: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    metric = exp.get("metric")
    what = "rate" if metric == "binary" else "mean"
    conf = float(exp.get("confidence") or 0.95)
    table = Table(
        title=f"modeldeployment/{name}: {metric} outcomes, control {exp.get('control')}, "
        f"{conf:.0%} intervals, minSamples {exp.get('minSamples')}"
    )
    for col in (
        "variant",
        "version",
        "samples",
        what,
        "interval",
        "difference",
        "diff. interval",
        "p-value",
        "verdict",
    ):
        table.add_column(col, justify="left" if col in ("variant", "verdict") else "right")
    for arm in exp.get("variants") or []:
        interval = f"{_fmt(arm.get('ciLow'))} .. {_fmt(arm.get('ciHigh'))}" if "ciLow" in arm else ""
        diff_int = (
            f"{_fmt(arm.get('differenceLow'), '+.4f')} .. {_fmt(arm.get('differenceHigh'), '+.4f')}"
            if "differenceLow" in arm
            else ""
        )
        table.add_row(
            arm["name"] + (" (control)" if arm.get("control") else ""),
            str(arm.get("version") or ""),
            str(arm.get("samples", 0)),
            _fmt(arm.get("mean")),
            interval,
            _fmt(arm.get("difference"), "+.4f"),
            diff_int,
            _fmt(arm.get("pValue"), ".3g"),
            "" if arm.get("control") else str(arm.get("verdict") or "collecting"),
        )
    console = Console(width=160)
    console.print(table)
    console.print(f"verdict: {exp.get('verdict') or 'none yet'} — {exp.get('message')}")
