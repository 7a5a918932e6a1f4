"""Hyperparameter search with optuna's samplers and pruner, rebuilt from what the Jobs say.

The operator keeps no study between reconciles: each one builds an in-memory optuna study
from the trials recorded on the Jobs and in status (their parameters, phase, objective,
sampler attrs, and the objective history the tracking server keeps) and asks it for the
next parameters. So that record is the only state, an
operator restarted at any moment plans from the same history, and the seeds derive from
the Experiment's uid and the trial number, so a re-asked trial gets the same values.

Pure: optuna's in-memory storage, no I/O.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelship.api import ExperimentSpec
from modelship.api.experiment import ParameterSpace, SearchSpec

if TYPE_CHECKING:  # optuna costs ~28 MB of RSS: imported where a search runs, not at the operator's start
    import optuna
    from optuna.distributions import BaseDistribution

Scalar = str | int | float | bool


# Phases of a trial as the status shows them; optuna's states for each.
PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED = "Pending", "Running", "Succeeded", "Failed", "Stopped"
ACTIVE = (PENDING, RUNNING)
_STATES = {PENDING: "RUNNING", RUNNING: "RUNNING", SUCCEEDED: "COMPLETE", FAILED: "FAIL", STOPPED: "PRUNED"}
"""optuna's ``TrialState`` member of each phase, by name (optuna is imported only when used)."""


@dataclass(frozen=True)
class Trial:
    """What is known about one trial: from its Job, its pod and the tracking server."""

    number: int
    name: str
    parameters: Mapping[str, Scalar]
    phase: str = RUNNING
    run_id: str | None = None
    objective: float | None = None
    history: tuple[tuple[int, float], ...] = ()
    """The objective metric's (step, value) points, for early stopping."""
    message: str | None = None
    sampler_attrs: Mapping[str, Any] = field(default_factory=dict)


def space_problems(spec: ExperimentSpec) -> list[str]:
    """What is wrong with the search space beyond the CRD schema (empty when fine)."""
    search = spec.search
    if search is None:
        return []
    problems = []
    for name, space in sorted(search.space.items()):
        where = f"spec.search.space[{name!r}]"
        if space.type == "int":
            for bound in ("low", "high", "step"):
                value = getattr(space, bound)
                if value is not None and value != math.floor(value):
                    problems.append(f"{where}.{bound}: an int range needs whole numbers (got {value})")
        if space.type != "categorical" and space.log and space.step is not None:
            problems.append(f"{where}: log and step cannot be combined")
        if space.step is not None and space.step <= 0:
            problems.append(f"{where}.step: must be positive (got {space.step})")
        if search.algorithm == "grid" and space.type == "float" and space.step is None:
            problems.append(f"{where}.step: the grid algorithm needs a step for a float range")
        if space.type == "categorical" and space.values and len(set(space.values)) != len(space.values):
            problems.append(f"{where}.values: values repeat")
    fixed = sorted(set(spec.parameters or {}) & set(search.space))
    if fixed:
        problems.append(
            f"spec.parameters and spec.search.space both name {', '.join(fixed)}: "
            "a parameter is either fixed or searched"
        )
    return problems


