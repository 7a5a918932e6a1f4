"""resources.registry: numbers, effective stages, supersede, aliases, gates, history; table-driven."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from modelship.resources import registry as reg
from modelship.resources.conditions import find_condition

NOW = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)


def v(n: int | None, requested: str = "None", **kw: Any) -> reg.VersionView:
    kw.setdefault("source_ready", True)
    kw.setdefault("metrics", {"accuracy": 0.95})
    return reg.VersionView(name=f"mv-{n}", uid=f"u{n}", version=n, requested=requested, **kw)


def by_version(decisions: list[reg.VersionDecision]) -> dict[int, reg.VersionDecision]:
    return {d.version: d for d in decisions}


# --- counter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "uid", "settled", "version", "patch"),
    [
        (None, "a", [], 1, {"last": "1", "uid-a": "1"}),
        ({"last": "4"}, "a", [], 5, {"last": "5", "uid-a": "5"}),
        # A retry after a crash between the counter write and the status write.
        ({"last": "5", "uid-a": "5"}, "a", [], 5, {}),
        # Settled claims are pruned in the same write; the caller's own is kept.
        (
            {"last": "5", "uid-a": "5", "uid-b": "4"},
            "c",
            ["a", "b"],
            6,
            {"uid-a": None, "uid-b": None, "last": "6", "uid-c": "6"},
        ),
        # A claim above last (a broken writer) is never handed out again.
        ({"last": "2", "uid-x": "7"}, "a", [], 8, {"last": "8", "uid-a": "8"}),
    ],
)
def test_claim_version(data: Any, uid: str, settled: list[str], version: int, patch: dict[str, Any]) -> None:
    update = reg.claim_version(data, uid, settled=settled)
    assert update.version == version
    assert update.data_patch == patch


def test_claims_never_repeat_under_any_interleaving() -> None:
    data: dict[str, str] = {}
    seen = []
    for uid in [f"u{i}" for i in range(20)]:
        update = reg.claim_version(data, uid)
        data.update({k: v for k, v in update.data_patch.items() if v is not None})
        seen.append(update.version)
    assert seen == list(range(1, 21))


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("iris", "modelship-registry-iris-"),
        ("Iris.Classifier_v2", "modelship-registry-iris-classifier-v2-"),
        ("___", "modelship-registry-model-"),
    ],
)
def test_counter_name(model: str, name: str) -> None:
    got = reg.counter_name(model)
    assert got.startswith(name) and len(got) <= 63
    assert got != reg.counter_name(model.upper() + "x")


def test_counter_names_differ_by_case() -> None:
    assert reg.counter_name("Iris") != reg.counter_name("iris")


# --- stages ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("views", "expected"),
    [
        # None and Archived take effect as written.
        ([v(1), v(2, "Archived")], {1: ("None", None), 2: ("Archived", None)}),
        # One Production: effective.
        ([v(1, "Production")], {1: ("Production", None)}),
        # Two ask for Production: the newest holds it, the other is superseded.
        ([v(1, "Production"), v(2, "Production")], {1: ("Archived", "mv-2"), 2: ("Production", None)}),
        # Staging and Production are decided separately.
        (
            [v(1, "Production"), v(2, "Staging"), v(3, "Staging")],
            {1: ("Production", None), 2: ("Archived", "mv-3"), 3: ("Staging", None)},
        ),
        # A version whose gate fails never takes effect, and does not supersede the older one.
        (
            [
                v(1, "Production"),
                v(
                    2,
                    "Production",
                    metrics={"accuracy": 0.5},
                    gates=({"metric": "accuracy", "op": ">=", "value": 0.9},),
                ),
            ],
            {1: ("Production", None), 2: ("None", None)},
        ),
        # An unresolved source cannot hold a stage.
        ([v(1, "Production"), v(2, "Production", source_ready=False)], {1: ("Production", None), 2: ("None", None)}),
        # Not numbered yet: not decided.
        ([v(None, "Production"), v(1, "Production")], {1: ("Production", None)}),
    ],
)
def test_effective_stages(views: list[reg.VersionView], expected: dict[int, tuple[str, str | None]]) -> None:
    got = by_version(reg.decide_model(views, now=NOW))
    assert {n: (d.stage, d.superseded_by) for n, d in got.items()} == expected


def test_superseded_condition_names_the_holder() -> None:
    got = by_version(reg.decide_model([v(1, "Production"), v(2, "Production")], now=NOW))
    cond = find_condition(got[1].conditions, reg.SUPERSEDED)
    assert cond and cond["status"] == "True" and "Version 2 (mv-2)" in cond["message"]
    assert find_condition(got[2].conditions, reg.SUPERSEDED)["status"] == "False"  # type: ignore[index]


@pytest.mark.parametrize(
    ("gates", "metrics", "status", "reason", "words"),
    [
        ((), {"accuracy": 0.1}, "True", "NoGates", ""),
        (({"metric": "accuracy", "op": ">=", "value": 0.9},), {"accuracy": 0.95}, "True", "AllGatesPassed", ""),
        (
            ({"metric": "accuracy", "op": ">=", "value": 0.9},),
            {"accuracy": 0.72},
            "False",
            "GateFailed",
            "gate accuracy >= 0.9 failed: accuracy is 0.72",
        ),
        (({"metric": "loss", "op": "<", "value": 0.3},), {"accuracy": 0.9}, "False", "GateFailed", "no metric 'loss'"),
        (({"metric": "rmse", "op": "<=", "value": 1},), {"rmse": 1.0}, "True", "AllGatesPassed", ""),
        (({"metric": "f1", "op": "==", "value": 0.5},), {"f1": 0.5}, "True", "AllGatesPassed", ""),
        (({"metric": "f1", "op": ">", "value": 0.5},), {"f1": 0.5}, "False", "GateFailed", "f1 > 0.5"),
        (({"metric": "f1", "op": ">", "value": 0.5},), None, "Unknown", "MetricsUnknown", ""),
    ],
)
def test_gates_condition(gates: Any, metrics: Any, status: str, reason: str, words: str) -> None:
    view = v(1, "Staging", gates=gates, metrics=metrics)
    (d,) = reg.decide_model([view], now=NOW)
    cond = find_condition(d.conditions, reg.GATES_PASSED)
    assert cond and (cond["status"], cond["reason"]) == (status, reason)
    assert words in cond["message"]
    assert d.stage == ("Staging" if status == "True" else "None")


# --- aliases -----------------------------------------------------------------------------------


def test_alias_goes_to_the_newest_claimant_and_the_other_gets_a_condition() -> None:
    views = [v(1, aliases=("champion", "stable"), held_aliases=("champion",)), v(2, aliases=("champion",))]
    got = by_version(reg.decide_model(views, now=NOW))
    assert got[1].aliases == ["stable"] and got[2].aliases == ["champion"]
    cond = find_condition(got[1].conditions, reg.ALIASES_HELD)
    assert cond and cond["status"] == "False" and "'champion' is held by newer version 2" in cond["message"]
    assert [(m.alias, m.previous_version) for m in got[2].alias_moves] == [("champion", 1)]
    assert [m.alias for m in got[1].alias_moves] == ["stable"]


GATE = ({"metric": "accuracy", "op": ">=", "value": 0.9},)


@pytest.mark.parametrize(
    ("metrics", "missing"),
    [
        (None, {"accuracy", "eval.f1_score"}),
        ({}, {"accuracy", "eval.f1_score"}),
        ({"accuracy": 0.1}, {"eval.f1_score"}),  # present but failing is not missing
        ({"accuracy": 0.99, "eval.f1_score": 0.5}, set()),
    ],
)
def test_missing_gate_metrics(metrics: Any, missing: set[str]) -> None:
    gates = [*GATE, {"metric": "eval.f1_score", "op": ">", "value": 0.8}]
    assert reg.missing_gate_metrics(gates, metrics) == missing


@pytest.mark.parametrize(
    ("views", "holders", "reason", "words"),
    [
        # a newer version failing its gates leaves the alias with the older eligible one
        (
            [
                v(1, aliases=("champion",), held_aliases=("champion",)),
                v(2, aliases=("champion",), gates=GATE, metrics={"accuracy": 0.5}),
            ],
            {1: ["champion"], 2: []},
            "GateFailed",
            "gate accuracy >= 0.9 failed: accuracy is 0.5",
        ),
        # nobody else claims it: nobody holds it
        (
            [v(1, aliases=("champion",), gates=GATE, metrics={})],
            {1: []},
            "GateFailed",
            "the run has no metric 'accuracy'",
        ),
        # an unresolved source holds no alias either, as it holds no stage
        (
            [v(1, aliases=("champion",)), v(2, aliases=("champion",), source_ready=False)],
            {1: ["champion"], 2: []},
            "SourceNotReady",
            "'champion' stays with version 1 (mv-1)",
        ),
        # once the gates hold, the newer version takes it
        (
            [v(1, aliases=("champion",), held_aliases=("champion",)), v(2, aliases=("champion",), gates=GATE)],
            {1: [], 2: ["champion"]},
            None,
            "",
        ),
    ],
)
def test_only_an_eligible_version_holds_an_alias(
    views: list[reg.VersionView], holders: dict[int, list[str]], reason: str | None, words: str
) -> None:
    got = by_version(reg.decide_model(views, now=NOW))
    assert {n: d.aliases for n, d in got.items()} == holders
    newest = got[max(got)]
    cond = find_condition(newest.conditions, reg.ALIASES_HELD)
    assert cond is not None
    if reason is None:
        assert cond["status"] == "True"
    else:
        assert (cond["status"], cond["reason"]) == ("False", reason) and words in cond["message"], cond


# --- history and patches -----------------------------------------------------------------------


def test_history_records_each_transition_once() -> None:
    (d,) = reg.decide_model([v(1, "Staging", stage="None")], now=NOW)
    assert d.history == [{"from": "None", "to": "Staging", "time": "2026-02-03T04:05:06Z", "reason": "Requested"}]
    assert d.transition and (d.transition.from_, d.transition.to) == ("None", "Staging")
    settled = reg.VersionView(
        **{
            **v(1, "Staging").__dict__,
            "stage": "Staging",
            "history": tuple(d.history),
            "conditions": tuple(d.conditions),
            "held_aliases": (),
        }
    )
    (again,) = reg.decide_model([settled], now=NOW)
    assert again.transition is None and not again.changed


def test_supersede_writes_a_history_entry_with_the_reason() -> None:
    views = [v(1, "Production", stage="Production"), v(2, "Production", stage="Staging")]
    got = by_version(reg.decide_model(views, now=NOW))
    assert got[1].history[-1] == {
        "from": "Production",
        "to": "Archived",
        "time": "2026-02-03T04:05:06Z",
        "reason": "Superseded",
    }
    assert got[2].history[-1]["to"] == "Production"


def test_history_is_bounded() -> None:
    old = tuple({"from": "None", "to": "Staging", "time": "t", "reason": "Requested"} for _ in range(reg.MAX_HISTORY))
    (d,) = reg.decide_model([v(1, "Production", stage="Staging", history=old)], now=NOW)
    assert len(d.history) == reg.MAX_HISTORY and d.history[-1]["to"] == "Production"


def test_from_object_reads_the_wire_shape() -> None:
    obj = {
        "metadata": {"name": "m", "uid": "u"},
        "spec": {
            "model": "iris",
            "stage": "Production",
            "aliases": ["champion"],
            "gates": [{"metric": "accuracy", "value": 0.9}],
        },
        "status": {
            "version": 3,
            "stage": "Staging",
            "metrics": {"accuracy": 0.91},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    view = reg.VersionView.from_object(obj)
    assert (view.version, view.requested, view.aliases, view.source_ready, view.stage) == (
        3,
        "Production",
        ("champion",),
        True,
        "Staging",
    )


# --- events --------------------------------------------------------------------------------------


def test_event_ids_are_deterministic_and_distinct() -> None:
    d1 = reg.decide_model([v(1, "Staging", stage="None")], now=NOW)[0]
    d2 = reg.decide_model([v(1, "Staging", stage="None")], now=datetime(2030, 1, 1, tzinfo=UTC))[0]
    e1, e2 = reg.decision_events("iris", "ns", d1), reg.decision_events("iris", "ns", d2)
    assert [e.delivery_id for e in e1] == [e.delivery_id for e in e2]
    assert e1[0].entity == "model_version_stage" and e1[0].data["to_stage"] == "Staging"
    created = reg.version_created_event("iris", "u1", 1, {"spec": {"source": "runs:/r/model"}})
    assert created.delivery_id not in {e.delivery_id for e in e1}
    assert (created.entity, created.action, created.data["version"]) == ("model_version", "created", "1")
