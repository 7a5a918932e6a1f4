"""Load a model directory into a ``LoadedModel``: metadata, runtime, schema enforcement."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelship.models.enforce import Enforcer, ModelInput, SchemaError
from modelship.models.flavors import ModelRuntime, select_runtime
from modelship.models.mlmodel import MLModel
from modelship.models.signature import ParamSpec
from modelship.models.trust import TrustPolicy

_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "string": (str,),
}


class LoadedModel:
    """A loaded model: ``predict`` enforces the signature, then calls the runtime.

    Schema enforcement has one order, here and in the model server's codecs (which decode
    a body straight into the checked input, with fast paths, but in the same steps): the
    params (``resolve_params``), then the input's columns and types (``coerce``), then its
    values (``check_values``). An input wrong in several ways gets the same first error
    from ``predict`` as from the server.
    """

    def __init__(self, model_dir: Path, mlmodel: MLModel, runtime: ModelRuntime) -> None:
        self.model_dir = model_dir
        self.metadata = mlmodel
        self.runtime = runtime
        sig = mlmodel.signature
        self.input_schema = sig.inputs if sig else None
        self.output_schema = sig.outputs if sig else None
        self.param_specs: tuple[ParamSpec, ...] = (sig.params or ()) if sig else ()
        self.enforcer = Enforcer(self.input_schema)

    @property
    def flavor(self) -> str:
        return self.runtime.flavor

    def coerce(self, data: Any) -> ModelInput:
        """Turn a DataFrame, array, dict or list into an input that matches the signature."""
        if self.input_schema is None:
            if isinstance(data, list):
                return pd.DataFrame(data)
            return data
        if self.enforcer.is_tensor:
            if isinstance(data, pd.DataFrame):
                data = data.to_numpy()
            return self.enforcer.tensor(data)
        if isinstance(data, np.ndarray):
            if data.ndim == 1:
                data = data.reshape(1, -1) if len(self.enforcer.columns) == data.shape[0] else data.reshape(-1, 1)
            if data.ndim != 2 or data.shape[1] != len(self.enforcer.columns):
                raise SchemaError(
                    f"Model expects {len(self.enforcer.columns)} input columns, got array of shape {list(data.shape)}"
                )
            data = pd.DataFrame(data, columns=self.enforcer.names or None)
        elif isinstance(data, dict):
            data = pd.DataFrame({k: v if isinstance(v, (list, np.ndarray)) else [v] for k, v in data.items()})
        elif isinstance(data, list):
            data = pd.DataFrame(data)
            positional = not all(isinstance(c, str) for c in data.columns)
            if self.enforcer.names and positional and data.shape[1] == len(self.enforcer.names):
                data.columns = self.enforcer.names
        elif isinstance(data, pd.Series):
            data = data.to_frame()
        if not isinstance(data, pd.DataFrame):
            raise SchemaError(f"cannot use a {type(data).__name__} as model input")
        return self.enforcer.frame(data)

    def check_values(self, data: ModelInput) -> None:
        """Refuse empty inputs, and NaN / infinity when the model is known to raise on them."""
        if isinstance(data, (np.ndarray, pd.DataFrame)) and (data.ndim == 0 or len(data) == 0):
            raise SchemaError("the input has no rows")
        if self.runtime.accepts_non_finite:
            return
        if isinstance(data, np.ndarray):
            if data.dtype.kind == "f" and not np.isfinite(data).all():
                bad: Any = np.where(~np.isfinite(data).all(axis=0))[0] if data.ndim == 2 else []
                names = self.enforcer.names
                col = names[bad[0]] if len(bad) and names else (int(bad[0]) if len(bad) else 0)
                raise SchemaError(f"Column {col!r} has missing or infinite values, which this model does not accept")
        elif isinstance(data, pd.DataFrame):
            for name in data.columns:
                col = data[name]
                if col.dtype.kind == "f" and not np.isfinite(col.to_numpy()).all():
                    raise SchemaError(
                        f"Column {name!r} has missing or infinite values, which this model does not accept"
                    )
                if col.dtype.kind == "O" and col.isna().any():
                    raise SchemaError(f"Column {name!r} has missing values, which this model does not accept")
        elif isinstance(data, dict):
            for name, arr in data.items():
                if isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and not np.isfinite(arr).all():
                    raise SchemaError(
                        f"Input {name!r} has missing or infinite values, which this model does not accept"
                    )

    def resolve_params(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        """Params with the signature's defaults filled in and their types checked."""
        if not self.param_specs:
            return params or None
        out = {p.name: p.default for p in self.param_specs}
        for key, value in (params or {}).items():
            spec = next((p for p in self.param_specs if p.name == key), None)
            if spec is None:
                continue  # as MLflow: params the signature does not declare are ignored
            allowed = _PARAM_TYPES.get(spec.type)
            values = value if spec.shape is not None and isinstance(value, list) else [value]
            if allowed and any(
                not isinstance(v, allowed) or (isinstance(v, bool) and bool not in allowed) for v in values
            ):
                raise SchemaError(f"Param {key!r} must be of type {spec.type}, got {value!r}")
            out[key] = value
        return out

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Enforce, then predict (the library and batch path; the server batches first)."""
        data, resolved = self.enforce(data, params)
        return self.runtime.predict(data, resolved)

    def enforce(self, data: Any, params: dict[str, Any] | None = None) -> tuple[ModelInput, dict[str, Any] | None]:
        """The checked input and params, in the one order: params, columns and types, values."""
        resolved = self.resolve_params(params)
        data = self.coerce(data)
        self.check_values(data)
        return data, resolved


def load_model(
    uri: str | Path,
    *,
    dst: str | Path | None = None,
    allow_pickle: bool | None = None,
    skops_trusted_types: Iterable[str] | str | None = None,
) -> LoadedModel:
    """Load a model from a local path or any URI that ``modelship.models.uri`` resolves.

    ``allow_pickle``: load pickle, cloudpickle and ``loader_module`` models, which run the
    model author's code (``modelship.models.trust``); ``skops_trusted_types``: types a skops
    file may hold beyond skops' defaults. Left ``None``, each comes from the server's
    environment (``MODELSHIP_ALLOW_PICKLE``, ``MODELSHIP_SKOPS_TRUSTED_TYPES``); unset
    there too, pickles are refused and skops trusts only its defaults.
    """
    from modelship.models.uri import resolve_model_uri

    policy = TrustPolicy.resolve(allow_pickle, skops_trusted_types)  # before any download
    model_dir = resolve_model_uri(str(uri), dst=dst)
    mlmodel = MLModel.load(model_dir)
    runtime = select_runtime(model_dir, mlmodel, policy)
    runtime.load()
    return LoadedModel(model_dir, mlmodel, runtime)
