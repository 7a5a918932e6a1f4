"""Input the database, the parser or the file system would fail on is a 400 naming the field.

Each case here used to reach SQLite, Python's json or the file system and come back as a
500: integers beyond 64 bits, deeply nested or surrogate-holding JSON, filters of thousands
of comparisons, artifact paths onto directories, under files, too long, or into ``.uploads``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelship.tracking.errors import TrackingError
from modelship.tracking.protocol import fastparse
from modelship.tracking.protocol import messages as msg
from modelship.tracking.protocol.messages import parse_body
from modelship.tracking.protocol.paths import safe_path
from modelship.tracking.store.artifacts import LocalArtifactStore
from modelship.tracking.store.search import parse_filter
from modelship.tracking.store.sql import TrackingStore

BIG = 2**63


def assert_refused(fn: Any, *args: Any, field: str, code: str = "INVALID_PARAMETER_VALUE") -> None:
    with pytest.raises(TrackingError) as err:
        fn(*args)
    assert err.value.http_status == 400 and err.value.error_code == code, err.value.message
    assert field in err.value.message, err.value.message


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TrackingStore]:
    s = TrackingStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield s
    s.close()


# ---- integers beyond 64 bits -------------------------------------------------------------
def dumps(body: Any) -> bytes:
    return json.dumps(body).encode()  # orjson cannot write the integers these tests need


METRIC = {"run_id": "r", "key": "k", "value": 1.0, "timestamp": 1, "step": 0}


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"step": BIG}, "step"),
        ({"step": -(2**64)}, "step"),
        ({"timestamp": 2**64}, "timestamp"),  # orjson reads it as a float
        ({"timestamp": str(BIG)}, "timestamp"),
        ({"timestamp": 1e30}, "timestamp"),
    ],
)
def test_log_metric_integers_beyond_64_bits(override: dict[str, Any], field: str) -> None:
    assert_refused(fastparse.log_metric, dumps({**METRIC, **override}), field=f"'{field}'")


def test_log_batch_integers_beyond_64_bits_name_the_metric() -> None:
    body = {"run_id": "r", "metrics": [{**METRIC, "step": 1}, {**METRIC, "step": BIG}]}
    assert_refused(fastparse.log_batch, dumps(body), field="'metrics[1].step'")


def test_the_largest_64_bit_integers_are_accepted() -> None:
    _, m = fastparse.log_metric(dumps({**METRIC, "step": BIG - 1, "timestamp": -BIG}))
    assert m[2:4] == (-BIG, BIG - 1)


def test_a_value_beyond_a_double_is_refused() -> None:
    # NaN sends the body to Python's json, which reads integers of any size
    raw = b'{"run_id": "r", "key": "k", "value": 1%s, "timestamp": 1, "x": NaN}' % (b"0" * 400)
    assert_refused(fastparse.log_metric, raw, field="'value'")


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (msg.CreateRun, {"experiment_id": "0", "start_time": BIG}, "'start_time'"),
        (msg.UpdateRun, {"run_id": "r", "end_time": str(BIG)}, "'end_time'"),
        (msg.LogOutputs, {"run_id": "r", "models": [{"model_id": "m", "step": BIG}]}, "step"),
        (msg.SearchRuns, {"max_results": BIG}, "'max_results'"),
    ],
)
def test_request_models_refuse_integers_beyond_64_bits(model: Any, body: dict[str, Any], field: str) -> None:
    assert_refused(parse_body, dumps(body), model, field=field)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.get_experiment(str(BIG)),
        lambda s: s.delete_experiment(str(BIG)),
        lambda s: s.update_experiment(str(BIG), "x"),
        lambda s: s.set_experiment_tag(str(BIG), "k", "v"),
        lambda s: s.create_run(str(BIG), None, None, None),
        lambda s: s.search_runs([str(BIG)]),
        lambda s: s.logged_models.create_logged_model(str(BIG), None, None, None, [], []),
    ],
)
def test_experiment_ids_beyond_64_bits(store: TrackingStore, call: Any) -> None:
    assert_refused(call, store, field="'experiment_id'")


def test_a_search_takes_a_bounded_number_of_experiment_ids(store: TrackingStore) -> None:
    assert_refused(store.search_runs, [str(i) for i in range(20001)], field="'experiment_ids'")
    assert store.search_runs([str(i) for i in range(20000)])[0] == []


def test_a_page_token_beyond_64_bits(store: TrackingStore) -> None:
    token = base64.urlsafe_b64encode(orjson.dumps({"offset": BIG})).decode()
    assert_refused(store.search_runs, ["0"], None, None, None, (), token, field="page token")


# ---- JSON the parsers cannot take --------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"run_id": "r", "metrics": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_deeply_nested_json_is_malformed(raw: bytes) -> None:
    for parse in (fastparse.log_metric, fastparse.log_batch):
        assert_refused(parse, raw, field="nests deeper", code="MALFORMED_REQUEST")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"run_id": "r", "params": [{"key": "p", "value": "\\ud800"}], "x": NaN}',
        b'{"run_id": "r", "tags": [{"key": "t", "value": "\\udfff"}], "x": NaN}',
        b'{"run_id": "r", "tags": [{"key": "t", "value": "\xed\xa0\x80"}], "x": NaN}',
    ],
)
def test_lone_surrogates_are_malformed(raw: bytes) -> None:
    with pytest.raises(TrackingError) as err:
        fastparse.log_batch(raw)
    assert err.value.error_code == "MALFORMED_REQUEST"


def test_a_surrogate_pair_is_a_character() -> None:
    raw = b'{"run_id": "r", "tags": [{"key": "t", "value": "\\ud83d\\ude00"}], "x": NaN}'
    assert fastparse.log_batch(raw)[3] == [("t", "\U0001f600")]


# ---- search filters ----------------------------------------------------------------------
def test_a_filter_joins_a_bounded_number_of_comparisons(store: TrackingStore) -> None:
    many = " AND ".join(["metrics.a > 1"] * 2001)
    assert_refused(parse_filter, many, field="'filter'")
    assert_refused(store.search_runs, ["0"], many, field="'filter'")
    assert_refused(store.search_experiments, None, None, " AND ".join(["name = 'x'"] * 2001), field="'filter'")
    assert len(parse_filter(" AND ".join(["metrics.a > 1"] * 200))) == 200
    assert store.search_runs(["0"], " AND ".join(["metrics.a > 1"] * 200))[0] == []


def test_a_filter_holds_a_bounded_number_of_in_values() -> None:
    values = ", ".join(f"'r{i}'" for i in range(20001))
    assert_refused(parse_filter, f"attributes.run_id IN ({values})", field="'filter'")


# ---- artifact paths ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("a/" + "n" * 256, "longer than 255 bytes"),
        ("a/" + "é" * 128, "longer than 255 bytes"),  # 256 bytes in UTF-8
        ("/".join(["d" * 200] * 6), "longer than 1024 bytes"),
        (".uploads", "reserved"),
        ("./.uploads/x", "reserved"),
    ],
)
def test_safe_path_refuses_names_no_store_can_hold(path: str, needle: str) -> None:
    assert_refused(safe_path, path, field=needle)


def test_names_at_the_limits_and_uploads_below_the_root_are_fine() -> None:
    assert safe_path("a/" + "n" * 255) == "a/" + "n" * 255
    assert safe_path("1/run/artifacts/.uploads/x") == "1/run/artifacts/.uploads/x"


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def write(store: LocalArtifactStore, path: str, data: bytes) -> int:
    return asyncio.run(store.write(path, _chunks(data)))


def test_an_upload_onto_a_directory_or_under_a_file_is_refused(tmp_path: Path) -> None:
    store = LocalArtifactStore(str(tmp_path / "art"))
    write(store, "d/f.txt", b"kept")
    assert_refused(write, store, "d", b"x", field="'d' is a directory")
    assert_refused(write, store, "d/f.txt/g.txt", b"x", field="'d/f.txt' is a file")
    assert_refused(write, store, "d/f.txt/deeper/g.txt", b"x", field="'d/f.txt' is a file")
    assert (tmp_path / "art/d/f.txt").read_bytes() == b"kept"
    assert [f["path"] for f in store.list("d")] == ["f.txt"]
    assert list((tmp_path / "art/.uploads").iterdir()) == []


def test_uploads_work_after_the_upload_directory_is_gone(tmp_path: Path) -> None:
    store = LocalArtifactStore(str(tmp_path / "art"))
    assert_refused(store.delete, ".uploads", field="reserved")
    (tmp_path / "art/.uploads").rmdir()  # removed behind the server's back
    assert write(store, "a/b.txt", b"data") == 4
    assert (tmp_path / "art/a/b.txt").read_bytes() == b"data"
