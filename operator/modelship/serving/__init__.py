"""The model server and batch prediction.

Owns: the serving core (``core.ModelServer``: load, enforce, batch, predict, format),
its transports (``app.create_app``: MLflow's ``/invocations`` and the Open Inference
Protocol v2 over one raw ASGI app), payload codecs, adaptive micro-batching, Prometheus
metrics, drift windows and statistics against the training profile (``drift``), settings, and ``modelship serve`` / ``modelship predict``.

Must not: know how a model is stored (that is ``modelship.models``), talk to Kubernetes,
or keep a module-level app or model: everything hangs off objects built by factories.
"""
