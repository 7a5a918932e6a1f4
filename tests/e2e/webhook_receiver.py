"""A webhook receiver for the e2e tests: verifies each signature and records every attempt.

It listens on loopback (the operator runs on the host). ``fail_first`` makes it answer
503 to the first attempt of each delivery id, so that retries with backoff are exercised.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    delivery_id: str
    event: str
    body: dict[str, Any]
    signature_ok: bool
    status: int


@dataclass
class Receiver:
    secret: bytes
    fail_first: bool = False
    down: set[str] = field(default_factory=set)
    """Namespaces whose deliveries are answered 503 while they are here (a receiver that is down)."""
    attempts: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def accepted(self) -> list[Delivery]:
        with self.lock:
            return [d for d in self.attempts if d.status == 200]

    def for_namespace(self, namespace: str) -> list[Delivery]:
        return [d for d in self.accepted() if d.body.get("data", {}).get("namespace") == namespace]

    def all_for_namespace(self, namespace: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.attempts if d.body.get("data", {}).get("namespace") == namespace]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = "sha256=" + hmac.new(receiver.secret, raw, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(expected, self.headers.get("X-Modelship-Signature") or "")
                delivery_id = self.headers.get("X-Modelship-Delivery") or ""
                with receiver.lock:
                    seen = any(d.delivery_id == delivery_id for d in receiver.attempts)
                    body = json.loads(raw)
                    refused = (receiver.fail_first and not seen) or body.get("data", {}).get(
                        "namespace"
                    ) in receiver.down
                    status = 503 if refused else 200
                    receiver.attempts.append(
                        Delivery(delivery_id, self.headers.get("X-Modelship-Event") or "", body, ok, status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True, name="webhook-receiver").start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
