"""Which flavor loads a model directory, and which saves a Python object: the two tables.

``select_runtime`` reads the ``MLmodel`` file's flavors; ``flavor_saving`` asks each saving
flavor in turn whether the object is its kind. A new flavor is a class in this package and
a line here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelship.models.flavors.base import ModelRuntime, SavingFlavor
from modelship.models.flavors.loader_module import LoaderModuleRuntime
from modelship.models.flavors.pyfunc import PythonModelRuntime
from modelship.models.flavors.sklearn import SklearnRuntime
from modelship.models.mlmodel import PYFUNC, MLModel
from modelship.models.trust import TrustPolicy

SAVERS: tuple[type[SavingFlavor], ...] = (SklearnRuntime, PythonModelRuntime)
"""The flavors ``save_model`` writes, in the order they are asked."""


def select_runtime(model_dir: Path, mlmodel: MLModel, policy: TrustPolicy | None = None) -> ModelRuntime:
    """Pick the runtime: native sklearn, then a python_function user class, then any
    importable ``loader_module`` (MLflow's generic pyfunc contract). ``policy`` says what
    the runtime may load (``modelship.models.trust``); the default trusts the least."""
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


def flavor_saving(model: Any) -> type[SavingFlavor]:
    """The flavor that saves ``model``: a scikit-learn estimator or a ``PythonModel``."""
    for flavor in SAVERS:
        if flavor.saves(model):
            return flavor
    raise TypeError(f"cannot save a {type(model).__name__}: not a sklearn estimator or PythonModel")
