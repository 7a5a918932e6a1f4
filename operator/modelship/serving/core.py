"""The serving core: everything a transport delegates to (MLServer's data plane).

``ModelServer`` loads the model off the event loop, reports readiness, decodes payloads
with the codecs (a large body on a parse thread, so the event loop goes on answering
probes), runs predictions (micro-batched or alone) on one worker thread, and encodes
replies. Transports only move bytes: they call ``invocations``, ``infer`` and friends and
write the ``Reply`` they get back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
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
from modelship.models.profile import PROFILE_FILE
from modelship.serving import v2
from modelship.serving.batching import MicroBatcher
from modelship.serving.codecs import (
    BadRequest,
    Parsed,
    UnsupportedMediaType,
    _loads,
    dumps,
    parse_invocations,
    predictions_body,
)
from modelship.serving.drift import DriftConfig, DriftMonitor
from modelship.serving.feedback import FeedbackBook, check_request_id
from modelship.serving.metrics import Metrics
from modelship.serving.peers import Peers, combine, parse_targets, pending
from modelship.serving.settings import ServingSettings
from modelship.uris import ModelsURI, URIError, parse, redact_url

log = logging.getLogger("modelship.serving")

T = TypeVar("T")

JSON = b"application/json"


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    content_type: bytes = JSON
    #: the prediction's request id, sent back as ``X-Request-Id`` (predictions only)
    request_id: str | None = None


class ServingError(Exception):
    """Why a request gets no predictions: the one error type of the serving core.

    The core and the transport raise it; each protocol renders it once (``mlflow_reply``
    for ``/invocations`` and the probes, ``v2_reply`` for ``/v2``), so the status and the
    message never depend on which code path refused the request.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        #: MLflow's ``error_code`` (the v2 shape has none)
        self.code = code
        self.message = message


def bad_request(message: str) -> ServingError:
    return ServingError(400, "BAD_REQUEST", message)


def not_found(message: str) -> ServingError:
    return ServingError(404, "RESOURCE_DOES_NOT_EXIST", message)


def unavailable(message: str) -> ServingError:
    return ServingError(503, "TEMPORARILY_UNAVAILABLE", message)


def mlflow_reply(err: ServingError) -> Reply:
    """MLflow's scoring server's error shape: ``{"error_code", "message"}``."""
    return Reply(err.status, dumps({"error_code": err.code, "message": err.message}))


def v2_reply(err: ServingError) -> Reply:
    """The Open Inference Protocol's error shape: ``{"error"}``."""
    return Reply(err.status, dumps({"error": err.message}))


class PredictTimeout(Exception):
    pass


Encode = Callable[[Any, str], bytes]
"""Predictions and their request id -> the reply body."""


