"""MLflow Tracking for Modelship: store, server, sidecar and a small client.

Owns: the tracking database schema and its migrations (``store``), the MLflow-compatible
REST server (``server``), the in-pod write buffer that forwards to it (``sidecar``), and
``client``, the dependency-light reader/writer that the rest of Modelship uses.

Must not: talk to the Kubernetes API (controllers do that), or import ``mlflow``; the real
``mlflow`` package is a test dependency only, used to prove wire compatibility.
"""
