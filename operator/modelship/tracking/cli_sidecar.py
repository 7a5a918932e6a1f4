"""``modelship tracking-sidecar``: the in-pod write buffer in front of the tracking server."""

from __future__ import annotations

import argparse
import logging
import os
import signal

from pydantic import ValidationError

from modelship.tracking import logs
from modelship.tracking.settings import SidecarSettings


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field of :class:`SidecarSettings`, its help from the field's docstring.

    A flag left out is ``None`` here, so that the environment (``MODELSHIP_SIDECAR_*``) and
    then the field's default fill it in (``settings_from_args``); help shows the default.
    """
    for name, field in SidecarSettings.model_fields.items():
        shown = "unset" if field.default is None else field.default
        described = (field.description or "").replace("%", "%%")  # argparse formats help with %
        parser.add_argument(
            _flag(name),
            dest=name,
            type=str if field.default is None else type(field.default),
            default=None,
            metavar=name.upper(),
            help=f"{described} Env MODELSHIP_SIDECAR_{name.upper()}; default {shown}.",
        )
    parser.add_argument(
        "--fsync", action="store_true", help="fsync each acknowledged write (survives power loss, ~3 ms per write)"
    )


def settings_from_args(args: argparse.Namespace) -> SidecarSettings:
    """The flags given, then the environment, then the defaults; a bad value exits with a
    message that names its flag (and the environment variable) and the rule it broke."""
    given = {
        name: getattr(args, name) for name in SidecarSettings.model_fields if getattr(args, name, None) is not None
    }
    try:
        return SidecarSettings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_flag(str(e['loc'][0]))} (or MODELSHIP_SIDECAR_{str(e['loc'][0]).upper()}): {e['msg']}, "
            f"got {e.get('input')!r}"
            for e in exc.errors()
        )
        raise SystemExit(f"modelship tracking-sidecar: {problems}") from None


def run(args: argparse.Namespace) -> int | None:
    import uvicorn

    from modelship.tracking.protocol.http import KEEP_ALIVE_S
    from modelship.tracking.sidecar.app import create_sidecar_app
    from modelship.tracking.sidecar.wal import DurableLog

    settings = settings_from_args(args)
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
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    return 0
