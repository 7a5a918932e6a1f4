"""The tracking server: MLflow's REST API and the ``mlflow-artifacts`` proxy over FastAPI.

Owns HTTP only: parsing, auth, error bodies, OpenAPI. Every decision about data is the
store's; handlers stay thin. Built by ``server.app.create_app(settings, store)`` (no
module-level app object). Nothing is imported here, so the sidecar can use
``messages``/``fastparse``/``common`` without loading the server and the database stack.
"""
