"""s3:// model URIs, against moto's in-process S3."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from modelship.models import load_model, save_model
from modelship.models.uri import ModelURIError, resolve_model_uri


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> object:
    import moto

    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        import boto3

        client = boto3.client("s3")
        client.create_bucket(Bucket="models")
        yield client


def test_s3_uri_downloads_and_loads(
    tmp_path: Path, s3: object, wine_model: Pipeline, wine: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, _ = wine
    save_model(tmp_path / "m", wine_model, training_data=X)
    for f in (tmp_path / "m").rglob("*"):
        if f.is_file():
            s3.upload_file(str(f), "models", f"wine/1/{f.relative_to(tmp_path / 'm')}")  # type: ignore[attr-defined]
    local = resolve_model_uri("s3://models/wine/1", dst=tmp_path / "dl")
    assert (local / "MLmodel").is_file()
    assert load_model(local).predict(X.head(5)).tolist() == wine_model.predict(X.head(5)).tolist()
    with pytest.raises(ModelURIError, match="no objects"):
        resolve_model_uri("s3://models/nothing-here", dst=tmp_path / "dl2")
