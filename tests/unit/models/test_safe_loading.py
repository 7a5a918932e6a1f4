"""Safe loading: a model directory does not decide what code it may run when loaded.

pickle, cloudpickle and ``loader_module`` models run code of the model's author on load;
they are refused unless the server's operator opts in (``allow_pickle=True``,
``MODELSHIP_ALLOW_PICKLE=true``, ``modelship serve --allow-pickle``). skops models load
without the opt-in, trusting skops' defaults plus ``MODELSHIP_SKOPS_TRUSTED_TYPES``, never
the ``skops_trusted_types`` an ``MLmodel`` file lists.
"""

from __future__ import annotations

import operator
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from modelship.models import MLModel, load_model, save_model
from modelship.models.python_model import PythonModel
from modelship.models.trust import UntrustedModelError


@pytest.fixture(autouse=True)
def _no_opt_in_from_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from the default: nothing allowed by the environment."""
    monkeypatch.delenv("MODELSHIP_ALLOW_PICKLE", raising=False)
    monkeypatch.delenv("MODELSHIP_SKOPS_TRUSTED_TYPES", raising=False)


class _Planted:
    """Unpickling it creates a directory: the proof that a pickle ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.mkdir, (str(self.marker),)


class Echo(PythonModel):
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        return model_input["x"]


def sklearn_dir(path: Path, payload_name: str, fmt: str | None, **sklearn: Any) -> Path:
    """A model directory as MLflow's sklearn flavor writes it, around a given payload file."""
    mlmodel = MLModel()
    mlmodel.add_flavor("python_function", loader_module="mlflow.sklearn", model_path=payload_name)
    conf: dict[str, Any] = {"pickled_model": payload_name, **sklearn}
    if fmt is not None:
        conf["serialization_format"] = fmt
    mlmodel.add_flavor("sklearn", **conf)
    mlmodel.save(path / "MLmodel")
    return path


