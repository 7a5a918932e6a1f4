"""The DriftDetected plan from the model servers' /drift reports (resources/drift.py)."""

from __future__ import annotations

from typing import Any

import pytest

from modelship.api.modeldeployment import Monitoring
from modelship.resources.drift import merge, plan_drift
from modelship.stability import psi

EXPECTED = [0.25, 0.25, 0.25, 0.25, 0.0]  # four bins and missing


def numeric(counts: list[int], ks: float = 0.1, p: float = 0.5) -> dict[str, Any]:
    return {"type": "numeric", "counts": counts, "expected": EXPECTED, "ks": ks, "p_value": p}


def categorical(counts: list[int]) -> dict[str, Any]:
    return {"type": "categorical", "counts": counts, "expected": [0.5, 0.5, 0.0, 0.0], "chi2": 3.0, "p_value": 0.2}


def report(
    features: dict[str, Any], version: str = "3", prediction: dict[str, Any] | None = None, rows: int = 600
) -> dict[str, Any]:
    return {
        "enabled": True,
        "version": version,
        "rows": rows,
        "window": 10_000,
        "features": features,
        "prediction": prediction,
    }


EVEN = [150, 150, 150, 150, 0]  # 600 rows as trained: PSI 0
SHIFTED = [10, 40, 150, 400, 0]  # PSI about 1.2
MOVING = [80, 130, 150, 240, 0]  # PSI about 0.15
NO_PROFILE = {"enabled": False, "reason": "the model has no training profile (training_profile.json): ..."}


@pytest.mark.parametrize(
    ("monitoring", "scraped", "status", "reason", "in_message"),
    [
        # every variant has enough rows and nothing drifts
        ({}, {"a": [report({"x": numeric(EVEN)})]}, "False", "NoDrift", ["no feature drifts"]),
        # a drifting feature: True, named with its PSI, KS, p-value and rows
        (
            {},
            {"a": [report({"x": numeric(SHIFTED, ks=0.45, p=1e-30), "y": numeric(EVEN)})]},
            "True",
            "FeaturesDrifted",
            ["drift (PSI >= 0.25): a v3: x PSI 1.", "KS 0.45", "p 1e-30", "600 rows"],
        ),
        # the predictions drift on their own
        (
            {},
            {"a": [report({"x": numeric(EVEN)}, prediction=categorical([590, 10, 0, 0]))]},
            "True",
            "FeaturesDrifted",
            ["the predictions PSI", "CHI2 3"],
        ),
        # an ignored feature is not judged
        ({"ignoreFeatures": ["x"]}, {"a": [report({"x": numeric(SHIFTED)})]}, "False", "NoDrift", []),
        # fewer rows than minSamples: no verdict, with the count
        (
            {"minSamples": 1000},
            {"a": [report({"x": numeric(SHIFTED)})]},
            "Unknown",
            "InsufficientData",
            ["600 of the 1000"],
        ),
        # a moving feature is mentioned but not drift
        ({}, {"a": [report({"x": numeric(MOVING)})]}, "False", "NoDrift", ["moving (PSI >= 0.1): a: x PSI 0.149"]),
        # a higher alert band (the deprecated driftThreshold too) keeps it False
        ({"psiAlert": 2.0}, {"a": [report({"x": numeric(SHIFTED)})]}, "False", "NoDrift", ["below 2"]),
        ({"driftThreshold": 2.0}, {"a": [report({"x": numeric(SHIFTED)})]}, "False", "NoDrift", []),
        # a variant that cannot be read, has no pod, or a model without a profile: Unknown, saying which
        ({}, {"a": None}, "Unknown", "InsufficientData", ["a: a model server's /drift could not be read"]),
        ({}, {"a": []}, "Unknown", "InsufficientData", ["a: no Ready model server"]),
        ({}, {"a": [NO_PROFILE]}, "Unknown", "InsufficientData", ["a: the model has no training profile"]),
        # one variant drifting is enough, whatever the other's state
        (
            {},
            {"a": [report({"x": numeric(EVEN)})], "b": None, "c": [report({"x": numeric(SHIFTED)}, version="4")]},
            "True",
            "FeaturesDrifted",
            ["c v4: x PSI"],
        ),
        # off
        ({"enabled": False}, {}, "False", "Disabled", ["enabled is false"]),
    ],
)
def test_plan_drift(
    monitoring: dict[str, Any], scraped: dict[str, Any], status: str, reason: str, in_message: list[str]
) -> None:
    plan = plan_drift(Monitoring.model_validate(monitoring), scraped)
    assert (plan.status, plan.reason) == (status, reason), plan.message
    for text in in_message:
        assert text in plan.message


def test_pods_of_one_version_are_merged_by_summing_their_bins() -> None:
    # two pods of 300 rows each: alone each is below minSamples 500, together they are judged
    half = [75, 75, 75, 75, 0]
    shifted_half = [5, 20, 75, 200, 0]
    reports = [report({"x": numeric(half, ks=0.2, p=0.01)}), report({"x": numeric(shifted_half, ks=0.4, p=1e-9)})]
    (x,) = merge("a", reports, Monitoring())
    assert x.samples == 600
    assert x.psi == pytest.approx(psi([80, 95, 150, 275, 0], EXPECTED))
    assert (x.statistic, x.p_value) == (0.4, 1e-9)  # the worst pod's: a KS statistic does not add up
    # pods of two versions (mid-rollout) are judged apart
    two = merge("a", [report({"x": numeric(half)}, "3"), report({"x": numeric(half)}, "4")], Monitoring())
    assert [(f.version, f.samples) for f in two] == [("3", 300), ("4", 300)]


def test_the_worst_feature_comes_first_in_the_message() -> None:
    plan = plan_drift(
        Monitoring(), {"a": [report({"mild": numeric([60, 100, 190, 250, 0]), "wild": numeric(SHIFTED)})]}
    )
    assert plan.status == "True"
    assert plan.message.index("wild") < plan.message.index("mild")
    assert [f.feature for f in plan.drifting] == ["mild", "wild"]


def test_psi_bands_are_refused_out_of_order() -> None:
    schema = Monitoring.model_json_schema(by_alias=True)
    assert schema["x-kubernetes-validations"][0]["rule"] == "self.psiWarn <= self.psiAlert"
