"""Trial accounting: what a Job says about its trial, where the search stands, the status.

A Job's labels give the trial number, its annotations the parameters and run id, its
conditions the outcome; once the Job is deleted (``spec.trialJobTTLSeconds``) the trial's
entry in ``status.trials`` is its record (``trial_record``). These functions turn Jobs and
that record (and what the tracking server said about their runs) into the Experiment's progress,
its status, and the decisions that follow: how many trials to start, which to stop,
whether to register the best model.

Pure: no I/O, the clock is passed in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelship.api import ExperimentSpec
from modelship.api.experiment import SecretKeyRef
from modelship.resources import trial_record
from modelship.resources.conditions import make_condition, merge_conditions
from modelship.resources.experiment import (
    ANNOTATION_PARAMETERS,
    ANNOTATION_RUN_ID,
    ANNOTATION_SAMPLER,
    ANNOTATION_STOPPED,
    ANNOTATION_STOPPED_REASON,
    LABEL_TRIAL,
    SIDECAR,
)
from modelship.resources.search import (
    ACTIVE,
    FAILED,
    RUNNING,
    STOPPED,
    SUCCEEDED,
    Trial,
    planned_trials,
)

COMPLETE = "Complete"
MAX_TRIALS_IN_STATUS = 200
"""status.trials lists the latest trials only: an object must stay well under etcd's 1.5 MB."""
DEGRADED = "Degraded"
TRIAL_CANNOT_START = "TrialCannotStart"
REGISTERED = "Registered"

# What a Job says, before the tracking server is asked for the objective.
JOB_RUNNING, JOB_COMPLETE, JOB_FAILED, JOB_STOPPED = "Running", "Complete", "Failed", "Stopped"

# ``modelship run`` exits 2 when the request is wrong (see modelship.projects.cli).
# Other codes are the entry point's own.
_EXIT_HINTS = {
    2: "the MLproject refused the request (unknown entry point, missing or mistyped parameter)",
}


