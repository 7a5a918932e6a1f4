"""Fixtures of the models unit tests: small data sets and fitted scikit-learn models."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


@pytest.fixture(scope="session")
def wine() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_wine(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="session")
def wine_model(wine: tuple[pd.DataFrame, pd.Series]) -> Pipeline:
    X, y = wine
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
