"""The sidecar's status as Prometheus text: a pure function of the status endpoint's body,
so the two never disagree. No I/O here."""

from __future__ import annotations

from typing import Any

PREFIX = "modelship_sidecar_"

# (name, type, help, how to read it from the status body)
_SERIES: list[tuple[str, str, str, Any]] = [
    ("pending_records", "gauge", "Acknowledged writes not yet delivered to the server.", lambda s: s["pending"]),
    ("buffered_bytes", "gauge", "Bytes the undelivered writes hold on disk.", lambda s: s["buffered_bytes"]),
    ("buffer_limit_bytes", "gauge", "At this many buffered bytes writes get 503.", lambda s: s["max_buffer_bytes"]),
    ("server_up", "gauge", "1 while the last forward attempt got an answer.", lambda s: int(s["server_up"])),
    (
        "auth_failing",
        "gauge",
        "1 while the server answers forwarded writes with 401/403.",
        lambda s: int(s["auth_failing"]),
    ),
    ("buffer_full_total", "counter", "Writes answered 503 because the buffer was full.", lambda s: s["buffer_full"]),
    ("forward_requests_total", "counter", "Requests the forwarder sent to the server.", lambda s: s["requests_sent"]),
    ("forward_failures_total", "counter", "Forward attempts that did not deliver.", lambda s: s["forward_failures"]),
]


def metrics_text(status: dict[str, Any]) -> str:
    lines: list[str] = []
    for name, kind, text, get in _SERIES:
        lines += [f"# HELP {PREFIX}{name} {text}", f"# TYPE {PREFIX}{name} {kind}", f"{PREFIX}{name} {get(status)}"]
    dead = status["dead_letter"]
    name = f"{PREFIX}dead_letter_total"
    lines += [f"# HELP {name} Acknowledged writes moved to the dead letter, by reason.", f"# TYPE {name} counter"]
    lines += [f'{name}{{reason="{reason}"}} {dead[reason]}' for reason in ("refused", "failed")]
    name = f"{PREFIX}dead_letter_dropped_total"
    lines += [
        f"# HELP {name} Dead-lettered writes only counted: the dead letter was full.",
        f"# TYPE {name} counter",
        f"{name} {dead['dropped']}",
    ]
    return "\n".join(lines) + "\n"
