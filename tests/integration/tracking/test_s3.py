"""Artifacts in S3-compatible storage: the server proxies them to a moto S3 server."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import httpx
import pytest

from .conftest import Launcher

pytestmark = pytest.mark.integration

CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def test_artifacts_on_s3(launcher: Launcher, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    import mlflow
    from mlflow import MlflowClient

    s3 = launcher.s3()
    for k, val in CREDS.items():
        monkeypatch.setenv(k, val)
    bucket = boto3.client("s3", endpoint_url=s3.url)
    bucket.create_bucket(Bucket="models")
    server = launcher.server(artifacts="s3://models/mlartifacts", env={**CREDS, "MLFLOW_S3_ENDPOINT_URL": s3.url})
    client = MlflowClient(server.url)
    eid = client.create_experiment(f"s3-{uuid.uuid4().hex[:6]}")
    rid = client.create_run(eid).info.run_id
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "src"
        (src / "sub").mkdir(parents=True)
        (src / "a.txt").write_text("alpha")
        (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 100)
        client.log_artifacts(rid, str(src), artifact_path="out")
        names = sorted(f.path for f in client.list_artifacts(rid, "out"))
        assert names == ["out/a.txt", "out/sub"]
        assert [(f.path, f.file_size) for f in client.list_artifacts(rid, "out/sub")] == [("out/sub/b.bin", 25600)]
        dst = Path(
            mlflow.artifacts.download_artifacts(
                run_id=rid, artifact_path="out", dst_path=str(Path(d) / "dst"), tracking_uri=server.url
            )
        )
        assert (dst / "a.txt").read_text() == "alpha"
        assert (dst / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 100
    keys = sorted(o["Key"] for o in bucket.list_objects_v2(Bucket="models")["Contents"])
    assert keys == [f"mlartifacts/{eid}/{rid}/artifacts/out/a.txt", f"mlartifacts/{eid}/{rid}/artifacts/out/sub/b.bin"]
    base = f"{server.url}/api/2.0/mlflow-artifacts/artifacts"
    r = httpx.get(f"{base}/{eid}/{rid}/artifacts/out/missing.txt")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = httpx.put(f"{base}/{eid}/%2E%2E/%2E%2E/escape.txt", content=b"x")
    assert r.status_code == 400
    assert httpx.delete(f"{base}/{eid}/{rid}/artifacts/out/sub").status_code == 200
    keys = sorted(o["Key"] for o in bucket.list_objects_v2(Bucket="models")["Contents"])
    assert keys == [f"mlartifacts/{eid}/{rid}/artifacts/out/a.txt"]


MLMODEL = "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\nsignature:\n  inputs: '[]'\n"


def test_every_s3_client_finds_the_endpoint_as_mlflow_and_boto3_do(
    launcher: Launcher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One S3 client (``modelship.uris.s3_client``): ``MLFLOW_S3_ENDPOINT_URL``, else boto3's
    own resolution, in which the S3-specific ``AWS_ENDPOINT_URL_S3`` wins over the global
    ``AWS_ENDPOINT_URL``. The model resolver and the ModelVersion controller's source reader
    used to pass ``AWS_ENDPOINT_URL`` to boto3 themselves, which overrode that order and sent
    these reads to the global endpoint (here a closed port)."""
    import boto3

    from modelship.controllers.registry_source import resolve
    from modelship.models.uri import resolve_model_uri

    s3 = launcher.s3()
    admin = boto3.client("s3", endpoint_url=s3.url, **_boto_creds())
    admin.create_bucket(Bucket="endpoints")
    admin.put_object(Bucket="endpoints", Key="wine/1/MLmodel", Body=MLMODEL.encode())

    # The tracking server with AWS_ENDPOINT_URL alone, as boto3 reads it.
    server = launcher.server(artifacts="s3://endpoints/mlartifacts", env={**CREDS, "AWS_ENDPOINT_URL": s3.url})
    assert httpx.put(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/0/x.txt", content=b"x").status_code == 200
    assert admin.get_object(Bucket="endpoints", Key="mlartifacts/0/x.txt")["Body"].read() == b"x"

    for k, val in CREDS.items():
        monkeypatch.setenv(k, val)
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    local = resolve_model_uri("s3://endpoints/wine/1", dst=tmp_path / "dl")
    assert (local / "MLmodel").read_text() == MLMODEL
    resolved = resolve("s3://endpoints/wine/1", tracking_url=None, lookup=lambda name, ref: None)
    assert resolved.artifact_uri == "s3://endpoints/wine/1" and resolved.signature == {"inputs": "[]"}


def _boto_creds() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDS["AWS_DEFAULT_REGION"],
    }
