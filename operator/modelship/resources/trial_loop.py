"""One tick of an Experiment's trial loop, planned: what was observed in, what to do out.

``controllers.experiment`` observes (the trial Jobs, what the tracking server and the pods
say about each trial's run), calls :func:`plan_tick`, and applies the :class:`TickPlan` it
gets: stop these trials, close these runs, start these trials (find or create each run,
then create the Job built here), register this ModelVersion, post these Events, write this
status. Every decision is taken here, once per tick, from the observation alone, so a
restarted operator that observes the same Jobs plans the same thing: a trial number is
taken by its Job, and the plan's names are deterministic.

Pure: no I/O, the clock is in the observation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelship.api import ExperimentSpec
from modelship.api.experiment import SecretKeyRef
from modelship.resources import experiment as build
from modelship.resources import search, trial_record, trials
from modelship.resources.experiment import Owner, Scalar
from modelship.resources.trial_record import NO_EARLIER

STOPPED_MAX_FAILED = "maxFailedTrials reached"
STOPPED_MEDIAN = "median rule"


@dataclass(frozen=True)
class ObservedTrial:
    """A trial as its Job records it, with what the tracking server and its pods said."""

    trial: search.Trial
    """From the Job alone (``trials.trial_of_job``): number, name, parameters, phase, run id."""
    objective: float | None = None
    """A succeeded trial's objective (its run's latest value); a stopped one's last point."""
    history: tuple[tuple[int, float], ...] = ()
    """The objective's (step, value) points, read for early stopping."""
    pod_message: str | None = None
    """What a finished trial's pods said: why they failed (``trials.pod_failure``), what its
    tracking sidecar could not deliver (``trials.sidecar_note``); for a running trial, why
    its pod does not start (``trials.pod_cannot_start``)."""
    run_status: str | None = None
    """A failed or stopped trial's run status on the server when it was asked this tick
    (``RUNNING`` means nobody closed it), None when not asked (already closed) or gone."""


@dataclass(frozen=True)
class Observed:
    """Everything one tick knows, read before anything is decided."""

    owner: Owner
    generation: int | None
    old_status: Mapping[str, Any]
    trials: Sequence[ObservedTrial]
    experiment_id: str
    tracking_url: str
    """The tracking server's base URL (handed to trial pods, and the status's link)."""
    default_image: str
    """The trainer image when ``spec.project.image`` is unset."""
    token: SecretKeyRef | None
    """The Secret key trial sidecars take the tracking token from (``experiment.token_secret``)."""
    observed_at: datetime
    """When the observation was made (the status's condition times)."""
    earlier: trial_record.Earlier = NO_EARLIER
    """The finished trials ``status.earlierTrials`` counts (none of them is in ``trials``)."""


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event on the Experiment."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Stop:
    """End a running trial's Job (``children.stop_job``), annotated with why."""

    number: int
    job_name: str
    run_id: str | None
    reason: str

    @property
    def annotations(self) -> dict[str, str]:
        return {build.ANNOTATION_STOPPED: "true", build.ANNOTATION_STOPPED_REASON: f"stopped: {self.reason}"}

    @property
    def event(self) -> Event:
        return Event("Normal", "TrialStopped", f"trial {self.number} ({self.job_name}): {self.reason}")


@dataclass(frozen=True)
class Launch:
    """Start trial ``number``: its run (found by ``trial_key`` or created), then its Job."""

    number: int
    parameters: Mapping[str, Scalar]
    sampler_attrs: Mapping[str, Any]
    owner: Owner
    spec: ExperimentSpec
    experiment_id: str
    tracking_url: str
    default_image: str
    token: SecretKeyRef | None = None

    @property
    def job_name(self) -> str:
        return build.trial_job_name(self.owner.name, self.number)

    @property
    def trial_key(self) -> str:
        return build.trial_key(self.owner.uid, self.number)

    @property
    def run_tags(self) -> dict[str, str]:
        return {
            build.TAG_TRIAL_KEY: self.trial_key,
            build.TAG_EXPERIMENT: build.tracking_experiment_name(self.owner.namespace, self.owner.name),
            "modelship.io/trial": str(self.number),
        }

    def job(self, run_id: str) -> dict[str, Any]:
        """The trial's Job, once its run is known."""
        return build.build_trial_job(
            self.owner,
            self.spec,
            number=self.number,
            parameters=self.parameters,
            run_id=run_id,
            experiment_id=self.experiment_id,
            tracking_url=self.tracking_url,
            default_image=self.default_image,
            sampler_attrs=self.sampler_attrs or None,
            token=self.token,
        )


