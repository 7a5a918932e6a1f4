"""Build and run luahealth/ (gopher-lua, the Lua interpreter Argo CD embeds) over health checks.

The binary is built from the Go module proxy (luahealth/go.mod requires
github.com/yuin/gopher-lua, pinned with go.sum) into a cache outside the repository, keyed
by gopher-lua's version and a hash of the program: ``~/.cache/modelship/tools/
luahealth-<version>-<hash>/luahealth`` ($MODELSHIP_CACHE overrides the root). scripts/setup.sh
builds it (``python -m tests.argocd.luahealth``); :func:`binary` builds it when missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parent / "luahealth"


def _cache_root() -> Path:
    return Path(
        os.environ.get("MODELSHIP_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelship"
    )


def binary_path() -> Path:
    """Where the binary of this exact source lives."""
    match = re.search(r"github.com/yuin/gopher-lua (v\S+)", (SOURCE / "go.mod").read_text())
    assert match, "luahealth/go.mod must require github.com/yuin/gopher-lua"
    digest = hashlib.sha256(b"".join((SOURCE / n).read_bytes() for n in ("main.go", "go.mod", "go.sum"))).hexdigest()
    return _cache_root() / "tools" / f"luahealth-{match.group(1)}-{digest[:12]}" / "luahealth"


def binary() -> Path:
    """The built binary, built first when the cache has none for this source."""
    path = binary_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
        built = subprocess.run(
            ["go", "build", "-trimpath", "-o", str(path), "."],
            cwd=SOURCE,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert built.returncode == 0, f"go build of {SOURCE} failed:\n{built.stderr}"
    return path


def run(script: str, objects: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The health script's result for each object, as Argo CD would compute it."""
    requests = "".join(json.dumps({"script": script, "obj": obj}) + "\n" for obj in objects)
    done = subprocess.run([str(binary())], input=requests, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


if __name__ == "__main__":
    print(binary())
    sys.exit(0)
