"""Save a model directory in MLflow's format (loadable by MLflow 3 and by Modelship).

``save_model(path, model, ...)`` takes a scikit-learn estimator or a ``PythonModel``.
sklearn models are written with skops by default (as MLflow 3 does); ``pickle`` and
``cloudpickle`` only when asked. Alongside the ``MLmodel`` file it writes the signature
(given, or inferred from the input example / training data and the model's output on it),
the input example, ``requirements.txt``, ``python_env.yaml``, ``conda.yaml`` and the
training-data profile.
"""

from __future__ import annotations

import json
import platform
import shutil
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from modelship.models.mlmodel import MLMODEL_FILE, PYFUNC, MLModel
from modelship.models.profile import PROFILE_FILE, compute_profile
from modelship.models.python_model import PythonModel
from modelship.models.signature import ModelSignature, infer_signature

SERIALIZATION_FORMATS = ("skops", "cloudpickle", "pickle")


def _pin(dist: str) -> str:
    try:
        return f"{dist}=={importlib_metadata.version(dist)}"
    except importlib_metadata.PackageNotFoundError:
        return dist


def _is_sklearn(model: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator
    except ImportError:
        return False
    return isinstance(model, BaseEstimator)


def save_model(
    path: str | Path,
    model: Any,
    *,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    training_data: pd.DataFrame | np.ndarray | None = None,
    serialization_format: str = "skops",
    predict_fn: str = "predict",
    artifacts: dict[str, str | Path] | None = None,
    params: dict[str, Any] | None = None,
    pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> MLModel:
    """Write ``model`` to the new directory ``path`` and return its ``MLmodel``.

    ``training_data``, when given, is profiled, and stands in for the input example
    (its first 5 rows) and for the signature's inputs when those are not given.
    """
    out = Path(path)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} already exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    if input_example is None and training_data is not None:
        input_example = training_data[:5] if isinstance(training_data, np.ndarray) else training_data.head(5)
    mlmodel = MLModel(metadata=dict(metadata or {}))
    mlmodel.extra["modelship_version"] = _modelship_version()
    env = {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    python_version = platform.python_version()

    if _is_sklearn(model):
        reqs = [_pin("scikit-learn")]
        if serialization_format not in SERIALIZATION_FORMATS:
            raise ValueError(f"serialization_format must be one of {SERIALIZATION_FORMATS}")
        filename = "model.skops" if serialization_format == "skops" else "model.pkl"
        _dump_sklearn(model, out / filename, serialization_format)
        reqs.append(_pin({"skops": "skops", "cloudpickle": "cloudpickle"}.get(serialization_format, "scikit-learn")))
        if not hasattr(model, predict_fn):
            raise ValueError(f"model has no {predict_fn}()")
        mlmodel.add_flavor(
            PYFUNC,
            loader_module="mlflow.sklearn",
            model_path=filename,
            predict_fn=predict_fn,
            python_version=python_version,
            env=env,
        )
        mlmodel.add_flavor(
            "sklearn",
            pickled_model=filename,
            sklearn_version=importlib_metadata.version("scikit-learn"),
            serialization_format=serialization_format,
            code=None,
            skops_trusted_types=None,
        )
        predict = getattr(model, predict_fn)
    elif isinstance(model, PythonModel) or (hasattr(model, "predict") and hasattr(model, "load_context")):
        import cloudpickle

        with (out / "python_model.pkl").open("wb") as f:
            cloudpickle.dump(model, f)
        reqs = [_pin("cloudpickle")]
        conf: dict[str, Any] = {
            "loader_module": "mlflow.pyfunc.model",
            "python_model": "python_model.pkl",
            "cloudpickle_version": importlib_metadata.version("cloudpickle"),
            "python_version": python_version,
            "env": env,
            "code": None,
            "streamable": False,
        }
        if artifacts:
            conf["artifacts"] = {}
            for name, src in artifacts.items():
                dest = out / "artifacts" / Path(src).name
                dest.parent.mkdir(exist_ok=True)
                (shutil.copytree if Path(src).is_dir() else shutil.copy2)(src, dest)
                conf["artifacts"][name] = {"path": f"artifacts/{Path(src).name}", "uri": str(src)}
        mlmodel.add_flavor(PYFUNC, **conf)
        predict = None  # a user model is not run at save time unless asked for a signature
        from modelship.models.flavors.pyfunc import PythonModelRuntime
        from modelship.models.trust import TrustPolicy

        # The pickle was written a moment ago from the caller's own object: loading it
        # back runs nothing the caller did not already run.
        runtime = PythonModelRuntime(out, mlmodel, TrustPolicy(allow_pickle=True))
        if signature is None and input_example is not None:
            runtime.load()
            predict = runtime.predict
    else:
        raise TypeError(f"cannot save a {type(model).__name__}: not a sklearn estimator or PythonModel")
    reqs += [_pin("numpy"), _pin("pandas")]

    if signature is None:
        example = training_data if training_data is not None else input_example
        if example is not None:
            output = None
            if predict is not None and input_example is not None:
                try:
                    output = predict(input_example)
                except Exception:  # noqa: BLE001 - an example the model rejects just gets no output schema
                    output = None
            signature = infer_signature(example, output, params)
    mlmodel.signature = signature
    if input_example is not None:
        mlmodel.saved_input_example_info = _save_input_example(out, input_example)
    if training_data is not None:
        (out / PROFILE_FILE).write_text(json.dumps(compute_profile(training_data), indent=1))
        mlmodel.metadata = {**(mlmodel.metadata or {}), "modelship.training_profile": PROFILE_FILE}
    _write_env(out, pip_requirements or sorted(set(reqs)), python_version)
    mlmodel.save(out / MLMODEL_FILE)
    return mlmodel


def _dump_sklearn(model: Any, path: Path, fmt: str) -> None:
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
        import pickle

        with path.open("wb") as f:
            pickle.dump(model, f)


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.generic,)):
        return value.item()
    return value


