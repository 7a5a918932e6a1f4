"""Model directories saved by real MLflow load and predict exactly as MLflow predicts,
and directories saved by Modelship load in MLflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelship.models import load_model, save_model

pytestmark = pytest.mark.integration


def sample(expected: dict[str, Any]) -> pd.DataFrame:
    s = expected["sample"]
    return pd.DataFrame(s["data"], columns=s["columns"])


@pytest.mark.parametrize("name", ["wine", "wine_proba"])
def test_sklearn_saved_by_mlflow(mlflow_models: tuple[Path, dict[str, Any]], name: str) -> None:
    root, expected = mlflow_models
    # MLflow writes wine with skops (its default), wine_proba with cloudpickle: an opt-in
    model = load_model(root / name, allow_pickle=name == "wine_proba")
    assert model.flavor == "sklearn"
    got = np.asarray(model.predict(sample(expected)))
    np.testing.assert_array_equal(got, np.asarray(expected[name]))


def test_pyfunc_saved_by_mlflow(mlflow_models: tuple[Path, dict[str, Any]]) -> None:
    root, expected = mlflow_models
    model = load_model(root / "scaler", allow_pickle=True)  # python_model.pkl
    assert model.flavor == "python_function"
    ex = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    assert model.predict(ex).to_dict(orient="records") == expected["scaler"]
    assert model.predict(ex, {"k": 3}).to_dict(orient="records") == expected["scaler_k3"]


def test_modelship_saved_models_load_in_mlflow(tmp_path: Path, mlflow_models: tuple[Path, dict[str, Any]]) -> None:
    root, expected = mlflow_models
    X = sample(expected)
    sk = load_model(root / "wine").runtime.model
    save_model(tmp_path / "sk", sk, training_data=X)
    code = (
        "import json, sys, mlflow.pyfunc, pandas as pd\n"
        "s = json.loads(sys.argv[2])\n"
        "m = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "print(json.dumps(m.predict(pd.DataFrame(s['data'], columns=s['columns'])).tolist()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "sk"), json.dumps(expected["sample"])],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == expected["wine"]
