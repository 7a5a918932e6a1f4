"""``modelship db-upgrade``: bring a tracking database to the newest schema, as ``mlflow db
upgrade`` does, before any server starts on it.

The tracking server runs the same migrations when it starts, which suits a new or small
database. A migration that rewrites every run (0006 fills a row per run: about 6 s per
100,000 runs on PostgreSQL) can outlast a server's startup probe, whose kill rolls the
migration back and starts it over on the next try. The chart therefore runs this command as
the tracking pod's init container, which no probe watches; the server then finds the schema
at its head and starts at once.
"""

from __future__ import annotations

import argparse
import logging
import time

from modelship.tracking import logs
from modelship.tracking.settings import ServerSettings

log = logging.getLogger("modelship.tracking.db")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "url",
        nargs="?",
        help="the tracking server's --backend-store-uri (default: the environment's "
        "MODELSHIP_TRACKING_BACKEND_STORE_URI, else the server's default sqlite:///modelship-tracking.db)",
    )
    parser.add_argument("--log-level", default="info")


def run(args: argparse.Namespace) -> int | None:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    from modelship.tracking.store.db import make_engine
    from modelship.tracking.store.migrate import UnknownRevision, current_revision, head_revision, upgrade

    logs.setup(args.log_level)
    url = args.url or ServerSettings().backend_store_uri
    try:
        engine = make_engine(url)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise SystemExit(
            f"modelship db-upgrade: {url.split('://', 1)[0]!r} is not a database URL the tracking "
            f"server stores runs in ({exc}); give sqlite:///path or postgresql://user@host:port/db"
        ) from None
    shown = engine.url.render_as_string(hide_password=True)
    try:
        before, head = current_revision(engine), head_revision()
        if before == head:
            logs.event(log, "tracking database already at the newest schema", database=shown, revision=head)
            return 0
        started = time.monotonic()
        upgrade(engine)
        logs.event(
            log,
            "tracking database upgraded",
            database=shown,
            from_revision=before,
            to_revision=head,
            seconds=round(time.monotonic() - started, 2),
        )
        return 0
    except UnknownRevision as exc:
        raise SystemExit(f"modelship db-upgrade: {exc}") from None
    except OperationalError as exc:
        raise SystemExit(f"modelship db-upgrade: cannot reach {shown}: {exc.orig}") from None
    finally:
        engine.dispose()
