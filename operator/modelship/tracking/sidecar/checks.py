"""What the sidecar checks before it acknowledges a write: the server's own rules, from the
wire protocol's modules (``protocol.fastparse`` and ``protocol.messages`` for shapes and 64-bit
integers, ``protocol.validation`` for names, lengths and batch limits), so that what the
trainer saw acknowledged is what the server will take. Pure: bytes in, the record's parts
out, or a TrackingError that the front answers as a 400 in MLflow's shape. What needs the
server (does the run exist, was a param set before) is checked in ``app``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel

from modelship.tracking.errors import invalid
from modelship.tracking.protocol import fastparse
from modelship.tracking.protocol import messages as msg
from modelship.tracking.protocol import validation as v
from modelship.tracking.protocol.messages import parse_body
from modelship.tracking.protocol.paths import API


class Write(NamedTuple):
    run_id: str | None
    body: dict[str, Any]
    """The record's body as it will be forwarded (parsed, re-serialized)."""
    params: list[tuple[str, str]]
    """The params it sets, for the sidecar's check of re-logged values."""
    message: BaseModel | None
    """The parsed message of the calls that are not parsed by hand."""


def check_write(path: str, raw: bytes, model: type[BaseModel]) -> Write:
    """The write to ``path`` with body ``raw`` (``model`` describes it), checked."""
    params: list[tuple[str, str]] = []
    run_id: str | None
    body: dict[str, Any]
    m: BaseModel | None = None
    if path == f"{API}/runs/log-metric":
        run_id, metric = fastparse.log_metric(raw)
        v.key(metric[0], "metric")
        body = fastparse.metric_json(metric)
    elif path == f"{API}/runs/log-batch":
        run_id, metrics, params, tags = fastparse.log_batch(raw)
        v.batch_sizes(len(metrics), len(params), len(tags))
        for x in metrics:
            v.key(x[0], "metric")
        for key, value in params:
            v.key(key, "param")
            v.param_value(key, value)
        for key, value in tags:
            v.key(key, "tag")
            v.tag_value(key, value)
        body = {
            "metrics": [fastparse.metric_json(x) for x in metrics],
            "params": [{"key": k, "value": val} for k, val in params],
            "tags": [{"key": k, "value": val} for k, val in tags],
        }
    else:
        m = parse_body(raw, model)
        body = m.model_dump(exclude_none=True)
        run_id = m.rid() if isinstance(m, msg.RunRef) else None
        if isinstance(m, (msg.LogParam, msg.SetTag)):
            is_param = isinstance(m, msg.LogParam)
            v.key(m.key, "param" if is_param else "tag")
            (v.param_value if is_param else v.tag_value)(m.key, m.value)
            if is_param:
                params = [(m.key, m.value)]
        elif isinstance(m, msg.DeleteTag):
            v.key(m.key, "tag")
        elif isinstance(m, msg.UpdateRun):
            if m.status is not None and m.status not in v.RUN_STATUSES:
                raise invalid(f"Invalid run status {m.status!r}")
        elif isinstance(m, msg.LogModel):
            try:
                orjson.loads(m.model_json)
            except orjson.JSONDecodeError:
                raise invalid("model_json is not valid JSON") from None
        elif isinstance(m, msg.LoggedModelTags):
            for item in m.tags:
                v.key(item.key, "tag")
                v.tag_value(item.key, item.value)
        elif isinstance(m, msg.LoggedModelParams):
            for item in m.params:
                v.key(item.key, "param")
                v.param_value(item.key, item.value)
    return Write(run_id, body, params, m)
