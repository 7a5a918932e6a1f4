"""resources.trials: Jobs to trials, accounting, best trial, registration, status."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.unit.experiments.helpers import cond, job, spec

from modelship.api.experiment import SecretKeyRef
from modelship.resources.search import FAILED, RUNNING, STOPPED, SUCCEEDED, Trial
from modelship.resources.trials import (
    best_trial,
    build_status,
    decide_progress,
    decide_registration,
    job_state,
    pod_cannot_start,
    pod_failure,
    sidecar_note,
    status_changed,
    trial_of_job,
    with_result,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("job_obj", "state", "message"),
    [
        (job(0), "Running", None),
        (job(0, conditions=[cond("Complete")]), "Complete", None),
        (job(0, conditions=[cond("SuccessCriteriaMet")]), "Complete", None),
        (job(0, conditions=[cond("Failed", "BackoffLimitExceeded")]), "Failed", "BackoffLimitExceeded"),
        (job(0, conditions=[cond("FailureTarget", "x")]), "Failed", "x"),
        (job(0, stopped=True), "Stopped", None),
        (job(0, stopped=True, conditions=[cond("Complete")]), "Stopped", None),
    ],
)
def test_job_state(job_obj: dict[str, Any], state: str, message: str | None) -> None:
    assert job_state(job_obj) == (state, message)


def test_trial_of_job() -> None:
    t = trial_of_job(job(4, conditions=[cond("Complete")], parameters={"C": 0.5}))
    assert t is not None
    assert (t.number, t.name, t.phase, t.run_id, dict(t.parameters)) == (
        4,
        "iris-trial-4",
        SUCCEEDED,
        "run4",
        {"C": 0.5},
    )


@pytest.mark.parametrize(
    "broken",
    [
        {"metadata": {"name": "x", "labels": {}}},
        {"metadata": {"name": "x", "labels": {"modelship.io/trial": "one"}}},
        {
            "metadata": {
                "name": "x",
                "labels": {"modelship.io/trial": "1"},
                "annotations": {"modelship.io/parameters": "{"},
            }
        },
    ],
)
def test_a_foreign_or_broken_job_is_no_trial(broken: dict[str, Any]) -> None:
    assert trial_of_job(broken) is None


def _pod(name: str, code: int, message: str | None = None, init: bool = False) -> dict[str, Any]:
    term: dict[str, Any] = {"exitCode": code}
    if message:
        term["message"] = message
    statuses = [{"name": name, "state": {"terminated": term}}]
    return {"status": {"initContainerStatuses" if init else "containerStatuses": statuses}}


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        ([], None),
        ([_pod("trainer", 0)], None),
        ([_pod("trainer", 2)], "container trainer exited with code 2: the MLproject refused the request"),
        (
            [_pod("trainer", 1, "ValueError: bad solver")],
            "container trainer exited with code 1. Last output: ValueError: bad solver",
        ),
        ([_pod("checkout", 1, init=True)], "container checkout exited with code 1: the git checkout failed"),
        (
            [
                {
                    "status": {
                        "containerStatuses": [
                            {"name": "trainer", "state": {"waiting": {"reason": "ErrImagePull", "message": "no"}}}
                        ]
                    }
                }
            ],
            "container trainer cannot start: ErrImagePull: no",
        ),
    ],
)
def test_pod_failure(pods: list[dict[str, Any]], expected: str | None) -> None:
    found = pod_failure(pods)
    if expected is None:
        assert found is None
    else:
        assert found is not None and found.startswith(expected), found


@pytest.mark.parametrize(
    ("phase", "objective", "message", "phase_after", "message_after"),
    [
        (SUCCEEDED, 0.9, None, SUCCEEDED, None),
        (SUCCEEDED, None, None, FAILED, "the run ended without logging the objective metric 'accuracy'"),
        (FAILED, None, "exit 1", FAILED, "BackoffLimitExceeded; exit 1"),
        (RUNNING, 0.5, None, RUNNING, None),
    ],
)
def test_with_result(
    phase: str, objective: float | None, message: str | None, phase_after: str, message_after: str | None
) -> None:
    before = Trial(1, "t1", {}, phase, "r1", message="BackoffLimitExceeded" if phase == FAILED else None)
    after = with_result(before, objective=objective, metric="accuracy", message=message)
    assert (after.phase, after.message) == (phase_after, message_after)


def _trials(*phases: str) -> list[Trial]:
    return [
        Trial(
            i,
            f"t{i}",
            {"C": 1.0},
            p,
            f"r{i}",
            objective=0.5 + i / 100 if p == SUCCEEDED else None,
            message="boom" if p == FAILED else None,
        )
        for i, p in enumerate(phases)
    ]


S, F, R, X = SUCCEEDED, FAILED, RUNNING, STOPPED


@pytest.mark.parametrize(
    ("changes", "phases", "expected"),
    [
        pytest.param({}, (), {"to_launch": 2, "phase": "Running", "finished": False, "summary": "0/6"}, id="start"),
        pytest.param({}, (R,), {"to_launch": 1, "phase": "Running", "finished": False}, id="fill-parallelism"),
        pytest.param({}, (R, R), {"to_launch": 0, "phase": "Running", "finished": False}, id="parallelism-full"),
        pytest.param({}, (S, S, S, S, R), {"to_launch": 1, "finished": False, "summary": "4/6"}, id="last-one"),
        pytest.param({}, (S, S, S, S, R, R), {"to_launch": 0, "finished": False}, id="all-launched"),
        pytest.param(
            {},
            (S, X, S, F, S, S),
            {"to_launch": 0, "finished": True, "phase": "Succeeded", "reason": "SearchSucceeded", "summary": "6/6"},
            id="done",
        ),
        pytest.param(
            {},
            (S, F, R, F),
            {
                "to_launch": 0,
                "stop_active": True,
                "finished": False,
                "phase": "Failed",
                "reason": "MaxFailedTrialsReached",
            },
            id="max-failed-stops-active",
        ),
        pytest.param(
            {},
            (S, F, X, F),
            {
                "to_launch": 0,
                "stop_active": False,
                "finished": True,
                "phase": "Failed",
                "reason": "MaxFailedTrialsReached",
            },
            id="max-failed-done",
        ),
        pytest.param(
            {"search_maxFailedTrials": 10},
            (F, F, F, F, F, F),
            {"finished": True, "phase": "Failed", "reason": "NoTrialSucceeded"},
            id="none-succeeded",
        ),
        pytest.param(
            {"search_maxFailedTrials": 0},
            (F,),
            {"finished": True, "reason": "MaxFailedTrialsReached"},
            id="zero-counts-as-one",
        ),
        pytest.param({"search": None}, (), {"to_launch": 1, "planned": 1, "phase": "Running"}, id="single-start"),
        pytest.param(
            {"search": None}, (S,), {"finished": True, "phase": "Succeeded", "summary": "1/1"}, id="single-done"
        ),
        pytest.param(
            {"search": None}, (F,), {"finished": True, "phase": "Failed", "reason": "TrialFailed"}, id="single-failed"
        ),
        pytest.param(
            {"suspend": True},
            (),
            {"to_launch": 0, "phase": "Pending", "finished": False, "reason": "Suspended"},
            id="suspended-launches-nothing",
        ),
        pytest.param(
            {"suspend": True},
            (S, R),
            {"to_launch": 0, "phase": "Running", "finished": False, "reason": "Suspended"},
            id="suspended-mid-way-lets-running-trials-run",
        ),
        pytest.param(
            {"suspend": True},
            (S, S, S, S, S, S),
            {"finished": True, "phase": "Succeeded"},
            id="suspended-after-all-launched-still-finishes",
        ),
        pytest.param({"suspend": False}, (), {"to_launch": 2, "phase": "Running"}, id="unsuspended-starts"),
    ],
)
def test_decide_progress(changes: dict[str, Any], phases: tuple[str, ...], expected: dict[str, Any]) -> None:
    progress = decide_progress(spec(**changes), _trials(*phases))
    for key, value in expected.items():
        assert getattr(progress, key) == value, (key, progress)


@pytest.mark.parametrize(
    ("goal", "objectives", "best"),
    [
        ("maximize", [0.8, 0.95, 0.9], 1),
        ("minimize", [0.8, 0.95, 0.3], 2),
        ("maximize", [0.9, 0.9], 0),  # a tie goes to the earlier trial
        ("maximize", [], None),
    ],
)
def test_best_trial(goal: str, objectives: list[float], best: int | None) -> None:
    s = spec(search_objective={"metric": "loss", "goal": goal})
    trials = [Trial(i, f"t{i}", {}, SUCCEEDED, f"r{i}", objective=v) for i, v in enumerate(objectives)]
    trials.append(Trial(9, "t9", {}, STOPPED, "r9", objective=99.0))  # a stopped trial never wins
    found = best_trial(s, trials)
    assert (found.number if found else None) == best


@pytest.mark.parametrize(
    ("goal", "threshold", "objective", "phases", "register", "reason"),
    [
        ("maximize", 0.9, 0.95, (S,), True, "Registered"),
        ("maximize", 0.9, 0.9, (S,), True, "Registered"),
        ("maximize", 0.9, 0.85, (S,), False, "BelowThreshold"),
        ("minimize", 0.2, 0.1, (S,), True, "Registered"),
        ("minimize", 0.2, 0.3, (S,), False, "BelowThreshold"),
        ("maximize", None, 0.1, (S,), True, "Registered"),
        ("maximize", 0.9, 0.95, (F,), False, "SearchFailed"),
    ],
)
def test_decide_registration(
    goal: str, threshold: float | None, objective: float, phases: tuple[str, ...], register: bool, reason: str
) -> None:
    s = spec(
        search_objective={"metric": "m", "goal": goal},
        search_maxTrials=1,
        search_parallelism=1,
        search_maxFailedTrials=5,
        register={"modelName": "iris", "threshold": threshold},
    )
    trials = [Trial(0, "t0", {}, phases[0], "r0", objective=objective if phases[0] == S else None)]
    progress = decide_progress(s, trials)
    decision = decide_registration(s, progress, best_trial(s, trials))
    assert decision is not None and (decision.register, decision.reason) == (register, reason)


def test_no_registration_decision_before_the_end_or_without_register() -> None:
    s = spec()
    running = _trials(S, R)
    assert decide_registration(s, decide_progress(s, running), best_trial(s, running)) is None
    plain = spec(register=None, search_maxTrials=1, search_parallelism=1)
    done = _trials(S)
    assert decide_registration(plain, decide_progress(plain, done), best_trial(plain, done)) is None


def test_single_trial_without_objective_registers_its_run() -> None:
    s = spec(search=None)
    done = [Trial(0, "t0", {}, SUCCEEDED, "r0")]
    decision = decide_registration(s, decide_progress(s, done), best_trial(s, done))
    assert decision is not None and decision.register


def test_build_status() -> None:
    s = spec()
    trials = _trials(S, F, R)
    progress = decide_progress(s, trials)
    status = build_status(
        s,
        trials,
        progress,
        old_status={"conditions": [{"type": "Ready", "status": "True"}]},
        generation=3,
        now=NOW,
        experiment_id="7",
        tracking_url="http://t/#/experiments/7",
    )
    assert status["phase"] == "Running"
    assert status["trialsSummary"] == "2/6"
    assert (status["succeededTrials"], status["failedTrials"]) == (1, 1)
    assert status["bestTrial"]["number"] == 0
    assert [t["phase"] for t in status["trials"]] == [S, F, R]
    assert status["trials"][1]["message"] == "boom"
    types = {c["type"]: c for c in status["conditions"]}
    assert types["Ready"]["status"] == "True"
    assert (types["Complete"]["status"], types["Complete"]["reason"]) == ("False", "TrialsRunning")
    assert types["Complete"]["observedGeneration"] == 3
    assert types["Degraded"]["reason"] == "TrialFailed" and "t1" in types["Degraded"]["message"]
    assert status["experimentId"] == "7"
    # Written again from its own output, nothing changes: no needless PATCH.
    again = build_status(
        s,
        trials,
        progress,
        old_status=status,
        generation=3,
        now=NOW.replace(hour=13),
        experiment_id="7",
        tracking_url="http://t/#/experiments/7",
    )
    assert not status_changed(status, again)


def _waiting(name: str, reason: str, message: str | None = None, init: bool = False) -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason} | ({"message": message} if message else {})
    key = "initContainerStatuses" if init else "containerStatuses"
    return {"status": {key: [{"name": name, "state": {"waiting": state}}]}}


_NO_SECRET = 'secret "tracking-token" not found'


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        ([], None),
        ([_waiting("trainer", "ContainerCreating")], None),  # on its way
        ([_waiting("trainer", "PodInitializing")], None),
        ([_waiting("trainer", "CrashLoopBackOff", "back-off")], None),  # it started: the Job decides
        ([_pod("trainer", 1)], None),
        (
            [_waiting("tracking", "CreateContainerConfigError", _NO_SECRET, init=True)],
            f"container tracking cannot start: CreateContainerConfigError: {_NO_SECRET}",
        ),
        ([_waiting("trainer", "ImagePullBackOff")], "container trainer cannot start: ImagePullBackOff"),
        (
            [_waiting("trainer", "ContainerCreating"), _waiting("trainer", "InvalidImageName", "bad")],
            "container trainer cannot start: InvalidImageName: bad",
        ),
    ],
)
def test_pod_cannot_start(pods: list[dict[str, Any]], expected: str | None) -> None:
    assert pod_cannot_start(pods) == expected


def test_a_running_trial_whose_pod_cannot_start_degrades_until_it_starts() -> None:
    s = spec()
    said = f"container tracking cannot start: CreateContainerConfigError: {_NO_SECRET}"
    waiting = [with_result(t, objective=None, metric="accuracy", message=said) for t in _trials(R)]
    progress = decide_progress(s, waiting)
    status = build_status(s, waiting, progress, old_status={}, generation=1, now=NOW)
    assert status["trials"][0]["message"] == said
    degraded = {c["type"]: c for c in status["conditions"]}["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "TrialCannotStart")
    assert said in degraded["message"] and "t0" in degraded["message"]
    started = _trials(R)
    later = build_status(s, started, decide_progress(s, started), old_status=status, generation=1, now=NOW)
    degraded = {c["type"]: c for c in later["conditions"]}["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("False", "TrialsStarted")
    assert "message" not in later["trials"][0]
    # Never degraded, nothing to clear: no Degraded condition appears.
    fresh = build_status(s, started, decide_progress(s, started), old_status={}, generation=1, now=NOW)
    assert "Degraded" not in {c["type"] for c in fresh["conditions"]}


def test_a_stopped_trial_says_why() -> None:
    stopped = job(2, stopped=True)
    stopped["metadata"]["annotations"]["modelship.io/stopped-reason"] = "stopped: median rule"
    t = trial_of_job(stopped)
    assert t is not None and (t.phase, t.message) == (STOPPED, "stopped: median rule")
    bare = trial_of_job(job(3, stopped=True))
    assert bare is not None and bare.message == "stopped"


def _sidecar_pod(message: str | None, *, last: bool = False) -> dict[str, Any]:
    terminated = {"exitCode": 0, "message": message} if message is not None else {"exitCode": 0}
    state = (
        {"lastState": {"terminated": terminated}, "state": {"running": {}}}
        if last
        else {"state": {"terminated": terminated}}
    )
    return {
        "status": {
            "initContainerStatuses": [
                {"name": "checkout", "state": {"terminated": {"exitCode": 0}}},
                {"name": "tracking", **state},
            ]
        }
    }


REFUSED = json.dumps(
    {
        "pending": 9,
        "deadLettered": 0,
        "authFailing": True,
        "serverUp": True,
        "message": "the tracking server refuses the sidecar's token (HTTP 401): 9 acknowledged writes are kept",
    }
)
CLEAN = json.dumps({"pending": 0, "deadLettered": 0, "authFailing": False, "serverUp": True, "message": ""})
DEAD = json.dumps(
    {
        "pending": 0,
        "deadLettered": 2,
        "authFailing": False,
        "serverUp": True,
        "message": "2 writes moved to the dead letter",
    }
)


@pytest.mark.parametrize(
    ("pods", "token", "expected"),
    [
        ([], None, None),
        ([_sidecar_pod(None)], None, None),
        ([_sidecar_pod(CLEAN)], None, None),
        ([_sidecar_pod("not json: an older sidecar")], None, None),
        ([_sidecar_pod(DEAD)], None, "tracking sidecar: 2 writes moved to the dead letter"),
        (
            [_sidecar_pod(REFUSED)],
            SecretKeyRef(name="tracking-token", key="token"),
            (
                "tracking sidecar: the tracking server refuses the sidecar's token (HTTP 401): 9 acknowledged writes "
                "are kept (its token comes from Secret tracking-token, key token: spec.tracking.tokenSecretRef or the "
                "operator's --tracking-token-secret)"
            ),
        ),
        ([_sidecar_pod(REFUSED, last=True)], None, "no token is configured: set spec.tracking.tokenSecretRef"),
    ],
)
def test_sidecar_note(pods: list[dict[str, Any]], token: SecretKeyRef | None, expected: str | None) -> None:
    note = sidecar_note(pods, token)
    if expected is None or note is None:
        assert note == expected
    else:
        assert note == expected or expected in note, note
