"""controllers.experiment: the timer's filter and the acceptance of search rules."""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
from typing import Any

import kopf
import pytest
from pydantic import ValidationError
from tests.unit.experiments.helpers import IRIS

from modelship.controllers import experiment, main
from modelship.controllers.settings import OperatorConfig


def _complete(status: str, generation: int) -> dict[str, Any]:
    return {"type": "Complete", "status": status, "observedGeneration": generation}


@pytest.mark.parametrize(
    ("phase", "condition", "generation", "needed"),
    [
        (None, None, 1, True),
        ("Running", _complete("False", 1), 1, True),
        ("Succeeded", _complete("True", 1), 1, False),
        ("Failed", _complete("True", 1), 1, False),
        ("Succeeded", _complete("True", 1), 2, True),  # the spec changed after the end
    ],
)
def test_needs_work(phase: str | None, condition: dict[str, Any] | None, generation: int, needed: bool) -> None:
    status = {"phase": phase, "conditions": [condition] if condition else []}
    assert experiment.needs_work({"generation": generation}, status) is needed


def test_a_search_rule_violation_is_refused_in_ready() -> None:
    spec = {**IRIS, "parameters": {"C": 1.0}}
    body = {"metadata": {"name": "iris", "namespace": "ns", "generation": 4}, "spec": spec}
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError):
        asyncio.run(experiment.reconcile(body=body, patch=patch, logger=logging.getLogger("t")))
    (ready,) = patch["status"]["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "InvalidSpec")
    assert "both name C" in ready["message"] and ready["observedGeneration"] == 4


def test_a_suspended_template_has_no_timer_until_it_is_unsuspended_or_has_trials() -> None:
    assert experiment.needs_work({"generation": 1}, {}, spec={"suspend": True}) is False
    assert experiment.needs_work({"generation": 1}, {}, spec={"suspend": False}) is True
    # suspended mid-way: the timer still looks after the trials that run
    assert experiment.needs_work({"generation": 2}, {"trials": [{"number": 0}]}, spec={"suspend": True}) is True


def test_a_suspended_experiment_says_so_in_status_from_reconcile() -> None:
    body = {"metadata": {"name": "tmpl", "namespace": "ns", "generation": 1}, "spec": {**IRIS, "suspend": True}}
    patch = kopf.Patch()
    asyncio.run(experiment.reconcile(body=body, patch=patch, logger=logging.getLogger("t")))
    assert patch["status"]["phase"] == "Pending"
    complete = {c["type"]: c for c in patch["status"]["conditions"]}["Complete"]
    assert (complete["status"], complete["reason"]) == ("False", "Suspended")
    assert "set it to false to start" in complete["message"]


def test_the_run_cache_lives_in_each_experiments_own_memo() -> None:
    # kopf gives each object a shallow copy of the operator's memo and drops it when the
    # object is deleted: the cache must be created in that copy, never in the shared one.
    base = kopf.Memo(config=object())
    first, second = copy.copy(base), copy.copy(base)
    cache = experiment.run_cache(first)
    cache.settled.add("run-1")
    assert experiment.run_cache(first) is cache
    assert experiment.run_cache(second) is not cache
    assert experiment.run_cache(second).settled == set()
    assert "runs" not in base


def _config(argv: list[str]) -> OperatorConfig:
    parser = argparse.ArgumentParser()
    main.add_arguments(parser)
    return main.config_from_args(parser.parse_args(argv))


def test_tracking_token_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSHIP_TRACKING_TOKEN", "s3cret-token")
    monkeypatch.setenv("MODELSHIP_TRACKING_TOKEN_SECRET", "from-env")
    config = _config(["--tracking-token-secret", "tracking-token", "--tracking-token-secret-key", "t"])
    assert (config.tracking_token_secret, config.tracking_token_secret_key) == ("tracking-token", "t")
    assert config.tracking_token is not None and config.tracking_token.get_secret_value() == "s3cret-token"
    assert "s3cret-token" not in repr(config) and "s3cret-token" not in str(config.model_dump())
    monkeypatch.delenv("MODELSHIP_TRACKING_TOKEN")
    assert _config([]).tracking_token is None and _config([]).tracking_token_secret == "from-env"
    with pytest.raises(ValidationError):
        _config(["--tracking-token-secret", "Not/A/Secret"])