@pytest.mark.parametrize(("fmt", "name"), [("pickle", "model.pkl"), ("cloudpickle", "model.pkl"), (None, "model.pkl")])
def test_a_pickle_is_refused_and_not_run(tmp_path: Path, fmt: str | None, name: str) -> None:
    marker = tmp_path / "ran"
    model = tmp_path / "m"
    model.mkdir()
    (model / name).write_bytes(pickle.dumps(_Planted(marker)))
    sklearn_dir(model, name, fmt)
    with pytest.raises(UntrustedModelError) as info:
        load_model(model)
    assert not marker.exists(), "the pickle ran before the refusal"
    message = str(info.value)
    assert "--allow-pickle" in message and "MODELSHIP_ALLOW_PICKLE" in message
    assert (fmt or "cloudpickle") in message


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle"])
def test_pickled_sklearn_loads_with_the_opt_in(
    tmp_path: Path,
    wine: tuple[pd.DataFrame, pd.Series],
    wine_model: Pipeline,
    fmt: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, _ = wine
    save_model(tmp_path / "m", wine_model, training_data=X, serialization_format=fmt)
    expected = wine_model.predict(X.head(3)).tolist()
    assert load_model(tmp_path / "m", allow_pickle=True).predict(X.head(3)).tolist() == expected
    monkeypatch.setenv("MODELSHIP_ALLOW_PICKLE", "true")
    assert load_model(tmp_path / "m").predict(X.head(3)).tolist() == expected
    # an explicit refusal wins over the environment
    with pytest.raises(UntrustedModelError):
        load_model(tmp_path / "m", allow_pickle=False)


def test_python_model_pkl_is_refused_without_the_opt_in(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": [1.0, 2.0]})
    save_model(tmp_path / "m", Echo(), input_example=df)  # saving our own object is fine
    with pytest.raises(UntrustedModelError, match="python_model.pkl.*--allow-pickle"):
        load_model(tmp_path / "m")
    assert load_model(tmp_path / "m", allow_pickle=True).predict(df).tolist() == [1.0, 2.0]


def test_python_model_pickle_is_not_run_when_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    model = tmp_path / "m"
    model.mkdir()
    (model / "python_model.pkl").write_bytes(pickle.dumps(_Planted(marker)))
    MLModel(
        flavors={"python_function": {"loader_module": "mlflow.pyfunc.model", "python_model": "python_model.pkl"}}
    ).save(model / "MLmodel")
    with pytest.raises(UntrustedModelError):
        load_model(model)
    assert not marker.exists()


def loader_module_dir(tmp_path: Path, module: str, marker: Path) -> Path:
    model = tmp_path / "m"
    (model / "code").mkdir(parents=True)
    (model / "code" / f"{module}.py").write_text(
        "import os\n"
        f"os.mkdir({str(marker)!r})  # runs on import\n"
        "class _M:\n"
        "    def predict(self, df):\n"
        "        return df.sum(axis=1)\n"
        "def _load_pyfunc(path):\n"
        "    return _M()\n"
    )
    (model / "MLmodel").write_text(
        yaml.safe_dump({"flavors": {"python_function": {"loader_module": module, "code": "code"}}})
    )
    return model


def test_loader_module_code_is_refused_and_not_imported(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    model = loader_module_dir(tmp_path, "planted_loader_mod", marker)
    path_before = list(sys.path)
    with pytest.raises(UntrustedModelError) as info:
        load_model(model)
    assert not marker.exists() and "planted_loader_mod" not in sys.modules
    assert sys.path == path_before, "the model's code directory went on sys.path"
    assert "loader_module" in str(info.value) and "--allow-pickle" in str(info.value)


def test_loader_module_loads_with_the_opt_in(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    model = loader_module_dir(tmp_path, "allowed_loader_mod", marker)
    try:
        loaded = load_model(model, allow_pickle=True)
        assert loaded.predict(pd.DataFrame({"a": [1, 2], "b": [3, 4]})).tolist() == [4, 6]
        assert marker.exists()
    finally:
        sys.modules.pop("allowed_loader_mod", None)
        code_dir = str(model / "code")
        if code_dir in sys.path:
            sys.path.remove(code_dir)


def skops_dir(path: Path, model: Any, **sklearn: Any) -> Path:
    import skops.io

    path.mkdir()
    skops.io.dump(model, path / "model.skops")
    return sklearn_dir(path, "model.skops", "skops", **sklearn)


def test_skops_trusted_types_of_the_model_file_are_ignored(tmp_path: Path) -> None:
    # A transformer whose function is os.system; the MLmodel file trusts it, as a crafted
    # model would (MLflow writes the list it was given at save time into MLmodel).
    model = skops_dir(tmp_path / "m", FunctionTransformer(func=os.system), skops_trusted_types=["posix.system"])
    with pytest.raises(UntrustedModelError) as info:
        load_model(model)
    message = str(info.value)
    assert "posix.system" in message and "MODELSHIP_SKOPS_TRUSTED_TYPES" in message


def test_skops_trusted_types_come_from_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    X = np.arange(8.0).reshape(4, 2)
    fitted = make_pipeline(FunctionTransformer(func=operator.neg), LinearRegression()).fit(X, X.sum(axis=1))
    model = skops_dir(tmp_path / "m", fitted)
    with pytest.raises(UntrustedModelError, match="_operator.neg"):
        load_model(model)
    monkeypatch.setenv("MODELSHIP_SKOPS_TRUSTED_TYPES", " numpy.foo , _operator.neg")
    assert np.allclose(load_model(model).predict(X), X.sum(axis=1))
    monkeypatch.delenv("MODELSHIP_SKOPS_TRUSTED_TYPES")
    assert np.allclose(load_model(model, skops_trusted_types=["_operator.neg"]).predict(X), X.sum(axis=1))


def test_default_skops_models_need_no_opt_in(
    tmp_path: Path, wine: tuple[pd.DataFrame, pd.Series], wine_model: Pipeline
) -> None:
    X, _ = wine
    save_model(tmp_path / "m", wine_model, training_data=X)
    assert load_model(tmp_path / "m").predict(X.head(2)).tolist() == wine_model.predict(X.head(2)).tolist()


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("true", True),
        ("1", True),
        ("YES", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("", False),
        ("off", False),
    ],
)
def test_the_setting_reads_like_a_boolean_setting(monkeypatch: pytest.MonkeyPatch, value: str, allowed: bool) -> None:
    from modelship.models.trust import TrustPolicy

    monkeypatch.setenv("MODELSHIP_ALLOW_PICKLE", value)
    assert TrustPolicy.from_env().allow_pickle is allowed


def test_a_misspelt_setting_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelship.models.trust import TrustPolicy

    monkeypatch.setenv("MODELSHIP_ALLOW_PICKLE", "ture")
    with pytest.raises(ValueError, match="MODELSHIP_ALLOW_PICKLE"):
        TrustPolicy.from_env()


def test_serve_flag_allow_pickle(
    tmp_path: Path,
    wine: tuple[pd.DataFrame, pd.Series],
    wine_model: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``modelship serve --allow-pickle`` reaches the loader through the server's settings."""
    import argparse

    from modelship.serving.cli_serve import add_arguments, settings_from_args

    X, _ = wine
    save_model(tmp_path / "m", wine_model, serialization_format="pickle")
    monkeypatch.setenv("MODELSHIP_ALLOW_PICKLE", "false")  # restored after the test
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    refused = settings_from_args(parser.parse_args(["-m", str(tmp_path / "m")]))
    assert refused.allow_pickle is False
    with pytest.raises(UntrustedModelError):
        load_model(tmp_path / "m", allow_pickle=refused.allow_pickle)
    settings = settings_from_args(parser.parse_args(["-m", str(tmp_path / "m"), "--allow-pickle"]))
    assert settings.allow_pickle is True
    loaded = load_model(settings.model_uri, allow_pickle=settings.allow_pickle)
    assert loaded.predict(X.head(1)).tolist() == wine_model.predict(X.head(1)).tolist()
