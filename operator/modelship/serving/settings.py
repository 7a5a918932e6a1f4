"""Typed server settings; every field can come from a ``MODELSHIP_``-prefixed variable."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServingSettings(BaseSettings):
    """Settings of one model server process."""

    model_config = SettingsConfigDict(env_prefix="MODELSHIP_", extra="ignore", protected_namespaces=())

    model_uri: str = ""
    """The model to serve: a path, file://, runs:/, models:/, mlflow-artifacts:/ or s3:// URI."""
    host: str = "127.0.0.1"
    """Interface to listen on (as ``mlflow models serve``; use 0.0.0.0 in a pod)."""
    port: int = 5000
    """TCP port (``mlflow models serve`` defaults to 5000 too)."""
    model_name: str = ""
    """Name in metrics labels and in v2 URLs; defaults to the model directory's name."""
    model_version: str = "1"
    """Version in metrics labels and in v2 ``/versions/{v}`` URLs."""
    variant: str = "default"
    """The ModelDeployment variant this pod serves (a metrics label)."""
    max_batch_size: int = Field(default=1024, ge=1)
    """Most rows coalesced into one predict call; a larger request runs alone."""
    max_batch_delay_ms: float = Field(default=0.0, ge=0.0)
    """How long a batch may wait for more requests once one arrived. 0: none — requests
    that arrive while a predict runs form the next batch (adaptive batching)."""
    inline_predict_ms: float = Field(default=2.0, ge=0.0)
    """Micro-batches run on the event loop, not the predict thread, while each of the last 8
    predict calls took less than this (a thread hop and the GIL's hand-overs cost more than
    a quick predict); a slower call sends them back to the thread. 0: always the thread."""
    batching: bool | None = None
    """Force micro-batching on or off; None: on for row-wise flavors (sklearn), off for
    user python_function classes, whose predict may look at the whole input."""
    timeout_s: float = Field(default=60.0, gt=0)
    """A predict that takes longer gets a 504 (``mlflow models serve --timeout``)."""
    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Larger request bodies get a 413."""
    parse_in_thread_bytes: int = Field(default=1024 * 1024, ge=0)
    """JSON bodies larger than this (and every CSV or Parquet body) are parsed, and their
    replies encoded, on a worker thread, so that probes and small requests are answered
    meanwhile; smaller JSON bodies on the event loop, where a thread hop costs more than
    the parse."""
    shutdown_delay_s: float = Field(default=0.0, ge=0)
    """On SIGTERM, keep serving this long while /ping fails and answers close their
    connections, so that the Service and any proxy stop sending here first (a
    ModelDeployment's pods use 5 s); then the graceful shutdown."""
    graceful_shutdown_s: float = Field(default=30.0, ge=0)
    """On SIGTERM, how long in-flight requests may take before the process exits anyway."""
    allow_pickle: bool = False
    """Load pickle, cloudpickle and ``loader_module`` models, which run the code of whoever made
    the model (``--allow-pickle``); skops models need no opt-in."""
    skops_trusted_types: str = ""
    """Comma-separated types a skops file may hold beyond skops' defaults; never taken from the
    model's own MLmodel."""
    log_level: str = "info"
    """Python log level name."""
    access_log: bool = False
    """One log line per request (off by default: it costs throughput)."""
    drift: bool = True
    """Watch the inputs and predictions for drift against the training profile saved with the
    model (``training_profile.json``; a model without one has no drift figures): ``/drift``
    and the ``modelship_drift_*`` metrics. ``--no-drift`` turns it off."""
    drift_window: int = Field(default=10_000, ge=10, le=1_000_000)
    """Rows in the sliding window the statistics are computed over (the most recent ones);
    memory is about 8 bytes x this x features."""
    drift_min_samples: int = Field(default=500, ge=1)
    """Fewest rows in the window before any verdict other than ``insufficient``."""
    drift_psi_warn: float = Field(default=0.1, ge=0)
    """PSI from which a feature's verdict is ``warn``."""
    drift_psi_alert: float = Field(default=0.25, ge=0)
    """PSI from which a feature's verdict is ``drift``."""
    drift_ignore: str = ""
    """Comma-separated features not watched (``__prediction__`` for the predictions)."""
    feedback_window: int = Field(default=50_000, ge=0, le=10_000_000)
    """Most recent request ids remembered with their predictions, for ``POST /feedback`` (the
    A/B readout); the oldest is forgotten first. About 190 bytes each for a one-row request
    (9 MB at the default, measured by benchmarks/serving/feedback_cost.py: minutes of
    traffic at a few hundred requests a second); 0
    remembers none (every outcome is then ``unknown``)."""
    feedback_max_rows: int = Field(default=64, ge=1, le=100_000)
    """Largest request (in rows) whose predictions are remembered for labels; a larger one
    takes a reward only."""
    feedback_max_batch: int = Field(default=1000, ge=1, le=100_000)
    """Most outcomes counted from one ``POST /feedback``; the rest are refused, each named."""
    feedback_peers: str = ""
    """Where the other pods of this deployment are, for outcomes this server does not know (sent
    through a Service, they land on any pod): ``host[:port]``, comma-separated; a DNS name gives
    every address it resolves to (a ModelDeployment's pods get its headless Service
    ``<name>--peers``); the port defaults to ``port``. Empty: no forwarding."""
    pod_ip: str = ""
    """This pod's address (the downward API's ``status.podIP``), so that it does not ask itself."""
    feedback_peer_timeout_s: float = Field(default=2.0, gt=0, le=60)
    """How long one peer may take to answer a forwarded batch of outcomes."""
    feedback_forward_deadline_s: float = Field(default=5.0, gt=0, le=120)
    """How long asking the peers may take in all, for one ``POST /feedback``; outcomes a peer
    not asked by then might know are refused as ``unreachable`` (send them again)."""
    feedback_max_peers: int = Field(default=16, ge=0, le=1000)
    """Most peers asked for one ``POST /feedback``."""
    feedback_forward_concurrency: int = Field(default=4, ge=1, le=256)
    """Most ``POST /feedback`` requests forwarding to peers at once; the others wait (within
    ``feedback_forward_deadline_s``)."""
