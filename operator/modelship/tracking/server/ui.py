"""The web UI's static files: ``/`` is the page, ``/ui/<file>`` its script and styles.

The bundle is built from ``ui/`` by ``scripts/setup.sh`` (``npm ci`` and ``npm run build``)
into ``ui_static/`` beside this module, which the Python package ships as data. Without a
bundle, ``/`` answers with a page that says how to build it. The pages read the server's
REST API from the browser; this module only serves files.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from modelship.tracking.errors import not_found
from modelship.tracking.protocol.http import error_response

STATIC = Path(__file__).with_name("ui_static")
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.(js|css|map|svg|png)$")
# The page runs only its own script and talks only to this server; data it shows is
# text (the UI never builds HTML from strings), and blob: is for image previews.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; object-src 'none'; frame-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
NOT_BUILT = """<!doctype html><html><head><meta charset="utf-8"><title>Modelship</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>Modelship tracking server</h1>
<p>The web UI is not built in this installation. Build it from a checkout with
<code>bash scripts/setup.sh</code> (it runs <code>npm ci</code> and <code>npm run build</code>
in <code>ui/</code>), then reload this page.</p>
<p>The REST API works without it: <a href="/docs">/docs</a>, <a href="/health">/health</a>.</p>
</body></html>"""


@lru_cache(maxsize=4)
def _page(path: Path, mtime_ns: int) -> tuple[bytes, dict[str, str]]:
    """The page and its headers. Its one inline script (the boot script of ``ui/src/boot.ts``,
    which sends the runs table's first search before the bundle loads) is allowed by its
    hash: no other inline script runs, and none is ever built from data."""
    body = path.read_bytes()
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() + "'"
        for m in INLINE_SCRIPT.finditer(body)
    ]
    headers = dict(PAGE_HEADERS)
    if hashes:
        headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
            "script-src 'self'", "script-src 'self' " + " ".join(hashes)
        )
    return body, headers


@lru_cache(maxsize=32)
def _asset(path: Path, mtime_ns: int) -> bytes:
    # From memory, answered on the event loop: a FileResponse reads the file in the thread
    # pool, where the page's first search (sent at the same moment by the boot script) holds
    # the GIL, and the bundle came 100-700 ms late at load 12 behind it.
    return path.read_bytes()


def ui_router(static: Path = STATIC) -> APIRouter:
    router = APIRouter(tags=["web UI"], include_in_schema=False)

    @router.get("/")
    async def page() -> Response:
        index = static / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, headers=PAGE_HEADERS)
        body, headers = _page(index, index.stat().st_mtime_ns)
        return Response(body, media_type="text/html", headers=headers)

    @router.get("/ui/{name}")
    async def asset(name: str) -> Response:
        path = static / name
        if not ASSET_NAME.match(name) or not path.is_file():
            return error_response(not_found(f"No file '{name[:100]}' in the web UI's bundle"))
        # Names carry no hash; index.html asks for ?v=<build hash>, so a new build is fetched.
        return Response(
            _asset(path, path.stat().st_mtime_ns),
            media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=3600"},
        )

    return router
