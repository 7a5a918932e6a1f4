from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.pipeline import Pipeline

from modelship.models import MLModel, load_model, save_model
from modelship.models.enforce import SchemaError
from modelship.models.python_model import PythonModel


class AddOne(PythonModel):
    def load_context(self, context: Any) -> None:
        self.offset = float(Path(context.artifacts["offset"]).read_text())

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        return model_input["x"] + self.offset


@pytest.mark.parametrize("fmt", ["skops", "cloudpickle", "pickle"])
def test_sklearn_round_trip(
    tmp_path: Path, wine: tuple[pd.DataFrame, pd.Series], wine_model: Pipeline, fmt: str
) -> None:
    X, _ = wine
    save_model(tmp_path / "m", wine_model, training_data=X, serialization_format=fmt)
    doc = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    assert doc["flavors"]["sklearn"]["serialization_format"] == fmt
    assert doc["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    # pickles need the opt-in (tests/unit/models/test_safe_loading.py); skops does not
    loaded = load_model(tmp_path / "m", allow_pickle=fmt != "skops")
    assert loaded.predict(X).tolist() == wine_model.predict(X).tolist()


def test_skops_is_the_default_and_files_are_written(
    tmp_path: Path, wine: tuple[pd.DataFrame, pd.Series], wine_model: Pipeline
) -> None:
    X, _ = wine
    mlmodel = save_model(tmp_path / "m", wine_model, training_data=X)
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {
        "MLmodel",
        "model.skops",
        "requirements.txt",
        "python_env.yaml",
        "conda.yaml",
        "input_example.json",
        "serving_input_example.json",
        "training_profile.json",
    } <= names
    assert any(r.startswith("scikit-learn==") for r in (tmp_path / "m" / "requirements.txt").read_text().split())
    assert mlmodel.signature is not None and mlmodel.signature.inputs is not None
    assert mlmodel.signature.inputs.names() == list(X.columns)
    assert mlmodel.signature.outputs is not None and mlmodel.signature.outputs.is_tensor
    example = MLModel.load(tmp_path / "m").load_input_example(tmp_path / "m")
    pd.testing.assert_frame_equal(example, X.head(5).reset_index(drop=True))
    env = yaml.safe_load((tmp_path / "m" / "python_env.yaml").read_text())
    assert env["dependencies"] == ["-r requirements.txt"]


def test_profile_has_quantiles_and_frequencies(
    tmp_path: Path, wine_model: Pipeline, wine: tuple[pd.DataFrame, pd.Series]
) -> None:
    from modelship.models.profile import compute_profile

    df = pd.DataFrame({"x": np.arange(101, dtype=float), "c": ["a"] * 70 + ["b"] * 30 + [None]})
    prof = compute_profile(df)
    assert prof["rows"] == 101
    x = prof["features"]["x"]
    assert x["type"] == "numeric" and x["quantiles"]["0.50"] == 50.0 and x["quantiles"]["1.00"] == 100.0
    c = prof["features"]["c"]
    assert c["type"] == "categorical" and c["frequencies"] == {"a": 0.7, "b": 0.3}
    assert c["missing_rate"] == pytest.approx(1 / 101)
    X, _ = wine
    save_model(tmp_path / "m", wine_model, training_data=X)
    saved = json.loads((tmp_path / "m" / "training_profile.json").read_text())
    assert set(saved["features"]) == set(X.columns)
    assert MLModel.load(tmp_path / "m").metadata == {"modelship.training_profile": "training_profile.json"}


def test_python_model_round_trip_with_artifacts(tmp_path: Path) -> None:
    art = tmp_path / "offset.txt"
    art.write_text("1.5")
    df = pd.DataFrame({"x": [1.0, 2.0]})
    save_model(tmp_path / "m", AddOne(), input_example=df, artifacts={"offset": art})
    loaded = load_model(tmp_path / "m", allow_pickle=True)  # python_model.pkl is a pickle
    assert loaded.flavor == "python_function"
    assert loaded.predict(df).tolist() == [2.5, 3.5]
    sig = MLModel.load(tmp_path / "m").signature
    assert sig is not None and sig.outputs is not None  # inferred by running the model on the example


def test_enforcement_applies_on_predict(
    tmp_path: Path, wine_model: Pipeline, wine: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, _ = wine
    save_model(tmp_path / "m", wine_model, training_data=X)
    loaded = load_model(tmp_path / "m")
    with pytest.raises(SchemaError, match="missing inputs"):
        loaded.predict(X.drop(columns=["hue"]))
    with pytest.raises(SchemaError, match="'hue'"):
        loaded.predict(X.head(1).assign(hue=np.nan))
    # extra columns are dropped and order does not matter, as in MLflow
    shuffled = X.head(4)[list(X.columns[::-1])].assign(extra=1)
    assert loaded.predict(shuffled).tolist() == wine_model.predict(X.head(4)).tolist()


def test_refuses_to_overwrite(tmp_path: Path, wine_model: Pipeline) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x").write_text("")
    with pytest.raises(FileExistsError):
        save_model(tmp_path / "m", wine_model)


def test_unknown_model_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        save_model(tmp_path / "m", object())


def test_loader_module_flavor(tmp_path: Path) -> None:
    """Any MLflow model whose loader_module is importable: MLflow's _load_pyfunc contract."""
    mod = tmp_path / "my_loader_mod.py"
    mod.write_text(
        "class _M:\n"
        "    def __init__(self, path): self.path = path\n"
        "    def predict(self, df, params=None): return df.sum(axis=1) * (params or {}).get('k', 1)\n"
        "def _load_pyfunc(path):\n"
        "    return _M(path)\n"
    )
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "MLmodel").write_text(
        yaml.safe_dump({"flavors": {"python_function": {"loader_module": "my_loader_mod", "data": "."}}})
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        loaded = load_model(tmp_path / "m", allow_pickle=True)  # it imports code
        assert loaded.predict(pd.DataFrame({"a": [1, 2], "b": [3, 4]}), {"k": 2}).tolist() == [
            8,
            12,
        ]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("my_loader_mod", None)


def test_file_uri_and_missing_path(tmp_path: Path, wine_model: Pipeline) -> None:
    from modelship.models.uri import ModelURIError, resolve_model_uri

    save_model(tmp_path / "m", wine_model)
    assert resolve_model_uri(f"file://{tmp_path / 'm'}") == tmp_path / "m"
    with pytest.raises(ModelURIError, match="does not exist"):
        resolve_model_uri(str(tmp_path / "nope"))
    with pytest.raises(ModelURIError, match="unsupported"):
        resolve_model_uri("ftp://host/x")
