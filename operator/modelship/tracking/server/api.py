"""MLflow REST endpoints (``/api/2.0/mlflow/...``): experiments, runs, logging, models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from modelship.tracking.errors import invalid
from modelship.tracking.protocol import messages as msg
from modelship.tracking.protocol.http import body_schema, kv, ok, parse, query, query_int
from modelship.tracking.protocol.paths import API as PREFIX
from modelship.tracking.server import hotpath
from modelship.tracking.server.hotpath import write_batch, write_metric
from modelship.tracking.store.sql import TrackingStore

Handler = Callable[[Request], Awaitable[Response]]


def raw_ok(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def tracking_router(store: TrackingStore) -> APIRouter:
    router = APIRouter(tags=["MLflow tracking"])

    def route(path: str, method: str, body: type[Any] | None = None) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            router.add_api_route(
                PREFIX + path,
                fn,
                methods=[method],
                name=fn.__name__,
                summary=fn.__doc__,
                openapi_extra=body_schema(body) if body else None,
            )
            return fn

        return register

    # ---- experiments -------------------------------------------------------------------
    @route("/experiments/create", "POST", msg.CreateExperiment)
    async def create_experiment(request: Request) -> Response:
        """Create an experiment."""
        m = await parse(request, msg.CreateExperiment)
        return ok({"experiment_id": store.create_experiment(m.name, m.artifact_location, kv(m.tags))})

    @route("/experiments/get", "GET")
    async def get_experiment(request: Request) -> Response:
        """Get an experiment by id."""
        exp = store.get_experiment(query(request, "experiment_id") or "")
        return ok({"experiment": exp})

    @route("/experiments/get-by-name", "GET")
    async def get_experiment_by_name(request: Request) -> Response:
        """Get an experiment by name."""
        return ok({"experiment": store.get_experiment_by_name(query(request, "experiment_name") or "")})

    @route("/experiments/search", "POST", msg.SearchExperiments)
    async def search_experiments(request: Request) -> Response:
        """Search experiments."""
        return raw_ok(hotpath.search_experiments(store, await request.body()))

    @route("/experiments/search", "GET")
    async def search_experiments_get(request: Request) -> Response:
        """Search experiments (GET form)."""
        exps, token = store.search_experiments(
            request.query_params.get("view_type"),
            query_int(request, "max_results"),
            request.query_params.get("filter"),
            request.query_params.getlist("order_by"),
            request.query_params.get("page_token"),
        )
        return ok({"experiments": exps, **({"next_page_token": token} if token else {})})

    @route("/experiments/update", "POST", msg.UpdateExperiment)
    async def update_experiment(request: Request) -> Response:
        """Rename an experiment."""
        m = await parse(request, msg.UpdateExperiment)
        store.update_experiment(m.experiment_id, m.new_name)
        return ok()

    @route("/experiments/delete", "POST", msg.ExperimentId)
    async def delete_experiment(request: Request) -> Response:
        """Mark an experiment and its runs deleted."""
        store.delete_experiment((await parse(request, msg.ExperimentId)).experiment_id)
        return ok()

    @route("/experiments/restore", "POST", msg.ExperimentId)
    async def restore_experiment(request: Request) -> Response:
        """Restore a deleted experiment."""
        store.restore_experiment((await parse(request, msg.ExperimentId)).experiment_id)
        return ok()

    @route("/experiments/set-experiment-tag", "POST", msg.SetExperimentTag)
    async def set_experiment_tag(request: Request) -> Response:
        """Set a tag on an experiment."""
        m = await parse(request, msg.SetExperimentTag)
        store.set_experiment_tag(m.experiment_id, m.key, m.value)
        return ok()

    @route("/experiments/delete-experiment-tag", "POST", msg.DeleteExperimentTag)
    async def delete_experiment_tag(request: Request) -> Response:
        """Delete a tag of an experiment."""
        m = await parse(request, msg.DeleteExperimentTag)
        store.delete_experiment_tag(m.experiment_id, m.key)
        return ok()

    # ---- runs --------------------------------------------------------------------------
    @route("/runs/create", "POST", msg.CreateRun)
    async def create_run(request: Request) -> Response:
        """Create a run."""
        m = await parse(request, msg.CreateRun)
        return ok({"run": store.create_run(m.experiment_id, m.user_id, m.run_name, m.start_time, kv(m.tags))})

    @route("/runs/get", "GET")
    async def get_run(request: Request) -> Response:
        """Get a run with its latest metrics, params and tags."""
        return ok({"run": store.get_run(query(request, "run_id", "run_uuid") or "")})

    @route("/runs/update", "POST", msg.UpdateRun)
    async def update_run(request: Request) -> Response:
        """Set a run's status, end time or name."""
        m = await parse(request, msg.UpdateRun)
        return ok({"run_info": store.update_run(m.rid(), m.status, m.end_time, m.run_name)})

    @route("/runs/delete", "POST", msg.RunRef)
    async def delete_run(request: Request) -> Response:
        """Mark a run deleted."""
        store.delete_run((await parse(request, msg.RunRef)).rid())
        return ok()

    @route("/runs/restore", "POST", msg.RunRef)
    async def restore_run(request: Request) -> Response:
        """Restore a deleted run."""
        store.restore_run((await parse(request, msg.RunRef)).rid())
        return ok()

    @route("/runs/search", "POST", msg.SearchRuns)
    async def search_runs(request: Request) -> Response:
        """Search runs with MLflow's filter language."""
        return raw_ok(hotpath.search_runs(store, await request.body()))

    @route("/runs/log-metric", "POST", msg.LogMetric)
    async def log_metric(request: Request) -> Response:
        """Log one metric point."""
        write_metric(store, await request.body())
        return ok()

    @route("/runs/log-parameter", "POST", msg.LogParam)
    async def log_param(request: Request) -> Response:
        """Log a parameter (immutable once set)."""
        m = await parse(request, msg.LogParam)
        store.log_batch(m.rid(), params=[(m.key, m.value)])
        return ok()

    @route("/runs/set-tag", "POST", msg.SetTag)
    async def set_tag(request: Request) -> Response:
        """Set a run tag."""
        m = await parse(request, msg.SetTag)
        store.log_batch(m.rid(), tags=[(m.key, m.value)])
        return ok()

    @route("/runs/delete-tag", "POST", msg.DeleteTag)
    async def delete_tag(request: Request) -> Response:
        """Delete a run tag."""
        m = await parse(request, msg.DeleteTag)
        store.delete_tag(m.rid(), m.key)
        return ok()

    @route("/runs/log-batch", "POST", msg.LogBatch)
    async def log_batch(request: Request) -> Response:
        """Log metrics, params and tags at once (all or nothing)."""
        write_batch(store, await request.body())
        return ok()

    @route("/runs/log-model", "POST", msg.LogModel)
    async def log_model(request: Request) -> Response:
        """Record a logged model on a run (MLflow 2.x clients)."""
        m = await parse(request, msg.LogModel)
        store.log_model(m.rid(), m.model_json)
        return ok()

    @route("/runs/log-inputs", "POST", msg.LogInputs)
    async def log_inputs(request: Request) -> Response:
        """Record a run's dataset and model inputs."""
        m = await parse(request, msg.LogInputs)
        store.log_inputs(m.rid(), m.datasets, m.models)
        return ok()

    @route("/runs/outputs", "POST", msg.LogOutputs)
    async def log_outputs(request: Request) -> Response:
        """Record the logged models a run produced."""
        m = await parse(request, msg.LogOutputs)
        store.log_outputs(m.rid(), [(o.model_id, o.step) for o in m.models])
        return ok()

    @route("/metrics/get-history", "GET")
    async def get_metric_history(request: Request) -> Response:
        """Every logged point of one metric of a run."""
        metrics, token = store.history.get_metric_history(
            query(request, "run_id", "run_uuid") or "",
            query(request, "metric_key") or "",
            query_int(request, "max_results"),
            request.query_params.get("page_token"),
        )
        out: dict[str, Any] = {"metrics": metrics}
        if token:
            out["next_page_token"] = token
        return ok(out)

    @route("/metrics/get-history-bulk", "GET")
    async def get_metric_history_bulk(request: Request) -> Response:
        """Every point of one metric of several runs (``run_id`` repeated; the UI's charts)."""
        key = request.query_params.get("metric_key")
        if key is None:
            raise invalid("GetMetricHistoryBulk request must specify a metric_key.")
        metrics = store.history.get_metric_history_bulk(
            request.query_params.getlist("run_id"), key, query_int(request, "max_results")
        )
        return ok({"metrics": metrics})

    @route("/metrics/get-history-bulk-interval", "GET")
    async def get_metric_history_bulk_interval(request: Request) -> Response:
        """One metric of several runs (``run_ids`` repeated), sampled to ``max_results`` steps."""
        return raw_ok(hotpath.history_bulk_interval(store, request))

    @route("/experiments/search-datasets", "POST", msg.SearchDatasets)
    async def search_datasets(request: Request) -> Response:
        """The datasets the runs of experiments used (name, digest, context)."""
        m = await parse(request, msg.SearchDatasets)
        return ok({"dataset_summaries": store.history.search_datasets(m.experiment_ids)})

    # ---- logged models (3.x) -----------------------------------------------------------
    @route("/logged-models", "POST", msg.CreateLoggedModel)
    async def create_logged_model(request: Request) -> Response:
        """Create a logged model (status PENDING until finalized)."""
        m = await parse(request, msg.CreateLoggedModel)
        return ok(
            {
                "model": store.logged_models.create_logged_model(
                    m.experiment_id, m.name, m.model_type, m.source_run_id, kv(m.params), kv(m.tags)
                )
            }
        )

    @route("/logged-models/search", "POST", msg.SearchLoggedModels)
    async def search_logged_models(request: Request) -> Response:
        """Search logged models."""
        m = await parse(request, msg.SearchLoggedModels)
        models, token = store.logged_models.search_logged_models(
            m.experiment_ids,
            m.filter,
            m.max_results,
            [o.model_dump() for o in m.order_by],
            m.page_token,
            [(d.dataset_name, d.dataset_digest) for d in m.datasets],
        )
        out: dict[str, Any] = {"models": models}
        if token:
            out["next_page_token"] = token
        return ok(out)

    @route("/logged-models/{model_id}", "GET")
    async def get_logged_model(request: Request) -> Response:
        """Get a logged model."""
        return ok({"model": store.logged_models.get_logged_model(request.path_params["model_id"])})

    @route("/logged-models/{model_id}", "PATCH", msg.FinalizeLoggedModel)
    async def finalize_logged_model(request: Request) -> Response:
        """Set a logged model's final status (READY or UPLOAD_FAILED)."""
        m = await parse(request, msg.FinalizeLoggedModel)
        model_id = request.path_params["model_id"]
        if m.model_id and m.model_id != model_id:
            raise invalid("model_id in the body differs from the path")
        return ok({"model": store.logged_models.finalize_logged_model(model_id, m.status)})

    @route("/logged-models/{model_id}", "DELETE")
    async def delete_logged_model(request: Request) -> Response:
        """Delete a logged model."""
        store.logged_models.delete_logged_model(request.path_params["model_id"])
        return ok()

    @route("/logged-models/{model_id}/tags", "PATCH", msg.LoggedModelTags)
    async def set_logged_model_tags(request: Request) -> Response:
        """Set tags on a logged model."""
        m = await parse(request, msg.LoggedModelTags)
        store.logged_models.set_logged_model_tags(request.path_params["model_id"], kv(m.tags))
        return ok()

    @route("/logged-models/{model_id}/tags/{tag_key:path}", "DELETE")
    async def delete_logged_model_tag(request: Request) -> Response:
        """Delete one tag of a logged model."""
        store.logged_models.delete_logged_model_tag(request.path_params["model_id"], request.path_params["tag_key"])
        return ok()

    @route("/logged-models/{model_id}/params", "POST", msg.LoggedModelParams)
    async def log_logged_model_params(request: Request) -> Response:
        """Log params of a logged model."""
        m = await parse(request, msg.LoggedModelParams)
        store.logged_models.log_logged_model_params(request.path_params["model_id"], kv(m.params))
        return ok()

    return router
