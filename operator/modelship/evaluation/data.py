"""Read the labelled data set of an evaluation: CSV or Parquet, from a path or a URI.

URIs are parsed by ``modelship.uris`` (its one table): a path or ``file://``; a file in a
run's artifacts (``runs:/<run>/<path>``, e.g. the test split the trainer logged) or behind
the artifact proxy (``mlflow-artifacts:/...``), read through the one tracking client
(``MLFLOW_TRACKING_URI``); ``s3://bucket/key`` through ``modelship.uris.s3_client``.
The format comes from the file's extension (``.csv``, ``.parquet``, ``.pq``) or ``fmt``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from modelship.tracking.client import TrackingClient
from modelship.uris import S3URI, ArtifactsURI, LocalURI, ModelsURI, RunsURI, URIError, parse, redact_url, s3_client

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class DataError(ValueError):
    """The data set cannot be read, or lacks a column the evaluation needs."""


def data_format(name: str, given: str | None = None) -> str:
    if given:
        if given not in ("csv", "parquet"):
            raise DataError(f"unknown data format {given!r}: csv or parquet")
        return given
    fmt = FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        raise DataError(f"cannot tell the format of {redact_url(name)} from its extension: pass --data-format")
    return fmt


def read_table(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(path)
    return pd.read_parquet(path)


def load_data(uri: str, *, fmt: str | None = None, client: TrackingClient | None = None) -> pd.DataFrame:
    """The data set at ``uri`` as a DataFrame; ``client`` for ``runs:/`` and
    ``mlflow-artifacts:/`` (default: one from the environment)."""
    try:
        source = parse(uri)
    except URIError as exc:
        raise DataError(str(exc)) from None
    fmt = data_format(uri, fmt)
    if isinstance(source, LocalURI):
        path = Path(source.path).expanduser()
        if not path.is_file():
            raise DataError(f"data set {path} does not exist")
        return read_table(path, fmt)
    if isinstance(source, ModelsURI):
        raise DataError(f"{redact_url(uri)} names a model, not a data set")
    with tempfile.TemporaryDirectory(prefix="modelship-eval-data-") as tmp:
        target = Path(tmp) / ("data." + fmt)
        if isinstance(source, S3URI):
            s3_client().download_file(source.bucket, source.key, str(target))
        else:
            own = client is None
            tracking = client or TrackingClient.from_env(timeout=60.0)
            try:
                tracking.download_artifact(_proxy_path(tracking, source), target)
            finally:
                if own:
                    tracking.close()
        return read_table(target, fmt)


def _proxy_path(client: TrackingClient, source: RunsURI | ArtifactsURI) -> str:
    """The path behind the artifact proxy of a ``runs:/`` or ``mlflow-artifacts:/`` file."""
    if isinstance(source, ArtifactsURI):
        return source.path
    root = str(client.get_run(source.run_id)["info"]["artifact_uri"])
    parsed = parse(root)
    if not isinstance(parsed, ArtifactsURI):
        raise DataError(
            f"run {source.run_id}'s artifacts ({redact_url(root)}) are not behind the tracking server's proxy"
        )
    return f"{parsed.path}/{source.path}".strip("/")