@dataclass(frozen=True)
class TickPlan:
    """What one tick does, in the order the applier does it."""

    spec: ExperimentSpec
    observed: Observed
    stops: tuple[Stop, ...]
    close_runs: tuple[tuple[str, str], ...]
    """(run id, terminal status) of runs left RUNNING by a trial that failed or was stopped."""
    settled_runs: frozenset[str]
    """Runs of failed or stopped trials that need no more looking at once ``close_runs`` ran."""
    launches: tuple[Launch, ...]
    model_version: dict[str, Any] | None
    """The ModelVersion to create (idempotent: a deterministic name; it may exist)."""
    finished: Event | None
    """The Event of the search's end, posted once: when the phase becomes terminal."""
    progress: trials.Progress
    registration: trials.RegistrationDecision | None
    trials: tuple[search.Trial, ...]
    """Every trial after this tick, the new ones Running and without a run id yet."""

    def status(
        self, run_ids: Mapping[int, str] | None = None, ran: Mapping[int, search.Trial] | None = None
    ) -> dict[str, Any]:
        """The status fields the trial loop owns, with the new trials' run ids (by number)
        as the applier found or created them, and the new trials whose run had ended
        already (``trial_record.trial_of_run``: no Job was created for them) as it found them."""
        run_ids, ran = run_ids or {}, ran or {}
        known = [
            ran[t.number]
            if t.number in ran
            else dataclasses.replace(t, run_id=run_ids[t.number])
            if t.run_id is None and t.number in run_ids
            else t
            for t in self.trials
        ]
        observed = self.observed
        model_version = observed.old_status.get("modelVersion")
        if self.model_version is not None:
            model_version = self.model_version["metadata"]["name"]
        return trials.build_status(
            self.spec,
            known,
            self.progress,
            old_status=observed.old_status,
            generation=observed.generation,
            now=observed.observed_at,
            experiment_id=observed.experiment_id,
            tracking_url=f"{observed.tracking_url.rstrip('/')}/#/experiments/{observed.experiment_id}",
            registration=self.registration,
            model_version=model_version,
            earlier=observed.earlier,
        )


def early_stopping(spec: ExperimentSpec) -> bool:
    """Whether running trials' objective histories are needed (the median rule)."""
    return (
        spec.search is not None
        and spec.search.early_stopping is not None
        and spec.search.early_stopping.algorithm == "median"
    )


def known_trial(spec: ExperimentSpec, seen: ObservedTrial) -> search.Trial:
    """The trial with what the tracking server and its pods said (``trials.with_result``)."""
    trial, metric = seen.trial, trials.objective_name(spec)
    if trial.run_id is None:
        return trials.with_result(trial, objective=None, metric=metric or "", message="the Job has no run id")
    if trial.phase == search.SUCCEEDED and not metric:  # one trial, no objective: success is the Job's
        return dataclasses.replace(trial, message=seen.pod_message) if seen.pod_message else trial
    if trial.phase == search.RUNNING:
        latest = seen.history[-1][1] if seen.history else None
        return trials.with_result(
            trial, objective=latest, metric=metric or "", history=seen.history, message=seen.pod_message
        )
    return trials.with_result(
        trial, objective=seen.objective, metric=metric or "", history=seen.history, message=seen.pod_message or None
    )


