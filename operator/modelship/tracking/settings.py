"""Typed settings of the tracking server and the sidecar.

Each field can come from the command line (the CLI modules fill them in) or from the
environment with the prefix shown on the class (``MODELSHIP_TRACKING_PORT=...``).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseSettings):
    """Settings of ``modelship tracking-server``."""

    model_config = SettingsConfigDict(env_prefix="MODELSHIP_TRACKING_", extra="ignore")

    host: str = "127.0.0.1"
    """Address to listen on. The chart sets 0.0.0.0 inside the pod."""
    port: int = 5000
    """TCP port (MLflow's default)."""
    backend_store_uri: str = "sqlite:///modelship-tracking.db"
    """SQLAlchemy URL: ``sqlite:///path`` (WAL mode) or ``postgresql://user@host/db``."""
    artifacts_destination: str = "./mlartifacts"
    """Where proxied artifacts live: a local directory (or mounted PVC) or ``s3://bucket/prefix``."""
    default_artifact_root: str | None = None
    """Root of new experiments' artifact locations, as ``mlflow server --default-artifact-root``.
    Unset: ``mlflow-artifacts:/`` (clients go through the proxy). A local directory or
    ``file://`` URI: clients write there themselves (the server's machine, or a shared
    mount), and the server reads and writes runs' artifacts under it for the calls that go
    through it (``artifacts/list``, ``get-artifact``, ``upload-artifact``)."""
    auth_token: str | None = Field(default=None)
    """When set, every write (POST/PUT/PATCH/DELETE) needs ``Authorization: Bearer <token>``."""
    log_level: str = "info"
    """Level of the structured log lines."""
    max_request_body_bytes: int = Field(default=1 << 20, ge=1024)
    """Largest body of an API call not named below (creates, updates, searches, set-tag,
    log-parameter, log-metric, the registry's calls): 1 MiB. A larger one gets a 413 before
    it is read."""
    max_log_batch_body_bytes: int = Field(default=32 << 20, ge=1024)
    """Largest body of ``runs/log-batch``, ``runs/log-inputs``, ``runs/log-model`` and a
    logged model's tags and params, which carry many entities, dataset schemas or model
    signatures: 32 MiB, far above MLflow's batch limits."""
    max_artifact_bytes: int = Field(default=5 << 30, ge=1024)
    """Largest artifact upload (one file, one PUT): 5 GiB. A larger one gets a 413 and leaves
    nothing behind; a file already stored under that path stays as it was."""
    chart_summaries_every_s: float = Field(default=60.0, ge=0)
    """How often the server builds, in the background, the per-block summaries of long metric
    histories that lack them or have grown (``server/summaries.py``), starting at start-up:
    60 s. 0: never; a chart then builds them at its first read of a history."""


class SidecarSettings(BaseSettings):
    """Settings of ``modelship tracking-sidecar``: each field is also a flag of that command
    (``max_buffer_bytes`` is ``--max-buffer-bytes``); a flag given wins over the environment."""

    model_config = SettingsConfigDict(env_prefix="MODELSHIP_SIDECAR_", extra="ignore", use_attribute_docstrings=True)

    host: str = "127.0.0.1"
    """Address to listen on; always loopback in a pod: only the trainer container talks to the sidecar."""
    port: int = 5001
    """TCP port; the trainer's ``MLFLOW_TRACKING_URI`` is ``http://127.0.0.1:<port>``."""
    server: str = "http://127.0.0.1:5000"
    """Base URL of the tracking server that writes are forwarded to."""
    buffer_dir: str = "./tracking-buffer"
    """Directory of the durable write log (an emptyDir in a pod)."""
    server_token: str | None = None
    """Bearer token sent to the server with every forwarded write (prefer the environment:
    a flag shows in the process list)."""
    batch_max_entities: int = Field(default=1000, ge=1, le=1000)
    """Largest forwarded batch, in entities (MLflow's log-batch limit)."""
    linger: float = Field(default=0.05, ge=0)
    """Seconds the forwarder waits for more writes before sending a partial batch."""
    retry_initial: float = Field(default=0.2, gt=0)
    """First retry delay in seconds after a failed forward; doubles up to ``retry_max``."""
    retry_max: float = Field(default=5.0, gt=0)
    """Longest delay in seconds between two forward attempts."""
    drain_timeout: float = Field(default=30.0, ge=0)
    """Seconds to keep forwarding after SIGTERM before giving up (what is left stays on disk)."""
    read_wait: float = Field(default=10.0, ge=0)
    """Seconds a read waits at most for earlier acknowledged writes to reach the server."""
    max_buffer_bytes: int = Field(default=256 << 20, ge=64 << 10)
    """Most bytes of acknowledged, undelivered writes held on disk (log records and artifact
    uploads): 256 MiB, at least 64 KiB. At the cap a write gets 503 ``TEMPORARILY_UNAVAILABLE``
    with ``Retry-After`` (the mlflow client waits and retries) instead of growing; memory stays
    flat whatever the cap, since pending records are read from disk."""
    max_attempts: int = Field(default=10, ge=1)
    """How many times one record may fail with a server error (5xx) that is its own — reads on
    the server still work — before it moves to the dead letter so the rest can flow."""
    dead_letter_max_bytes: int = Field(default=64 << 20, ge=0)
    """Largest ``rejected.jsonl``: past it, refused records are counted and logged but no longer
    kept (a trainer logging into a deleted run must not fill the disk)."""
    termination_log: str | None = None
    """File to keep the sidecar's report in (pending and dead-lettered writes, a refused
    token) while it runs and after the drain: ``/dev/termination-log`` in a trial pod, where
    the kubelet shows it as the container's termination message. Unset: none."""
    log_level: str = "info"
    """Level of the structured log lines."""
