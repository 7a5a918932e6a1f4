"""The A/B readout of a ModelDeployment (``status.experiment``), from its model servers' ``/feedback``.

Each model server counts the outcomes fed back to it per kind (``modelship.serving.feedback``):
the number, the sum and the sum of squares. Here they are

1. **tallied** (:func:`fold`): the last figures of every server process, by the instance id
   it reports, are kept in ``status.experiment.tally``; a pod that restarts comes back as a
   new instance and the old one's last figures stay counted, so only the outcomes between
   the last read and the restart are lost. At most ``MAX_INSTANCES`` are kept one by one;
   older ones are merged into ``retired`` per variant and version;
2. **summed** per variant and version (:func:`totals`);
3. **judged** (:func:`readout`): per variant the rate of correct predictions (binary: Wilson
   score interval) or the mean reward (continuous: Student's t interval), the difference to
   the control with its interval, the two-sided p-value of a two-proportion z-test (pooled)
   or of Welch's t-test, and a verdict once both have ``minSamples`` outcomes. With several
   variants against one control the significance level is split between the comparisons
   (Bonferroni).

Pure: the scraped reports and the previous status are arguments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelship.api import ModelDeploymentSpec
from modelship.api.modeldeployment import ABTest

MAX_INSTANCES = 64
KINDS = ("binary", "continuous")


@dataclass(frozen=True)
class Sums:
    """Outcomes of one kind: count, sum, sum of squares."""

    n: int = 0
    sum: float = 0.0
    sum_squares: float = 0.0

    def __add__(self, other: Sums) -> Sums:
        return Sums(self.n + other.n, self.sum + other.sum, self.sum_squares + other.sum_squares)

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Sample variance (n - 1); from sums, so floored at 0 against rounding."""
        if self.n < 2:
            return math.nan
        return max(0.0, (self.sum_squares - self.sum * self.sum / self.n) / (self.n - 1))

    @staticmethod
    def of(wire: Any) -> Sums:
        w = wire if isinstance(wire, Mapping) else {}
        return Sums(int(w.get("n") or 0), float(w.get("sum") or 0.0), float(w.get("sumSquares") or 0.0))

    def wire(self) -> dict[str, Any]:
        return {"n": self.n, "sum": self.sum, "sumSquares": self.sum_squares}


# --- 1. tally ---------------------------------------------------------------------------------
def _key(variant: str, version: Any) -> str:
    return f"{variant}@{version}"


def fold(previous: Mapping[str, Any] | None, reports: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The tally after reading ``reports`` (``GET /feedback`` of pods): each instance's latest
    figures replace its previous ones; instances not read keep theirs."""
    prev = previous or {}
    instances: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (prev.get("instances") or {}).items()}
    retired: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (prev.get("retired") or {}).items()}
    for r in reports:
        instance = r.get("instance")
        outcomes = r.get("outcomes") or {}
        if not isinstance(instance, str) or not any(Sums.of(outcomes.get(k)).n for k in KINDS):
            continue  # nothing counted yet: nothing to keep
        instances.pop(instance, None)  # re-inserted last: the order is of the latest read
        instances[instance] = {
            "variant": str(r.get("variant") or ""),
            "version": str(r.get("version") or ""),
            **{k: Sums.of(outcomes.get(k)).wire() for k in KINDS},
        }
    while len(instances) > MAX_INSTANCES:
        oldest = next(iter(instances))
        gone = instances.pop(oldest)
        key = _key(gone["variant"], gone["version"])
        into = retired.setdefault(key, {"variant": gone["variant"], "version": gone["version"]})
        for k in KINDS:
            into[k] = (Sums.of(into.get(k)) + Sums.of(gone.get(k))).wire()
    return {"instances": instances, "retired": retired}


def totals(tally: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Sums]]:
    """Per (variant, version): the summed outcomes of each kind."""
    out: dict[tuple[str, str], dict[str, Sums]] = {}
    for group in (tally.get("retired") or {}, tally.get("instances") or {}):
        for entry in group.values():
            key = (str(entry.get("variant")), str(entry.get("version")))
            sums = out.setdefault(key, {k: Sums() for k in KINDS})
            for k in KINDS:
                sums[k] = sums[k] + Sums.of(entry.get(k))
    return out


# --- 2. statistics ----------------------------------------------------------------------------
def _z(confidence: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(0.5 + confidence / 2))


def _t(confidence: float, df: float) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + confidence / 2))


def wilson(successes: float, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound near 0 and 1 and for small n)."""
    if n == 0:
        return math.nan, math.nan
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(s: Sums, confidence: float) -> tuple[float, float]:
    """Student's t interval of a mean."""
    if s.n < 2:
        return math.nan, math.nan
    half = _t(confidence, s.n - 1) * math.sqrt(s.variance / s.n)
    return s.mean - half, s.mean + half


@dataclass(frozen=True)
class Comparison:
    """A variant against the control."""

    difference: float
    low: float
    high: float
    p_value: float


def two_proportions(treatment: Sums, control: Sums, confidence: float) -> Comparison:
    """Difference of rates with a Wald interval (unpooled), two-sided p of the pooled z-test."""
    from scipy.special import ndtr

    p1, p0 = treatment.mean, control.mean
    d = p1 - p0
    se = math.sqrt(p1 * (1 - p1) / treatment.n + p0 * (1 - p0) / control.n)
    z = _z(confidence)
    pooled = (treatment.sum + control.sum) / (treatment.n + control.n)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / treatment.n + 1 / control.n))
    if se0 == 0:  # every outcome the same on both sides
        p = 1.0
    else:
        p = float(2 * ndtr(-abs(d) / se0))
    return Comparison(d, d - z * se, d + z * se, p)