def default_model_name(uri: str) -> str:
    with contextlib.suppress(URIError):
        source = parse(uri)
        if isinstance(source, ModelsURI):
            return source.name
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
        #: the drift windows; None when off or the model has no training profile (``drift_off`` says why)
        self.drift: DriftMonitor | None = None
        self.drift_off = "the model is not loaded yet"
        #: request ids -> predictions, and the outcomes fed back for them (the A/B readout)
        self.feedback = FeedbackBook(
            window=settings.feedback_window,
            max_rows=settings.feedback_max_rows,
            max_batch=settings.feedback_max_batch,
        )
        self.metrics.watch_feedback(self.feedback)
        #: the other pods of the deployment, asked about outcomes this one does not know
        self.peers: Peers | None = None
        if settings.feedback_peers:
            own = {(settings.pod_ip, settings.port)} if settings.pod_ip else set()
            if settings.host not in ("", "0.0.0.0", "::"):
                own.add((settings.host, settings.port))
            self.peers = Peers(
                parse_targets(settings.feedback_peers, settings.port),
                own_instance=self.feedback.instance,
                own_addresses=own,
                timeout_s=settings.feedback_peer_timeout_s,
                deadline_s=settings.feedback_forward_deadline_s,
                max_peers=settings.feedback_max_peers,
                concurrency=settings.feedback_forward_concurrency,
            )

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
        self._start_drift(model)
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
                on_settled=self._on_settled,
                inline_below_s=self.settings.inline_predict_ms / 1000.0,
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

    def _start_drift(self, model: LoadedModel) -> None:
        s = self.settings
        if not s.drift:
            self.drift_off = "drift detection is off on this server (--no-drift, MODELSHIP_DRIFT=false)"
            return
        name = (model.metadata.metadata or {}).get("modelship.training_profile") or PROFILE_FILE
        path = model.model_dir / str(name)
        if not path.is_file():
            self.drift_off = (
                f"the model has no training profile ({PROFILE_FILE}): save it with modelship's "
                "save_model(..., training_data=X) to get drift figures"
            )
            return
        try:
            profile = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            self.drift_off = f"the model's training profile {name} cannot be read: {exc}"
            log.warning("no drift detection", extra={"reason": self.drift_off})
            return
        schema = model.input_schema
        columns = schema.names() if schema is not None and schema.has_names and not schema.is_tensor else None
        config = DriftConfig(
            window=s.drift_window,
            min_samples=s.drift_min_samples,
            psi_warn=s.drift_psi_warn,
            psi_alert=s.drift_psi_alert,
            ignore=frozenset(f.strip() for f in s.drift_ignore.split(",") if f.strip()),
        )
        try:
            self.drift = DriftMonitor(profile, config, columns)
        except Exception as exc:  # noqa: BLE001 - a profile we cannot use costs the figures, not the server
            self.drift_off = f"the model's training profile {name} cannot be used: {type(exc).__name__}: {exc}"
            log.warning("no drift detection", extra={"reason": self.drift_off})
            return
        self.metrics.watch_drift(self.drift.report)

    def drift_report(self) -> dict[str, Any]:
        """``GET /drift``: the figures per feature, or why there are none."""
        head = {"model": self.name, "version": self.version, "variant": self.settings.variant}
        if self.drift is None:
            return {**head, "enabled": False, "reason": self.drift_off}
        return {**head, **self.drift.report()}

    async def stop(self) -> None:
        self.metrics.ready.set(0)
        if self.batcher is not None:
            await self.batcher.stop()
        self.executor.shutdown(wait=True, cancel_futures=False)
        self.parse_pool.shutdown(wait=True, cancel_futures=True)
        if self.peers is not None:
            await self.peers.close()

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

    def _on_settled(self, pairs: list[tuple[Any, Any]]) -> None:
        if self.drift is not None:
            self.drift.observe_all(pairs)

    def _predict_alone(self, data: Any, params: dict[str, Any] | None) -> Any:
        t0 = time.perf_counter()
        out = self._predict_sync(data, params)
        rows = len(data) if hasattr(data, "__len__") and not isinstance(data, dict) else 1
        self._on_batch(rows, 1, time.perf_counter() - t0, [out])
        if self.drift is not None:
            # next on this (the predict) thread, once the reply is on its way, as the batcher does
            self.executor.submit(self._on_settled, [(data, out)])
        return out

    async def run_off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a parse thread (the transport's slow non-prediction answers)."""
        return await self._work(True, fn, *args)

    async def _work(self, off_loop: bool, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``: on a parse thread when ``off_loop``, else here on the event loop."""
        if not off_loop:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self.parse_pool, fn, *args)

    def _off_loop(self, body: bytes, content_type: str = "application/json") -> bool:
        # pandas' CSV and Parquet readers cost a millisecond even for a few rows (and a
        # CSV byte can cost a hundred times a JSON byte), so for them the hop always pays.
        return len(body) > self.settings.parse_in_thread_bytes or not _is_json(content_type)

    # -- one request: parse, predict, encode ---------------------------------------------
    async def _answer(
        self, off_loop: bool, request_id: str | None, parse: Callable[..., tuple[Parsed, Encode]], *args: Any
    ) -> Reply:
        """``parse(*args)``, predict, remember the prediction under its request id, encode:
        the one ladder from failures to ``ServingError``. ``parse`` may name the request id
        (the v2 body's ``id``) when the transport had none."""
        try:
            parsed, encode = await self._work(off_loop, parse, *args)
        except UnsupportedMediaType as exc:
            raise ServingError(415, "BAD_REQUEST", str(exc)) from None
        except (BadRequest, SchemaError) as exc:
            raise bad_request(str(exc)) from None
        try:
            pred = await self.predict(parsed)
        except PredictTimeout:
            raise ServingError(
                504, "DEADLINE_EXCEEDED", f"predict took longer than {self.settings.timeout_s}s"
            ) from None
        except Exception as exc:  # noqa: BLE001 - model code raised: 500, keep serving
            log.warning("predict failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            raise ServingError(500, "INTERNAL_ERROR", f"The model raised {type(exc).__name__}: {exc}") from None
        rid = request_id or parsed.request_id or self.feedback.new_id()
        self.feedback.remember(rid, pred)
        try:
            return Reply(200, await self._work(off_loop, encode, pred, rid), request_id=rid)
        except Exception as exc:  # noqa: BLE001
            raise ServingError(500, "INTERNAL_ERROR", f"could not encode predictions: {exc}") from None

    def _loaded(self) -> LoadedModel:
        if self.model is None:
            raise unavailable(f"Model {self.name!r} is not loaded yet")
        return self.model

    # -- MLflow scoring protocol ---------------------------------------------------------
    def _parse_invocations(self, body: bytes, content_type: str) -> tuple[Parsed, Encode]:
        model = self._loaded()
        parsed = parse_invocations(model, body, content_type)
        model.check_values(parsed.data)
        return parsed, _encode_invocations

    async def invocations(self, body: bytes, content_type: str, request_id: str | None = None) -> Reply:
        """``POST /invocations``; raises ``ServingError``. ``request_id``: the client's, checked."""
        if self.model is None:
            raise unavailable("the model is not loaded yet")
        return await self._answer(
            self._off_loop(body, content_type), request_id, self._parse_invocations, body, content_type
        )

    # -- Open Inference Protocol v2 -------------------------------------------------------
    def _known(self, name: str, version: str | None) -> None:
        if name != self.name or (version is not None and version != self.version):
            raise not_found(f"Model {name!r} version {version or self.version!r} not found")

    def v2_server_metadata(self) -> Reply:
        return Reply(200, dumps({"name": "modelship", "version": __version__, "extensions": []}))

    def v2_model_metadata(self, name: str, version: str | None) -> Reply:
        self._known(name, version)
        return Reply(200, dumps(v2.metadata(self._loaded(), self.name, self.version)))

    def v2_model_ready(self, name: str, version: str | None) -> Reply:
        self._known(name, version)
        return Reply(200 if self.ready else 503, dumps({"name": name, "ready": self.ready}))

    async def infer(self, name: str, version: str | None, body: bytes, request_id: str | None = None) -> Reply:
        """``POST /v2/models/{name}[/versions/{version}]/infer``; raises ``ServingError``."""
        self._known(name, version)
        self._loaded()
        return await self._answer(self._off_loop(body), request_id, self._parse_infer, body)

    def _parse_infer(self, body: bytes) -> tuple[Parsed, Encode]:
        model = self._loaded()
        parsed, envelope = v2.parse_infer(model, body)
        model.check_values(parsed.data)
        out: dict[str, Any] = {"model_name": self.name, "model_version": self.version}
        req_id = envelope.get("id")
        if req_id is not None:  # a string: parse_infer checked it
            # the protocol's id names the request: without an X-Request-Id it is the request id too
            try:
                parsed.request_id = check_request_id(req_id)
            except ValueError:
                raise bad_request(
                    f"the request's 'id' {req_id[:40]!r} is not usable as its request id: 1 to 128 characters "
                    "of letters, digits and . _ : - (or send an X-Request-Id header)"
                ) from None
            out["id"] = req_id
        return parsed, functools.partial(_encode_infer, out)

    # -- feedback (the A/B readout) --------------------------------------------------------
    async def post_feedback(self, body: bytes, forwarded_by: str | None = None) -> Reply:
        """``POST /feedback``: outcomes by request id; raises ``ServingError`` for a body that is none.

        Outcomes unknown here go to the peers (:mod:`modelship.serving.peers`), unless this
        request is itself a peer's (``forwarded_by``: its instance): then they are left for
        that peer to count, and the reply names this instance."""
        off_loop = len(body) > self.settings.parse_in_thread_bytes
        peers = self.peers if forwarded_by is None else None
        items, result = await self._work(off_loop, self._feedback, body, peers is None and forwarded_by is None)
        if forwarded_by is not None:
            result["instance"] = self.feedback.instance
        elif peers is not None:
            wanted = pending(items, result["errors"])
            if wanted:
                fwd = await peers.forward(wanted)
                result, counted = combine(result, wanted, fwd, self.feedback.instance)
                self.feedback.count_rejected(counted)
                taken = sum(1 for v in fwd.resolved.values() if v is None)
                for name, n in (
                    ("accepted", taken),
                    ("refused", len(fwd.resolved) - taken),
                    ("unknown", counted.count("unknown")),
                    ("unreachable", counted.count("unreachable")),
                ):
                    if n:
                        self.metrics.forwarded[name].inc(n)
                if fwd.failed:
                    log.warning("feedback peers not all asked", extra={"failed": fwd.failed[:8]})
        return Reply(200, await self._work(off_loop, dumps, result))

    def _feedback(self, body: bytes, count_unknown: bool) -> tuple[list[Any], dict[str, Any]]:
        try:
            parsed = _loads(body)
            result = self.feedback.record(parsed, count_unknown=count_unknown)
            return list(parsed["outcomes"]), result  # record checked the shape
        except (BadRequest, ValueError) as exc:
            raise bad_request(str(exc)) from None

    def feedback_report(self) -> dict[str, Any]:
        """``GET /feedback``: this server's outcome figures, labelled as its metrics are."""
        return {"model": self.name, "version": self.version, "variant": self.settings.variant, **self.feedback.report()}


def _encode_invocations(pred: Any, request_id: str) -> bytes:
    return predictions_body(pred)


def _encode_infer(out: dict[str, Any], pred: Any, request_id: str) -> bytes:
    # The Open Inference Protocol's response id is the request's: echoed when the body had one, else ours.
    out.setdefault("id", request_id)
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
