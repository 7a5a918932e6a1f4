"""The model directory format: MLflow's ``MLmodel`` layout, read and written.

Owns: the ``MLmodel`` file (flavors, signature, input example, metadata), signatures
(column and tensor specs exactly as MLflow serialises them) and their enforcement on
inputs, the training-data profile, saving models, flavor runtimes (``flavors``) that load
and predict, and resolving model URIs to a local directory (``uri``).

Must not: serve HTTP, keep global state, or import ``modelship.serving``. Network access
happens only in ``uri`` (through the one tracking client and ``modelship.uris``' S3
client), and only when a URI asks for it. What a model may run as it loads is the server's
decision (``trust``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelship.models.load import LoadedModel, load_model
    from modelship.models.mlmodel import MLModel
    from modelship.models.save import save_model
    from modelship.models.signature import ModelSignature, infer_signature

# Imported on first use: a component that needs only ``modelship.models.uri`` or
# ``mlmodel`` (the operator, a model download) has no use for numpy and pandas at import.
_EXPORTS = {
    "LoadedModel": "modelship.models.load",
    "load_model": "modelship.models.load",
    "MLModel": "modelship.models.mlmodel",
    "save_model": "modelship.models.save",
    "ModelSignature": "modelship.models.signature",
    "infer_signature": "modelship.models.signature",
}

__all__ = [
    "LoadedModel",
    "MLModel",
    "ModelSignature",
    "infer_signature",
    "load_model",
    "save_model",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
