"""Request bodies of the MLflow REST API as pydantic models (validation + OpenAPI).

Field names and types follow MLflow's ``service.proto``; unknown fields are ignored, as
protobuf's JSON parser on ``mlflow server`` ignores them. A wrong type is a 400
(:func:`parse_body`, which the server's routes and the sidecar's checks both use).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from modelship.tracking.errors import MALFORMED_REQUEST, TrackingError, invalid
from modelship.tracking.protocol import validation as v
from modelship.tracking.protocol.validation import INT64_MAX, INT64_MIN


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

M = TypeVar("M", bound=BaseModel)


def _json_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's location as MLflow writes a field's path: ``metrics[0].value``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def validation_message(exc: ValidationError) -> str:
    """The first error in ``mlflow server``'s words (clients and people match on them):
    ``Invalid value 31 for parameter 'run_id' supplied: Hint: ...`` or ``Missing value for
    required parameter 'key'. ...``; a second one, if any, is named after it."""
    errs = exc.errors()
    first = errs[0]
    path = _json_path(tuple(first["loc"]))
    if first["type"] == "missing":
        message = v.missing(path).message
    elif first["type"].startswith(("greater_than", "less_than")):
        message = v.invalid_value(path, first.get("input"), f"{first['msg']}. {v.API_DOCS_HINT}").message
    else:
        message = v.wrong_type(path, first.get("input")).message
    if len(errs) > 1:
        message += f" ({len(errs) - 1} more: {', '.join(repr(_json_path(tuple(e['loc']))) for e in errs[1:4])})"
    return message


def parse_body(raw: bytes, model: type[M]) -> M:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise TrackingError("Malformed request JSON: the body is not valid JSON", MALFORMED_REQUEST) from None
        raise invalid(validation_message(exc)) from None
