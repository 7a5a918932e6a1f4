"""The trial record in status: what the search is planned from once a trial's Job is gone.

Kubernetes' TTL controller deletes a finished trial Job ``spec.trialJobTTLSeconds`` after
it finished (its pods with it), and anyone may delete a Job by hand. So the Jobs cannot be
the search's only record: ``status.trials`` is. Each entry holds what the planner needs of
a trial — number, name, run id, parameters, objective, phase, message and the sampler's
system attrs (the grid id) — and ``status.earlierTrials`` folds what falls out of the
latest :data:`trials.MAX_TRIALS_IN_STATUS` into counts and grid ids (:func:`fold`).

Every tick merges the Jobs it lists with that record (:func:`merge`), by trial number:

- a Job that exists is read as before (its phase, annotations; its pods and run);
- a *finished* trial in the record whose Job is gone is the record (``RECORDED``): never
  started again, counted once, in its phase, and still a candidate for the best trial;
- an *active* trial in the record whose Job is gone (``VANISHED``: the TTL controller was
  quicker than the next tick, the operator was down while it ran out, or someone deleted
  the Job) ends as its run ended on the tracking server (:func:`vanished`), which
  ``modelship run`` closes before the Job completes: FINISHED is a success (the objective
  is read as for any trial), anything else a failure, and a run still open is closed;
- a trial below ``earlierTrials.below`` is counted there, whatever Job still exists, but
  for those of ``earlierTrials.open``: trials still active when the fold passed them, listed
  until they finish (a hung old trial must not keep the list growing past the limit).

A trial whose Job ran out before any status named it (the operator died between creating
the Job and writing the status, and stayed away longer than the TTL) has only its run
left: the launch of that number finds the run by its trial key, sees it ended, and records
the trial from it instead of running it again (:func:`trial_of_run`).

Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelship.resources.experiment import format_value
from modelship.resources.search import ACTIVE, FAILED, PENDING, RUNNING, STOPPED, SUCCEEDED, Scalar, Trial

FINISHED = (SUCCEEDED, FAILED, STOPPED)
JOB, RECORDED, VANISHED = "job", "recorded", "vanished"
_PHASES = (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)
RUN_OPEN = ("RUNNING", "SCHEDULED")
"""Run statuses of a run nobody ended."""


@dataclass(frozen=True)
class Earlier:
    """Finished trials folded out of ``status.trials`` (``status.earlierTrials``)."""

    below: int = 0
    """Every trial numbered below this is finished and counted here, but those of ``open``."""
    succeeded: int = 0
    failed: int = 0
    stopped: int = 0
    grid_ids: tuple[int, ...] = ()
    best: Trial | None = None
    """``status.bestTrial`` when it is one of these (it stays a candidate)."""
    open: tuple[int, ...] = ()
    """Trials numbered below ``below`` that were active when the fold passed them: they stay
    listed in ``status.trials`` and are counted here once they finish."""

    @property
    def count(self) -> int:
        return self.succeeded + self.failed + self.stopped

    def counts(self, number: int) -> bool:
        """Whether trial ``number`` is folded here (and so is not listed)."""
        return number < self.below and number not in self.open

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "below": self.below,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "stopped": self.stopped,
        }
        if self.grid_ids:
            out["gridIds"] = sorted(self.grid_ids)
        # Always written, empty too: status goes out as a merge patch, where a key left out
        # would keep the last list and count a finished trial twice.
        out["open"] = sorted(self.open)
        return out


NO_EARLIER = Earlier()


@dataclass(frozen=True)
class Merged:
    """One trial of this tick and where it was read from (JOB, RECORDED or VANISHED)."""

    trial: Trial
    source: str


def trial_of_entry(entry: Mapping[str, Any]) -> Trial | None:
    """The trial a ``status.trials`` entry records, or None for one that is not a trial."""
    try:
        number, name = int(entry["number"]), str(entry["name"])
    except (KeyError, TypeError, ValueError):
        return None
    phase = entry.get("phase") if entry.get("phase") in _PHASES else PENDING
    parameters = entry.get("parameters")
    try:
        attrs = json.loads(entry.get("samplerAttrs") or "{}")
    except ValueError:
        attrs = {}
    objective = entry.get("objective")
    return Trial(
        number=number,
        name=name,
        parameters=dict(parameters) if isinstance(parameters, Mapping) else {},
        phase=str(phase),
        run_id=entry.get("runId") or None,
        objective=float(objective) if isinstance(objective, (int, float)) else None,
        message=entry.get("message") or None,
        sampler_attrs=attrs if isinstance(attrs, dict) else {},
    )


def recorded(status: Mapping[str, Any]) -> tuple[list[Trial], Earlier]:
    """The trials ``status`` records, and what it folded into ``earlierTrials``."""
    found = [t for t in map(trial_of_entry, status.get("trials") or ()) if t is not None]
    raw = status.get("earlierTrials") or {}
    earlier = Earlier()
    if isinstance(raw, Mapping) and int(raw.get("below") or 0) > 0:
        best = trial_of_entry(status.get("bestTrial") or {})
        earlier = Earlier(
            below=int(raw["below"]),
            succeeded=int(raw.get("succeeded") or 0),
            failed=int(raw.get("failed") or 0),
            stopped=int(raw.get("stopped") or 0),
            grid_ids=tuple(int(i) for i in raw.get("gridIds") or ()),
            open=tuple(int(i) for i in raw.get("open") or ()),
        )
        if best is not None and earlier.counts(best.number):
            earlier = dataclasses.replace(earlier, best=best)
    return found, earlier


def merge(from_jobs: Sequence[Trial], record: Sequence[Trial], earlier: Earlier) -> list[Merged]:
    """This tick's trials by number: the Job's when it exists, else the record's (see the
    module); none that ``earlier`` counts."""
    out: dict[int, Merged] = {}
    for trial in record:
        if not earlier.counts(trial.number):
            out[trial.number] = Merged(trial, RECORDED if trial.phase in FINISHED else VANISHED)
    for trial in from_jobs:
        if not earlier.counts(trial.number):
            out[trial.number] = Merged(trial, JOB)
    return [out[n] for n in sorted(out)]


def vanished(trial: Trial, run_status: str | None) -> Trial:
    """An active trial whose Job is gone, as its run ended: FINISHED → succeeded (the
    objective is read next, as for any trial), else failed and why."""
    if trial.run_id is None:
        why = "its Job was deleted before it started a run"
        return dataclasses.replace(trial, phase=FAILED, message=why)
    if run_status == "FINISHED":
        return dataclasses.replace(trial, phase=SUCCEEDED, message=None)
    if run_status in RUN_OPEN:
        why = f"its Job was deleted before the trial ended (run {trial.run_id} was still {run_status})"
    elif run_status is None:
        why = f"its Job was deleted and its run {trial.run_id} is gone from the tracking server"
    else:
        why = f"its Job was deleted after the trial ended; its run {trial.run_id} ended {run_status}"
    return dataclasses.replace(trial, phase=FAILED, message=why)


def trial_of_run(
    number: int,
    name: str,
    run: Mapping[str, Any],
    *,
    metric: str | None,
    parameters: Mapping[str, Scalar],
    sampler_attrs: Mapping[str, Any],
) -> Trial | None:
    """Trial ``number`` from its run when the run has ended already (its Job ran and is
    gone before any status named it); None while the run is open (then it is the run the
    new Job adopts). The planned ``parameters`` and ``sampler_attrs`` are the trial's when
    the run logged the same values, else the run's own parameters are."""
    info, data = run.get("info") or {}, run.get("data") or {}
    status = str(info.get("status") or "RUNNING")
    if status in RUN_OPEN:
        return None
    logged = {str(p.get("key")): str(p.get("value")) for p in data.get("params") or ()}
    planned = {k: format_value(v) for k, v in parameters.items()}
    same = all(logged.get(k) == v for k, v in planned.items())
    params: dict[str, Scalar] = dict(parameters) if same else dict(logged)
    metrics = {str(m.get("key")): float(m["value"]) for m in data.get("metrics") or () if "value" in m}
    objective = metrics.get(metric) if metric else None
    run_id = str(info.get("run_id") or info.get("runId") or "")
    if status == "FINISHED" and (objective is not None or not metric):
        phase, message = SUCCEEDED, None
    else:
        phase = FAILED
        message = f"its Job was deleted before the operator recorded the trial; its run {run_id} ended {status}"
        if status == "FINISHED":
            message += f" without logging the objective metric {metric!r}"
    return Trial(
        number=number,
        name=name,
        parameters=params,
        phase=phase,
        run_id=run_id or None,
        objective=objective,
        message=message,
        sampler_attrs=dict(sampler_attrs) if same else {},
    )


