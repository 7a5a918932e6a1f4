"""The ``MLmodel`` file: YAML with flavors, signature and metadata, as MLflow writes it."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from modelship.models.signature import ModelSignature

MLMODEL_FILE = "MLmodel"
PYFUNC = "python_function"


@dataclass
class MLModel:
    """An ``MLmodel`` document. Unknown keys are kept in ``extra`` and written back."""

    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    signature: ModelSignature | None = None
    saved_input_example_info: dict[str, Any] | None = None
    model_uuid: str = field(default_factory=lambda: uuid.uuid4().hex)
    utc_time_created: str = field(default_factory=lambda: str(dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    mlflow_version: str | None = None
    metadata: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pyfunc(self) -> dict[str, Any] | None:
        return self.flavors.get(PYFUNC)

    def add_flavor(self, name: str, **params: Any) -> None:
        self.flavors[name] = params

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out["flavors"] = self.flavors
        out["model_uuid"] = self.model_uuid
        out["utc_time_created"] = self.utc_time_created
        if self.mlflow_version:
            out["mlflow_version"] = self.mlflow_version
        if self.signature is not None:
            out["signature"] = self.signature.to_dict()
        if self.saved_input_example_info:
            out["saved_input_example_info"] = self.saved_input_example_info
        if self.metadata:
            out["metadata"] = self.metadata
        return out

    def save(self, path: str | Path) -> None:
        text = yaml.safe_dump(self.to_dict(), default_flow_style=False, sort_keys=True)
        Path(path).write_text(text)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MLModel:
        known = {
            "flavors",
            "signature",
            "saved_input_example_info",
            "model_uuid",
            "utc_time_created",
            "mlflow_version",
            "metadata",
        }
        # Imported here: signatures need pandas and numpy (100 MB resident), and the operator
        # reads MLmodel files (MLMODEL_FILE) without ever parsing a signature into one.
        from modelship.models.signature import ModelSignature

        sig = d.get("signature")
        return cls(
            flavors=dict(d.get("flavors") or {}),
            signature=ModelSignature.from_dict(sig) if sig else None,
            saved_input_example_info=d.get("saved_input_example_info"),
            model_uuid=str(d.get("model_uuid") or uuid.uuid4().hex),
            utc_time_created=str(d.get("utc_time_created") or ""),
            mlflow_version=d.get("mlflow_version"),
            metadata=d.get("metadata"),
            extra={k: v for k, v in d.items() if k not in known},
        )

    @classmethod
    def load(cls, path: str | Path) -> MLModel:
        """Read ``path`` (a model directory or its ``MLmodel`` file)."""
        p = Path(path)
        if p.is_dir():
            p = p / MLMODEL_FILE
        if not p.is_file():
            raise FileNotFoundError(f"no MLmodel file at {p}")
        data = yaml.safe_load(p.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{p} is not an MLmodel document")  # noqa: TRY004 - bad file content
        return cls.from_dict(data)

    def load_input_example(self, model_dir: str | Path) -> Any:
        """The saved input example as a DataFrame, array or dict, or None."""
        info = self.saved_input_example_info
        if not info or not info.get("artifact_path"):
            return None
        import pandas as pd

        raw = json.loads((Path(model_dir) / info["artifact_path"]).read_text())
        if info.get("type") == "dataframe":
            orient = info.get("pandas_orient", "split")
            if orient == "split":
                return pd.DataFrame(raw["data"], columns=raw.get("columns"), index=None)
            return pd.DataFrame(raw)
        if info.get("type") == "ndarray":
            import numpy as np

            inputs = raw.get("inputs", raw) if isinstance(raw, dict) else raw
            if isinstance(inputs, dict):
                return {k: np.asarray(v) for k, v in inputs.items()}
            return np.asarray(inputs)
        return raw
