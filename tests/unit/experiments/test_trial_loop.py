"""resources.trial_loop: one tick of the trial loop planned from what was observed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tests.unit.experiments.helpers import spec

from modelship.api import ExperimentSpec
from modelship.api.experiment import SecretKeyRef
from modelship.resources.experiment import Owner
from modelship.resources.search import FAILED, RUNNING, STOPPED, SUCCEEDED, Trial
from modelship.resources.trial_loop import Observed, ObservedTrial, TickPlan, plan_tick
from modelship.resources.trial_record import NO_EARLIER, Earlier

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
OWNER = Owner(name="iris", namespace="ml", uid="0123456789abcdef")
CURVE = tuple((step, 0.9) for step in range(1, 6))
POOR = tuple((step, 0.1) for step in range(1, 6))


def seen(
    number: int,
    phase: str,
    *,
    objective: float | None = None,
    history: tuple[tuple[int, float], ...] = (),
    pod_message: str | None = None,
    run_status: str | None = None,
    run_id: str | None = "auto",
    message: str | None = None,
) -> ObservedTrial:
    trial = Trial(
        number,
        f"iris-trial-{number}",
        {"C": 1.0 + number, "solver": "lbfgs"},
        phase,
        f"run{number}" if run_id == "auto" else run_id,
        message=message,
    )
    return ObservedTrial(trial, objective, history, pod_message, run_status)


def observe(
    *trials: ObservedTrial,
    old_status: dict[str, Any] | None = None,
    token: SecretKeyRef | None = None,
    earlier: Earlier = NO_EARLIER,
) -> Observed:
    return Observed(
        owner=OWNER,
        generation=3,
        old_status=old_status or {},
        trials=trials,
        experiment_id="7",
        tracking_url="http://tracking:5000/",
        default_image="ghcr.io/modelship/modelship:0.1.0",
        token=token,
        observed_at=NOW,
        earlier=earlier,
    )


def median(**changes: Any) -> ExperimentSpec:
    early = {"algorithm": "median", "minTrialsRequired": 2, "startStep": 1}
    return spec(search_earlyStopping=early, **changes)


def summary(plan: TickPlan) -> dict[str, Any]:
    """The plan's decisions in a comparable shape."""
    return {
        "stops": [(s.number, s.reason) for s in plan.stops],
        "close": list(plan.close_runs),
        "launch": [launch.number for launch in plan.launches],
        "register": plan.model_version is not None,
        "phase": plan.progress.phase,
        "finished": plan.finished.reason if plan.finished else None,
    }


NOTHING = {"stops": [], "close": [], "launch": [], "register": False}


