"""``modelship run PATH_OR_GIT_URI``: the command-line face of ``runner``.

Exit codes: the entry point's own code when it ran (128+N when killed by signal N);
2 when the request is wrong and retrying cannot help (unknown entry point, missing or
mistyped parameter, malformed MLproject); 1 when git or the tracking server failed.
"""

from __future__ import annotations

import argparse
import sys

from modelship.projects.git import GitError
from modelship.projects.runner import ENV_MANAGERS, RunRequest, run_project
from modelship.projects.spec import ProjectError
from modelship.tracking.client import TrackingClient
from modelship.tracking.errors import TrackingError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run an MLproject entry point in the current environment, tracked as one run on the "
        "server of MLFLOW_TRACKING_URI (like `mlflow run --env-manager local`)."
    )
    parser.add_argument(
        "uri",
        metavar="PATH_OR_GIT_URI",
        help="project directory or git URL; append #subdir for a project inside the repository",
    )
    parser.add_argument("-e", "--entry-point", default="main", help="entry point (default: main)")
    parser.add_argument("-v", "--version", default=None, help="git branch, tag or commit to check out (default: HEAD)")
    parser.add_argument(
        "-P",
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter of the entry point; repeat for several",
    )
    parser.add_argument("--experiment-name", default=None, help="experiment to run in (created if missing)")
    parser.add_argument("--experiment-id", default=None, help="experiment id to run in")
    parser.add_argument(
        "--run-id",
        default=None,
        help="run to take over instead of creating one (default: $MLFLOW_RUN_ID if set)",
    )
    parser.add_argument("--run-name", default=None, help="name of the run")
    parser.add_argument(
        "--env-manager",
        default="local",
        choices=ENV_MANAGERS,
        help="only local: the entry point runs in the current environment",
    )
    parser.add_argument("--tracking-uri", default=None, help="tracking server URL (default: $MLFLOW_TRACKING_URI)")


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; a repeated or empty key is refused."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ProjectError(f"-P {pair!r}: expected KEY=VALUE")
        if key in params:
            raise ProjectError(f"-P {key}: given more than once")
        params[key] = value
    return params


def run(args: argparse.Namespace) -> int:
    try:
        if args.experiment_name and args.experiment_id:
            raise ProjectError("give --experiment-name or --experiment-id, not both")
        request = RunRequest(
            uri=args.uri,
            entry_point=args.entry_point,
            parameters=parse_params(args.params),
            version=args.version,
            experiment_name=args.experiment_name,
            experiment_id=args.experiment_id,
            run_id=args.run_id,
            run_name=args.run_name,
            env_manager=args.env_manager,
        )
        # retried: a trainer may start a moment before its tracking sidecar listens
        with TrackingClient.from_env(args.tracking_uri, retries=5) as client:
            return run_project(request, client)
    except ProjectError as exc:
        print(f"modelship run: {exc}", file=sys.stderr)
        return 2
    except (GitError, TrackingError) as exc:
        print(f"modelship run: {exc}", file=sys.stderr)
        return 1
