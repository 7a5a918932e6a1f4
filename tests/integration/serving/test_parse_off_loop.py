"""A real ``modelship serve``: a body that takes seconds to parse does not stall ``/ping``.

The large body is parsed on a worker thread, so a probe asked meanwhile is answered before
the large request is: the assertion is on that order, not on a latency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


def wide_csv(columns: int) -> bytes:
    """A header of ``columns`` names and one row: seconds of pandas' work, then a 400 (the
    model's columns are missing), so no predict runs meanwhile."""
    return (",".join(f"c{i}" for i in range(columns)) + "\n" + ",".join(["1"] * columns) + "\n").encode()


def test_ping_is_answered_while_a_large_body_is_parsed(
    mlflow_models: tuple[Path, dict[str, Any]], modelship_server: Any
) -> None:
    root, _ = mlflow_models
    server = modelship_server(str(root / "wine"))
    body = wide_csv(200_000)
    finished: list[str] = []
    sent = threading.Event()
    result: dict[str, Any] = {}

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 1 << 16):
            yield body[i : i + (1 << 16)]
        sent.set()  # httpx asks for more only once it wrote the last chunk

    def large() -> None:
        try:
            result["large"] = httpx.post(
                f"{server.url}/invocations", content=chunks(), headers={"content-type": "text/csv"}, timeout=120
            )
        finally:
            finished.append("large")

    with httpx.Client(base_url=server.url, timeout=120) as probe:
        assert probe.get("/ping").status_code == 200  # connected before the large request
        thread = threading.Thread(target=large)
        thread.start()
        try:
            assert sent.wait(60)
            time.sleep(0.3)  # let the server take the last bytes and start parsing
            ping = probe.get("/ping")
            finished.append("ping")
        finally:
            thread.join(120)
    assert ping.status_code == 200
    assert result["large"].status_code == 400, result["large"].text
    assert finished == ["ping", "large"], "/ping waited for the large body's parse"
