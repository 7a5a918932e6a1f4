"""URLs are shown with their credentials redacted, and the clients that take a URL with
credentials send them as an Authorization header instead of in every request's URL (which
httpx logs, and which error messages repeat)."""

from __future__ import annotations

import base64
import logging

import httpx
import pytest

from modelship.models.uri import ModelURIError, resolve_model_uri
from modelship.tracking.client import TrackingClient
from modelship.uris import redact_url


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:password@host/x", "https://***@host/x"),
        ("http://user:s3cr3tPass@127.0.0.1:5000", "http://***@127.0.0.1:5000"),
        ("https://ghp_token@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
        ("postgresql://mlflow:pw@db:5432/mlflow", "postgresql://***@db:5432/mlflow"),
        ("https://u:p@ss@host/x", "https://***@host/x"),  # an '@' in the password
        ("https://host/path?mail=a@b.c", "https://host/path?mail=a@b.c"),
        ("https://host/a@b", "https://host/a@b"),
        ("s3://bucket/prefix", "s3://bucket/prefix"),
        ("runs:/abc/model", "runs:/abc/model"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("", ""),
        # in a sentence: every URL in it
        (
            "GET http://a:b@h1/x failed, then https://c:d@h2/y",
            "GET http://***@h1/x failed, then https://***@h2/y",
        ),
    ],
)
def test_redact_url(text: str, shown: str) -> None:
    assert redact_url(text) == shown


def test_tracking_client_keeps_credentials_out_of_request_urls(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:s3cr3tPass@127.0.0.1:5000")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    with caplog.at_level(logging.DEBUG):
        request = sent_with(TrackingClient.from_env())
    assert "s3cr3tPass" not in str(request.url)
    basic = base64.b64encode(b"user:s3cr3tPass").decode()
    assert request.headers["Authorization"] == f"Basic {basic}"
    assert "s3cr3tPass" not in caplog.text and "127.0.0.1:5000" in caplog.text  # httpx's line


def sent_with(client: TrackingClient) -> httpx.Request:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"files": []})

    client.http._transport = httpx.MockTransport(handler)
    client.list_artifacts("x")
    return seen[0]


def test_a_token_wins_over_credentials_in_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the mlflow client's variables are meant: MLFLOW_TRACKING_TOKEN, else
    MLFLOW_TRACKING_USERNAME/PASSWORD, else the URL's own user and password."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:s3cr3tPass@127.0.0.1:5000")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "plantedtoken123")
    request = sent_with(TrackingClient.from_env())
    assert request.headers["Authorization"] == "Bearer plantedtoken123"
    assert "s3cr3tPass" not in str(request.url)


def test_errors_name_uris_redacted() -> None:
    with pytest.raises(ModelURIError) as info:
        resolve_model_uri("ftp://user:s3cr3tPass@host/model")
    assert "s3cr3tPass" not in str(info.value) and "ftp://***@host/model" in str(info.value)
