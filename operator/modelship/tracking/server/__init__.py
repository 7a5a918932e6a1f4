"""The tracking server: MLflow's REST API and the ``mlflow-artifacts`` proxy over FastAPI.

Owns HTTP only: parsing, auth, error bodies, OpenAPI. Every decision about data is the
store's; handlers stay thin. Built by ``server.app.create_app(settings, store)`` (no
module-level app object). The wire format it speaks (paths, messages, parsers, limits, error
bodies) is ``modelship.tracking.protocol``, shared with the sidecar and the client.
"""
