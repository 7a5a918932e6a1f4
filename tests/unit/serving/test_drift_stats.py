"""The drift statistics against scipy and against figures computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from modelship.models.profile import Baseline, compute_profile, profile_predictions
from modelship.serving.drift import (
    DriftConfig,
    DriftMonitor,
    category_codes,
    chi_square,
    ks_p_value,
    ks_statistic,
)
from modelship.stability import EPSILON, psi

RNG = np.random.default_rng(7)
TRAIN = pd.DataFrame(
    {
        "x": RNG.normal(size=4000),
        "k": RNG.integers(0, 4, size=4000),  # numeric with atoms
        "colour": RNG.choice(["red", "green", "blue"], p=[0.5, 0.3, 0.2], size=4000),
    }
)
PROFILE = compute_profile(TRAIN)


@pytest.mark.parametrize(
    ("counts", "expected", "want"),
    [
        # identical shares: 0
        ([25, 25, 50], [0.25, 0.25, 0.5], 0.0),
        # by hand: (0.5-0.25) ln(0.5/0.25) + (0.25-0.25) ln 1 + (0.25-0.5) ln(0.25/0.5)
        ([50, 25, 25], [0.25, 0.25, 0.5], 0.25 * math.log(2) + 0.25 * math.log(2)),
        # an empty bin counts at EPSILON, not as an infinite logarithm
        ([100, 0], [0.5, 0.5], (1 - 0.5) * math.log(1 / 0.5) + (EPSILON - 0.5) * math.log(EPSILON / 0.5)),
        # nothing observed: 0
        ([0, 0], [0.5, 0.5], 0.0),
    ],
)
def test_psi_by_hand(counts: list[int], expected: list[float], want: float) -> None:
    assert psi(counts, expected) == pytest.approx(want, abs=1e-12)


def test_numeric_bins_hold_five_percent_each_and_missing_last() -> None:
    base = Baseline(PROFILE["features"]["x"])
    assert base.bins == 21  # 20 bins between and beyond 19 interior quantiles, then missing
    assert base.expected[:-1] == pytest.approx([0.05] * 20)
    assert base.expected[-1] == 0.0
    train_counts = np.bincount(np.searchsorted(base.edges, TRAIN["x"], side="left"), minlength=20)
    assert train_counts / len(TRAIN) == pytest.approx([0.05] * 20, abs=0.002)


def test_missing_rate_is_a_bin_of_its_own() -> None:
    col = pd.Series([1.0, 2.0, np.nan, 4.0] * 100)
    base = Baseline(compute_profile(pd.DataFrame({"v": col}))["features"]["v"])
    assert base.expected[-1] == pytest.approx(0.25)
    assert base.expected.sum() == pytest.approx(1.0)


def test_atoms_of_a_discrete_feature_get_their_share() -> None:
    base = Baseline(PROFILE["features"]["k"])
    shares = TRAIN["k"].value_counts(normalize=True).sort_index().to_numpy()
    # bins (-inf, 0], (0, 1], (1, 2], (2, 3]: the percentile grid resolves each atom to 1 %
    assert base.edges.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert base.expected[:4] == pytest.approx(shares, abs=0.01)
    assert base.cdf(np.array([1.0]))[0] == pytest.approx(shares[:2].sum(), abs=0.01)
    assert base.cdf_before(np.array([1.0]))[0] == pytest.approx(shares[0], abs=0.01)


def test_ks_statistic_matches_scipy_on_continuous_values() -> None:
    base = Baseline(PROFILE["features"]["x"])
    for shift in (0.0, 0.3, 1.0):
        live = RNG.normal(loc=shift, size=1500)
        want = stats.kstest(live, base.cdf).statistic
        assert ks_statistic(live, base) == pytest.approx(want, abs=1e-12)


def test_ks_statistic_with_ties_by_hand() -> None:
    # the reference: uniform on [0, 1] (percentiles 0, 0.01, ..., 1)
    entry = {"type": "numeric", "count": 1000, "missing_rate": 0.0, "quantiles": {"0.00": 0.0, "1.00": 1.0}}
    entry["quantiles"] = {f"{q:.2f}": q for q in np.linspace(0, 1, 21)}
    base = Baseline(entry)
    # four values, two of them 0.5: F_n jumps 0.25 at 0.2, 0.5 at 0.5, 0.25 at 0.9
    values = np.array([0.2, 0.5, 0.5, 0.9])
    # |F_n - F| at 0.2: |0.25 - 0.2|, before: |0 - 0.2|; at 0.5: |0.75 - 0.5|, before |0.25 - 0.5|;
    # at 0.9: |1 - 0.9|, before |0.75 - 0.9|: the sup is 0.25
    assert ks_statistic(values, base) == pytest.approx(0.25)


def test_ks_p_value_is_kolmogorovs_at_the_effective_sample_size() -> None:
    d, n, m = 0.05, 900, 3600
    n_eff = n * m / (n + m)
    assert ks_p_value(d, n, m) == pytest.approx(stats.kstwobign.sf(d * math.sqrt(n_eff)))
    # and close to scipy's two-sample test of two samples with that statistic
    a = RNG.normal(size=n)
    b = RNG.normal(loc=0.1, size=m)
    res = stats.ks_2samp(a, b, method="asymp")
    assert ks_p_value(res.statistic, n, m) == pytest.approx(res.pvalue, rel=0.05)


def test_chi_square_matches_scipys_contingency_test() -> None:
    counts = np.array([40, 35, 25, 7, 0])  # red, green, blue, unseen, missing
    expected = np.array([0.5, 0.3, 0.2, 0.0, 0.0])
    stat, p = chi_square(counts, expected, 4000)
    table = np.array([[40, 35, 25, 7], [2000, 1200, 800, 0]])
    want = stats.chi2_contingency(table, correction=False)
    assert stat == pytest.approx(want.statistic)
    assert p == pytest.approx(want.pvalue)


def test_chi_square_of_one_category_is_no_evidence() -> None:
    assert chi_square(np.array([10, 0, 0]), np.array([1.0, 0.0, 0.0]), 100) == (0.0, 1.0)


def test_category_codes_name_unseen_and_missing() -> None:
    base = Baseline(PROFILE["features"]["colour"])
    codes = category_codes(pd.Series(["red", "purple", None, "blue", np.nan]), base)
    red, blue = base.categories.index("red"), base.categories.index("blue")
    assert codes.tolist() == [red, 3, 4, blue, 4]


@pytest.mark.parametrize(
    ("samples", "value", "verdict"),
    [
        (10, 9.0, "insufficient"),
        (500, 0.0999, "stable"),
        (500, 0.1, "warn"),
        (500, 0.2499, "warn"),
        (500, 0.25, "drift"),
    ],
)
def test_verdict_bands(samples: int, value: float, verdict: str) -> None:
    assert DriftConfig(min_samples=500).verdict(samples, value) == verdict


def monitor(**config: object) -> DriftMonitor:
    return DriftMonitor(PROFILE, DriftConfig(**{"window": 1000, "min_samples": 200, **config}), list(TRAIN.columns))  # type: ignore[arg-type]


def live(n: int, shift: float = 0.0, colours: tuple[float, float, float] = (0.5, 0.3, 0.2)) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": RNG.normal(loc=shift, size=n),
            "k": RNG.integers(0, 4, size=n),
            "colour": RNG.choice(["red", "green", "blue"], p=list(colours), size=n),
        }
    )


def test_unshifted_traffic_is_stable_and_shifted_drifts() -> None:
    m = monitor()
    for _ in range(50):
        m.observe(live(20), None)
    report = m.report()
    assert report["rows"] == 1000
    assert {f: v["verdict"] for f, v in report["features"].items()} == {
        "x": "stable",
        "k": "stable",
        "colour": "stable",
    }
    assert report["drifting"] == []
    for _ in range(50):
        m.observe(live(20, shift=1.0, colours=(0.1, 0.1, 0.8)), None)
    report = m.report()
    assert report["drifting"] == ["colour", "x"]
    x = report["features"]["x"]
    assert x["samples"] == 1000 and x["psi"] > 0.25 and x["p_value"] < 1e-6 and x["ks"] > 0.3
    assert report["features"]["colour"]["chi2"] > 100


def test_the_window_holds_only_the_most_recent_rows() -> None:
    m = monitor(window=300)
    m.observe(live(1000, shift=3.0), None)  # more than the window: only the last 300 kept
    m.observe(live(300), None)  # then the window is all unshifted
    report = m.report()
    assert report["features"]["x"]["samples"] == 300
    assert report["features"]["x"]["verdict"] == "stable"
    assert report["rows"] == 1300


def test_fewer_rows_than_min_samples_give_no_verdict() -> None:
    m = monitor(min_samples=500)
    m.observe(live(100, shift=5.0), None)
    assert {v["verdict"] for v in m.report()["features"].values()} == {"insufficient"}


def test_arrays_are_read_by_signature_position_and_ignored_features_skipped() -> None:
    m = monitor(ignore=frozenset({"colour"}))
    assert m.features == ["x", "k"]
    arr = live(400, shift=2.0)[["x", "k", "colour"]].to_numpy(dtype=object)
    m.observe(arr, None)
    report = m.report()
    assert set(report["features"]) == {"x", "k"}
    assert report["features"]["x"]["verdict"] == "drift"
    assert report["ignored"] == ["colour"]


def test_a_missing_column_counts_as_missing_values() -> None:
    m = monitor()
    m.observe(live(300).drop(columns=["x"]), None)
    x = m.report()["features"]["x"]
    assert x["missing"] == 300 and x["verdict"] == "drift"


def test_prediction_drift_of_classes() -> None:
    classes = np.array(["a", "b"])[RNG.integers(0, 2, size=2000)]
    profile = {**PROFILE, "prediction": profile_predictions(classes)}
    m = DriftMonitor(profile, DriftConfig(window=1000, min_samples=100), list(TRAIN.columns))
    m.observe(live(500), np.array(["a"] * 500))
    pred = m.report()["prediction"]
    assert pred["type"] == "categorical" and pred["verdict"] == "drift"
    assert pred["counts"][:2] == ([500, 0] if m.prediction and m.prediction.categories[0] == "a" else [0, 500])


def test_prediction_profile_of_probabilities_is_the_winning_class() -> None:
    entry = profile_predictions(np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]))
    assert entry is not None and entry["type"] == "categorical"
    assert entry["frequencies"] == pytest.approx({"0": 2 / 3, "1": 1 / 3})
    numeric = profile_predictions(np.linspace(0, 1, 50))
    assert numeric is not None and numeric["type"] == "numeric"


def test_report_is_cached_until_rows_arrive() -> None:
    m = monitor()
    m.observe(live(10), None)
    first = m.report()
    assert m.report() is first
    m.observe(live(10), None)
    assert m.report() is not first


def test_an_input_that_is_not_rows_is_skipped() -> None:
    m = monitor()
    m.observe_all([(object(), None), (live(5), None)])
    assert m.report()["rows"] == 5


@pytest.mark.parametrize(
    "values",
    [
        np.array([0, 2, 1, 7, -3, 2]),  # integer classes: the table path, 7 and -3 unseen
        np.array([0.0, 2.0, 1.0, 7.0, -3.0, 2.0]),  # floats: the distinct-value path
        np.array(["0", "2", "1", "7", "-3", "2"], dtype=object),  # strings
    ],
)
def test_class_codes_agree_on_every_path(values: np.ndarray) -> None:
    base = Baseline(profile_predictions(np.array([0, 1, 2, 2, 1, 0, 0])) or {})
    assert base.int_table is not None
    want = [base.categories.index("0"), base.categories.index("2"), base.categories.index("1"), 3, 3]
    want.append(base.categories.index("2"))
    got = category_codes(values, base).tolist()
    if values.dtype.kind == "f":  # "2.0" is not the class "2": floats are numbers, not classes
        assert got == [3] * 6
    else:
        assert got == want


def test_boolean_categories() -> None:
    base = Baseline(compute_profile(pd.DataFrame({"b": [True, False, True]}))["features"]["b"])
    assert category_codes(np.array([True, False]), base).tolist() == [
        base.categories.index("True"),
        base.categories.index("False"),
    ]
