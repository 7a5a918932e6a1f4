"""A server that answers the benchmark's calls and stores nothing: it measures the mlflow
client's own cost per call, the floor that no server can go below.

``python null_server.py PORT``.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

RUN = (
    b'{"run": {"info": {"run_id": "0123456789abcdef0123456789abcdef", "run_uuid": '
    b'"0123456789abcdef0123456789abcdef", "experiment_id": "1", "status": "RUNNING", '
    b'"start_time": 1, "artifact_uri": "mlflow-artifacts:/1/x/artifacts", '
    b'"lifecycle_stage": "active"}, "data": {}}}'
)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    path = scope["path"]
    if path == "/health":
        body = b"OK"
    elif path.endswith("/experiments/create"):
        body = b'{"experiment_id": "1"}'
    elif path.endswith(("/runs/create", "/runs/get")):
        body = RUN
    else:
        body = b"{}"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
