"""``modelship checkout``: the trial's git init container."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from modelship.cli import main


def _repo(root: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    (root / "proj").mkdir(parents=True)
    (root / "proj" / "MLproject").write_text("name: p\nentry_points:\n  main:\n    command: 'true'\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_checkout_clones_the_ref(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sha = _repo(tmp_path / "repo")
    dest = tmp_path / "src"
    assert main(["checkout", f"file://{tmp_path / 'repo'}", str(dest), "--ref", "main", "--path", "proj"]) == 0
    assert (dest / "proj" / "MLproject").exists()
    assert sha in capsys.readouterr().out


@pytest.mark.parametrize(("ref", "path"), [("nope", "."), ("main", "missing")])
def test_checkout_fails_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str, path: str) -> None:
    _repo(tmp_path / "repo")
    code = main(["checkout", f"file://{tmp_path / 'repo'}", str(tmp_path / "src"), "--ref", ref, "--path", path])
    assert code == 1
    assert "modelship checkout:" in capsys.readouterr().err
