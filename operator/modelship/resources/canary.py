"""A variant's canary: steps, the analysis of the new version's own metrics, promote or roll back.

When a variant with ``strategy.type: Canary`` is to serve a new version while it serves
another, the new version runs beside the old one (a second Deployment, track ``canary``)
and takes ``steps[i].weight`` percent of the variant's traffic for ``pauseSeconds`` each.
At the end of each step the error rate and the p99 latency of the canary's predictions
during that step (the difference of its pods' ``/metrics`` counters since the step began)
are held against ``analysis``: a failure rolls back (the canary goes, the variant keeps its
old version, and the ModelDeployment is Degraded with the figures), and passing the last
step promotes (the stable Deployment rolls to the new version, then the canary goes).

The whole state is ``status.canary``, so an operator restarted mid-way resumes the step it
was in. Pure: the clock and the scraped metrics are arguments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelship.api.modeldeployment import Analysis, Strategy
from modelship.resources.conditions import rfc3339

PREDICT_ENDPOINTS = ("invocations", "v2_infer")
DEFAULT_STEPS = ((10, 60), (25, 60), (50, 60))


@dataclass(frozen=True)
class Snapshot:
    """Cumulative prediction counters of the canary's pods."""

    requests: float = 0.0
    errors: float = 0.0  # 5xx answers
    buckets: tuple[tuple[float, float], ...] = ()  # (upper bound in seconds, cumulative count)

    def wire(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "buckets": [[("+Inf" if math.isinf(le) else le), n] for le, n in self.buckets],
        }

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any] | None) -> Snapshot:
        raw = raw or {}
        buckets = tuple((math.inf if le == "+Inf" else float(le), float(n)) for le, n in raw.get("buckets") or [])
        return cls(float(raw.get("requests") or 0), float(raw.get("errors") or 0), buckets)

    def __add__(self, other: Snapshot) -> Snapshot:
        merged: dict[float, float] = {}
        for le, n in (*self.buckets, *other.buckets):
            merged[le] = merged.get(le, 0.0) + n
        return Snapshot(self.requests + other.requests, self.errors + other.errors, tuple(sorted(merged.items())))

    def since(self, base: Snapshot) -> Snapshot:
        """What happened after ``base`` (a pod restart makes a counter drop: then it counts from 0)."""
        old = dict(base.buckets)
        requests = self.requests - base.requests
        if requests < 0:
            return self
        buckets = tuple((le, max(0.0, n - old.get(le, 0.0))) for le, n in self.buckets)
        return Snapshot(requests, max(0.0, self.errors - base.errors), buckets)


def _labels(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip().strip('"')
    return out


def parse_metrics(text: str) -> Snapshot:
    """Prediction requests, 5xx answers and the latency histogram from a model server's /metrics."""
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        name, rest = line.split("{", 1)
        labels_text, _, value = rest.rpartition("}")
        labels = _labels(labels_text)
        if labels.get("endpoint") not in PREDICT_ENDPOINTS:
            continue
        try:
            number = float(value.strip().split()[0])
        except (ValueError, IndexError):
            continue
        if name == "modelship_requests_total":
            requests += number
            if labels.get("status", "").startswith("5"):
                errors += number
        elif name == "modelship_request_duration_seconds_bucket":
            le = math.inf if labels.get("le") == "+Inf" else float(labels.get("le", "inf"))
            buckets[le] = buckets.get(le, 0.0) + number
    return Snapshot(requests, errors, tuple(sorted(buckets.items())))


def total(snapshots: Iterable[Snapshot]) -> Snapshot:
    out = Snapshot()
    for s in snapshots:
        out = out + s
    return out


def p99_ms(snapshot: Snapshot) -> float | None:
    """The 99th percentile latency (the upper bound of its histogram bucket), in ms."""
    count = max((n for _, n in snapshot.buckets), default=0.0)
    if count <= 0:
        return None
    for le, n in snapshot.buckets:
        if n >= 0.99 * count:
            return le * 1000.0
    return math.inf


@dataclass(frozen=True)
class Evaluation:
    requests: int
    errors: int
    error_rate: float
    p99_ms: float | None
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures

    def figures(self) -> str:
        p99 = "n/a" if self.p99_ms is None else ("over 10 s" if math.isinf(self.p99_ms) else f"{self.p99_ms:.0f} ms")
        return f"{self.requests} requests, {self.errors} errors ({self.error_rate:.1%}), p99 {p99}"

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"requests": self.requests, "errors": self.errors, "errorRate": round(self.error_rate, 4)}
        if self.p99_ms is not None and not math.isinf(self.p99_ms):
            out["p99Ms"] = round(self.p99_ms, 1)
        return out