@pytest.mark.parametrize(
    ("name", "the_spec", "trials", "old_status", "expected"),
    [
        ("a new search starts parallelism trials", spec(), [], None, {**NOTHING, "launch": [0, 1], "phase": "Running"}),
        (
            "a free slot is filled with the next number",
            spec(),
            [seen(0, SUCCEEDED, objective=0.9), seen(1, RUNNING)],
            None,
            {**NOTHING, "launch": [2], "phase": "Running"},
        ),
        (
            "full slots: nothing to do",
            spec(),
            [seen(0, RUNNING), seen(1, RUNNING)],
            None,
            {**NOTHING, "phase": "Running"},
        ),
        (
            "maxFailedTrials stops the active trials and closes their runs",
            spec(),
            [seen(0, FAILED, pod_message="exit 1"), seen(1, FAILED), seen(2, RUNNING)],
            None,
            {
                **NOTHING,
                "stops": [(2, "maxFailedTrials reached")],
                "close": [("run2", "KILLED")],
                "phase": "Failed",
                "finished": "MaxFailedTrialsReached",  # the last active trial stopped: the end
            },
        ),
        (
            "a failed trial's run left RUNNING is closed as FAILED; a stopped one as KILLED",
            spec(),
            [
                seen(0, FAILED, run_status="RUNNING"),
                seen(1, STOPPED, run_status="RUNNING", objective=0.5),
                seen(2, STOPPED, run_status="KILLED"),
                seen(3, RUNNING),
            ],
            None,
            {**NOTHING, "close": [("run0", "FAILED"), ("run1", "KILLED")], "launch": [4], "phase": "Running"},
        ),
        (
            "the median rule stops a poor trial and frees its slot in the same tick",
            median(),
            [
                seen(0, SUCCEEDED, objective=0.9, history=CURVE),
                seen(1, SUCCEEDED, objective=0.9, history=CURVE),
                seen(2, RUNNING, history=POOR),
                seen(3, RUNNING, history=CURVE),
            ],
            None,
            {
                **NOTHING,
                "stops": [(2, "median rule")],
                "close": [("run2", "KILLED")],
                "launch": [4],
                "phase": "Running",
            },
        ),
        (
            "the last trial done: success, the best registered, one Event",
            spec(search_maxTrials=2, register={"modelName": "iris", "threshold": 0.5}),
            [seen(0, SUCCEEDED, objective=0.7), seen(1, SUCCEEDED, objective=0.8)],
            {"phase": "Running"},
            {**NOTHING, "register": True, "phase": "Succeeded", "finished": "SearchSucceeded"},
        ),
        (
            "below the threshold: nothing registered",
            spec(search_maxTrials=2, register={"modelName": "iris", "threshold": 0.95}),
            [seen(0, SUCCEEDED, objective=0.7), seen(1, SUCCEEDED, objective=0.8)],
            {"phase": "Running"},
            {**NOTHING, "phase": "Succeeded", "finished": "SearchSucceeded"},
        ),
        (
            "the end is announced once: the phase was already terminal",
            spec(search_maxTrials=2, register=None),
            [seen(0, SUCCEEDED, objective=0.7), seen(1, SUCCEEDED, objective=0.8)],
            {"phase": "Succeeded"},
            {**NOTHING, "phase": "Succeeded", "finished": None},
        ),
        (
            "a completed Job whose run has no objective failed",
            spec(search_maxTrials=1, search_parallelism=1, search_maxFailedTrials=1, register=None),
            [seen(0, SUCCEEDED)],
            {"phase": "Running"},
            {**NOTHING, "phase": "Failed", "finished": "MaxFailedTrialsReached"},
        ),
        (
            "one trial without a search succeeds by its Job alone",
            spec(search=None, register={"modelName": "iris"}),
            [seen(0, SUCCEEDED)],
            {"phase": "Running"},
            {**NOTHING, "register": True, "phase": "Succeeded", "finished": "SearchSucceeded"},
        ),
        (
            "a Job without a run id is a failed trial",
            spec(search=None, register=None),
            [seen(0, SUCCEEDED, run_id=None)],
            {"phase": "Running"},
            {**NOTHING, "phase": "Failed", "finished": "TrialFailed"},
        ),
    ],
)
def test_plan_tick(
    name: str,
    the_spec: ExperimentSpec,
    trials: list[ObservedTrial],
    old_status: dict[str, Any] | None,
    expected: dict[str, Any],
) -> None:
    got = summary(plan_tick(the_spec, observe(*trials, old_status=old_status)))
    expected = {"finished": None, **expected}
    assert got == expected, name


