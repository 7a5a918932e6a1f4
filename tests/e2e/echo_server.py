"""A pod's HTTP server for the network tests: says which pod answered, counts what it got.

    python echo_server.py PORT

GET /            {"pod": <hostname>, "path": ..., "headers": {...}} and header x-served-by
GET /ready       200, or 503 once POST /unready was called (the pod's readiness probe)
GET /count       {"requests": n}: requests to anything but /ready and /count
Standard library only: it runs as a pod's container on the bed.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"ready": True, "requests": 0}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-served-by", socket.gethostname())
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/ready":
            self._send(200 if STATE["ready"] else 503, {"ready": STATE["ready"]})
            return
        if self.path == "/count":
            self._send(200, {"requests": STATE["requests"]})
            return
        with LOCK:
            STATE["requests"] += 1
        self._send(200, {"pod": socket.gethostname(), "path": self.path, "headers": dict(self.headers)})

    def do_POST(self) -> None:
        if self.path == "/unready":
            STATE["ready"] = False
            self._send(200, {"ready": False})
            return
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.do_GET()


if __name__ == "__main__":
    server = ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
