"""Save a model directory in MLflow's format (loadable by MLflow 3 and by Modelship).

``save_model(path, model, ...)`` takes a scikit-learn estimator or a ``PythonModel``; the
flavor that saves it writes its own files (``flavors.dispatch``): sklearn models with skops
by default (as MLflow 3 does), ``pickle`` and ``cloudpickle`` only when asked. Alongside the
``MLmodel`` file it writes the signature (given, or inferred from the input example /
training data and the model's output on it), the input example, ``requirements.txt``,
``python_env.yaml``, ``conda.yaml`` and the training-data profile.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from modelship.models.flavors import flavor_saving
from modelship.models.flavors.base import SaveRequest, pinned
from modelship.models.mlmodel import MLMODEL_FILE, MLModel
from modelship.models.profile import PROFILE_FILE, compute_profile, profile_predictions, sample_rows
from modelship.models.signature import ModelSignature, infer_signature


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

    saved = flavor_saving(model).save(
        model,
        SaveRequest(
            out,
            mlmodel,
            python_version,
            env,
            serialization_format=serialization_format,
            predict_fn=predict_fn,
            artifacts=artifacts,
            wants_predict=signature is None and input_example is not None,
        ),
    )
    predict = saved.predict
    reqs = saved.requirements + [pinned("numpy"), pinned("pandas")]

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
        profile = compute_profile(training_data)
        if predict is not None:
            predicted = _prediction_profile(predict, training_data)
            if predicted is not None:
                profile["prediction"] = predicted
        (out / PROFILE_FILE).write_text(json.dumps(profile, indent=1))
        mlmodel.metadata = {**(mlmodel.metadata or {}), "modelship.training_profile": PROFILE_FILE}
    _write_env(out, pip_requirements or sorted(set(reqs)), python_version)
    mlmodel.save(out / MLMODEL_FILE)
    return mlmodel


def _prediction_profile(predict: Any, training_data: pd.DataFrame | np.ndarray) -> dict[str, Any] | None:
    """The profile of the model's predictions on (at most 10,000 of) the training rows: the
    baseline of prediction drift. One predict call; a model that refuses gets none."""
    try:
        return profile_predictions(predict(sample_rows(training_data)))
    except Exception:  # noqa: BLE001 - no prediction profile, the rest of the model is fine
        return None


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
                "build_dependencies": [pinned("pip"), "setuptools", "wheel"],
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
