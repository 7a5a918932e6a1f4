"""Datasets, artifacts, experiments, logged models and search filters as MLflow has them,
through the real mlflow client (its ``MlflowClient`` and, for the UI's calls, its REST layer)."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import httpx
import pytest

from .compat import creds, new_experiment, rest, rest_error
from .conftest import Launcher, Proc

pytestmark = pytest.mark.integration

UI = "/ajax-api/2.0/mlflow"
API = "/api/2.0/mlflow"


def _frame() -> object:
    import pandas as pd

    return pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})


def test_search_datasets_lists_the_datasets_runs_used(tracking_server: Proc) -> None:
    import mlflow
    import mlflow.data

    mlflow.set_tracking_uri(tracking_server.url)
    client = mlflow.MlflowClient(tracking_server.url)
    eid = new_experiment(client, "datasets")
    train = mlflow.data.from_pandas(_frame(), name="train")
    evaluation = mlflow.data.from_pandas(_frame().head(2), name="eval")
    with mlflow.start_run(experiment_id=eid):
        mlflow.log_input(train, context="training")
        mlflow.log_input(evaluation, context="evaluation")
    with mlflow.start_run(experiment_id=eid):
        mlflow.log_input(train, context="training")  # the same dataset again: one summary
    other = new_experiment(client, "datasets-other")

    body = rest(tracking_server.url, "POST", f"{UI}/experiments/search-datasets", json={"experiment_ids": [eid, other]})
    summaries = sorted(
        (s["experiment_id"], s["name"], s["digest"], s.get("context")) for s in body["dataset_summaries"]
    )
    assert summaries == sorted(
        [(eid, "train", train.digest, "training"), (eid, "eval", evaluation.digest, "evaluation")]
    )
    empty = rest_error(tracking_server.url, "POST", f"{UI}/experiments/search-datasets", json={"experiment_ids": []})
    assert "must specify at least one experiment_id" in empty.message


def test_upload_artifact_stores_a_file_in_the_run(tracking_server: Proc) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_server.url)
    run = client.create_run(new_experiment(client, "upload"))
    rid = run.info.run_id
    url = f"{UI}/upload-artifact"
    rest(tracking_server.url, "POST", url, params={"run_uuid": rid, "path": "notes/today.txt"}, data=b"uploaded\n")
    assert [f.path for f in client.list_artifacts(rid, "notes")] == ["notes/today.txt"]
    with tempfile.TemporaryDirectory() as d:
        local = client.download_artifacts(rid, "notes/today.txt", d)
        assert Path(local).read_bytes() == b"uploaded\n"

    assert (
        "Request must specify data"
        in rest_error(tracking_server.url, "POST", url, params={"run_uuid": rid, "path": "empty.txt"}, data=b"").message
    )
    assert "Request must specify path" in rest_error(tracking_server.url, "POST", url, params={"run_uuid": rid}).message
    escape = rest_error(tracking_server.url, "POST", url, params={"run_uuid": rid, "path": "../x"}, data=b"x")
    assert escape.error_code == "INVALID_PARAMETER_VALUE"
    unknown = rest_error(tracking_server.url, "POST", url, params={"run_uuid": "0" * 32, "path": "a"}, data=b"x")
    assert unknown.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_a_logged_models_artifacts_are_listed_and_read(tracking_server: Proc) -> None:
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from mlflow.protos.service_pb2 import ListLoggedModelArtifacts
    from mlflow.utils.proto_json_utils import message_to_json
    from mlflow.utils.rest_utils import call_endpoint
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(tracking_server.url)
    client = mlflow.MlflowClient(tracking_server.url)
    eid = new_experiment(client, "model-artifacts")
    fitted = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))
    with mlflow.start_run(experiment_id=eid):
        info = mlflow.sklearn.log_model(fitted, name="model")
    model_id = info.model_id

    def listed(path: str | None) -> tuple[str, list[tuple[str, bool]]]:
        request = ListLoggedModelArtifacts(artifact_directory_path=path) if path else ListLoggedModelArtifacts()
        response = call_endpoint(
            creds(tracking_server.url),
            f"{API}/logged-models/{model_id}/artifacts/directories",
            "GET",
            message_to_json(request),
            ListLoggedModelArtifacts.Response(),
        )
        return response.root_uri, sorted((f.path, f.is_dir) for f in response.files)

    root, top = listed(None)
    assert root == client.get_logged_model(model_id).artifact_location
    assert ("MLmodel", False) in top and ("requirements.txt", False) in top
    # The same listing as the client's own, which goes through the artifact proxy.
    assert [p for p, _ in top] == sorted(f.path for f in client.list_logged_model_artifacts(model_id))

    url = f"{tracking_server.url}{UI}/logged-models/{model_id}/artifacts/files"
    mlmodel = httpx.get(url, params={"artifact_file_path": "MLmodel"}, timeout=60)
    assert mlmodel.status_code == 200
    with tempfile.TemporaryDirectory() as d:
        local = mlflow.artifacts.download_artifacts(f"models:/{model_id}", dst_path=d)
        assert mlmodel.content == (Path(local) / "MLmodel").read_bytes()
    no_path = rest_error(tracking_server.url, "GET", f"{UI}/logged-models/{model_id}/artifacts/files")
    assert no_path.error_code == "BAD_REQUEST" and "artifact_file_path" in no_path.message
    gone = rest_error(
        tracking_server.url,
        "GET",
        f"{UI}/logged-models/{model_id}/artifacts/files",
        params={"artifact_file_path": "nothing-here"},
    )
    assert gone.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_relative_artifact_location_becomes_an_absolute_uri(tracking_server: Proc) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_server.url)
    rel = f"team-a/{uuid.uuid4().hex[:6]}"
    eid = client.create_experiment(f"rel-{uuid.uuid4().hex[:6]}", artifact_location=rel)
    location = client.get_experiment(eid).artifact_location
    assert location == f"mlflow-artifacts:/{rel}"
    # Served by the proxy: a run of it stores and reads artifacts.
    run = client.create_run(eid)
    assert run.info.artifact_uri == f"{location}/{run.info.run_id}/artifacts"
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "a.txt").write_text("kept")
        client.log_artifact(run.info.run_id, str(Path(d) / "a.txt"))
        assert Path(client.download_artifacts(run.info.run_id, "a.txt", d + "/out")).read_text() == "kept"

    absolute = client.create_experiment(f"abs-{uuid.uuid4().hex[:6]}", artifact_location="/srv/artifacts/x")
    assert client.get_experiment(absolute).artifact_location == "file:///srv/artifacts/x"
    kept = client.create_experiment(f"s3-{uuid.uuid4().hex[:6]}", artifact_location="s3://bucket/prefix")
    assert client.get_experiment(kept).artifact_location == "s3://bucket/prefix"
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="artifact_location"):
        client.create_experiment(f"up-{uuid.uuid4().hex[:6]}", artifact_location="../outside")


def test_a_logged_model_may_name_a_run_that_does_not_exist(tracking_server: Proc) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_server.url)
    eid = new_experiment(client, "foreign-run")
    foreign = uuid.uuid4().hex
    model = client.create_logged_model(eid, name="imported", source_run_id=foreign)
    assert model.source_run_id == foreign
    assert client.get_logged_model(model.model_id).source_run_id == foreign


def _like_cases(url: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(url)
    eid = new_experiment(client, "like")
    runs = {}
    for name in ("Abc", "abc", "xyz"):
        run = client.create_run(eid, run_name=name, tags={"kind": name})
        client.log_param(run.info.run_id, "opt", name.upper() if name == "xyz" else name)
        runs[name] = run.info.run_id

    def names(filter_string: str) -> list[str]:
        found = client.search_runs([eid], filter_string=filter_string)
        return sorted(r.info.run_name for r in found)

    assert names("attributes.run_name LIKE 'a%'") == ["abc"]
    assert names("attributes.run_name LIKE 'A%'") == ["Abc"]
    assert names("attributes.run_name ILIKE 'a%'") == ["Abc", "abc"]
    assert names("tags.kind LIKE '%bc'") == ["Abc", "abc"]
    assert names("tags.kind LIKE 'ab%'") == ["abc"]
    assert names("tags.kind ILIKE 'AB%'") == ["Abc", "abc"]
    assert names("params.opt LIKE 'x%'") == []
    assert names("params.opt ILIKE 'x%'") == ["xyz"]
    exps = client.search_experiments(filter_string=f"name LIKE 'LIKE-%' AND name ILIKE '%{eid}%'")
    assert exps == []  # LIKE is case-sensitive for experiment names too (the name is "like-...")
    assert [e.experiment_id for e in client.search_experiments(filter_string="name ILIKE 'LIKE-%'")] != []


def test_like_is_case_sensitive_and_ilike_is_not_on_sqlite(tracking_server: Proc) -> None:
    _like_cases(tracking_server.url)


@pytest.mark.postgres
def test_like_is_case_sensitive_and_ilike_is_not_on_postgresql(launcher: Launcher, postgres_url: str) -> None:
    _like_cases(launcher.server(db_url=postgres_url, name="pg-like").url)


def test_metrics_keep_dataset_and_model_and_models_are_searched_by_dataset(tracking_server: Proc) -> None:
    import mlflow
    import mlflow.data

    mlflow.set_tracking_uri(tracking_server.url)
    client = mlflow.MlflowClient(tracking_server.url)
    eid = new_experiment(client, "model-datasets")
    train = mlflow.data.from_pandas(_frame(), name="train")
    holdout = mlflow.data.from_pandas(_frame().head(1), name="holdout")
    first = client.create_logged_model(eid, name="first")
    second = client.create_logged_model(eid, name="second")
    with mlflow.start_run(experiment_id=eid):
        mlflow.log_metric("acc", 0.9, model_id=first.model_id, dataset=train)
        mlflow.log_metric("acc", 0.7, model_id=second.model_id, dataset=holdout)

    (metric,) = client.get_logged_model(first.model_id).metrics
    assert (metric.key, metric.value, metric.model_id) == ("acc", 0.9, first.model_id)
    assert (metric.dataset_name, metric.dataset_digest) == ("train", train.digest)

    def found(**kw: object) -> list[str]:
        return sorted(m.name for m in client.search_logged_models([eid], **kw))  # type: ignore[arg-type]

    assert found() == ["first", "second"]
    assert found(datasets=[{"dataset_name": "train"}]) == ["first"]
    assert found(datasets=[{"dataset_name": "holdout", "dataset_digest": holdout.digest}]) == ["second"]
    assert found(datasets=[{"dataset_name": "holdout", "dataset_digest": "nope"}]) == []
    assert found(datasets=[{"dataset_name": "train"}, {"dataset_name": "holdout"}]) == ["first", "second"]
    # A metric comparison is on the datasets named: second's 0.7 is on holdout, not on train.
    assert found(filter_string="metrics.acc < 0.8", datasets=[{"dataset_name": "train"}]) == []
    assert found(filter_string="metrics.acc < 0.8", datasets=[{"dataset_name": "holdout"}]) == ["second"]
