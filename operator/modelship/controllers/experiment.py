"""Experiment handlers: accept the spec, then run the trials, the search and registration.

Two handlers. ``reconcile`` (resume, create, update) accepts or refuses the spec. ``tick``
(a kopf timer, every ``experiment_interval`` seconds per Experiment) is the trial loop:

1. observe: the trial Jobs (by label, owned by this Experiment's uid), then the tracking
   server for the runs' objective and its history, and the pods of failed trials;
2. decide with pure functions (``resources.trials``, ``resources.search``): progress,
   trials to stop (median rule, or all when maxFailedTrials is reached), parameters of
   the trials to start, registration;
3. apply: per new trial, find or create its run (tag ``modelship.io/trial-key``), then
   create its Job (a 409 means it exists); suspend stopped trials' Jobs; create the
   ModelVersion;
4. write status through kopf's ``patch``.

The Jobs are the whole state of the search, so an operator killed at any point resumes
from them: a trial number is taken by its Job, and a run created before a crash is
found again by its tag, never created twice.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping
from typing import Any

import httpx
import kopf

from modelship import __version__
from modelship.api import GROUP, VERSION, ExperimentSpec, kind_by_name
from modelship.controllers import children
from modelship.controllers.common import InvalidSpec, accept_spec, register_reconcile, utcnow
from modelship.controllers.metrics import METRICS
from modelship.controllers.settings import OperatorConfig
from modelship.resources import experiment as build
from modelship.resources import search, trials
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


class _Cache:
    """What the tracking server said that cannot change any more, per run (lost on restart,
    asked again then): a finished run's objective and history, runs already closed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results: dict[str, tuple[float | None, tuple[tuple[int, float], ...]]] = {}
        self.closed: set[str] = set()
        self.failures: dict[str, str] = {}
        self.experiment_ids: dict[str, str] = {}


CACHE = _Cache()


def needs_work(meta: Mapping[str, Any], status: Mapping[str, Any], **_: Any) -> bool:
    """False once the search ended for the current generation: then kopf stops the timer,
    and starts it again when the spec changes (more trials, say)."""
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
    with TrackingClient(config.tracking_url, timeout=10) as tracking:
        try:
            new_status = _step(body, spec, config, tracking, logger)
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


def _step(
    body: kopf.Body, spec: ExperimentSpec, config: OperatorConfig, tracking: TrackingClient, logger: kopf.Logger
) -> dict[str, Any]:
    meta = body["metadata"]
    owner = build.Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])
    generation = meta.get("generation")
    experiment_id = _experiment_id(tracking, owner)
    metric = trials.objective_name(spec)

    # 1. observe
    jobs = [
        job
        for job in children.list_jobs(owner.namespace, f"{build.LABEL_EXPERIMENT}={build.label_value(owner.name)}")
        if any(ref.get("uid") == owner.uid for ref in job["metadata"].get("ownerReferences") or ())
    ]
    observed = [t for t in map(trials.trial_of_job, jobs) if t is not None]
    early = (
        spec.search is not None
        and spec.search.early_stopping is not None
        and spec.search.early_stopping.algorithm == "median"
    )
    known = [_with_tracking(t, spec, metric, tracking, owner, early) for t in observed]

    # 2. decide, 3. apply: stop trials first, so that their slots count as free.
    progress = trials.decide_progress(spec, known)
    to_stop = [
        t for t in known if t.phase in search.ACTIVE and (progress.stop_active or search.should_stop(spec, known, t))
    ]
    for trial in to_stop:
        why = "maxFailedTrials reached" if progress.stop_active else "median rule"
        logger.info("stopping trial %d (%s): %s", trial.number, trial.name, why)
        children.suspend_job(
            owner.namespace,
            trial.name,
            {build.ANNOTATION_STOPPED: "true", build.ANNOTATION_STOPPED_REASON: f"stopped: {why}"},
        )
        kopf.event(body, type="Normal", reason="TrialStopped", message=f"trial {trial.number} ({trial.name}): {why}")
        if trial.run_id:
            tracking.set_terminated(trial.run_id, "KILLED")
            with CACHE.lock:
                CACHE.closed.add(trial.run_id)
    if to_stop:
        stopped = {t.number for t in to_stop}
        why = "maxFailedTrials reached" if progress.stop_active else "median rule"
        known = [
            dataclasses.replace(t, phase=search.STOPPED, message=f"stopped: {why}") if t.number in stopped else t
            for t in known
        ]
        progress = trials.decide_progress(spec, known)

    if progress.to_launch:
        first = max((t.number for t in known), default=-1) + 1
        numbers = list(range(first, first + progress.to_launch))
        for suggestion in search.suggest(spec, known, numbers, experiment_uid=owner.uid):
            run_id = _ensure_run(tracking, owner, experiment_id, suggestion.number)
            job = build.build_trial_job(
                owner,
                spec,
                number=suggestion.number,
                parameters=suggestion.parameters,
                run_id=run_id,
                experiment_id=experiment_id,
                tracking_url=str(config.tracking_url),
                default_image=config.trainer_image or f"ghcr.io/modelship/modelship:{__version__}",
                sampler_attrs=suggestion.sampler_attrs,
            )
            created = children.ensure_job(job)
            logger.info(
                "trial %d: Job %s %s, run %s, parameters %s",
                suggestion.number,
                job["metadata"]["name"],
                "created" if created else "already existed",
                run_id,
                suggestion.parameters,
            )
            known.append(
                search.Trial(
                    suggestion.number,
                    job["metadata"]["name"],
                    suggestion.parameters,
                    search.RUNNING,
                    run_id,
                    sampler_attrs=suggestion.sampler_attrs,
                )
            )
        progress = trials.decide_progress(spec, known)

    best = trials.best_trial(spec, known)
    registration = trials.decide_registration(spec, progress, best)
    model_version = (body.get("status") or {}).get("modelVersion")
    if registration is not None and registration.register and spec.registration is not None and best is not None:
        mv = build.build_model_version(
            owner,
            model=spec.registration.model_name,
            run_id=str(best.run_id),
            artifact_path=spec.registration.artifact_path,
            objective=metric or "objective",
            value=float(best.objective or 0.0),
        )
        if children.ensure_model_version(mv):
            logger.info("registered run %s as ModelVersion %s", best.run_id, mv["metadata"]["name"])
            kopf.event(
                body,
                type="Normal",
                reason="Registered",
                message=f"run {best.run_id} registered as ModelVersion {mv['metadata']['name']}",
            )
        model_version = mv["metadata"]["name"]

    was = (body.get("status") or {}).get("phase")
    if progress.finished and was != progress.phase:
        kopf.event(
            body,
            type="Normal" if progress.phase == "Succeeded" else "Warning",
            reason=progress.reason,
            message=progress.message[:1024],
        )
    return trials.build_status(
        spec,
        known,
        progress,
        old_status=body.get("status"),
        generation=generation,
        now=utcnow(),
        experiment_id=experiment_id,
        tracking_url=f"{str(config.tracking_url).rstrip('/')}/#/experiments/{experiment_id}",
        registration=registration,
        model_version=model_version,
    )


