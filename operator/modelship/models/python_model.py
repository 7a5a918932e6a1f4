"""The user-class contract of the python_function flavor: ``load_context`` and ``predict``.

``PythonModel`` mirrors ``mlflow.pyfunc.PythonModel`` so a class written for MLflow works
here unchanged, and a class written for Modelship loads in MLflow. When the real
``mlflow`` package is absent, ``install_mlflow_shim`` registers these classes under the
module names MLflow pickles them with, so a model saved by MLflow still unpickles.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PythonModelContext:
    """What ``load_context`` receives: artifact paths by name and the model config."""

    artifacts: dict[str, str] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)


class PythonModel:
    """Subclass and override ``predict``; ``load_context`` runs once when loaded."""

    def load_context(self, context: PythonModelContext) -> None:
        pass

    def predict(self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError


def install_mlflow_shim() -> None:
    """Make ``mlflow.pyfunc.model.PythonModel`` importable when mlflow is not installed."""
    try:
        import mlflow.pyfunc.model  # noqa: F401

        return
    except ImportError:
        pass
    root = sys.modules.get("mlflow") or types.ModuleType("mlflow")
    pyfunc = types.ModuleType("mlflow.pyfunc")
    model = types.ModuleType("mlflow.pyfunc.model")
    for mod in (pyfunc, model):
        mod.PythonModel = PythonModel  # type: ignore[attr-defined]
        mod.PythonModelContext = PythonModelContext  # type: ignore[attr-defined]
    pyfunc.model = model  # type: ignore[attr-defined]
    root.pyfunc = pyfunc  # type: ignore[attr-defined]
    sys.modules.setdefault("mlflow", root)
    sys.modules["mlflow.pyfunc"] = pyfunc
    sys.modules["mlflow.pyfunc.model"] = model
