"""``modelship evaluate``: the command-line face of :func:`modelship.evaluation.core.evaluate`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-m", "--model-uri", required=True, help="model (path, file://, runs:/, models:/, mlflow-artifacts:/, s3://)"
    )
    parser.add_argument(
        "-d",
        "--data",
        required=True,
        help="labelled data set, .csv or .parquet (path, runs:/, mlflow-artifacts:/, s3://)",
    )
    parser.add_argument("-t", "--targets", required=True, help="the label column")
    parser.add_argument("--model-type", required=True, choices=["classifier", "regressor"])
    parser.add_argument(
        "-s",
        "--sensitive-feature",
        action="append",
        default=[],
        metavar="COLUMN",
        help="column to compute fairness by group for (repeat for several)",
    )
    parser.add_argument("--pos-label", help="positive class of a binary classifier (default: the greater label)")
    parser.add_argument("--data-format", choices=["csv", "parquet"], help="default: from the extension")
    parser.add_argument(
        "--run-id",
        help="run to log into (default: $MLFLOW_RUN_ID, else the run of a runs:/ model URI, else a new run)",
    )
    parser.add_argument("--no-log", action="store_true", help="compute only; log nothing to a run")
    parser.add_argument("--no-importance", action="store_true", help="skip permutation importance (and SHAP)")
    parser.add_argument("--no-plots", action="store_true", help="log no PNG plots")
    parser.add_argument("-o", "--output", help="also write the JSON report to this file")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load pickle, cloudpickle and loader_module models, which run the code of whoever "
        "made the model (MODELSHIP_ALLOW_PICKLE)",
    )


def run(args: argparse.Namespace) -> int:
    from modelship.evaluation.core import evaluate
    from modelship.serving import logs

    logs.configure("info")
    try:
        result = evaluate(
            args.model_uri,
            args.data,
            targets=args.targets,
            model_type=args.model_type,
            sensitive_features=args.sensitive_feature,
            run_id=args.run_id,
            pos_label=args.pos_label,
            data_format=args.data_format,
            importance=not args.no_importance,
            plots=not args.no_plots,
            log_to_run=not args.no_log,
            allow_pickle=args.allow_pickle or None,
        )
    except Exception as exc:  # noqa: BLE001 - a Job's log should say why, in one line
        print(f"modelship evaluate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(json.dumps(result.report, indent=2))
    width = max((len(k) for k in result.metrics), default=0)
    for key, value in sorted(result.metrics.items()):
        print(f"{key:<{width}}  {value:.6g}")
    if result.run_id:
        print(f"logged to run {result.run_id}: {len(result.metrics)} metrics, {', '.join(result.artifacts)}")
    return 0
