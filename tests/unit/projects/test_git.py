"""Checking projects out of real git repositories on disk (file:// URLs, no network)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.unit.projects.helpers import Repo, git

from modelship.projects.git import (
    GitError,
    checkout,
    head_commit,
    redact,
    remote_url,
    safe_subdirectory,
)


@pytest.fixture
def repo(make_repo: Callable[[str], Repo]) -> Repo:
    """main: first -> second (HEAD); tags v1 (annotated, on first) and light (on second);
    branch feature -> feature-only; an unadvertised commit on no branch."""
    r = make_repo("origin")
    r.commit("first", {"README": "one\n", "sub/project/MLproject": "name: first\n"})
    git(r.path, "tag", "-a", "v1", "-m", "version one")
    git(r.path, "checkout", "-q", "-b", "feature")
    r.commit("feature-only", {"feature.txt": "f\n"})
    git(r.path, "checkout", "-q", "main")
    r.commit("second", {"README": "two\n", "sub/project/MLproject": "name: second\n"})
    git(r.path, "tag", "light")
    return r


@pytest.mark.parametrize(
    ("ref", "label", "branch"),
    [
        ("HEAD", "second", "main"),
        ("main", "second", "main"),
        ("feature", "feature-only", "feature"),
        ("v1", "first", None),
        ("light", "second", None),
        ("refs/heads/feature", "feature-only", None),
    ],
)
def test_checkout_named_refs(repo: Repo, tmp_path: Path, ref: str, label: str, branch: str | None) -> None:
    done = checkout(repo.url, tmp_path / "out", ref=ref)
    assert done.commit == repo.commits[label]
    assert done.branch == branch
    assert head_commit(done.root) == repo.commits[label]
    assert done.directory == done.root == tmp_path / "out"


@pytest.mark.parametrize("length", [40, 12])
def test_checkout_commit_sha(repo: Repo, tmp_path: Path, length: int) -> None:
    sha = repo.commits["first"]
    done = checkout(repo.url, tmp_path / "out", ref=sha[:length])
    assert done.commit == sha
    assert (done.root / "README").read_text() == "one\n"
    assert done.branch is None


def test_checkout_subdirectory(repo: Repo, tmp_path: Path) -> None:
    done = checkout(repo.url, tmp_path / "out", ref="v1", path="sub/project/")
    assert done.directory == tmp_path / "out" / "sub" / "project"
    assert (done.directory / "MLproject").read_text() == "name: first\n"


def test_checkout_of_a_plain_path(repo: Repo, tmp_path: Path) -> None:
    assert checkout(str(repo.path), tmp_path / "out").commit == repo.commits["second"]


def test_remote_url_and_head_of_a_clone(repo: Repo, tmp_path: Path) -> None:
    done = checkout(repo.url, tmp_path / "out")
    assert remote_url(done.directory) == repo.url
    assert head_commit(tmp_path) is None and remote_url(tmp_path) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ref": "nope"}, "has no branch or tag 'nope', and 'nope' is not a commit SHA"),
        ({"ref": "deadbeefdeadbeef"}, "no commit 'deadbeefdeadbeef'"),
        ({"path": "missing/dir"}, "has no directory 'missing/dir'"),
        ({"path": "../escape"}, "must be relative and inside the repository"),
        ({"path": "/etc"}, "must be relative and inside the repository"),
    ],
)
def test_checkout_refused(repo: Repo, tmp_path: Path, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(GitError) as info:
        checkout(repo.url, tmp_path / "out", ref=kwargs.get("ref", "HEAD"), path=kwargs.get("path", "."))
    assert message in str(info.value)


def test_checkout_of_a_missing_repository(tmp_path: Path, git_env: None) -> None:
    with pytest.raises(GitError, match="ls-remote"):
        checkout((tmp_path / "nothing").as_uri(), tmp_path / "out")


def test_checkout_refuses_a_non_empty_destination(repo: Repo, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "file").write_text("x")
    with pytest.raises(GitError, match="not empty"):
        checkout(repo.url, tmp_path / "out")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:token@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://x-access-token:abc@host:8443/r", "https://host:8443/r"),
        ("https://github.com/o/r.git", "https://github.com/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(("path", "normal"), [(".", "."), ("", "."), ("a/b/", "a/b"), ("a/../b", "b"), ("./x", "x")])
def test_safe_subdirectory(path: str, normal: str) -> None:
    assert safe_subdirectory(path) == normal


def test_checkout_command(repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``modelship checkout``, as a trial's init container runs it."""
    from modelship.cli import main

    dest = tmp_path / "src"
    assert main(["checkout", repo.url, str(dest), "--ref", "v1", "--path", "sub/project"]) == 0
    assert repo.commits["first"] in capsys.readouterr().out
    assert (dest / "sub" / "project" / "MLproject").read_text() == "name: first\n"
    assert main(["checkout", repo.url, str(tmp_path / "other"), "--ref", "nope"]) == 1
    assert "has no branch or tag 'nope'" in capsys.readouterr().err
