"""Build and run podsecurity/ (k8s.io/pod-security-admission, the API server's own Pod Security library).

The program (podsecurity/main.go) runs the library's ``policy`` evaluator, the default checks
at level ``restricted``, version ``latest``, over the pod spec that the library's
``admission.DefaultPodSpecExtractor`` takes from each object (Pod, Deployment, Job, CronJob,
StatefulSet, DaemonSet, ReplicaSet, ReplicationController, PodTemplate), and reports the
library's own forbidden reasons and details. Every k8s.io module is pinned (go.mod, go.sum) at
the release that matches the bed's Kubernetes (v0.36.3 for v1.36.3, tests/cluster/build.sh);
a unit test keeps the two in step.

The binary is built from the Go module proxy into a cache outside the repository, keyed by
the library's version and a hash of the program: ``~/.cache/modelship/tools/
podsecurity-<version>-<hash>/podsecurity`` ($MODELSHIP_CACHE overrides the root).
scripts/setup.sh builds it (``python -m tests.tools.podsecurity``); :func:`binary` builds it
when missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SOURCE = Path(__file__).resolve().parent / "podsecurity"


def _cache_root() -> Path:
    return Path(
        os.environ.get("MODELSHIP_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelship"
    )


def library_version() -> str:
    """The k8s.io/pod-security-admission release go.mod pins."""
    match = re.search(r"k8s.io/pod-security-admission (v\S+)", (SOURCE / "go.mod").read_text())
    assert match, "podsecurity/go.mod must require k8s.io/pod-security-admission"
    return match.group(1)


def binary_path() -> Path:
    """Where the binary of this exact source lives."""
    digest = hashlib.sha256(b"".join((SOURCE / n).read_bytes() for n in ("main.go", "go.mod", "go.sum"))).hexdigest()
    return _cache_root() / "tools" / f"podsecurity-{library_version()}-{digest[:12]}" / "podsecurity"


def binary() -> Path:
    """The built binary, built first when the cache has none for this source."""
    path = binary_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
        # Into a temporary name first: a build cut short leaves no binary that looks whole.
        partial = path.with_name(path.name + ".partial")
        built = subprocess.run(
            ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(partial), "."],
            cwd=SOURCE,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        assert built.returncode == 0, f"go build of {SOURCE} failed:\n{built.stderr}"
        partial.replace(path)
    return path


@dataclass(frozen=True)
class Result:
    """One object's verdict: ``forbidden`` holds the library's (reason, detail) pairs."""

    kind: str
    namespace: str
    name: str
    allowed: bool
    forbidden: tuple[tuple[str, str], ...]

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


def check(objects: list[dict[str, Any]], level: str = "restricted") -> tuple[int, list[Result]]:
    """The exit status and the per-object results of the check over ``objects``; objects of
    kinds that hold no pod spec are skipped by the program and have no result."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump_all(objects, f)
        f.flush()
        done = subprocess.run(
            [str(binary()), "-json", "-level", level, f.name],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    assert done.returncode in (0, 1), f"podsecurity exited {done.returncode}: {done.stderr}"
    results = []
    for line in done.stdout.splitlines():
        r = json.loads(line)
        results.append(
            Result(
                kind=r["kind"],
                namespace=r["namespace"],
                name=r["name"],
                allowed=r["allowed"],
                forbidden=tuple((f["reason"], f["detail"]) for f in r["forbidden"]),
            )
        )
    return done.returncode, results


if __name__ == "__main__":
    print(binary())
    sys.exit(0)
