"""resources.search: spec checks, distributions, planning with each sampler, the median rule."""

from __future__ import annotations

import json
from typing import Any

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from tests.unit.experiments.helpers import spec

from modelship.api.experiment import ParameterSpace
from modelship.resources.search import (
    FAILED,
    RUNNING,
    STOPPED,
    SUCCEEDED,
    Trial,
    distribution,
    grid_values,
    planned_trials,
    should_stop,
    space_problems,
    suggest,
)

GRID_SPACE = {
    "C": {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1},
    "solver": {"type": "categorical", "values": ["lbfgs", "saga"]},
}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({}, None),
        ({"search_space": {"n": {"type": "int", "low": 1.5, "high": 4}}}, "an int range needs whole numbers"),
        ({"search_algorithm": "grid"}, "the grid algorithm needs a step"),
        ({"search_space": {"C": {"type": "float", "low": 0.1, "high": 1, "step": -0.1}}}, "must be positive"),
        ({"search_space": {"s": {"type": "categorical", "values": ["a", "a"]}}}, "values repeat"),
        ({"parameters": {"C": 1.0}}, "both name C"),
        ({"search": None}, None),
    ],
)
def test_space_problems(changes: dict[str, Any], problem: str | None) -> None:
    found = space_problems(spec(**changes))
    if problem is None:
        assert found == []
    else:
        assert any(problem in p for p in found), found


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ({"type": "float", "low": 0.01, "high": 10, "log": True}, FloatDistribution(0.01, 10, log=True)),
        ({"type": "float", "low": 0, "high": 1, "step": 0.25}, FloatDistribution(0, 1, step=0.25)),
        ({"type": "int", "low": 1, "high": 9}, IntDistribution(1, 9)),
        ({"type": "int", "low": 2, "high": 10, "step": 2}, IntDistribution(2, 10, step=2)),
        ({"type": "categorical", "values": ["a", "b"]}, CategoricalDistribution(["a", "b"])),
    ],
)
def test_distribution(space: dict[str, Any], expected: Any) -> None:
    assert distribution(ParameterSpace.model_validate(space)) == expected


@pytest.mark.parametrize(
    ("space", "values"),
    [
        ({"type": "float", "low": 0.1, "high": 0.3, "step": 0.1}, [0.1, 0.2, 0.3]),
        ({"type": "float", "low": 0, "high": 1, "step": 0.4}, [0.0, 0.4, 0.8]),
        ({"type": "int", "low": 1, "high": 3}, [1, 2, 3]),
        ({"type": "categorical", "values": ["x"]}, ["x"]),
    ],
)
def test_grid_values(space: dict[str, Any], values: list[Any]) -> None:
    assert grid_values(ParameterSpace.model_validate(space)) == values


@pytest.mark.parametrize(
    ("changes", "planned"),
    [
        ({}, 6),
        ({"search": None}, 1),
        ({"search_algorithm": "grid", "search_space": GRID_SPACE}, 6),
        ({"search_algorithm": "grid", "search_space": GRID_SPACE, "search_maxTrials": 4, "search_parallelism": 1}, 4),
        ({"search_algorithm": "grid", "search_space": GRID_SPACE, "search_maxTrials": 100}, 6),
    ],
)
def test_planned_trials(changes: dict[str, Any], planned: int) -> None:
    assert planned_trials(spec(**changes)) == planned


def _run_search(changes: dict[str, Any], rounds: int, per_round: int, uid: str = "uid-1") -> list[Trial]:
    """Ask ``per_round`` trials at a time, as the operator does, through a JSON round trip."""
    s = spec(**changes)
    trials: list[Trial] = []
    for r in range(rounds):
        numbers = list(range(r * per_round, (r + 1) * per_round))
        for sug in suggest(s, trials, numbers, experiment_uid=uid):
            params = json.loads(json.dumps(sug.parameters))
            attrs = json.loads(json.dumps(sug.sampler_attrs))
            trials.append(
                Trial(sug.number, f"t{sug.number}", params, SUCCEEDED, objective=float(sug.number), sampler_attrs=attrs)
            )
    return trials


@pytest.mark.parametrize("algorithm", ["random", "tpe"])
def test_random_and_tpe_stay_in_the_space_and_keep_fixed_parameters(algorithm: str) -> None:
    trials = _run_search({"search_algorithm": algorithm}, rounds=5, per_round=2)
    for t in trials:
        assert t.parameters["max_iter"] == 200
        assert 0.01 <= t.parameters["C"] <= 10
        assert t.parameters["solver"] in ("lbfgs", "newton-cg", "saga")
    assert len({t.parameters["C"] for t in trials}) == len(trials)  # no repeats of a float


