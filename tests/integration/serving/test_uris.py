"""runs:/ and models:/ URIs resolved through a real ``mlflow server`` (REST + the
mlflow-artifacts proxy), as a ModelDeployment pod resolves them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelship.models import load_model
from modelship.models.uri import ModelURIError, resolve_model_uri

pytestmark = pytest.mark.integration
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def logged(mlflow_tracking: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(HERE / "log_models.py")],
        check=False,
        env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_tracking},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture
def tracking_env(mlflow_tracking: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_tracking)
    monkeypatch.setenv("MODELSHIP_MODEL_CACHE", str(tmp_path / "cache"))
    return mlflow_tracking


@pytest.mark.parametrize(
    "uri",
    [
        "runs:/{run_id}/model",
        "models:/wine-uri/1",
        "models:/wine-uri/latest",
        "models:/wine-uri@champion",
        "models:/wine-uri/None",
        "{model_uri}",  # MLflow 3 logged model, models:/m-<id>
    ],
)
def test_uri_resolves_and_predicts(logged: dict[str, Any], tracking_env: str, uri: str) -> None:
    model = load_model(uri.format(run_id=logged["run_id"], model_uri=logged["model_uri"]))
    s = logged["sample"]
    assert model.predict(pd.DataFrame(s["data"], columns=s["columns"])).tolist() == logged["expected"]


def test_unknown_names_are_clear_errors(logged: dict[str, Any], tracking_env: str) -> None:
    with pytest.raises(ModelURIError):
        resolve_model_uri("models:/no-such-model/1")
    with pytest.raises(ModelURIError):
        resolve_model_uri("models:/wine-uri@no-such-alias")
    with pytest.raises(ModelURIError):
        resolve_model_uri(f"runs:/{logged['run_id']}/not-a-model")
    with pytest.raises(ModelURIError, match="Production"):
        resolve_model_uri("models:/wine-uri/Production")


def test_serve_from_a_registry_uri(logged: dict[str, Any], tracking_env: str, modelship_server: Any) -> None:
    server = modelship_server("models:/wine-uri@champion", env={"MLFLOW_TRACKING_URI": tracking_env})
    resp = server.http.post("/invocations", json={"dataframe_split": logged["sample"]})
    assert resp.json() == {"predictions": logged["expected"]}
    assert server.http.get("/v2/models/wine-uri/ready").status_code == 200
