"""MLflow-shaped errors: ``{error_code, message}`` with MLflow's HTTP statuses.

Every layer (store, server, sidecar) raises :class:`TrackingError`; the server turns it
into a response body. Codes are MLflow's ``ErrorCode`` names, so the real client raises
the same ``MlflowException`` it would against ``mlflow server``.
"""

from __future__ import annotations

INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
INVALID_STATE = "INVALID_STATE"
BAD_REQUEST = "BAD_REQUEST"
MALFORMED_REQUEST = "MALFORMED_REQUEST"
UNAUTHENTICATED = "UNAUTHENTICATED"
INTERNAL_ERROR = "INTERNAL_ERROR"
TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
PERMISSION_DENIED = "PERMISSION_DENIED"

# The statuses mlflow.server uses for each code (mlflow/protos/databricks.proto mapping).
HTTP_STATUS: dict[str, int] = {
    INVALID_PARAMETER_VALUE: 400,
    RESOURCE_ALREADY_EXISTS: 400,
    BAD_REQUEST: 400,
    MALFORMED_REQUEST: 400,
    INVALID_STATE: 400,
    RESOURCE_DOES_NOT_EXIST: 404,
    ENDPOINT_NOT_FOUND: 404,
    UNAUTHENTICATED: 401,
    PERMISSION_DENIED: 403,
    NOT_IMPLEMENTED: 501,
    INTERNAL_ERROR: 500,
    TEMPORARILY_UNAVAILABLE: 503,
}


class TrackingError(Exception):
    """An error that the REST layer reports as an MLflow error body."""

    def __init__(self, message: str, error_code: str = INVALID_PARAMETER_VALUE, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.status = status
        """On the client side, the HTTP status the server answered; None when it did not answer."""

    @property
    def http_status(self) -> int:
        return self.status or HTTP_STATUS.get(self.error_code, 500)

    def body(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}


def invalid(message: str) -> TrackingError:
    return TrackingError(message, INVALID_PARAMETER_VALUE)


def not_found(message: str) -> TrackingError:
    return TrackingError(message, RESOURCE_DOES_NOT_EXIST)


def already_exists(message: str) -> TrackingError:
    return TrackingError(message, RESOURCE_ALREADY_EXISTS)
