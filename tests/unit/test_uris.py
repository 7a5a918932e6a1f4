"""The scheme table of ``modelship.uris``: every URI a component takes, parsed in one place."""

from __future__ import annotations

import pytest

from modelship.uris import (
    S3URI,
    SCHEMES,
    ArtifactsURI,
    LocalURI,
    ModelSource,
    ModelsURI,
    RunsURI,
    URIError,
    parse,
    s3_client,
)


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("/models/wine", LocalURI("/models/wine", "/models/wine")),
        ("relative/dir", LocalURI("relative/dir", "relative/dir")),
        ("file:///models/my%20wine", LocalURI("file:///models/my%20wine", "/models/my wine")),
        ("runs:/abc123/model", RunsURI("runs:/abc123/model", "abc123", "model")),
        ("runs:///abc123/sub/model/", RunsURI("runs:///abc123/sub/model/", "abc123", "sub/model")),
        ("runs:/abc123", RunsURI("runs:/abc123", "abc123", "")),
        ("models:/wine/3", ModelsURI("models:/wine/3", "wine", "3")),
        ("models:/wine/Production", ModelsURI("models:/wine/Production", "wine", "Production")),
        ("models:/wine/latest", ModelsURI("models:/wine/latest", "wine", "latest")),
        ("models:/wine@champion", ModelsURI("models:/wine@champion", "wine", "@champion")),
        ("models:/team/wine/2", ModelsURI("models:/team/wine/2", "team/wine", "2")),
        ("models:/m-0123abcd", ModelsURI("models:/m-0123abcd", "m-0123abcd", "")),
        ("mlflow-artifacts:/1/abc/artifacts", ArtifactsURI("mlflow-artifacts:/1/abc/artifacts", "1/abc/artifacts")),
        ("mlflow-artifacts://host:5000/1/x", ArtifactsURI("mlflow-artifacts://host:5000/1/x", "1/x")),
        ("mlflow-artifacts:/", ArtifactsURI("mlflow-artifacts:/", "")),
        ("mlflow-artifacts:/1//a/./b/", ArtifactsURI("mlflow-artifacts:/1//a/./b/", "1/a/b")),
        ("s3://bucket/wine/1/", S3URI("s3://bucket/wine/1/", "bucket", "wine/1")),
        ("S3://bucket", S3URI("S3://bucket", "bucket", "")),
    ],
)
def test_parse(uri: str, parsed: ModelSource) -> None:
    assert parse(uri) == parsed


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("runs:/", "runs:/<run_id>/<path>"),
        ("models:/wine", "models:/<name>/<version|stage|latest>"),
        ("models:/wine@", "models:/<name>/<version|stage|latest>"),
        ("models:/", "models:/<name>/<version|stage|latest>"),
        ("s3:///key", "s3://<bucket>/<prefix>"),
        ("ftp://user:s3cr3t@host/model", "unsupported URI scheme 'ftp'"),
        ("hdfs://namenode/model", "use a path, file://, runs:/, models:/, mlflow-artifacts:/ or s3://"),
    ],
)
def test_malformed_uris_are_named_with_the_fix(uri: str, needle: str) -> None:
    with pytest.raises(URIError) as info:
        parse(uri)
    assert needle in str(info.value)
    assert "s3cr3t" not in str(info.value)


def test_a_dotdot_stays_for_safe_path_to_refuse() -> None:
    assert parse("mlflow-artifacts:/1/../../etc").path == "../etc"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("ref", "version", "stage", "alias", "latest", "logged"),
    [
        ("3", "3", None, None, False, None),
        ("production", None, "Production", None, False, None),
        ("None", None, "None", None, False, None),
        ("Latest", None, None, None, True, None),
        ("@champion", None, None, "champion", False, None),
        ("Shipping", None, None, None, False, None),
        ("", None, None, None, False, "m-1"),
    ],
)
def test_what_a_models_ref_names(
    ref: str, version: str | None, stage: str | None, alias: str | None, latest: bool, logged: str | None
) -> None:
    uri = ModelsURI("models:/x", "m-1" if not ref else "x", ref)
    assert (uri.version, uri.stage, uri.alias, uri.latest, uri.logged_model_id) == (
        version,
        stage,
        alias,
        latest,
        logged,
    )


def test_the_table_has_each_scheme_once() -> None:
    assert set(SCHEMES) == {"", "file", "runs", "models", "mlflow-artifacts", "s3"}


CREDS = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.mark.parametrize(
    ("environ", "endpoint"),
    [
        ({"MLFLOW_S3_ENDPOINT_URL": "http://minio:9000"}, "http://minio:9000"),
        ({"AWS_ENDPOINT_URL": "http://ceph:7480"}, "http://ceph:7480"),
        # MLflow's variable wins; boto3's own: the S3-specific one before the global one
        ({"MLFLOW_S3_ENDPOINT_URL": "http://minio:9000", "AWS_ENDPOINT_URL": "http://ceph:7480"}, "http://minio:9000"),
        ({"AWS_ENDPOINT_URL_S3": "http://s3-only:1", "AWS_ENDPOINT_URL": "http://all:2"}, "http://s3-only:1"),
        ({"MLFLOW_S3_ENDPOINT_URL": ""}, "https://s3.amazonaws.com"),
        ({}, "https://s3.amazonaws.com"),
    ],
)
def test_s3_client_endpoint(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], endpoint: str) -> None:
    for name in ("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    for key, value in {**CREDS, **environ}.items():
        monkeypatch.setenv(key, value)
    assert s3_client().meta.endpoint_url == endpoint


@pytest.mark.parametrize(("value", "verified"), [("true", False), ("1", False), ("false", True), (None, True)])
def test_s3_client_ignores_tls_as_mlflow_does(
    monkeypatch: pytest.MonkeyPatch, value: str | None, verified: bool
) -> None:
    for key, val in CREDS.items():
        monkeypatch.setenv(key, val)
    environ = {"MLFLOW_S3_ENDPOINT_URL": "https://minio:9000"}
    if value is not None:
        environ["MLFLOW_S3_IGNORE_TLS"] = value
    client = s3_client(environ)
    assert bool(client._endpoint.http_session._verify) is verified
