"""python_function with a user class (``python_model.pkl``, cloudpickled), as MLflow saves it.

Unpickling runs the author's code: it needs the server's opt-in (``trust``).
"""

from __future__ import annotations

import inspect
import shutil
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from modelship.models.enforce import ModelInput
from modelship.models.flavors.base import ModelRuntime, Saved, SaveRequest, pinned
from modelship.models.mlmodel import PYFUNC
from modelship.models.python_model import PythonModel, PythonModelContext, install_mlflow_shim
from modelship.models.trust import TrustPolicy


class PythonModelRuntime(ModelRuntime):
    flavor = PYFUNC
    # A user's predict may look at the whole input (e.g. normalise over it), so requests
    # are not concatenated unless the server settings say the model is row-wise.
    batchable = False

    @classmethod
    def saves(cls, model: Any) -> bool:
        return isinstance(model, PythonModel) or (hasattr(model, "predict") and hasattr(model, "load_context"))

    @classmethod
    def save(cls, model: Any, request: SaveRequest) -> Saved:
        """The object cloudpickled, with copies of its ``artifacts``, as MLflow saves it."""
        import cloudpickle

        out = request.out
        with (out / "python_model.pkl").open("wb") as f:
            cloudpickle.dump(model, f)
        conf: dict[str, Any] = {
            "loader_module": "mlflow.pyfunc.model",
            "python_model": "python_model.pkl",
            "cloudpickle_version": importlib_metadata.version("cloudpickle"),
            "python_version": request.python_version,
            "env": request.env,
            "code": None,
            "streamable": False,
        }
        if request.artifacts:
            conf["artifacts"] = {}
            for name, src in request.artifacts.items():
                dest = out / "artifacts" / Path(src).name
                dest.parent.mkdir(exist_ok=True)
                (shutil.copytree if Path(src).is_dir() else shutil.copy2)(src, dest)
                conf["artifacts"][name] = {"path": f"artifacts/{Path(src).name}", "uri": str(src)}
        request.mlmodel.add_flavor(PYFUNC, **conf)
        saved = Saved([pinned("cloudpickle")])
        if request.wants_predict:  # a user model is not run at save time unless asked for a signature
            # The pickle was written a moment ago from the caller's own object: loading it
            # back runs nothing the caller did not already run.
            runtime = cls(out, request.mlmodel, TrustPolicy(allow_pickle=True))
            runtime.load()
            saved.predict = runtime.predict
        return saved

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