def _save_input_example(out: Path, example: Any) -> dict[str, Any]:
    if isinstance(example, pd.Series):
        example = example.to_frame()
    if isinstance(example, list) and example and isinstance(example[0], dict):
        example = pd.DataFrame(example)
    if isinstance(example, dict) and not all(isinstance(v, np.ndarray) for v in example.values()):
        example = pd.DataFrame({k: v if isinstance(v, list) else [v] for k, v in example.items()})
    if isinstance(example, pd.DataFrame):
        split = json.loads(example.to_json(orient="split", index=False, date_format="iso"))
        payload = {"columns": split["columns"], "data": split["data"]}
        (out / "input_example.json").write_text(json.dumps(payload))
        (out / "serving_input_example.json").write_text(json.dumps({"dataframe_split": payload}, indent=2))
        return {
            "artifact_path": "input_example.json",
            "type": "dataframe",
            "pandas_orient": "split",
            "serving_input_path": "serving_input_example.json",
        }
    if isinstance(example, dict):
        inputs: Any = {k: _to_jsonable(v) for k, v in example.items()}
    else:
        inputs = _to_jsonable(np.asarray(example))
    (out / "input_example.json").write_text(json.dumps({"inputs": inputs}))
    (out / "serving_input_example.json").write_text(json.dumps({"inputs": inputs}, indent=2))
    return {
        "artifact_path": "input_example.json",
        "type": "ndarray",
        "format": "tf-serving",
        "serving_input_path": "serving_input_example.json",
    }


def _write_env(out: Path, reqs: list[str], python_version: str) -> None:
    (out / "requirements.txt").write_text("\n".join(reqs) + "\n")
    (out / "python_env.yaml").write_text(
        yaml.safe_dump(
            {
                "python": python_version,
                "build_dependencies": [_pin("pip"), "setuptools", "wheel"],
                "dependencies": ["-r requirements.txt"],
            },
            sort_keys=False,
        )
    )
    (out / "conda.yaml").write_text(
        yaml.safe_dump(
            {
                "channels": ["conda-forge"],
                "dependencies": [f"python={python_version}", "pip", {"pip": reqs}],
                "name": "mlflow-env",
            },
            sort_keys=False,
        )
    )


def _modelship_version() -> str:
    from modelship import __version__

    return __version__
