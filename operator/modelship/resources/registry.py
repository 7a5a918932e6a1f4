"""The model registry's decisions: version numbers, effective stages, aliases and gates.

Everything here is a pure function over plain data: the controller lists the
ModelVersions of one model, turns each into a :class:`VersionView`, and asks
:func:`decide_model` what every version's registry status should be. Nothing here reads
the clock (``now`` is passed in), talks to Kubernetes, or logs.

The rules, in one place (docs/registry.md says the same for users):

* Only numbered versions (``status.version`` set) take part; the newest is the highest
  number.
* ``spec.stage`` None and Archived take effect as written.
* Staging and Production take effect only for a version whose source resolved and whose
  gates all pass. Among the eligible versions asking for one of those stages, the newest
  holds it; the others become effective Archived and show ``supersededBy`` and a
  ``Superseded`` condition (what MLflow's ``archive_existing_versions`` would do, without
  rewriting anyone's spec). A version blocked by a gate stays effective None.
* An alias belongs to the newest version that claims it; the others get an
  ``AliasesHeld=False`` condition naming the holder.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelship.resources.conditions import (
    ConditionStatus,
    make_condition,
    merge_conditions,
    rfc3339,
)

NONE, STAGING, PRODUCTION, ARCHIVED = "None", "Staging", "Production", "Archived"
PROMOTED_STAGES = (PRODUCTION, STAGING)

GATES_PASSED = "GatesPassed"
SUPERSEDED = "Superseded"
ALIASES_HELD = "AliasesHeld"
REGISTRY_CONDITIONS = (GATES_PASSED, SUPERSEDED, ALIASES_HELD)

MAX_HISTORY = 200
"""stageHistory keeps the newest entries up to this many, so that an object stays small."""

# --- the counter ConfigMap -------------------------------------------------------------

COUNTER_LABEL = "modelship.io/registry"
"""Label on every per-model registry ConfigMap (value: ``counter``)."""
COUNTER_MODEL_ANNOTATION = "modelship.io/model"
LAST_KEY = "last"
CLAIM_PREFIX = "uid-"


def counter_name(model: str) -> str:
    """The per-model counter ConfigMap's name: readable, DNS-1123, unique per model name.

    Model names allow capitals, dots and underscores; the sanitised part alone could make
    two names collide (``Iris`` and ``iris``), so a hash of the exact name follows it.
    """
    digest = hashlib.sha256(model.encode()).hexdigest()[:10]
    clean = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")[:40].strip("-") or "model"
    return f"modelship-registry-{clean}-{digest}"


def claim_key(uid: str) -> str:
    return f"{CLAIM_PREFIX}{uid}"


@dataclass(frozen=True)
class CounterUpdate:
    """What to write into the counter's ``data`` (a merge patch; None deletes a key)."""

    version: int
    data_patch: dict[str, str | None]
    already_claimed: bool


def claim_version(data: Mapping[str, str] | None, uid: str, *, settled: Iterable[str] = ()) -> CounterUpdate:
    """The next number for ``uid``, or the one it already claimed.

    The claim is recorded in the counter together with the new ``last``, in one
    preconditioned write, so a crash after the write and before the status update finds
    the same number again: no gap, no repeat. ``settled`` names uids whose claim can go
    (their status holds the number, or the object is gone), so the map stays small.
    """
    data = dict(data or {})
    own = data.get(claim_key(uid))
    patch: dict[str, str | None] = {claim_key(u): None for u in settled if claim_key(u) in data and u != uid}
    if own is not None:
        return CounterUpdate(int(own), patch, True)
    last = int(data.get(LAST_KEY) or 0)
    # A claim above ``last`` can only come from a broken writer; never hand it out twice.
    for key, value in data.items():
        if key.startswith(CLAIM_PREFIX) and value.isdigit():
            last = max(last, int(value))
    number = last + 1
    patch[LAST_KEY] = str(number)
    patch[claim_key(uid)] = str(number)
    return CounterUpdate(number, patch, False)


# --- gates ------------------------------------------------------------------------------

_OPS = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
}


