"""The pure parts of feedback forwarding (modelship.serving.peers): which peers, in which
order, get which outcomes, and how their answers make the client's reply."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from modelship.serving.feedback import FeedbackBook, instance_hint
from modelship.serving.peers import Forwarded, Pending, combine, for_peer, order_peers, parse_targets, pending


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("iris--peers.demo.svc:8080", [("iris--peers.demo.svc", 8080)]),
        ("iris--peers.demo.svc", [("iris--peers.demo.svc", 5000)]),
        ("127.0.0.1:5001, 127.0.0.1:5002,", [("127.0.0.1", 5001), ("127.0.0.1", 5002)]),
        ("", []),
    ],
)
def test_targets(spec: str, want: list[tuple[str, int]]) -> None:
    assert parse_targets(spec, 5000) == want


@pytest.mark.parametrize("spec", [":8080", "host:http", "host:0", "host:70000"])
def test_bad_targets_name_the_entry_and_the_setting(spec: str) -> None:
    with pytest.raises(ValueError, match="MODELSHIP_FEEDBACK_PEERS") as err:
        parse_targets(spec, 5000)
    assert repr(spec) in str(err.value)


@pytest.mark.parametrize(
    ("rid", "want"),
    [
        ("5c1e0a7d9b21-0f3a9c2e5b7d1e4a", "5c1e0a7d9b21"),
        ("5c1e0a7d9b21-", None),
        ("5c1e0a7d9b21-42", None),  # the counter ids of before: guessable, no longer made
        ("order-17", None),
        ("5C1E0A7D9B21-0F3A9C2E5B7D1E4A", None),  # the server makes lower-case hex
        ("x5c1e0a7d9b21-0f3a9c2e5b7d1e4a", None),
    ],
)
def test_instance_hint(rid: str, want: str | None) -> None:
    assert instance_hint(rid) == want


def test_a_server_id_has_its_instance_as_hint() -> None:
    book = FeedbackBook(window=10, max_rows=4, max_batch=10)
    assert instance_hint(book.new_id()) == book.instance


def test_server_ids_cannot_be_guessed_from_the_last_one() -> None:
    # An outcome counts once per id: a guessable next id would let anyone spend it first.
    book = FeedbackBook(window=10, max_rows=4, max_batch=10)
    ids = [book.new_id().rsplit("-", 1)[1] for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 16 for i in ids)
    steps = {int(b, 16) - int(a, 16) for a, b in itertools.pairwise(ids)}
    assert len(steps) > 990  # no counter, no constant stride


A, B, C = ("10.0.0.1", 8080), ("10.0.0.2", 8080), ("10.0.0.3", 8080)


@pytest.mark.parametrize(
    ("instances", "hints", "want"),
    [
        ({}, [None, "aaaaaaaaaaaa"], [A, B, C]),  # nothing known: address order, whatever DNS gave
        ({C: "cccccccccccc"}, ["cccccccccccc", None], [C, A, B]),
        ({B: "bbbbbbbbbbbb", C: "cccccccccccc"}, ["bbbbbbbbbbbb", "cccccccccccc", "cccccccccccc"], [C, B, A]),
    ],
)
def test_peers_that_made_the_ids_come_first(
    instances: dict[tuple[str, int], str], hints: list[str | None], want: list[tuple[str, int]]
) -> None:
    wanted = [Pending(i, {}, h) for i, h in enumerate(hints)]
    assert order_peers([B, C, A, B], instances, wanted) == want


@pytest.mark.parametrize(
    ("instance", "elsewhere", "want"),
    [
        (None, set(), [0, 1, 2]),  # not heard from: everything may be there
        ("bbbbbbbbbbbb", {"cccccccccccc"}, [0, 1]),  # not the id another known peer made
        ("cccccccccccc", {"bbbbbbbbbbbb"}, [0, 2]),
        (None, {"bbbbbbbbbbbb", "cccccccccccc"}, [0]),  # a client's id goes to everyone
        ("dddddddddddd", set(), [0, 1, 2]),  # ids of instances no one has heard of (yet) too
    ],
)
def test_what_each_peer_gets(instance: str | None, elsewhere: set[str], want: list[int]) -> None:
    wanted = [Pending(0, {}, None), Pending(1, {}, "bbbbbbbbbbbb"), Pending(2, {}, "cccccccccccc")]
    assert [p.index for p in for_peer(wanted, instance, elsewhere)] == want


def local_reply(items: list[dict[str, Any]]) -> tuple[dict[str, Any], list[Pending]]:
    """What a pod that knows none of ``items`` (but item 0, which is invalid) answers."""
    book = FeedbackBook(window=10, max_rows=4, max_batch=10)
    reply = book.record({"outcomes": items}, count_unknown=False)
    assert book.report()["rejected"]["unknown"] == 0  # left for whoever asks the peers to count
    return reply, pending(items, reply["errors"])


ITEMS = [
    {"requestId": "x", "label": 1, "reward": 2},  # invalid here: never forwarded
    {"requestId": "order-1", "label": 1},
    {"requestId": "bbbbbbbbbbbb-00000000000000a7", "label": 1},
    {"requestId": "order-2", "reward": 0.5},
]


def test_only_the_unknown_go_to_the_peers() -> None:
    reply, wanted = local_reply(ITEMS)
    assert reply["rejected"] == 4 and [e["reason"] for e in reply["errors"]] == ["invalid"] + ["unknown"] * 3
    assert [(p.index, p.hint) for p in wanted] == [(1, None), (2, "bbbbbbbbbbbb"), (3, None)]
    assert wanted[0].item == ITEMS[1]


@pytest.mark.parametrize(
    ("fwd", "accepted", "reasons", "counted"),
    [
        # every peer asked: accepted by one, a duplicate at another, unknown to all
        (
            Forwarded(
                resolved={
                    1: None,
                    2: {
                        "index": 0,
                        "requestId": "bbbbbbbbbbbb-00000000000000a7",
                        "reason": "duplicate",
                        "message": "m",
                    },
                },
                asked=2,
                answered={"bbbbbbbbbbbb", "cccccccccccc"},
            ),
            1,
            ["invalid", "duplicate", "unknown"],
            ["unknown"],
        ),
        # a peer could not be asked: what it might know is unreachable (send again), but an id
        # whose maker did answer is unknown for certain
        (
            Forwarded(asked=1, failed=["10.0.0.3:8080: ConnectError"], answered={"bbbbbbbbbbbb"}, incomplete=True),
            0,
            ["invalid", "unreachable", "unknown", "unreachable"],
            ["unreachable", "unknown", "unreachable"],
        ),
        (Forwarded(resolved={1: None, 2: None, 3: None}, asked=3), 3, ["invalid"], []),
    ],
)
def test_the_reply_sums_every_pod(fwd: Forwarded, accepted: int, reasons: list[str], counted: list[str]) -> None:
    reply, wanted = local_reply(ITEMS)
    out, count = combine(reply, wanted, fwd, "aaaaaaaaaaaa")
    assert out["accepted"] == accepted and out["rejected"] == len(reasons) == len(out["errors"])
    assert [e["reason"] for e in out["errors"]] == reasons
    assert [e["index"] for e in out["errors"]] == sorted(e["index"] for e in out["errors"])
    assert count == counted
    assert out["peers"] == {"asked": fwd.asked, "failed": fwd.failed}
    for e in out["errors"]:
        if e["reason"] == "unknown":
            assert "every pod of the deployment" in e["message"] and f"{fwd.asked} peer" in e["message"]
        if e["reason"] == "unreachable":
            assert "send it again" in e["message"] and fwd.failed[0] in e["message"]
