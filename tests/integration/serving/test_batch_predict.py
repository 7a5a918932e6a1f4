"""``modelship predict`` over CSV, Parquet and JSON lines, as a Job would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelship.cli import main
from modelship.models import load_model

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("src", "dst"), [("csv", "csv"), ("parquet", "parquet"), ("jsonl", "csv"), ("csv", "jsonl")])
def test_batch_predict_formats(tmp_path: Path, mlflow_models: tuple[Path, dict[str, Any]], src: str, dst: str) -> None:
    from sklearn.datasets import load_wine

    root, _ = mlflow_models
    X, _ = load_wine(return_X_y=True, as_frame=True)
    inp, out = tmp_path / f"in.{src}", tmp_path / f"out.{dst}"
    {
        "csv": lambda p: X.to_csv(p, index=False),
        "parquet": X.to_parquet,
        "jsonl": lambda p: X.to_json(p, orient="records", lines=True),
    }[src](inp)
    # in process (the subprocess path, as a Job runs it, is the test below)
    assert (
        main(
            [
                "predict",
                "-m",
                str(root / "wine"),
                "-i",
                str(inp),
                "-o",
                str(out),
                "--chunk-size",
                "50",
            ]
        )
        == 0
    )
    got = {
        "csv": pd.read_csv,
        "parquet": pd.read_parquet,
        "jsonl": lambda p: pd.read_json(p, lines=True),
    }[dst](out)
    assert len(got) == len(X)
    assert got["prediction"].tolist() == load_model(root / "wine").predict(X).tolist()
    assert list(got.columns[:-1]) == list(X.columns)


def test_batch_predict_reports_bad_rows(tmp_path: Path, mlflow_models: tuple[Path, dict[str, Any]]) -> None:
    root, _ = mlflow_models
    inp = tmp_path / "in.csv"
    pd.DataFrame({"alcohol": [1.0, 2.0]}).to_csv(inp, index=False)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelship",
            "predict",
            "-m",
            str(root / "wine"),
            "-i",
            str(inp),
            "-o",
            str(tmp_path / "o.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1
    assert "missing inputs" in proc.stderr and "rows 0..1" in proc.stderr