def fold(ordered: Sequence[Trial], earlier: Earlier, limit: int) -> tuple[list[Trial], Earlier]:
    """Keep at most ``limit`` trials listed: the oldest finished ones, in order, go into the
    counts. An active trial is never folded: the fold passes it and names it in ``open``, so
    that one hung trial cannot make the list grow with every trial after it; it is counted
    once it finished. (Only active trials can make the list longer than ``limit``.)"""
    keep = sorted(ordered, key=lambda t: t.number)
    counts = {SUCCEEDED: earlier.succeeded, FAILED: earlier.failed, STOPPED: earlier.stopped}
    grid_ids, below, best = list(earlier.grid_ids), earlier.below, earlier.best
    still_open = set(earlier.open)

    def count(trial: Trial) -> None:
        keep.remove(trial)
        counts[trial.phase] += 1
        grid_id = trial.sampler_attrs.get("grid_id")
        if isinstance(grid_id, int):
            grid_ids.append(grid_id)

    for trial in [t for t in keep if t.number in still_open and t.phase not in ACTIVE]:
        count(trial)  # below the fold already: counted as soon as it finished
        still_open.discard(trial.number)
    excess = len(keep) - limit
    for trial in [t for t in keep if t.phase not in ACTIVE and t.number >= below][: max(excess, 0)]:
        count(trial)
        below = trial.number + 1
    still_open |= {t.number for t in keep if t.number < below and t.phase in ACTIVE}
    if below == earlier.below and still_open == set(earlier.open):
        return keep, earlier
    return keep, Earlier(
        below=below,
        succeeded=counts[SUCCEEDED],
        failed=counts[FAILED],
        stopped=counts[STOPPED],
        grid_ids=tuple(grid_ids),
        best=best,
        open=tuple(sorted(still_open)),
    )


def candidates(known: Sequence[Trial], earlier: Earlier) -> list[Trial]:
    """The trials the best one is chosen from: those listed and the folded best."""
    return [*known, earlier.best] if earlier.best is not None else list(known)
