"""``modelship run`` shows no credentials: a tracking URL's user and password travel as a
header, not in request URLs (which httpx logs), and are redacted in every message."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import httpx
import pytest
from tests.unit.projects.helpers import FakeTracking

from modelship.projects.git import GitError, checkout
from modelship.projects.runner import RunRequest, run_project
from modelship.tracking.client import TrackingClient
from modelship.tracking.errors import TrackingError

URL = "http://user:s3cr3tPass@127.0.0.1:5000"


def test_credentials_in_the_url_go_as_a_header(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"experiment": {"experiment_id": "3"}})

    with (
        caplog.at_level(logging.DEBUG),
        TrackingClient(URL, transport=httpx.MockTransport(handle), retries=0) as client,
    ):
        assert client.get_or_create_experiment("x") == "3"
    assert "s3cr3tPass" not in str(seen[0].url)
    basic = base64.b64encode(b"user:s3cr3tPass").decode()
    assert seen[0].headers["Authorization"] == f"Basic {basic}"
    assert "s3cr3tPass" not in caplog.text
    # what the entry point gets as MLFLOW_TRACKING_URI: the URL as given, to authenticate
    assert client.uri == URL


def test_the_environments_credentials_win_over_the_urls() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"experiment": {"experiment_id": "3"}})

    env = {"MLFLOW_TRACKING_URI": URL, "MLFLOW_TRACKING_TOKEN": "plantedtoken123"}
    transport = httpx.MockTransport(handle)
    with TrackingClient.from_env(environ=env, transport=transport, retries=0) as client:
        client.get_or_create_experiment("x")
    assert seen[0].headers["Authorization"] == "Bearer plantedtoken123"


def test_errors_show_the_url_redacted() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = TrackingClient(URL, transport=httpx.MockTransport(refuse), retries=0)
    with client, pytest.raises(TrackingError) as info:
        client.get_or_create_experiment("x")
    assert "s3cr3tPass" not in str(info.value) and "http://***@127.0.0.1:5000" in str(info.value)
    with pytest.raises(TrackingError) as info:
        TrackingClient("ftp://user:s3cr3tPass@host")
    assert "s3cr3tPass" not in str(info.value)


def test_a_run_logs_no_credentials(tmp_path: Path, fake_tracking: FakeTracking) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "MLproject").write_text("entry_points: {main: {command: 'echo trained'}}\n")
    log = io.StringIO()
    transport = httpx.MockTransport(fake_tracking.handle)
    with TrackingClient(URL, transport=transport, retries=0) as client:
        code = run_project(RunRequest(uri=str(project)), client, environ={"PATH": "/usr/bin:/bin"}, log=log)
    assert code == 0 and "Running command" in log.getvalue()
    assert "s3cr3tPass" not in log.getvalue()


def test_git_errors_show_no_credentials(tmp_path: Path) -> None:
    with pytest.raises(GitError) as info:
        checkout("https://user:s3cr3tPass@127.0.0.1:9/x.git", tmp_path / "c")
    assert "s3cr3tPass" not in str(info.value)
