"""The pure rules behind MLflow compatibility: step sampling of the bulk-interval history,
the GenAI paths not served, artifact locations, and MLflow's wording of a bad field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelship.tracking.protocol import messages
from modelship.tracking.protocol.messages import validation_message
from modelship.tracking.server.paths import unsupported_feature
from modelship.tracking.store.history import evenly_spaced, sample_steps
from modelship.tracking.store.sql import TrackingStore


@pytest.mark.parametrize(
    ("runs", "max_results", "start", "end", "expected"),
    [
        ([[0, 1, 2]], 10, None, None, {0, 1, 2}),  # fewer steps than asked: all of them
        ([list(range(10))], 5, None, None, {0, 2, 4, 6, 8, 9}),  # evenly spaced, and the last
        ([list(range(10)), [3, 7]], 2, None, None, {0, 5, 9, 3, 7}),  # each run's first and last
        ([list(range(100))], 3, 10, 20, {10, 13, 17, 20}),  # inside the window only
        ([[5, 50]], 1, None, None, {5, 50}),  # the bounds survive max_results=1
        ([[], [1]], 4, None, None, {1}),
        ([[]], 4, None, None, set()),
    ],
)
def test_sample_steps(
    runs: list[list[int]], max_results: int, start: int | None, end: int | None, expected: set[int]
) -> None:
    assert sample_steps(runs, max_results, start, end) == expected


@pytest.mark.parametrize(
    ("n", "k", "expected"), [(3, 5, [0, 1, 2]), (10, 2, [0, 9]), (10, 1, [9]), (5, 3, [0, 2, 4]), (0, 3, [])]
)
def test_evenly_spaced_keeps_first_and_last(n: int, k: int, expected: list[int]) -> None:
    assert evenly_spaced(n, k) == expected


@pytest.mark.parametrize(
    ("path", "feature"),
    [
        ("/api/3.0/mlflow/traces", "Traces"),
        ("/api/2.0/mlflow/traces/abc/tags", "Traces"),
        ("/v1/traces", "Traces (OpenTelemetry export)"),
        ("/api/3.0/mlflow/gateway/endpoints/list", "The AI gateway"),
        ("/graphql", "GraphQL"),
        ("/api/2.0/mlflow/runs/search", None),
        ("/api/2.0/mlflow/tracesx", None),  # a prefix matches whole segments only
        ("/api/3.0/mlflow/server-info", None),
    ],
)
def test_unsupported_feature(path: str, feature: str | None) -> None:
    assert unsupported_feature(path) == feature


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (None, None),
        ("", None),
        ("s3://bucket/p", "s3://bucket/p"),
        ("mlflow-artifacts:/x", "mlflow-artifacts:/x"),
        ("file:///data/a", "file:///data/a"),
        ("/data/a/../b", "file:///data/b"),
        ("rel/dir", "mlflow-artifacts:/rel/dir"),
        ("./rel//dir/", "mlflow-artifacts:/rel/dir"),
    ],
)
def test_artifact_locations_become_absolute(tmp_path: object, given: str | None, stored: str | None) -> None:
    store = TrackingStore(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        assert store.resolve_artifact_location(given) == stored
    finally:
        store.close()


def test_a_relative_location_may_not_leave_the_root(tmp_path: object) -> None:
    from modelship.tracking.errors import TrackingError

    store = TrackingStore(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        with pytest.raises(TrackingError, match="parameter 'artifact_location'"):
            store.resolve_artifact_location("../elsewhere")
    finally:
        store.close()


@pytest.mark.parametrize(
    ("model", "body", "wording"),
    [
        (
            messages.LogParam,
            '{"run_id": 31, "key": "k", "value": "v"}',
            "Invalid value 31 for parameter 'run_id' supplied",
        ),
        (messages.LogParam, '{"run_id": "r", "value": "v"}', "Missing value for required parameter 'key'."),
        (
            messages.CreateExperiment,
            '{"name": "e", "tags": [{"key": 1}]}',
            "Invalid value 1 for parameter 'tags[0].key'",
        ),
        (messages.SearchRuns, '{"max_results": "many"}', "Invalid value \"many\" for parameter 'max_results' supplied"),
    ],
)
def test_validation_messages_are_mlflows(model: type, body: str, wording: str) -> None:
    with pytest.raises(ValidationError) as err:
        model.model_validate_json(body)
    assert wording in validation_message(err.value)
