"""The runtime interface and the rule that picks a runtime for a model directory."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelship.models.enforce import ModelInput
from modelship.models.mlmodel import PYFUNC, MLModel
from modelship.models.trust import TrustPolicy


class PredictionError(RuntimeError):
    """The model's own code raised while predicting (a server-side error, 500)."""


class ModelRuntime(ABC):
    """Loads one model directory and predicts on enforced inputs."""

    #: the flavor name this runtime serves (as in ``MLmodel``)
    flavor: str = ""
    #: True when a prediction on rows is row-independent, so concurrent requests may be
    #: concatenated into one ``predict`` call and the result split back.
    batchable: bool = False
    #: True when ``predict`` accepts a 2-D array in signature column order in place of a
    #: DataFrame (saves building a DataFrame on the hot path).
    takes_arrays: bool = False
    #: False when the model is known to raise on NaN or infinity (e.g. most sklearn
    #: estimators): such values are then refused as a bad request before predict.
    accepts_non_finite: bool = True

    def __init__(self, model_dir: Path, mlmodel: MLModel, policy: TrustPolicy | None = None) -> None:
        self.model_dir = model_dir
        self.mlmodel = mlmodel
        # Without a policy a runtime trusts the least; load_model passes the server's.
        self.policy = policy or TrustPolicy()
        self.column_names: list[str] | None = None
        sig = mlmodel.signature
        if sig is not None and sig.inputs is not None and not sig.inputs.is_tensor and sig.inputs.has_names:
            self.column_names = sig.inputs.names()

    @abstractmethod
    def load(self) -> None:
        """Load the model into memory (may be slow; called once, off the event loop)."""

    @abstractmethod
    def predict(self, data: ModelInput, params: dict[str, Any] | None = None) -> Any:
        """Predict; exceptions raised by model code propagate unchanged."""

    def as_frame(self, data: ModelInput) -> Any:
        """An array in column order becomes the DataFrame MLflow would have built."""
        if isinstance(data, np.ndarray) and self.column_names is not None and data.ndim == 2:
            return pd.DataFrame(data, columns=self.column_names)
        return data


def select_runtime(model_dir: Path, mlmodel: MLModel, policy: TrustPolicy | None = None) -> ModelRuntime:
    """Pick the runtime: native sklearn, then a python_function user class, then any
    importable ``loader_module`` (MLflow's generic pyfunc contract). ``policy`` says what
    the runtime may load (``modelship.models.trust``); the default trusts the least."""
    from modelship.models.flavors.loader_module import LoaderModuleRuntime
    from modelship.models.flavors.pyfunc import PythonModelRuntime
    from modelship.models.flavors.sklearn import SklearnRuntime

    pyfunc = mlmodel.flavors.get(PYFUNC) or {}
    if "sklearn" in mlmodel.flavors:
        return SklearnRuntime(model_dir, mlmodel, policy)
    if pyfunc.get("python_model") or pyfunc.get("loader_module") in (
        "mlflow.pyfunc.model",
        "modelship.models.flavors.pyfunc",
    ):
        return PythonModelRuntime(model_dir, mlmodel, policy)
    if pyfunc.get("loader_module"):
        return LoaderModuleRuntime(model_dir, mlmodel, policy)
    raise ValueError(f"{model_dir}: no flavor this server can load (flavors: {sorted(mlmodel.flavors)})")
