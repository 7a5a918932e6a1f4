"""The A/B readout's statistics and verdicts (``modelship.resources.abtest``), checked
against scipy.stats on the raw samples the sums stand for."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from modelship.api.modeldeployment import ABTest
from modelship.resources import abtest
from modelship.resources.abtest import Sums


def sums(values: Any) -> Sums:
    v = np.asarray(values, dtype=float)
    return Sums(len(v), float(v.sum()), float((v * v).sum()))


def binary(k: int, n: int) -> Sums:
    return Sums(n, float(k), float(k))


# (successes, n) of treatment and control
PROPORTIONS = [
    (60, 100, 45, 100),
    (520, 1000, 500, 1000),
    (9, 10, 2, 12),
    (300, 400, 150, 250),
    (5, 50, 5, 50),
]


@pytest.mark.parametrize(("k1", "n1", "k0", "n0"), PROPORTIONS)
def test_two_proportion_z_test_matches_chi_square_without_correction(k1: int, n1: int, k0: int, n0: int) -> None:
    cmp = abtest.two_proportions(binary(k1, n1), binary(k0, n0), 0.95)
    _, p, _, _ = stats.chi2_contingency([[k1, n1 - k1], [k0, n0 - k0]], correction=False)
    assert cmp.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert cmp.difference == pytest.approx(k1 / n1 - k0 / n0)
    se = math.sqrt(k1 / n1 * (1 - k1 / n1) / n1 + k0 / n0 * (1 - k0 / n0) / n0)
    assert cmp.high - cmp.difference == pytest.approx(stats.norm.ppf(0.975) * se)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (512, 1000), (1, 3)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_interval_matches_scipy(k: int, n: int, confidence: float) -> None:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    low, high = abtest.wilson(k, n, confidence)
    assert (low, high) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))


rng = np.random.default_rng(7)
SAMPLES = [
    (rng.normal(1.0, 1.0, 50), rng.normal(0.8, 1.0, 60)),
    (rng.normal(0.0, 3.0, 20), rng.normal(0.0, 0.5, 200)),
    (rng.exponential(2.0, 500), rng.exponential(1.8, 400)),
    (np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.5, 3.5, 4.0])),
]


@pytest.mark.parametrize(("a", "b"), SAMPLES)
def test_welch_matches_scipy_on_the_raw_samples(a: np.ndarray, b: np.ndarray) -> None:
    cmp = abtest.welch(sums(a), sums(b), 0.95)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert cmp.p_value == pytest.approx(ref.pvalue, rel=1e-7)
    ci = ref.confidence_interval(0.95)
    assert (cmp.low, cmp.high) == (pytest.approx(ci.low, rel=1e-7), pytest.approx(ci.high, rel=1e-7))


@pytest.mark.parametrize(("a", "_b"), SAMPLES)
def test_mean_interval_matches_scipy(a: np.ndarray, _b: np.ndarray) -> None:
    low, high = abtest.mean_interval(sums(a), 0.9)
    ref = stats.t.interval(0.9, len(a) - 1, loc=a.mean(), scale=stats.sem(a))
    assert (low, high) == (pytest.approx(ref[0], rel=1e-7), pytest.approx(ref[1], rel=1e-7))
    assert sums(a).variance == pytest.approx(a.var(ddof=1))


def test_degenerate_inputs_give_no_nan_p_values() -> None:
    assert abtest.two_proportions(binary(10, 10), binary(20, 20), 0.95).p_value == 1.0
    assert abtest.welch(sums([1, 1, 1]), sums([1, 1]), 0.95).p_value == 1.0
    assert abtest.welch(sums([2, 2, 2]), sums([1, 1]), 0.95).p_value == 0.0


def tally(**arms: tuple[int | str, str, Sums]) -> dict[str, Any]:
    """instance -> (version, variant, binary sums)"""
    return {
        "instances": {
            inst: {"variant": var, "version": str(ver), "binary": s.wire(), "continuous": Sums().wire()}
            for inst, (ver, var, s) in arms.items()
        }
    }


@pytest.mark.parametrize(
    ("blue", "green", "min_samples", "verdict", "green_verdict"),
    [
        # (successes, n) per variant
        ((50, 100), (85, 100), 100, "better", "better"),
        ((85, 100), (50, 100), 100, "worse", "worse"),
        ((50, 100), (55, 100), 100, "inconclusive", "inconclusive"),
        ((50, 100), (85, 100), 101, None, None),  # below minSamples: no verdict however clear
        ((5, 10), (10, 10), 10, "better", "better"),
    ],
)
def test_verdicts(
    blue: tuple[int, int], green: tuple[int, int], min_samples: int, verdict: str | None, green_verdict: str | None
) -> None:
    t = tally(a=(1, "blue", binary(*blue)), b=(2, "green", binary(*green)))
    out = abtest.readout(ABTest(min_samples=min_samples), [("blue", 1), ("green", 2)], t)
    assert out["verdict"] == verdict, out
    arm = out["variants"][1]
    assert arm.get("verdict") == green_verdict and out["control"] == "blue"
    assert out["variants"][0]["control"] is True and "verdict" not in out["variants"][0]
    assert out["winner"] == ("green" if verdict == "better" else None)
    if verdict is None:
        assert "collecting outcomes" in out["message"]


def test_pods_are_summed_per_version_and_the_served_version_is_judged() -> None:
    t = tally(
        a=(1, "blue", binary(30, 60)),
        b=(1, "blue", binary(20, 40)),  # a second pod of blue v1
        c=(2, "green", binary(90, 100)),
        d=(3, "green", binary(0, 500)),  # an older version of green: not the one served
    )
    out = abtest.readout(ABTest(control="blue", min_samples=50), [("blue", 1), ("green", 2)], t)
    blue, green = out["variants"]
    assert (blue["samples"], blue["mean"]) == (100, 0.5)
    assert (green["version"], green["samples"], green["verdict"]) == (2, 100, "better")


def test_three_variants_split_alpha_and_pick_the_best_winner() -> None:
    t = tally(a=(1, "a", binary(500, 1000)), b=(2, "b", binary(560, 1000)), c=(3, "c", binary(600, 1000)))
    out = abtest.readout(ABTest(), [("a", 1), ("b", 2), ("c", 3)], t)
    # b: p about 0.007 < 0.025 (0.05 over two comparisons); c: far below
    assert [v.get("verdict") for v in out["variants"]] == [None, "better", "better"]
    assert out["winner"] == "c"
    t = tally(a=(1, "a", binary(500, 1000)), b=(2, "b", binary(546, 1000)))
    p = abtest.readout(ABTest(), [("a", 1), ("b", 2)], t)["variants"][1]["pValue"]
    assert 0.025 < p < 0.05  # better with one comparison...
    t["instances"]["c"] = {"variant": "c", "version": "3", "binary": binary(500, 1000).wire()}
    out = abtest.readout(ABTest(), [("a", 1), ("b", 2), ("c", 3)], t)
    assert out["variants"][1]["verdict"] == "inconclusive"  # ...not with two


@pytest.mark.parametrize(
    ("binary_n", "continuous_n", "wanted", "metric"),
    [
        (10, 0, "auto", "binary"),
        (0, 10, "auto", "continuous"),
        (5, 10, "auto", "continuous"),
        (10, 10, "auto", "binary"),
        (0, 10, "binary", "binary"),
    ],
)
def test_metric_kind(binary_n: int, continuous_n: int, wanted: str, metric: str) -> None:
    s = {"binary": Sums(binary_n, 1, 1), "continuous": Sums(continuous_n, 1, 1)}
    assert abtest.pick_metric(wanted, [s]) == metric


def test_continuous_readout() -> None:
    a, b = rng.normal(0.0, 1.0, 300), rng.normal(0.5, 1.0, 300)
    t = {
        "instances": {
            "x": {"variant": "a", "version": "1", "continuous": sums(a).wire()},
            "y": {"variant": "b", "version": "2", "continuous": sums(b).wire()},
        }
    }
    out = abtest.readout(ABTest(min_samples=200), [("a", 1), ("b", 2)], t)
    assert out["metric"] == "continuous" and out["verdict"] == "better"
    assert out["variants"][1]["pValue"] == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue, rel=1e-3)


def test_fold_keeps_a_restarted_pods_counts_and_takes_the_latest_figures() -> None:
    def report(instance: str, n: int, k: int) -> dict[str, Any]:
        return {
            "instance": instance,
            "variant": "blue",
            "version": "1",
            "outcomes": {"binary": binary(k, n).wire(), "continuous": Sums().wire()},
        }

    t = abtest.fold(None, [report("p1", 10, 5), report("idle", 0, 0)])
    assert set(t["instances"]) == {"p1"}  # a pod with no outcomes takes no room
    t = abtest.fold(t, [report("p1", 30, 20)])  # the same process, later
    t = abtest.fold(t, [report("p1-restarted", 4, 4)])  # p1 restarted: p1's last figures stay
    assert abtest.totals(t)[("blue", "1")]["binary"] == binary(24, 34)
    t = abtest.fold(t, [])  # an unreadable round changes nothing
    assert abtest.totals(t)[("blue", "1")]["binary"] == binary(24, 34)


def test_fold_retires_the_oldest_instances_beyond_the_cap() -> None:
    t: dict[str, Any] | None = None
    for i in range(abtest.MAX_INSTANCES + 5):
        t = abtest.fold(
            t, [{"instance": f"p{i}", "variant": "blue", "version": "1", "outcomes": {"binary": binary(1, 2).wire()}}]
        )
    assert t is not None and len(t["instances"]) == abtest.MAX_INSTANCES
    assert t["retired"]["blue@1"]["binary"]["n"] == 10
    assert abtest.totals(t)[("blue", "1")]["binary"] == binary(abtest.MAX_INSTANCES + 5, 2 * (abtest.MAX_INSTANCES + 5))


def test_verdict_changes_name_each_moved_variant_once() -> None:
    before = {"control": "blue", "variants": [{"name": "blue"}, {"name": "green", "samples": 10}]}
    after = {
        "control": "blue",
        "variants": [
            {"name": "blue"},
            {"name": "green", "version": 2, "samples": 120, "difference": 0.3, "pValue": 1e-5, "verdict": "better"},
        ],
    }
    lines = abtest.verdict_changes(before, after)
    assert lines == ["green v2 better than the control blue: +0.3 (p 1e-05, 120 outcomes)"]
    assert abtest.verdict_changes(after, after) == []


# --- promoteOnWin ------------------------------------------------------------------------------
WON = {
    "verdict": "better",
    "winner": "green",
    "control": "blue",
    "variants": [{"name": "blue", "control": True}, {"name": "green", "difference": 0.39, "pValue": 3.7e-8}],
}
HELD = {"variant": "green", "version": 2, "at": "then", "message": "m"}


@pytest.mark.parametrize(
    ("on", "result", "before", "served", "want"),
    [
        (False, WON, None, {"blue": 1, "green": 2}, None),  # not asked
        (True, {**WON, "verdict": None, "winner": None}, None, {"blue": 1, "green": 2}, None),  # collecting
        (True, {**WON, "verdict": "worse", "winner": None}, None, {"blue": 1, "green": 2}, None),
        (True, WON, None, {"blue": 1, "green": 2}, ("green", 2, "now")),
        (True, WON, None, {"blue": 1, "green": None}, None),  # the winner's version is not known
        # latched: later looks do not take it back...
        (True, {**WON, "verdict": "inconclusive", "winner": None}, HELD, {"blue": 1, "green": 2}, ("green", 2, "then")),
        # ...until the winner serves another version, which must win again
        (True, {**WON, "verdict": None, "winner": None}, HELD, {"blue": 1, "green": 3}, None),
        (True, WON, HELD, {"blue": 1, "green": 3}, ("green", 3, "now")),
        (False, WON, HELD, {"blue": 1, "green": 2}, None),  # switched off: the weights again
    ],
)
def test_promotion(
    on: bool,
    result: dict[str, Any],
    before: dict[str, Any] | None,
    served: dict[str, int | None],
    want: tuple[str, int, str] | None,
) -> None:
    got = abtest.promotion(
        ABTest(promote_on_win=on), result, before, list(served.items()), namespace="demo", model="iris", now="now"
    )
    if want is None:
        assert got is None
        return
    assert got is not None and (got["variant"], got["version"], got["at"]) == want
    if got["at"] == "now":
        assert f"modelship promote iris {want[1]} --to Production -n demo" in got["message"]
        assert "+0.39" in got["message"] and "takes all the live traffic" in got["message"]


def test_the_winner_takes_the_split_and_a_shadow_keeps_its_copy() -> None:
    from modelship.api import ModelDeploymentSpec
    from modelship.resources import serving

    spec = ModelDeploymentSpec.model_validate(
        {
            "model": "iris",
            "variants": [
                {"name": "blue", "version": 1, "weight": 50},
                {"name": "green", "version": 2, "weight": 50},
                {"name": "s", "version": 3, "weight": 0, "shadow": True},
            ],
            "experiment": {"promoteOnWin": True},
        }
    )
    assert abtest.effective_spec(spec, None) is spec
    assert abtest.effective_spec(spec, {"variant": "gone"}) is spec
    won = abtest.effective_spec(spec, HELD)
    assert [(v.name, v.weight, v.shadow) for v in won.variants] == [
        ("blue", 0, False),
        ("green", 100, False),
        ("s", 0, True),
    ]
    assert [v.weight for v in spec.variants] == [50, 50, 0]  # git's spec is not touched
    plans = {p.name: p for p in serving.plan_variants(won)}
    assert (plans["blue"].replicas, plans["green"].replicas, plans["s"].replicas) == (
        0,
        2,
        1,
    )  # replicas mode: every live pod
    off = spec.model_copy(update={"experiment": spec.experiment.model_copy(update={"promote_on_win": False})})  # type: ignore[union-attr]
    assert abtest.effective_spec(off, HELD) is off
