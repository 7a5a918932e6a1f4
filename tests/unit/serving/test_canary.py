"""The canary's pure decisions: metrics, the analysis of a step, and each tick's move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelship.api.modeldeployment import Analysis, Strategy
from modelship.resources import canary
from modelship.resources.canary import Snapshot

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
STRATEGY = Strategy.model_validate(
    {
        "type": "Canary",
        "steps": [{"weight": 20, "pauseSeconds": 30}, {"weight": 50, "pauseSeconds": 30}],
        "analysis": {"maxErrorRate": 0.05, "maxP99LatencyMs": 500, "minRequests": 10},
    }
)

METRICS = """# HELP modelship_requests_total Requests by endpoint and HTTP status
# TYPE modelship_requests_total counter
modelship_requests_total{model="iris",version="2",variant="main",endpoint="invocations",status="200"} 90.0
modelship_requests_total{model="iris",version="2",variant="main",endpoint="invocations",status="500"} 10.0
modelship_requests_total{model="iris",version="2",variant="main",endpoint="ping",status="200"} 400.0
modelship_requests_total{model="iris",version="2",variant="main",endpoint="v2_infer",status="503"} 2.0
modelship_request_duration_seconds_bucket{model="iris",version="2",variant="main",endpoint="invocations",le="0.1"} 95.0
modelship_request_duration_seconds_bucket{model="iris",version="2",variant="main",endpoint="invocations",le="0.5"} 99.0
modelship_request_duration_seconds_bucket{model="iris",version="2",variant="main",endpoint="invocations",le="1.0"} 100.0
modelship_request_duration_seconds_bucket{model="iris",version="2",variant="main",endpoint="invocations",le="+Inf"} 100.0
modelship_request_duration_seconds_bucket{model="iris",version="2",variant="main",endpoint="ping",le="+Inf"} 400.0
"""


def test_parse_metrics_counts_predictions_only() -> None:
    snap = canary.parse_metrics(METRICS)
    assert (snap.requests, snap.errors) == (102.0, 12.0)  # /ping is not a prediction; 503 is an error
    assert dict(snap.buckets)[float("inf")] == 100.0
    assert canary.p99_ms(snap) == 500.0


def test_counters_since_a_baseline_and_after_a_restart() -> None:
    base = Snapshot(50, 5, ((0.1, 45.0), (float("inf"), 50.0)))
    now = Snapshot(80, 6, ((0.1, 70.0), (float("inf"), 80.0)))
    assert now.since(base) == Snapshot(30, 1, ((0.1, 25.0), (float("inf"), 30.0)))
    restarted = Snapshot(7, 0, ((0.1, 7.0), (float("inf"), 7.0)))
    assert restarted.since(base) == restarted  # the counter dropped: the pod restarted, count from 0
    assert Snapshot.from_wire(now.wire()) == now


@pytest.mark.parametrize(
    ("delta", "passed", "why"),
    [
        (Snapshot(100, 1, ((0.1, 99.0), (0.5, 100.0), (float("inf"), 100.0))), True, ""),
        (Snapshot(100, 10, ((0.1, 100.0), (float("inf"), 100.0))), False, "error rate 10.0%"),
        (Snapshot(100, 0, ((0.1, 50.0), (1.0, 100.0), (float("inf"), 100.0))), False, "p99 1000 ms"),
        (Snapshot(5, 0, ((0.1, 5.0), (float("inf"), 5.0))), False, "only 5 requests"),
    ],
)
def test_evaluate(delta: Snapshot, passed: bool, why: str) -> None:
    result = canary.evaluate(delta, STRATEGY.analysis or Analysis())
    assert result.passed is passed
    assert why in "; ".join(result.failures)


NOTHING = Snapshot()


def tick(
    state: dict[str, Any] | None,
    *,
    at: float = 0,
    serving: int | None = 1,
    wanted: int = 2,
    snapshot: Snapshot | None = NOTHING,
    ready: bool = True,
) -> canary.Decision:
    return canary.decide(
        state,
        variant="main",
        serving_version=serving,
        wanted_version=wanted,
        strategy=STRATEGY,
        now=T0 + timedelta(seconds=at),
        snapshot=snapshot,
        canary_ready=ready,
    )


GOOD = Snapshot(100, 0, ((0.1, 100.0), (float("inf"), 100.0)))


def test_a_canary_from_start_to_promotion() -> None:
    d = tick(None)
    assert d.action == "start" and d.state and d.state["fromVersion"] == 1 and d.state["toVersion"] == 2
    assert canary.rollout_summary(d.state) == "Canary 1/2 v2"
    d = tick(d.state, at=5, ready=False, snapshot=None)
    assert d.action == "wait" and d.weight == 0  # no traffic before the canary pods are Ready
    d = tick(d.state, at=10)
    assert d.action == "advance" and d.weight == 20 and d.state and d.state["stepStartedAt"] == "2026-12-01T12:00:10Z"
    d = tick(d.state, at=20, snapshot=GOOD)
    assert d.action == "wait" and d.weight == 20  # the pause is not over
    d = tick(d.state, at=41, snapshot=GOOD)
    assert d.action == "advance" and d.weight == 50 and d.state and d.state["step"] == 1
    assert canary.rollout_summary(d.state) == "Canary 2/2 v2"
    twice = Snapshot(200, 0, ((0.1, 200.0), (float("inf"), 200.0)))
    d = tick(d.state, at=72, snapshot=twice)
    assert d.action == "promote" and d.state and d.state["phase"] == "Promoting" and d.event
    assert "passed 2 steps" in d.event
    assert tick(d.state, at=80).action == "promote"  # until the controller sees the stable rolled


def test_a_failing_step_rolls_back_and_the_failed_version_is_not_tried_again() -> None:
    d = tick(tick(None).state, at=1)
    bad = Snapshot(100, 30, ((0.1, 100.0), (float("inf"), 100.0)))
    d = tick(d.state, at=40, snapshot=bad)
    assert d.action == "rollback" and d.weight == 0 and d.state and d.state["phase"] == "RolledBack"
    assert d.event and "error rate 30.0%" in d.event and "version 1 serves" in d.event
    assert d.state["analysis"] == {"requests": 100, "errors": 30, "errorRate": 0.3, "p99Ms": 100.0}
    assert canary.rollout_summary(d.state) == "RolledBack v2"
    assert tick(d.state, at=100).action == "held"
    # A newer version is wanted: a fresh canary, from the version that serves.
    fresh = tick(d.state, at=120, wanted=3)
    assert fresh.action == "start" and fresh.state and (fresh.state["fromVersion"], fresh.state["toVersion"]) == (1, 3)


@pytest.mark.parametrize(
    ("serving", "wanted", "action"),
    [(None, 2, "none"), (2, 2, "none"), (1, 2, "start")],
)
def test_no_canary_for_a_first_version_or_an_unchanged_one(serving: int | None, wanted: int, action: str) -> None:
    assert tick(None, serving=serving, wanted=wanted).action == action


def test_the_registry_moving_mid_way_restarts_the_canary() -> None:
    d = tick(tick(None).state, at=1)
    moved = tick(d.state, at=5, wanted=3)
    assert moved.action == "start" and moved.state and moved.state["toVersion"] == 3
    back = tick(d.state, at=5, wanted=1)  # back to what serves: nothing to try
    assert back.action == "none" and back.state is None
