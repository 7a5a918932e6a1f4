"""The curl session of docs/tracking.md ("The REST API from curl"), run as it is written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from .conftest import Launcher

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[3] / "docs" / "tracking.md"
MARKER = "<!-- tested: test_docs_curl.py -->"


def curl_session() -> str:
    text = DOC.read_text()
    assert MARKER in text, f"{DOC} lost its tested curl example"
    block = re.match(r"\s*```sh\n(.*?)\n```", text.split(MARKER, 1)[1], re.DOTALL)
    assert block, "the marker must be followed by a ```sh block"
    return block.group(1)


def test_the_documented_curl_session_runs_against_a_server_with_a_token(launcher: Launcher) -> None:
    for tool in ("bash", "curl", "jq"):
        assert shutil.which(tool), f"{tool} is not installed: run scripts/setup.sh"
    token = uuid.uuid4().hex
    server = launcher.server(token=token, name="curl")
    experiment = f"curl-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, MLFLOW_TRACKING_URI=server.url, MLFLOW_TRACKING_TOKEN=token, EXPERIMENT=experiment)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", curl_session()],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines[-4:] == ["[0,0.9]", "[1,0.8]", "[2,0.7]", "from-curl"], done.stdout

    from mlflow import MlflowClient

    client = MlflowClient(server.url)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "from-curl"
    assert run.data.params == {"lr": "0.01"} and run.data.tags["source"] == "curl"

    # Without the token the same writes are refused, so the example's auth line is what let them in.
    refused = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", curl_session()],
        env={k: v for k, v in env.items() if k != "MLFLOW_TRACKING_TOKEN"} | {"EXPERIMENT": experiment + "-x"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert refused.returncode != 0 and "401" in refused.stderr
