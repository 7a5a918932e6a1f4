"""The serving core: everything a transport delegates to (MLServer's data plane).

``ModelServer`` loads the model off the event loop, reports readiness, decodes payloads
with the codecs (a large body on a parse thread, so the event loop goes on answering
probes), runs predictions (micro-batched or alone) on one worker thread, and encodes
replies. Transports only move bytes: they call ``invocations``, ``infer`` and friends and
write the ``Reply`` they get back.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, TypeVar

from modelship import __version__
from modelship.models.enforce import SchemaError
from modelship.models.load import LoadedModel, load_model
from modelship.models.uri import redact_url
from modelship.serving import v2
from modelship.serving.batching import MicroBatcher
from modelship.serving.codecs import (
    BadRequest,
    Parsed,
    UnsupportedMediaType,
    dumps,
    parse_invocations,
    predictions_body,
)
from modelship.serving.metrics import Metrics
from modelship.serving.settings import ServingSettings

log = logging.getLogger("modelship.serving")

T = TypeVar("T")

JSON = b"application/json"


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    content_type: bytes = JSON


def mlflow_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, dumps({"error_code": code, "message": message}))


def v2_error(status: int, message: str) -> Reply:
    return Reply(status, dumps({"error": message}))


class PredictTimeout(Exception):
    pass


def default_model_name(uri: str) -> str:
    if uri.startswith("models:/"):
        rest = uri[len("models:/") :].strip("/")
        return rest.split("@", 1)[0].rsplit("/", 1)[0] if "@" not in rest else rest.split("@", 1)[0]
    name = PurePosixPath(uri.rstrip("/")).name
    return name or "model"


class ModelServer:
    """The data plane of one served model."""

    def __init__(self, settings: ServingSettings, model: LoadedModel | None = None) -> None:
        self.settings = settings
        self.name = settings.model_name or default_model_name(settings.model_uri)
        self.version = settings.model_version
        self.metrics = Metrics(self.name, self.version, settings.variant)
        self.model: LoadedModel | None = None
        self.load_error: str | None = None
        self.batcher: MicroBatcher | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        #: parses large bodies and encodes their replies: a 50 MB JSON body or a CSV of
        #: 200,000 columns takes seconds, which on the event loop would stall every probe
        #: (two threads: one large body does not wait behind another's parse)
        self.parse_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="parse")
        self._preloaded = model

    @property
    def ready(self) -> bool:
        return self.model is not None

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Load the model (in a thread, so probes are answered meanwhile) and go ready."""
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        try:
            model = self._preloaded or await loop.run_in_executor(
                None,
                functools.partial(
                    load_model,
                    self.settings.model_uri,
                    allow_pickle=self.settings.allow_pickle,
                    skops_trusted_types=self.settings.skops_trusted_types,
                ),
            )
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error(
                "model failed to load",
                extra={"uri": redact_url(self.settings.model_uri), "error": self.load_error},
            )
            raise
        assert model is not None  # load_model raises rather than return nothing
        batching = self.settings.batching
        if batching is None:
            batching = model.runtime.batchable
        if batching:
            self.batcher = MicroBatcher(
                self._predict_sync,
                self.executor,
                max_batch_size=self.settings.max_batch_size,
                max_delay_s=self.settings.max_batch_delay_ms / 1000.0,
                on_batch=self._on_batch,
            )
            self.batcher.start()
        self.model = model
        self.metrics.ready.set(1)
        log.info(
            "model loaded",
            extra={
                "model": self.name,
                "version": self.version,
                "flavor": model.flavor,
                "batching": bool(batching),
                "seconds": round(time.perf_counter() - t0, 3),
            },
        )

    async def stop(self) -> None:
        self.metrics.ready.set(0)
        if self.batcher is not None:
            await self.batcher.stop()
        self.executor.shutdown(wait=True, cancel_futures=False)
        self.parse_pool.shutdown(wait=True, cancel_futures=True)

    # -- prediction ---------------------------------------------------------------------
    def _predict_sync(self, data: Any, params: dict[str, Any] | None) -> Any:
        assert self.model is not None
        return self.model.runtime.predict(data, params)

    def _on_batch(self, rows: int, requests: int, seconds: float, outputs: list[Any]) -> None:
        self.metrics.batch_rows.observe(rows)
        self.metrics.batch_requests.observe(requests)
        self.metrics.predict_seconds.observe(seconds)
        for out in outputs:
            self.metrics.predictions.observe(out)

    async def predict(self, parsed: Parsed) -> Any:
        loop = asyncio.get_running_loop()
        if self.batcher is not None and parsed.rows is not None and parsed.params is None:
            fut = self.batcher.enqueue(parsed.data, parsed.rows)
        else:
            # our own future, so a timeout can settle it while the thread still runs
            fut = loop.create_future()
            inner = loop.run_in_executor(self.executor, self._predict_alone, parsed.data, parsed.params)
            inner.add_done_callback(lambda f: _copy(f, fut))
        handle = loop.call_later(self.settings.timeout_s, _expire, fut)
        try:
            return await fut
        finally:
            handle.cancel()

    def _predict_alone(self, data: Any, params: dict[str, Any] | None) -> Any:
        t0 = time.perf_counter()
        out = self._predict_sync(data, params)
        rows = len(data) if hasattr(data, "__len__") and not isinstance(data, dict) else 1
        self._on_batch(rows, 1, time.perf_counter() - t0, [out])
        return out

    async def _work(self, off_loop: bool, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``: on a parse thread when ``off_loop``, else here on the event loop."""
        if not off_loop:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self.parse_pool, fn, *args)

    def _off_loop(self, body: bytes, content_type: str = "application/json") -> bool:
        # pandas' CSV and Parquet readers cost a millisecond even for a few rows (and a
        # CSV byte can cost a hundred times a JSON byte), so for them the hop always pays.
        return len(body) > self.settings.parse_in_thread_bytes or not _is_json(content_type)

    # -- MLflow scoring protocol ---------------------------------------------------------
    def _parse_invocations(self, body: bytes, content_type: str) -> Parsed:
        assert self.model is not None
        parsed = parse_invocations(self.model, body, content_type)
        self.model.check_values(parsed.data)
        return parsed

    async def invocations(self, body: bytes, content_type: str) -> Reply:
        if self.model is None:
            return mlflow_error(503, "TEMPORARILY_UNAVAILABLE", "the model is not loaded yet")
        off_loop = self._off_loop(body, content_type)
        try:
            parsed = await self._work(off_loop, self._parse_invocations, body, content_type)
        except UnsupportedMediaType as exc:
            return mlflow_error(415, "BAD_REQUEST", str(exc))
        except (BadRequest, SchemaError) as exc:
            return mlflow_error(400, "BAD_REQUEST", str(exc))
        try:
            pred = await self.predict(parsed)
        except PredictTimeout:
            return mlflow_error(504, "DEADLINE_EXCEEDED", f"predict took longer than {self.settings.timeout_s}s")
        except Exception as exc:  # noqa: BLE001 - model code raised: 500, keep serving
            log.warning("predict failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            return mlflow_error(500, "INTERNAL_ERROR", f"The model raised {type(exc).__name__}: {exc}")
        try:
            return Reply(200, await self._work(off_loop, predictions_body, pred))
        except Exception as exc:  # noqa: BLE001
            return mlflow_error(500, "INTERNAL_ERROR", f"could not encode predictions: {exc}")

    # -- Open Inference Protocol v2 -------------------------------------------------------
    def _known(self, name: str, version: str | None) -> bool:
        return name == self.name and (version is None or version == self.version)

    def v2_server_metadata(self) -> Reply:
        return Reply(200, dumps({"name": "modelship", "version": __version__, "extensions": []}))

    def v2_model_metadata(self, name: str, version: str | None) -> Reply:
        if not self._known(name, version):
            return v2_error(404, f"Model {name!r} version {version or self.version!r} not found")
        if self.model is None:
            return v2_error(503, f"Model {name!r} is not loaded yet")
        return Reply(200, dumps(v2.metadata(self.model, self.name, self.version)))

    def v2_model_ready(self, name: str, version: str | None) -> Reply:
        if not self._known(name, version):
            return v2_error(404, f"Model {name!r} version {version or self.version!r} not found")
        return Reply(200 if self.ready else 503, dumps({"name": name, "ready": self.ready}))

    async def infer(self, name: str, version: str | None, body: bytes) -> Reply:
        if not self._known(name, version):
            return v2_error(404, f"Model {name!r} version {version or self.version!r} not found")
        if self.model is None:
            return v2_error(503, f"Model {name!r} is not loaded yet")
        off_loop = self._off_loop(body)
        try:
            parsed, envelope = await self._work(off_loop, self._parse_infer, body)
        except (BadRequest, SchemaError) as exc:
            return v2_error(400, str(exc))
        try:
            pred = await self.predict(parsed)
        except PredictTimeout:
            return v2_error(504, f"predict took longer than {self.settings.timeout_s}s")
        except Exception as exc:  # noqa: BLE001
            log.warning("predict failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            return v2_error(500, f"The model raised {type(exc).__name__}: {exc}")
        out: dict[str, Any] = {"model_name": self.name, "model_version": self.version}
        req_id = envelope.get("id")
        if req_id is not None:  # a string: parse_infer checked it
            out["id"] = req_id
        try:
            return Reply(200, await self._work(off_loop, _encode_infer, out, pred))
        except Exception as exc:  # noqa: BLE001
            return v2_error(500, f"could not encode predictions: {exc}")

    def _parse_infer(self, body: bytes) -> tuple[Parsed, dict[str, Any]]:
        assert self.model is not None
        parsed, envelope = v2.parse_infer(self.model, body)
        self.model.check_values(parsed.data)
        return parsed, envelope


def _encode_infer(out: dict[str, Any], pred: Any) -> bytes:
    out["outputs"] = v2.encode_outputs(pred)
    return dumps(out)


def _is_json(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() in ("application/json", "")


def _copy(src: asyncio.Future[Any], dst: asyncio.Future[Any]) -> None:
    if dst.done():
        return
    if src.cancelled():
        dst.cancel()
    elif (exc := src.exception()) is not None:
        dst.set_exception(exc)
    else:
        dst.set_result(src.result())


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(PredictTimeout())