@pytest.mark.parametrize("algorithm", ["grid", "random", "tpe"])
def test_the_same_history_gives_the_same_suggestions(algorithm: str) -> None:
    changes = {"search_algorithm": algorithm, "search_space": GRID_SPACE}
    assert _run_search(changes, 3, 2) == _run_search(changes, 3, 2)
    assert _run_search(changes, 3, 2) != _run_search(changes, 3, 2, uid="other") or algorithm == "grid"


def test_grid_visits_every_point_once_then_is_exhausted() -> None:
    trials = _run_search({"search_algorithm": "grid", "search_space": GRID_SPACE, "search_maxTrials": 6}, 3, 2)
    points = sorted((t.parameters["C"], t.parameters["solver"]) for t in trials)
    assert points == [(c, s) for c in (0.1, 0.2, 0.3) for s in ("lbfgs", "saga")]


def test_grid_counts_running_and_failed_trials_as_taken() -> None:
    s = spec(search_algorithm="grid", search_space=GRID_SPACE)
    first = suggest(s, [], [0, 1, 2], experiment_uid="u")
    history = [
        Trial(x.number, "t", x.parameters, phase, sampler_attrs=json.loads(json.dumps(x.sampler_attrs)))
        for x, phase in zip(first, (RUNNING, FAILED, STOPPED))
    ]
    rest = suggest(s, history, [3, 4, 5], experiment_uid="u")
    taken = {(t.parameters["C"], t.parameters["solver"]) for t in history}
    fresh = {(x.parameters["C"], x.parameters["solver"]) for x in rest}
    assert len(fresh) == 3 and not taken & fresh


def test_without_search_every_trial_gets_the_fixed_parameters() -> None:
    (only,) = suggest(spec(search=None), [], [0], experiment_uid="u")
    assert only.parameters == {"max_iter": 200} and only.sampler_attrs == {}


MEDIAN = {"algorithm": "median", "minTrialsRequired": 2, "startStep": 2}
GOOD = ((1, 0.8), (2, 0.9), (3, 0.95))


@pytest.mark.parametrize(
    ("early", "goal", "done", "history", "stop"),
    [
        pytest.param(MEDIAN, "maximize", 2, ((1, 0.5), (2, 0.6)), True, id="worse-than-median"),
        pytest.param(MEDIAN, "maximize", 2, ((1, 0.85), (2, 0.95)), False, id="better-than-median"),
        pytest.param(MEDIAN, "maximize", 1, ((1, 0.5), (2, 0.6)), False, id="too-few-completed"),
        pytest.param(MEDIAN, "maximize", 2, ((1, 0.5),), False, id="still-warming-up"),
        pytest.param(MEDIAN, "minimize", 2, ((1, 0.5), (2, 0.6)), False, id="minimize-lower-is-better"),
        pytest.param(None, "maximize", 5, ((1, 0.1), (2, 0.1)), False, id="no-early-stopping"),
        pytest.param({**MEDIAN, "algorithm": "none"}, "maximize", 5, ((1, 0.1), (2, 0.1)), False, id="algorithm-none"),
        pytest.param(MEDIAN, "maximize", 2, (), False, id="nothing-logged-yet"),
    ],
)
def test_should_stop(
    early: dict[str, Any] | None, goal: str, done: int, history: tuple[tuple[int, float], ...], stop: bool
) -> None:
    s = spec(search_earlyStopping=early, search_objective={"metric": "accuracy", "goal": goal})
    completed = [Trial(i, f"t{i}", {"C": 1.0}, SUCCEEDED, objective=0.95, history=GOOD) for i in range(done)]
    candidate = Trial(9, "t9", {"C": 1.0}, RUNNING, history=history)
    assert should_stop(s, completed, candidate) is stop


def test_a_finished_trial_is_never_stopped() -> None:
    s = spec(search_earlyStopping=MEDIAN)
    completed = [Trial(i, f"t{i}", {"C": 1.0}, SUCCEEDED, objective=0.95, history=GOOD) for i in range(3)]
    done = Trial(9, "t9", {"C": 1.0}, SUCCEEDED, objective=0.1, history=((1, 0.1), (2, 0.1)))
    assert not should_stop(s, completed, done)
