"""tracking.server.registry: the MLflow registry read API over ModelVersion objects, in-process."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from modelship.tracking.errors import TrackingError
from modelship.tracking.protocol.http import error_response
from modelship.tracking.server.registry import StaticReader, parse_filter, registry_router

API = "/api/2.0/mlflow"


def obj(
    version: int | None,
    stage: str,
    *,
    model: str = "iris",
    aliases: list[str] | None = None,
    ready: str = "True",
    ns: str = "ml",
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "stage": stage,
        "aliases": aliases or [],
        "runId": f"run{version}",
        "artifactUri": f"mlflow-artifacts:/1/run{version}/artifacts/model",
        "conditions": [
            {"type": "Ready", "status": ready, "message": "m", "lastTransitionTime": "2026-01-01T00:00:10Z"}
        ],
    }
    if version is not None:
        status["version"] = version
    return {
        "metadata": {"name": f"{model}-{version}", "namespace": ns, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"model": model, "source": f"runs:/run{version}/model", "tags": {"team": "a"}},
        "status": status,
    }


OBJECTS = [
    obj(1, "Archived"),
    obj(2, "Production", aliases=["champion"]),
    obj(3, "Staging"),
    obj(4, "None"),
    obj(5, "None", ready="False"),
    obj(None, "None"),
    obj(1, "Production", model="wine"),
]


def client(objects: list[dict[str, Any]] = OBJECTS, scoped: bool = True) -> TestClient:
    app = FastAPI()
    app.include_router(registry_router(StaticReader(objects, scoped=scoped)))

    @app.exception_handler(TrackingError)
    async def handle(_: Request, exc: TrackingError) -> Response:
        return error_response(exc)

    return TestClient(app)


def test_get_latest_versions_per_stage() -> None:
    c = client()
    got = c.post(f"{API}/registered-models/get-latest-versions", json={"name": "iris", "stages": ["Production"]})
    assert [(v["version"], v["current_stage"]) for v in got.json()["model_versions"]] == [("2", "Production")]
    every = c.post(f"{API}/registered-models/get-latest-versions", json={"name": "iris"}).json()["model_versions"]
    assert [(v["version"], v["current_stage"]) for v in every] == [
        ("1", "Archived"),
        ("2", "Production"),
        ("3", "Staging"),
        ("5", "None"),
    ]
    get = c.get(f"{API}/registered-models/get-latest-versions", params={"name": "iris", "stages": "staging"})
    assert [v["version"] for v in get.json()["model_versions"]] == ["3"]


def test_model_version_shape_and_alias_lookup() -> None:
    c = client()
    mv = c.get(f"{API}/registered-models/alias", params={"name": "iris", "alias": "champion"}).json()["model_version"]
    assert mv["version"] == "2" and mv["aliases"] == ["champion"] and mv["status"] == "READY"
    assert mv["run_id"] == "run2" and mv["source"].endswith("run2/artifacts/model")
    assert mv["tags"] == [{"key": "team", "value": "a"}]
    assert mv["creation_timestamp"] == 1767225600000 and mv["last_updated_timestamp"] == 1767225610000
    failed = c.get(f"{API}/model-versions/get", params={"name": "iris", "version": "5"}).json()["model_version"]
    # Numbered is registered, as MLflow's store has it (it never checks a source); the
    # unresolved source is said in status_message (and keeps the version from Staging/Production).
    assert failed["status"] == "READY" and failed["status_message"].startswith("Source not resolved (")
    uri = c.get(f"{API}/model-versions/get-download-uri", params={"name": "iris", "version": "3"}).json()
    assert uri == {"artifact_uri": "mlflow-artifacts:/1/run3/artifacts/model"}


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("registered-models/get", {"name": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("model-versions/get", {"name": "iris", "version": "9"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("registered-models/alias", {"name": "iris", "alias": "nope"}, 400, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_not_found(path: str, params: dict[str, str], status: int, code: str) -> None:
    resp = client().get(f"{API}/{path}", params=params)
    assert resp.status_code == status and resp.json()["error_code"] == code


def test_registered_model_and_search() -> None:
    c = client()
    rm = c.get(f"{API}/registered-models/get", params={"name": "iris"}).json()["registered_model"]
    assert rm["name"] == "iris" and rm["aliases"] == [{"alias": "champion", "version": "2"}]
    assert {v["current_stage"] for v in rm["latest_versions"]} == {"Archived", "Production", "Staging", "None"}
    names = [m["name"] for m in c.get(f"{API}/registered-models/search").json()["registered_models"]]
    assert names == ["iris", "wine"]
    like = c.get(f"{API}/registered-models/search", params={"filter": "name LIKE 'wi%'"}).json()
    assert [m["name"] for m in like["registered_models"]] == ["wine"]
    paged = c.get(f"{API}/registered-models/search", params={"max_results": "1"}).json()
    assert len(paged["registered_models"]) == 1 and paged["next_page_token"] == "1"
    versions = c.get(f"{API}/model-versions/search", params={"filter": "name='iris'"}).json()["model_versions"]
    assert [v["version"] for v in versions] == ["5", "4", "3", "2", "1"]  # the unnumbered one is not listed
    prompts = c.get(
        f"{API}/registered-models/search", params={"filter": "tag.`mlflow.prompt.is_prompt` != 'true'"}
    ).json()["registered_models"]
    assert [m["name"] for m in prompts] == ["iris", "wine"]
    tagged = c.get(f"{API}/model-versions/search", params={"filter": "name='iris' AND tag.team = 'a'"}).json()
    assert len(tagged["model_versions"]) == 5
    by_run = c.get(f"{API}/model-versions/search", params={"filter": "run_id = 'run3'"}).json()["model_versions"]
    assert [v["version"] for v in by_run] == ["3"]


def test_without_a_writer_writes_are_refused_naming_the_setting() -> None:
    resp = client().post(f"{API}/model-versions/transition-stage", json={"name": "iris", "version": "1"})
    body = resp.json()
    assert resp.status_code == 403 and body["error_code"] == "PERMISSION_DENIED"
    assert "--no-registry-writes" in body["message"] and "modelship promote" in body["message"]


def test_a_registered_model_object_gives_description_tags_and_a_model_without_versions() -> None:
    entry = {
        "metadata": {"name": "iris", "namespace": "ml", "creationTimestamp": "2025-12-31T00:00:00Z"},
        "spec": {"model": "iris", "description": "Flowers.", "tags": {"team": "ml"}},
    }
    empty = {
        "metadata": {"name": "empty", "namespace": "ml", "creationTimestamp": "2026-01-02T00:00:00Z"},
        "spec": {"model": "empty"},
    }
    app = FastAPI()
    app.include_router(registry_router(StaticReader(OBJECTS, registered_models=[entry, empty])))
    c = TestClient(app)
    rm = c.get(f"{API}/registered-models/get", params={"name": "iris"}).json()["registered_model"]
    assert rm["description"] == "Flowers." and rm["tags"] == [{"key": "team", "value": "ml"}]
    assert rm["creation_timestamp"] == 1767139200000  # the entry is older than its versions
    got = c.get(f"{API}/registered-models/get", params={"name": "empty"}).json()["registered_model"]
    assert got["latest_versions"] == [] and got["aliases"] == []
    names = [m["name"] for m in c.get(f"{API}/registered-models/search").json()["registered_models"]]
    assert names == ["empty", "iris", "wine"]
    tagged = c.get(f"{API}/registered-models/search", params={"filter": "tag.team = 'ml'"}).json()
    assert [m["name"] for m in tagged["registered_models"]] == ["iris"]


def test_a_name_in_two_namespaces_is_ambiguous_when_unscoped() -> None:
    objects = [obj(1, "None", ns="a"), obj(1, "Production", ns="b")]
    resp = client(objects, scoped=False).get(f"{API}/registered-models/get", params={"name": "iris"})
    assert resp.status_code == 400 and "--registry-namespace" in resp.json()["message"]


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("", []),
        ("name='iris'", [("name", "=", "iris")]),
        ("name = \"a b\" AND run_id != 'x'", [("name", "=", "a b"), ("run_id", "!=", "x")]),
        ("name ILIKE '%IR%'", [("name", "ILIKE", "%IR%")]),
        ("tag.`mlflow.prompt.is_prompt` != 'true'", [("tag.mlflow.prompt.is_prompt", "!=", "true")]),
        ("tags.team = 'a'", [("tag.team", "=", "a")]),
    ],
)
def test_parse_filter(text: str, clauses: list[tuple[str, str, str]]) -> None:
    assert parse_filter(text) == clauses


# --- the hook in the tracking server's create_app --------------------------------------------------


def _app(tmp_path: Any, registry: Any) -> TestClient:
    from modelship.tracking.server.app import create_app
    from modelship.tracking.settings import ServerSettings
    from modelship.tracking.store.sql import TrackingStore

    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path}/t.db", artifacts_destination=str(tmp_path / "art"), auth_token="tok"
    )
    return TestClient(create_app(settings, TrackingStore(settings.backend_store_uri), registry=registry))


def test_create_app_serves_the_registry_and_its_search_posts_need_no_token(tmp_path: Any) -> None:
    c = _app(tmp_path, StaticReader(OBJECTS))
    got = c.post(f"{API}/registered-models/get-latest-versions", json={"name": "iris", "stages": ["Production"]})
    assert got.status_code == 200 and got.json()["model_versions"][0]["version"] == "2"
    assert c.post(f"{API}/model-versions/search", json={"filter": "name='wine'"}).status_code == 200
    refused = c.post(f"{API}/model-versions/transition-stage", json={})
    assert refused.status_code == 401  # a write: the token is checked first


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "registered-models/get"),
        ("POST", "registered-models/search"),
        ("POST", "registered-models/create"),
        ("POST", "model-versions/create"),
        ("POST", "model-versions/transition-stage"),
        ("POST", "registered-models/alias"),
        ("DELETE", "registered-models/alias"),
        ("PATCH", "model-versions/update"),
    ],
)
def test_without_a_reader_the_registry_endpoints_name_the_missing_setting(
    tmp_path: Any, method: str, path: str
) -> None:
    resp = _app(tmp_path, None).request(
        method, f"{API}/{path}", json={"name": "iris"}, headers={"Authorization": "Bearer tok"}
    )
    body = resp.json()
    assert resp.status_code == 501 and body["error_code"] == "NOT_IMPLEMENTED", body
    assert "--registry-in-cluster" in body["message"] and "--registry-kubeconfig" in body["message"]


def test_a_cluster_without_the_registeredmodel_crd_still_serves_the_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """An install whose CRDs predate RegisteredModel: its list is a 404, read as no entries."""
    from modelship import kube
    from modelship.tracking.server.registry import KubeReader

    def request(method: str, path: str, body: Any = None, **params: Any) -> Any:
        if path.endswith("/registeredmodels"):
            raise kube.KubeError(404, "the server could not find the requested resource")
        return {"items": OBJECTS, "metadata": {}}

    monkeypatch.setattr(kube, "request", request)
    app = FastAPI()
    app.include_router(registry_router(KubeReader("ml")))
    got = TestClient(app).get(f"{API}/registered-models/get", params={"name": "iris"})
    assert got.status_code == 200 and got.json()["registered_model"]["name"] == "iris"


class StaleReader(StaticReader):
    """A cached listing taken before the objects existed; only a fresh listing has them."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        super().__init__([], scoped=True)
        self.fresh = objects
        self.invalidations = 0

    def invalidate(self) -> None:
        self.invalidations += 1
        self.objects = list(self.fresh)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("registered-models/get", {"name": "iris"}),
        ("registered-models/get-latest-versions", {"name": "iris"}),
        ("registered-models/alias", {"name": "iris", "alias": "champion"}),
        ("model-versions/get", {"name": "iris", "version": "2"}),
        ("model-versions/get-download-uri", {"name": "iris", "version": "2"}),
    ],
)
def test_a_miss_on_the_cached_listing_is_checked_against_a_fresh_one(path: str, params: dict[str, str]) -> None:
    """An object created a moment ago (kubectl, git) is found although the cache predates it
    (the e2e suite hit this: a ModelVersion numbered by the operator, then a transition)."""
    reader = StaleReader(OBJECTS)
    app = FastAPI()
    app.include_router(registry_router(reader))

    @app.exception_handler(TrackingError)
    async def handle(_: Request, exc: TrackingError) -> Response:
        return error_response(exc)

    response = TestClient(app).get(f"{API}/{path}", params=params)
    assert response.status_code == 200, response.text
    assert reader.invalidations == 1


