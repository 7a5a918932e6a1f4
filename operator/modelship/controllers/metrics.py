"""Prometheus metrics of the reconcile loop, and the decorator that records them."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import kopf
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

P = ParamSpec("P")
R = TypeVar("R")

# result label values
SUCCESS = "success"
PERMANENT_ERROR = "permanent_error"  # not retried: the spec must change first
TEMPORARY_ERROR = "temporary_error"  # retried by kopf after a delay
ERROR = "error"  # unexpected; retried by kopf with backoff


class ReconcileMetrics:
    """The operator's own metrics, on one registry (the process-wide one by default)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.reconciles = Counter(
            "modelship_reconcile_total",
            "Handler runs, by kind and result (success, permanent_error, temporary_error, error).",
            ["kind", "result"],
            registry=registry,
        )
        self.duration = Histogram(
            "modelship_reconcile_duration_seconds",
            "Time one handler run took, by kind.",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.errors = Counter(
            "modelship_reconcile_errors_total",
            "Failed handler runs, by kind and reason (InvalidSpec, or the exception's class).",
            ["kind", "reason"],
            registry=registry,
        )

    def measured(self, kind: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
        """Decorate an async handler: time it, count its result, count its errors.

        Exceptions pass through unchanged: kopf decides about retries from their type.
        """

        def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
            @functools.wraps(fn)
            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                started = time.perf_counter()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    self._failed(kind, exc)
                    raise
                else:
                    self.reconciles.labels(kind=kind, result=SUCCESS).inc()
                    return result
                finally:
                    self.duration.labels(kind=kind).observe(time.perf_counter() - started)

            return wrapper

        return decorate

    def _failed(self, kind: str, exc: BaseException) -> None:
        if isinstance(exc, kopf.PermanentError):
            result = PERMANENT_ERROR
        elif isinstance(exc, kopf.TemporaryError):
            result = TEMPORARY_ERROR
        else:
            result = ERROR
        self.reconciles.labels(kind=kind, result=result).inc()
        self.errors.labels(kind=kind, reason=error_reason(exc)).inc()


def error_reason(exc: BaseException) -> str:
    """The reason label of an error: its ``reason`` attribute, else its class name."""
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) and reason else type(exc).__name__


METRICS = ReconcileMetrics()
"""The process-wide metrics the handlers record into and ``/metrics`` serves."""


def serve_metrics(host: str, port: int, registry: CollectorRegistry = REGISTRY) -> Any:
    """Start the ``/metrics`` HTTP server in a daemon thread; returns the server."""
    # The *_created series double the output and no dashboard of ours reads them.
    disable_created_metrics()
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
