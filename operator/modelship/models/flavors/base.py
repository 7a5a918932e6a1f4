"""The runtime interface: what a flavor implements to load and predict, and to save.

Which flavor loads a directory, and which saves an object, is ``dispatch``'s table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from modelship.models.enforce import ModelInput
from modelship.models.mlmodel import MLModel
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


@dataclass
class SaveRequest:
    """What ``save_model`` asks of the flavor that saves a model into ``out``."""

    out: Path
    mlmodel: MLModel
    """The ``MLmodel`` being written: the flavor adds its entries (``add_flavor``)."""
    python_version: str
    env: dict[str, str]
    serialization_format: str = "skops"
    predict_fn: str = "predict"
    artifacts: dict[str, str | Path] | None = None
    wants_predict: bool = False
    """True when a signature is to be inferred from the model's output on the input example."""


@dataclass
class Saved:
    """What a flavor wrote: its pinned requirements, and the model's predict when it has one."""

    requirements: list[str] = field(default_factory=list)
    predict: Callable[[Any], Any] | None = None


class SavingFlavor(Protocol):
    """A flavor that saves Python objects as well as loading them (``dispatch.SAVERS``)."""

    @classmethod
    def saves(cls, model: Any) -> bool:
        """Whether this flavor is the one that saves ``model``."""
        ...

    @classmethod
    def save(cls, model: Any, request: SaveRequest) -> Saved:
        """Write ``model``'s files into ``request.out`` and its flavors into ``request.mlmodel``."""
        ...


def pinned(dist: str) -> str:
    """``dist==<installed version>``, or ``dist`` when it is not installed."""
    try:
        return f"{dist}=={importlib_metadata.version(dist)}"
    except importlib_metadata.PackageNotFoundError:
        return dist