def test_stamped_objects_answer_millisecond_times_and_the_run_id_sent() -> None:
    """The tracking server's stamps win over Kubernetes' whole seconds; the model's time
    is its RegisteredModel's stamp (a version's description does not move it), unless the
    operator changed a stage later; an unresolved version answers the run id sent."""
    stamps = {"modelship.io/created-ms": "1767225600123", "modelship.io/updated-ms": "1767225605456"}
    v1 = obj(1, "None", model="m", ready="False")
    v1["metadata"]["annotations"] = {
        **stamps,
        "modelship.io/run-id": "sent-run",
        "modelship.io/updated-ms": "1767225609999",
    }
    v1["status"].pop("runId")
    v1["status"].pop("artifactUri")
    entry = {
        "metadata": {
            "name": "m",
            "namespace": "ml",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": stamps,
        },
        "spec": {"model": "m"},
    }
    app = FastAPI()
    app.include_router(registry_router(StaticReader([v1], registered_models=[entry])))
    c = TestClient(app)
    mv = c.get(f"{API}/model-versions/get", params={"name": "m", "version": "1"}).json()["model_version"]
    assert (mv["creation_timestamp"], mv["last_updated_timestamp"]) == (1767225600123, 1767225609999)
    assert mv["run_id"] == "sent-run" and mv["source"] == "runs:/run1/model" and mv["status"] == "READY"
    rm = c.get(f"{API}/registered-models/get", params={"name": "m"}).json()["registered_model"]
    assert (rm["creation_timestamp"], rm["last_updated_timestamp"]) == (1767225600123, 1767225605456)
    v1["status"]["stageHistory"] = [{"from": "None", "to": "Archived", "time": "2026-01-01T00:00:20Z"}]
    rm = c.get(f"{API}/registered-models/get", params={"name": "m"}).json()["registered_model"]
    assert rm["last_updated_timestamp"] == 1767225620000  # the operator's later change counts


