"""Request bodies of the MLflow REST API as pydantic models (validation + OpenAPI).

Field names and types follow MLflow's ``service.proto``; unknown fields are ignored, as
protobuf's JSON parser on ``mlflow server`` ignores them. A wrong type is a 400.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from modelship.tracking.store.validation import INT64_MAX, INT64_MIN


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")  # noqa: TRY004 - pydantic wants ValueError
    return value


Num = Annotated[float, BeforeValidator(_no_bool)]
# Stored as BIGINT: a larger integer is the client's error, not the database driver's.
Int = Annotated[int, BeforeValidator(_no_bool), Field(ge=INT64_MIN, le=INT64_MAX)]


class Msg(BaseModel):
    model_config = ConfigDict(extra="ignore")


class KeyValue(Msg):
    key: str
    value: str = ""


class CreateExperiment(Msg):
    name: str
    artifact_location: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class ExperimentId(Msg):
    experiment_id: str


class UpdateExperiment(Msg):
    experiment_id: str
    new_name: str


class SetExperimentTag(Msg):
    experiment_id: str
    key: str
    value: str


class DeleteExperimentTag(Msg):
    experiment_id: str
    key: str


class SearchExperiments(Msg):
    max_results: Int | None = None
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    view_type: str | Int | None = None


class CreateRun(Msg):
    experiment_id: str = "0"
    user_id: str | None = None
    run_name: str | None = None
    start_time: Int | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class RunRef(Msg):
    run_id: str | None = None
    run_uuid: str | None = None

    def rid(self) -> str:
        from modelship.tracking.errors import invalid

        rid = self.run_id or self.run_uuid
        if not rid:
            raise invalid("Missing value for required parameter 'run_id'.")
        return rid


class UpdateRun(RunRef):
    status: str | None = None
    end_time: Int | None = None
    run_name: str | None = None


class MetricIn(Msg):
    key: str
    value: Num
    timestamp: Int
    step: Int = 0
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class LogMetric(RunRef, MetricIn):
    pass


class LogParam(RunRef):
    key: str
    value: str


class SetTag(RunRef):
    key: str
    value: str


class DeleteTag(RunRef):
    key: str


class LogBatch(RunRef):
    metrics: list[MetricIn] = Field(default_factory=list)
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class SearchRuns(Msg):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    run_view_type: str | Int | None = None
    max_results: Int | None = None
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


class SearchDatasets(Msg):
    experiment_ids: list[str] = Field(default_factory=list)


class LogModel(RunRef):
    model_json: str


class ModelOutput(Msg):
    model_id: str
    step: Int = 0


class LogOutputs(RunRef):
    models: list[ModelOutput] = Field(default_factory=list)


class LogInputs(RunRef):
    datasets: list[dict[str, Any]] = Field(default_factory=list)
    models: list[dict[str, Any]] = Field(default_factory=list)


class CreateLoggedModel(Msg):
    experiment_id: str
    name: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class FinalizeLoggedModel(Msg):
    model_id: str | None = None
    status: str | Int


class LoggedModelTags(Msg):
    model_id: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class LoggedModelParams(Msg):
    model_id: str | None = None
    params: list[KeyValue] = Field(default_factory=list)


class DatasetFilter(Msg):
    dataset_name: str
    dataset_digest: str | None = None


class OrderByField(Msg):
    field_name: str
    ascending: bool = True


class SearchLoggedModels(Msg):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    datasets: list[DatasetFilter] = Field(default_factory=list)
    max_results: Int | None = None
    order_by: list[OrderByField] = Field(default_factory=list)
    page_token: str | None = None


ALL: list[type[BaseModel]] = [
    CreateExperiment,
    ExperimentId,
    UpdateExperiment,
    SetExperimentTag,
    DeleteExperimentTag,
    SearchExperiments,
    CreateRun,
    RunRef,
    UpdateRun,
    LogMetric,
    LogParam,
    SetTag,
    DeleteTag,
    LogBatch,
    SearchRuns,
    SearchDatasets,
    LogModel,
    LogOutputs,
    LogInputs,
    CreateLoggedModel,
    FinalizeLoggedModel,
    LoggedModelTags,
    LoggedModelParams,
    SearchLoggedModels,
]
