"""Flavor runtimes: one small class per way of loading a model, each with load()/predict(),
and save() for the flavors that write models (``dispatch`` holds the tables of both).

Must not: parse HTTP payloads or know about batching; a runtime gets an enforced input
(an array, a DataFrame or a dict of arrays) and returns predictions.
"""

from modelship.models.flavors.base import ModelRuntime, PredictionError
from modelship.models.flavors.dispatch import flavor_saving, select_runtime

__all__ = ["ModelRuntime", "PredictionError", "flavor_saving", "select_runtime"]