@dataclass(frozen=True)
class GateResult:
    metric: str
    op: str
    value: float
    actual: float | None

    @property
    def passed(self) -> bool:
        return self.actual is not None and not math.isnan(self.actual) and _OPS[self.op](self.actual, self.value)

    def describe(self) -> str:
        rule = f"{self.metric} {self.op} {self.value:g}"
        if self.actual is None:
            return f"gate {rule} failed: the run has no metric {self.metric!r}"
        return f"gate {rule} failed: {self.metric} is {self.actual:g}"


def missing_gate_metrics(gates: Sequence[Mapping[str, Any]], metrics: Mapping[str, float] | None) -> set[str]:
    """The metrics gates name that the run does not have (yet)."""
    return {g.metric for g in evaluate_gates(gates, metrics) if g.actual is None}


def evaluate_gates(gates: Sequence[Mapping[str, Any]], metrics: Mapping[str, float] | None) -> list[GateResult]:
    """Each gate against the run's latest metrics."""
    metrics = metrics or {}
    results = []
    for gate in gates:
        metric = str(gate["metric"])
        actual = metrics.get(metric)
        results.append(
            GateResult(
                metric, str(gate.get("op") or ">="), float(gate["value"]), None if actual is None else float(actual)
            )
        )
    return results


# --- the model-wide decision ------------------------------------------------------------


@dataclass(frozen=True)
class VersionView:
    """One ModelVersion as the decision needs it (from spec and the current status)."""

    name: str
    uid: str
    version: int | None
    requested: str = NONE
    aliases: tuple[str, ...] = ()
    gates: tuple[Mapping[str, Any], ...] = ()
    metrics: Mapping[str, float] | None = None
    source_ready: bool = False
    stage: str | None = None
    held_aliases: tuple[str, ...] = ()
    superseded_by: str | None = None
    history: tuple[Mapping[str, Any], ...] = ()
    conditions: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> VersionView:
        """From a ModelVersion as the API server returns it (camelCase dicts)."""
        meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        return cls(
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            version=status.get("version"),
            requested=spec.get("stage") or NONE,
            aliases=tuple(spec.get("aliases") or ()),
            gates=tuple(spec.get("gates") or ()),
            metrics=status.get("metrics"),
            source_ready=bool(ready and ready.get("status") == "True"),
            stage=status.get("stage"),
            held_aliases=tuple(status.get("aliases") or ()),
            superseded_by=status.get("supersededBy"),
            history=tuple(status.get("stageHistory") or ()),
            conditions=tuple(status.get("conditions") or ()),
        )


@dataclass(frozen=True)
class Transition:
    from_: str
    to: str
    reason: str
    message: str


@dataclass(frozen=True)
class AliasMove:
    alias: str
    previous_version: int | None


@dataclass
class VersionDecision:
    """The registry part of one version's status, and what changed."""

    name: str
    uid: str
    version: int
    stage: str
    superseded_by: str | None
    aliases: list[str]
    conditions: list[dict[str, Any]]
    history: list[dict[str, Any]]
    transition: Transition | None = None
    alias_moves: list[AliasMove] = field(default_factory=list)
    status_patch: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.status_patch)


