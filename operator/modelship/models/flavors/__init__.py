"""Flavor runtimes: one small class per way of loading a model, each with load()/predict().

Must not: parse HTTP payloads or know about batching; a runtime gets an enforced input
(an array, a DataFrame or a dict of arrays) and returns predictions.
"""

from modelship.models.flavors.base import ModelRuntime, PredictionError, select_runtime

__all__ = ["ModelRuntime", "PredictionError", "select_runtime"]
