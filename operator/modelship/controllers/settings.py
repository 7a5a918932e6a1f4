"""The operator's settings: one typed class, read from MODELSHIP_* variables and flags."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LogFormat = Literal["logfmt", "json", "text"]


class OperatorConfig(BaseSettings):
    """How ``modelship operator`` runs. Flags override environment variables.

    Every field can be set as ``MODELSHIP_<FIELD>``, e.g. ``MODELSHIP_METRICS_PORT=9100``.
    """

    model_config = SettingsConfigDict(env_prefix="MODELSHIP_", extra="ignore")

    namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Namespaces to watch (flag ``--namespace``, repeatable; env: comma-separated).
    Empty means every namespace (cluster-wide), which needs the ClusterRole."""

    health_host: str = "127.0.0.1"
    """Address the liveness endpoint binds to. 127.0.0.1 suits a local run; the
    Deployment sets 0.0.0.0 so that the kubelet can reach it."""

    liveness_port: int = Field(default=8080, ge=0, le=65535)
    """Port of kopf's liveness endpoint, served at ``/healthz``. 0 turns it off."""

    metrics_host: str | None = None
    """Address the Prometheus endpoint binds to; unset means the same as health_host."""

    metrics_port: int = Field(default=9090, ge=0, le=65535)
    """Port of the Prometheus ``/metrics`` endpoint. 0 turns it off."""

    peering_name: str | None = None
    """Name of a kopf peering object. Unset (the default) runs standalone: exactly one
    replica may run. Set, kopf's peering pauses all but the highest-priority replica
    (needs kopf's ClusterKopfPeering/KopfPeering CRDs and the chart's peering RBAC)."""

    priority: int | None = None
    """Peering priority of this replica: the live replica with the highest priority works,
    the others pause (kopf pauses *all* replicas of equal priority). Unset with peering,
    each replica draws a random one, so exactly one works and another takes over when its
    peering record expires (about a minute). Unused standalone."""

    tracking_url: str | None = None
    """URL of the tracking server (e.g. http://modelship-tracking.modelship-system:5000),
    handed to training pods. Trial pods reach it from their tracking sidecar, so it must
    be an address pods can reach (a Service DNS name in a cluster)."""

    tracking_token: SecretStr | None = None
    """Bearer token of the operator's own writes to the tracking server (creating
    experiments and runs, closing runs), for a server started with an auth token. From
    ``MODELSHIP_TRACKING_TOKEN`` only, never a flag (flags show in the process list); the
    chart fills it from ``tracking.authTokenSecret``."""

    tracking_token_secret: str | None = Field(default=None, pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
    """Name of the Secret, in each Experiment's namespace, whose ``tracking_token_secret_key``
    holds the token trial pods' tracking sidecars send (flag ``--tracking-token-secret``).
    ``spec.tracking.tokenSecretRef`` overrides it per Experiment. The kubelet reads it into
    the sidecar's environment: the operator never reads the Secret. Unset: no token."""

    tracking_token_secret_key: str = Field(default="token", min_length=1, pattern=r"^[-._a-zA-Z0-9]+$")
    """The key inside that Secret (flag ``--tracking-token-secret-key``)."""

    trainer_image: str | None = None
    """Image of an Experiment's trial pods when ``spec.project.image`` is unset; unset
    means ``ghcr.io/modelship/modelship:<operator version>``."""

    forbid_pickle: bool = False
    """Refuse ModelDeployments whose ``spec.allowPickle`` lets model servers load pickle,
    cloudpickle or ``loader_module`` models (flag ``--forbid-pickle``): a cluster-wide
    "no model may run its author's code on load"."""
    webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Registry webhook receivers (flag ``--webhook-url``, repeatable; env: comma-separated).
    Each gets every version-created, stage-transitioned and alias-moved event. Empty: no
    webhooks."""

    webhook_secret: str | None = None
    """``NAMESPACE/NAME`` of the Secret whose ``webhook_secret_key`` holds the HMAC-SHA256
    key that signs each delivery (``X-Modelship-Signature``). Unset: deliveries are
    unsigned."""

    webhook_secret_key: str = "secret"
    """The key inside the webhook Secret."""

    webhook_max_attempts: int = Field(default=10, ge=1)
    """Tries per delivery (exponential backoff from 1 s, capped at 60 s) before it is
    dropped with a warning Event."""

    webhook_timeout: float = Field(default=10.0, gt=0)
    """Seconds one delivery attempt may take."""

    log_format: LogFormat = "logfmt"
    """Log line format: logfmt (key=value), json (one object per line) or text."""

    verbose: bool = False
    """Log at DEBUG level, kopf's own internals included."""

    watch_server_timeout: int = Field(default=300, ge=10)
    """Seconds the API server keeps one watch open before kopf reconnects. A bounded
    watch survives silently dropped connections (load balancers, NAT)."""

    @field_validator("namespaces", "webhook_urls", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def clusterwide(self) -> bool:
        """Whether the operator watches every namespace."""
        return not self.namespaces

    @property
    def liveness_endpoint(self) -> str | None:
        """The URL kopf serves liveness on, or None when turned off."""
        if not self.liveness_port:
            return None
        return f"http://{self.health_host}:{self.liveness_port}/healthz"
