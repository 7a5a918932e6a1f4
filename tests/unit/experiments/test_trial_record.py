"""resources.trial_record: status.trials as the search's record once trial Jobs are deleted.

The cases are those of spec.trialJobTTLSeconds: a trial's Job gone after it succeeded,
failed or was stopped; gone while the record still showed it running (the TTL controller
was quicker than the next tick, or the operator was down); gone before any status named it;
an operator restarted with nothing but the status; more trials than status.trials lists.
Each tick is planned twice where it matters: once with the Jobs, once from the status the
first tick wrote with the Jobs deleted, and the two must agree.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.unit.experiments.helpers import cond, job, spec
from tests.unit.experiments.test_trial_loop import observe, seen, summary

from modelship.api import ExperimentSpec
from modelship.resources import trial_record, trials
from modelship.resources.search import FAILED, RUNNING, STOPPED, SUCCEEDED, Trial, suggest
from modelship.resources.status import merge_patched
from modelship.resources.trial_loop import ObservedTrial, TickPlan, plan_tick
from modelship.resources.trial_record import JOB, RECORDED, VANISHED, Earlier

GRID_SPACE = {
    "C": {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1},
    "solver": {"type": "categorical", "values": ["lbfgs", "saga"]},
}


def from_record(
    the_spec: ExperimentSpec,
    status: dict[str, Any],
    jobs: list[ObservedTrial] = (),  # type: ignore[assignment]
    run_status: dict[int, str | None] | None = None,
    metrics: dict[int, float] | None = None,
) -> TickPlan:
    """Plan a tick as the controller's observe does: the Jobs that are left, merged with the
    record; a vanished trial ended as ``run_status`` says, with the objective of ``metrics``."""
    record, earlier = trial_record.recorded(status)
    by_number = {o.trial.number: o for o in jobs}
    observed = []
    for m in trial_record.merge([o.trial for o in jobs], record, earlier):
        if m.source == JOB:
            observed.append(by_number[m.trial.number])
            continue
        trial = m.trial
        status_of_run = None
        if m.source == VANISHED:
            status_of_run = (run_status or {}).get(trial.number)
            trial = trial_record.vanished(trial, status_of_run)
        objective = trial.objective
        if trial.phase == SUCCEEDED and objective is None:
            objective = (metrics or {}).get(trial.number)
        observed.append(ObservedTrial(trial, objective=objective, run_status=status_of_run))
    return plan_tick(the_spec, observe(*observed, old_status=status, earlier=earlier))


def decisions(plan: TickPlan) -> dict[str, Any]:
    status = plan.status()
    return {
        **summary(plan),
        "summary": status["trialsSummary"],
        "succeeded": status["succeededTrials"],
        "failed": status["failedTrials"],
        "best": (status["bestTrial"] or {}).get("number"),
        "numbers": [t["number"] for t in status["trials"]],
    }


@pytest.mark.parametrize(
    ("name", "the_spec", "with_jobs", "gone"),
    [
        (
            "Job gone after success: counted once, never started again, still the best",
            spec(),
            [seen(0, SUCCEEDED, objective=0.9), seen(1, RUNNING)],
            [0],
        ),
        (
            "Job gone after failure: counted as failed, its message kept, not run again",
            spec(search_maxFailedTrials=3),
            [seen(0, FAILED, pod_message="container trainer exited with code 1"), seen(1, RUNNING)],
            [0],
        ),
        (
            "Job gone after a stop: counted as stopped, never the best",
            spec(),
            [seen(0, STOPPED, objective=0.95), seen(1, SUCCEEDED, objective=0.8), seen(2, RUNNING)],
            [0, 1],
        ),
        (
            "every Job gone at the end: the search stays Succeeded and registers the same run",
            spec(search_maxTrials=3, search_parallelism=1, register={"modelName": "iris", "threshold": 0.5}),
            [seen(0, SUCCEEDED, objective=0.7), seen(1, SUCCEEDED, objective=0.85), seen(2, FAILED)],
            [0, 1, 2],
        ),
        (
            "maxFailedTrials reached, failed Jobs gone: the search stays Failed",
            spec(search_maxFailedTrials=2),
            [seen(0, FAILED), seen(1, FAILED), seen(2, SUCCEEDED, objective=0.9)],
            [0, 1, 2],
        ),
    ],
)
def test_a_finished_trial_whose_job_is_gone_plans_as_with_its_job(
    name: str, the_spec: ExperimentSpec, with_jobs: list[ObservedTrial], gone: list[int]
) -> None:
    first = plan_tick(the_spec, observe(*with_jobs))
    status = first.status({launch.number: f"run{launch.number}" for launch in first.launches})
    # The next tick, as a restarted operator sees it: the status, and the Jobs not yet deleted.
    left = [o for o in with_jobs if o.trial.number not in gone]
    left += [seen(launch.number, RUNNING) for launch in first.launches]
    again = from_record(the_spec, status, left)
    expected = {**decisions(first), "launch": [], "finished": None}  # launched, and announced, once
    assert decisions(again) == expected, name
    assert {t.number: (t.phase, t.message) for t in again.trials if t.number in gone} == {
        t.number: (t.phase, t.message) for t in first.trials if t.number in gone
    }, name
    if first.model_version is not None:
        assert again.model_version == first.model_version  # the same name: its create is a 409


def test_a_job_and_its_record_are_one_trial() -> None:
    jobs = [seen(0, SUCCEEDED, objective=0.9), seen(1, RUNNING), seen(2, RUNNING)]
    status = plan_tick(spec(), observe(*jobs)).status()
    merged = trial_record.merge([o.trial for o in jobs[:2]], *trial_record.recorded(status))
    assert [(m.trial.number, m.source) for m in merged] == [(0, JOB), (1, JOB), (2, VANISHED)]
    record, earlier = trial_record.recorded(status)
    assert [(m.trial.number, m.source) for m in trial_record.merge([], record, earlier)] == [
        (0, RECORDED),
        (1, VANISHED),
        (2, VANISHED),
    ]


@pytest.mark.parametrize(
    ("run_status", "phase", "closes", "message"),
    [
        ("FINISHED", SUCCEEDED, [], None),
        ("FAILED", FAILED, [], "its Job was deleted after the trial ended; its run run1 ended FAILED"),
        ("KILLED", FAILED, [], "its Job was deleted after the trial ended; its run run1 ended KILLED"),
        (
            "RUNNING",
            FAILED,
            [("run1", "FAILED")],
            "its Job was deleted before the trial ended (run run1 was still RUNNING)",
        ),
        (None, FAILED, [], "its Job was deleted and its run run1 is gone from the tracking server"),
    ],
)
def test_a_trial_recorded_running_whose_job_is_gone_ends_as_its_run_ended(
    run_status: str | None, phase: str, closes: list[tuple[str, str]], message: str | None
) -> None:
    the_spec = spec(search_maxFailedTrials=3)
    running = seen(2, RUNNING)
    status = plan_tick(the_spec, observe(seen(0, SUCCEEDED, objective=0.8), seen(1, RUNNING), running)).status()
    plan = from_record(the_spec, status, [running], run_status={1: run_status}, metrics={1: 0.9})
    trial = next(t for t in plan.trials if t.number == 1)
    assert (trial.phase, trial.message) == (phase, message)
    assert list(plan.close_runs) == closes
    # Its number is taken: the free slot gets the next number, never 1 again.
    assert [launch.number for launch in plan.launches] == [3]
    best = plan.status()["bestTrial"]["number"]
    assert best == (1 if phase == SUCCEEDED else 0)


def test_a_vanished_success_without_the_objective_failed() -> None:
    status = plan_tick(spec(), observe(seen(0, RUNNING), seen(1, RUNNING))).status()
    plan = from_record(spec(), status, run_status={0: "FINISHED", 1: "FINISHED"}, metrics={1: 0.9})
    phases = {t.number: (t.phase, t.message) for t in plan.trials if t.number < 2}
    assert phases == {
        0: (FAILED, "the run ended without logging the objective metric 'accuracy'"),
        1: (SUCCEEDED, None),
    }


def test_a_recorded_trial_without_a_run_id_failed() -> None:
    trial = trial_record.vanished(Trial(3, "iris-trial-3", {}, RUNNING), None)
    assert (trial.phase, trial.message) == (FAILED, "its Job was deleted before it started a run")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {
                "name": "iris-trial-2",
                "number": 2,
                "runId": "r2",
                "parameters": {"C": 0.5, "solver": "saga"},
                "objective": 0.93,
                "phase": "Succeeded",
                "samplerAttrs": json.dumps({"grid_id": 4}),
            },
            Trial(2, "iris-trial-2", {"C": 0.5, "solver": "saga"}, SUCCEEDED, "r2", 0.93, sampler_attrs={"grid_id": 4}),
        ),
        (
            {"name": "iris-trial-0", "number": 0, "phase": "Failed", "message": "exit 1", "samplerAttrs": "not json"},
            Trial(0, "iris-trial-0", {}, FAILED, message="exit 1"),
        ),
        ({"name": "iris-trial-1", "number": 1, "phase": "Unknown"}, Trial(1, "iris-trial-1", {}, "Pending")),
        ({"name": "no number"}, None),
        ({"number": "x", "name": "n"}, None),
    ],
)
def test_trial_of_entry(entry: dict[str, Any], expected: Trial | None) -> None:
    assert trial_record.trial_of_entry(entry) == expected


def test_the_record_round_trips_every_field_the_planner_uses() -> None:
    trial = Trial(
        5, "iris-trial-5", {"C": 0.25, "solver": "lbfgs", "max_iter": 200}, SUCCEEDED, "r5", 0.91,
        message="tracking sidecar: 1 write dead-lettered",
        sampler_attrs={"grid_id": 3, "search_space": {"C": [0.1, 0.2], "solver": ["lbfgs"]}},
    )  # fmt: skip
    assert trial_record.trial_of_entry(json.loads(json.dumps(trials.trial_status(trial)))) == trial


def test_the_record_is_read_from_status() -> None:
    status = {
        "trials": [{"name": "t-3", "number": 3, "phase": "Running", "runId": "r3"}],
        "earlierTrials": {"below": 3, "succeeded": 2, "failed": 1, "stopped": 0, "gridIds": [0, 5, 2]},
        "bestTrial": {"name": "t-1", "number": 1, "phase": "Succeeded", "runId": "r1", "objective": 0.9},
    }
    record, earlier = trial_record.recorded(status)
    assert [t.number for t in record] == [3]
    assert earlier == Earlier(
        below=3,
        succeeded=2,
        failed=1,
        grid_ids=(0, 5, 2),
        best=Trial(1, "t-1", {}, SUCCEEDED, "r1", 0.9),
    )
    # A best trial still listed is not the fold's.
    status["bestTrial"]["number"] = 3
    assert trial_record.recorded(status)[1].best is None
    assert trial_record.recorded({}) == ([], Earlier())


def _finished(n: int, objective: float = 0.5, **changes: Any) -> Trial:
    return Trial(n, f"iris-trial-{n}", {"C": 1.0}, changes.pop("phase", SUCCEEDED), f"run{n}", objective, **changes)


@pytest.mark.parametrize(
    ("name", "listed", "limit", "kept", "below", "counts"),
    [
        ("under the limit: nothing folds", [_finished(n) for n in range(3)], 5, [0, 1, 2], 0, (0, 0, 0)),
        (
            "the oldest finished trials fold, by phase",
            [_finished(0), _finished(1, phase=FAILED), _finished(2, phase=STOPPED), _finished(3), _finished(4)],
            2,
            [3, 4],
            3,
            (1, 1, 1),
        ),
        (
            "an old trial still running is passed, not folded, and named open",
            [_finished(0), _finished(1, phase=RUNNING), _finished(2), _finished(3)],
            2,
            [1, 3],
            3,
            (2, 0, 0),
        ),
        (
            "only active trials can keep the list over the limit",
            [_finished(0, phase=RUNNING), _finished(1, phase=RUNNING), _finished(2)],
            1,
            [0, 1],
            3,
            (1, 0, 0),
        ),
    ],
)
def test_fold(
    name: str, listed: list[Trial], limit: int, kept: list[int], below: int, counts: tuple[int, int, int]
) -> None:
    left, earlier = trial_record.fold(listed, Earlier(), limit)
    assert [t.number for t in left] == kept, name
    assert (earlier.below, (earlier.succeeded, earlier.failed, earlier.stopped)) == (below, counts), name
    assert earlier.open == tuple(t.number for t in left if t.number < below), name


def test_an_open_trial_is_counted_once_it_finished_and_listed_until_then() -> None:
    listed = [_finished(0), _finished(1, phase=RUNNING), _finished(2), _finished(3)]
    left, earlier = trial_record.fold(listed, Earlier(), 2)
    assert (earlier.below, earlier.open, earlier.count) == (3, (1,), 2)
    assert earlier.wire() == {"below": 3, "succeeded": 2, "failed": 0, "stopped": 0, "open": [1]}
    # Read back from status, the open trial is still merged in (from its Job or its record).
    status = {"trials": [trials.trial_status(t) for t in left], "earlierTrials": earlier.wire()}
    record, again = trial_record.recorded(status)
    assert again == earlier
    assert [m.trial.number for m in trial_record.merge([], record, again)] == [1, 3]
    assert [m.trial.number for m in trial_record.merge([_finished(0), _finished(1, phase=RUNNING)], [], again)] == [1]
    # Still running: nothing changes. Finished: counted, off the list, no longer open.
    assert trial_record.fold(left, earlier, 2) == (left, earlier)
    done = [_finished(1, phase=FAILED), _finished(3)]
    left, earlier = trial_record.fold(done, earlier, 2)
    assert [t.number for t in left] == [3]
    assert (earlier.below, earlier.open, earlier.succeeded, earlier.failed) == (3, (), 2, 1)
    assert earlier.wire()["open"] == []  # written empty: a merge patch must clear the list


def test_a_hung_old_trial_does_not_make_status_trials_grow() -> None:
    limit = trials.MAX_TRIALS_IN_STATUS
    the_spec = spec(search_maxTrials=3 * limit, search_parallelism=4, search_maxFailedTrials=10)
    jobs = [seen(0, RUNNING), *(seen(n, SUCCEEDED, objective=0.5) for n in range(1, 2 * limit))]
    first = plan_tick(the_spec, observe(*jobs))
    status = first.status({launch.number: f"run{launch.number}" for launch in first.launches})
    assert len(status["trials"]) <= limit  # the hung trial, the latest finished ones, the new launches
    assert status["trials"][0]["number"] == 0
    assert status["earlierTrials"]["open"] == [0]
    assert status["succeededTrials"] == 2 * limit - 1
    # The Jobs deleted (the hung one left): the same plan, the same counts.
    again = from_record(the_spec, status, [jobs[0], *(seen(x.number, RUNNING) for x in first.launches)])
    assert decisions(again) == {**decisions(first), "launch": []}
    assert again.status()["earlierTrials"] == status["earlierTrials"]


def test_more_trials_than_status_lists_are_still_counted_once_their_jobs_are_gone() -> None:
    limit = trials.MAX_TRIALS_IN_STATUS
    the_spec = spec(search_maxTrials=limit + 10, search_parallelism=2, search_maxFailedTrials=10)
    best_number = 3
    jobs = [
        seen(n, FAILED if n % 50 == 1 else SUCCEEDED, objective=0.99 if n == best_number else 0.5)
        for n in range(limit + 5)
    ]
    first = plan_tick(the_spec, observe(*jobs))
    status = first.status({launch.number: f"run{launch.number}" for launch in first.launches})
    assert len(status["trials"]) == limit
    assert status["earlierTrials"] == {"below": 7, "succeeded": 6, "failed": 1, "stopped": 0, "open": []}
    assert status["bestTrial"]["number"] == best_number  # folded, and still the best
    # Every Job deleted: the counts, the best trial and the next numbers hold.
    again = from_record(the_spec, status, [seen(launch.number, RUNNING) for launch in first.launches])
    assert decisions(again) == {**decisions(first), "launch": []}
    assert again.status()["earlierTrials"] == status["earlierTrials"]
    # A Job left of a folded trial is not counted twice.
    twice = from_record(the_spec, status, [jobs[0], *(seen(x.number, RUNNING) for x in first.launches)])
    assert decisions(twice) == decisions(again)


def test_folded_grid_points_are_never_offered_again() -> None:
    the_spec = spec(search_algorithm="grid", search_space=GRID_SPACE, search_maxTrials=6, search_parallelism=1)
    first = suggest(the_spec, [], [0, 1, 2, 3, 4], experiment_uid="u")
    taken = [s.sampler_attrs["grid_id"] for s in first]
    (last,) = suggest(the_spec, [], [5], experiment_uid="u", taken_grid_ids=taken)
    points = {(s.parameters["C"], s.parameters["solver"]) for s in first}
    assert (last.parameters["C"], last.parameters["solver"]) not in points
    assert len(points | {(last.parameters["C"], last.parameters["solver"])}) == 6


def _run(status: str, metrics: dict[str, float], params: dict[str, str]) -> dict[str, Any]:
    return {
        "info": {"run_id": "r7", "status": status},
        "data": {
            "metrics": [{"key": k, "value": v} for k, v in metrics.items()],
            "params": [{"key": k, "value": v} for k, v in params.items()],
        },
    }


PLANNED = {"C": 0.5, "solver": "saga", "max_iter": 200}
LOGGED = {"C": "0.5", "solver": "saga", "max_iter": "200"}
ATTRS = {"grid_id": 2}


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        (_run("RUNNING", {}, {}), None),  # open: the new Job adopts it
        (_run("SCHEDULED", {}, {}), None),
        (
            _run("FINISHED", {"accuracy": 0.9}, LOGGED),
            Trial(7, "iris-trial-7", PLANNED, SUCCEEDED, "r7", 0.9, sampler_attrs=ATTRS),
        ),
        (
            _run("FINISHED", {}, LOGGED),
            Trial(
                7, "iris-trial-7", PLANNED, FAILED, "r7",
                message="its Job was deleted before the operator recorded the trial; its run r7 ended FINISHED "
                "without logging the objective metric 'accuracy'",
                sampler_attrs=ATTRS,
            ),
        ),
        (
            _run("FAILED", {"accuracy": 0.2}, {"C": "0.7", "solver": "saga", "max_iter": "200"}),
            Trial(
                7, "iris-trial-7", {"C": "0.7", "solver": "saga", "max_iter": "200"}, FAILED, "r7", 0.2,
                message="its Job was deleted before the operator recorded the trial; its run r7 ended FAILED",
            ),
        ),
    ],
)  # fmt: skip
def test_trial_of_run(run: dict[str, Any], expected: Trial | None) -> None:
    got = trial_record.trial_of_run(7, "iris-trial-7", run, metric="accuracy", parameters=PLANNED, sampler_attrs=ATTRS)
    assert got == expected


def test_a_trial_that_ran_before_any_status_named_it_is_recorded_not_started() -> None:
    """The operator died between creating trial 1's Job and writing the status; the Job ran
    and was deleted before it came back: the launch of number 1 finds the run ended."""
    first = plan_tick(spec(), observe(seen(0, RUNNING)))
    (launch,) = first.launches
    found = trial_record.trial_of_run(
        launch.number,
        launch.job_name,
        _run("FINISHED", {"accuracy": 0.8}, {k: str(v) for k, v in launch.parameters.items()}),
        metric="accuracy",
        parameters=launch.parameters,
        sampler_attrs=launch.sampler_attrs,
    )
    assert found is not None
    status = first.status(ran={launch.number: found})
    entry = next(t for t in status["trials"] if t["number"] == launch.number)
    assert (entry["phase"], entry["runId"], entry["objective"]) == (SUCCEEDED, "r7", 0.8)
    # The next tick, from that status alone: trial 1 is recorded, the free slot takes number 2.
    again = from_record(spec(), status, [seen(0, RUNNING)])
    assert [x.number for x in again.launches] == [2]
    assert again.progress.succeeded == 1


def test_a_failed_search_whose_failures_are_all_folded_still_says_why() -> None:
    earlier = Earlier(below=3, failed=3)
    progress = trials.decide_progress(spec(search_maxFailedTrials=3), [], earlier)
    assert (progress.phase, progress.reason, progress.finished) == ("Failed", "MaxFailedTrialsReached", True)
    assert progress.message.endswith("Last failure, an earlier trial")


def test_job_states_with_a_stop_by_deadline() -> None:
    """A stopped trial's Job fails by its active deadline (children.stop_job): it stays Stopped."""
    stopped = job(4, stopped=True, conditions=[cond("Failed", "Job was active longer than specified deadline")])
    trial = trials.trial_of_job(stopped)
    assert trial is not None and trial.phase == STOPPED


def test_an_emptied_open_list_survives_the_merge_patch_status_goes_out_as() -> None:
    # kopf sends status as an RFC 7386 merge patch: a key left out keeps its old value.
    listed = [_finished(0), _finished(1, phase=RUNNING), _finished(2), _finished(3)]
    left, earlier = trial_record.fold(listed, Earlier(), 2)
    stored = {"trials": [trials.trial_status(t) for t in left], "earlierTrials": earlier.wire()}
    left, earlier = trial_record.fold([_finished(1), _finished(3)], earlier, 2)
    stored = merge_patched(stored, {"trials": [trials.trial_status(t) for t in left], "earlierTrials": earlier.wire()})
    record, again = trial_record.recorded(stored)
    assert again.open == () and again.succeeded == 3
    # trial 1's Job, still there, is not listed again: it is counted once.
    merged = trial_record.merge([_finished(1), _finished(3)], record, again)
    assert [m.trial.number for m in merged] == [3]
