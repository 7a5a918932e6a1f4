"""The closed loop of a ModelDeployment: drift -> retraining Experiment -> gated ModelVersion -> rollout.

``spec.monitoring.retrain`` names a template Experiment. When DriftDetected has been True
for ``forSeconds``, :func:`plan_retrain` asks for one Experiment ``<deployment>-retrain-<n>``
(the template's spec, ``suspend`` false, registration aimed at the deployment's model,
owned by the ModelDeployment), then follows it in ``status.retraining`` through what the
other controllers decide: the Experiment's phase and the ModelVersion it registered, that
version's gates and effective stage, and the deployment's own rollout (the canary's
promotion or rollback). Each step is a phase, and each change of phase an Event.

Restart safety: the name of the n-th retraining is fixed, ``count`` in status says which
n is next, and a child found by label with a higher number than ``count`` (created by an
operator that died before writing status) is adopted rather than created again. At most
one is in flight: while one is, no other starts, and a child that is still running and not
the current one is adopted.

Pure: the observations and the time are arguments; nothing here does I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from modelship.api.modeldeployment import ModelDeploymentSpec, Retrain
from modelship.resources.conditions import find_condition
from modelship.resources.experiment import Owner, label_value, shorten

LABEL_RETRAIN_OF = "modelship.io/retrain-of"
LABEL_RETRAIN_NUMBER = "modelship.io/retrain-number"
LABEL_TEMPLATE = "modelship.io/retrain-template"
ANNOTATION_REASON = "modelship.io/retrain-reason"
HISTORY = 10
"""Retrainings kept in ``status.retraining.history``."""
CONDITION = "RetrainReady"
IN_FLIGHT = ("Training", "Registering", "RollingOut")
EXPERIMENT_DONE = ("Succeeded", "Failed")
OBSERVE_GRACE_SECONDS = 60
"""How long a just-created Experiment may be missing from the watch before it counts as deleted."""


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Child:
    """A retraining Experiment as observed (by label, owned by this ModelDeployment)."""

    name: str
    number: int
    phase: str | None = None
    model_version: str | None = None
    conditions: tuple[Mapping[str, Any], ...] = ()
    summary: str | None = None


@dataclass(frozen=True)
class Version:
    """A ModelVersion as observed: its number, requested and effective stage, gates' verdict."""

    name: str
    version: int | None = None
    stage: str | None = None
    requested_stage: str = "None"
    aliases: tuple[str, ...] = ()
    held_aliases: tuple[str, ...] = ()
    gates: Mapping[str, Any] | None = None  # the GatesPassed condition


@dataclass(frozen=True)
class Rollout:
    """What the deployment serves now: each variant's version, and the canary's state."""

    variants: Mapping[str, int | None] = field(default_factory=dict)
    canary: Mapping[str, Any] | None = None


@dataclass
class RetrainPlan:
    status: dict[str, Any]
    condition: tuple[str, str, str]  # status, reason, message of RetrainReady
    create: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)


def retrain_name(deployment: str, number: int) -> str:
    """``<deployment>-retrain-<n>``, within 63 characters (its trials' Job names add to it)."""
    return shorten(deployment, f"-retrain-{number}", limit=52)


def rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    from datetime import UTC

    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def template_problem(retrain: Retrain, namespace: str, template: Mapping[str, Any] | None) -> str | None:
    """Why the template cannot be copied (names the field and the fix), or None."""
    where = f"spec.monitoring.retrain.experimentTemplate names Experiment {namespace}/{retrain.experiment_template}"
    if template is None:
        return f"{where}, which does not exist: create it (with spec.suspend: true) or name one that does"
    spec = template.get("spec") or {}
    if not spec.get("register"):
        return (
            f"{where}, which has no spec.register: add spec.register with the stage the new version asks for "
            "(e.g. Production) and its gates, or the retrained model can never reach traffic"
        )
    return None


def build_experiment(
    owner: Owner, model: str, retrain: Retrain, template: Mapping[str, Any], number: int, reason: str
) -> dict[str, Any]:
    """The retraining Experiment: the template's spec, running, registering into ``model``."""
    spec = copy.deepcopy(dict(template.get("spec") or {}))
    spec["suspend"] = False
    spec["register"] = {**(spec.get("register") or {}), "modelName": model}
    return {
        "apiVersion": owner.api_version,
        "kind": "Experiment",
        "metadata": {
            "name": retrain_name(owner.name, number),
            "namespace": owner.namespace,
            "labels": {
                LABEL_RETRAIN_OF: label_value(owner.name),
                LABEL_RETRAIN_NUMBER: str(number),
                LABEL_TEMPLATE: label_value(retrain.experiment_template),
            },
            "annotations": {ANNOTATION_REASON: reason[:1024]},
            "ownerReferences": [owner.reference()],
        },
        "spec": spec,
    }