def evaluate(delta: Snapshot, analysis: Analysis) -> Evaluation:
    """Hold one step's figures against the thresholds."""
    requests = int(delta.requests)
    errors = int(delta.errors)
    rate = errors / requests if requests else 0.0
    p99 = p99_ms(delta)
    failures = []
    if requests < analysis.min_requests:
        failures.append(
            f"only {requests} requests reached the canary (analysis.minRequests is {analysis.min_requests})"
        )
    if requests and rate > analysis.max_error_rate:
        failures.append(f"error rate {rate:.1%} is over analysis.maxErrorRate {analysis.max_error_rate:.1%}")
    if analysis.max_p99_latency_ms is not None and p99 is not None and p99 > analysis.max_p99_latency_ms:
        failures.append(f"p99 {p99:.0f} ms is over analysis.maxP99LatencyMs {analysis.max_p99_latency_ms:.0f}")
    return Evaluation(requests, errors, rate, p99, tuple(failures))


def steps_of(strategy: Strategy) -> list[tuple[int, int]]:
    if strategy.steps:
        return [(s.weight, s.pause_seconds) for s in strategy.steps]
    return list(DEFAULT_STEPS)


@dataclass(frozen=True)
class Decision:
    """What the canary of one variant does now, and its next ``status.canary``."""

    state: dict[str, Any] | None
    action: str  # none | start | wait | advance | promote | rollback | held
    event: str | None = None
    weight: int = 0  # the canary's share of the variant's traffic now, in percent


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def decide(
    state: Mapping[str, Any] | None,
    *,
    variant: str,
    serving_version: int | None,
    wanted_version: int,
    strategy: Strategy,
    now: datetime,
    snapshot: Snapshot | None,
    canary_ready: bool,
) -> Decision:
    """One tick of a variant's canary.

    ``serving_version`` is what the stable Deployment serves (None when there is none yet,
    and then no canary: the first version just rolls out); ``wanted_version`` is what the
    registry resolves now; ``snapshot`` the canary pods' counters (None when unreachable).
    """
    analysis = strategy.analysis or Analysis()
    steps = steps_of(strategy)
    if state and state.get("variant") == variant:
        to = int(state["toVersion"])
        if state.get("phase") == "RolledBack":
            if wanted_version == to:
                return Decision(dict(state), "held")  # the registry still wants what failed: keep the old one
            state = None  # another version is wanted: a fresh start below
        elif wanted_version != to:
            # The registry moved on mid-way (or back): drop this canary; start again below.
            state = None
    if not state:
        if serving_version is None or serving_version == wanted_version:
            return Decision(None, "none")
        first = {
            "variant": variant,
            "fromVersion": serving_version,
            "toVersion": wanted_version,
            "phase": "Progressing",
            "step": 0,
            "steps": len(steps),
            "stepStartedAt": None,
            "baseline": None,
            "analysis": None,
            "message": "starting the canary pods",
        }
        return Decision(first, "start", f"canary of {variant}: version {serving_version} -> {wanted_version}", weight=0)
    st = dict(state)
    step = int(st["step"])
    if st.get("phase") == "Promoting":
        return Decision(st, "promote", weight=100)
    weight, pause = steps[min(step, len(steps) - 1)]
    if not canary_ready or snapshot is None:
        st["message"] = f"waiting for the canary pods of version {st['toVersion']} to be Ready"
        return Decision(st, "wait", weight=0 if st.get("stepStartedAt") is None else weight)
    if st.get("stepStartedAt") is None:
        st.update(
            stepStartedAt=rfc3339(now),
            baseline=snapshot.wire(),
            message=f"step {step + 1}/{len(steps)}: {weight}% of {variant}'s traffic for {pause}s",
        )
        return Decision(st, "advance", weight=weight)
    elapsed = (now - _parse_time(st["stepStartedAt"])).total_seconds()
    if elapsed < pause:
        return Decision(st, "wait", weight=weight)
    result = evaluate(snapshot.since(Snapshot.from_wire(st.get("baseline"))), analysis)
    st["analysis"] = result.wire()
    if not result.passed:
        st.update(
            phase="RolledBack",
            message=(
                f"version {st['toVersion']} rolled back at step {step + 1}/{len(steps)}: {'; '.join(result.failures)} "
                f"({result.figures()}); version {st['fromVersion']} serves"
            ),
        )
        return Decision(st, "rollback", st["message"], weight=0)
    if step + 1 >= len(steps):
        st.update(
            phase="Promoting",
            step=step + 1,
            message=(
                f"version {st['toVersion']} passed {len(steps)} steps ({result.figures()} in the last); promoting"
            ),
        )
        return Decision(st, "promote", st["message"], weight=100)
    next_weight, next_pause = steps[step + 1]
    st.update(
        step=step + 1,
        stepStartedAt=rfc3339(now),
        baseline=snapshot.wire(),
        message=(
            f"step {step + 2}/{len(steps)}: {next_weight}% of {variant}'s traffic for {next_pause}s "
            f"(step {step + 1}: {result.figures()})"
        ),
    )
    return Decision(st, "advance", weight=next_weight)


def rollout_summary(state: Mapping[str, Any] | None) -> str:
    """``Canary 2/4 v7``, ``RolledBack v7`` or ``Stable``."""
    if not state:
        return "Stable"
    if state.get("phase") == "RolledBack":
        return f"RolledBack v{state['toVersion']}"
    if state.get("phase") == "Promoting":
        return f"Promoting v{state['toVersion']}"
    return f"Canary {int(state['step']) + 1}/{state['steps']} v{state['toVersion']}"
