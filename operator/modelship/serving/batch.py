"""Batch prediction over a file, chunk by chunk: CSV, Parquet or JSON lines.

Reads ``chunk_size`` rows at a time, enforces the signature, predicts, and appends the
chunk's rows with their predictions to the output (or the predictions alone), so memory
stays flat whatever the file's size. Runnable as the command of a Kubernetes Job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelship.models.load import LoadedModel

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
}


def detect_format(path: str | Path, given: str | None = None) -> str:
    if given:
        if given not in ("csv", "parquet", "jsonl"):
            raise ValueError(f"unknown format {given!r}: csv, parquet or jsonl")
        return given
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell the format of {path} from its extension; pass --format")
    return fmt


def count_rows(path: Path, fmt: str) -> int | None:
    """Rows in the file, cheaply (Parquet metadata; a newline count for text formats)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    last = b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - (1 if fmt == "csv" else 0), 0)


def read_chunks(path: Path, fmt: str, chunk_size: int) -> Iterator[pd.DataFrame]:
    if fmt == "csv":
        yield from pd.read_csv(path, chunksize=chunk_size)
    elif fmt == "jsonl":
        yield from pd.read_json(path, lines=True, chunksize=chunk_size)
    else:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
            yield batch.to_pandas()


def predictions_frame(pred: Any, rows: int, column: str) -> pd.DataFrame:
    if isinstance(pred, pd.DataFrame):
        return pred.reset_index(drop=True)
    if isinstance(pred, pd.Series):
        return pd.DataFrame({column: pred.to_numpy()})
    arr = np.asarray(pred)
    if arr.ndim == 1 and len(arr) == rows:
        return pd.DataFrame({column: arr})
    if arr.ndim == 2 and len(arr) == rows:
        return pd.DataFrame({f"{column}_{i}": arr[:, i] for i in range(arr.shape[1])})
    raise ValueError(f"the model returned {arr.shape} for {rows} rows; cannot line them up")


class _Writer:
    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self.first = True
        self.parquet: Any = None
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()

    def write(self, df: pd.DataFrame) -> None:
        if self.fmt == "csv":
            df.to_csv(self.path, mode="a", header=self.first, index=False)
        elif self.fmt == "jsonl":
            text = df.to_json(orient="records", lines=True, date_format="iso") if len(df) else ""
            if text and not text.endswith("\n"):
                text += "\n"
            with self.path.open("a") as f:
                f.write(text)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.path, table.schema)
            self.parquet.write_table(table)
        self.first = False

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()


def predict_file(
    model: LoadedModel,
    input_path: Path,
    output_path: Path,
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    chunk_size: int = 10_000,
    prediction_column: str = "prediction",
    predictions_only: bool = False,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Predict every row of ``input_path`` into ``output_path``; returns the row count."""
    in_fmt = detect_format(input_path, input_format)
    out_fmt = detect_format(output_path, output_format)
    writer = _Writer(output_path, out_fmt)
    done = 0
    try:
        for chunk in read_chunks(input_path, in_fmt, chunk_size):
            chunk = chunk.reset_index(drop=True)
            try:
                pred = model.predict(chunk)
            except Exception as exc:
                raise RuntimeError(f"rows {done}..{done + len(chunk) - 1}: {exc}") from exc
            preds = predictions_frame(pred, len(chunk), prediction_column)
            out = preds if predictions_only else pd.concat([chunk, preds], axis=1)
            writer.write(out)
            done += len(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
    finally:
        writer.close()
    return done
