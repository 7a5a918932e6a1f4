"""``modelship predict``: batch prediction over a CSV, Parquet or JSON-lines file."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("modelship.batch")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model-uri", required=True, help="model (path, file://, runs:/, models:/, s3://)")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load pickle, cloudpickle and loader_module models, which run the code of whoever "
        "made the model (MODELSHIP_ALLOW_PICKLE)",
    )
    parser.add_argument("-i", "--input-path", required=True, help="input file (.csv, .parquet, .jsonl)")
    parser.add_argument("-o", "--output-path", required=True, help="output file (.csv, .parquet, .jsonl)")
    parser.add_argument("--input-format", choices=["csv", "parquet", "jsonl"], help="default: from the extension")
    parser.add_argument("--output-format", choices=["csv", "parquet", "jsonl"], help="default: from the extension")
    parser.add_argument("--chunk-size", type=int, default=10_000, help="rows per predict call (default 10000)")
    parser.add_argument("--prediction-column", default="prediction", help="name of the output column")
    parser.add_argument(
        "--predictions-only",
        action="store_true",
        help="write predictions without the input columns",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is off anyway without a TTY)",
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from modelship.models.load import load_model
    from modelship.serving import logs
    from modelship.serving.batch import count_rows, detect_format, predict_file

    logs.configure("info")
    src, dst = Path(args.input_path), Path(args.output_path)
    if not src.is_file():
        print(f"modelship predict: no input file {src}", file=sys.stderr)
        return 2
    if args.chunk_size < 1:
        print("modelship predict: --chunk-size must be positive", file=sys.stderr)
        return 2
    try:
        fmt = detect_format(src, args.input_format)
        detect_format(dst, args.output_format)
        model = load_model(args.model_uri, allow_pickle=args.allow_pickle or None)
        total = count_rows(src, fmt)
    except Exception as exc:  # noqa: BLE001 - a Job's log should say why, in one line
        print(f"modelship predict: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]predict"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=args.no_progress or not console.is_terminal,
    )
    with progress:
        task = progress.add_task("rows", total=total)
        try:
            rows = predict_file(
                model,
                src,
                dst,
                input_format=args.input_format,
                output_format=args.output_format,
                chunk_size=args.chunk_size,
                prediction_column=args.prediction_column,
                predictions_only=args.predictions_only,
                on_chunk=lambda n: progress.advance(task, n),
            )
        except Exception as exc:  # noqa: BLE001
            print(f"modelship predict: {exc}", file=sys.stderr)
            return 1
    log.info("batch prediction done", extra={"rows": rows, "input": str(src), "output": str(dst)})
    return 0
