"""Request ids and outcomes: what the A/B readout of a ModelDeployment counts.

Every prediction reply carries a request id (the client's ``X-Request-Id`` when valid, else
one made here). The server remembers the most recent ids with what it predicted for them
in a bounded, insertion-ordered map (``feedback_window`` entries; the oldest goes first);
``POST /feedback`` later joins outcomes to them:

* a **label** is compared with the remembered prediction: a binary outcome per row (1 when
  the prediction was right);
* a **reward** is a continuous outcome of the request (any finite number; higher is better).

Per kind the server keeps the count, the sum and the sum of squares of the outcomes, so that
whoever reads several pods (the operator) adds them up and still has a mean and a variance.
The figures are per process: ``instance`` (random at start) tells a restarted pod from the
one before it. No I/O here; the transport calls :meth:`FeedbackBook.remember` after a
prediction and :meth:`FeedbackBook.record` with a parsed ``/feedback`` body.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MAX_ID_LENGTH = 128
_SAFE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
KINDS = ("binary", "continuous")
REASONS = ("invalid", "unknown", "duplicate", "not_comparable", "row_mismatch", "over_batch_limit", "unreachable")
"""Why an outcome is refused, one word each (the keys of ``rejected`` in the report).
``unreachable``: unknown here, and a peer that may know it could not be asked (send it again)."""
_SERVER_ID = re.compile(r"([0-9a-f]{12})-[0-9a-f]{16}")


def instance_hint(request_id: str) -> str | None:
    """The instance that made ``request_id`` when it has the shape of a server-made id
    (``<instance>-<random>``): where its prediction is remembered. None for other ids."""
    m = _SERVER_ID.fullmatch(request_id)
    return m.group(1) if m else None


def check_request_id(value: str) -> str:
    """``value`` when it is a usable request id; ValueError with the rule otherwise."""
    if _SAFE_ID.fullmatch(value) is None:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise ValueError(
            f"X-Request-Id {shown!r} is not a usable request id: 1 to {MAX_ID_LENGTH} characters of "
            "letters, digits and . _ : - (send none and the server makes one)"
        )
    return value


def prediction_rows(pred: Any, max_rows: int) -> tuple[Any, ...] | str:
    """One plain value per row of ``pred`` (what a label is compared with), or why there is none."""
    if isinstance(pred, pd.DataFrame):
        if pred.shape[1] != 1:
            return f"the model answers {pred.shape[1]} columns per row, not one value: send a reward instead"
        pred = pred.iloc[:, 0]
    if isinstance(pred, dict):
        if len(pred) != 1:
            return f"the model answers {len(pred)} outputs, not one value per row: send a reward instead"
        pred = next(iter(pred.values()))
    arr = pred.to_numpy() if isinstance(pred, pd.Series) else np.asarray(pred)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    elif arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        return f"the model answers shape {list(arr.shape)} per request, not one value per row: send a reward instead"
    if len(arr) > max_rows:
        return (
            f"the request had {len(arr)} rows; predictions are remembered for requests of at most {max_rows} "
            "(feedback_max_rows, MODELSHIP_FEEDBACK_MAX_ROWS)"
        )
    return tuple(arr.tolist())


def _same(label: Any, predicted: Any) -> bool:
    if isinstance(label, (int, float)) and isinstance(predicted, (int, float)):
        return float(label) == float(predicted)
    return str(label) == str(predicted)


@dataclass(slots=True)
class _Entry:
    rows: tuple[Any, ...] | str  # the prediction per row, or why a label cannot be judged
    answered: bool = False


@dataclass(slots=True)
class Tally:
    """Outcomes of one kind: count, sum and sum of squares (mergeable across pods)."""

    n: int = 0
    sum: float = 0.0
    sum_squares: float = 0.0

    def add(self, value: float) -> None:
        self.n += 1
        self.sum += value
        self.sum_squares += value * value

    def wire(self) -> dict[str, float]:
        return {"n": self.n, "sum": self.sum, "sumSquares": self.sum_squares}


class FeedbackBook:
    """The remembered predictions of one model server and the outcomes they got.

    Called from the event loop (``remember``, small ``/feedback`` bodies) and from a parse
    thread (large bodies, ``/metrics``): one lock, held for dictionary operations only.
    """

    def __init__(self, *, window: int, max_rows: int, max_batch: int) -> None:
        self.window = window
        self.max_rows = max_rows
        self.max_batch = max_batch
        #: this process; ids made here start with it, and the operator tells a restarted pod by it
        self.instance = secrets.token_hex(6)
        self._recent: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.tallies = {kind: Tally() for kind in KINDS}
        self.rejected = dict.fromkeys(REASONS, 0)

    def new_id(self) -> str:
        # 64 random bits, not a counter: an outcome counts once per id, so an id anyone
        # could guess would let them spend another client's feedback before it arrives.
        return f"{self.instance}-{secrets.token_hex(8)}"

    def remember(self, request_id: str, pred: Any) -> None:
        """Keep what was predicted for ``request_id`` (a reused id refers to its latest prediction)."""
        if self.window <= 0:
            return
        entry = _Entry(prediction_rows(pred, self.max_rows))
        with self._lock:
            recent = self._recent
            if request_id in recent:
                del recent[request_id]
            recent[request_id] = entry
            if len(recent) > self.window:
                recent.popitem(last=False)

    @property
    def remembered(self) -> int:
        return len(self._recent)

    def record(self, body: Any, *, count_unknown: bool = True) -> dict[str, Any]:
        """Count the outcomes of a ``/feedback`` body; ValueError when it is not one at all.

        The reply says how many were accepted and, per refused item, its index, id, reason
        and what to do; every valid item counts whatever its neighbours are. With
        ``count_unknown=False`` the ``unknown`` refusals are not added to ``rejected``: the
        caller asks the pod's peers first (and counts, with :meth:`count_rejected`, only what
        no pod knew), or it is such a peer, asked by the pod that will count them.
        """
        if not isinstance(body, dict) or not isinstance(body.get("outcomes"), list):
            raise ValueError(  # noqa: TRY004 - a 400 for the client, as every other body error
                'a feedback body is {"outcomes": [{"requestId": ..., "label": ...} or {"requestId": ..., '
                '"reward": <number>}, ...]}'
            )
        items: list[Any] = body["outcomes"]
        errors: list[dict[str, Any]] = []
        accepted = 0
        for i, item in enumerate(items):
            if i >= self.max_batch:
                errors.append(
                    _error(
                        i,
                        item,
                        "over_batch_limit",
                        f"a batch holds at most {self.max_batch} outcomes (feedback_max_batch): send this one again "
                        "in another batch",
                    )
                )
                continue
            problem = self._one(item)
            if problem is None:
                accepted += 1
            else:
                errors.append(_error(i, item, *problem))
        self.count_rejected(e["reason"] for e in errors if count_unknown or e["reason"] != "unknown")
        return {"accepted": accepted, "rejected": len(errors), "errors": errors}

    def count_rejected(self, reasons: Iterable[str]) -> None:
        """Add refusals to the figures (``rejected`` of the report), by reason."""
        with self._lock:
            for reason in reasons:
                self.rejected[reason] += 1

    def _one(self, item: Any) -> tuple[str, str] | None:
        if not isinstance(item, dict):
            return "invalid", "an outcome is an object with requestId and one of label or reward"
        rid = item.get("requestId")
        if not isinstance(rid, str) or not rid:
            return "invalid", "requestId must be the non-empty string of the prediction reply's X-Request-Id header"
        has_label, has_reward = "label" in item, "reward" in item
        if has_label == has_reward:
            return "invalid", "give exactly one of label (compared with the prediction) or reward (a number)"
        reward = item.get("reward")
        if has_reward and (
            isinstance(reward, bool) or not isinstance(reward, (int, float)) or not math.isfinite(reward)
        ):
            return "invalid", f"reward must be a finite number, got {reward!r}"
        label = item.get("label")
        labels = label if isinstance(label, list) else [label]
        if has_label and not all(isinstance(v, (str, int, float)) and v is not None for v in labels):
            return "invalid", "label must be a string, a number or a boolean (or a list of them, one per row)"
        with self._lock:
            entry = self._recent.get(rid)
            if entry is None:
                why = (
                    f"request id {rid!r} is unknown to this server or expired: it remembers its last {self.window} "
                    "predictions (feedback_window); send feedback sooner"
                )
                return "unknown", why
            if entry.answered:
                return "duplicate", f"request id {rid!r} already has its outcome; each is counted once"
            if has_reward:
                entry.answered = True
                self.tallies["continuous"].add(float(reward))  # type: ignore[arg-type]  # checked above
                return None
            rows = entry.rows
            if isinstance(rows, str):
                return "not_comparable", rows
            if len(labels) != len(rows):
                return (
                    "row_mismatch",
                    f"the request had {len(rows)} rows: give {'one label' if len(rows) == 1 else 'a list of ' + str(len(rows)) + ' labels'}",
                )
            entry.answered = True
            tally = self.tallies["binary"]
            for want, got in zip(labels, rows):
                tally.add(1.0 if _same(want, got) else 0.0)
        return None

    def report(self) -> dict[str, Any]:
        """The figures for ``GET /feedback`` (without the server's model labels)."""
        with self._lock:
            return {
                "instance": self.instance,
                "window": self.window,
                "remembered": len(self._recent),
                "outcomes": {kind: t.wire() for kind, t in self.tallies.items()},
                "rejected": dict(self.rejected),
            }


def _error(index: int, item: Any, reason: str, message: str) -> dict[str, Any]:
    rid = item.get("requestId") if isinstance(item, dict) else None
    return {"index": index, "requestId": rid if isinstance(rid, str) else None, "reason": reason, "message": message}
