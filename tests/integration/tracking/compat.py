"""Helpers of the MLflow compatibility tests: the real mlflow client's own REST layer.

The calls MLflow's UI makes (bulk history, dataset search, a logged model's files...) have
no ``MlflowClient`` method; they go through ``mlflow.utils.rest_utils`` here, the module
the client itself sends every request with, so the answers are read as the client reads
them (``verify_rest_response`` raises the ``MlflowException`` a user would see).
"""

from __future__ import annotations

import uuid
from typing import Any


def creds(url: str) -> Any:
    from mlflow.utils.rest_utils import MlflowHostCreds

    return MlflowHostCreds(url)


def rest(url: str, method: str, endpoint: str, **kw: Any) -> Any:
    """One request through the client's ``http_request``; the JSON answer, or the client's
    ``MlflowException`` for an error answer."""
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    response = http_request(creds(url), endpoint, method, max_retries=0, **kw)
    return verify_rest_response(response, endpoint).json()


def rest_error(url: str, method: str, endpoint: str, **kw: Any) -> Any:
    """The ``MlflowException`` the client raises for this call (the call must fail)."""
    from mlflow.exceptions import MlflowException

    try:
        rest(url, method, endpoint, **kw)
    except MlflowException as exc:
        return exc
    raise AssertionError(f"{method} {endpoint} succeeded; an error was expected")


def new_experiment(client: Any, prefix: str) -> str:
    return str(client.create_experiment(f"{prefix}-{uuid.uuid4().hex[:8]}"))
