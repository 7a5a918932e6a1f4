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
