"""The operator: kopf handlers for Experiment, ModelVersion and ModelDeployment.

This package owns everything that talks to the Kubernetes API: one handler module per
kind (``experiment``, ``modelversion``, ``modeldeployment``, with ``retrain``: the
ModelDeployment's closed loop, which creates retraining Experiments), the process around them
(``main``: flags, settings, kopf configuration, liveness, metrics, logging) and the RBAC
the code needs (``rbac``). Handlers stay thin: observe the object, ask the pure functions
of ``modelship.resources`` what should be, and write status through kopf's ``patch``.

What it must not do: call the API to change the object being handled (kopf sends one
PATCH per cycle), write the ``spec`` of an object it does not own, or hold business
decisions that could be a pure function in ``resources``. One deliberate exception: the
ModelVersion handler writes the status of the *other* versions of its model
(``registry.sync_model``), because an effective stage is a decision over all of a model's
versions at once (a new Production supersedes the old); it writes with the objects'
resourceVersion, so a concurrent writer makes it decide again. The CLI ``modelship
promote`` writes a ModelVersion's ``spec.stage``: that is a user's action, not the
operator's. Importing this package does
not register handlers; ``main.register_handlers`` does, on a registry it is given.
"""