def decide_model(views: Sequence[VersionView], *, now: datetime) -> list[VersionDecision]:
    """Every numbered version's effective stage, aliases, conditions and history."""
    numbered = sorted((v for v in views if v.version is not None), key=lambda v: v.version or 0)
    gates = {v.uid: evaluate_gates(v.gates, v.metrics) for v in numbered}
    eligible = {v.uid: v.source_ready and all(g.passed for g in gates[v.uid]) for v in numbered}
    holders: dict[str, VersionView] = {}
    for stage in PROMOTED_STAGES:
        candidates = [v for v in numbered if v.requested == stage and eligible[v.uid]]
        if candidates:
            holders[stage] = candidates[-1]
    alias_holders: dict[str, VersionView] = {}
    # An alias is served as surely as a stage (a ModelDeployment variant may follow one), so
    # only an eligible version holds it; ascending, so the newest eligible claimant ends up
    # holding it, and a newer version that fails its gates leaves it where it was.
    for v in numbered:
        if eligible[v.uid]:
            for alias in v.aliases:
                alias_holders[alias] = v
    previous_alias_owner = {a: v.version for v in numbered for a in v.held_aliases}

    decisions = []
    for v in numbered:
        assert v.version is not None
        stage, superseded_by, why = _effective(v, holders, eligible[v.uid])
        held = sorted(a for a in v.aliases if a in alias_holders and alias_holders[a].uid == v.uid)
        lost = sorted(a for a in v.aliases if a not in held)
        conditions = merge_conditions(
            v.conditions,
            [
                _gates_condition(v, gates[v.uid], now),
                _superseded_condition(v, superseded_by, holders, now),
                _aliases_condition(v, lost, alias_holders, _why_ineligible(v, gates[v.uid]), now),
            ],
        )
        before = v.stage or NONE
        history = [dict(h) for h in v.history]
        transition = None
        if before != stage:
            transition = Transition(before, stage, why, _transition_message(v, before, stage, why, holders))
            history.append({"from": before, "to": stage, "time": rfc3339(now), "reason": why})
            history = history[-MAX_HISTORY:]
        moves = [AliasMove(a, previous_alias_owner.get(a)) for a in held if a not in v.held_aliases]
        decision = VersionDecision(
            v.name, v.uid, v.version, stage, superseded_by, held, conditions, history, transition, moves
        )
        decision.status_patch = _status_patch(v, decision)
        decisions.append(decision)
    return decisions


def _effective(v: VersionView, holders: Mapping[str, VersionView], eligible: bool) -> tuple[str, str | None, str]:
    if v.requested not in PROMOTED_STAGES:
        return (v.requested if v.requested in (NONE, ARCHIVED) else NONE), None, "Requested"
    if not v.source_ready:
        return NONE, None, "SourceNotReady"
    if not eligible:
        return NONE, None, "GatesFailed"
    holder = holders[v.requested]
    if holder.uid == v.uid:
        return v.requested, None, "Requested"
    return ARCHIVED, holder.name, "Superseded"


def _gates_condition(v: VersionView, results: Sequence[GateResult], now: datetime) -> dict[str, Any]:
    failed = [g for g in results if not g.passed]
    status: ConditionStatus
    if not results:
        status, reason, message = "True", "NoGates", "No gates are set."
    elif v.metrics is None:
        status, reason, message = "Unknown", "MetricsUnknown", "The source run's metrics are not known yet."
    elif failed:
        status, reason = "False", "GateFailed"
        message = "; ".join(g.describe() for g in failed) + (
            f". Version {v.version} cannot take effect as Staging or Production or hold an alias." if v.version else "."
        )
    else:
        status, reason = "True", "AllGatesPassed"
        message = "All gates hold: " + ", ".join(f"{g.metric} {g.op} {g.value:g}" for g in results) + "."
    return make_condition(GATES_PASSED, status, reason, message, now=now)


def _superseded_condition(
    v: VersionView, by: str | None, holders: Mapping[str, VersionView], now: datetime
) -> dict[str, Any]:
    if by is None:
        return make_condition(
            SUPERSEDED, "False", "NotSuperseded", "No newer version holds the requested stage.", now=now
        )
    holder = holders[v.requested]
    return make_condition(
        SUPERSEDED,
        "True",
        "NewerVersionHoldsStage",
        f"Version {holder.version} ({holder.name}) is newer and holds {v.requested}; this version is "
        "effective Archived until that changes.",
        now=now,
    )


def _why_ineligible(v: VersionView, results: Sequence[GateResult]) -> tuple[str, str] | None:
    """(reason, message) when the version may hold no stage or alias; None when it may."""
    if not v.source_ready:
        return "SourceNotReady", "its source is not resolved yet"
    failed = [g for g in results if not g.passed]
    if failed:
        return "GateFailed", "; ".join(g.describe() for g in failed)
    return None


