"""read_body: the request body from raw ASGI messages, with a size limit and disconnects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from modelship.tracking.errors import TrackingError
from modelship.tracking.protocol.http import read_body


def body_of(messages: list[dict[str, Any]], limit: int) -> bytes:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return asyncio.run(read_body(receive, limit))


def chunk(data: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": data, "more_body": more}


@pytest.mark.parametrize(
    "messages,expected",
    [
        ([chunk(b"", False)], b""),
        ([{"type": "http.request"}], b""),
        ([chunk(b'{"a": 1}', False)], b'{"a": 1}'),
        ([chunk(b'{"a"', True), chunk(b"", True), chunk(b": 1}", False)], b'{"a": 1}'),
        ([chunk(b"x" * 10, False)], b"x" * 10),  # exactly the limit
    ],
)
def test_reads_the_whole_body(messages: list[dict[str, Any]], expected: bytes) -> None:
    assert body_of(messages, limit=10) == expected


def test_refuses_a_body_over_the_limit_with_an_mlflow_error() -> None:
    with pytest.raises(TrackingError) as err:
        body_of([chunk(b"x" * 6, True), chunk(b"x" * 5, False)], limit=10)
    assert err.value.http_status == 400
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "larger than 10 bytes" in err.value.message and "smaller batches" in err.value.message


def test_a_client_that_goes_away_is_not_a_body() -> None:
    with pytest.raises(ClientDisconnect):
        body_of([chunk(b"{", True), {"type": "http.disconnect"}], limit=10)
