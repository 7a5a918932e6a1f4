"""Bring a database to the newest schema with the Alembic migrations shipped here."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def alembic_config(engine: Engine) -> Config:
    config = _config()
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


class UnknownRevision(RuntimeError):
    """The database is at a revision this build does not ship: a newer build wrote it."""


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The newest revision this build ships."""
    head = _scripts().get_current_head()
    assert head is not None, f"no migrations under {MIGRATIONS}"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database without this store's schema."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Run every pending migration (idempotent; safe on each start), in one transaction.
    Refuses, changing nothing, a database a newer build has migrated past this one's head."""
    config = alembic_config(engine)
    known = {script.revision for script in _scripts().walk_revisions()}
    with engine.begin() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        if current is not None and current not in known:
            url = engine.url.render_as_string(hide_password=True)
            raise UnknownRevision(
                f"the tracking database {url} is at schema revision {current!r}, which this build "
                f"(newest {head_revision()!r}) does not ship: a newer modelship migrated it. Run that "
                "version or a later one, or restore the backup taken before it upgraded the database."
            )
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
