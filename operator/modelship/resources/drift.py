"""The DriftDetected condition of a ModelDeployment, from its model servers' ``/drift`` figures.

Each model server keeps its own window (``modelship.serving.drift``); a variant's pods are
merged here: the bin counts of one feature are summed over the pods that serve the same
version (their bins come from the same profile), and the PSI is computed again on the sum,
so two pods of 300 rows make one window of 600. The KS or chi-square statistic cannot be
summed: the variant reports the largest of its pods' (and the smallest p-value). The bands
are ``spec.monitoring``'s, so the verdict does not wait for the pods to restart with new
settings. Pure: the scraped reports are arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelship.api.modeldeployment import Monitoring
from modelship.stability import psi, psi_verdict

CONDITION = "DriftDetected"
PREDICTION = "__prediction__"
MAX_LISTED = 8
"""Most features named in the condition's message (the worst first)."""


@dataclass(frozen=True)
class FeatureDrift:
    """One feature of one variant (and version), merged over its pods."""

    variant: str
    version: str
    feature: str
    psi: float
    samples: int
    test: str  # ks | chi2
    statistic: float
    p_value: float
    verdict: str  # insufficient | stable | warn | drift

    def describe(self) -> str:
        name = "the predictions" if self.feature == PREDICTION else self.feature
        return (
            f"{name} PSI {self.psi:.3f} ({self.test.upper()} {self.statistic:.3g}, p {self.p_value:.2g}, "
            f"{self.samples} rows)"
        )


@dataclass(frozen=True)
class DriftPlan:
    """The condition to set: status, reason, message, and the figures behind it."""

    status: str  # True | False | Unknown
    reason: str
    message: str
    features: tuple[FeatureDrift, ...] = ()

    @property
    def drifting(self) -> tuple[FeatureDrift, ...]:
        return tuple(f for f in self.features if f.verdict == "drift")


def verdict(monitoring: Monitoring, samples: int, value: float) -> str:
    return psi_verdict(
        samples, value, min_samples=monitoring.min_samples, warn=monitoring.psi_warn, alert=monitoring.alert
    )


def merge(variant: str, reports: Sequence[Mapping[str, Any]], monitoring: Monitoring) -> list[FeatureDrift]:
    """The features of one variant's pods (reports with ``enabled``), merged per version."""
    ignored = set(monitoring.ignore_features or [])
    by_version: dict[str, list[Mapping[str, Any]]] = {}
    for r in reports:
        if r.get("enabled"):
            by_version.setdefault(str(r.get("version") or ""), []).append(r)
    out = []
    for version, group in sorted(by_version.items()):
        figures: dict[str, list[Mapping[str, Any]]] = {}
        for r in group:
            for name, f in (r.get("features") or {}).items():
                figures.setdefault(str(name), []).append(f)
            if r.get("prediction"):
                figures.setdefault(PREDICTION, []).append(r["prediction"])
        for name, parts in sorted(figures.items()):
            if name in ignored:
                continue
            out.append(_merge_feature(variant, version, name, parts, monitoring))
    return out


def _merge_feature(
    variant: str, version: str, name: str, parts: Sequence[Mapping[str, Any]], monitoring: Monitoring
) -> FeatureDrift:
    expected = list(parts[0].get("expected") or [])
    counts = [0.0] * len(expected)
    for p in parts:
        c = list(p.get("counts") or [])
        if len(c) == len(counts) and list(p.get("expected") or []) == expected:
            counts = [a + float(b) for a, b in zip(counts, c)]
    samples = int(sum(counts))
    value = psi(counts, expected) if samples else 0.0
    test = "ks" if "ks" in parts[0] else "chi2"
    return FeatureDrift(
        variant=variant,
        version=version,
        feature=name,
        psi=value,
        samples=samples,
        test=test,
        statistic=max(float(p.get(test) or 0.0) for p in parts),
        p_value=min(float(p.get("p_value", 1.0)) for p in parts),
        verdict=verdict(monitoring, samples, value),
    )


def plan_drift(monitoring: Monitoring, scraped: Mapping[str, Sequence[Mapping[str, Any]] | None]) -> DriftPlan:
    """The DriftDetected condition from each variant's pods' ``/drift`` reports.

    ``scraped`` maps a variant to its Ready pods' reports (empty: no Ready pod; None: a
    Ready pod could not be read). True as soon as one feature of one variant drifts; False
    when every variant has at least ``minSamples`` rows and none drifts; Unknown otherwise,
    with what is missing.
    """
    if not monitoring.enabled:
        return DriftPlan("False", "Disabled", "spec.monitoring.enabled is false: the model servers do not watch drift")
    features: list[FeatureDrift] = []
    waiting: list[str] = []
    for variant, reports in sorted(scraped.items()):
        if reports is None:
            waiting.append(f"{variant}: a model server's /drift could not be read")
            continue
        if not reports:
            waiting.append(f"{variant}: no Ready model server")
            continue
        off = [str(r.get("reason")) for r in reports if not r.get("enabled")]
        if len(off) == len(reports):
            waiting.append(f"{variant}: {off[0]}")
            continue
        mine = merge(variant, reports, monitoring)
        features += mine
        # rows in the variant's windows (each pod's window holds its last ``window`` rows)
        rows = sum(min(int(r.get("rows") or 0), int(r.get("window") or 0)) for r in reports if r.get("enabled"))
        if rows < monitoring.min_samples:
            waiting.append(f"{variant}: {rows} of the {monitoring.min_samples} rows a verdict needs (minSamples)")
    drifting = sorted((f for f in features if f.verdict == "drift"), key=lambda f: -f.psi)
    if drifting:
        listed = "; ".join(f"{f.variant} v{f.version}: {f.describe()}" for f in drifting[:MAX_LISTED])
        more = f"; and {len(drifting) - MAX_LISTED} more" if len(drifting) > MAX_LISTED else ""
        return DriftPlan(
            "True",
            "FeaturesDrifted",
            f"drift (PSI >= {monitoring.alert:g}): {listed}{more}",
            tuple(features),
        )
    if waiting:
        return DriftPlan("Unknown", "InsufficientData", "no verdict yet: " + "; ".join(waiting), tuple(features))
    warned = sorted((f for f in features if f.verdict == "warn"), key=lambda f: -f.psi)
    note = ""
    if warned:
        note = f"; moving (PSI >= {monitoring.psi_warn:g}): " + "; ".join(
            f"{f.variant}: {f.describe()}" for f in warned[:MAX_LISTED]
        )
    return DriftPlan(
        "False",
        "NoDrift",
        f"no feature drifts (every PSI below {monitoring.alert:g}){note}",
        tuple(features),
    )
