"""The ``modelship`` command: one entry point that starts every component.

Each subcommand lives in the module that owns it. Only the chosen subcommand's module is
imported, so ``modelship operator`` does not pay for the model server's imports.
A module named here exposes ``add_arguments(parser)`` and ``run(args) -> int | None``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "crds": ("modelship.api.crdgen", "write the CRD YAML generated from modelship.api"),
    "operator": ("modelship.controllers.main", "run the operator (kopf)"),
    "tracking-server": ("modelship.tracking.cli_server", "run the MLflow-compatible tracking server"),
    "db-upgrade": ("modelship.tracking.cli_db", "bring a tracking database to the newest schema"),
    "tracking-sidecar": ("modelship.tracking.cli_sidecar", "run the tracking sidecar of a training pod"),
    "serve": ("modelship.serving.cli_serve", "serve a model over HTTP"),
    "predict": ("modelship.serving.cli_predict", "batch prediction over a file"),
    "evaluate": ("modelship.evaluation.cli", "evaluate a model on a labelled data set and log it to a run"),
    "run": ("modelship.projects.cli", "run an MLproject locally, as `mlflow run` does"),
    "checkout": ("modelship.projects.cli_checkout", "clone a project at a ref (a trial's init container)"),
    "promote": ("modelship.controllers.cli_promote", "set the stage of a ModelVersion"),
    "ab-report": ("modelship.controllers.cli_abreport", "print the A/B readout of a ModelDeployment"),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelship",
        description="Modelship: the ML lifecycle on Kubernetes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {n:<18} {h}" for n, (_, h) in COMMANDS.items()),
    )
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    parser.add_argument("--version", action="version", version=_version())
    return parser


def _version() -> str:
    from modelship import __version__

    return f"modelship {__version__}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv or ["--help"])
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_text = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"modelship {name}: this build has no {module_name}", file=sys.stderr)
            return 2
        raise
    parser = argparse.ArgumentParser(prog=f"modelship {name}", description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    result = module.run(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
