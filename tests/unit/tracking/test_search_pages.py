"""Pages of a run search in start-time order follow keyset tokens (runsearch.keyset_order):
the same runs in the same order as one query sorted whole, with ties in start time across
page boundaries, runs created and deleted between pages, old offset tokens still read, and
tokens of another order refused with a message that says what to do."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import orjson
import pytest
from sqlalchemy import select

from modelship.tracking.errors import TrackingError
from modelship.tracking.store import runsearch
from modelship.tracking.store import schema as t
from modelship.tracking.store.search import encode_page_token
from modelship.tracking.store.sql import TrackingStore


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TrackingStore, str]]:
    """40 runs over 6 start times (ties of up to 7 runs at one time), one deleted, and a run
    of another experiment at the same times."""
    s = TrackingStore(f"sqlite:///{tmp_path_factory.mktemp('pages') / 'db.sqlite'}")
    eid, other = s.create_experiment("pages"), s.create_experiment("other")
    for i in range(40):
        run = str(s.create_run(eid, "me", f"r{i}", 1000 + (i * 7) % 6, [])["info"]["run_id"])
        s.log_batch(run, params=[("p", str(i % 2))])
        if i == 13:
            s.delete_run(run)
    s.create_run(other, "me", "foreign", 1003, [])
    yield s, eid
    s.close()


def _reference(s: TrackingStore, eid: str, order_by: list[str], filter_string: str = "") -> list[str]:
    q = select(t.runs.c.run_uuid).where(t.runs.c.experiment_id == int(eid), t.runs.c.lifecycle_stage == "active")
    for clause in runsearch.parse_filter(filter_string):
        q = q.where(runsearch.run_condition(clause))
    with s.engine.connect() as c:
        return list(c.execute(runsearch._order_runs(q, order_by)).scalars())


def _page(s: TrackingStore, eid: str, size: int, token: str | None, **kw: object) -> tuple[list[str], str | None]:
    runs, token = s.search_runs([eid], max_results=size, page_token=token, **kw)  # type: ignore[arg-type]
    return [r["info"]["run_id"] for r in runs], token


def _all_pages(s: TrackingStore, eid: str, size: int, **kw: object) -> list[str]:
    got, token = _page(s, eid, size, None, **kw)
    while token:
        ids, token = _page(s, eid, size, token, **kw)
        got += ids
    return got


@pytest.mark.parametrize("order_by", [[], ["attributes.start_time DESC"], ["start_time ASC"], ["created DESC"]])
@pytest.mark.parametrize("filter_string", ["", "params.p = '1'"])
@pytest.mark.parametrize("size", [1, 3, 7, 39, 100])
def test_pages_match_the_single_sorted_query(
    store: tuple[TrackingStore, str], order_by: list[str], filter_string: str, size: int
) -> None:
    s, eid = store
    expected = _reference(s, eid, order_by, filter_string)
    assert len(expected) >= 19
    assert _all_pages(s, eid, size, order_by=order_by, filter_string=filter_string) == expected


def test_the_tokens_are_keyset_tokens_and_opaque(store: tuple[TrackingStore, str]) -> None:
    s, eid = store
    _, token = _page(s, eid, 5, None)
    assert token is not None
    body = orjson.loads(base64.urlsafe_b64decode(token))
    assert body["order"] == "start_time DESC" and "offset" not in body
    # other orders still page by offset
    _, token = _page(s, eid, 5, None, order_by=["attributes.run_name ASC"])
    assert orjson.loads(base64.urlsafe_b64decode(token or "")) == {"offset": 5}


def test_a_run_created_between_pages_moves_no_other_run(store: tuple[TrackingStore, str]) -> None:
    s, eid = store
    expected = _reference(s, eid, [])
    first, token = _page(s, eid, 10, None)
    # newer than every run (it would shift an offset page by one) and one tied with the
    # last run of the first page, sorting after it by id or before it
    s.create_run(eid, "me", "newest", 5000, [])
    last_start = s.get_run(first[-1])["info"]["start_time"]
    tied = [s.create_run(eid, "me", f"tied{i}", last_start, [])["info"]["run_id"] for i in range(4)]
    rest: list[str] = []
    while token:
        ids, token = _page(s, eid, 10, token)
        rest += ids
    got = first + rest
    old = [r for r in got if r in expected]
    assert old == expected  # every run that was there once, in order, none twice
    # a tied run after the first page's last run (by id) is read; one before it is not
    assert {r for r in got if r in tied} == {r for r in tied if r > first[-1]}


def test_a_run_deleted_between_pages_skips_no_other_run(store: tuple[TrackingStore, str]) -> None:
    s, eid = store
    expected = _reference(s, eid, [])
    first, token = _page(s, eid, 10, None)
    s.delete_run(first[-1])  # the run the token points after
    s.delete_run(expected[10])  # the first run of the next page
    rest: list[str] = []
    while token:
        ids, token = _page(s, eid, 10, token)
        rest += ids
    assert first + rest == [r for r in expected if r != expected[10]]


def test_an_offset_token_of_an_earlier_server_still_reads_its_page(store: tuple[TrackingStore, str]) -> None:
    s, eid = store
    expected = _reference(s, eid, [])
    ids, token = _page(s, eid, 10, encode_page_token(10))
    assert ids == expected[10:20]
    rest: list[str] = []
    while token:
        ids, token = _page(s, eid, 10, token)
        rest += ids
    assert rest == expected[20:]


@pytest.mark.parametrize(
    "order_by", [["attributes.start_time ASC"], ["metrics.acc DESC"], ["attributes.start_time DESC", "run_name ASC"]]
)
def test_a_token_of_another_order_is_refused_with_the_fix(
    store: tuple[TrackingStore, str], order_by: list[str]
) -> None:
    s, eid = store
    _, token = _page(s, eid, 5, None)  # start_time DESC
    with pytest.raises(TrackingError) as err:
        _page(s, eid, 5, token, order_by=order_by)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "same order_by as the first page" in err.value.message and "page_token" in err.value.message


@pytest.mark.parametrize(
    "body",
    [
        {"order": "start_time DESC", "after": [1000]},
        {"order": "start_time DESC", "after": ["1000", "abc"]},
        {"order": 1, "after": [1000, "abc"]},
        {"order": "start_time DESC", "after": [True, "abc"]},
        {"order": "start_time DESC", "after": [2**70, "abc"]},
        ["offset", 3],
    ],
)
def test_malformed_keyset_tokens_are_refused(store: tuple[TrackingStore, str], body: object) -> None:
    s, eid = store
    token = base64.urlsafe_b64encode(json.dumps(body).encode()).decode()  # json: 2**70 too
    with pytest.raises(TrackingError) as err:
        _page(s, eid, 5, token)
    assert "Invalid page token" in err.value.message
