"""The tracking store: SQL tables, Alembic migrations, queries, and the artifact store.

Owns every byte that Tracking persists. Must not know about HTTP: it takes and returns
plain Python values in MLflow's JSON shapes and raises ``TrackingError``.
"""