def _aliases_condition(
    v: VersionView,
    lost: Sequence[str],
    holders: Mapping[str, VersionView],
    ineligible: tuple[str, str] | None,
    now: datetime,
) -> dict[str, Any]:
    if not lost:
        return make_condition(
            ALIASES_HELD, "True", "AllAliasesHeld", "This version holds every alias it claims.", now=now
        )
    if ineligible is not None:
        reason, why = ineligible
        elsewhere = [f"{a!r} stays with version {holders[a].version} ({holders[a].name})" for a in lost if a in holders]
        message = f"This version holds none of its aliases ({', '.join(repr(a) for a in lost)}): {why}."
        if elsewhere:
            message += " " + "; ".join(elsewhere) + "."
        return make_condition(ALIASES_HELD, "False", reason, message, now=now)
    parts = [f"alias {a!r} is held by newer version {holders[a].version} ({holders[a].name})" for a in lost]
    return make_condition(ALIASES_HELD, "False", "AliasHeldByNewerVersion", "; ".join(parts) + ".", now=now)


def _transition_message(v: VersionView, before: str, after: str, why: str, holders: Mapping[str, VersionView]) -> str:
    text = f"Version {v.version} of model: {before} -> {after}"
    if why == "Superseded":
        holder = holders[v.requested]
        return f"{text} (superseded by version {holder.version}, {holder.name})"
    if why != "Requested":
        return f"{text} ({why})"
    return text


def _status_patch(v: VersionView, d: VersionDecision) -> dict[str, Any]:
    """Only the registry fields that differ from the current status."""
    patch: dict[str, Any] = {}
    if v.stage != d.stage:
        patch["stage"] = d.stage
    if v.superseded_by != d.superseded_by:
        patch["supersededBy"] = d.superseded_by
    if list(v.held_aliases) != d.aliases:
        patch["aliases"] = d.aliases
    if [dict(h) for h in v.history] != d.history:
        patch["stageHistory"] = d.history
    if [dict(c) for c in v.conditions] != d.conditions:
        patch["conditions"] = d.conditions
    return patch


# --- webhook events ----------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryEvent:
    """One webhook event, with a delivery id that is the same each time it is derived."""

    delivery_id: str
    entity: str
    action: str
    data: dict[str, Any]


def _id(*parts: object) -> str:
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()[:32]


def version_created_event(model: str, uid: str, version: int, obj: Mapping[str, Any]) -> RegistryEvent:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    meta = obj.get("metadata") or {}
    return RegistryEvent(
        _id(uid, "created"),
        "model_version",
        "created",
        {
            "name": model,
            "version": str(version),
            "source": spec.get("source"),
            "run_id": status.get("runId"),
            "tags": spec.get("tags") or {},
            "description": spec.get("description"),
            "namespace": meta.get("namespace"),
            "object": meta.get("name"),
        },
    )


def decision_events(model: str, namespace: str | None, d: VersionDecision) -> list[RegistryEvent]:
    """Stage-transition and alias events for one decision; ids derive from the history."""
    events = []
    base = {"name": model, "version": str(d.version), "namespace": namespace, "object": d.name}
    if d.transition is not None:
        t = d.transition
        events.append(
            RegistryEvent(
                _id(d.uid, "stage", len(d.history), t.from_, t.to),
                "model_version_stage",
                "transitioned",
                {**base, "from_stage": t.from_, "to_stage": t.to, "reason": t.reason},
            )
        )
    for move in d.alias_moves:
        events.append(
            RegistryEvent(
                _id(d.uid, "alias", move.alias, len(d.history), move.previous_version),
                "model_version_alias",
                "created",
                {
                    **base,
                    "alias": move.alias,
                    "previous_version": None if move.previous_version is None else str(move.previous_version),
                },
            )
        )
    return events


# --- the operator's view of objects, kept from watches and its own writes ---------------------


def is_newer(incoming: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    """Whether ``incoming`` is a later state of the object than ``current`` (None: nothing yet).

    By ``metadata.resourceVersion``. The API calls it opaque, but every API server keeps it
    as etcd's revision, an integer that grows with each write, and the same object comes to
    the operator two ways (its watch, and the answers to its own writes) in either order;
    comparing them is how the older copy loses. Should one not be an integer, the incoming
    copy wins (it is the one just received), as a store without this rule would do.
    """
    if current is None:
        return True
    new = (incoming.get("metadata") or {}).get("resourceVersion")
    old = (current.get("metadata") or {}).get("resourceVersion")
    if isinstance(new, str) and isinstance(old, str) and new.isdigit() and old.isdigit():
        return int(new) > int(old)
    return True
