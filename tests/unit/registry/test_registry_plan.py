"""resources.registry_api: MLflow registry requests as objects and spec changes (pure, table-driven)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from modelship.api import RegisteredModelSpec
from modelship.resources import registry_api as plan
from modelship.resources.registry_api import SpecChange

NOW = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)


def mv(name: str, version: int | None, stage: str = "None", aliases: list[str] | None = None, **status: Any) -> dict:
    spec: dict[str, Any] = {"model": "iris", "source": "runs:/r/model", "stage": stage}
    if aliases is not None:
        spec["aliases"] = aliases
    st = {"version": version, **status} if version is not None else dict(status)
    return {"metadata": {"name": name}, "spec": spec, "status": st}


VERSIONS = [
    mv("a", 1, "Production", ["champion", "stable"]),
    mv("b", 2, "Staging"),
    mv("c", 3, "Production"),
    mv("d", None),
]


# --- names and new objects -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "object_name"),
    [
        ("iris", "iris"),
        ("fraud.v2", "fraud.v2"),
        ("Iris", "iris-" + __import__("hashlib").sha256(b"Iris").hexdigest()[:10]),
        ("my_model", "my-model-" + __import__("hashlib").sha256(b"my_model").hexdigest()[:10]),
        ("-", "model-" + __import__("hashlib").sha256(b"-").hexdigest()[:10]),
    ],
)
def test_registered_model_object_name(model: str, object_name: str) -> None:
    assert plan.registered_model_object_name(model) == object_name


def test_names_that_differ_in_case_get_different_objects() -> None:
    assert plan.registered_model_object_name("Iris") != plan.registered_model_object_name("iris")


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "-lead", "x" * 254])
def test_bad_model_names_are_refused_naming_the_rule(bad: str) -> None:
    with pytest.raises(ValueError, match="Invalid registered model name"):
        plan.registered_model_body(bad, "ml")


def test_registered_model_body_is_labelled_and_valid() -> None:
    body = plan.registered_model_body("Iris", "ml", description="Flowers.", tags={"team": "ml"})
    assert body["apiVersion"] == "modelship.io/v1alpha1" and body["kind"] == "RegisteredModel"
    assert body["metadata"]["namespace"] == "ml"
    assert body["metadata"]["labels"] == {"modelship.io/created-by": "tracking-api"}
    assert body["metadata"]["annotations"] == {"modelship.io/model": "Iris"}
    assert RegisteredModelSpec.model_validate(body["spec"]).wire() == {
        "model": "Iris",
        "description": "Flowers.",
        "tags": {"team": "ml"},
    }


def test_model_version_body_has_a_generated_name_and_no_number() -> None:
    body = plan.model_version_body("My_Model", "ml", "runs:/r/model", tags={"k": "v"})
    assert body["metadata"]["generateName"] == "my-model-" and "name" not in body["metadata"]
    assert body["metadata"]["labels"]["modelship.io/created-by"] == "tracking-api"
    assert body["spec"] == {"model": "My_Model", "source": "runs:/r/model", "stage": "None", "tags": {"k": "v"}}
    assert "status" not in body
    with pytest.raises(ValueError, match="'source'"):
        plan.model_version_body("iris", "ml", "")


ROOT = "mlflow-artifacts:/1/abc/artifacts"


@pytest.mark.parametrize(
    ("source", "run_id", "root", "expected"),
    [
        (f"{ROOT}/model", "abc", ROOT, "runs:/abc/model"),  # register_model("runs:/abc/model"), MLflow 2 layout
        (f"{ROOT}/a/b", "abc", ROOT + "/", "runs:/abc/a/b"),
        (ROOT, "abc", ROOT, "runs:/abc/"),
        ("models:/m-0123", "abc", ROOT, "models:/m-0123"),  # MLflow 3 logged model: kept
        ("runs:/abc/model", "abc", ROOT, "runs:/abc/model"),
        ("s3://bucket/model", "abc", ROOT, "s3://bucket/model"),  # not under the run: kept
        (f"{ROOT}/model", None, None, f"{ROOT}/model"),  # no run id
        (f"{ROOT}/model", "abc", None, f"{ROOT}/model"),  # not a run of this server
        (f"{ROOT}x/model", "abc", ROOT, f"{ROOT}x/model"),  # a sibling prefix is not the run
    ],
)
def test_version_source(source: str, run_id: str | None, root: str | None, expected: str) -> None:
    assert plan.version_source(source, run_id, root) == expected


# --- MLflow request -> spec change ------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "stage", "archive", "changes"),
    [
        (2, "Production", False, [SpecChange("b", {"spec": {"stage": "Production"}})]),
        (
            2,
            "production",
            True,
            [
                SpecChange("b", {"spec": {"stage": "Production"}}),
                SpecChange("a", {"spec": {"stage": "Archived"}}),
                SpecChange("c", {"spec": {"stage": "Archived"}}),
            ],
        ),
        (
            "3",
            "Staging",
            True,
            [SpecChange("c", {"spec": {"stage": "Staging"}}), SpecChange("b", {"spec": {"stage": "Archived"}})],
        ),
        (1, "Archived", True, [SpecChange("a", {"spec": {"stage": "Archived"}})]),  # archive_existing: promotions only
        (1, "NONE", False, [SpecChange("a", {"spec": {"stage": "None"}})]),
    ],
)
def test_plan_stage(version: Any, stage: str, archive: bool, changes: list[SpecChange]) -> None:
    assert plan.plan_stage(VERSIONS, "iris", version, stage, archive_existing=archive) == changes


@pytest.mark.parametrize(
    ("version", "stage", "error", "match"),
    [
        (9, "Production", LookupError, r"Model Version \(name=iris, version=9\) not found"),
        (2, "Shipped", ValueError, "Invalid Model Version stage: Shipped"),
    ],
)
def test_plan_stage_errors(version: int, stage: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        plan.plan_stage(VERSIONS, "iris", version, stage, archive_existing=False)


@pytest.mark.parametrize(
    ("alias", "version", "changes"),
    [
        # moves champion from a to c: c first (a reader sees the new holder before the old lets go)
        (
            "champion",
            3,
            [
                SpecChange("c", {"spec": {"aliases": ["champion"]}}),
                SpecChange("a", {"spec": {"aliases": ["stable"]}}),
            ],
        ),
        ("champion", 1, []),  # already there
        (
            "stable",
            2,
            [SpecChange("b", {"spec": {"aliases": ["stable"]}}), SpecChange("a", {"spec": {"aliases": ["champion"]}})],
        ),
        ("new", "1", [SpecChange("a", {"spec": {"aliases": ["champion", "stable", "new"]}})]),
    ],
)
def test_plan_set_alias(alias: str, version: Any, changes: list[SpecChange]) -> None:
    assert plan.plan_set_alias(VERSIONS, "iris", alias, version) == changes


def test_a_last_alias_removed_removes_the_field() -> None:
    versions = [mv("a", 1, aliases=["champion"]), mv("b", 2)]
    assert plan.plan_set_alias(versions, "iris", "champion", 2) == [
        SpecChange("b", {"spec": {"aliases": ["champion"]}}),
        SpecChange("a", {"spec": {"aliases": None}}),
    ]
    assert plan.plan_delete_alias(versions, "champion") == [SpecChange("a", {"spec": {"aliases": None}})]
    assert plan.plan_delete_alias(versions, "nobody") == []


@pytest.mark.parametrize(
    ("alias", "match"),
    [
        ("latest", "cannot be 'latest'"),
        ("v3", "cannot be 'latest'"),
        ("has space", "Invalid alias"),
        ("", "Invalid alias"),
    ],
)
def test_bad_aliases_are_refused(alias: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plan.plan_set_alias(VERSIONS, "iris", alias, 1)


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (plan.tag_patch("team", "ml"), {"spec": {"tags": {"team": "ml"}}}),
        (plan.tag_patch("team", None), {"spec": {"tags": {"team": None}}}),  # merge patch: null deletes the key
        (plan.tag_patch("k", ""), {"spec": {"tags": {"k": ""}}}),
        (plan.description_patch("Flowers."), {"spec": {"description": "Flowers."}}),
        (plan.description_patch(""), {"spec": {"description": None}}),
    ],
)
def test_tag_and_description_patches(patch: dict[str, Any], expected: dict[str, Any]) -> None:
    assert patch == expected


def test_tags_from_mlflow() -> None:
    assert plan.tags_dict([{"key": "a", "value": "1"}, {"key": "b", "value": None}, {"key": "a", "value": "2"}]) == {
        "a": "2",
        "b": "",
    }
    assert plan.tags_dict(None) == {}
    with pytest.raises(ValueError, match="'key'"):
        plan.tags_dict([{"value": "x"}])
    with pytest.raises(ValueError, match="'key'"):
        plan.tag_patch("", "x")


# --- the model-level view ---------------------------------------------------------------------


def decided(name: str, version: int | None, stage: str = "None", aliases: list[str] | None = None) -> dict:
    """A version as the operator left it: the effective stage and held aliases in status."""
    obj = mv(name, version)
    obj["status"].update({"stage": stage, "aliases": aliases or []})
    return obj


def test_registered_model_status_from_versions() -> None:
    versions = [
        decided("a", 1, "Archived", ["stable"]),
        decided("b", 2, "Production", ["champion"]),
        decided("c", 3, "Staging"),
        decided("d", 4),
        decided("e", None),
    ]
    st = plan.registered_model_status("iris", versions, duplicate_of=None, generation=3, now=NOW)
    assert st["versionCount"] == 4 and st["latestVersion"] == 4
    assert (st["production"], st["staging"]) == (2, 3)
    assert st["latestVersions"] == [
        {"stage": "None", "version": 4, "modelVersion": "d"},
        {"stage": "Staging", "version": 3, "modelVersion": "c"},
        {"stage": "Production", "version": 2, "modelVersion": "b"},
        {"stage": "Archived", "version": 1, "modelVersion": "a"},
    ]
    assert st["aliases"] == [
        {"alias": "champion", "version": 2, "modelVersion": "b"},
        {"alias": "stable", "version": 1, "modelVersion": "a"},
    ]
    (ready,) = st["conditions"]
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "VersionsListed", 3)
    assert ready["message"] == "4 version(s) of iris; Production: version 2."
    assert st["observedGeneration"] == 3


def test_registered_model_status_of_an_empty_model_and_a_duplicate() -> None:
    empty = plan.registered_model_status("iris", [], duplicate_of=None, generation=1, now=NOW)
    assert empty["versionCount"] == 0 and empty["latestVersion"] is None and empty["production"] is None
    assert empty["latestVersions"] == [] and empty["aliases"] == []
    dup = plan.registered_model_status("iris", [], duplicate_of="iris", generation=1, now=NOW)
    (ready,) = dup["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "DuplicateModel") and "RegisteredModel iris" in ready[
        "message"
    ]


def test_registered_model_status_keeps_the_transition_time_while_ready_holds() -> None:
    first = plan.registered_model_status("iris", [], duplicate_of=None, generation=1, now=NOW)["conditions"][0]
    later = datetime(2026, 3, 1, tzinfo=UTC)
    again = plan.registered_model_status(
        "iris", [mv("a", 1)], duplicate_of=None, generation=1, now=later, previous_ready=first
    )
    assert again["conditions"][0]["lastTransitionTime"] == first["lastTransitionTime"]
    flipped = plan.registered_model_status("iris", [], duplicate_of="x", generation=1, now=later, previous_ready=first)
    assert flipped["conditions"][0]["lastTransitionTime"] == "2026-03-01T00:00:00Z"


RUN_DIR = "file:///data/1/abc/artifacts"
MODEL_ROOT = "mlflow-artifacts:/1/models/m-0123/artifacts"


@pytest.mark.parametrize(
    ("source", "ids"),
    [
        ("runs:/no-such-run/model", {"run_id": "no-such-run"}),  # a run it does not know: MLflow records it
        ("models:/m-0123", {"model_id": "m-0123"}),  # a logged model, with or without an MLmodel
        ("models:/iris/3", {"run_id": "abc"}),  # a registry source
        (f"{ROOT}/model", {"run_id": "abc", "run_artifact_uri": ROOT}),  # register_model("runs:/abc/model")
        (f"{MODEL_ROOT}/", {"model_id": "m-0123", "model_artifact_uri": MODEL_ROOT}),
        ("s3://bucket/model", {}),
        ("/data/1/abc/artifacts", {"run_id": "abc", "run_artifact_uri": RUN_DIR}),  # local, in the run's artifacts
        ("file:///data/1/abc/artifacts/model", {"run_id": "abc", "run_artifact_uri": RUN_DIR}),
        ("file:///data/1/abc/artifacts/model/..", {"run_id": "abc", "run_artifact_uri": RUN_DIR}),  # resolves inside
    ],
)
def test_check_source_accepts_what_mlflow_records(source: str, ids: dict[str, str]) -> None:
    plan.check_source(source, **ids)


@pytest.mark.parametrize(
    ("source", "ids", "words"),
    [
        ("/tmp/model", {}, "To use a local path as a model version source, the run_id"),
        ("file:///tmp", {}, "To use a local path"),
        ("/tmp", {"run_id": "abc", "run_artifact_uri": RUN_DIR}, "To use a local path"),  # not in the run's
        ("/data/1/abcd", {"run_id": "abc", "run_artifact_uri": RUN_DIR}, "To use a local path"),  # a sibling
        ("/data/1/abc/artifacts", {"run_id": "abc", "run_artifact_uri": ROOT}, "To use a local path"),
        ("file:///path/to/model", {"model_id": "m-0123", "model_artifact_uri": MODEL_ROOT}, "the model_id request"),
        ("relative/dir", {"run_id": "abc", "run_artifact_uri": RUN_DIR}, "To use a local path"),
        ("runs:/run_id/model", {"run_id": "run_id_1"}, "The run_id request parameter must identify"),
        ("runs:/abc/model", {}, "The run_id request parameter must identify"),
        ("runs:/abc/model", {"run_id": "abc", "model_id": "m-1"}, "The model_id request parameter must identify"),
        ("models:/m-0123", {}, "The model_id request parameter must identify"),
        ("models:/m-0123", {"model_id": "m-9"}, "The model_id request parameter must identify"),
        (f"{ROOT}/model", {"run_id": "abc"}, "The run_id request"),  # a run this server does not know
        ("mlflow-artifacts:/9/other/artifacts", {"run_id": "abc", "run_artifact_uri": ROOT}, "The run_id request"),
        ("mlflow-artifacts:/a/../b", {}, "without relative path references"),
        ("s3://bucket/%252e%252e/key", {}, "without relative path references"),  # encoded twice
        ("file://10.0.0.1/share/model", {"run_id": "abc", "run_artifact_uri": RUN_DIR}, "is not a valid remote uri"),
        ("", {}, "'source'"),
    ],
)
def test_check_source_refuses_what_mlflow_refuses(source: str, ids: dict[str, str], words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        plan.check_source(source, **ids)


def test_bodies_and_patches_carry_millisecond_stamps_and_the_run_id_sent() -> None:
    body = plan.model_version_body("iris", "ml", "runs:/r/model", run_id="r", now_ms=1767225600123)
    annotations = body["metadata"]["annotations"]
    assert annotations["modelship.io/created-ms"] == annotations["modelship.io/updated-ms"] == "1767225600123"
    assert annotations["modelship.io/run-id"] == "r" and annotations["modelship.io/model"] == "iris"
    rm = plan.registered_model_body("iris", "ml", now_ms=5)["metadata"]["annotations"]
    assert rm["modelship.io/created-ms"] == "5"
    assert "modelship.io/created-ms" not in plan.registered_model_body("iris", "ml")["metadata"]["annotations"]
    patch = plan.stamped(plan.description_patch("x"), 7)
    assert patch == {"spec": {"description": "x"}, "metadata": {"annotations": {"modelship.io/updated-ms": "7"}}}
    assert plan.stamped({}, 8) == {"metadata": {"annotations": {"modelship.io/updated-ms": "8"}}}