def _experiment_id(tracking: TrackingClient, owner: build.Owner) -> str:
    with CACHE.lock:
        found = CACHE.experiment_ids.get(owner.uid)
    if found is None:
        found = tracking.get_or_create_experiment(build.tracking_experiment_name(owner.namespace, owner.name))
        with CACHE.lock:
            CACHE.experiment_ids[owner.uid] = found
    return found


def _ensure_run(tracking: TrackingClient, owner: build.Owner, experiment_id: str, number: int) -> str:
    """The trial's run: the one tagged with its key (created before a crash), else a new one."""
    key = build.trial_key(owner.uid, number)
    for run in tracking.search_runs([experiment_id], f"tags.`{build.TAG_TRIAL_KEY}` = '{key}'"):
        return str(run["info"]["run_id"])
    return tracking.create_run(
        experiment_id,
        run_name=build.trial_job_name(owner.name, number),
        tags={
            build.TAG_TRIAL_KEY: key,
            build.TAG_EXPERIMENT: build.tracking_experiment_name(owner.namespace, owner.name),
            "modelship.io/trial": str(number),
        },
    )


def _with_tracking(
    trial: search.Trial,
    spec: ExperimentSpec,
    metric: str | None,
    tracking: TrackingClient,
    owner: build.Owner,
    early: bool,
) -> search.Trial:
    """The trial with what the tracking server and the pods say about it."""
    run_id = trial.run_id
    if run_id is None:
        return trials.with_result(trial, objective=None, metric=metric or "", message="the Job has no run id")
    if trial.phase == search.SUCCEEDED:
        with CACHE.lock:
            cached = CACHE.results.get(run_id)
        if cached is None:
            value = tracking.latest_metrics(run_id).get(metric) if metric else None
            cached = (value, _history(tracking, run_id, metric) if metric and early else ())
            if value is not None or not metric:
                with CACHE.lock:
                    CACHE.results[run_id] = cached
        if not metric:  # one trial, no objective: success is the Job's
            return trial
        return trials.with_result(trial, objective=cached[0], metric=str(metric), history=cached[1])
    if trial.phase == search.RUNNING:
        points = _history(tracking, run_id, metric) if metric and early else ()
        latest = points[-1][1] if points else None
        return trials.with_result(trial, objective=latest, metric=metric or "", history=points)
    # Failed or Stopped: close the run if the trainer could not, say why it failed.
    message = None
    objective: float | None = None
    history: tuple[tuple[int, float], ...] = ()
    if trial.phase == search.STOPPED and metric:
        with CACHE.lock:
            cached = CACHE.results.get(run_id)
        if cached is None:
            history = _history(tracking, run_id, metric)
            cached = (history[-1][1] if history else None, history)
            with CACHE.lock:
                CACHE.results[run_id] = cached
        objective, history = cached
    if trial.phase == search.FAILED:
        with CACHE.lock:
            message = CACHE.failures.get(run_id)
        if message is None:
            pods = children.list_pods(owner.namespace, f"job-name={trial.name}")
            message = trials.pod_failure(pods) or ""
            with CACHE.lock:
                CACHE.failures[run_id] = message
    with CACHE.lock:
        closed = run_id in CACHE.closed
    if not closed:
        try:
            if tracking.get_run(run_id)["info"].get("status") == "RUNNING":
                tracking.set_terminated(run_id, "FAILED" if trial.phase == search.FAILED else "KILLED")
        except TrackingError:
            pass  # the run was deleted: nothing to close
        with CACHE.lock:
            CACHE.closed.add(run_id)
    return trials.with_result(trial, objective=objective, metric=metric or "", history=history, message=message or None)


def _history(tracking: TrackingClient, run_id: str, metric: str | None) -> tuple[tuple[int, float], ...]:
    points: dict[int, tuple[int, float]] = {}
    for point in tracking.get_metric_history(run_id, str(metric)):
        step, stamp = int(point.get("step", 0)), int(point.get("timestamp", 0))
        if step not in points or stamp >= points[step][0]:
            points[step] = (stamp, float(point["value"]))
    return tuple((step, value) for step, (_, value) in sorted(points.items()))


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
