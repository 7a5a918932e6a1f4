"""``modelship ab-report``'s last line: the promotion in force, or what to do next."""

from __future__ import annotations

from typing import Any

import pytest

from modelship.controllers.cli_abreport import next_step

ARMS = [{"name": "blue", "version": 1, "control": True}, {"name": "green", "version": 2}]


@pytest.mark.parametrize(
    ("exp", "want"),
    [
        ({"verdict": None, "variants": ARMS}, "next: wait for the verdict"),
        ({"verdict": "inconclusive", "variants": ARMS}, "next: no variant beat the control"),
        ({"verdict": "worse", "variants": ARMS}, "next: no variant beat the control"),
        (
            {"verdict": "better", "winner": "green", "variants": ARMS},
            "next: `modelship promote iris 2 --to Production -n demo` makes green's version the Production one",
        ),
        (
            {"verdict": "inconclusive", "variants": ARMS, "promoted": {"variant": "green", "message": "green v2 won"}},
            "promoted: green v2 won",
        ),
    ],
)
def test_next_step(exp: dict[str, Any], want: str) -> None:
    assert next_step("demo", "iris", exp).startswith(want)
