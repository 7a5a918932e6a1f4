"""The slice of the kubelet's HTTPS API that `kubectl logs` needs: /containerLogs.

The API server proxies ``GET pods/log`` to ``https://<node InternalIP>:<port>/containerLogs/
<namespace>/<pod>/<container>``; this serves the container log files the node agent
writes, with ``tailLines``, ``previous`` and ``follow``.
"""

from __future__ import annotations

import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# (namespace, pod, container) -> (log file, still running?) or None
LogFinder = Callable[[str, str, str, bool], "tuple[Path, Callable[[], bool]] | None"]


def serve(host: str, port: int, cert: Path, key: Path, client_ca: Path, find: LogFinder) -> ThreadingHTTPServer:
    """Serve on host:port; only clients with a certificate of ``client_ca`` (the API server) get in."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:  # the agent logs what matters
            pass

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            query = urllib.parse.parse_qs(url.query)
            if len(parts) != 4 or parts[0] != "containerLogs":
                self.send_error(404, "only /containerLogs/<namespace>/<pod>/<container> is served")
                return
            previous = query.get("previous", ["false"])[0] == "true"
            found = find(parts[1], parts[2], parts[3], previous)
            if found is None:
                self.send_error(404, f"no log for container {parts[3]} of pod {parts[1]}/{parts[2]}")
                return
            path, running = found
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            data = path.read_bytes() if path.exists() else b""
            tail = query.get("tailLines")
            if tail:
                data = b"".join(data.splitlines(keepends=True)[-int(tail[0]) :])
            self.wfile.write(data)
            if query.get("follow", ["false"])[0] == "true":
                offset = path.stat().st_size if path.exists() else 0
                while True:
                    time.sleep(0.5)
                    if path.exists() and path.stat().st_size > offset:
                        with open(path, "rb") as f:
                            f.seek(offset)
                            chunk = f.read()
                        offset += len(chunk)
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    elif not running():
                        break

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(str(client_ca))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="kubelet-api", daemon=True).start()
    return server