def welch(treatment: Sums, control: Sums, confidence: float) -> Comparison:
    """Difference of means with Welch's interval and two-sided p (unequal variances)."""
    from scipy.special import stdtr

    d = treatment.mean - control.mean
    a, b = treatment.variance / treatment.n, control.variance / control.n
    se = math.sqrt(a + b)
    if se == 0:
        return Comparison(d, d, d, 1.0 if d == 0 else 0.0)
    df = (a + b) ** 2 / (a * a / (treatment.n - 1) + b * b / (control.n - 1))
    p = float(2 * stdtr(df, -abs(d) / se))
    half = _t(confidence, df) * se
    return Comparison(d, d - half, d + half, p)


def judge(p_value: float, difference: float, alpha: float) -> str:
    if p_value < alpha:
        return "better" if difference > 0 else "worse"
    return "inconclusive"


# --- 3. readout -------------------------------------------------------------------------------
def pick_metric(wanted: str, sums: Iterable[Mapping[str, Sums]]) -> str:
    """``binary`` or ``continuous``: as asked, or for auto the kind with more outcomes (binary on a tie)."""
    if wanted in KINDS:
        return wanted
    counts = dict.fromkeys(KINDS, 0)
    for s in sums:
        for k in KINDS:
            counts[k] += s[k].n
    return "continuous" if counts["continuous"] > counts["binary"] else "binary"


def _round(x: float, digits: int = 6) -> float | None:
    return None if x is None or math.isnan(x) else round(x, digits)


def _p(x: float) -> float | None:
    return None if math.isnan(x) else float(f"{x:.4g}")


def readout(
    spec: ABTest,
    variants: Sequence[tuple[str, int | None]],
    tally: Mapping[str, Any],
) -> dict[str, Any]:
    """``status.experiment`` (without ``checkedAt`` and ``tally``) for the live variants
    ``(name, version served)`` in spec order; a variant whose version is unknown counts the
    version with most outcomes."""
    by_key = totals(tally)
    names = [n for n, _ in variants]
    control = spec.control if spec.control in names else (names[0] if names else None)
    chosen: dict[str, tuple[str | None, dict[str, Sums]]] = {}
    for name, version in variants:
        mine = {ver: s for (var, ver), s in by_key.items() if var == name}
        if version is not None:
            ver = str(version)
        elif mine:
            ver = max(mine, key=lambda v: sum(s.n for s in mine[v].values()))
        else:
            ver = None
        chosen[name] = (ver, mine.get(ver or "", {k: Sums() for k in KINDS}))
    metric = pick_metric(spec.metric, [s for _, s in chosen.values()])
    alpha = (1 - spec.confidence) / max(1, len(variants) - 1)
    base: dict[str, Any] = {
        "metric": metric,
        "control": control,
        "confidence": spec.confidence,
        "minSamples": spec.min_samples,
    }
    if control is None:
        return {**base, "verdict": None, "winner": None, "message": "no variant to compare", "variants": []}
    c_sums = chosen[control][1][metric]
    arms: list[dict[str, Any]] = []
    for name, _ in variants:
        ver, sums = chosen[name]
        s = sums[metric]
        low, high = wilson(s.sum, s.n, spec.confidence) if metric == "binary" else mean_interval(s, spec.confidence)
        arm: dict[str, Any] = {
            "name": name,
            "version": int(ver) if ver and ver.isdigit() else None,
            "samples": s.n,
            "mean": _round(s.mean),
            "ciLow": _round(low),
            "ciHigh": _round(high),
        }
        if name == control:
            arm["control"] = True
        elif s.n >= 2 and c_sums.n >= 2:
            cmp = (two_proportions if metric == "binary" else welch)(s, c_sums, spec.confidence)
            arm.update(
                difference=_round(cmp.difference),
                differenceLow=_round(cmp.low),
                differenceHigh=_round(cmp.high),
                pValue=_p(cmp.p_value),
            )
            if min(s.n, c_sums.n) >= spec.min_samples:
                arm["verdict"] = judge(cmp.p_value, cmp.difference, alpha)
        arms.append({k: v for k, v in arm.items() if v is not None})
    return {**base, **_summary(arms, control, metric, spec.min_samples), "variants": arms}


