"""An MLflow 2.x client in a virtual environment of its own, for the tests that run one
(tracking integration, registry e2e): built once into the cache directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

MLFLOW2 = "2.22.1"


def mlflow2_python() -> Path:
    """A venv with mlflow-skinny 2.x and scikit-learn, built once into the cache directory
    (the same cache as the test bed: $MODELSHIP_CACHE or ~/.cache/modelship)."""
    cache = Path(
        os.environ.get("MODELSHIP_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelship"
    )
    venv = cache / f"mlflow-{MLFLOW2}-venv"
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)  # a build that was interrupted
    cache.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"mlflow-skinny=={MLFLOW2}", "scikit-learn", "pandas", "numpy"],
        check=True,
        capture_output=True,
        timeout=1500,
    )
    (venv / ".complete").touch()
    return python
