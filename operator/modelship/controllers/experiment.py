"""Experiment handlers: accept the spec, then run the trials, the search and registration.

Two handlers. ``reconcile`` (resume, create, update) accepts or refuses the spec. ``tick``
(a kopf timer, every ``INTERVAL`` seconds per Experiment while its search has work) is
the trial loop, in three steps:

1. observe (:func:`observe`): the trial Jobs (by label, owned by this Experiment's uid),
   merged with ``status.trials`` for the trials whose Job is gone (``trial_record``), then,
   per trial, what the tracking server says about its run (objective, its history
   for early stopping, whether a failed run is still open) and why a failed trial's pods
   failed;
2. plan (``resources.trial_loop.plan_tick``, pure): trials to stop and why, runs to close,
   the parameters of the trials to start, the ModelVersion of the best run, Events, status;
3. apply (:func:`apply`), only what the plan says: end the stopped trials' Jobs, close
   runs, per new trial find or create its run (tag ``modelship.io/trial-key``) then create
   its Job (a 409 means it exists) — unless that run has ended already, when the trial ran
   and its Job is gone and it is recorded from the run —, create the ModelVersion; the
   status goes out through kopf's ``patch``.

The Jobs and ``status.trials`` (the record that outlives Jobs deleted by their TTL,
``spec.trialJobTTLSeconds``) are the whole state of the search, so an operator killed at
any point resumes from them: a trial number is taken by its Job or its record, and a run
created before a crash is found again by its tag, never created twice. What the tracking server said that cannot
change any more (a finished run's objective, a failed pod's reason, runs already closed)
is kept in kopf's per-object ``memo`` (:class:`RunCache`): kopf drops it when the
Experiment is deleted, and a restarted operator asks again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import kopf

from modelship import __version__
from modelship.api import GROUP, VERSION, ExperimentSpec, kind_by_name
from modelship.api.experiment import SecretKeyRef
from modelship.controllers import children
from modelship.controllers.common import InvalidSpec, accept_spec, register_reconcile, utcnow
from modelship.controllers.metrics import METRICS
from modelship.controllers.settings import OperatorConfig
from modelship.resources import experiment as build
from modelship.resources import search, trial_loop, trial_record, trials
from modelship.resources.acceptance import INVALID_SPEC
from modelship.resources.conditions import READY, make_condition, set_condition
from modelship.tracking.client import TrackingClient
from modelship.tracking.errors import TrackingError

KIND = kind_by_name("Experiment")
TERMINAL = ("Succeeded", "Failed")
INTERVAL = 2.0
"""Seconds between two looks at a running Experiment (its Jobs and runs)."""


def _accept(body: Mapping[str, Any], patch: kopf.Patch) -> ExperimentSpec:
    """Accept the spec as the schema and the search's own rules see it; raise InvalidSpec."""
    spec = accept_spec(KIND, ExperimentSpec, body, patch)
    problems = search.space_problems(spec)
    if problems:
        generation = (body.get("metadata") or {}).get("generation")
        message = "; ".join(problems) + ". Fix spec.search in the Experiment manifest and apply it again."
        old = (body.get("status") or {}).get("conditions")
        refused = make_condition(READY, "False", INVALID_SPEC, message, now=utcnow(), observed_generation=generation)
        conditions = set_condition(old, refused)
        if conditions != old:
            patch.status["conditions"] = conditions
        raise InvalidSpec(message)
    return spec


