"""Any MLflow model whose ``python_function.loader_module`` is importable.

MLflow's contract: ``importlib.import_module(loader_module)._load_pyfunc(data_path)``
returns an object with ``predict(data[, params])``; ``data_path`` is the flavor's ``data``
entry under the model directory, or the directory itself. A ``code`` entry names a
directory of the model put on ``sys.path`` first, so the loader module may ship with it.

Importing a module the model names runs code (the module's own, or that of whatever it
unpickles), so this runtime needs the server's opt-in, as pickles do (``trust``).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any

from modelship.models.enforce import ModelInput
from modelship.models.flavors.base import ModelRuntime
from modelship.models.mlmodel import PYFUNC


class LoaderModuleRuntime(ModelRuntime):
    flavor = PYFUNC

    def load(self) -> None:
        conf = self.mlmodel.flavors[PYFUNC]
        shipped = " from the model's code directory" if conf.get("code") else ""
        self.policy.require_code(
            f"the model's python_function flavor imports loader_module {conf['loader_module']!r}{shipped}"
        )
        if conf.get("code"):
            code_dir = str(self.model_dir / conf["code"])
            if code_dir not in sys.path:
                sys.path.insert(0, code_dir)
        module = importlib.import_module(conf["loader_module"])
        data_path = self.model_dir / conf["data"] if conf.get("data") else self.model_dir
        self.impl = module._load_pyfunc(str(data_path))
        self._with_params = "params" in inspect.signature(self.impl.predict).parameters

    def predict(self, data: ModelInput, params: dict[str, Any] | None = None) -> Any:
        data = self.as_frame(data)
        if self._with_params:
            return self.impl.predict(data, params=params)
        return self.impl.predict(data)
