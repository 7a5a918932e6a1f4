"""``modelship serve``: run the model server (flags as ``mlflow models serve`` names them)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, cast

log = logging.getLogger("modelship.serving")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model-uri", help="model to serve (path, file://, runs:/, models:/, s3://)")
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1; MODELSHIP_HOST)")
    parser.add_argument("-p", "--port", type=int, help="port (default 5000; MODELSHIP_PORT)")
    parser.add_argument(
        "-w",
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port (default 1); each loads the model and keeps its own "
        "/metrics, so in Kubernetes scale with replicas instead",
    )
    parser.add_argument("-t", "--timeout", type=float, help="predict timeout in seconds (default 60)")
    parser.add_argument(
        "--env-manager",
        default="local",
        choices=["local"],
        help="only 'local': the pod's image is the environment",
    )
    parser.add_argument("--model-name", help="name in v2 URLs and metrics labels")
    parser.add_argument("--model-version", help="version in v2 URLs and metrics labels")
    parser.add_argument("--variant", help="variant label of metrics")
    parser.add_argument("--max-batch-size", type=int, help="most rows in one predict call (default 1024)")
    parser.add_argument("--max-batch-delay-ms", type=float, help="extra wait for a batch to fill (default 0)")
    parser.add_argument("--batching", choices=["auto", "on", "off"], default=None)
    parser.add_argument("--log-level", help="debug, info, warning, error")
    parser.add_argument("--access-log", action="store_true", default=None)
    parser.add_argument(
        "--drift",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="watch inputs and predictions for drift against the model's training profile (default on; "
        "MODELSHIP_DRIFT); --no-drift saves its small cost per predict call",
    )
    parser.add_argument("--drift-window", type=int, help="rows in the drift window (default 10000)")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        default=None,
        help="load pickle, cloudpickle and loader_module models, which run the code of "
        "whoever made the model: only for models from a source you trust "
        "(MODELSHIP_ALLOW_PICKLE; skops models need no opt-in)",
    )


def settings_from_args(args: argparse.Namespace) -> Any:
    from modelship.serving.settings import ServingSettings

    given: dict[str, Any] = {
        "model_uri": args.model_uri,
        "host": args.host,
        "port": args.port,
        "timeout_s": args.timeout,
        "model_name": args.model_name,
        "model_version": args.model_version,
        "variant": args.variant,
        "max_batch_size": args.max_batch_size,
        "max_batch_delay_ms": args.max_batch_delay_ms,
        "log_level": args.log_level,
        "access_log": args.access_log,
        "drift": args.drift,
        "drift_window": args.drift_window,
    }
    if args.batching is not None:
        given["batching"] = {"auto": None, "on": True, "off": False}[args.batching]
    if args.allow_pickle:
        given["allow_pickle"] = True
    return ServingSettings(
        **{k: v for k, v in given.items() if v is not None or k == "batching" and "batching" in given}
    )


def _server_class(app: Any = None, delay_s: float = 0.0) -> Any:
    import threading

    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn's graceful shutdown (stop accepting, finish in-flight requests, run the
        lifespan shutdown), then a normal exit with status 0: uvicorn would re-raise the
        signal and die by it, which a Job or a test reads as a crash.

        With a shutdown delay, the first SIGTERM starts draining instead: /ping fails, so
        the pod leaves its Service's endpoints (kube-proxy and gateways take a moment to
        notice), answers close their connections, and requests are still served until
        the delay is over. A second signal stops at once."""

        draining = False

        def handle_exit(self, sig: int, frame: Any) -> None:
            # A model that failed to load has nothing to drain: stop at once.
            failed = app is not None and app.core.load_error is not None
            if delay_s > 0 and app is not None and not self.draining and not failed:
                self.draining = app.draining = True
                log.info("draining", extra={"seconds": delay_s})
                timer = threading.Timer(delay_s, self._stop, (sig, frame))
                timer.daemon = True
                timer.start()
                return
            self._stop(sig, frame)

        def _stop(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    return DrainingServer


def _termination_message(text: str) -> None:
    """Where Kubernetes reads why a container stopped (its terminationMessagePath), when there is one."""
    import os

    path = os.environ.get("MODELSHIP_TERMINATION_LOG", "/dev/termination-log")
    if not os.path.isfile(path):  # never create it: outside a pod there is none to write
        return
    try:
        with open(path, "w") as f:
            f.write(text[-4000:])
    except OSError:
        pass  # not in a pod, or no such file: the log says it too


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from modelship.serving import logs
    from modelship.uris import redact_url

    settings = settings_from_args(args)
    logs.configure(settings.log_level)
    if not settings.model_uri:
        print("modelship serve: --model-uri (or MODELSHIP_MODEL_URI) is required", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("modelship serve: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    config = uvicorn.Config(
        cast(Any, None),  # each worker sets its own app: the core is built after the fork
        host=settings.host,
        port=settings.port,
        loop=loop,
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s) or None,
        timeout_keep_alive=75,
        backlog=2048,
    )
    log.info(
        "serving",
        extra={
            "uri": redact_url(settings.model_uri),
            "host": settings.host,
            "port": settings.port,
            "workers": args.workers,
        },
    )
    if args.workers == 1:
        return _serve(settings, config)
    return _prefork(settings, config, args.workers)


def _serve(settings: Any, config: Any, sockets: list[Any] | None = None) -> int:
    """One server process: its own core (model, batcher, metrics) on ``config``'s port or ``sockets``."""
    from modelship.serving.app import create_app
    from modelship.serving.core import ModelServer
    from modelship.uris import redact_url

    core = ModelServer(settings)

    def stop_process() -> None:
        import os
        import signal

        os.kill(os.getpid(), signal.SIGTERM)

    app = create_app(settings, core, on_load_failure=stop_process)
    config.app = app
    _server_class(app, settings.shutdown_delay_s)(config).run(sockets=sockets)
    if core.load_error:
        _termination_message(f"model {redact_url(settings.model_uri)} could not be loaded: {core.load_error}")
        return 1
    log.info("stopped")
    return 0


def _prefork(settings: Any, config: Any, workers: int) -> int:
    """``workers`` forked server processes accepting on one listening socket (gunicorn's
    model, as uvicorn's ``--workers``): the kernel hands each connection to one of them.

    Fork before anything starts a thread; each worker loads the model itself. SIGTERM and
    SIGINT go to every worker (each drains as one server does); when a worker exits with
    an error (its model did not load) the others are stopped and the exit status is 1,
    so a supervisor restarts the whole server rather than run it short of workers.
    """
    import os
    import signal

    sock = config.bind_socket()
    pids: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _serve(settings, config, [sock])
            finally:
                os._exit(code)
        pids.append(pid)
    sock.close()

    def forward(sig: int, _frame: Any) -> None:
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = False
    live = set(pids)
    while live:
        pid, status = os.wait()
        live.discard(pid)
        if os.waitstatus_to_exitcode(status) != 0 and not failed:
            failed = True
            log.error("worker failed; stopping the others", extra={"pid": pid, "status": status})
            forward(signal.SIGTERM, None)
    return 1 if failed else 0
