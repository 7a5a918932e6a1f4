"""The sidecar's bounds on what it keeps and how long it retries, as typed settings.

They come from the environment (``MODELSHIP_SIDECAR_MAX_BUFFER_BYTES=...``), with the
prefix of :class:`~modelship.tracking.settings.SidecarSettings`. They live here, next to the
code they bound, until ``SidecarSettings`` and the ``tracking-sidecar`` command line carry
them (that module belongs to the settings of the whole tracking package).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SidecarLimits(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELSHIP_SIDECAR_", extra="ignore")

    max_buffer_bytes: int = Field(default=256 << 20, ge=64 << 10)
    """Most bytes of acknowledged, undelivered writes the sidecar holds on disk (log records
    and artifact uploads): 256 MiB. At the cap a write gets 503 ``TEMPORARILY_UNAVAILABLE``
    with ``Retry-After`` (the mlflow client waits and retries) instead of growing; memory
    stays flat whatever the cap, since pending records are read from disk."""
    max_attempts: int = Field(default=10, ge=1)
    """How many times one record may fail with a server error (5xx) that is its own — reads
    on the server still work — before it moves to the dead letter so the rest can flow."""
    dead_letter_max_bytes: int = Field(default=64 << 20, ge=0)
    """Largest ``rejected.jsonl``: past it, refused records are counted and logged but no
    longer kept (a trainer logging into a deleted run must not fill the disk)."""