def test_launches_carry_deterministic_names_and_the_run_to_find_again() -> None:
    plan = plan_tick(spec(), observe(seen(0, SUCCEEDED, objective=0.9), seen(1, RUNNING)))
    (launch,) = plan.launches
    assert launch.job_name == "iris-trial-2"
    assert launch.trial_key == f"{OWNER.uid}-2"
    assert launch.run_tags == {
        "modelship.io/trial-key": f"{OWNER.uid}-2",
        "modelship.io/experiment": "ml/iris",
        "modelship.io/trial": "2",
    }
    job = launch.job("run-new")
    assert job["metadata"]["name"] == "iris-trial-2"
    assert job["metadata"]["annotations"]["modelship.io/run-id"] == "run-new"
    assert job["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    assert set(launch.parameters) == {"C", "solver", "max_iter"}
    # The same observation plans the same trial: a restarted operator asks for the same values.
    again = plan_tick(spec(), observe(seen(0, SUCCEEDED, objective=0.9), seen(1, RUNNING)))
    assert again.launches[0].parameters == launch.parameters


def test_status_names_the_new_trials_runs() -> None:
    plan = plan_tick(spec(), observe())
    status = plan.status({0: "r0", 1: "r1"})
    assert [(t["name"], t.get("runId"), t["phase"]) for t in status["trials"]] == [
        ("iris-trial-0", "r0", "Running"),
        ("iris-trial-1", "r1", "Running"),
    ]
    assert status["phase"] == "Running" and status["trialsSummary"] == "0/6"
    assert status["experimentId"] == "7"
    assert status["trackingUrl"] == "http://tracking:5000/#/experiments/7"
    complete = next(c for c in status["conditions"] if c["type"] == "Complete")
    assert (complete["status"], complete["observedGeneration"]) == ("False", 3)


def test_status_after_stops_and_registration() -> None:
    the_spec = spec(search_maxTrials=2, register={"modelName": "iris", "threshold": 0.5})
    plan = plan_tick(the_spec, observe(seen(0, SUCCEEDED, objective=0.7), seen(1, SUCCEEDED, objective=0.8)))
    assert plan.model_version is not None
    assert plan.model_version["spec"]["source"] == "runs:/run1/model"
    status = plan.status()
    assert status["modelVersion"] == plan.model_version["metadata"]["name"]
    assert status["bestTrial"]["number"] == 1
    registered = next(c for c in status["conditions"] if c["type"] == "Registered")
    assert registered["status"] == "True"

    gated = spec(
        search_maxTrials=2,
        register={"modelName": "iris", "stage": "Production", "gates": [{"metric": "accuracy", "value": 0.75}]},
    )
    plan = plan_tick(gated, observe(seen(0, SUCCEEDED, objective=0.7), seen(1, SUCCEEDED, objective=0.8)))
    assert plan.model_version is not None
    assert plan.model_version["spec"]["stage"] == "Production"
    assert plan.model_version["spec"]["gates"] == [{"metric": "accuracy", "op": ">=", "value": 0.75}]

    stopping = plan_tick(spec(), observe(seen(0, FAILED), seen(1, FAILED), seen(2, RUNNING)))
    (stop,) = stopping.stops
    assert stop.annotations == {
        "modelship.io/stopped": "true",
        "modelship.io/stopped-reason": "stopped: maxFailedTrials reached",
    }
    assert stop.event.reason == "TrialStopped" and "iris-trial-2" in stop.event.message
    trials = {t["number"]: t for t in stopping.status()["trials"]}
    assert (trials[2]["phase"], trials[2]["message"]) == ("Stopped", "stopped: maxFailedTrials reached")


def test_an_earlier_model_version_stays_in_status() -> None:
    plan = plan_tick(spec(register=None), observe(seen(0, RUNNING), old_status={"modelVersion": "old-mv"}))
    assert plan.status()["modelVersion"] == "old-mv"


def test_settled_runs_are_the_failed_and_stopped_ones() -> None:
    plan = plan_tick(
        spec(),
        observe(seen(0, FAILED), seen(1, STOPPED, run_status="RUNNING"), seen(2, SUCCEEDED, objective=0.8)),
    )
    assert plan.settled_runs == {"run0", "run1"}


def test_new_trials_take_the_token_from_the_secret_observed() -> None:
    token = SecretKeyRef(name="tracking-token", key="token")
    (first, _) = plan_tick(spec(), observe(token=token)).launches
    sidecar = first.job("r0")["spec"]["template"]["spec"]["initContainers"][1]
    assert sidecar["env"] == [
        {
            "name": "MODELSHIP_SIDECAR_SERVER_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "tracking-token", "key": "token"}},
        }
    ]
    (first, _) = plan_tick(spec(), observe()).launches
    assert "env" not in first.job("r0")["spec"]["template"]["spec"]["initContainers"][1]


@pytest.mark.parametrize(
    ("trial", "phase", "message"),
    [
        # The sidecar's note on a trial that succeeded all the same (a dead-lettered write).
        (
            seen(0, SUCCEEDED, objective=0.9, pod_message="tracking sidecar: 1 writes moved"),
            SUCCEEDED,
            "tracking sidecar: 1 writes moved",
        ),
        # A refused token: the objective never arrived, and the trial says why.
        (
            seen(0, SUCCEEDED, pod_message="tracking sidecar: refused"),
            FAILED,
            "the run ended without logging the objective metric 'accuracy'; tracking sidecar: refused",
        ),
        (
            seen(
                0,
                FAILED,
                pod_message="tracking sidecar: refused; container trainer exited",
                message="BackoffLimitExceeded",
            ),
            FAILED,
            "BackoffLimitExceeded; tracking sidecar: refused; container trainer exited",
        ),
    ],
)
def test_what_the_pods_said_is_on_the_trial(trial: ObservedTrial, phase: str, message: str) -> None:
    (known,) = plan_tick(spec(search_maxTrials=1, search_parallelism=1), observe(trial)).trials
    assert (known.phase, known.message) == (phase, message)


def test_one_trial_without_objective_keeps_the_sidecars_note() -> None:
    plan = plan_tick(spec(search=None, register=None), observe(seen(0, SUCCEEDED, pod_message="tracking sidecar: x")))
    (known,) = plan.trials
    assert (known.phase, known.message) == (SUCCEEDED, "tracking sidecar: x")
