"""The OpenAPI 3.0 description served at ``/openapi.json`` (written by hand: the app is raw
ASGI, and the spec documents the wire format rather than Python types)."""

from __future__ import annotations

from typing import Any

_ERROR = {
    "type": "object",
    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
}
_V2_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}}
_TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype", "data"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {
            "type": "string",
            "enum": [
                "BOOL",
                "UINT8",
                "UINT16",
                "UINT32",
                "UINT64",
                "INT8",
                "INT16",
                "INT32",
                "INT64",
                "FP16",
                "FP32",
                "FP64",
                "BYTES",
            ],
        },
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def openapi_spec(model_name: str) -> dict[str, Any]:
    err = {"description": "client error", **_json(_ERROR)}
    v2err = {"description": "client error", **_json(_V2_ERROR)}
    name_param = {
        "name": "model_name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "example": model_name},
    }
    version_param = {
        "name": "model_version",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    infer: dict[str, Any] = {
        "post": {
            "summary": "Open Inference Protocol v2 inference",
            "requestBody": {
                "required": True,
                **_json(
                    {
                        "type": "object",
                        "required": ["inputs"],
                        "properties": {
                            "id": {"type": "string"},
                            "parameters": {"type": "object"},
                            "inputs": {"type": "array", "items": _TENSOR},
                            "outputs": {"type": "array"},
                        },
                    }
                ),
            },
            "responses": {
                "200": {"description": "outputs"},
                "400": v2err,
                "404": v2err,
                "500": v2err,
            },
        }
    }
    infer_v = {"post": {**infer["post"], "parameters": [name_param, version_param]}}
    infer["post"] = {**infer["post"], "parameters": [name_param]}
    ok = {"200": {"description": "ok"}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Modelship model server", "version": "1"},
        "paths": {
            "/invocations": {
                "post": {
                    "summary": "MLflow scoring protocol",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "dataframe_split": {
                                            "type": "object",
                                            "properties": {
                                                "columns": {
                                                    "type": "array",
                                                    "items": {"type": "string"},
                                                },
                                                "data": {
                                                    "type": "array",
                                                    "items": {"type": "array"},
                                                },
                                            },
                                        },
                                        "dataframe_records": {
                                            "type": "array",
                                            "items": {"type": "object"},
                                        },
                                        "instances": {},
                                        "inputs": {},
                                        "params": {"type": "object"},
                                    },
                                }
                            },
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": {
                        "200": {"description": "predictions"},
                        "400": err,
                        "415": err,
                        "500": err,
                    },
                }
            },
            "/ping": {"get": {"responses": ok}},
            "/health": {"get": {"responses": ok}},
            "/version": {"get": {"responses": ok}},
            "/metrics": {"get": {"responses": ok}},
            "/v2": {"get": {"responses": ok}},
            "/v2/health/live": {"get": {"responses": ok}},
            "/v2/health/ready": {"get": {"responses": ok}},
            "/v2/models/{model_name}": {"get": {"parameters": [name_param], "responses": ok}},
            "/v2/models/{model_name}/ready": {"get": {"parameters": [name_param], "responses": ok}},
            "/v2/models/{model_name}/infer": infer,
            "/v2/models/{model_name}/versions/{model_version}/infer": infer_v,
        },
    }