def _follows(spec: ModelDeploymentSpec, version: Version) -> str | None:
    """The variant that would serve ``version`` once its stage or alias takes effect, or None."""
    for v in spec.variants:
        if v.stage is not None and v.stage == version.requested_stage:
            return v.name
        if v.alias is not None and v.alias in version.aliases:
            return v.name
    return None


def _condition_message(conditions: Sequence[Mapping[str, Any]], type_: str) -> str:
    c = find_condition(list(conditions), type_) or {}
    return str(c.get("message") or "")


def plan_retrain(
    spec: ModelDeploymentSpec,
    owner: Owner,
    *,
    drift: tuple[str, str],
    old: Mapping[str, Any] | None,
    template: Mapping[str, Any] | None,
    children: Sequence[Child],
    versions: Mapping[str, Version],
    rollout: Rollout,
    now: datetime,
) -> RetrainPlan:
    """One look at the loop: the new ``status.retraining``, what to create, the Events.

    ``drift`` is the DriftDetected condition just computed (status, message); ``old`` the
    stored ``status.retraining``; ``children`` the retraining Experiments owned by this
    ModelDeployment; ``versions`` ModelVersions by name.
    """
    assert spec.monitoring is not None and spec.monitoring.retrain is not None
    retrain = spec.monitoring.retrain
    old = dict(old or {})
    count = int(old.get("count") or 0)
    current: dict[str, Any] | None = dict(old["current"]) if old.get("current") else None
    history: list[dict[str, Any]] = [dict(h) for h in old.get("history") or []]
    phase = str(old.get("phase") or "Watching")
    events: list[Event] = []
    drifting = drift[0] == "True"
    drift_since = (old.get("driftSince") or rfc3339(now)) if drifting else None
    problem = template_problem(retrain, owner.namespace, template)
    condition = (
        ("False", "TemplateNotUsable", problem)
        if problem
        else ("True", "TemplateFound", f"template Experiment {retrain.experiment_template} is ready to copy")
    )
    by_name = {c.name: c for c in children}

    # A child this status does not know of: created by an operator that died before it wrote
    # status, or still running while status says nothing is. Adopt it, never create another.
    known = current["experiment"] if current else None
    newest = max(children, key=lambda c: c.number, default=None)
    stray = [c for c in children if c.name != known and (c.number > count or c.phase not in EXPERIMENT_DONE)]
    if stray and phase not in IN_FLIGHT:
        adopted = max(stray, key=lambda c: c.number)
        count = max(count, adopted.number)
        current = {"experiment": adopted.name, "startedAt": rfc3339(now)}
        phase = "Training"
    elif newest is not None and newest.number > count:
        count = newest.number  # an orphan record; keep the numbers moving forward

    message = ""

    def finish(outcome: str, said: str, kind: str = "Normal") -> None:
        nonlocal phase, current, message
        assert current is not None
        message = said
        current = {**current, "outcome": outcome, "message": said, "finishedAt": rfc3339(now)}
        history.insert(0, dict(current))
        del history[HISTORY:]
        phase = "CoolingDown"
        events.append(Event(kind, f"Retrain{outcome}", said))

    if phase in IN_FLIGHT and current is not None:
        name = current["experiment"]
        child = by_name.get(name)
        if phase == "Training":
            started = _parse(current.get("startedAt"))
            if child is None and started is not None and (now - started).total_seconds() < OBSERVE_GRACE_SECONDS:
                message = f"retraining Experiment {name} created; waiting to observe it"
            elif child is None:
                finish("Removed", f"retraining Experiment {name} was deleted before it finished", "Warning")
            elif child.phase == "Failed":
                why = _condition_message(child.conditions, "Complete") or "no trial succeeded"
                finish("ExperimentFailed", f"retraining Experiment {name} failed: {why}", "Warning")
            elif child.phase == "Succeeded" and child.model_version:
                current["modelVersion"] = child.model_version
                phase = "Registering"
                events.append(
                    Event(
                        "Normal",
                        "RetrainSucceeded",
                        f"retraining Experiment {name} succeeded; its best run is ModelVersion {child.model_version}",
                    )
                )
            elif child.phase == "Succeeded":
                registered = find_condition(list(child.conditions), "Registered") or {}
                if registered.get("status") == "False":
                    why = str(registered.get("message") or registered.get("reason") or "")
                    finish("NotRegistered", f"retraining Experiment {name} registered no model: {why}", "Warning")
                else:
                    message = f"retraining Experiment {name} succeeded; waiting for its ModelVersion"
            else:
                message = f"retraining Experiment {name} is {child.phase or 'Pending'} ({child.summary or '0 trials'})"
        if phase == "Registering":
            mv_name = str(current.get("modelVersion"))
            mv = versions.get(mv_name)
            gates = (mv.gates or {}) if mv is not None else {}
            if mv is None or mv.version is None:
                message = f"waiting for ModelVersion {mv_name} to be numbered"
            else:
                current["version"] = mv.version
                if gates.get("status") == "False":
                    finish(
                        "GatesFailed",
                        f"ModelVersion {mv_name} (version {mv.version}) failed its gates: {gates.get('message')}; "
                        "it is not promoted",
                        "Warning",
                    )
                elif mv.requested_stage in ("None", "") and not mv.aliases:
                    finish(
                        "Registered",
                        f"ModelVersion {mv_name} (version {mv.version}) registered with no stage or alias: nothing "
                        "rolls it out (set spec.register.stage of the template)",
                    )
                elif (variant := _follows(spec, mv)) is None:
                    asked = mv.requested_stage if mv.requested_stage not in ("None", "") else ", ".join(mv.aliases)
                    finish(
                        "Registered",
                        f"ModelVersion {mv_name} (version {mv.version}) asks for {asked}, which no variant follows",
                    )
                elif (mv.requested_stage not in ("None", "") and mv.stage == mv.requested_stage) or (
                    set(mv.aliases) & set(mv.held_aliases)
                ):
                    phase = "RollingOut"
                    current["variant"] = variant
                    events.append(
                        Event(
                            "Normal",
                            "RetrainGatesPassed",
                            f"ModelVersion {mv_name} (version {mv.version}) passed its gates and took effect; "
                            f"variant {variant} rolls it out",
                        )
                    )
                else:
                    message = (
                        f"ModelVersion {mv_name} (version {mv.version}): gates {gates.get('status', 'Unknown')}, "
                        f"effective stage {mv.stage or 'None'}"
                    )
        if phase == "RollingOut":
            version = int(current.get("version") or 0)
            variant = str(current.get("variant") or "")
            c = rollout.canary or {}
            mine = c.get("variant") == variant and int(c.get("toVersion") or 0) == version
            if mine and c.get("phase") == "RolledBack":
                finish("RolledBack", f"version {version} rolled back: {c.get('message')}", "Warning")
            elif rollout.variants.get(variant) == version and not mine:
                finish("Promoted", f"version {version} serves variant {variant}: the loop closed")
            elif mine:
                message = f"version {version} on canary: {c.get('message')}"
            else:
                message = f"variant {variant} rolling out version {version}"

    if phase not in IN_FLIGHT:
        finished = _parse((current or {}).get("finishedAt"))
        cool_until = finished + timedelta(seconds=retrain.cooldown_seconds) if finished else None
        since = _parse(drift_since)
        ended_now = any(e.reason.startswith("Retrain") and e.reason != "RetrainStarted" for e in events)
        if phase == "CoolingDown" and cool_until is not None and (now < cool_until or ended_now):
            message = (
                f"{message or (current or {}).get('message') or ''}; next retraining possible after "
                f"{rfc3339(cool_until)} (cooldownSeconds {retrain.cooldown_seconds})"
            ).lstrip("; ")
        elif not drifting:
            phase, message = "Watching", f"DriftDetected is {drift[0]}: nothing to retrain"
        elif problem:
            phase, message = "Blocked", problem
        elif since is not None and (now - since).total_seconds() < retrain.for_seconds:
            ready_at = since + timedelta(seconds=retrain.for_seconds)
            phase = "Waiting"
            message = f"DriftDetected since {drift_since}; retraining at {rfc3339(ready_at)} unless it clears"
        else:
            assert template is not None
            count += 1
            create = build_experiment(owner, spec.model, retrain, template, count, drift[1])
            name = create["metadata"]["name"]
            current = {"experiment": name, "startedAt": rfc3339(now)}
            phase, message = "Training", f"retraining Experiment {name} created"
            events.append(
                Event(
                    "Normal",
                    "RetrainStarted",
                    f"DriftDetected held since {drift_since} (forSeconds {retrain.for_seconds}): created Experiment "
                    f"{name} from template {retrain.experiment_template}",
                )
            )
            return RetrainPlan(_status(phase, message, count, drift_since, current, history), condition, create, events)

    if not message and current is not None and phase == "CoolingDown":
        message = str(current.get("message") or "")
    return RetrainPlan(_status(phase, message, count, drift_since, current, history), condition, None, events)


RECORD_KEYS = ("experiment", "startedAt", "finishedAt", "modelVersion", "version", "variant", "outcome", "message")


def _status(
    phase: str,
    message: str,
    count: int,
    drift_since: str | None,
    current: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """``status.retraining`` with every key present (None for unset): the status goes out as a
    merge patch, where a key left out would keep its old value and a None removes it."""
    return {
        "phase": phase,
        "message": message[:1024],
        "count": count,
        "driftSince": drift_since,
        "current": {k: current.get(k) for k in RECORD_KEYS} if current else None,
        "history": [{k: v for k, v in h.items() if v is not None} for h in history] or None,
    }
