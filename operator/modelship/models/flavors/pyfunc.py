"""python_function with a user class (``python_model.pkl``, cloudpickled), as MLflow saves it.

Unpickling runs the author's code: it needs the server's opt-in (``trust``).
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from modelship.models.enforce import ModelInput
from modelship.models.flavors.base import ModelRuntime
from modelship.models.mlmodel import PYFUNC
from modelship.models.python_model import PythonModelContext, install_mlflow_shim


class PythonModelRuntime(ModelRuntime):
    flavor = PYFUNC
    # A user's predict may look at the whole input (e.g. normalise over it), so requests
    # are not concatenated unless the server settings say the model is row-wise.
    batchable = False

    def load(self) -> None:
        import cloudpickle

        conf = self.mlmodel.flavors[PYFUNC]
        target = conf.get("python_model", "python_model.pkl")
        if str(target).endswith(".py"):
            raise ValueError("models-from-code (python_model: *.py) needs MLflow; not supported")
        self.policy.require_code(f"the model is a cloudpickled python_function class ({target})")
        if conf.get("code"):
            code_dir = str(self.model_dir / conf["code"])
            if code_dir not in sys.path:
                sys.path.insert(0, code_dir)
        install_mlflow_shim()
        with (self.model_dir / target).open("rb") as f:
            self.python_model = cloudpickle.load(f)
        artifacts = {
            name: str(self.model_dir / (spec["path"] if isinstance(spec, dict) else spec))
            for name, spec in (conf.get("artifacts") or {}).items()
        }
        self.context = PythonModelContext(artifacts=artifacts, model_config=conf.get("model_config") or {})
        if hasattr(self.python_model, "load_context"):
            self.python_model.load_context(self.context)
        sig = inspect.signature(self.python_model.predict).parameters
        positional = [p for p in sig.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self._with_context = "context" in sig or len(positional) >= 2
        self._with_params = "params" in sig

    def predict(self, data: ModelInput, params: dict[str, Any] | None = None) -> Any:
        data = self.as_frame(data)
        kwargs = {"params": params} if self._with_params else {}
        if self._with_context:
            return self.python_model.predict(self.context, data, **kwargs)
        return self.python_model.predict(data, **kwargs)