def _true(job: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") == ctype and cond.get("status") == "True":
            return cond  # type: ignore[no-any-return]
    return None


def job_state(job: Mapping[str, Any]) -> tuple[str, str | None]:
    """(Running | Complete | Failed | Stopped, the Job's failure message)."""
    meta = job.get("metadata") or {}
    if (meta.get("annotations") or {}).get(ANNOTATION_STOPPED) == "true":
        return JOB_STOPPED, None
    if _true(job, "Complete") or _true(job, "SuccessCriteriaMet"):
        return JOB_COMPLETE, None
    failed = _true(job, "Failed") or _true(job, "FailureTarget")
    if failed:
        return JOB_FAILED, str(failed.get("message") or failed.get("reason") or "the Job failed")
    return JOB_RUNNING, None


def trial_of_job(job: Mapping[str, Any]) -> Trial | None:
    """The trial a Job records (phase from the Job alone), or None for a foreign Job."""
    meta = job.get("metadata") or {}
    labels, notes = meta.get("labels") or {}, meta.get("annotations") or {}
    try:
        number = int(labels[LABEL_TRIAL])
        parameters = json.loads(notes.get(ANNOTATION_PARAMETERS) or "{}")
        sampler = json.loads(notes.get(ANNOTATION_SAMPLER) or "{}")
    except (KeyError, ValueError):
        return None
    state, message = job_state(job)
    if state == JOB_STOPPED:
        message = notes.get(ANNOTATION_STOPPED_REASON) or "stopped"
    phase = {JOB_RUNNING: RUNNING, JOB_FAILED: FAILED, JOB_STOPPED: STOPPED, JOB_COMPLETE: SUCCEEDED}[state]
    return Trial(
        number=number,
        name=str(meta.get("name")),
        parameters=parameters if isinstance(parameters, dict) else {},
        phase=phase,
        run_id=notes.get(ANNOTATION_RUN_ID),
        message=message,
        sampler_attrs=sampler if isinstance(sampler, dict) else {},
    )


# Waiting reasons a container does not leave by itself: the kubelet keeps retrying and the
# Job stays active, so without a look at the pod the trial would read Running for ever.
_CANNOT_START = frozenset(
    {
        "CreateContainerConfigError",  # e.g. the tracking token's Secret or key does not exist
        "CreateContainerError",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "RunContainerError",
    }
)


def pod_cannot_start(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """Why a running trial's pod does not start, when a container waits for a reason it does
    not leave by itself (a missing Secret, an image that cannot be pulled); None otherwise."""
    for pod in pods:
        status = pod.get("status") or {}
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _CANNOT_START:
                text = f"container {cs.get('name')} cannot start: {waiting['reason']}"
                return f"{text}: {waiting['message']}" if waiting.get("message") else text
    return None


def pod_failure(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """Why the trial's pods failed: the first failed container's exit code, reason, message."""
    for pod in pods:
        status = pod.get("status") or {}
        statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        for cs in statuses:
            term = (cs.get("state") or {}).get("terminated") or {}
            if term and term.get("exitCode", 0) != 0:
                code = int(term["exitCode"])
                text = f"container {cs.get('name')} exited with code {code}"
                if cs.get("name") == "trainer" and code in _EXIT_HINTS:
                    text += f": {_EXIT_HINTS[code]}"
                elif cs.get("name") == "checkout":
                    text += ": the git checkout failed"
                if term.get("message"):
                    text += f". Last output: {str(term['message']).strip()[-800:]}"
                return text
    return pod_cannot_start(pods)


def sidecar_note(pods: Sequence[Mapping[str, Any]], token: SecretKeyRef | None) -> str | None:
    """What the trial's tracking sidecar said when it stopped (its termination message, a JSON
    report: ``modelship.tracking.sidecar.termination``), when something did not arrive: writes
    not delivered, dead-lettered, a token the server refuses (then where the token came from)."""
    for pod in pods:
        for cs in (pod.get("status") or {}).get("initContainerStatuses") or ():
            if cs.get("name") != SIDECAR:
                continue
            terminated = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
            try:
                report = json.loads((terminated or {}).get("message") or "")
            except ValueError:
                continue  # an older sidecar, or none of its own words
            if not isinstance(report, dict) or not report.get("message"):
                continue
            note = f"tracking sidecar: {report['message']}"
            if report.get("authFailing"):
                if token is None:
                    note += (
                        " (no token is configured: set spec.tracking.tokenSecretRef, or the operator's "
                        "--tracking-token-secret, to a Secret holding the server's token)"
                    )
                else:
                    note += (
                        f" (its token comes from Secret {token.name}, key {token.key}: "
                        "spec.tracking.tokenSecretRef or the operator's --tracking-token-secret)"
                    )
            return note
    return None


def with_result(
    trial: Trial,
    *,
    objective: float | None,
    metric: str,
    history: Sequence[tuple[int, float]] = (),
    message: str | None = None,
) -> Trial:
    """The trial after asking the tracking server: a completed Job without the objective
    metric failed; a failed one carries the pods' reason."""
    phase, note = trial.phase, message or trial.message
    if phase == SUCCEEDED and objective is None:
        phase, note = FAILED, f"the run ended without logging the objective metric {metric!r}"
        if message:  # e.g. the sidecar could not deliver it
            note += f"; {message}"
    elif phase == FAILED and message and trial.message:
        note = f"{trial.message}; {message}"
    return Trial(
        number=trial.number,
        name=trial.name,
        parameters=trial.parameters,
        phase=phase,
        run_id=trial.run_id,
        objective=objective,
        history=tuple(history),
        message=note,
        sampler_attrs=trial.sampler_attrs,
    )


@dataclass(frozen=True)
class Progress:
    """Where the search stands and what to do next."""

    planned: int
    launched: int
    succeeded: int
    failed: int
    stopped: int
    active: int
    to_launch: int
    stop_active: bool
    """Stop every active trial: the search has failed."""
    finished: bool
    phase: str
    reason: str
    message: str

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.stopped

    @property
    def summary(self) -> str:
        return f"{self.done}/{self.planned}"


def max_failed(spec: ExperimentSpec) -> int:
    """Failed trials that end the search: search.maxFailedTrials (0 counts as 1); 1 without a search."""
    return max(1, spec.search.max_failed_trials) if spec.search is not None else 1


def decide_progress(
    spec: ExperimentSpec, trials: Sequence[Trial], earlier: trial_record.Earlier | None = None
) -> Progress:
    """Where the search stands, counting ``trials`` and the finished trials folded into ``earlier``."""
    earlier = earlier or trial_record.Earlier()
    planned = planned_trials(spec)
    parallelism = spec.search.parallelism if spec.search is not None else 1
    launched = len(trials) + earlier.count
    succeeded = sum(t.phase == SUCCEEDED for t in trials) + earlier.succeeded
    failed = sum(t.phase == FAILED for t in trials) + earlier.failed
    stopped = sum(t.phase == STOPPED for t in trials) + earlier.stopped
    active = sum(t.phase in ACTIVE for t in trials)
    limit = max_failed(spec)
    counts = {
        "planned": planned,
        "launched": launched,
        "succeeded": succeeded,
        "failed": failed,
        "stopped": stopped,
        "active": active,
    }
    if failed >= limit:
        last = max((t for t in trials if t.phase == FAILED), key=lambda t: t.number, default=None)
        said = f"trial {last.number} ({last.name}): {last.message or 'unknown'}" if last else "an earlier trial"
        if spec.search is None:
            return Progress(
                **counts,
                to_launch=0,
                stop_active=False,
                finished=active == 0,
                phase="Failed",
                reason="TrialFailed",
                message=f"the trial ({last.name}) failed: {last.message or 'unknown'}" if last else "the trial failed.",
            )
        return Progress(
            **counts,
            to_launch=0,
            stop_active=active > 0,
            finished=active == 0,
            phase="Failed",
            reason="MaxFailedTrialsReached",
            message=f"{failed} trials failed (maxFailedTrials {limit}); the search stopped. Last failure, {said}",
        )
    to_launch = max(0, min(parallelism - active, planned - launched))
    if spec.suspend and launched < planned:
        return Progress(
            **counts,
            to_launch=0,
            stop_active=False,
            finished=False,
            phase="Running" if active else "Pending",
            reason="Suspended",
            message=f"spec.suspend is true: no trial is launched ({active} running, "
            f"{succeeded + failed + stopped} of {planned} done); set it to false to start.",
        )
    if launched + to_launch >= planned and active == 0 and to_launch == 0:
        if succeeded:
            return Progress(
                **counts,
                to_launch=0,
                stop_active=False,
                finished=True,
                phase="Succeeded",
                reason="SearchSucceeded",
                message=f"{succeeded} of {launched} trials succeeded.",
            )
        return Progress(
            **counts,
            to_launch=0,
            stop_active=False,
            finished=True,
            phase="Failed",
            reason="NoTrialSucceeded",
            message=f"none of the {launched} trials succeeded.",
        )
    phase = "Running" if launched or to_launch else "Pending"
    return Progress(
        **counts,
        to_launch=to_launch,
        stop_active=False,
        finished=False,
        phase=phase,
        reason="TrialsRunning",
        message=f"{active + to_launch} running, {succeeded + failed + stopped} of {planned} done.",
    )


def best_trial(spec: ExperimentSpec, trials: Sequence[Trial]) -> Trial | None:
    """The succeeded trial with the best objective (the lowest number wins a tie)."""
    if spec.search is None:  # one trial and no objective: the trial that succeeded
        return next((t for t in trials if t.phase == SUCCEEDED), None)
    scored = [t for t in trials if t.phase == SUCCEEDED and t.objective is not None]
    if not scored:
        return None
    sign = -1.0 if spec.search is not None and spec.search.objective.goal == "minimize" else 1.0
    return max(scored, key=lambda t: (sign * float(t.objective or 0.0), -t.number))


@dataclass(frozen=True)
class RegistrationDecision:
    register: bool
    reason: str
    message: str


def decide_registration(spec: ExperimentSpec, progress: Progress, best: Trial | None) -> RegistrationDecision | None:
    """Whether to register the best trial's model now; None when there is nothing to decide yet."""
    reg = spec.registration
    if reg is None or not progress.finished:
        return None
    if progress.phase != "Succeeded" or best is None or best.run_id is None:
        return RegistrationDecision(False, "SearchFailed", "the search did not succeed; nothing registered.")
    if best.objective is None:  # no search, no objective: the threshold cannot apply
        return RegistrationDecision(True, "Registered", f"run {best.run_id} registered as {reg.model_name}.")
    value = float(best.objective)
    minimize = spec.search is not None and spec.search.objective.goal == "minimize"
    if reg.threshold is not None and (value > reg.threshold if minimize else value < reg.threshold):
        return RegistrationDecision(
            False,
            "BelowThreshold",
            f"best objective {value:g} does not meet the threshold {reg.threshold:g}; nothing registered.",
        )
    return RegistrationDecision(
        True, "Registered", f"trial {best.number} (run {best.run_id}) registered as {reg.model_name}."
    )


def objective_name(spec: ExperimentSpec) -> str | None:
    return spec.search.objective.metric if spec.search is not None else None


def trial_status(trial: Trial) -> dict[str, Any]:
    out: dict[str, Any] = {"name": trial.name, "number": trial.number, "phase": trial.phase}
    if trial.run_id:
        out["runId"] = trial.run_id
    if trial.parameters:
        out["parameters"] = dict(trial.parameters)
    if trial.objective is not None:
        out["objective"] = trial.objective
    if trial.message:
        out["message"] = trial.message[:1024]
    if trial.sampler_attrs:
        out["samplerAttrs"] = json.dumps(dict(trial.sampler_attrs), sort_keys=True)
    return out


def build_status(
    spec: ExperimentSpec,
    trials: Sequence[Trial],
    progress: Progress,
    *,
    old_status: Mapping[str, Any] | None,
    generation: int | None,
    now: datetime,
    experiment_id: str | None = None,
    tracking_url: str | None = None,
    registration: RegistrationDecision | None = None,
    model_version: str | None = None,
    earlier: trial_record.Earlier | None = None,
) -> dict[str, Any]:
    """The status fields the trial loop owns (Ready and observedGeneration belong to acceptance).

    ``trials`` are this tick's (none below ``earlier.below``); the oldest finished ones
    beyond :data:`MAX_TRIALS_IN_STATUS` are folded into ``earlierTrials``."""
    old_status = old_status or {}
    earlier = earlier or trial_record.Earlier()
    best = best_trial(spec, trial_record.candidates(trials, earlier))
    ordered = sorted(trials, key=lambda t: t.number)
    updates = [
        make_condition(
            COMPLETE,
            "True" if progress.finished else "False",
            progress.reason,
            progress.message,
            now=now,
            observed_generation=generation,
        )
    ]
    failures = [t for t in ordered if t.phase == FAILED]
    waiting = [t for t in ordered if t.phase == RUNNING and t.message]
    if failures:
        last = failures[-1]
        updates.append(
            make_condition(
                DEGRADED,
                "True",
                "TrialFailed",
                f"{len(failures)} trial(s) failed; trial {last.number} ({last.name}): {last.message or 'unknown'}",
                now=now,
                observed_generation=generation,
            )
        )
    elif waiting:
        first = waiting[0]
        updates.append(
            make_condition(
                DEGRADED,
                "True",
                TRIAL_CANNOT_START,
                f"{len(waiting)} running trial(s) cannot start; trial {first.number} ({first.name}): {first.message}",
                now=now,
                observed_generation=generation,
            )
        )
    elif any(
        c.get("type") == DEGRADED and c.get("reason") == TRIAL_CANNOT_START for c in old_status.get("conditions") or ()
    ):  # what kept the pods from starting is fixed
        updates.append(
            make_condition(
                DEGRADED,
                "False",
                "TrialsStarted",
                "every running trial's pods started",
                now=now,
                observed_generation=generation,
            )
        )
    if registration is not None:
        updates.append(
            make_condition(
                REGISTERED,
                "True" if registration.register else "False",
                registration.reason,
                registration.message,
                now=now,
                observed_generation=generation,
            )
        )
    # The record outlives the Jobs, so nothing is dropped: the oldest finished trials are
    # counted in earlierTrials (the summary and counts still cover them all).
    ordered, earlier = trial_record.fold(ordered, earlier, MAX_TRIALS_IN_STATUS)
    status: dict[str, Any] = {
        "phase": progress.phase,
        "trials": [trial_status(t) for t in ordered],
        "trialsSummary": progress.summary,
        "succeededTrials": progress.succeeded,
        "failedTrials": progress.failed,
        "bestTrial": trial_status(best) if best is not None else None,
        "conditions": merge_conditions(old_status.get("conditions"), updates),
    }
    if earlier.below:
        status["earlierTrials"] = earlier.wire()
    if experiment_id is not None:
        status["experimentId"] = experiment_id
    if tracking_url is not None:
        status["trackingUrl"] = tracking_url
    if model_version is not None:
        status["modelVersion"] = model_version
    return status


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing ``new`` would change anything in ``old``."""
    old = old or {}
    return any(old.get(key) != value for key, value in new.items())
