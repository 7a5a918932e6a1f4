"""The status as the operator knows it (resources/status.py): merge patches as the API server
applies them, and the operator's own writes standing in for a body the watch has not updated."""

from __future__ import annotations

from typing import Any

import pytest

from modelship.resources.status import known_status, merge_patched, without_none

TRUST = 60.0


@pytest.mark.parametrize(
    ("stored", "patch", "after"),
    [
        ({}, {}, {}),
        ({"a": 1}, {"a": 2}, {"a": 2}),  # a scalar replaces
        ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),  # other keys stay
        ({"a": 1, "b": 2}, {"a": None}, {"b": 2}),  # None removes
        ({"b": 2}, {"a": None}, {"b": 2}),  # removing what is not there
        ({"m": {"x": 1, "y": 2}}, {"m": {"y": None, "z": 3}}, {"m": {"x": 1, "z": 3}}),  # maps merge
        ({"m": {"x": {"p": 1}}}, {"m": {"x": {"q": 2}}}, {"m": {"x": {"p": 1, "q": 2}}}),  # at any depth
        ({"m": 1}, {"m": {"x": 1, "y": None}}, {"m": {"x": 1}}),  # a map over a scalar: stored without its Nones
        ({"m": {"x": 1}}, {"m": 5}, {"m": 5}),  # a scalar over a map replaces it
        ({"l": [1, 2]}, {"l": [3]}, {"l": [3]}),  # lists replace, never merge
        ({"l": [{"a": 1}]}, {"l": [{"a": None, "b": 2}]}, {"l": [{"b": 2}]}),  # as stored: Nones dropped
    ],
)
def test_merge_patched_is_rfc_7386(stored: dict[str, Any], patch: dict[str, Any], after: dict[str, Any]) -> None:
    before = repr(stored)
    assert merge_patched(stored, patch) == after
    assert repr(stored) == before  # the stored copy is not changed in place


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (None, None),
        ({"a": None}, {}),
        ({"a": None, "b": {"c": None, "d": 1}, "e": [{"f": None}]}, {"b": {"d": 1}, "e": [{}]}),
        ([None, 1], [None, 1]),  # a None inside a list is a value
    ],
)
def test_without_none(value: Any, stored: Any) -> None:
    assert without_none(value) == stored


NOW = 1000.0
READY_TRUE = {"type": "Ready", "status": "True", "lastTransitionTime": "t1"}
READY_FALSE = {"type": "Ready", "status": "False", "lastTransitionTime": "t0"}


@pytest.mark.parametrize(
    ("stored", "written", "known", "pending"),
    [
        ({"phase": "A"}, None, {"phase": "A"}, False),  # nothing written: the body
        (None, None, {}, False),  # no status yet
        (None, (NOW - 1, ({"phase": "A"},)), {"phase": "A"}, True),  # our first write, not seen yet
        # at the trust limit the write still stands; a moment later it does not
        ({"phase": "A"}, (NOW - TRUST, ({"phase": "B"},)), {"phase": "B"}, True),
        # the watch has not delivered our write yet: our write, not the older body
        (
            {"phase": "Progressing", "conditions": [READY_FALSE]},
            (NOW - 5, ({"phase": "Healthy", "conditions": [READY_TRUE]},)),
            {"phase": "Healthy", "conditions": [READY_TRUE]},
            True,
        ),
        # the body shows it: nothing pending any more
        ({"phase": "Healthy", "n": 1}, (NOW - 5, ({"phase": "Healthy"},)), {"phase": "Healthy", "n": 1}, False),
        # two writes in order, the second removing a key (None) and merging into a map
        (
            {"phase": "A", "canary": {"a": 1, "b": 2}},
            (NOW - 3, ({"phase": "B", "experiment": {"x": 1}}, {"experiment": None, "canary": {"b": None, "c": 3}})),
            {"phase": "B", "canary": {"a": 1, "c": 3}},
            True,
        ),
        # a write the body never showed (it failed) stands for trust_seconds only
        (
            {"phase": "A"},
            (NOW - TRUST - 1, ({"phase": "B"},)),
            {"phase": "A"},
            False,
        ),
    ],
)
def test_known_status(stored: dict[str, Any], written: Any, known: dict[str, Any], pending: bool) -> None:
    got, still = known_status(stored, written, NOW, trust_seconds=TRUST)
    assert got == known
    assert (still is not None) is pending
    if pending:
        assert still == written
