"""The model directory format: MLflow's ``MLmodel`` layout, read and written.

Owns: the ``MLmodel`` file (flavors, signature, input example, metadata), signatures
(column and tensor specs exactly as MLflow serialises them) and their enforcement on
inputs, the training-data profile, saving models, flavor runtimes (``flavors``) that load
and predict, and resolving model URIs to a local directory (``uri``).

Must not: serve HTTP, keep global state, or import ``modelship.serving``. Network access
happens only in ``uri`` (tracking server, mlflow-artifacts proxy, S3), and only when a URI
asks for it.
"""

from modelship.models.load import LoadedModel, load_model
from modelship.models.mlmodel import MLModel
from modelship.models.save import save_model
from modelship.models.signature import ModelSignature, infer_signature

__all__ = [
    "LoadedModel",
    "MLModel",
    "ModelSignature",
    "infer_signature",
    "load_model",
    "save_model",
]