@METRICS.measured(KIND.kind)
async def reconcile(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    """Accept or refuse the spec; the timer does the rest."""
    spec = _accept(body, patch)
    logger.debug("%s spec accepted (%d fields set)", KIND.kind, len(spec.model_fields_set))
    status = body.get("status") or {}
    if spec.suspend and not status.get("trials"):
        # A template that never ran: the timer does not tick for it (needs_work), so its
        # status is said here, once per change of the spec.
        progress = trials.decide_progress(spec, [])
        generation = (body.get("metadata") or {}).get("generation")
        complete = make_condition(
            trials.COMPLETE, "False", progress.reason, progress.message, now=utcnow(), observed_generation=generation
        )
        old = patch.status.get("conditions") or status.get("conditions")
        conditions = set_condition(old, complete)
        if conditions != status.get("conditions"):
            patch.status["conditions"] = conditions
        if status.get("phase") != progress.phase:
            patch.status["phase"] = progress.phase


@dataclasses.dataclass
class RunCache:
    """What the tracking server and the pods said that cannot change any more, per run of
    one Experiment. Lives in kopf's per-object memo: one timer per object uses it, at most
    one tick at a time, and kopf forgets it with the object."""

    results: dict[str, tuple[float | None, tuple[tuple[int, float], ...]]] = dataclasses.field(default_factory=dict)
    """A finished or stopped run's objective and history."""
    notes: dict[str, str] = dataclasses.field(default_factory=dict)
    """What a finished trial's pods said: why they failed, what its sidecar did not deliver."""
    settled: set[str] = dataclasses.field(default_factory=set)
    """Runs of failed or stopped trials known to be closed."""
    experiment_id: str | None = None


def run_cache(memo: kopf.Memo) -> RunCache:
    """This Experiment's cache (kopf's memo is per object: a shallow copy of the operator's)."""
    cache = memo.get("runs")
    if not isinstance(cache, RunCache):
        cache = memo["runs"] = RunCache()
    return cache


def needs_work(
    meta: Mapping[str, Any], status: Mapping[str, Any], spec: Mapping[str, Any] | None = None, **_: Any
) -> bool:
    """False once the search ended for the current generation: then kopf stops the timer,
    and starts it again when the spec changes (more trials, say). False too for a suspended
    Experiment with no trial (a template): nothing to look at until ``suspend`` turns false."""
    if (spec or {}).get("suspend") and not status.get("trials"):
        return False
    complete = next((c for c in status.get("conditions") or () if c.get("type") == trials.COMPLETE), None)
    return not (
        status.get("phase") in TERMINAL
        and complete is not None
        and complete.get("status") == "True"
        and complete.get("observedGeneration") == meta.get("generation")
    )


def tick(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, memo: kopf.Memo, **_: Any) -> None:
    """One look at the Experiment: observe, decide, apply, write status (see the module)."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    generation = meta.get("generation")
    if not needs_work(meta, status):
        return
    try:
        spec = _accept(body, patch)
    except InvalidSpec:
        return  # acceptance wrote the condition; nothing runs until the spec changes
    config: OperatorConfig = memo.config
    if not config.tracking_url:
        patch.status["phase"] = "Pending"
        patch.status["conditions"] = set_condition(
            patch.status.get("conditions") or status.get("conditions"),
            make_condition(
                trials.COMPLETE,
                "False",
                "NoTrackingServer",
                "the operator has no --tracking-url; trials cannot run.",
                now=utcnow(),
                observed_generation=generation,
            ),
        )
        return
    cache = run_cache(memo)
    token = config.tracking_token.get_secret_value() if config.tracking_token is not None else None
    with TrackingClient(config.tracking_url, token=token, timeout=10) as tracking:
        try:
            observed = observe(body, spec, config, tracking, cache)
            plan = trial_loop.plan_tick(spec, observed)
            new_status = apply(body, plan, tracking, cache, logger)
        except (TrackingError, httpx.HTTPError) as exc:
            raise kopf.TemporaryError(f"tracking server {config.tracking_url}: {exc}", delay=5) from exc
    # Ready (from _accept) and the trial loop's fields go out in one PATCH.
    accepted = patch.status.get("conditions")
    if accepted is not None:
        new_status["conditions"] = [c for c in accepted if c["type"] == READY] + [
            c for c in new_status["conditions"] if c["type"] != READY
        ]
    if trials.status_changed(status, new_status):
        for key, value in new_status.items():
            patch.status[key] = value


def observe(
    body: kopf.Body, spec: ExperimentSpec, config: OperatorConfig, tracking: TrackingClient, cache: RunCache
) -> trial_loop.Observed:
    """Read everything the plan needs: the Jobs, then per trial its run and pods."""
    meta = body["metadata"]
    owner = build.Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])
    if cache.experiment_id is None:
        name = build.tracking_experiment_name(owner.namespace, owner.name)
        cache.experiment_id = tracking.get_or_create_experiment(name)
    jobs = [
        job
        for job in children.list_jobs(owner.namespace, f"{build.LABEL_EXPERIMENT}={build.label_value(owner.name)}")
        if any(ref.get("uid") == owner.uid for ref in job["metadata"].get("ownerReferences") or ())
    ]
    metric = trials.objective_name(spec)
    early = trial_loop.early_stopping(spec)
    default = None
    if config.tracking_token_secret:
        default = SecretKeyRef(name=config.tracking_token_secret, key=config.tracking_token_secret_key)
    token = build.token_secret(spec, default)
    # The Jobs that exist, and status.trials for those whose Job is gone (deleted by the
    # TTL controller, spec.trialJobTTLSeconds, or by hand): see resources/trial_record.py.
    record, earlier = trial_record.recorded(body.get("status") or {})
    merged = trial_record.merge([t for t in map(trials.trial_of_job, jobs) if t is not None], record, earlier)
    known = [m.trial for m in merged if m.source == trial_record.JOB]
    # One list of the Experiment's pods a tick, and only while trials run: a running trial
    # whose pod cannot start (a missing token Secret, an unpullable image) is said so.
    running_pods: dict[str, list[Mapping[str, Any]]] = {}
    if any(t.phase == search.RUNNING for t in known):
        for pod in children.list_pods(owner.namespace, f"{build.LABEL_EXPERIMENT}={build.label_value(owner.name)}"):
            job_name = (pod["metadata"].get("labels") or {}).get("job-name")
            if job_name:
                running_pods.setdefault(job_name, []).append(pod)
    seen = []
    for m in merged:
        trial = m.trial
        if m.source == trial_record.VANISHED:
            trial = trial_record.vanished(trial, _run_status(tracking, trial.run_id))
        gone = m.source != trial_record.JOB
        seen.append(_observe_trial(trial, metric, early, tracking, owner, cache, token, running_pods, gone=gone))
    return trial_loop.Observed(
        owner=owner,
        generation=meta.get("generation"),
        old_status=body.get("status") or {},
        trials=seen,
        experiment_id=cache.experiment_id,
        tracking_url=str(config.tracking_url),
        default_image=config.trainer_image or f"ghcr.io/modelship/modelship:{__version__}",
        token=token,
        observed_at=utcnow(),
        earlier=earlier,
    )


def _run_status(tracking: TrackingClient, run_id: str | None) -> str | None:
    """A run's status on the tracking server; None when there is no such run."""
    if run_id is None:
        return None
    try:
        return str(tracking.get_run(run_id)["info"].get("status"))
    except TrackingError:
        return None


def _observe_trial(
    trial: search.Trial,
    metric: str | None,
    early: bool,
    tracking: TrackingClient,
    owner: build.Owner,
    cache: RunCache,
    token: SecretKeyRef | None,
    running_pods: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    gone: bool = False,
) -> trial_loop.ObservedTrial:
    """What the tracking server and the pods say about one trial (only what its phase needs).

    ``gone``: the trial's Job (and pods) no longer exist; it is read from its record, whose
    message already holds what its pods said, and the tracking server (its run's objective
    and history, whether the run is still open)."""
    run_id = trial.run_id
    if run_id is None:
        return trial_loop.ObservedTrial(trial)
    if trial.phase == search.SUCCEEDED:
        cached = cache.results.get(run_id)
        if cached is None and gone and trial.objective is not None and not early:
            cached = (trial.objective, ())  # the record's: the run ended, its value cannot change
        if cached is None:
            value = tracking.latest_metrics(run_id).get(metric) if metric else None
            cached = (value, _history(tracking, run_id, metric) if metric and early else ())
            if value is not None or not metric:
                cache.results[run_id] = cached
        if gone:
            return trial_loop.ObservedTrial(trial, objective=cached[0], history=cached[1])
        note = cache.notes.get(run_id)
        if note is None:  # once per trial: did its sidecar deliver everything?
            pods = children.list_pods(owner.namespace, f"job-name={trial.name}")
            note = cache.notes[run_id] = trials.sidecar_note(pods, token) or ""
        return trial_loop.ObservedTrial(trial, objective=cached[0], history=cached[1], pod_message=note or None)
    if trial.phase == search.RUNNING:
        return trial_loop.ObservedTrial(
            trial,
            history=_history(tracking, run_id, metric) if metric and early else (),
            pod_message=trials.pod_cannot_start(running_pods.get(trial.name, ())),
        )
    # Failed or Stopped: what it reached, why it failed, whether its run is still open.
    objective: float | None = None
    history: tuple[tuple[int, float], ...] = ()
    if trial.phase == search.STOPPED and metric:
        cached = cache.results.get(run_id)
        if cached is None:
            points = _history(tracking, run_id, metric)
            cached = cache.results[run_id] = (points[-1][1] if points else None, points)
        objective, history = cached
    message = None
    if trial.phase == search.FAILED and not gone:
        message = cache.notes.get(run_id)
        if message is None:
            pods = children.list_pods(owner.namespace, f"job-name={trial.name}")
            # The sidecar first: a refused token is why the trainer failed, when it is.
            said = (trials.sidecar_note(pods, token), trials.pod_failure(pods))
            message = cache.notes[run_id] = "; ".join(m for m in said if m)
    run_status = None
    if run_id not in cache.settled:
        try:
            run_status = str(tracking.get_run(run_id)["info"].get("status"))
        except TrackingError:
            pass  # the run was deleted: nothing to close
    return trial_loop.ObservedTrial(trial, objective, history, message or None, run_status)


def _history(tracking: TrackingClient, run_id: str, metric: str | None) -> tuple[tuple[int, float], ...]:
    points: dict[int, tuple[int, float]] = {}
    for point in tracking.get_metric_history(run_id, str(metric)):
        step, stamp = int(point.get("step", 0)), int(point.get("timestamp", 0))
        if step not in points or stamp >= points[step][0]:
            points[step] = (stamp, float(point["value"]))
    return tuple((step, value) for step, (_, value) in sorted(points.items()))


def apply(
    body: kopf.Body, plan: trial_loop.TickPlan, tracking: TrackingClient, cache: RunCache, logger: kopf.Logger
) -> dict[str, Any]:
    """Do what the plan says, in its order; return the status to write."""
    owner = plan.observed.owner
    for stop in plan.stops:
        logger.info("stopping trial %d (%s): %s", stop.number, stop.job_name, stop.reason)
        children.stop_job(owner.namespace, stop.job_name, stop.annotations)
        _post(body, stop.event)
    for run_id, run_status in plan.close_runs:
        tracking.set_terminated(run_id, run_status)
    cache.settled |= plan.settled_runs
    run_ids: dict[int, str] = {}
    ran: dict[int, search.Trial] = {}
    metric = trials.objective_name(plan.spec)
    for launch in plan.launches:
        found = _find_run(tracking, plan.observed.experiment_id, launch)
        earlier = None
        if found is not None:
            earlier = trial_record.trial_of_run(
                launch.number,
                launch.job_name,
                found,
                metric=metric,
                parameters=launch.parameters,
                sampler_attrs=launch.sampler_attrs,
            )
        if earlier is not None:
            # Its Job ran and was deleted before any status named it: record it, never run it again.
            logger.warning(
                "trial %d: its run %s ended before the operator recorded it (its Job is gone); "
                "recorded as %s from the run, not started again",
                launch.number,
                earlier.run_id,
                earlier.phase,
            )
            ran[launch.number] = earlier
            continue
        run_ids[launch.number] = run_id = (
            str(found["info"]["run_id"])
            if found is not None
            else tracking.create_run(plan.observed.experiment_id, run_name=launch.job_name, tags=launch.run_tags)
        )
        job = launch.job(run_id)
        created = children.ensure_job(job)
        logger.info(
            "trial %d: Job %s %s, run %s, parameters %s",
            launch.number,
            launch.job_name,
            "created" if created else "already existed",
            run_id,
            dict(launch.parameters),
        )
    mv = plan.model_version
    if mv is not None and children.ensure_model_version(mv):
        run_id = mv["spec"]["tags"]["modelship.io/run-id"]
        logger.info("registered run %s as ModelVersion %s", run_id, mv["metadata"]["name"])
        message = f"run {run_id} registered as ModelVersion {mv['metadata']['name']}"
        _post(body, trial_loop.Event("Normal", "Registered", message))
    if plan.finished is not None:
        _post(body, plan.finished)
    return plan.status(run_ids, ran)


def _post(body: kopf.Body, event: trial_loop.Event) -> None:
    kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def _find_run(tracking: TrackingClient, experiment_id: str, launch: trial_loop.Launch) -> dict[str, Any] | None:
    """The run tagged with the trial's key, when one exists (created before a crash); the
    applier creates one otherwise."""
    query = f"tags.`{build.TAG_TRIAL_KEY}` = '{launch.trial_key}'"
    for run in tracking.search_runs([experiment_id], query):
        return run
    return None


class _QuietTimer(logging.Filter):
    """Drop kopf's "Timer 'trials' succeeded." line: it would come every two seconds per
    running Experiment and bury what matters (trials started, stopped, registered)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and record.getMessage() == "Timer 'trials' succeeded.")


def register(registry: kopf.OperatorRegistry) -> None:
    """Register this kind's handlers on ``registry``."""
    register_reconcile(registry, KIND, reconcile)
    kopf.timer(
        group=GROUP,
        version=VERSION,
        plural=KIND.plural,
        id="trials",
        interval=INTERVAL,
        backoff=5,
        when=needs_work,
        registry=registry,
    )(tick)
    objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, _QuietTimer) for f in objects.filters):
        objects.addFilter(_QuietTimer())
