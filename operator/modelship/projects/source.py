"""Where a project's files come from: a local directory or a git URI, and its provenance.

The URI grammar is MLflow's: ``PATH_OR_GIT_URL[#SUBDIRECTORY]``. A directory that exists
runs in place (checked out with ``--version`` when one is given); anything else, and
every ``file://`` URI, is cloned with ``git``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from modelship.projects import git
from modelship.projects.spec import ProjectError

_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")  # git@github.com:org/repo.git


@dataclass(frozen=True)
class ProjectSource:
    """A project's files on disk and the facts the run's tags record about them."""

    directory: Path
    source_name: str
    """``mlflow.source.name``: the URI the project was run from (credentials removed)."""
    commit: str | None = None
    repo_url: str | None = None
    branch: str | None = None


def split_uri(uri: str) -> tuple[str, str]:
    """``(location, subdirectory)`` of ``location#subdirectory`` (MLflow's syntax)."""
    uri = uri.strip("'\"")
    location, _, subdirectory = uri.partition("#")
    return location, subdirectory or "."


def is_git_uri(location: str) -> bool:
    return location.startswith(("file://", "http://", "https://", "ssh://", "git://", "git+")) or bool(
        _SCP_LIKE.match(location)
    )


def fetch(uri: str, *, version: str | None, workdir: Path) -> ProjectSource:
    """Make the project of ``uri`` available on disk; a clone goes under ``workdir``."""
    location, subdirectory = split_uri(uri)
    try:
        subdirectory = git.safe_subdirectory(subdirectory)
    except git.GitError as exc:
        raise ProjectError(str(exc)) from None
    local = Path(location).expanduser()
    if not is_git_uri(location):
        if not local.is_dir():
            raise ProjectError(f"{location!r} is neither a directory nor a git URL")
        if version is None:
            return _in_place(local.resolve(), subdirectory)
        top = git.toplevel(local)
        if top is None:
            raise ProjectError(f"--version needs a git repository, and {location!r} is not one")
        # Clone the whole repository; the directory given is a subdirectory of it.
        inside = os.path.relpath(local.resolve(), top.resolve())
        subdirectory = git.safe_subdirectory(f"{inside}/{subdirectory}")
        location = str(top)
    url = location.removeprefix("git+")
    done = git.checkout(url, workdir / "checkout", ref=version or "HEAD", path=subdirectory)
    name = git.redact(url) + ("" if subdirectory == "." else f"#{subdirectory}")
    return ProjectSource(
        directory=done.directory,
        source_name=name,
        commit=done.commit,
        repo_url=git.redact(url),
        branch=done.branch,
    )


def _in_place(root: Path, subdirectory: str) -> ProjectSource:
    directory = root / subdirectory
    if not directory.is_dir():
        raise ProjectError(f"{str(root)!r} has no directory {subdirectory!r}")
    top = git.toplevel(directory)
    repo_url = git.remote_url(directory) if top is not None else None
    source_name = str(directory)
    if top is not None and repo_url is not None:
        # As MLflow does for a local clone: name the remote, so the tag means something elsewhere.
        inside = os.path.relpath(directory.resolve(), top.resolve())
        source_name = repo_url + ("" if inside == "." else f"#{inside}")
    return ProjectSource(
        directory=directory,
        source_name=source_name,
        commit=git.head_commit(directory) if top is not None else None,
        repo_url=repo_url,
    )
