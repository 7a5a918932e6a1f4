"""Log configuration: kopf's per-object loggers, formatted as logfmt, JSON or text."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from modelship.controllers.settings import LogFormat

# LogRecord attributes that are not extra fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_SKIP = {"k8s_skip", "k8s_ref", "settings"}


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text and not any(c in text for c in ' ="\\\n\t'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


class LogfmtFormatter(logging.Formatter):
    """One ``key=value`` line per record, with the Kubernetes object kopf attaches.

    ``time=... level=info logger=kopf.objects kind=Experiment namespace=ns name=x msg="..."``
    """

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            for key in ("kind", "namespace", "name"):
                if ref.get(key):
                    fields[key] = ref[key]
        fields["msg"] = record.getMessage()
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _SKIP and not key.startswith("_"):
                fields[key] = value
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())


def configure_logging(log_format: LogFormat, *, verbose: bool) -> None:
    """Set up the root logger the way kopf expects, then swap in our formatter."""
    kopf_format = kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL
    # kopf installs its stream handler on the root logger and quiets asyncio;
    # log_prefix puts [namespace/name] in front of text messages.
    kopf.configure(
        verbose=verbose,
        log_format=kopf_format,
        log_prefix=log_format == "text",
        log_refkey="object",
    )
    if log_format == "logfmt":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(LogfmtFormatter())
    # Chatty at INFO with nothing to say: the kubernetes client, and the liveness endpoint,
    # which would log a request line and a probe success every time the kubelet asks.
    # optuna says "A new study created in memory" on every reconcile of a search; httpx says
    # each request to the tracking server and the model servers, URL and query included.
    for noisy in ("urllib3", "kubernetes", "aiohttp.access", "kopf.activities.probe", "optuna", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not verbose:
        # A ModelDeployment's follow timer succeeds every 2 s; kopf would say so each time.
        logging.getLogger("kopf.objects").addFilter(_QuietTimers())


class _QuietTimers(logging.Filter):
    """Drop kopf's per-run success line of timers; their failures and everything else pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (record.levelno <= logging.INFO and message.startswith("Timer ") and message.endswith(" succeeded."))
