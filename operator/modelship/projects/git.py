"""Check a project out of git with the ``git`` CLI: a URL at a branch, tag or commit.

Used by ``modelship run`` for a git URI and by the Experiment's init container. Only
the commit asked for is fetched (``--depth 1``) when the server allows it; an abbreviated
commit SHA falls back to a full fetch. ``GIT_TERMINAL_PROMPT=0``: in a pod nobody can
type a password, so a missing credential fails instead of hanging.
"""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from modelship.uris import redact_url

_SHA = re.compile(r"[0-9a-fA-F]{4,40}")
_Git = Callable[..., str]  # git(*args) -> stdout, bound to one work tree


class GitError(RuntimeError):
    """A git command failed; the message carries what git said."""


@dataclass(frozen=True)
class Checkout:
    """The result of ``checkout``."""

    url: str
    ref: str
    commit: str
    """The full SHA checked out."""
    root: Path
    """The work tree of the clone."""
    directory: Path
    """``root`` joined with the requested subdirectory: where the MLproject is."""
    branch: str | None = None
    """The branch ``ref`` named (or the remote's default branch for HEAD), if any."""


def checkout(
    url: str,
    dest: str | Path,
    *,
    ref: str = "HEAD",
    path: str = ".",
    env: Mapping[str, str] | None = None,
) -> Checkout:
    """Clone ``url`` at ``ref`` into ``dest`` (absent or empty) and return what was checked out."""
    subdir = safe_subdirectory(path)
    ref = ref or "HEAD"
    root = Path(dest)
    if root.exists() and any(root.iterdir()):
        raise GitError(f"cannot check out into {str(root)!r}: the directory is not empty")
    root.mkdir(parents=True, exist_ok=True)
    run_env = {**os.environ, **(env or {}), "GIT_TERMINAL_PROMPT": "0"}

    def git(*args: str) -> str:
        return _git(list(args), cwd=root, env=run_env)

    git("init", "-q")
    git("remote", "add", "origin", url)
    refname, branch = _resolve_remote_ref(git, ref)
    if refname is not None:
        git("fetch", "-q", "--depth", "1", "--no-tags", "origin", refname)
        commit = git("rev-parse", "--verify", "FETCH_HEAD^{commit}")
    elif _SHA.fullmatch(ref):
        commit = _fetch_commit(git, ref)
    else:
        raise GitError(f"{redact(url)} has no branch or tag {ref!r}, and {ref!r} is not a commit SHA")
    git("-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit)
    if (root / ".gitmodules").exists():
        git("submodule", "update", "-q", "--init", "--recursive", "--depth", "1")
    directory = root / subdir if subdir != "." else root
    if not directory.is_dir():
        raise GitError(f"{redact(url)} at {ref} ({commit[:12]}) has no directory {path!r}")
    return Checkout(url=url, ref=ref, commit=commit, root=root, directory=directory, branch=branch)


def head_commit(directory: str | Path) -> str | None:
    """The commit checked out in the work tree holding ``directory``, or None outside git."""
    try:
        return _git(["rev-parse", "--verify", "HEAD^{commit}"], cwd=Path(directory), env=None)
    except (GitError, OSError):
        return None


def remote_url(directory: str | Path, remote: str = "origin") -> str | None:
    """The URL of ``remote`` of the work tree holding ``directory`` (credentials removed)."""
    try:
        return redact(_git(["remote", "get-url", remote], cwd=Path(directory), env=None))
    except (GitError, OSError):
        return None


def redact(url: str) -> str:
    """``url`` without a user name or password, so it can be shown and stored in a tag."""
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


def safe_subdirectory(path: str) -> str:
    """A normalised relative subdirectory; refuses absolute paths and ``..``."""
    normal = posixpath.normpath(path or ".")
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
        raise GitError(f"the project path must be relative and inside the repository, got {path!r}")
    return normal


def _resolve_remote_ref(git: _Git, ref: str) -> tuple[str | None, str | None]:
    """(refname to fetch, branch name) for a branch, tag or HEAD; (None, None) otherwise."""
    if ref == "HEAD":
        out = git("ls-remote", "--symref", "origin", "HEAD")
        match = re.search(r"^ref: refs/heads/(\S+)\tHEAD$", out, re.MULTILINE)
        return "HEAD", match.group(1) if match else None
    advertised = {line.split("\t", 1)[1] for line in git("ls-remote", "origin", ref).splitlines() if "\t" in line}
    for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
        if candidate in advertised:
            branch = ref if candidate == f"refs/heads/{ref}" else None
            return candidate, branch
    return None, None


def _fetch_commit(git: _Git, sha: str) -> str:
    try:
        git("fetch", "-q", "--depth", "1", "--no-tags", "origin", sha)
        return git("rev-parse", "--verify", "FETCH_HEAD^{commit}")
    except GitError:
        pass  # an abbreviated SHA, or a server that refuses unadvertised objects
    git("fetch", "-q", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*")
    try:
        return git("rev-parse", "--verify", "--end-of-options", f"{sha}^{{commit}}")
    except GitError:
        raise GitError(f"no commit {sha!r} in {redact(git('remote', 'get-url', 'origin'))}") from None


def _git(args: list[str], *, cwd: Path, env: Mapping[str, str] | None) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        shown = " ".join(redact(a) for a in args)
        said = redact_url(proc.stderr.strip() or proc.stdout.strip())  # git hides most, not all
        raise GitError(f"git {shown} failed ({proc.returncode}): {said}")
    return proc.stdout.strip()


def toplevel(directory: str | Path) -> Path | None:
    """The root of the work tree holding ``directory``, or None outside git."""
    try:
        return Path(_git(["rev-parse", "--show-toplevel"], cwd=Path(directory), env=None))
    except (GitError, OSError):
        return None