def plan_tick(spec: ExperimentSpec, observed: Observed) -> TickPlan:
    """Decide one tick: stops (with their reasons), runs to close, new trials and their
    parameters, registration of the best run, Events, and the status."""
    owner = observed.owner
    known = [known_trial(spec, seen) for seen in observed.trials]

    # Failed and stopped trials' runs: close those nobody closed (the trainer could not).
    close_runs: list[tuple[str, str]] = []
    settled: set[str] = set()
    for seen, trial in zip(observed.trials, known, strict=True):
        run_id = seen.trial.run_id
        if run_id is None or seen.trial.phase not in (search.FAILED, search.STOPPED):
            continue
        settled.add(run_id)
        if seen.run_status == "RUNNING":
            close_runs.append((run_id, "FAILED" if seen.trial.phase == search.FAILED else "KILLED"))

    # Stop first, so that the stopped trials' slots count as free for the launches below.
    search_failed = sum(t.phase == search.FAILED for t in known) >= trials.max_failed(spec)
    reason = STOPPED_MAX_FAILED if search_failed else STOPPED_MEDIAN
    stops = tuple(
        Stop(t.number, t.name, t.run_id, reason)
        for t in known
        if t.phase in search.ACTIVE and (search_failed or search.should_stop(spec, known, t))
    )
    stopped = {s.number for s in stops}
    known = [
        dataclasses.replace(t, phase=search.STOPPED, message=f"stopped: {reason}") if t.number in stopped else t
        for t in known
    ]
    for s in stops:
        if s.run_id:
            close_runs.append((s.run_id, "KILLED"))
            settled.add(s.run_id)

    # The one progress of this tick: new trials do not change it (they fill the free slots
    # it counted, and a search with trials to start is not finished).
    earlier = observed.earlier
    progress = trials.decide_progress(spec, known, earlier)
    launches: list[Launch] = []
    if progress.to_launch:
        first = max((t.number for t in known), default=earlier.below - 1) + 1
        numbers = list(range(first, first + progress.to_launch))
        suggestions = search.suggest(spec, known, numbers, experiment_uid=owner.uid, taken_grid_ids=earlier.grid_ids)
        for suggestion in suggestions:
            launch = Launch(
                number=suggestion.number,
                parameters=suggestion.parameters,
                sampler_attrs=suggestion.sampler_attrs,
                owner=owner,
                spec=spec,
                experiment_id=observed.experiment_id,
                tracking_url=observed.tracking_url,
                default_image=observed.default_image,
                token=observed.token,
            )
            launches.append(launch)
            known.append(
                search.Trial(
                    suggestion.number,
                    launch.job_name,
                    suggestion.parameters,
                    search.RUNNING,
                    None,
                    sampler_attrs=suggestion.sampler_attrs,
                )
            )

    best = trials.best_trial(spec, trial_record.candidates(known, earlier))
    registration = trials.decide_registration(spec, progress, best)
    model_version = None
    if registration is not None and registration.register and spec.registration is not None and best is not None:
        model_version = build.build_model_version(
            owner,
            model=spec.registration.model_name,
            run_id=str(best.run_id),
            artifact_path=spec.registration.artifact_path,
            objective=trials.objective_name(spec) or "objective",
            value=float(best.objective or 0.0),
            stage=spec.registration.stage,
            aliases=spec.registration.aliases,
            gates=[g.wire() for g in spec.registration.gates or ()],
        )

    finished = None
    if progress.finished and observed.old_status.get("phase") != progress.phase:
        kind = "Normal" if progress.phase == "Succeeded" else "Warning"
        finished = Event(kind, progress.reason, progress.message[:1024])
    return TickPlan(
        spec=spec,
        observed=observed,
        stops=stops,
        close_runs=tuple(close_runs),
        settled_runs=frozenset(settled),
        launches=tuple(launches),
        model_version=model_version,
        finished=finished,
        progress=progress,
        registration=registration,
        trials=tuple(known),
    )
