"""What the ModelDeployment controller observes of its Deployments (``_observe``): the
pods are listed only while a variant is not fully ready, and never for one scaled to zero
on purpose (promoteOnWin's loser), which would cost a LIST on every 2-second tick."""

from __future__ import annotations

from typing import Any

import pytest

from modelship.controllers.modeldeployment import _observe


def deployment(spec_replicas: int | None, replicas: int, ready: int) -> dict[str, Any]:
    return {
        "name": "iris-blue",
        "variant": "blue",
        "track": "stable",
        "generation": 2,
        "specReplicas": spec_replicas,
        "templateVersion": "1",
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": replicas,
            "availableReplicas": ready,
        },
    }


@pytest.mark.parametrize(
    ("spec_replicas", "replicas", "ready", "listed"),
    [
        (2, 2, 2, False),  # all ready: nothing to find
        (2, 2, 1, True),  # one not ready: its pod may say why
        (1, 0, 0, True),  # none yet: a pod may be failing to start
        (None, 0, 0, True),  # the HPA's (no replicas in the spec) and none yet
        (0, 0, 0, False),  # scaled to zero on purpose
    ],
)
def test_pods_are_listed_only_when_they_may_say_something(
    spec_replicas: int | None, replicas: int, ready: int, listed: bool
) -> None:
    calls: list[tuple[str, str | None]] = []

    def pods_of(variant: str, version: str | None) -> tuple[str | None, list[int]]:
        calls.append((variant, version))
        return None, []

    observed = _observe([deployment(spec_replicas, replicas, ready)], pods_of)
    assert bool(calls) is listed
    assert (observed["blue"].replicas, observed["blue"].ready, observed["blue"].version) == (replicas, ready, 1)
