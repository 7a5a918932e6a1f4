"""The forwarder against a scripted server (httpx.MockTransport, no sockets): a record the
server fails on moves aside after max_attempts and the rest flows; a sick server keeps
everything; 401 keeps everything and says so; a refused record in a merged batch goes to
the dead letter alone; a reader does not wait while the forwarder backs off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from modelship.tracking.sidecar.deadletter import DeadLetter
from modelship.tracking.sidecar.forwarder import Forwarder
from modelship.tracking.sidecar.wal import DurableLog

API = "/api/2.0/mlflow"


class FakeServer:
    """Stores the metrics of log-batch calls; ``answer`` may override any call."""

    def __init__(self, answer: Callable[[httpx.Request, dict[str, Any]], int | None]) -> None:
        self.answer = answer
        self.steps: list[int] = []
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content) if request.content else {}
        self.calls.append(request.url.path)
        status = self.answer(request, body)
        if status is not None and status != 200:
            return httpx.Response(status, json={"error_code": "X", "message": f"answer {status}"})
        if request.url.path == f"{API}/runs/log-batch":
            self.steps += [m["step"] for m in body["metrics"]]
        return httpx.Response(200, json={})


def metric(step: int, key: str = "m") -> dict[str, Any]:
    return {
        "method": "POST",
        "path": f"{API}/runs/log-metric",
        "run_id": "r",
        "body": {"run_id": "r", "key": key, "value": 1.0, "timestamp": 1, "step": step},
    }


def forwarder(tmp_path: Path, server: FakeServer, records: list[dict[str, Any]], max_attempts: int = 3) -> Forwarder:
    wal = DurableLog(tmp_path)
    for record in records:
        wal.append(record)
    return Forwarder(
        wal,
        "http://server",
        retry_initial=0.001,
        retry_max=0.005,
        linger=0,
        max_attempts=max_attempts,
        dead_letter=DeadLetter(tmp_path, 1 << 20),
        transport=httpx.MockTransport(server),
    )


async def run_until(f: Forwarder, done: Callable[[], bool], timeout: float = 10.0) -> None:
    f.start()
    deadline = time.monotonic() + timeout
    try:
        while not done() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
    finally:
        await f.close()


def dead_letter(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "rejected.jsonl"
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


def writes_with_step(step: int) -> Callable[[httpx.Request, dict[str, Any]], int | None]:
    def answer(request: httpx.Request, body: dict[str, Any]) -> int | None:
        if any(m["step"] == step for m in body.get("metrics", [])):
            return 500  # e.g. the OverflowError of a value it cannot store
        return None

    return answer


def test_a_record_the_server_fails_on_moves_aside_after_max_attempts(tmp_path: Path) -> None:
    server = FakeServer(writes_with_step(1))
    f = forwarder(tmp_path, server, [metric(i) for i in range(5)], max_attempts=3)
    asyncio.run(run_until(f, lambda: f.wal.pending_count == 0))
    assert f.wal.pending_count == 0
    assert sorted(server.steps) == [0, 2, 3, 4]
    dead = dead_letter(tmp_path)
    assert [(d["record"]["body"]["step"], d["reason"], d["status"]) for d in dead] == [(1, "failed", 500)]
    # the merged batch, then each record alone: step 1 three times
    assert server.calls.count(f"{API}/runs/log-batch") == 1 + 1 + 3 + 3
    assert f.dead.counts == {"refused": 0, "failed": 1} and f.rejected == 1


def test_a_sick_server_keeps_every_record(tmp_path: Path) -> None:
    server = FakeServer(lambda request, body: 500)  # writes and reads fail: the database is down
    f = forwarder(tmp_path, server, [metric(i) for i in range(3)], max_attempts=2)
    asyncio.run(run_until(f, lambda: f.failures >= 10))
    assert f.failures >= 10 and f.wal.pending_count == 3
    assert dead_letter(tmp_path) == [] and f.rejected == 0
    assert f.last_failure is not None and f.last_failure["status"] == 500


def test_401_keeps_the_records_reports_and_delivers_when_accepted(tmp_path: Path) -> None:
    token_ok = {"value": False}
    server = FakeServer(lambda request, body: None if token_ok["value"] else 401)
    f = forwarder(tmp_path, server, [metric(i) for i in range(3)], max_attempts=1)

    async def scenario() -> None:
        f.start()
        for _ in range(2000):
            if f.failures >= 20:
                break
            await asyncio.sleep(0.005)
        assert f.auth_failing and f.server_up
        assert f.wal.pending_count == 3 and f.rejected == 0
        assert f.last_failure is not None and f.last_failure["status"] == 401
        token_ok["value"] = True  # the secret was fixed
        assert await f.wait_forwarded(f.wal.last_seq, 10)
        assert not f.auth_failing
        await f.close()

    asyncio.run(scenario())
    assert sorted(server.steps) == [0, 1, 2]
    assert dead_letter(tmp_path) == []


def test_a_refused_record_of_a_merged_batch_goes_alone(tmp_path: Path) -> None:
    def answer(request: httpx.Request, body: dict[str, Any]) -> int | None:
        keys = [m["key"] for m in body.get("metrics", [])]
        return 400 if "deleted-run-key" in keys else None

    server = FakeServer(answer)
    records = [metric(0), metric(1, "deleted-run-key"), metric(2), metric(3)]
    f = forwarder(tmp_path, server, records)
    asyncio.run(run_until(f, lambda: f.wal.pending_count == 0))
    assert sorted(server.steps) == [0, 2, 3]
    dead = dead_letter(tmp_path)
    assert [(d["record"]["body"]["step"], d["reason"], d["status"]) for d in dead] == [(1, "refused", 400)]
    assert "answer 400" in dead[0]["response"]


def test_a_reader_does_not_wait_while_the_forwarder_backs_off(tmp_path: Path) -> None:
    server = FakeServer(lambda request, body: 503)
    f = forwarder(tmp_path, server, [metric(0)])
    # A back-off far longer than the reader's bound: the reader must not sit it out. What
    # ended its wait tells, not a clock: the attempt it asked for (one failure more), or
    # its own bound of 60 s (no attempt since, the next being 600 s away).
    f.retry_initial = f.retry_max = 600.0

    async def scenario() -> tuple[bool, int, int]:
        f.start()
        while f.failures == 0:
            await asyncio.sleep(0.005)
        before = f.failures
        got = await f.wait_forwarded(f.wal.last_seq, 60.0, until_failure=True)
        after = f.failures
        await f.close()
        return got, before, after

    got, before, after = asyncio.run(scenario())
    assert got is False
    assert after == before + 1, "the reader waited for its bound instead of the attempt it asked for"
    assert f.server_up is False


def test_an_upload_whose_body_is_gone_does_not_block(tmp_path: Path) -> None:
    server = FakeServer(lambda request, body: None)
    upload = {
        "method": "PUT",
        "path": "/api/2.0/mlflow-artifacts/artifacts/1/x",
        "run_id": None,
        "body": None,
        "blob": "gone",
    }
    f = forwarder(tmp_path, server, [upload, metric(0)])
    asyncio.run(run_until(f, lambda: f.wal.pending_count == 0))
    assert server.steps == [0]
    assert [d["reason"] for d in dead_letter(tmp_path)] == ["failed"]
