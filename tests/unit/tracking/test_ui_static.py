"""The UI's static files: a page that says how to build a missing bundle, assets by name only."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from modelship.tracking.server.ui import ui_router


def client(static: Path) -> TestClient:
    app = FastAPI()
    app.include_router(ui_router(static))
    return TestClient(app)


def test_missing_bundle_answers_with_how_to_build_it(tmp_path: Path) -> None:
    r = client(tmp_path / "absent").get("/")
    assert r.status_code == 200 and "scripts/setup.sh" in r.text and "not built" in r.text
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_bundle_is_served(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<div id="app"></div>')
    (tmp_path / "app.js").write_text("console.log(1)")
    c = client(tmp_path)
    page = c.get("/")
    assert page.text == '<div id="app"></div>' and page.headers["x-content-type-options"] == "nosniff"
    assert c.get("/ui/app.js").text == "console.log(1)"


def test_only_bundle_files_by_plain_name(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (tmp_path / "secret.js").write_text("no")
    (static / "notes.txt").write_text("no")
    c = client(static)
    for name in ("..%2Fsecret.js", "notes.txt", ".hidden.js", "absent.js"):
        assert c.get(f"/ui/{name}").status_code == 404, name


def test_the_inline_boot_script_is_allowed_by_its_hash_alone(tmp_path: Path) -> None:
    import base64
    import hashlib

    (tmp_path / "index.html").write_text(
        '<head><script>start()</script><script type="module" src="/ui/app.js"></script>'
    )
    page = client(tmp_path).get("/")
    csp = page.headers["content-security-policy"]
    digest = base64.b64encode(hashlib.sha256(b"start()").digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}';" in csp
    assert "unsafe-inline" not in csp and csp.count("sha256-") == 1
    # A page rebuilt with another script gets that script's hash.
    (tmp_path / "index.html").write_text("<head><script>other()</script>")
    os.utime(tmp_path / "index.html", ns=(1, 2))
    digest = base64.b64encode(hashlib.sha256(b"other()").digest()).decode()
    assert f"'sha256-{digest}'" in client(tmp_path).get("/").headers["content-security-policy"]