def distribution(space: ParameterSpace) -> BaseDistribution:
    """The optuna distribution of one parameter's range."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if space.type == "categorical":
        return CategoricalDistribution(list(space.values or ()))
    assert space.low is not None and space.high is not None
    log = bool(space.log)
    if space.type == "int":
        return IntDistribution(int(space.low), int(space.high), log=log, step=1 if log else int(space.step or 1))
    return FloatDistribution(space.low, space.high, log=log, step=None if log else space.step)


def distributions(search: SearchSpec) -> dict[str, BaseDistribution]:
    return {name: distribution(space) for name, space in sorted(search.space.items())}


def grid_values(space: ParameterSpace) -> list[Scalar]:
    """Every value of one parameter on the grid: categorical values, or low..high by step."""
    if space.type == "categorical":
        return list(space.values or ())
    assert space.low is not None and space.high is not None
    step = space.step or 1
    count = math.floor((space.high - space.low) / step + 1e-9) + 1
    if space.type == "int":
        return [int(space.low) + i * int(step) for i in range(count)]
    # Rounded so that 0.1 + 2 * 0.1 is 0.3, not 0.30000000000000004.
    return [round(space.low + i * step, 12) for i in range(count)]


def grid_size(search: SearchSpec) -> int:
    return math.prod(len(grid_values(s)) for s in search.space.values())


def planned_trials(spec: ExperimentSpec) -> int:
    """Trials the Experiment will run: 1 without a search; maxTrials, or fewer for a small grid."""
    if spec.search is None:
        return 1
    if spec.search.algorithm == "grid":
        return min(spec.search.max_trials, grid_size(spec.search))
    return spec.search.max_trials


def seed_for(experiment_uid: str, number: int) -> int:
    """A sampler seed that depends only on the Experiment and the trial number."""
    return int.from_bytes(hashlib.sha256(f"{experiment_uid}/{number}".encode()).digest()[:4], "big")


def _sampler(search: SearchSpec, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    if search.algorithm == "grid":
        grid = {name: grid_values(space) for name, space in sorted(search.space.items())}
        return optuna.samplers.GridSampler(grid, seed=seed)
    if search.algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # TPE's default of 10 random start-up trials would make a small search all random;
    # a third of the budget (2 to 10) leaves TPE some trials to steer. The constant liar
    # keeps parallel trials from being asked for the same point.
    startup = min(10, max(2, search.max_trials // 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def build_study(
    search: SearchSpec,
    trials: Sequence[Trial],
    *,
    seed: int,
    sampler: bool = True,
    taken_grid_ids: Sequence[int] = (),
) -> optuna.Study:
    """An in-memory study holding ``trials`` as optuna trials; ``taken_grid_ids`` are grid
    points of trials no longer listed (``status.earlierTrials``), added as finished trials
    so that the grid sampler never offers them again."""
    import optuna
    from optuna.trial import TrialState

    direction = search.objective.goal
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(direction=direction, sampler=_sampler(search, seed) if sampler else None)
    dists = distributions(search)
    if taken_grid_ids and search.algorithm == "grid":
        space = {name: grid_values(s) for name, s in sorted(search.space.items())}
        for grid_id in taken_grid_ids:
            attrs = {"grid_id": grid_id, "search_space": space}
            study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, system_attrs=attrs))
    for trial in sorted(trials, key=lambda t: t.number):
        study.add_trial(_frozen(trial, dists))
    return study


def _frozen(trial: Trial, dists: Mapping[str, BaseDistribution]) -> optuna.trial.FrozenTrial:
    import optuna
    from optuna.trial import TrialState

    state = TrialState[_STATES[trial.phase]]
    if state == TrialState.COMPLETE and trial.objective is None:
        state = TrialState.FAIL
    params: dict[str, Any] = {}
    used: dict[str, BaseDistribution] = {}
    for name, dist in dists.items():
        if name in trial.parameters and _fits(dist, trial.parameters[name]):
            params[name] = trial.parameters[name]
            used[name] = dist
    return optuna.trial.create_trial(
        state=state,
        value=trial.objective if state == TrialState.COMPLETE else None,
        params=params,
        distributions=used,
        intermediate_values={step: value for step, value in trial.history},
        system_attrs=dict(trial.sampler_attrs),
    )


def _fits(dist: BaseDistribution, value: Any) -> bool:
    """Whether a recorded value belongs to the distribution (the spec may have changed)."""
    from optuna.distributions import FloatDistribution, IntDistribution

    try:
        internal = dist.to_internal_repr(value)
    except (ValueError, TypeError):
        return False
    if isinstance(dist, (FloatDistribution, IntDistribution)):
        return bool(dist.low <= float(internal) <= dist.high)
    return True


@dataclass(frozen=True)
class Suggestion:
    """The parameters of a new trial, with what the sampler must see again next time."""

    number: int
    parameters: dict[str, Scalar]
    sampler_attrs: dict[str, Any]


def suggest(
    spec: ExperimentSpec,
    trials: Sequence[Trial],
    numbers: Sequence[int],
    *,
    experiment_uid: str,
    taken_grid_ids: Sequence[int] = (),
) -> list[Suggestion]:
    """Parameters for the new trials ``numbers``: the fixed ones plus what the sampler asks.

    Without a search, every trial gets the fixed parameters. The seed depends on the
    first new number only, so the same history always gives the same suggestions.
    """
    fixed: dict[str, Scalar] = dict(spec.parameters or {})
    if spec.search is None or not numbers:
        return [Suggestion(n, dict(fixed), {}) for n in numbers]
    # The grid's order is shuffled by the seed and trials record grid ids, so a grid keeps
    # one seed for the whole Experiment; the other samplers get a fresh seed per round.
    seed = seed_for(experiment_uid, -1 if spec.search.algorithm == "grid" else numbers[0])
    study = build_study(spec.search, trials, seed=seed, taken_grid_ids=taken_grid_ids)
    dists = distributions(spec.search)
    out = []
    for number in numbers:
        asked = study.ask(dists)
        params = {**fixed, **{k: _plain(v) for k, v in asked.params.items()}}
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == asked.number)
        attrs = {k: v for k, v in frozen.system_attrs.items() if k in ("grid_id", "search_space")}
        out.append(Suggestion(number, params, attrs))
    return out


def _plain(value: Any) -> Scalar:
    """A sampled value as JSON and the status can hold it (numpy scalars become Python's)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def should_stop(spec: ExperimentSpec, trials: Sequence[Trial], candidate: Trial) -> bool:
    """The median rule: stop ``candidate`` when its latest objective value is worse than
    the median of the completed trials' values at the same step (optuna's MedianPruner).

    Needs ``minTrialsRequired`` succeeded trials and a step past ``startStep``.
    """
    search = spec.search
    if search is None or search.early_stopping is None or search.early_stopping.algorithm != "median":
        return False
    if candidate.phase not in ACTIVE or not candidate.history:
        return False
    import optuna

    rule = search.early_stopping
    others = [t for t in trials if t.number != candidate.number]
    study = build_study(search, others, seed=0, sampler=False)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=rule.min_trials_required, n_warmup_steps=rule.start_step)
    frozen = _frozen(candidate, distributions(search))
    return bool(pruner.prune(study, frozen))