def _summary(arms: list[dict[str, Any]], control: str, metric: str, min_samples: int) -> dict[str, Any]:
    others = [a for a in arms if not a.get("control")]
    what = "rate" if metric == "binary" else "mean reward"
    ctl = next(a for a in arms if a.get("control"))
    if not others:
        return {"verdict": None, "winner": None, "message": f"only the control {control}: nothing to compare"}
    better = [a for a in others if a.get("verdict") == "better"]
    if better:
        best = max(better, key=lambda a: a["mean"])
        return {
            "verdict": "better",
            "winner": best["name"],
            "message": (
                f"{best['name']} is better than {control}: {what} {best['mean']:.4g} vs {ctl['mean']:.4g} "
                f"({best['difference']:+.4g}, p {best['pValue']:.2g}; {best['samples']} and {ctl['samples']} outcomes)"
            ),
        }
    waiting = [a for a in others if "verdict" not in a]
    if waiting:
        fewest = min([ctl, *waiting], key=lambda a: a["samples"])
        return {
            "verdict": None,
            "winner": None,
            "message": (
                f"collecting outcomes: {fewest['name']} has {fewest['samples']} of the {min_samples} each variant "
                "needs before a verdict"
            ),
        }
    if all(a["verdict"] == "worse" for a in others):
        names = ", ".join(a["name"] for a in others)
        return {"verdict": "worse", "winner": None, "message": f"{names} worse than {control}: keep the control"}
    worst_p = min(a["pValue"] for a in others)
    return {
        "verdict": "inconclusive",
        "winner": None,
        "message": f"no significant difference to {control} yet (smallest p {worst_p:.2g})",
    }


def verdict_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """One line per variant whose verdict moved to a new value (for an Event each)."""
    old = {a.get("name"): a.get("verdict") for a in (before or {}).get("variants") or []}
    lines = []
    for arm in after.get("variants") or []:
        new = arm.get("verdict")
        if new is not None and old.get(arm["name"]) != new:
            lines.append(
                f"{arm['name']} v{arm.get('version')} {new} than the control {after.get('control')}: "
                f"{arm.get('difference', 0):+.4g} (p {arm.get('pValue', 1):.2g}, {arm['samples']} outcomes)"
                if new != "inconclusive"
                else f"{arm['name']} v{arm.get('version')}: no significant difference to {after.get('control')} "
                f"(p {arm.get('pValue', 1):.2g}, {arm['samples']} outcomes)"
            )
    return lines


# --- promoteOnWin ------------------------------------------------------------------------------
def promotion(
    spec: ABTest,
    result: Mapping[str, Any],
    before: Mapping[str, Any] | None,
    variants: Sequence[tuple[str, int | None]],
    *,
    namespace: str,
    model: str,
    now: str,
) -> dict[str, Any] | None:
    """``status.experiment.promoted``: the winner that takes all the live traffic, or None.

    Latched: once a variant has won it keeps the traffic while it serves the version that
    won, whatever later looks say (acting on a verdict and then undoing it on the next look
    is the peeking problem twice over); a new version in that variant must win again.
    """
    if not spec.promote_on_win:
        return None
    served = dict(variants)
    if before and before.get("variant") in served and served[before["variant"]] == before.get("version"):
        return dict(before)
    winner = result.get("winner")
    version = served.get(winner) if isinstance(winner, str) else None
    if result.get("verdict") != "better" or version is None:
        return None
    arm: Mapping[str, Any] = next((a for a in result.get("variants") or [] if a.get("name") == winner), {})
    return {
        "variant": winner,
        "version": version,
        "at": now,
        "message": (
            f"{winner} v{version} won against {result.get('control')} ({arm.get('difference') or 0:+.4g}, "
            f"p {arm.get('pValue') or 0:.2g}): it takes all the live traffic (spec.experiment.promoteOnWin); the "
            f"registry is unchanged: make it durable with `{promote_command(namespace, model, version)}` (variants "
            "that follow Production then serve it) or with the weights in git"
        ),
    }


def promote_command(namespace: str, model: str, version: int) -> str:
    return f"modelship promote {model} {version} --to Production -n {namespace}"


def effective_spec(spec: ModelDeploymentSpec, promoted: Mapping[str, Any] | None) -> ModelDeploymentSpec:
    """The spec the children are planned from: with a promotion in force the winner weighs
    100 and the other live variants 0 (a shadow keeps its copy of the traffic)."""
    if not promoted or spec.experiment is None or not spec.experiment.promote_on_win:
        return spec
    winner = promoted.get("variant")
    if not any(v.name == winner and not v.shadow for v in spec.variants):
        return spec
    variants = [
        v if v.shadow else v.model_copy(update={"weight": 100 if v.name == winner else 0}) for v in spec.variants
    ]
    return spec.model_copy(update={"variants": variants})
