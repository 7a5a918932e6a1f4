"""``modelship tracking-sidecar``: the in-pod write buffer in front of the tracking server."""

from __future__ import annotations

import argparse
import logging
import os
import signal

from modelship.tracking import logs
from modelship.tracking.settings import SidecarSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = SidecarSettings()
    parser.add_argument("--port", type=int, default=d.port)
    parser.add_argument("--host", default=d.host, help="keep 127.0.0.1 inside a pod")
    parser.add_argument("--server", default=d.server, help="tracking server base URL")
    parser.add_argument(
        "--buffer-dir", default=d.buffer_dir, help="directory of the durable write log (an emptyDir in a pod)"
    )
    parser.add_argument(
        "--server-token",
        default=d.server_token,
        help="bearer token for the server (env MODELSHIP_SIDECAR_SERVER_TOKEN)",
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=d.drain_timeout, help="seconds to keep forwarding after SIGTERM"
    )
    parser.add_argument(
        "--fsync", action="store_true", help="fsync each acknowledged write (survives power loss, ~3 ms per write)"
    )
    parser.add_argument("--log-level", default=d.log_level)


def run(args: argparse.Namespace) -> int | None:
    import uvicorn

    from modelship.tracking.sidecar.app import create_sidecar_app
    from modelship.tracking.sidecar.wal import DurableLog

    settings = SidecarSettings(
        host=args.host,
        port=args.port,
        server=args.server,
        buffer_dir=args.buffer_dir,
        server_token=args.server_token,
        drain_timeout=args.drain_timeout,
        log_level=args.log_level,
    )
    logs.setup(settings.log_level)
    wal = DurableLog(settings.buffer_dir, fsync=args.fsync)
    app = create_sidecar_app(settings, wal)
    logs.event(
        logging.getLogger("modelship.tracking.sidecar"),
        "sidecar starting",
        port=settings.port,
        pid=os.getpid(),
        fsync=args.fsync,
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal
    # with the handler that was installed before it; a no-op one here makes a clean
    # shutdown exit 0, which is what a pod's container status should show.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level="warning", access_log=False, timeout_graceful_shutdown=5
    )
    return 0
