"""controllers.modelversion.reconcile with the API layer faked: order of steps, Ready, retries."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
import pytest

from modelship.controllers import modelversion, registry
from modelship.controllers.registry_source import Resolved, SourceError, find_in_registry
from modelship.controllers.settings import OperatorConfig

BODY = {
    "apiVersion": "modelship.io/v1alpha1",
    "kind": "ModelVersion",
    "metadata": {"name": "x", "namespace": "ns", "uid": "u1", "generation": 1},
    "spec": {"model": "iris", "source": "runs:/r1/model"},
}


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {"assigned": 0}

    def assign(namespace: str, model: str, uid: str, **_: Any) -> registry.Claim:
        seen["assigned"] += 1
        return registry.Claim(7, False)

    def sync(namespace: str, model: str, *, own: registry.Own, **_: Any) -> registry.SyncResult:
        seen["own"] = own
        return registry.SyncResult([], {}, [])

    monkeypatch.setattr(registry, "assign_version", assign)
    monkeypatch.setattr(registry, "sync_model", sync)
    return seen


def _run(body: dict[str, Any], resolve: Any, monkeypatch: pytest.MonkeyPatch, retry: int = 0) -> kopf.Patch:
    monkeypatch.setattr(modelversion, "resolve", resolve)
    patch = kopf.Patch()
    memo = kopf.Memo(config=OperatorConfig(tracking_url="http://t"))
    asyncio.run(
        modelversion.reconcile(body=kopf.Body(body), patch=patch, logger=logging.getLogger("t"), memo=memo, retry=retry)
    )
    return patch


def test_numbers_resolves_and_writes_through_the_model_writer(
    fakes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    resolved = Resolved("mlflow-artifacts:/1/r1/artifacts/model", "r1", {"inputs": "[]"}, {"accuracy": 0.9})
    patch = _run(BODY, lambda *a, **k: resolved, monkeypatch)
    own: registry.Own = fakes["own"]
    assert fakes["assigned"] == 1
    assert own.status["version"] == 7 and own.status["metrics"] == {"accuracy": 0.9}
    assert own.status["runId"] == "r1" and own.status["observedGeneration"] == 1
    assert own.conditions[0]["type"] == "Ready" and own.conditions[0]["status"] == "True"
    assert "status" not in patch  # status goes through the per-model writer, not kopf's patch


def test_a_numbered_version_is_not_numbered_again(fakes: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _run({**BODY, "status": {"version": 3}}, lambda *a, **k: Resolved("file:///m"), monkeypatch)
    assert fakes["assigned"] == 0 and fakes["own"].status["version"] == 3


@pytest.mark.parametrize(("retry", "delay"), [(0, 5.0), (1, 10.0), (3, 40.0), (10, 300.0)])
def test_a_missing_source_is_ready_false_and_retried_with_backoff(
    fakes: dict[str, Any], monkeypatch: pytest.MonkeyPatch, retry: int, delay: float
) -> None:
    def missing(*_: Any, **__: Any) -> Resolved:
        raise SourceError("RunNotFound", "runs:/r1/model: run r1 not found")

    with pytest.raises(kopf.TemporaryError) as raised:
        _run(BODY, missing, monkeypatch, retry=retry)
    assert raised.value.delay == delay
    ready = fakes["own"].conditions[0]
    assert (ready["status"], ready["reason"]) == ("False", "RunNotFound")
    assert fakes["own"].status["version"] == 7  # numbered even before the source resolves


def test_an_invalid_spec_is_refused_before_numbering(fakes: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(kopf.PermanentError):
        _run({**BODY, "spec": {"model": "iris"}}, lambda *a, **k: None, monkeypatch)
    assert fakes["assigned"] == 0


@pytest.mark.parametrize(
    ("ref", "version"),
    [("2", 2), ("latest", 3), ("Production", 2), ("production", 2), ("@champion", 1), ("9", None), ("Staging", None)],
)
def test_models_uri_lookup(ref: str, version: int | None) -> None:
    objs = [
        {"spec": {"model": "iris"}, "status": {"version": 1, "stage": "None", "aliases": ["champion"]}},
        {"spec": {"model": "iris"}, "status": {"version": 2, "stage": "Production"}},
        {"spec": {"model": "iris"}, "status": {"version": 3, "stage": "Archived"}},
        {"spec": {"model": "other"}, "status": {"version": 4, "stage": "Staging"}},
    ]
    got = find_in_registry(objs, "iris", ref)
    assert (got or {}).get("version") == version


@pytest.mark.parametrize(
    ("source", "logged"),
    [
        ("models:/m-0123456789abcdef", True),  # MLflow 3 log_model(registered_model_name=...)
        ("models:/m-0123/1", False),  # version 1 of a registered model named m-0123
        ("models:/m-0123@champion", False),
        ("models:/iris/Production", False),
        ("models:/iris", False),
    ],
)
def test_a_logged_model_source_is_told_from_a_registry_reference(source: str, logged: bool) -> None:
    """The scheme table tells them apart (``registry_source.resolve`` sends a logged model to
    the tracking server, a registry reference to the registry)."""
    from modelship.uris import ModelsURI, URIError, parse

    try:
        ref = parse(source)
    except URIError:  # models:/iris names no version: not a logged model either
        ref = None
    assert (isinstance(ref, ModelsURI) and ref.logged_model_id is not None) is logged
