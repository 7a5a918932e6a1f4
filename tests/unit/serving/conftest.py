"""Fixtures of the serving unit tests: models saved by Modelship, an in-process client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from starlette.testclient import TestClient

from modelship.models import save_model
from modelship.models.python_model import PythonModel
from modelship.serving.app import create_app
from modelship.serving.core import ModelServer
from modelship.serving.settings import ServingSettings


class Doubler(PythonModel):
    """Doubles its input; raises on a negative ``a`` (to test 500s)."""

    def load_context(self, context: Any) -> None:
        self.factor = 2

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        if (model_input["a"] < 0).any():
            raise ValueError("negative a is not allowed")
        k = (params or {}).get("k", 1)
        return model_input * self.factor * k


@pytest.fixture(scope="session")
def wine() -> pd.DataFrame:
    X, _ = load_wine(return_X_y=True, as_frame=True)
    return X


@pytest.fixture(scope="session")
def wine_dir(tmp_path_factory: pytest.TempPathFactory, wine: pd.DataFrame) -> Path:
    _, y = load_wine(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(wine, y)
    path = tmp_path_factory.mktemp("models") / "wine"
    save_model(path, model, training_data=wine)
    return path


@pytest.fixture(scope="session")
def pyfunc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from modelship.models.signature import infer_signature

    path = tmp_path_factory.mktemp("models") / "doubler"
    example = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    save_model(path, Doubler(), signature=infer_signature(example, params={"k": 1}), input_example=example)
    return path


@pytest.fixture(scope="session")
def tensor_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.linear_model import LinearRegression

    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    model = LinearRegression().fit(X, X.sum(axis=1))
    path = tmp_path_factory.mktemp("models") / "tensor"
    save_model(path, model, input_example=X[:2])
    return path


ClientFactory = Callable[..., Any]


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[ClientFactory]:
    """``serve(model_dir, **settings)`` -> a started in-process client (closed after).

    ``allow_pickle=True`` for a pickled model (``pyfunc_dir``): the server's opt-in,
    ``MODELSHIP_ALLOW_PICKLE``, for the rest of the test."""
    stack: list[Any] = []

    def factory(model_dir: Path, *, allow_pickle: bool = False, **overrides: Any) -> TestClient:
        if allow_pickle:
            monkeypatch.setenv("MODELSHIP_ALLOW_PICKLE", "true")
        settings = ServingSettings(model_uri=str(model_dir), **overrides)
        core = ModelServer(settings)
        client = TestClient(create_app(settings, core), raise_server_exceptions=False)
        client.__enter__()
        stack.append(client)
        deadline = time.monotonic() + 60
        while not core.ready:
            if core.load_error or time.monotonic() > deadline:
                raise RuntimeError(f"model did not load: {core.load_error}")
            time.sleep(0.02)
        client.core = core  # type: ignore[attr-defined]
        return client

    yield factory
    for client in reversed(stack):
        client.__exit__(None, None, None)