def _mv(name: str, version: int, updated: int, created: int = 0) -> dict[str, Any]:
    return {"name": name, "version": str(version), "last_updated_timestamp": updated, "creation_timestamp": created}


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ([], [("b", 1), ("a", 2), ("a", 1), ("c", 1)]),  # newest change first, then name, then highest version
        (["name DESC"], [("c", 1), ("b", 1), ("a", 2), ("a", 1)]),
        (["version_number DESC"], [("a", 2), ("a", 1), ("b", 1), ("c", 1)]),  # then name, as MLflow's store
        (["creation_timestamp ASC"], [("c", 1), ("b", 1), ("a", 2), ("a", 1)]),
        (["last_updated_timestamp"], [("c", 1), ("a", 2), ("a", 1), ("b", 1)]),
    ],
)
def test_model_versions_are_ordered_as_mlflows_store_orders_them(
    order_by: list[str], expected: list[tuple[str, int]]
) -> None:
    from modelship.tracking.server.registry import order_versions

    found = [_mv("a", 1, 20, 3), _mv("a", 2, 20, 3), _mv("b", 1, 30, 2), _mv("c", 1, 10, 1)]
    assert [(m["name"], int(m["version"])) for m in order_versions(found, order_by)] == expected


def test_an_unknown_order_by_key_is_refused() -> None:
    from modelship.tracking.server.registry import order_versions

    with pytest.raises(TrackingError, match="Invalid order_by clause 'size DESC'"):
        order_versions([], ["size DESC"])


def test_the_download_uri_of_an_unresolved_version_is_its_source_as_recorded() -> None:
    unresolved = obj(1, "None", model="m", ready="False")
    unresolved["status"].pop("artifactUri")
    app = FastAPI()
    app.include_router(registry_router(StaticReader([unresolved])))
    got = TestClient(app).get(f"{API}/model-versions/get-download-uri", params={"name": "m", "version": "1"})
    assert got.json() == {"artifact_uri": "runs:/run1/model"}


def test_a_version_that_is_not_a_number_is_refused_in_mlflows_words() -> None:
    got = client().get(f"{API}/model-versions/get", params={"name": "iris", "version": "something not correct"})
    assert got.status_code == 400 and got.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Parameter 'version' must be an integer, got 'something not correct'.",
    }
