"""A status as the operator knows it: JSON merge patches applied, and its own unseen writes.

The watch delivers an object seconds after the operator's status write when the machine is
loaded, so a handler that judged from the body kopf handed over would take a status it has
already replaced for the stored one (and write it again). These functions say what the
status is once the operator's last writes land. Pure: the caller passes the clock in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Written = tuple[float, tuple[dict[str, Any], ...]]
"""The operator's status writes the watch has not shown yet: since when (a monotonic
clock's seconds), and the merge patches in the order they were sent."""


def without_none(value: Any) -> Any:
    """``value`` as the API server stores it after a merge patch: keys whose value is None dropped."""
    if isinstance(value, Mapping):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value


def merge_patched(stored: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``stored`` after a JSON merge patch (RFC 7386): maps merge, None removes, the rest replaces."""
    out = dict(stored)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_patched(out[key], value)
        else:
            out[key] = without_none(value)
    return out


def known_status(
    stored: Mapping[str, Any] | None, written: Written | None, now: float, *, trust_seconds: float
) -> tuple[dict[str, Any], Written | None]:
    """The status as it is once the operator's last writes land, and those still not seen.

    ``stored`` is the status of the body kopf handed over; ``written`` what this operator
    wrote since the body last showed all of it. Under load the watch delivers an object
    seconds after its status write: a timer tick that judged from the older body wrote the
    same status again (and took the old conditions for new, so their lastTransitionTime
    moved). Only this operator writes this status, so a body without its writes is older
    than them; for ``trust_seconds`` at most (a write that failed is made again then)."""
    old = dict(stored or {})
    if written is None or written[0] + trust_seconds < now:
        return old, None
    known = old
    for p in written[1]:
        known = merge_patched(known, p)
    return known, (None if known == old else written)
