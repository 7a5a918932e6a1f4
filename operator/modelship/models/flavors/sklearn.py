"""scikit-learn: skops by default (as MLflow 3), pickle and cloudpickle when the MLmodel says so.

pickle and cloudpickle need the server's opt-in; skops trusts its defaults plus the types
the server trusts, not the ``skops_trusted_types`` the ``MLmodel`` file lists (``trust``).
"""

from __future__ import annotations

import pickle
import warnings
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelship.models.enforce import ModelInput
from modelship.models.flavors.base import ModelRuntime, Saved, SaveRequest, pinned
from modelship.models.mlmodel import PYFUNC
from modelship.models.trust import SKOPS_TRUSTED_TYPES_ENV, UntrustedModelError

PREDICT_FNS = ("predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba", "score")
SERIALIZATION_FORMATS = ("skops", "cloudpickle", "pickle")


class SklearnRuntime(ModelRuntime):
    flavor = "sklearn"
    batchable = True
    takes_arrays = True

    @classmethod
    def saves(cls, model: Any) -> bool:
        try:
            from sklearn.base import BaseEstimator
        except ImportError:
            return False
        return isinstance(model, BaseEstimator)

    @classmethod
    def save(cls, model: Any, request: SaveRequest) -> Saved:
        """The estimator as skops (the default, as MLflow 3), cloudpickle or pickle."""
        fmt = request.serialization_format
        if fmt not in SERIALIZATION_FORMATS:
            raise ValueError(f"serialization_format must be one of {SERIALIZATION_FORMATS}")
        filename = "model.skops" if fmt == "skops" else "model.pkl"
        _dump(model, request.out / filename, fmt)
        reqs = [
            pinned("scikit-learn"),
            pinned({"skops": "skops", "cloudpickle": "cloudpickle"}.get(fmt, "scikit-learn")),
        ]
        if not hasattr(model, request.predict_fn):
            raise ValueError(f"model has no {request.predict_fn}()")
        request.mlmodel.add_flavor(
            PYFUNC,
            loader_module="mlflow.sklearn",
            model_path=filename,
            predict_fn=request.predict_fn,
            python_version=request.python_version,
            env=request.env,
        )
        request.mlmodel.add_flavor(
            "sklearn",
            pickled_model=filename,
            sklearn_version=importlib_metadata.version("scikit-learn"),
            serialization_format=fmt,
            code=None,
            skops_trusted_types=None,
        )
        return Saved(reqs, getattr(model, request.predict_fn))

    def load(self) -> None:
        conf = self.mlmodel.flavors["sklearn"]
        pyfunc = self.mlmodel.flavors.get(PYFUNC) or {}
        path = self.model_dir / str(conf.get("pickled_model") or pyfunc.get("model_path"))
        fmt = conf.get("serialization_format", "skops" if path.suffix == ".skops" else "cloudpickle")
        if fmt == "skops":
            self.model = _load_skops(path, self.policy.skops_trusted_types)
        elif fmt in ("cloudpickle", "pickle"):
            self.policy.require_code(f"the sklearn model is a {fmt} file ({path.name})")
            with path.open("rb") as f:
                if fmt == "cloudpickle":
                    import cloudpickle

                    self.model = cloudpickle.load(f)
                else:
                    self.model = pickle.load(f)
        else:
            raise ValueError(f"unknown sklearn serialization_format {fmt!r}")
        fn = pyfunc.get("predict_fn", "predict")
        if fn not in PREDICT_FNS or not hasattr(self.model, fn):
            raise ValueError(f"sklearn model has no predict function {fn!r}")
        self._predict = getattr(self.model, fn)
        self._wants_frame = self._needs_frame()
        self.accepts_non_finite = _allows_nan(self.model)

    def _needs_frame(self) -> bool:
        """Whether predict must get a DataFrame rather than the signature-ordered array.

        A model fitted on a DataFrame checks feature names (and a ColumnTransformer selects
        by name), so it gets what MLflow gives it: a DataFrame. When the fitted names are
        exactly the signature's columns, in order, and the saved input example predicts
        the same both ways, the array is used instead: same numbers, no DataFrame built
        and no name check per call (the hot path of the server).
        """
        names = getattr(self.model, "feature_names_in_", None)
        if names is None:
            return False
        if self.column_names is None or list(names) != self.column_names:
            return True
        try:
            example = self.mlmodel.load_input_example(self.model_dir)
        except Exception:  # noqa: BLE001 - an unreadable example only costs the fast path
            return True
        if not isinstance(example, pd.DataFrame) or list(example.columns) != self.column_names:
            return True
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                by_frame = self._predict(example)
                by_array = self._predict(example.to_numpy())
        except Exception:  # noqa: BLE001
            return True
        if not np.array_equal(np.asarray(by_frame), np.asarray(by_array)):
            return True
        warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
        return False

    def predict(self, data: ModelInput, params: dict[str, Any] | None = None) -> Any:
        if isinstance(data, np.ndarray) and self._wants_frame:
            data = self.as_frame(data)
        return self._predict(data)


def _dump(model: Any, path: Path, fmt: str) -> None:
    if fmt == "skops":
        import skops.io

        skops.io.dump(model, path)
        # as MLflow: refuse to write a file that will not load with the default trust list
        untrusted = skops.io.get_untrusted_types(file=path)
        if untrusted:
            path.unlink()
            raise ValueError(
                f"skops cannot load this model without trusting {untrusted}; "
                "save with serialization_format='cloudpickle'"
            )
    elif fmt == "cloudpickle":
        import cloudpickle

        with path.open("wb") as f:
            cloudpickle.dump(model, f)
    else:
        with path.open("wb") as f:
            pickle.dump(model, f)


def _load_skops(path: Path, trusted: tuple[str, ...]) -> Any:
    """Load a skops file, trusting skops' defaults and ``trusted`` (the server's list)."""
    import skops.io

    untrusted = sorted(set(skops.io.get_untrusted_types(file=path)) - set(trusted))
    if untrusted:
        raise UntrustedModelError(
            f"the skops file {path.name} holds types that are not trusted: {untrusted}. "
            "A model's own MLmodel list (skops_trusted_types) is not used; trust them on the "
            f"server, if the model comes from a source you trust: {SKOPS_TRUSTED_TYPES_ENV}=" + ",".join(untrusted)
        )
    return skops.io.load(path, trusted=list(trusted) or None)


def _allows_nan(model: Any) -> bool:
    """Whether missing (NaN) values can reach ``model`` without it raising.

    From scikit-learn's own estimator tags; a pipeline allows them when an imputer comes
    before the first step that does not. Unknown: assume it does (the model decides).
    """
    steps = [s for _, s in model.steps] if hasattr(model, "steps") else [model]
    for step in steps:
        if step is None or step == "passthrough":
            continue
        if "Imputer" in type(step).__name__:
            return True
        try:
            allow = step.__sklearn_tags__().input_tags.allow_nan
        except Exception:  # noqa: BLE001 - older scikit-learn, or not an estimator
            return True
        if not allow:
            return False
    return True
