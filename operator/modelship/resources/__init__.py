"""Pure decisions of the operator: spec and observations in, desired state out.

This package owns the functions that turn a resource's spec and what a controller
observed into what should be: acceptance and status conditions (``acceptance``,
``conditions``); an Experiment's trial Jobs, search, accounting and one tick's plan
(``experiment``, ``search``, ``trials``, ``trial_loop``); the registry's numbers, stages,
gates and webhook bodies (``registry``, ``webhooks``); a ModelDeployment's children,
canary steps, DriftDetected condition and closed loop (``serving``, ``canary``, ``drift``,
``retrain``); a status as the operator knows it while the watch lags (``status``). It is
purely data-manipulative: nothing here performs I/O, reads the clock, imports ``kopf`` or a
Kubernetes client, or logs, and nothing happens at import time. Callers pass the current time in. ``controllers``
observes, calls these functions and applies what they decide; tests call them directly
(table-driven). The import-linter contracts in ``pyproject.toml`` check the layering.
"""
