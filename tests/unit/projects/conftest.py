"""Fixtures of the projects unit tests: a local git repository and an in-memory tracking server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.unit.projects.helpers import FakeTracking, Repo, git

from modelship.tracking.client import TrackingClient


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Git with an empty configuration and a fixed identity, whatever the machine has."""
    home = tmp_path / "git-home"
    home.mkdir()
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Modelship Tests")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "tests@modelship.invalid")


@pytest.fixture
def make_repo(tmp_path: Path, git_env: None) -> Callable[[str], Repo]:
    def make(name: str = "repo") -> Repo:
        path = tmp_path / name
        path.mkdir()
        git(path, "init", "-q", "-b", "main")
        return Repo(path)

    return make


@pytest.fixture
def fake_tracking() -> FakeTracking:
    return FakeTracking()


@pytest.fixture
def tracking_client(fake_tracking: FakeTracking) -> Iterator[TrackingClient]:
    client = TrackingClient("http://tracking.test", transport=httpx.MockTransport(fake_tracking.handle), retries=0)
    yield client
    client.close()
